"""Analysis functions (docs/math.md §4, §7) against brute-force loops, and the Interactions object."""

from __future__ import annotations

import json
import re

import chex
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import popcount, shared_salient_sets

from jinter import mobius, or_mobius, or_zeta, zeta
from jinter.analysis import (
    GeneralizationPower,
    InteractionRecord,
    Interactions,
    generalization_power,
    order_distribution,
    order_strength,
    salient_counts,
    salient_mask,
    signed_order_strength,
    sparsity_curve,
    tau_output,
    tau_relative,
    top_interactions,
    top_interactions_batch,
)
from jinter.decomposition import AndOrResult
from jinter.shapiq_io import to_shapiq_json


def FakeAndOr(*fields):
    """An AndOrResult filled by hand from known interactions; the fields not given are None."""
    return AndOrResult(*fields, *[None] * (len(AndOrResult._fields) - len(fields)))


N = 4
M = 2**N


def fake_and_or(v: np.ndarray, rng) -> AndOrResult:
    """An AND-OR split for an arbitrary γ (docs/math.md §3): exact universal matching, not optimal."""
    gamma = rng.normal(size=v.shape)
    q = np.zeros_like(v)
    i_and = np.array(mobius(0.5 * (v + q) + gamma))
    i_or = np.array(or_mobius(0.5 * (v + q) - gamma))
    bias = v[..., 0] + q[..., 0]
    i_and[..., 0], i_or[..., 0] = bias, 0.0
    obj = np.abs(i_and[..., 1:]).sum(-1) + np.abs(i_or[..., 1:]).sum(-1)
    b = v.shape[:-1]
    return FakeAndOr(i_and, i_or, gamma, q, obj, obj - 0.5, np.full(b, 0.5), np.full(b, 7), np.ones(b, bool))


@pytest.fixture
def batch(rng):
    v = rng.normal(size=(3, M))
    return v, fake_and_or(v, rng)


# ------------------------------------------------------------------------------ thresholds


def test_fake_and_or_matches(batch):
    v, r = batch
    np.testing.assert_allclose(np.asarray(zeta(r.I_and) + or_zeta(r.I_or)), v, atol=1e-12)


def test_tau_relative_oracle_jit_vmap(batch):
    _, r = batch
    want = [0.05 * max(abs(r.I_and[b, s]) for s in range(1, M)) for b in range(3)]
    want_or = [0.05 * max(max(abs(r.I_and[b, s]), abs(r.I_or[b, s])) for s in range(1, M)) for b in range(3)]
    np.testing.assert_allclose(tau_relative(r.I_and), want, rtol=1e-15)
    np.testing.assert_allclose(tau_relative(r.I_and, r.I_or), want_or, rtol=1e-15)
    np.testing.assert_allclose(jax.vmap(tau_relative)(r.I_and, r.I_or), want_or, rtol=1e-15)
    np.testing.assert_allclose(tau_relative(r.I_and, r.I_or, frac=0.1), 2 * np.asarray(want_or))
    assert tau_relative(r.I_and[None], r.I_or[None]).shape == (1, 3)
    with pytest.raises(ValueError, match="frac"):
        tau_relative(r.I_and, frac=0.0)
    with pytest.raises(ValueError, match="same shape"):
        tau_relative(r.I_and, r.I_or[:2])


def test_tau_output_oracle(rng):
    v = rng.normal(size=(5, 2, M))
    d = np.abs(v[..., M - 1] - v[..., 0])
    np.testing.assert_allclose(tau_output(v), 0.03 * d.mean(0), rtol=1e-14)
    np.testing.assert_allclose(tau_output(v, 0.1, sample_axis=1), 0.1 * d.mean(1), rtol=1e-14)
    np.testing.assert_allclose(tau_output(v, sample_axis=None), 0.03 * d, rtol=1e-14)
    assert tau_output(v, keepdims=True).shape == (1, 2)
    assert tau_output(v[0, 0]).shape == ()
    np.testing.assert_allclose(jax.vmap(tau_output, in_axes=1)(v), 0.03 * d.mean(0), rtol=1e-14)
    with pytest.raises(ValueError, match="frac"):
        tau_output(v, frac=float("nan"))
    with pytest.raises(ValueError, match="power of two"):
        tau_output(v[..., :5])


class TestStatisticsVariants(chex.TestCase):
    """The statistics give the brute-force numbers eagerly, jitted and on committed device arrays."""

    @chex.variants(with_jit=True, without_jit=True, with_device=True)
    def test_thresholds_orders_sparsity_generalization(self):
        rng = np.random.default_rng(5)
        v = rng.normal(size=(3, M))
        r, base = fake_and_or(v, rng), fake_and_or(v, rng)
        peak = [max(max(abs(r.I_and[b, s]), abs(r.I_or[b, s])) for s in range(1, M)) for b in range(3)]
        chex.assert_trees_all_close(self.variant(tau_relative)(r.I_and, r.I_or), 0.05 * np.array(peak), rtol=1e-15)
        d = np.abs(v[:, M - 1] - v[:, 0])
        chex.assert_trees_all_close(self.variant(tau_output)(v), 0.03 * d.mean(), rtol=1e-14)
        tau = np.array([0.1, 0.3, 0.0])
        want = np.zeros((3, N))
        for b in range(3):
            for i in (r.I_and, r.I_or):
                for s in range(1, M):
                    if abs(i[b, s]) >= tau[b]:
                        want[b, popcount(s) - 1] += abs(i[b, s])
        got = self.variant(order_strength)(r.I_and, r.I_or, tau)
        chex.assert_shape(got, (3, N))
        chex.assert_trees_all_close(got, want, rtol=1e-13, atol=1e-14)
        dist = self.variant(order_distribution)(r.I_and, r.I_or, tau)
        chex.assert_trees_all_close(dist, want.mean(0) / want.mean(0).mean(), rtol=1e-13)
        curves = np.array([sorted((abs(i[b, s]) / peak[b] for i in (r.I_and, r.I_or) for s in range(1, M)),
                                  reverse=True) for b in range(3)])
        chex.assert_trees_all_close(self.variant(sparsity_curve)(r.I_and, r.I_or), curves.mean(0), rtol=1e-14)
        g = self.variant(lambda a, o, ba, bo: generalization_power((a, o), (ba, bo), 0.2, 0.2))(
            r.I_and, r.I_or, base.I_and, base.I_or)
        eager = generalization_power((r.I_and, r.I_or), (base.I_and, base.I_or), 0.2, 0.2)
        chex.assert_tree_all_finite(g)
        chex.assert_trees_all_close(tuple(g), tuple(eager), rtol=1e-14)


# ------------------------------------------------------------------------------ salience, orders


def test_existing_order_functions_oracle(batch):
    _, r = batch
    tau = np.array([0.1, 0.3, 0.0])
    got_s = np.asarray(order_strength(r.I_and, r.I_or, tau))
    got_p, got_n = (np.asarray(x) for x in signed_order_strength(r.I_and, r.I_or, tau))
    got_c = np.asarray(salient_counts(r.I_and, r.I_or, tau))
    for b in range(3):
        for k in range(1, N + 1):
            vals = [i[b, s] for i in (r.I_and, r.I_or) for s in range(1, M) if popcount(s) == k]
            sal = [x for x in vals if abs(x) >= tau[b]]
            assert got_s[b, k - 1] == pytest.approx(sum(abs(x) for x in sal))
            assert got_p[b, k - 1] == pytest.approx(sum(max(x, 0) for x in sal))
            assert got_n[b, k - 1] == pytest.approx(sum(min(x, 0) for x in sal))
            assert got_c[b, k - 1] == len(sal)
    dist = np.asarray(order_distribution(r.I_and, r.I_or, tau))
    np.testing.assert_allclose(dist, got_s.mean(0) / got_s.mean(0).mean())


def test_salient_mask_strict():
    i = np.array([5.0, 1.0, 0.5, -1.0])
    np.testing.assert_array_equal(salient_mask(i, 1.0), [False, True, False, True])
    np.testing.assert_array_equal(salient_mask(i, 1.0, strict=True), [False, False, False, False])
    np.testing.assert_array_equal(salient_mask(i, 0.5, strict=True), [False, True, False, True])


# ------------------------------------------------------------------------------ sparsity curve


def test_sparsity_curve_oracle_jit_vmap(batch):
    _, r = batch
    curves = []
    for b in range(3):
        vals = [abs(i[b, s]) for i in (r.I_and, r.I_or) for s in range(1, M)]
        curves.append(sorted((x / max(vals) for x in vals), reverse=True))
    curves = np.array(curves)
    np.testing.assert_allclose(sparsity_curve(r.I_and, r.I_or), curves.mean(0), rtol=1e-14)
    np.testing.assert_allclose(sparsity_curve(r.I_and, r.I_or, sample_axis=None), curves, rtol=1e-14)
    np.testing.assert_allclose(
        jax.vmap(lambda a, o: sparsity_curve(a, o, None))(r.I_and, r.I_or), curves, rtol=1e-14
    )
    assert sparsity_curve(r.I_and).shape == (M - 1,)
    zero = sparsity_curve(np.zeros(M), np.zeros(M))
    assert zero.shape == (2 * (M - 1),) and not np.any(zero)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=M, max_size=M))
def test_sparsity_curve_properties(vals):
    c = np.asarray(sparsity_curve(np.asarray(vals)))
    assert np.all(np.diff(c) <= 0) and np.all((c >= 0) & (c <= 1))
    assert c[0] == pytest.approx(1.0 if np.any(np.asarray(vals[1:]) != 0) else 0.0, rel=1e-15)


# ------------------------------------------------------------------------------ top interactions


def test_top_interactions_oracle(batch):
    _, r = batch
    a, o = r.I_and[0], r.I_or[0]
    allrec = [(abs(x[s]), t, s, x[s]) for t, x in ((0, a), (1, o)) for s in range(1, M)]
    allrec.sort(key=lambda e: (-e[0], e[1], e[2]))
    got = top_interactions(a, o, k=5, players=list("abcd"))
    assert len(got) == 5 and all(isinstance(g, InteractionRecord) for g in got)
    for g, (_, t, s, val) in zip(got, allrec):
        assert (g.type, g.mask, g.value) == (("and", "or")[t], s, val)
        assert g.players == tuple(i for i in range(N) if s >> i & 1) and g.order == popcount(s)
        assert g.names == tuple("abcd"[i] for i in g.players)
    assert got[0].label.startswith(got[0].type.upper() + "{")
    assert len(top_interactions(a, o, k=100)) == 2 * (M - 1)
    assert len(top_interactions(a, k=100)) == M - 1
    tau = allrec[3][0]
    assert len(top_interactions(a, o, k=100, tau=tau)) == 4
    assert top_interactions(a, o, k=0) == []


def test_top_interactions_ties_and_errors():
    a = np.array([9.0, 1.0, -1.0, 1.0])  # three ties
    o = np.array([0.0, -1.0, 0.0, 0.0])
    got = top_interactions(a, o, k=3)
    assert [(g.type, g.mask) for g in got] == [("and", 1), ("and", 2), ("and", 3)]
    assert [(g.type, g.mask) for g in top_interactions(a, o, k=4)][-1] == ("or", 1)
    with pytest.raises(ValueError, match="one sample"):
        top_interactions(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        top_interactions(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="names"):
        top_interactions(a, players=["x"])


def test_top_interactions_batch(rng):
    a, o = rng.normal(size=(2, 3, M)), rng.normal(size=(2, 3, M))
    got = top_interactions_batch(a, o, k=2, tau=np.array([0.0, 0.0, 100.0]))
    assert len(got) == 2 and all(len(row) == 3 for row in got)
    assert got[1][2] == [] and got[1][1] == top_interactions(a[1, 1], o[1, 1], k=2)


# ------------------------------------------------------------------------------ generalization power


def test_generalization_power_constructed():
    # sample 0: AND {0}: 2 vs base 3 (generalizes), AND {1}: -2 vs base 3 (sign differs),
    #           AND {0,1}: 0.5 not salient; OR {0}: 4 vs base 0.05 (base not salient).
    # sample 1: nothing salient.
    i_and = np.array([[10.0, 2.0, -2.0, 0.5], [0.0, 0.1, 0.0, 0.0]])
    i_or = np.array([[0.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    b_and = np.array([[-5.0, 3.0, 3.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    b_or = np.array([[0.0, 0.05, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    g = generalization_power((i_and, i_or), (b_and, b_or), 1.0, 0.1)
    assert isinstance(g, GeneralizationPower)
    np.testing.assert_array_equal(g.n_salient, [[2, 1], [0, 0]])
    np.testing.assert_array_equal(g.n_generalizable, [[1, 0], [0, 0]])
    np.testing.assert_array_equal(g.strength, [[4, 4], [0, 0]])
    np.testing.assert_array_equal(g.strength_generalizable, [[2, 0], [0, 0]])
    np.testing.assert_allclose(g.fraction, [1 / 3, 0])
    np.testing.assert_allclose(g.weighted_fraction, [2 / 8, 0])
    assert float(g.n_bar) == 1.5
    assert float(g.h_bar) == pytest.approx(1 / 3)  # the empty sample is left out
    assert float(g.h_bar_weighted) == pytest.approx(0.25)
    # exactly at τ is not salient (strict, [H25] eq. 6)
    assert float(generalization_power(i_and, b_and, 2.0, 0.1).n_bar) == 0.0


def test_generalization_power_oracle_jit_vmap(rng):
    i = [rng.normal(size=(4, M)) for _ in range(4)]
    tm, tb = np.array([0.3, 0.5, 0.8, 5.0]), 0.4
    got = generalization_power((i[0], i[1]), FakeAndOr(i[2], i[3], *[None] * 7), tm, tb)
    fr, wf = [], []
    for b in range(4):
        pairs = [(x[b, s], y[b, s]) for x, y in ((i[0], i[2]), (i[1], i[3])) for s in range(1, M)]
        sal = [(x, y) for x, y in pairs if abs(x) > tm[b]]
        gen = [(x, y) for x, y in sal if abs(y) > tb and x * y > 0]
        assert got.n_salient[b].sum() == len(sal) and got.n_generalizable[b].sum() == len(gen)
        if sal:
            fr.append(len(gen) / len(sal))
            wf.append(sum(abs(x) for x, _ in gen) / sum(abs(x) for x, _ in sal))
    assert float(got.h_bar) == pytest.approx(np.mean(fr))
    assert float(got.h_bar_weighted) == pytest.approx(np.mean(wf))
    per = jax.vmap(lambda a, b, c, d, t: generalization_power((a, b), (c, d), t, tb))(*i, tm)
    np.testing.assert_allclose(per.fraction, got.fraction, rtol=1e-14)
    np.testing.assert_allclose(per.n_bar, got.n_salient.sum(-1))
    with pytest.raises(ValueError, match="both"):
        generalization_power((i[0], i[1]), i[2], 0.1, 0.1)


# ------------------------------------------------------------------------------ Interactions


def test_interactions_from_and_or_and_tau_rules(batch):
    v, r = batch
    x = Interactions.from_and_or(r, v=v, players=list("abcd"), metadata={"model": "mlp"})
    assert x.n == N and x.batch_shape == (3,) and x.tau_rule == "relative(frac=0.05)"
    np.testing.assert_allclose(x.tau, tau_relative(r.I_and, r.I_or))
    assert x.metadata["decomposition"]["iterations"] == [7, 7, 7]
    np.testing.assert_array_equal(x.gamma, r.gamma)
    assert not x.I_and.flags.writeable
    y = Interactions.from_and_or(r, v=v, tau="output", tau_frac=0.1)
    assert y.tau.shape == () and y.tau_rule.startswith("output(frac=0.1")
    assert float(y.tau) == pytest.approx(float(tau_output(v, 0.1)))
    z = x.with_tau(0.2)
    assert z.tau_rule == "fixed" and float(z.tau) == 0.2 and z.players == x.players
    with pytest.raises(ValueError, match="needs the outputs"):
        Interactions.from_and_or(r, tau="output")
    with pytest.raises(ValueError, match="broadcast"):
        Interactions(r.I_and, r.I_or, tau=np.ones(4))
    with pytest.raises(ValueError, match="JSON"):
        Interactions(r.I_and, metadata={"x": object()})
    with pytest.raises(ValueError, match="NaN"):
        Interactions(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="shape of i_and"):
        Interactions(r.I_and, r.I_or[:2])
    assert "AND-OR" in repr(x)


def test_interactions_methods_call_pure_functions(batch):
    v, r = batch
    x = Interactions.from_and_or(r, v=v)
    np.testing.assert_allclose(x.order_distribution(), order_distribution(r.I_and, r.I_or, x.tau))
    np.testing.assert_allclose(x.sparsity_curve(), sparsity_curve(r.I_and, r.I_or))
    np.testing.assert_allclose(x.salient_counts(), salient_counts(r.I_and, r.I_or, x.tau))
    np.testing.assert_allclose(x.signed_order_strength()[1], signed_order_strength(r.I_and, r.I_or, x.tau)[1])
    assert x.top(3, sample=1) == top_interactions(r.I_and[1], r.I_or[1], 3)
    top_sal = x.top(1000, sample=2, salient_only=True)
    assert len(top_sal) == int(x.salient_counts()[2].sum())
    g = x.generalization_power(x)
    assert float(g.h_bar) == 1.0 and float(g.h_bar_weighted) == 1.0
    with pytest.raises(ValueError, match="sample"):
        x.top(3)


def test_interactions_save_load_json_exact(batch, tmp_path):
    v, r = batch
    for x in (
        Interactions.from_and_or(r, v=v, players=list("abcd"), metadata={"seed": 0, "note": "é"}),
        Interactions(r.I_and[0].astype(np.float32), tau=0.25),
    ):
        path = tmp_path / "x.npz"
        x.save(path)
        for y in (Interactions.load(path), Interactions.from_json(x.to_json())):
            assert (y.n, y.tau_rule, y.players, y.metadata) == (x.n, x.tau_rule, x.players, x.metadata)
            for name in ("i_and", "i_or", "tau", "v", "q", "gamma", "objective", "gap"):
                a, b = getattr(x, name), getattr(y, name)
                assert (a is None) == (b is None)
                if a is not None:
                    assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a"):
        Interactions.load(tmp_path / "other.npz")


def test_interactions_files_that_are_not_theirs_are_named(batch, tmp_path):
    """Corrupt, cut-short or foreign files and documents: a ValueError naming the file, never a raw
    BadZipFile / KeyError / JSONDecodeError; dtypes that would truncate the values are refused."""
    v, r = batch
    x = Interactions.from_and_or(r, v=v)
    good = tmp_path / "x.npz"
    x.save(good)
    cases = {"text.npz": b"not a zip file at all", "cut.npz": good.read_bytes()[:300]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    np.save(tmp_path / "array.npy", np.zeros(3))
    for name in ("text.npz", "cut.npz", "array.npy"):
        with pytest.raises(ValueError, match=f"{name}.*is not a readable"):
            Interactions.load(tmp_path / name)
    doc = json.loads(x.to_json())
    for edit in (lambda d: d.pop("n"), lambda d: d["arrays"]["i_and"].pop("shape"),
                 lambda d: d["arrays"]["i_and"].__setitem__("data", d["arrays"]["i_and"]["data"][:-1]),
                 lambda d: d["arrays"]["i_and"].__setitem__("dtype", "<i8"), lambda d: d.__setitem__("metadata", [1])):
        bad = json.loads(json.dumps(doc))
        edit(bad)
        with pytest.raises(ValueError, match="not a readable"):
            Interactions.from_json(json.dumps(bad))
    with pytest.raises(ValueError, match="not a readable"):
        Interactions.from_json("[1, 2]")


def test_interactions_refuses_what_would_not_survive_its_file(batch):
    v, r = batch
    with pytest.raises(ValueError, match="metadata must be JSON-serializable: keys must be strings"):
        Interactions(r.I_and, metadata={1: (1, 2)})
    x = Interactions(r.I_and, metadata={"pair": (1, 2)})
    assert x.metadata == {"pair": [1, 2]} == Interactions.from_json(x.to_json()).metadata
    with pytest.raises(ValueError, match="metadata must be a mapping"):
        Interactions(r.I_and, metadata=None)
    with pytest.raises(ValueError, match="tau must be"):
        Interactions(r.I_and, tau=-1.0)
    with pytest.raises(ValueError, match="n="):
        Interactions(r.I_and[0, :2], n=True)
    with pytest.raises(ValueError, match=r"objective must have one value per sample \(broadcasting"):
        Interactions(r.I_and, objective=np.zeros(7))


def test_to_table(batch):
    v, r = batch
    x = Interactions.from_and_or(r, v=v, players=list("abcd"))
    rows = x.to_table(sample=1)
    assert len(rows) == 2 * (M - 1)
    assert set(rows[0]) == {"mask", "players", "order", "type", "value", "salient", "names"}
    sal_and, sal_or = x.salient_mask()
    for row in rows:
        arr, sal = (r.I_and, sal_and) if row["type"] == "and" else (r.I_or, sal_or)
        assert row["value"] == arr[1, row["mask"]] and row["salient"] == sal[1, row["mask"]]
        assert row["order"] == popcount(row["mask"]) == len(row["players"])
    assert len(x.to_table()) == 3 * 2 * (M - 1) and x.to_table()[0]["sample"] == (0,)
    assert sum(row["salient"] for row in x.to_table(salient_only=True)) == x.salient_counts().sum()
    bias = x.to_table(sample=0, include_bias=True)[0]
    assert bias["type"] == "bias" and bias["value"] == r.I_and[0, 0]
    json.dumps(rows)  # plain values only


def test_to_shapiq_json_structure_and_or_convention(batch, tmp_path):
    v, r = batch
    x = Interactions.from_and_or(r, v=v)
    doc = x.to_shapiq_json("and", sample=0, path=tmp_path / "and.json")
    assert json.loads((tmp_path / "and.json").read_text()) == doc
    meta = doc["metadata"]
    assert meta["index"] == "Moebius" and meta["n_players"] == N and (meta["min_order"], meta["max_order"]) == (0, N)
    assert meta["baseline_value"] == doc["data"]["Empty"] == r.I_and[0, 0]
    assert len(doc["data"]) == M and list(doc["data"])[:3] == ["Empty", "0", "1"]
    assert doc["data"]["0,2"] == r.I_and[0, 0b101]
    # OR part as co-Moebius: u(S) = Σ_{T⊆N∖S} (−1)^{|T|} m*(T) must give the OR game
    od = x.to_shapiq_json("or", sample=0)
    assert od["metadata"]["index"] == "Co-Moebius" and od["parameters"]["jinter_type"] == "or"
    m = {sum(1 << int(p) for p in k.split(",")) if k != "Empty" else 0: val for k, val in od["data"].items()}
    assert m[0] == od["metadata"]["baseline_value"] == float(r.I_or[0, 0])  # () is the baseline u(∅), as shapiq
    assert od["metadata"]["baseline_value"] == r.I_or[0, 0]  # u(∅)
    u = np.asarray(or_zeta(r.I_or[0]))
    m[0] = float(u[M - 1])  # the inversion's m*(∅) is u(N), which shapiq's layout does not hold in ()
    for s in range(M):
        comp = (M - 1) & ~s
        pred = sum((-1) ** popcount(t) * m[t] for t in range(M) if t & comp == t)
        assert pred == pytest.approx(u[s], abs=1e-12)
    small = x.to_shapiq_json("and", sample=0, salient_only=True)
    assert len(small["data"]) == 1 + int(x.salient_mask()[0][0].sum())
    with pytest.raises(ValueError, match="kind"):
        x.to_shapiq_json("xor", sample=0)


def test_shapiq_loads_export(batch, tmp_path):
    shapiq = pytest.importorskip("shapiq")
    v, r = batch
    x = Interactions.from_and_or(r, v=v)
    x.to_shapiq_json("and", sample=2, path=tmp_path / "and.json")
    iv = shapiq.InteractionValues.from_json_file(tmp_path / "and.json")
    assert iv.index == "Moebius" and iv.n_players == N
    assert iv[(1, 3)] == pytest.approx(r.I_and[2, 0b1010]) and iv.baseline_value == pytest.approx(r.I_and[2, 0])


def test_float32_matches_float64(batch):
    """float32 inputs stay float32 and agree with float64 to float32 rounding (rtol 1e-6)."""
    v, r = batch
    a32, o32 = r.I_and.astype(np.float32), r.I_or.astype(np.float32)
    t32 = tau_relative(a32, o32, np.float64(0.05))
    assert t32.dtype == np.float32
    np.testing.assert_allclose(t32, tau_relative(r.I_and, r.I_or), rtol=1e-6)
    assert tau_output(v.astype(np.float32)).dtype == np.float32
    c32 = sparsity_curve(a32, o32)
    assert c32.dtype == np.float32
    np.testing.assert_allclose(c32, sparsity_curve(r.I_and, r.I_or), rtol=1e-6, atol=1e-7)
    g32 = generalization_power((a32, o32), (o32, a32), 0.2, 0.2)
    g64 = generalization_power((r.I_and, r.I_or), (r.I_or, r.I_and), 0.2, 0.2)
    assert g32.h_bar.dtype == np.float32
    np.testing.assert_allclose(g32.h_bar_weighted, g64.h_bar_weighted, rtol=1e-6)


def test_from_real_and_or_result(rng):
    """Integration with jinter.decomposition.and_or (duck-typed, so only if it is present)."""
    decomposition = pytest.importorskip("jinter.decomposition")
    v = rng.normal(size=(2, M))
    r = decomposition.and_or(v)
    x = Interactions.from_and_or(r, v=v, tau="output")
    np.testing.assert_allclose(x.I_and, r.I_and)
    np.testing.assert_allclose(np.asarray(zeta(x.I_and) + or_zeta(x.I_or)), v + x.q, atol=1e-9)
    assert x.metadata["decomposition"]["converged"] == [True, True]
    assert float(x.objective[0]) == pytest.approx(np.abs(x.I_and[0, 1:]).sum() + np.abs(x.I_or[0, 1:]).sum())


def test_gap_widening_epoch_smooths_one_noisy_epoch():
    from jinter.dynamics import gap_widening_epoch

    e = np.arange(20)
    gap = np.r_[np.linspace(1.0, 0.1, 5), [0.1] * 7, np.linspace(0.2, 1.0, 8)]  # widens from epoch 12
    gap[6] = 0.6  # one noisy epoch early on
    zeros = np.zeros(20)
    assert gap_widening_epoch(e, zeros, gap, smooth=1) == 6  # the raw gap keys on the noisy epoch
    assert abs(gap_widening_epoch(e, zeros, gap) - 12) <= 1
    assert gap_widening_epoch(e, zeros, np.linspace(1, 0, 20)) is None  # never widens
    for bad in (0, 2, 1.5, True):
        with pytest.raises(ValueError, match="smooth"):
            gap_widening_epoch(e, zeros, gap, smooth=bad)


def test_every_result_type_spells_the_interactions_I_and_I_or(tmp_path):
    """One spelling across result types (issue #13): AndOrResult, Interactions and the shared
    solver's result expose ``I_and``/``I_or``; ``Interactions.i_and`` stays as an alias and the
    file format keeps its keys."""
    from jinter import and_or
    from jinter.statistics import interaction_arrays

    v = np.random.default_rng(0).normal(size=(2, 8))
    r = and_or(v, q_ratio=0.0)
    x = Interactions.from_and_or(r, tau=0.1)
    for obj in (r, x):
        a, o = interaction_arrays(obj)
        np.testing.assert_array_equal(a, r.I_and)
        np.testing.assert_array_equal(o, r.I_or)
    assert x.i_and is x.I_and and x.i_or is x.I_or
    path = tmp_path / "x.npz"
    x.save(path)
    with np.load(path) as z:
        assert {"i_and", "i_or"} <= set(z.files)
    np.testing.assert_array_equal(Interactions.load(path).I_and, x.I_and)
    assert interaction_arrays(r.I_and, r.I_or)[1] is r.I_or  # arrays pass through


def test_result_or_arrays_dispatch_on_types_not_attributes():
    """``interaction_arrays`` accepts the library's result types (nominal ``InteractionResult``),
    an ``(i_and, i_or)`` tuple or arrays; a look-alike with ``I_and``/``I_or`` is a TypeError
    naming the argument, in the converter and in ``generalization_power``."""
    from types import SimpleNamespace

    from jinter import and_or_shared
    from jinter.statistics import InteractionResult, interaction_arrays
    from jinter.sweep import SweepResult

    v = np.random.default_rng(1).normal(size=(2, 8))
    r = FakeAndOr(v, -v)
    shared = and_or_shared(np.stack([v, v + 0.1]), q_ratio=0.0)
    for cls in (AndOrResult, type(shared), SweepResult, Interactions):
        assert issubclass(cls, InteractionResult), cls
    a, o = interaction_arrays(shared)
    assert a is shared.I_and and o is shared.I_or
    assert interaction_arrays((v, -v))[1] is not None and interaction_arrays((v,))[1] is None
    with pytest.raises(ValueError, match="given twice"):  # a result's OR part is not silently replaced
        interaction_arrays(r, v)
    assert interaction_arrays(FakeAndOr(v, None), v)[1] is v  # an AND-only result takes an i_or
    with pytest.raises(ValueError, match="given twice"):
        interaction_arrays((v, v), v)
    with pytest.raises(ValueError, match=r"\(i_and,\) or \(i_and, i_or\)"):
        interaction_arrays((v, v, v))
    fake = SimpleNamespace(I_and=v, I_or=-v)
    with pytest.raises(TypeError, match="i_base must be an AndOrResult.*got SimpleNamespace"):
        generalization_power(r, fake, 0.1, 0.1)
    with pytest.raises(TypeError, match="result must be an AndOrResult or a SharedAndOrResult"):
        Interactions.from_and_or(fake)
    g = generalization_power(r, (v, -v), 0.1, 0.1)
    np.testing.assert_array_equal(g.fraction, generalization_power((v, -v), r, 0.1, 0.1).fraction)
    x = Interactions.from_and_or(shared, tau=0.1)
    assert x.gamma is None and x.metadata["decomposition"].keys() == {"lower_bound", "iterations", "converged"}


def test_shapiq_io_is_the_method_of_interactions(batch):
    from jinter import shapiq_io

    v, r = batch
    x = Interactions.from_and_or(r, v=v, players=list("abcd"))
    for kind in ("and", "or"):
        doc = x.to_shapiq_json(kind, sample=1, salient_only=True)
        own = shapiq_io.to_shapiq_json(r.I_and[1], r.I_or[1], kind, tau=float(x.tau[1]), salient_only=True,
                                       tau_rule=x.tau_rule, players=x.players, sample=(1,),
                                       created_from="jinter.Interactions")
        assert {k: d for k, d in doc.items() if k != "timestamp"} == {k: d for k, d in own.items() if k != "timestamp"}
    with pytest.raises(ValueError, match="one sample"):
        shapiq_io.to_shapiq_json(r.I_and)
    with pytest.raises(ValueError, match="no OR part"):
        shapiq_io.to_shapiq_json(r.I_and[0], kind="or")


def test_shared_salient_against_brute_force():
    """Ω_shared [C24]: S ≠ ∅ salient (|I| ≥ frac·max over AND and OR) in every model."""
    from jinter.statistics import shared_salient

    rng = np.random.default_rng(4)
    i_and, i_or = rng.normal(size=(2, 3, 5, 16)) ** 3  # (m, batch, 2**n), heavy-tailed
    frac = 0.1
    sal_and, sal_or, _ = shared_salient_sets(i_and, i_or, frac)
    pad = lambda x: np.concatenate([np.zeros(x.shape[:-1] + (1,), bool), x], axis=-1)  # noqa: E731  (∅ never)
    want_and, want_or = pad(sal_and), pad(sal_or)
    got_and, got_or = shared_salient((i_and, i_or), frac=frac)
    np.testing.assert_array_equal(got_and, want_and)
    np.testing.assert_array_equal(got_or, want_or)
    assert 0 < want_and.sum() < want_and.size  # the case is not trivial
    moved = shared_salient(np.moveaxis(i_and, 0, 1), np.moveaxis(i_or, 0, 1), frac=frac, model_axis=1)
    np.testing.assert_array_equal(moved[0], want_and)
    with pytest.raises(ValueError, match="frac"):
        shared_salient((i_and, i_or), frac=2.0)
    with pytest.raises(ValueError, match="i_or"):
        shared_salient(i_and)


def test_nan_or_negative_tau_and_fractional_k_are_refused():
    v = np.random.default_rng(0).normal(size=16)
    i_and, i_or = mobius(v), np.zeros(16)
    for bad in (float("nan"), -1.0, [0.1, float("nan")]):
        with pytest.raises(ValueError, match="tau must be"):
            salient_mask(i_and, bad)
        with pytest.raises(ValueError, match="tau must be"):
            order_distribution(i_and, i_or, tau=bad)
    with pytest.raises(ValueError, match="tau must be"):
        top_interactions(i_and, i_or, tau=float("nan"))
    for bad in (True, 2.7, "3", -1):
        with pytest.raises(ValueError, match="k must be an integer ≥ 0"):
            top_interactions(i_and, i_or, k=bad)
    assert len(top_interactions(i_and, i_or, k=np.int64(3))) == 3
    assert not bool(np.any(salient_mask(i_and, float("inf"))))  # inf: nothing is salient


def test_to_shapiq_json_refuses_what_json_or_shapiq_cannot_hold():
    from jinter.shapiq_io import to_shapiq_json

    i = np.arange(8.0)
    assert len(to_shapiq_json(i)["data"]) == 8
    for kwargs, error in [
        (dict(i_and=i * np.nan), ValueError), (dict(i_and=i + 1j), TypeError), (dict(i_and=i, tau=-1.0), ValueError),
        (dict(i_and=i, tau=float("nan")), ValueError), (dict(i_and=i, tau=float("inf")), ValueError),
        (dict(i_and=i, tau="x"), ValueError), (dict(i_and=i, players=["a"]), ValueError),
        (dict(i_and=i, salient_only="no"), TypeError),
    ]:
        with pytest.raises(error):
            to_shapiq_json(**kwargs)


def test_sample_indices_out_of_range_are_named(batch):
    v, r = batch
    x = Interactions.from_and_or(r, v=v)
    for bad in (5, -9, True, 1.0, (0, 1)):
        with pytest.raises(ValueError, match="does not index one sample"):
            x.top(3, sample=bad)
        with pytest.raises(ValueError, match="does not index one sample"):
            x.to_table(sample=bad)
    assert x.top(2, sample=-1) == x.top(2, sample=x.batch_shape[0] - 1)


def test_generalization_power_refuses_negative_or_nan_thresholds():
    from jinter.generalization import generalization_power

    i = np.random.default_rng(0).normal(size=(3, 16))
    for taus, name in (((-1.0, 0.1), "tau_model"), ((np.nan, 0.1), "tau_model"), ((0.1, np.nan), "tau_base"),
                       (("a", 0.1), "tau_model")):
        with pytest.raises(ValueError, match=name):
            generalization_power((i, i * 0), (i, i * 0), *taus)
    assert float(generalization_power((i, i * 0), (i, i * 0), 0.1, 0.1).h_bar) == 1.0


def test_players_must_be_names():
    i = np.zeros((2, 16))
    with pytest.raises(ValueError, match="players must be a sequence"):
        Interactions(i, players=5)
    with pytest.raises(ValueError, match="players must be a sequence"):
        Interactions(i, players="abcd")
    assert Interactions(i, players=list("abcd")).players == ("a", "b", "c", "d")


def test_sample_axis_is_one_of_the_leading_axes(batch):
    """``sample_axis`` indexes the batch axes (negative from the last of them), never the subset or
    order axis; anything else is refused by name."""
    v, r = batch
    two = np.stack([r.I_and, 2 * r.I_and])  # (2, 3, 2**n)
    x = Interactions(two)
    np.testing.assert_allclose(x.sparsity_curve(-1), x.sparsity_curve(1))
    np.testing.assert_allclose(x.order_distribution(-2), x.order_distribution(0))
    np.testing.assert_allclose(tau_output(np.stack([v, v]), sample_axis=-1), tau_output(np.stack([v, v]), sample_axis=1))
    for bad, message in ((2, r"in \[-2, 2\) \(one of the 2 leading axes\), got 2"), (-3, "got -3"),
                         ("a", "got 'a'"), (1.0, "got 1.0"), (True, "got True")):
        for call in (lambda: x.sparsity_curve(bad), lambda: x.order_distribution(bad),
                     lambda: generalization_power(x, x, 0.1, 0.1, sample_axis=bad)):
            with pytest.raises(ValueError, match=r"sample_axis must be None or an integer.*" + message):
                call()
    assert x.order_distribution(None).shape == (2, 3, N)


def test_interactions_options_named(batch, tmp_path):
    v, r = batch
    for frac in ("x", -0.1, float("nan"), None.__class__):
        with pytest.raises(ValueError, match="tau_frac must be a finite number > 0"):
            Interactions.from_and_or(r, v=v, tau="output", tau_frac=frac)
    x = Interactions.from_and_or(r, v=v)
    with pytest.raises(TypeError, match="base must be an Interactions object .* got int"):
        x.generalization_power(5)
    with pytest.raises(ValueError, match="I_and has dtype float128; jinter holds at most 64-bit values"):
        Interactions(np.asarray(r.I_and, dtype=np.longdouble))
    # save replaces an existing file only with a complete one, and leaves no temporary file behind
    path = tmp_path / "x.npz"
    path.write_bytes(b"old")
    x.save(path)
    assert Interactions.load(path).I_and.tolist() == x.I_and.tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]


def test_statistics_refuse_nan_complex_and_thresholds_of_another_shape(rng):
    """NaN or inf interactions are named with their mask instead of being left out of the counts;
    a τ that does not broadcast to the samples (or would add an axis) is named."""
    a = rng.normal(size=(3, 16))
    bad = a.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"i_model's I_and: 1 non-finite .* batch index \(1,\), mask 3"):
        generalization_power(bad, a, 0.5, 0.5)
    bad[1, 3] = np.inf
    with pytest.raises(ValueError, match=r"i_base's I_and: 1 non-finite"):
        generalization_power(a, bad, 0.5, 0.5)
    for fn in (lambda x: order_distribution(x), lambda x: sparsity_curve(x), lambda x: tau_relative(x)):
        with pytest.raises(ValueError, match=r"i_and: 1 non-finite \(NaN or inf\) value\(s\), the first \(inf\)"):
            fn(bad)
        with pytest.raises(TypeError, match="i_and is complex"):
            fn(a + 1j)
    for tau in (np.ones(2), np.ones((3, 1)), np.ones(16)):
        with pytest.raises(ValueError, match=r"tau_model must broadcast to the batch shape \(3,\).*got shape " + re.escape(str(tau.shape))):
            generalization_power(a, a, tau, 0.5)
    with pytest.raises(ValueError, match="i_model holds no samples"):
        generalization_power(np.zeros((0, 16)), np.zeros((0, 16)), 0.5, 0.5)
    ints = np.array([0, 200, 200, 0, 200, 0, 0, 0], np.uint8)  # integers are promoted, not wrapped
    np.testing.assert_allclose(signed_order_strength(ints, None, 0.0)[0], [600.0, 0.0, 0.0])


def test_interactions_second_user_trial(batch, tmp_path):
    """Frozen metadata, numbers held as floats in native order, names that are names, files that
    say what they hold, and exports that name their arguments."""
    v, r = batch
    x = Interactions.from_and_or(r, v=v, metadata={"run": {"seeds": [1, 2]}})
    for change in (lambda: x.metadata.__setitem__("k", 1), lambda: x.metadata["run"]["seeds"].append(3),
                   lambda: x.metadata["decomposition"].update(iterations=0)):
        with pytest.raises(TypeError, match="metadata is read-only"):
            change()
    assert x.metadata["run"] == {"seeds": [1, 2]} and json.loads(json.dumps(x.metadata))["run"]["seeds"] == [1, 2]
    with pytest.raises(ValueError, match=r'metadata\["decomposition"\] is where from_and_or keeps'):
        Interactions.from_and_or(r, metadata={"decomposition": "mine"})
    wrapped = Interactions(np.array([0, 200, 200, 0, 200, 0, 0, 0], np.uint8), tau=0.0)
    assert wrapped.I_and.dtype == np.float64 and wrapped.signed_order_strength()[0].tolist() == [600.0, 0.0, 0.0]
    assert Interactions(np.array([0, -128, 100, 0], np.int8)).top(1)[0].value == -128.0
    big = Interactions(np.asarray(r.I_and, dtype=">f8"))
    assert big.I_and.dtype.isnative
    assert big.top(1, sample=0) == Interactions(np.asarray(r.I_and)).top(1, sample=0)
    for players, message in (([1, None, 2, 3], "got None at position 1"), (["a", "a", "b", "c"], r"distinct names, got \['a'\]"),
                             ([0.5, 1, 2, 3], "got 0.5 at position 0")):
        with pytest.raises(ValueError, match=message):
            Interactions(r.I_and, players=players)
    assert Interactions(r.I_and, players=range(N)).players == ("0", "1", "2", "3")
    with pytest.raises(ValueError, match="tau_rule must be a string"):
        Interactions(r.I_and, tau_rule=None)
    for call in (lambda: x.top(3, sample=0, salient_only="no"), lambda: x.to_table(salient_only=1),
                 lambda: x.to_shapiq_json(sample=0, salient_only="yes")):
        with pytest.raises(TypeError, match="salient_only must be True or False"):
            call()
    # the file lists its arrays; one that lost an array is refused, not read with it missing
    x.save(tmp_path / "x.npz")
    with np.load(tmp_path / "x.npz") as z:
        kept = {k: z[k] for k in z.files if k not in ("i_or", "v")}
    np.savez(tmp_path / "cut.npz", **kept)
    with pytest.raises(ValueError, match=r"cut.npz.*missing \['i_or', 'v'\]"):
        Interactions.load(tmp_path / "cut.npz")
    (tmp_path / "text.json").write_text("{}")
    with pytest.raises(ValueError, match=r"text.json.*not an .npz archive"):
        Interactions.load(tmp_path / "text.json")
    with pytest.raises(ValueError, match="exists and is not a regular file"):
        x.save(tmp_path)
    # shapiq export: () of the co-Moebius is the baseline u(∅), as in shapiq; a negative sample index is resolved
    od = x.to_shapiq_json("or", sample=-1)
    assert od["data"]["Empty"] == od["metadata"]["baseline_value"] == float(r.I_or[2, 0])
    assert od["parameters"]["sample"] == [2]
    with pytest.raises(ValueError, match=r"i_or must have the shape of i_and \(16,\), got \(8,\)"):
        to_shapiq_json(np.ones(16), np.ones(8), kind="or")
    with pytest.raises(TypeError, match="exports itself with its to_shapiq_json method"):
        to_shapiq_json(x)


def test_tau_of_another_shape_is_named():
    ia = np.random.default_rng(0).normal(size=(2, 3, 16))
    for call in (lambda: order_distribution(ia, ia, np.ones(4)), lambda: salient_mask(ia, np.ones(16))):
        with pytest.raises(ValueError, match=r"tau must broadcast to the batch shape \(2, 3\)"):
            call()
    assert salient_mask(ia, np.ones(3)).shape == ia.shape and salient_mask(ia, np.ones((2, 1))).shape == ia.shape


def test_no_average_over_no_samples_and_no_negative_gap():
    empty = np.zeros((0, 16))
    for call in (lambda: sparsity_curve(empty), lambda: order_distribution(empty), lambda: tau_output(empty)):
        with pytest.raises(ValueError, match="averages over an axis of length 0"):
            call()
    assert sparsity_curve(empty, sample_axis=None).shape == (0, 15)
    for name in ("gap", "objective"):
        with pytest.raises(ValueError, match=f"{name} must be ≥ 0"):
            Interactions(np.ones(8), **{name: -5.0})


def test_third_user_trial_statistics_and_files(rng, tmp_path):
    """An OR array of another shape is named (it was broadcast against the AND rows); salient_mask
    refuses NaN and complex like the rest of its module; float64 interactions keep float64 τ and
    counts with jax_enable_x64 off; a file's version and array names are checked."""
    a, o = rng.normal(size=(3, 16)), rng.normal(size=(3, 16))
    for call in (lambda: order_strength(a, o[:, :8]), lambda: salient_counts(a, o[:, None], 0.1),
                 lambda: order_distribution(a[0], o, 0.1), lambda: signed_order_strength(a, o[0], 0.1)):
        with pytest.raises(ValueError, match="i_and and i_or must have the same shape"):
            call()
    bad = a.copy()
    bad[0, 2] = np.nan
    with pytest.raises(ValueError, match=r"interactions: 1 non-finite .* mask 2"):
        salient_mask(bad, 0.5)
    with pytest.raises(TypeError, match="interactions is complex"):
        salient_mask(a + 1j, 0.5)
    # precision of the held numbers: |I({1})| = 0.1 − 1e-12 is below τ = 0.1 in float64
    i = np.zeros((1, 4))
    i[0, 1], i[0, 2] = 1.0, 0.1 - 1e-12
    jax.config.update("jax_enable_x64", False)  # restored by conftest's fixture
    x = Interactions(i, tau=0.1)
    assert x.salient_counts().tolist() == [[1.0, 0.0]] and x.salient_mask()[0].tolist() == [[False, True, False, False]]
    j = i.copy()
    j[0, 2] = 0.05 * (1 - 1e-12)
    y = Interactions.from_arrays(j, tau="relative")
    assert y.tau.dtype == np.float64 and y.salient_counts().tolist() == [[1.0, 0.0]]
    jax.config.update("jax_enable_x64", True)
    # files: the version is an integer the reader knows; arrays that are not fields are refused
    z = Interactions.from_arrays(a, o, tau="relative")
    z.save(tmp_path / "z.npz")
    with np.load(tmp_path / "z.npz") as f:
        parts = {k: f[k] for k in f.files}
    header = json.loads(str(parts["header_json"]))
    for version in (1.5, True, "1", None, 0):
        np.savez(tmp_path / "v.npz", **{**parts, "header_json": np.array(json.dumps({**header, "version": version}))})
        with pytest.raises(ValueError, match=r"v.npz.*format version must be an integer ≥ 1, got " + re.escape(repr(version))):
            Interactions.load(tmp_path / "v.npz")
    doc = json.loads(z.to_json())
    doc["arrays"]["junk"] = doc["arrays"]["i_and"]
    with pytest.raises(ValueError, match=r"arrays that are not fields of jinter.Interactions: \['junk'\]"):
        Interactions.from_json(json.dumps(doc))
    with pytest.raises(ValueError, match=r"tau must broadcast to the batch shape \(3,\)"):
        top_interactions_batch(a, o, 2, tau=np.ones(5))
    import jinter

    assert jinter.top_interactions_batch is top_interactions_batch


def test_output_tau_of_a_shared_result_is_per_model(rng):
    """tau="output" of a SharedAndOrResult averages over the inputs, not over its model axis."""
    import jinter
    from jinter.statistics import tau_output

    vs = rng.normal(size=(2, 3, 16))
    vs[1] *= 10.0
    res = jinter.and_or_shared(vs)
    x = Interactions.from_and_or(res, v=vs, tau="output")
    np.testing.assert_allclose(x.tau, np.asarray(tau_output(vs, 0.03, 1, keepdims=True)))
    assert x.tau.shape == (2, 1) and x.tau[1, 0] > 5 * x.tau[0, 0]
    one = Interactions.from_and_or(res, v=vs, tau="output", sample_axis=0)  # explicit: kept
    assert one.tau.shape == (1, 3)
    with pytest.raises(ValueError, match="sample_axis"):
        Interactions.from_and_or(res, v=vs, tau="output", sample_axis="models")


def test_tau_rules_never_count_zeros_as_salient():
    """User trial (2026-12-08): a game without interactions had every zero entry salient (τ = 0)."""
    import jax.numpy as jnp

    import jinter

    r = jinter.and_or(jnp.full(16, 2.0))
    for tau in (jinter.tau_relative(r.I_and, r.I_or), jinter.tau_output(jnp.full((1, 16), 2.0))):
        assert float(tau) > 0
        assert float(jnp.sum(jinter.salient_counts(r.I_and, r.I_or, tau))) == 0
    assert jinter.tau_output(jnp.full((1, 16), 2.0, jnp.float32)).dtype == jnp.float32
