"""AndOrOptions: the typed, frozen options of and_or (fields = and_or's keyword options)."""

import dataclasses
import inspect

import numpy as np
import pytest

import jinter
from jinter.decomposition import AndOrOptions, and_or

PER_CALL = {"warm_start", "devices"}  # and_or keywords that are not solver settings


def test_fields_and_defaults_mirror_and_or():
    params = inspect.signature(and_or).parameters
    keyword = {n: p.default for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    fields = {f.name: f.default for f in dataclasses.fields(AndOrOptions)}
    assert fields == {n: d for n, d in keyword.items() if n not in PER_CALL}
    assert AndOrOptions().kwargs() == fields
    assert jinter.AndOrOptions is AndOrOptions


def test_frozen_hashable_normalized():
    a = AndOrOptions(q_ratio=0, max_iter=1e4, tol=np.float64(1e-5), chunk=np.int64(4), canonical=np.bool_(True))
    b = AndOrOptions(q_ratio=0.0, max_iter=10_000, tol=1e-5, chunk=4, canonical=True)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert type(a.q_ratio) is float and type(a.max_iter) is int and type(a.chunk) is int and a.canonical is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.tol = 1e-3
    c = a.replace(tol=1e-3)
    assert c.tol == 1e-3 and a.tol == 1e-5 and c.max_iter == 10_000
    assert AndOrOptions(memory_budget="2G").memory_budget == 2 * 2**30 == AndOrOptions(memory_budget="2048M").memory_budget
    assert AndOrOptions(memory_budget=np.int64(2**20)).memory_budget == 2**20


@pytest.mark.parametrize(
    "field, value",
    [
        ("q_ratio", -0.1), ("q_ratio", float("inf")), ("q_ratio", "0.02"), ("q_ratio", True),
        ("tol", 0), ("tol", -1e-5), ("tol", float("nan")),
        ("rho", 0.0), ("rho", "big"),
        ("max_iter", -1), ("max_iter", 1.5), ("max_iter", None),
        ("check_every", 0), ("chunk", 0), ("chunk", True), ("canonical_max_iter", -5),
        ("canonical", 1), ("canonical", "yes"),
        ("memory_budget", 0), ("memory_budget", -1), ("memory_budget", "lots"), ("memory_budget", 1.5),
    ],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=rf"AndOrOptions\.{field} must be"):
        AndOrOptions(**{field: value})
    with pytest.raises(ValueError, match=rf"AndOrOptions\.{field} must be"):
        AndOrOptions().replace(**{field: value})


def test_from_kwargs():
    assert AndOrOptions.from_kwargs(None) == AndOrOptions() == AndOrOptions.from_kwargs({})
    assert AndOrOptions.from_kwargs({"tol": 1e-4, "chunk": 8}) == AndOrOptions(tol=1e-4, chunk=8)
    with pytest.raises(ValueError, match=r"unknown AndOrOptions field\(s\) \['max_iters'\].*'max_iter'"):
        AndOrOptions.from_kwargs({"max_iters": 10})
    with pytest.raises(ValueError, match="devices: per call"):
        AndOrOptions.from_kwargs({"devices": "all"})


def test_kwargs_give_the_same_result():
    v = np.random.default_rng(0).normal(size=(2, 8))
    opts = AndOrOptions(q_ratio=0.05, max_iter=500, check_every=50)
    a = and_or(v, **opts.kwargs())
    b = and_or(v, q_ratio=0.05, max_iter=500, check_every=50)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_memory_budget_values():
    """Whole numbers of bytes (ints, integral floats, sizes such as "1.5G") are budgets; a fraction of
    a byte, a bool, NaN or a word is a ValueError naming memory_budget (before: "1.7" was 1 byte,
    "abc" a bare float() error, True 1 byte)."""
    assert jinter.memory_budget(1e9) == 10**9 and jinter.memory_budget("1.5G") == 3 * 2**29
    assert jinter.memory_budget(np.int64(4096)) == 4096 and jinter.memory_budget("512M") == 2**29
    for bad in ("1.7", 1.5, True, float("nan"), float("inf"), "abc", "0", -1):
        with pytest.raises(ValueError, match="^memory_budget must be None, a positive number of bytes"):
            jinter.memory_budget(bad)
    assert AndOrOptions(memory_budget=1e9).memory_budget == 10**9
