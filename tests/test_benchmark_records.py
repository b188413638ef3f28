"""The benchmarks' record keeping: what a run writes into ``benchmarks/results`` and what it keeps."""

import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _bench(monkeypatch, name):
    """The benchmark script ``name`` imported as a module (dropped again after the test)."""
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.delitem(sys.modules, name, raising=False)  # restored (absent) after the test
    return importlib.import_module(name)


@pytest.fixture
def classes(monkeypatch, tmp_path):
    mod = _bench(monkeypatch, "bench_and_or_classes")
    monkeypatch.setattr(mod, "RESULTS", tmp_path)
    return mod


def test_full_run_keeps_the_large_n_records_it_did_not_rerun(classes, tmp_path):
    old = {"n10": {"gaussian": {"summary": {"median_seconds": 1.0}}}, "time": "t0",
           "large_n16": {"iterations": 5, "measured": "t0"}, "large_n20": {"iterations": 7, "measured": "t0"}}
    (tmp_path / "and_or_classes.json").write_text(json.dumps(old))
    new = {"n10": {"gaussian": {"summary": {"median_seconds": 0.5}}}, "large_n16": {"iterations": 4, "measured": "t1"}}
    out = classes._with_old_large(new)
    assert out["large_n16"] == new["large_n16"] and out["large_n20"] == old["large_n20"]
    assert out["n10"] == new["n10"] and "time" not in out  # only large-n records are carried over
    (tmp_path / "and_or_classes.json").unlink()
    assert classes._with_old_large(new) == new


def test_partial_run_records_its_iteration_caps(classes, tmp_path):
    (tmp_path / "and_or_classes.json").write_text(json.dumps({"n10": {}, "time": "t0"}))
    args = SimpleNamespace(classes=["gaussian"], no_network=True, large=[16], large_iter=[100_000, 2000],
                           started="t1")
    out = classes._merged({"n10": {"gaussian": {"summary": {}}}}, args)
    assert out["partial_runs"] == [{"classes": ["gaussian"], "network": False, "large": [16],
                                    "large_iter": [100_000], "time": "t1"}]


@pytest.fixture
def sparse_bench(monkeypatch):
    return _bench(monkeypatch, "bench_sparse")


def test_match_terms_finds_the_fewest_terms_by_bisection(sparse_bench, monkeypatch):
    """``jinter@match``: with R² rising in the cap, the bisection returns the smallest cap that
    reaches the target, records the target, and says when even the default's count falls short."""
    calls = []

    def fake(game, n, budget, s_eval, y_eval, truth, max_records=None, warm=True):
        calls.append(max_records)
        return {"r2": 1 - 1 / (1 + max_records), "terms": max_records}

    monkeypatch.setattr(sparse_bench, "run_jinter", fake)
    out = sparse_bench.match_terms(None, 8, 100, None, None, None, target=0.9, most=40)
    assert out["terms"] == 9 and out["r2"] >= 0.9 > 1 - 1 / 9 and out["target_r2"] == 0.9
    assert out["bisection_runs"] == len(set(calls)) <= 8
    assert sparse_bench.match_terms(None, 8, 100, None, None, None, target=0.99, most=40) is None
