"""Tests of the exact AND-OR decomposition (docs/math.md §3) against the LP solved by HiGHS
(tests/oracles.py)."""

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import lp_optimum, lp_shared, popcount, shared_salient_sets

from jinter import MemoryBudgetError, decomposition
from jinter.decomposition import FixedPointIteration, and_or, and_or_shared, halpern, halpern_fixed_point
from jinter.statistics import shared_salient
from jinter.transforms import matching_error, mobius, or_zeta, zeta


def _objective(res):
    return np.sum(np.abs(res.I_and[..., 1:]), -1) + np.sum(np.abs(res.I_or[..., 1:]), -1)


@pytest.mark.parametrize("q_ratio, sizes", [(0.0, (4, 7)), (0.02, (5, 6))])
def test_matches_lp_optimum(q_ratio, sizes):
    rng = np.random.default_rng(3)
    for n in sizes:
        batch = rng.normal(size=(3, 2**n))
        results = and_or(batch, q_ratio=q_ratio)  # one compiled call per size
        for k, v in enumerate(batch):
            _check_against_lp(v, jax.tree_util.tree_map(lambda x: x[k], results), q_ratio)


def _check_against_lp(v, res, q_ratio):
    opt = lp_optimum(v, q_ratio * abs(v[-1] - v[0]))
    assert bool(res.converged)
    assert abs(float(res.objective) / opt - 1) < 1e-3  # spec: 0.1 %
    assert float(res.lower_bound) <= opt * (1 + 1e-9) + 1e-12  # certified bound
    assert float(res.objective) >= opt * (1 - 1e-9)
    np.testing.assert_allclose(float(res.objective), _objective(res), rtol=1e-9)
    # universal matching: v + q = zeta(I_and) + or_zeta(I_or)
    err = matching_error(v + np.asarray(res.q), res.I_and, res.I_or, relative=True)
    assert float(err) < 1e-6
    # q in its box; q = 0 exactly without a noise term
    assert np.all(np.abs(res.q) <= q_ratio * abs(v[-1] - v[0]) * (1 + 1e-12))
    if q_ratio == 0:
        assert np.all(np.asarray(res.q) == 0)
    assert float(res.I_or[0]) == 0.0 and float(res.gamma[0]) == 0.0
    np.testing.assert_allclose(float(res.I_and[0]), v[0] + float(res.q[0]))
    # γ is the split: I_and = mobius(½(v + q) + γ) off ∅
    scale = float(np.max(np.abs(v)))
    np.testing.assert_allclose(mobius(0.5 * (v + res.q) + res.gamma)[1:], res.I_and[1:], atol=1e-9 * scale)
    # a single player's AND and OR are one function: reported in I_and, I_or({i}) = 0
    singles = [1 << i for i in range(int(np.log2(len(v))))]
    np.testing.assert_array_equal(np.asarray(res.I_or)[singles], 0.0)


def test_pure_and_and_pure_or_games():
    rng = np.random.default_rng(4)
    n = 5
    orders = np.array([popcount(m) for m in range(2**n)])
    w = rng.normal(size=2**n) * (rng.random(2**n) < 0.3) * (orders >= 2)
    w[0] = 0.7
    w[[1, 4]] = [1.5, -0.8]  # singletons: an AND of one player is an OR of one player
    v_and = np.asarray(zeta(w))
    # the optimum is unique: a certificate at gap 1e-9 pins the interactions to ~1e-8 (the default
    # tol = 1e-5 bounds the objective, which leaves single interactions a few 1e-6 off)
    res = and_or(v_and, q_ratio=0.0, tol=1e-9)
    np.testing.assert_allclose(res.I_and, w, atol=1e-6)
    np.testing.assert_allclose(res.I_or, 0.0, atol=1e-6)
    w_or = w * (orders >= 2)
    w_or[0] = 0.7
    v_or = np.asarray(or_zeta(w_or)) + np.asarray(zeta(w * (orders == 1)))
    res = and_or(v_or, q_ratio=0.0, tol=1e-9)
    expect_or = w_or.copy()
    expect_or[0] = 0
    np.testing.assert_allclose(res.I_or, expect_or, atol=1e-6)
    np.testing.assert_allclose(res.I_and[1:], (w * (orders == 1))[1:], atol=1e-6)  # singletons in AND
    np.testing.assert_allclose(float(res.I_and[0]), w_or[0])


def test_constant_game_has_zero_objective():
    # a constant game is pure bias: no interaction off ∅, with and without the noise term
    for q_ratio in (0.0, 0.02):
        res = and_or(np.full(16, 3.0), q_ratio=q_ratio)
        assert float(res.objective) == 0.0 and bool(res.converged)
        np.testing.assert_allclose(res.I_and, np.eye(16)[0] * 3.0, atol=1e-12)
        np.testing.assert_allclose(res.I_or, 0.0, atol=1e-12)


def test_batched_equals_single_jit_vmap_and_determinism():
    rng = np.random.default_rng(5)
    vs = rng.normal(size=(2, 3, 2**4))
    res = and_or(vs, q_ratio=0.02)  # a (2, 3) batch of games
    assert res.I_and.shape == vs.shape and res.gap.shape == (2, 3)
    one = and_or(vs[1, 2], q_ratio=0.02)
    np.testing.assert_allclose(res.I_and[1, 2], one.I_and, atol=1e-7 * float(one.objective))
    np.testing.assert_allclose(float(res.objective[1, 2]), float(one.objective), rtol=1e-5)
    again = and_or(vs, q_ratio=0.02)
    for a, b in zip(res, again):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # deterministic
    jitted = jax.jit(lambda x: and_or(x, q_ratio=0.02).objective)(jnp.asarray(vs))
    np.testing.assert_allclose(jitted, res.objective, rtol=1e-5)
    vmapped = jax.vmap(lambda x: and_or(x, q_ratio=0.02).objective)(jnp.asarray(vs[0]))
    np.testing.assert_allclose(vmapped, res.objective[0], rtol=1e-5)


def test_degenerate_symmetric_game_is_deterministic():
    n = 4
    orders = np.array([popcount(s) for s in range(2**n)], float)
    v = orders**2  # symmetric players: many optimal γ
    a, b = and_or(v, q_ratio=0.0), and_or(v, q_ratio=0.0)
    np.testing.assert_array_equal(np.asarray(a.gamma), np.asarray(b.gamma))
    assert abs(float(a.objective) / lp_optimum(v, 0.0) - 1) < 1e-3


def test_float32_path():
    rng = np.random.default_rng(6)
    v = rng.normal(size=2**6)
    r64 = and_or(v, q_ratio=0.0)
    r32 = and_or(v.astype(np.float32), q_ratio=0.0, tol=1e-4)
    assert r32.I_and.dtype == jnp.float32
    # stated float32 tolerance: objective within 1e-3 relative of the float64 optimum
    assert abs(float(r32.objective) / float(r64.objective) - 1) < 1e-3
    assert float(matching_error(v.astype(np.float32) + r32.q, r32.I_and, r32.I_or, relative=True)) < 1e-4
    # with the noise term (inner CG in float32): same stated tolerance
    q64 = and_or(v, q_ratio=0.02)
    q32 = and_or(v.astype(np.float32), q_ratio=0.02, tol=1e-4)
    assert q32.q.dtype == jnp.float32 and bool(q32.converged)
    assert abs(float(q32.objective) / float(q64.objective) - 1) < 1e-3


_TRAINED = Path(__file__).parent / "data" / "andor_trained_games.npz"


def test_trained_games_converge_with_noise_term():
    """Games of a lightly trained MLP (n = 10), where the former q > 0 solver stalled at gaps
    1e-3 to 2e-2 after 20k iterations: now certified to tol within a bounded iteration count,
    at the HiGHS optimum (computed offline with tests/oracles.py's LP, stored in the file)."""
    data = np.load(_TRAINED)
    vs, opt, q_ratio = data["v"], data["lp_optimum"], float(data["q_ratio"])
    res = and_or(vs, q_ratio=q_ratio)  # one compiled call for the three games
    assert bool(np.all(res.converged)) and np.all(np.asarray(res.gap) <= 1e-5)
    assert np.all(np.asarray(res.iterations) <= 3000)
    rel = np.asarray(res.objective) / opt - 1
    assert np.all(rel >= -1e-7) and np.all(rel <= 2e-5)  # gap ≤ 1e-5 ⇒ within 1e-5 of the optimum
    assert np.all(np.asarray(res.lower_bound) <= opt * (1 + 1e-7))
    rq = q_ratio * np.abs(vs[:, -1] - vs[:, 0])
    assert np.all(np.abs(np.asarray(res.q)) <= rq[:, None] * (1 + 1e-12))
    assert np.any(np.abs(np.asarray(res.q)) > 0.5 * rq[:, None])  # the noise term is used
    err = matching_error(vs + np.asarray(res.q), res.I_and, res.I_or, relative=True)
    assert float(np.max(err)) < 1e-9


def test_halpern_transform_with_aux_carries_the_operator_state():
    # the operator counts its calls in aux; aux is neither anchored nor part of the residual
    def op(z, aux):
        return 0.5 * (z + 3.0), aux + 1

    opt = halpern_fixed_point(op, aux_init=lambda z: jnp.zeros((), jnp.int32))
    z = jnp.zeros(())
    st = opt.init(z)
    for _ in range(60):
        z, st = opt.step(z, st)
    assert abs(float(z) - 3.0) < 1e-6 and int(st.aux) == 60


def test_halpern_iteration_is_a_pair_of_pure_functions():
    # T = averaged map with fixed point 3: z ↦ (z + 3)/2; (init, step) under jit and lax loops
    opt = halpern_fixed_point(lambda z: 0.5 * (z + 3.0))
    assert isinstance(opt, FixedPointIteration)
    z = jnp.zeros(())
    z, st = jax.lax.fori_loop(0, 60, lambda _, zs: jax.jit(opt.step)(*zs), (z, opt.init(z)))
    assert abs(float(z) - 3.0) < 1e-6
    plain = halpern_fixed_point(lambda z: 0.5 * (z + 3.0), restart_factor=float("inf"))
    z, _ = plain.step(jnp.ones(()), plain.init(jnp.ones(())))
    assert float(z) == 2.0


def test_halpern_honours_the_optax_contract():
    # updates in = the fixed-point step d = T z − z at params z; updates out = the Halpern step
    T = lambda z: {"a": 0.5 * (z["a"] + 3.0), "b": 0.5 * z["b"]}  # noqa: E731  (fixed point a=3, b=0)
    z0 = {"a": jnp.zeros(3), "b": jnp.ones(2)}
    opt = halpern(restart_factor=0.2)
    assert isinstance(opt, optax.GradientTransformation)
    z, st = z0, opt.init(z0)
    anchor, prev, restarts = z0, np.inf, 0
    for _ in range(40):
        d = jax.tree_util.tree_map(jnp.subtract, T(z), z)
        upd, st2 = jax.jit(opt.update)(d, st, z)
        # by hand: restart (anchor ← T z) on sufficient decay (0.2), or on necessary decay (0.8)
        # with a residual that grew since the last step; else the reflected anchored step
        res = float(jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree_util.tree_leaves(d))))
        w = (int(st.k) + 1) / (int(st.k) + 2)
        if res <= 0.2 * float(st.res0) or (res <= 0.8 * float(st.res0) and res > prev):
            want = T(z)
            anchor = want
            restarts += 1
        else:
            want = jax.tree_util.tree_map(lambda t, x, a: w * (2 * t - x) + (1 - w) * a, T(z), z, anchor)
        z = optax.apply_updates(z, upd)
        for key in z:
            np.testing.assert_allclose(z[key], want[key], rtol=0, atol=1e-12)
        assert int(st2.k) == (0 if want is anchor else int(st.k) + 1)
        st, prev = st2, res
    assert restarts >= 2
    assert abs(float(z["a"][0]) - 3.0) < 1e-6 and float(jnp.max(jnp.abs(z["b"]))) < 1e-6
    # composes with other optax transformations (here: a no-op scale) and passes d through at inf
    chained = optax.chain(halpern(), optax.scale(1.0))
    upd, _ = chained.update(d, chained.init(z), z)
    assert jax.tree_util.tree_structure(upd) == jax.tree_util.tree_structure(z)
    plain = halpern(float("inf"))
    upd, _ = plain.update(d, plain.init(z), z)
    assert all(bool(jnp.all(upd[k] == d[k])) for k in d)
    with pytest.raises(ValueError, match="needs params"):
        opt.update(d, opt.init(z))
    with pytest.raises(ValueError, match="restart_factor"):
        halpern(0.0)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="necessary_factor"):
            halpern(necessary_factor=bad)


def test_halpern_necessary_decay_restart():
    # a residual that grows while still below 0.8·r₀ restarts the anchor (r2HPDHG's rule);
    # with necessary_factor=None only the 0.2 sufficient decay does
    z = {"a": jnp.zeros(2)}
    d_of = lambda r: {"a": jnp.array([r, 0.0])}  # noqa: E731
    for nec, want_k in ((0.8, 0), (None, 2)):
        opt = halpern(necessary_factor=nec)
        st = opt.init(z)
        for r in (1.0, 0.5, 0.6):  # first step restarts (r₀ = inf); 0.5 ↓ no restart; 0.6 ↑ ≤ 0.8·1.0
            _, st = opt.update(d_of(r), st, z)
        assert int(st.k) == want_k, (nec, int(st.k))


def test_errors():
    with pytest.raises(ValueError, match="power of two"):
        and_or(np.zeros(6))
    v = np.zeros(8)
    v[5] = np.nan
    with pytest.raises(ValueError, match=r"mask 5 = players \(0, 2\)"):
        and_or(v)
    with pytest.raises(ValueError, match=r"batch index \(1,\), mask 5"):
        and_or(np.stack([np.zeros(8), v]))
    with pytest.raises(ValueError, match="q_ratio"):
        and_or(np.zeros(8), q_ratio=-0.1)
    with pytest.raises(MemoryBudgetError, match="KiB"):
        and_or(np.zeros(2**10), memory_budget=1000)


def _shared_lp(vs, q_ratio=0.02, alpha=0.1):
    d = np.abs(vs[:, -1] - vs[:, 0])
    return lp_shared(vs, alpha, 0.5 * d, q_ratio * d)


def _check_shared(vs, res, gb, q_ratio):
    """Per-model universal matching, the q box and the γ set of [C24]."""
    for i in range(vs.shape[0]):
        err = matching_error(vs[i] + np.asarray(res.q[i]), res.I_and[i], res.I_or[i], relative=True)
        assert float(err) < 1e-9
        assert np.all(np.abs(res.q[i]) <= q_ratio * abs(vs[i, -1] - vs[i, 0]) * (1 + 1e-12) + 1e-15)
    np.testing.assert_array_equal(np.asarray(res.gamma_model[:, 0]), 0.0)
    np.testing.assert_array_equal(np.asarray(res.gamma_shared[0]), 0.0)
    # γ^(i) = γ̄ + γ̂^(i), |γ̂^(i)| ≤ gb_i up to the γ(∅) = 0 shift (2·gb after the shift)
    assert np.all(np.abs(res.gamma_model) <= 2 * gb[:, None] * (1 + 1e-9) + 1e-12)


def test_shared_matches_lp_and_recovers_planted_interaction():
    rng = np.random.default_rng(7)
    n, m = 4, 3
    planted = 0b0110  # AND of players 1 and 2, strong in every model
    ws = 0.05 * rng.normal(size=(m, 2**n))
    ws[:, planted] = [2.0, 1.5, 2.5]
    ws[:, 0] = 0.3
    vs = np.asarray(zeta(ws)) + 0.01 * rng.normal(size=(m, 2**n))
    res = and_or_shared(vs, q_ratio=0.02)
    shared_and, shared_or = shared_salient(res)
    assert res.I_and.shape == (m, 2**n) and shared_and.shape == (2**n,)
    opt = _shared_lp(vs)
    assert bool(res.converged) and float(res.gap) <= 1e-5
    assert abs(float(res.objective) / opt - 1) < 2e-5
    assert float(res.lower_bound) <= opt * (1 + 1e-9)
    assert bool(shared_and[planted])
    assert int(shared_and.sum()) + int(shared_or.sum()) <= 4  # only a few shared sets
    _check_shared(vs, res, 0.5 * np.abs(vs[:, -1] - vs[:, 0]), 0.02)


@pytest.mark.parametrize("q_ratio, alpha", [(0.02, 0.1), (0.0, 0.1), (0.02, 0.0), (0.02, 1.0)])
def test_shared_reaches_the_lp_optimum_at_n6(q_ratio, alpha):
    """Random correlated models at n = 6 (the former PDHG solver stopped at gaps 0.4–1%)."""
    rng = np.random.default_rng(21)
    vs = rng.normal(size=2**6) + 0.5 * rng.normal(size=(3, 2**6))
    res = and_or_shared(vs, q_ratio=q_ratio, alpha=alpha)
    opt = _shared_lp(vs, q_ratio, alpha)
    assert bool(res.converged) and float(res.gap) <= 1e-5
    assert abs(float(res.objective) / opt - 1) < 2e-5
    assert float(res.lower_bound) <= opt * (1 + 1e-9)
    _check_shared(vs, res, 0.5 * np.abs(vs[:, -1] - vs[:, 0]), q_ratio)


def test_shared_batched_jit_vmap_threads_and_errors(monkeypatch):
    import jinter.decomposition as dec

    rng = np.random.default_rng(8)
    vs = rng.normal(size=(3, 2, 2**4))  # 3 models, 2 inputs
    res = and_or_shared(vs, q_ratio=0.02)
    assert res.I_and.shape == vs.shape and res.objective.shape == (2,) and shared_salient(res)[1].shape == (2, 16)
    assert res.gamma_shared.shape == (2, 16) and res.gamma_model.shape == vs.shape
    assert bool(np.all(res.converged))
    for k in range(2):
        assert abs(float(res.objective[k]) / _shared_lp(vs[:, k]) - 1) < 2e-5
        one = and_or_shared(vs[:, k], q_ratio=0.02)
        np.testing.assert_allclose(float(one.objective), float(res.objective[k]), rtol=1e-12)
    again = and_or_shared(vs, q_ratio=0.02)
    for a, b in zip(res, again):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # deterministic
    monkeypatch.setattr(dec, "_host_workers", lambda *args: 1)  # one compiled loop, no threads
    serial = and_or_shared(vs, q_ratio=0.02)
    for a, b in zip(res, serial):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
    jitted = jax.jit(lambda x: and_or_shared(x, q_ratio=0.02).objective)(jnp.asarray(vs))
    np.testing.assert_allclose(jitted, res.objective, rtol=1e-12)
    vmapped = jax.vmap(lambda x: and_or_shared(x, q_ratio=0.02).objective, in_axes=1)(jnp.asarray(vs))
    np.testing.assert_allclose(vmapped, res.objective, rtol=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        and_or_shared([np.zeros(8), np.zeros(16)])
    with pytest.raises(ValueError, match="gamma_bound"):
        and_or_shared(vs, gamma_bound=np.ones(4))
    with pytest.raises(ValueError, match="alpha"):
        and_or_shared(vs, alpha=1.5)
    with pytest.raises(ValueError, match="m models"):
        and_or_shared(np.zeros(8))
    with pytest.raises(ValueError, match="q_ratio"):
        and_or_shared(vs, q_ratio=-0.1)
    bad = vs.copy()
    bad[1, 0, 3] = np.inf
    with pytest.raises(ValueError, match="mask 3"):
        and_or_shared(bad)
    with pytest.raises(MemoryBudgetError, match="and_or_shared"):
        and_or_shared(vs, memory_budget=1000)


def test_shared_float32_path():
    vs = np.random.default_rng(22).normal(size=(3, 2, 2**7))  # n = 7: float32 stalls near 1e-4
    r64 = and_or_shared(vs)
    r32 = and_or_shared(vs.astype(np.float32))  # default tol 1e-3 in float32
    assert r32.I_and.dtype == jnp.float32 and bool(np.all(r32.converged)) and np.all(r32.gap <= 1e-3)
    # stated float32 tolerance: objective within 1e-3 relative of the float64 optimum
    np.testing.assert_allclose(np.asarray(r32.objective, np.float64), r64.objective, rtol=1e-3)


def test_shared_degenerate_bounds_and_zero_optimum():
    """Infinite, huge, zero and mixed γ̂ bounds, inputs without variation and a zero optimum:
    no NaN, certified, at the LP optimum (an infinite bound solved as 1e6 by the LP)."""
    rng = np.random.default_rng(23)
    vs = rng.normal(size=(3, 2**4))
    d = np.abs(vs[:, -1] - vs[:, 0])
    for gb in ([0.0, np.inf, 1.0], [np.inf] * 3, [1e8] * 3, [1e-3, 1e6, 1.0], 0.0):
        res = and_or_shared(vs, gamma_bound=gb)
        assert bool(res.converged) and float(res.gap) <= 1e-5, gb
        opt = lp_shared(vs, 0.1, np.minimum(np.broadcast_to(gb, (3,)), 1e6), 0.02 * d)
        assert abs(float(res.objective) / opt - 1) < 2e-5, gb
        assert float(res.lower_bound) <= opt * (1 + 1e-9)
    # a dead input (all outputs equal) with a dataset-level bound; a batch mixing it with a live one
    dead = np.stack([np.zeros((2, 8)), rng.normal(size=(2, 8))], axis=1)  # (2 models, 2 inputs, 8)
    res = and_or_shared(dead, gamma_bound=[10.0, 10.0])
    finite = [x for k, x in res._asdict().items() if np.asarray(x).dtype.kind == "f" and k != "canonical_distance"]
    assert all(np.all(np.isfinite(np.asarray(x))) for x in finite)  # canonical_distance: inf, not canonical
    assert bool(np.all(res.converged)) and float(res.objective[0]) == 0.0
    # zero optimum (q absorbs everything): certified at once, not after max_iter iterations
    res = and_or_shared(np.array([[0.0, 1.0]] * 4), q_ratio=0.5, alpha=0.0)
    assert bool(res.converged) and float(res.objective) < 1e-12 and int(res.iterations) <= 100
    one = and_or(np.array([0.0, 1.0]), q_ratio=0.5)
    assert bool(one.converged) and float(one.objective) < 1e-12 and int(one.iterations) <= 100
    # a scalar bound, and a traced one under jit
    np.testing.assert_allclose(float(and_or_shared(vs, gamma_bound=0.3).objective),
                               float(and_or_shared(vs, gamma_bound=np.full(3, 0.3)).objective), rtol=1e-12)
    jitted = jax.jit(lambda gb: and_or_shared(vs, gamma_bound=gb).objective)(jnp.full(3, 0.3))
    np.testing.assert_allclose(float(jitted), float(and_or_shared(vs, gamma_bound=0.3).objective), rtol=1e-12)
    for kw in (dict(check_every=0), dict(max_iter=-1)):
        with pytest.raises(ValueError, match=f"^{next(iter(kw))} must be an integer"):
            and_or_shared(vs, **kw)
        with pytest.raises(ValueError, match=f"^{next(iter(kw))} must be an integer"):
            and_or(vs[0], **kw)


@settings(max_examples=10, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=4, max_size=4),
    st.lists(st.floats(0, 2), min_size=4, max_size=4),
)
def test_projection_on_the_shared_gamma_set(p, b):
    """Exact projection on {p : ∃g, |p_i − g| ≤ b_i} against a dense search over g (property)."""
    from jinter.decomposition import _proj_shared_box

    p, b = np.asarray(p), np.asarray(b)
    proj, g = _proj_shared_box(jnp.asarray(p)[:, None], jnp.asarray(b)[:, None])
    proj = np.asarray(proj)[:, 0]
    assert np.all(np.abs(proj - float(g[0])) <= b + 1e-12)  # feasible, with the returned g
    grid = np.linspace(p.min() - 1, p.max() + 1, 20001)
    dist = np.sum(np.maximum(np.abs(p[None] - grid[:, None]) - b[None], 0.0) ** 2, axis=1)
    assert np.sum((proj - p) ** 2) <= dist.min() + 1e-12
    assert np.sum((proj - p) ** 2) >= dist.min() - 2e-3 * (1 + dist.min())  # grid resolution


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.0, 0.05]))
def test_shared_certificate_valid_for_any_iterate(seed, q_ratio):
    """After only 50 iterations the shared bound is still valid: lower_bound ≤ LP optimum ≤ objective."""
    vs = np.random.default_rng(seed).normal(size=(2, 8))
    res = and_or_shared(vs, q_ratio=q_ratio, max_iter=50, check_every=50)
    opt = _shared_lp(vs, q_ratio)
    scale = 1 + np.sum(np.abs(vs))
    assert float(res.lower_bound) <= opt + 1e-9 * scale
    assert float(res.objective) >= opt - 1e-9 * scale


@settings(max_examples=8, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=8, max_size=8), st.sampled_from([0.0, 0.1]))
def test_certificate_valid_for_any_iterate(values, q_ratio):
    """After only a few iterations the dual bound is still a valid lower bound (property)."""
    v = np.asarray(values)
    res = and_or(v, q_ratio=q_ratio, max_iter=50, check_every=50)
    opt = lp_optimum(v, q_ratio * abs(v[-1] - v[0]))
    scale = 1 + np.sum(np.abs(v))
    assert float(res.lower_bound) <= opt + 1e-9 * scale
    assert float(res.objective) >= opt - 1e-9 * scale
    assert float(matching_error(v + np.asarray(res.q), res.I_and, res.I_or)) <= 1e-9 * scale


def test_default_tolerance_follows_dtype():
    v = np.random.default_rng(11).normal(size=2**5)
    r32 = and_or(v.astype(np.float32), q_ratio=0.0)  # default tol 1e-3 in float32: reachable
    assert bool(r32.converged) and float(r32.gap) <= 1e-3
    v10 = np.random.default_rng(1).normal(size=2**10).astype(np.float32)  # stalled at 2e-4 with tol 1e-4
    r10 = and_or(v10)
    assert bool(r10.converged) and int(r10.iterations) < 10_000
    r64 = and_or(v, q_ratio=0.0)  # default tol 1e-5 in float64
    assert bool(r64.converged) and float(r64.gap) <= 1e-5


def test_host_threads_split_the_batch_without_changing_results(monkeypatch):
    import jinter.decomposition as dec

    vs = np.random.default_rng(12).normal(size=(5, 2**5))
    assert dec._host_workers(jnp.asarray(vs), 5, 1) == min(5, len(os.sched_getaffinity(0)))
    threaded = and_or(vs, q_ratio=0.02)
    monkeypatch.setattr(dec, "_host_workers", lambda *args: 1)
    serial = and_or(vs, q_ratio=0.02)
    for a, b in zip(threaded, serial):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------
# canonical optimum, status, solver options
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("q_ratio", [0.0, 0.02])
@pytest.mark.parametrize("n", [3, 5, 6])
def test_canonical_optimum_is_the_least_norm_qp(n, q_ratio):
    """canonical=True returns the least ‖γ‖² + ‖q‖² optimum: every interaction within 1e-4·max|I|
    of a least-norm QP over the LP's optimal set (HiGHS, then Clarabel), the same salient sets;
    the default (arbitrary) optimum differs on these games."""
    pytest.importorskip("cvxpy")
    from oracles import least_norm_optimum

    vs = np.random.default_rng(100 + n).normal(size=(2, 2**n))
    res = and_or(vs, q_ratio=q_ratio, canonical=True)
    assert np.all(np.asarray(res.status) == decomposition.STATUS_CANONICAL), res.messages()
    assert np.all(np.asarray(res.canonical)) and np.all(np.asarray(res.converged))
    plain = and_or(vs, q_ratio=q_ratio)
    assert np.all(np.asarray(plain.status) == decomposition.STATUS_ANY_OPTIMUM)
    assert not np.any(np.asarray(plain.canonical))
    far = 0.0
    for k, v in enumerate(vs):
        ref = least_norm_optimum(v, q_ratio)
        scale = max(np.abs(ref["I_and"][1:]).max(), np.abs(ref["I_or"]).max())
        np.testing.assert_allclose(np.asarray(res.I_and[k])[1:], ref["I_and"][1:], atol=1e-4 * scale, rtol=0)
        np.testing.assert_allclose(np.asarray(res.I_or[k]), ref["I_or"], atol=1e-4 * scale, rtol=0)
        np.testing.assert_allclose(float(res.objective[k]), ref["objective"], rtol=1e-5)
        tau = 0.05 * scale
        for got, want in ((res.I_and[k], ref["I_and"]), (res.I_or[k], ref["I_or"])):
            sal = np.abs(np.asarray(got))[1:] >= tau
            # equal salient sets (an entry within the tolerance of τ may fall either side)
            near = np.abs(np.abs(want[1:]) - tau) <= 1e-4 * scale
            np.testing.assert_array_equal(sal[~near], (np.abs(want[1:]) >= tau)[~near])
        # the certified distance bound holds
        dist = np.sqrt(np.sum((np.asarray(res.q[k]) - ref["q"]) ** 2))
        assert dist <= float(res.canonical_distance[k]) + 1e-6 * scale
        far = max(far, np.abs(np.asarray(plain.I_and[k]) - ref["I_and"])[1:].max() / scale)
    assert far > 1e-3  # the test would catch an arbitrary optimum


@pytest.mark.parametrize("q_ratio", [0.0, 0.02])
def test_canonical_optimum_does_not_depend_on_the_start(q_ratio):
    v = np.random.default_rng(7).normal(size=2**5)
    a = and_or(v, q_ratio=q_ratio, canonical=True)
    starts = [a, (np.random.default_rng(1).normal(size=2**5), 0.0),
              (np.zeros(2**5), np.full(2**5, 0.01 * abs(v[-1] - v[0])))]
    scale = float(np.abs(np.asarray(a.I_and))[1:].max())
    for start in starts:
        b = and_or(v, q_ratio=q_ratio, canonical=True, warm_start=start)
        assert int(b.status) == decomposition.STATUS_CANONICAL
        np.testing.assert_allclose(np.asarray(b.I_and), np.asarray(a.I_and), atol=1e-6 * scale)
        np.testing.assert_allclose(np.asarray(b.I_or), np.asarray(a.I_or), atol=1e-6 * scale)
    # a warm start from the optimum itself needs no more LP iterations than a cold start
    warm = and_or(v, q_ratio=q_ratio, warm_start=and_or(v, q_ratio=q_ratio))
    assert int(warm.iterations) <= int(and_or(v, q_ratio=q_ratio).iterations)


def _tikhonov_game(v, q_ratio):
    """The scaled data of one game's canonical phase, and the point of its graph at s = t = 0."""
    ca, co, scale, free = decomposition._split_data(jnp.asarray(v))
    scale = scale[0]
    rq = q_ratio * abs(v[-1] - v[0]) / scale
    d = decomposition._TikhonovGame(
        ca, co, free, rq, decomposition._rounding_floor(jnp.asarray(v)) / scale, decomposition._graph_projection(ca, co)
    )
    return d, (jnp.zeros_like(ca), jnp.zeros_like(ca), ca, co)


def _stage(d, z, eps, gtol, above=None, budget=200_000):
    eps = jnp.asarray(eps)
    return decomposition._tikhonov_stage(d, z, eps, jnp.asarray(budget), jnp.asarray(gtol), 50, above)


def test_tikhonov_stage_hands_its_dual_to_the_next():
    """A stage returns its iterate at penalty 1 (z = x + y): started again from it, at any
    starting penalty, the same regularized problem is solved at once (its dual survives)."""
    v = np.random.default_rng(21).normal(size=2**5)
    d, z0 = _tikhonov_game(v, 0.02)
    big, dual, _, it, z = _stage(d, z0, 0.05, 1e-9)
    assert float(big - dual) <= 1e-9 * float(big) and int(it) > 200
    for eps in (0.05, 0.05 * 1.000001):  # the same ε, and one that starts at another penalty ρ₀
        big2, dual2, _, it2, _ = _stage(d, z, eps, 1e-9)
        assert float(big2 - dual2) <= 1e-9 * float(big2)
        assert int(it2) <= 50, int(it2)  # one check: the carried (x, y) is already optimal
    assert float(abs(big2 - big)) <= 1e-8 * float(big)


def test_tikhonov_stage_gives_up_only_when_f_of_the_minimizer_is_proven_above():
    v = np.random.default_rng(22).normal(size=2**5)
    d, z0 = _tikhonov_game(v, 0.02)
    eps = 0.05
    big, dual, x, it, _ = _stage(d, z0, eps, 1e-10)
    f_min = float(d.cost(*x))  # F(x_ε), to the stage's accuracy
    # a level above F(x_ε): never proven exceeded, the stage runs to its accuracy
    b1, d1, _, it1, _ = _stage(d, z0, eps, 1e-10, above=jnp.asarray(f_min * (1 + 1e-6)))
    assert int(it1) == int(it) and float(b1 - d1) <= 1e-10 * float(b1)
    # a level clearly below it: the proof comes early, long before the gap is closed
    b2, d2, x2, it2, _ = _stage(d, z0, eps, 1e-10, above=jnp.asarray(0.9 * f_min))
    assert int(it2) < int(it) / 2
    s, t = x2
    norm = float(jnp.sqrt(jnp.sum((0.5 * (s + t)) ** 2) + jnp.sum((s - t) ** 2)))
    delta = np.sqrt(2 * max(float(b2 - d2), 0.0) / eps)
    assert float(d2) - 0.5 * eps * (norm + delta) ** 2 > 0.9 * f_min  # the bound it stopped on


def test_coarse_stage_may_not_spend_the_whole_canonical_budget():
    """A stage that never converges (here: one that spends every iteration it is given and
    stays far from the optimum) gets at most canonical_max_iter // 8 in its coarse solve, so
    the smaller ε still get their turn."""
    budgets = []

    def stage(z, eps, budget, gtol, above=None):
        jax.debug.callback(lambda b: budgets.append(int(b)), budget)
        return jnp.ones(()), jnp.zeros(()), (jnp.ones(4),), budget, z

    max_iter = 8000
    x0 = (jnp.zeros(4),)
    _, acc, eps, _, it = decomposition._tikhonov_continuation(
        stage, lambda x: jnp.sum(x), x0, x0, jnp.zeros(()), jnp.zeros(()), 1e-5, max_iter, 50
    )
    assert not bool(acc) and int(it) == max_iter
    assert budgets == [max_iter // decomposition._COARSE_DIV] * decomposition._COARSE_DIV
    assert float(eps) < 0.25**7  # every ε was tried


def test_canonical_constant_and_tiny_games():
    for v in (np.full(16, 2.5), np.zeros(16), 1e-300 * np.random.default_rng(0).normal(size=16)):  # one shape: one compile
        res = and_or(v, canonical=True)
        assert int(res.status) == decomposition.STATUS_CANONICAL, res.messages()
        assert np.all(np.isfinite(np.asarray(res.I_and))) and np.all(np.isfinite(np.asarray(res.gamma)))


@pytest.mark.parametrize("n, m, q_ratio", [(6, 3, 0.0), (6, 2, 0.02), (5, 3, 0.02)])
def test_shared_canonical_optimum_is_the_least_norm_qp(n, m, q_ratio):
    """and_or_shared(canonical=True) returns the least ‖γ̄‖² + Σ_i ‖γ̂^(i)‖² + ‖q^(i)‖² optimum
    (γ̄(∅) = 0): every interaction within 1e-4·max|I| of a least-norm QP over the shared LP's
    optimal set (HiGHS, then Clarabel), the same shared salient sets, γ̄ and the (shifted) γ̂ of
    the QP; the default (arbitrary) optimum differs."""
    pytest.importorskip("cvxpy")
    from oracles import least_norm_shared

    rng = np.random.default_rng(300 + 10 * n + m)
    vs = rng.normal(size=2**n) + 0.5 * rng.normal(size=(m, 2**n))
    res = and_or_shared(vs, q_ratio=q_ratio, canonical=True)
    assert int(res.status) == decomposition.STATUS_CANONICAL, res.messages()
    assert bool(res.canonical) and bool(res.converged) and float(res.canonical_eps) > 0
    plain = and_or_shared(vs, q_ratio=q_ratio)
    assert int(plain.status) == decomposition.STATUS_ANY_OPTIMUM and not bool(plain.canonical)
    ref = least_norm_shared(vs, q_ratio)
    scale = max(np.abs(ref["I_and"][:, 1:]).max(), np.abs(ref["I_or"]).max())
    tol = dict(atol=1e-4 * scale, rtol=0)
    np.testing.assert_allclose(np.asarray(res.I_and)[:, 1:], ref["I_and"][:, 1:], **tol)
    np.testing.assert_allclose(np.asarray(res.I_or), ref["I_or"], **tol)
    np.testing.assert_allclose(np.asarray(res.q), ref["q"], **tol)
    np.testing.assert_allclose(np.asarray(res.gamma_shared), ref["gamma_shared"], **tol)
    # the reported γ̂ is the canonical one shifted to γ̂(∅) = 0 (the convention of every result)
    np.testing.assert_allclose(np.asarray(res.gamma_model), ref["gamma_model"] - ref["gamma_model"][:, :1], **tol)
    np.testing.assert_allclose(float(res.objective), ref["objective"], rtol=1e-8)
    # equal shared salient sets (a set within the tolerance of some model's τ may fall either side)
    want_and, want_or, tau = shared_salient_sets(ref["I_and"], ref["I_or"])
    got_and, got_or = shared_salient(res)
    for got, want, part in ((got_and, want_and, ref["I_and"]), (got_or, want_or, ref["I_or"])):
        near = np.any(np.abs(np.abs(part[:, 1:]) - tau[:, None]) <= 2e-4 * scale, axis=0)
        np.testing.assert_array_equal(np.asarray(got)[1:][~near], want[~near])
    # the certified distance bound holds (on the parts of x the report leaves unshifted)
    dist = np.sqrt(np.sum((np.asarray(res.q) - ref["q"]) ** 2) + np.sum((np.asarray(res.gamma_shared) - ref["gamma_shared"]) ** 2))
    assert dist <= float(res.canonical_distance) + 1e-6 * scale
    _check_shared(vs, res, 0.5 * np.abs(vs[:, -1] - vs[:, 0]), q_ratio)
    far = max(np.abs(np.asarray(plain.I_and) - ref["I_and"])[:, 1:].max(), np.abs(np.asarray(plain.I_or) - ref["I_or"]).max())
    assert far > 1e-3 * scale  # the test would catch an arbitrary optimum


def test_shared_canonical_coarse_stages_adapt_and_give_up():
    """The shared coarse stages adapt their penalty and stop once F(x_ε) is proven too high (as
    the single game's): this input is verified with canonical_max_iter = 20k (it is from 15k;
    with a fixed penalty throughout it took 30k), at the interactions of the default budget."""
    rng = np.random.default_rng(300 + 10 * 6 + 3)
    vs = rng.normal(size=2**6) + 0.5 * rng.normal(size=(3, 2**6))
    full = and_or_shared(vs, q_ratio=0.0, canonical=True)
    capped = and_or_shared(vs, q_ratio=0.0, canonical=True, canonical_max_iter=20_000)
    assert int(capped.status) == decomposition.STATUS_CANONICAL, capped.messages()
    scale = float(np.abs(np.asarray(full.I_and))[:, 1:].max())
    np.testing.assert_allclose(np.asarray(capped.I_and), np.asarray(full.I_and), atol=1e-6 * scale)
    np.testing.assert_allclose(np.asarray(capped.I_or), np.asarray(full.I_or), atol=1e-6 * scale)


def test_shared_canonical_status_says_when_it_is_not_verified():
    """An unverified or an uncertified canonical solve says so in ``status``, never silently
    (same shapes and options as a case above: no new compilation but for ``max_iter``)."""
    rng = np.random.default_rng(300 + 10 * 6 + 2)
    vs = rng.normal(size=2**6) + 0.5 * rng.normal(size=(2, 2**6))
    short = and_or_shared(vs, q_ratio=0.02, canonical=True, canonical_max_iter=50)  # no ε verified in 50
    assert int(short.status) == decomposition.STATUS_NOT_CANONICAL and bool(short.converged)
    assert not bool(short.canonical) and float(short.canonical_eps) == 0 and np.isinf(float(short.canonical_distance))
    assert "NOT verified canonical" in short.messages()[0] and "canonical_max_iter" in short.messages()[0]
    plain = and_or_shared(vs, q_ratio=0.02)
    assert plain.messages() == [decomposition.STATUS_MESSAGES[decomposition.STATUS_ANY_OPTIMUM]]
    np.testing.assert_allclose(float(short.objective), float(plain.objective), rtol=1e-5)  # the LP optimum
    _check_shared(vs, short, 0.5 * np.abs(vs[:, -1] - vs[:, 0]), 0.02)
    tiny = np.random.default_rng(4).normal(size=(2, 3, 4))  # 2 models, 3 inputs, n = 2
    bad = and_or_shared(tiny, canonical=True, max_iter=1, check_every=1)  # inputs 0 and 1 not certified
    uncertified = np.asarray(bad.status) == decomposition.STATUS_UNCERTIFIED
    assert np.array_equal(uncertified, ~np.asarray(bad.converged)) and uncertified[:2].all(), bad.messages()
    assert not np.any(np.asarray(bad.canonical)[uncertified]) and bad.status.shape == bad.canonical_distance.shape == (3,)
    assert all("NOT certified" in msg for msg in np.asarray(bad.messages())[uncertified])
    with pytest.raises(ValueError, match="^canonical_max_iter must be an integer"):
        and_or_shared(vs, canonical=True, canonical_max_iter=-1)


@pytest.mark.parametrize("q_ratio", [0.5, 2.0, 5.0])
def test_large_noise_boxes_are_certified(q_ratio):
    """A large q box makes the optimum (near) 0: the bound 0 certifies it (before: gap 2.3 at
    max_iter on n = 4, q_ratio = 5)."""
    vs = np.random.default_rng(0).normal(size=(2, 16))
    res = and_or(vs, q_ratio=q_ratio)
    assert np.all(np.asarray(res.converged)), np.asarray(res.gap)
    assert np.all(np.asarray(res.lower_bound) >= 0)


def test_status_says_why_a_game_is_not_certified():
    v = np.random.default_rng(3).normal(size=2**7)
    res = and_or(v, max_iter=50, check_every=50)
    assert int(res.status) == decomposition.STATUS_UNCERTIFIED and not bool(res.converged)
    assert "NOT certified" in res.messages()[0] and "max_iter" in res.messages()[0]
    ok = and_or(v)
    assert ok.messages() == [decomposition.STATUS_MESSAGES[decomposition.STATUS_ANY_OPTIMUM]]


@pytest.mark.parametrize("option,rule", [("tol", r"in \(0, 1\)"), ("rho", "> 0")])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "1e-5", True])
def test_nonsense_solver_options_are_refused(option, rule, bad):
    with pytest.raises(ValueError, match=f"{option} must be a finite number {rule}"):
        and_or(np.zeros(8), **{option: bad})
    with pytest.raises(ValueError, match=f"{option} must be a finite number {rule}"):
        and_or_shared(np.zeros((2, 8)), **{option: bad})


@pytest.mark.parametrize("option,bad", [
    ("max_iter", 2**40), ("max_iter", 1e20), ("max_iter", 1.5), ("max_iter", "100"), ("max_iter", True),
    ("max_iter", np.nan), ("check_every", 2**31), ("check_every", 2.5), ("check_every", True), ("chunk", "2"),
    ("chunk", 2.5), ("chunk", True), ("canonical_max_iter", 2**40), ("canonical_max_iter", -1), ("q_ratio", True),
    ("q_ratio", -0.1), ("tol", 1.0), ("tol", 2.0), ("canonical", "yes"), ("canonical", 1), ("memory_budget", "abc"),
    ("memory_budget", True), ("memory_budget", 1.5),
])
def test_every_solver_option_is_checked_before_the_solve(option, bad):
    """A count past the int32 loop counters, a fraction, a bool or a string is refused, naming
    the option (before: 2**40 iterations wrapped to 0, chunk='2' ran), in and_or,
    and_or_shared (where it has the option) and AndOrOptions alike."""
    with pytest.raises(ValueError, match=f"^{option} must be"):
        and_or(np.zeros(8), **{option: bad})
    if option != "chunk":
        with pytest.raises(ValueError, match=f"^{option} must be"):
            and_or_shared(np.zeros((2, 8)), **{option: bad})
    with pytest.raises(ValueError, match=f"^AndOrOptions.{option} must be"):
        decomposition.AndOrOptions(**{option: bad})


def test_numpy_and_jax_scalars_are_options():
    v = np.random.default_rng(0).normal(size=8)
    ref = and_or(v, q_ratio=0.02, tol=1e-6)
    for q in (np.float64(0.02), jnp.asarray(0.02, jnp.float64)):
        res = and_or(v, q_ratio=q, tol=np.float64(1e-6), max_iter=np.int64(100_000))
        assert float(res.objective) == float(ref.objective)
    with pytest.raises(ValueError, match="alpha must be a finite number in \\[0, 1\\]"):
        and_or_shared(np.zeros((2, 8)), alpha=True)


def test_a_canonical_request_needs_canonical_iterations():
    with pytest.raises(ValueError, match="canonical_max_iter must be ≥ 1 with canonical=True"):
        and_or(np.arange(8.0) ** 2, canonical=True, canonical_max_iter=0)
    assert not bool(and_or(np.arange(8.0) ** 2, canonical_max_iter=0).canonical)  # no request: fine


def test_complex_values_are_refused():
    v = np.random.default_rng(0).normal(size=8)
    with pytest.raises(TypeError, match="v is complex"):
        and_or(v + 1j)
    with pytest.raises(TypeError, match="vs is complex"):
        and_or_shared(np.stack([v, v]) + 1j)
    with pytest.raises(TypeError, match="warm_start gamma is complex"):
        and_or(v, warm_start=(np.zeros(8) + 1j, np.zeros(8)))


def test_shared_needs_a_model():
    with pytest.raises(ValueError, match="m ≥ 1"):
        and_or_shared(np.zeros((0, 8)))


def test_bad_warm_start_is_refused():
    with pytest.raises(ValueError, match="warm_start gamma has shape"):
        and_or(np.zeros(8), warm_start=(np.zeros(4), 0.0))
    with pytest.raises(ValueError, match="warm_start must be"):
        and_or(np.zeros(8), warm_start="zeros")
    with pytest.raises(ValueError, match="non-finite"):
        and_or(np.zeros(8), warm_start=(np.full(8, np.nan), 0.0))


_FOUR_DEVICES = """
import os, sys
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np, jinter
assert jax.device_count() == 4, jax.devices()
vs = np.random.default_rng(0).normal(size=(7, 16))  # 7 games: not a multiple of 4 (padded)
ref = jinter.and_or(vs, canonical=True)              # one device, host threads
paths = {
    "devices=all": jinter.and_or(vs, canonical=True, devices="all"),
    "devices=all, chunk=3 (lock-step)": jinter.and_or(vs, canonical=True, devices="all", chunk=3),
}
mesh = jax.sharding.Mesh(np.array(jax.devices()), ("s",))
x = jax.device_put(vs[:4], jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("s")))
paths["input sharded over 4 devices"] = jinter.and_or(x, canonical=True)
for name, res in paths.items():
    k = len(res.objective)
    assert res.I_and.shape == (k, 16), name
    assert np.all(np.asarray(res.status) == 0), (name, res.messages())
    for f in ("I_and", "I_or", "q"):
        np.testing.assert_allclose(np.asarray(getattr(res, f)), np.asarray(getattr(ref, f))[:k], atol=1e-7, err_msg=name)
d3 = jax.devices()[3]  # one device asked for: solved there (it had stayed on device 0)
one = jinter.and_or(vs[:2], devices=[d3])
assert one.I_and.devices() == {d3} and one.status.devices() == {d3}, one.I_and.devices()
np.testing.assert_allclose(np.asarray(one.I_and), np.asarray(jinter.and_or(vs[:2]).I_and), atol=1e-12)
print("ok")
"""


def test_batches_sharded_over_four_devices_give_the_same_interactions():
    """Every batch path (host threads, sharded over 4 forced host devices, lock-step chunks,
    an input already sharded) gives the same canonical interactions."""
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _FOUR_DEVICES], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_shared_gamma_bound_must_be_numbers():
    vs = np.random.default_rng(0).normal(size=(2, 16))
    for bad in ("0", True, 1 + 0j):
        with pytest.raises(TypeError, match="gamma_bound must hold real numbers"):
            and_or_shared(vs, gamma_bound=bad)


def test_bad_devices_option():
    with pytest.raises(ValueError, match="devices must be"):
        and_or(np.zeros((2, 8)), devices="gpu")
    with pytest.raises(ValueError, match="devices must be"):
        and_or(np.zeros((2, 8)), devices=[])
    with pytest.raises(ValueError, match="chunk must be"):
        and_or(np.zeros((2, 8)), chunk=0)


def _polish_problem(seed, n=6, q_ratio=0.02):
    v = np.random.default_rng(seed).normal(size=2**n)
    rq = q_ratio * abs(v[-1] - v[0])
    return v, rq, lp_optimum(v, rq, full=True)


def _dual_bound(v, rq, y):
    """The solver's bound at ``y`` rescaled to feasibility (numpy, for the tests)."""
    k = lambda x, f: np.asarray(decomposition.kron_apply(jnp.asarray(x), f))  # noqa: E731
    c = -k(v, decomposition._L)
    c[0] = 0.0
    y = np.array(y)
    y[0] = 0.0
    y = y / max(1.0, np.max(np.abs(y)), np.max(np.abs(k(y, decomposition._KT))))
    return abs(y @ c) - rq * np.sum(np.abs(k(y, decomposition._L)))


@pytest.mark.parametrize("seed", [0, 1])
def test_polish_on_the_true_active_set_is_exact(seed):
    """On the LP vertex's own support and tight rows the polish returns that vertex and a dual
    point whose certified bound is the optimum."""
    from jinter.transforms import or_mobius, or_zeta

    v, rq, (opt, x) = _polish_problem(seed)
    N = v.size
    oand, q = x[:N], x[N : 2 * N]
    ia, io = np.array(mobius(oand)), np.array(or_mobius(v + q - oand))
    single = decomposition._singletons(N)
    ia[single] += io[single]
    io[single] = 0.0
    io[0] = 0.0
    ua = np.where(np.abs(ia) > 1e-9, ia, 0.0)
    wo = np.where(np.abs(io) > 1e-9, io, 0.0)
    beyond = np.where(np.abs(np.abs(q) - rq) <= 1e-9, 1.5 * q, 0.0)  # tight rows: reflected past the box
    guess = decomposition._active_set_guess(jnp.asarray(ua), jnp.asarray(wo), jnp.asarray(beyond), jnp.asarray(rq))
    a, o, y = (np.asarray(t) for t in decomposition._polish_active_set(jnp.asarray(v), jnp.asarray(rq), *guess))
    np.testing.assert_allclose(a[1:], ia[1:], atol=1e-9)
    np.testing.assert_allclose(o, io, atol=1e-9)
    assert np.max(np.abs(np.asarray(zeta(a) + or_zeta(o)) - v)) <= rq * (1 + 1e-9)
    assert abs(np.sum(np.abs(a[1:])) + np.sum(np.abs(o)) - opt) <= 1e-9 * opt
    assert abs(_dual_bound(v, rq, y) - opt) <= 1e-8 * opt


def _solve_with_polish(v, q_ratio, polish_every=1, max_iter=100_000):
    solve = jax.jit(lambda x: decomposition._solve_single(x, q_ratio, 1e-5, max_iter, 50, (50.0, False), True, None, polish_every))
    u, q, lb, it = solve(jnp.asarray(v))
    i_and, i_or, _ = decomposition._assemble(jnp.asarray(v)[None], u[None], q[None])
    p = float(np.sum(np.abs(i_and[0, 1:])) + np.sum(np.abs(i_or[0, 1:])))
    return p, float(lb), int(it), np.asarray(q)


@pytest.mark.parametrize("seed", [2, 3])
def test_polish_stage_gives_a_certified_lp_optimum(seed):
    v, rq, (opt, _) = _polish_problem(seed, n=7)
    p, lb, it, q = _solve_with_polish(v, 0.02)
    p0, lb0, it0, _ = _solve_with_polish(v, 0.02, polish_every=0)
    assert (p - lb) <= 1e-5 * p and lb <= opt * (1 + 1e-9) and p >= opt * (1 - 1e-9)
    assert abs(p / opt - 1) <= 1e-5 and np.all(np.abs(q) <= rq * (1 + 1e-12))
    assert it <= it0  # an extra candidate can only stop the loop earlier


def test_polish_with_a_wrong_active_set_falls_back_safely(monkeypatch):
    """A nonsense support / row guess gives candidates that the certificate rejects: the loop
    goes on iterating and certifies the LP optimum as without the polish."""
    v, rq, (opt, _) = _polish_problem(4, n=6)
    rng = np.random.default_rng(0)
    N = v.size

    def wrong(ua, wo, rq_ref, rq_):
        cols = jnp.asarray(rng.permutation(2 * N))
        rows = jnp.asarray(rng.permutation(N))
        return cols, jnp.ones(2 * N), rows, -jnp.ones(N), jnp.asarray(N // 3), jnp.asarray(N // 2)

    monkeypatch.setattr(decomposition, "_active_set_guess", wrong)
    p, lb, it, q = _solve_with_polish(v, 0.02)
    assert (p - lb) <= 1e-5 * p and lb <= opt * (1 + 1e-9) and abs(p / opt - 1) <= 1e-5
    # and the candidates themselves are valid: a bound below the optimum, an objective above
    guess = wrong(None, None, None, None)
    a, o, y = decomposition._polish_active_set(jnp.asarray(v), jnp.asarray(rq), *guess)
    assert _dual_bound(v, rq, np.nan_to_num(np.asarray(y))) <= opt * (1 + 1e-9)


def _wide_range_game(rng, n, weights):
    """AND/OR terms of orders 1–4 with the given weights (no noise): ``zeta(I_and) + or_zeta(I_or)``."""
    i_and, i_or = np.zeros(2**n), np.zeros(2**n)
    for j, w in enumerate(weights):
        mask = int(sum(1 << int(p) for p in rng.choice(n, size=int(rng.integers(1, 5)), replace=False)))
        (i_and if j % 2 == 0 else i_or)[mask] += w
    return np.asarray(zeta(i_and)) + np.asarray(or_zeta(i_or))


@pytest.mark.parametrize("q_ratio", [0.0, 0.02])
def test_adaptive_penalty_certifies_dynamic_range_games(q_ratio):
    """Terms spread over 1e-3 … 1e3: the default (adaptive ρ) certifies them and reaches the LP
    optimum; a fixed ``rho`` is honoured (same answer, its own iteration count)."""
    rng = np.random.default_rng(5)
    games = np.stack([_wide_range_game(rng, 8, rng.choice([-1.0, 1.0], 8) * np.logspace(-3, 3, 8)) for _ in range(2)])
    res = and_or(games, q_ratio=q_ratio)
    fixed = and_or(games, q_ratio=q_ratio, rho=40.0, max_iter=200_000)
    assert bool(np.all(res.converged)) and bool(np.all(fixed.converged))
    for k, v in enumerate(games):
        lp = lp_optimum(v, q_ratio * abs(v[-1] - v[0]))
        assert abs(float(res.objective[k]) - lp) <= 1e-5 * lp
        assert abs(float(fixed.objective[k]) - lp) <= 1e-5 * lp
    assert not np.array_equal(np.asarray(res.iterations), np.asarray(fixed.iterations))


@pytest.mark.parametrize("kind", ["gaussian", "planted"])
def test_both_q_splittings_certify_the_same_optimum(kind, monkeypatch):
    """The exact graph splitting (n ≤ _GRAPH_MAX_N) and the CG splitting (above) certify the same LP
    optimum, and each stays within its certified bounds (q in its box)."""
    rng = np.random.default_rng(11)
    n = 7
    v = rng.normal(size=2**n)
    if kind == "planted":
        v = np.asarray(zeta(jnp.asarray(np.where(rng.random(2**n) < 0.05, rng.normal(size=2**n), 0.0))))
        v = v + 0.02 * abs(v[-1] - v[0]) * rng.normal(size=2**n)
    out = {}
    for name, cap in (("graph", n), ("cg", n - 1)):
        monkeypatch.setattr(decomposition, "_GRAPH_MAX_N", cap)
        solve = jax.jit(lambda x: decomposition._solve_single(x, 0.02, 1e-7, 200_000, 50, (50.0, True), True))
        u, q, lb, it = solve(jnp.asarray(v))
        i_and, i_or, _ = decomposition._assemble(jnp.asarray(v)[None], u[None], q[None])
        p = float(np.sum(np.abs(i_and[0, 1:])) + np.sum(np.abs(i_or[0, 1:])))
        rq = 0.02 * abs(v[-1] - v[0])
        assert float(lb) <= p and (p - float(lb)) <= 1e-7 * p, name
        assert np.all(np.abs(np.asarray(q)) <= rq * (1 + 1e-12)), name
        out[name] = (p, float(lb))
    (pg, lg), (pc, lc) = out["graph"], out["cg"]
    assert lg <= pc * (1 + 1e-12) and lc <= pg * (1 + 1e-12)  # each bound holds for the other's point
    assert abs(pg - pc) <= 2e-7 * pc


def test_penalty_rescale_keeps_primal_and_dual():
    """At a change of ρ the iterate moves to ``x + (ρ/ρ')(z − x)``: same projection ``x`` and
    same dual ``ρ(z − x)`` (docs/math.md §3.6)."""
    rng = np.random.default_rng(0)
    v = jnp.asarray(rng.normal(size=2**5))
    for with_q, splitting in ((False, decomposition._splitting_without_q), (True, decomposition._splitting_with_q),
                              (True, decomposition._splitting_graph)):
        g = decomposition._scaled_game(v, 0.02, with_q)
        sp = splitting(g, 5)
        z = tuple(jnp.asarray(rng.normal(size=2**5)) for _ in sp.start(g.c, g.c))
        inner = (sp.inner0[0], jnp.asarray(1e-14)) if splitting is decomposition._splitting_with_q else sp.inner0  # exact CG
        x, *_ = sp.split(z, (jnp.asarray(50.0), inner))
        z2 = tuple(a + (50.0 / 7.0) * (b - a) for a, b in zip(x, z))
        x2, *_ = sp.split(z2, (jnp.asarray(7.0), inner))
        for a, b, zz, zz2 in zip(x, x2, z, z2):
            np.testing.assert_allclose(b, a, atol=1e-9)
            np.testing.assert_allclose(7.0 * (zz2 - b), 50.0 * (zz - a), atol=1e-8)


def test_canonical_distance_is_a_bound_only_where_verified():
    """A canonical phase that ran out of budget (status 1) reports no distance (inf), not a
    number that is no bound (from an oracle trial: 3.5 reported, 4.5 actual, n = 6)."""
    rng = np.random.default_rng(3)
    v = rng.normal(size=(3, 64))
    res = and_or(v, q_ratio=0.02, canonical=True, canonical_max_iter=100)
    status = np.asarray(res.status)
    assert np.any(status == decomposition.STATUS_NOT_CANONICAL), status
    dist = np.asarray(res.canonical_distance)
    assert np.all(np.isinf(dist[status != decomposition.STATUS_CANONICAL]))
    assert np.all(np.isfinite(dist[status == decomposition.STATUS_CANONICAL]))


def test_fourth_user_trial_solver():
    """Games whose sums would underflow into flushed subnormals or overflow are refused by name
    (they were certified with broken matching or a zero gap); a warm-start γ counts up to a
    constant; the canonical phase runs only from a certified optimum and reports ε = 0 where it
    verified none; a NaN gap under jit says so; half precision, strings and bad options are named."""
    g = np.random.default_rng(6).standard_normal(16)
    ref = and_or(g)
    assert float(and_or(g * 2.0**-990).objective) == pytest.approx(float(ref.objective) * 2.0**-990, rel=1e-12)
    for scale in (1e-305, 1e307):
        with pytest.raises(ValueError, match=r"v has max\|v\| = .* outside the range .* at n=4 .*rescale v"):
            and_or(g * scale)
    with pytest.raises(ValueError, match=r"vs has max\|v\| = .*\(game \(1,\)\)"):
        and_or_shared(np.stack([g, g * 1e-305]))
    assert float(and_or(np.zeros(16)).objective) == 0.0  # an all-zero game is fine
    v = np.random.default_rng(1).standard_normal(32)
    r0 = and_or(v, warm_start=(np.zeros(32), np.zeros(32)))
    r1 = and_or(v, warm_start=(np.full(32, 1e4), np.zeros(32)))
    assert int(r1.iterations) == int(r0.iterations) and float(r1.objective) == pytest.approx(float(r0.objective), rel=1e-12)
    r = and_or(np.random.default_rng(8).standard_normal(16), canonical=True, max_iter=50)
    assert int(r.status) == decomposition.STATUS_UNCERTIFIED and float(r.canonical_eps) == 0.0
    assert int(r.iterations) == 50  # no canonical work on an uncertified point
    bad = g.copy()
    bad[3] = np.nan
    res = jax.jit(and_or)(bad)
    assert np.isnan(float(res.gap)) and "the gap is NaN" in res.messages()[0]
    for call, error, message in [
        (lambda: and_or(np.ones(16, np.float16)), TypeError, "v is float16: the AND-OR solver computes in float32 or float64"),
        (lambda: and_or(np.array(["a"] * 16)), TypeError, "v must hold numbers"),
        (lambda: and_or(g, devices=3), ValueError, "devices must be a non-empty sequence of jax devices, got 3"),
        (lambda: and_or(g, warm_start=(None, None)), TypeError, "warm_start gamma must be an array"),
    ]:
        with pytest.raises(error, match=message):
            call()


def test_a_constant_offset_changes_only_the_bias():
    """User trial (2026-12-08): v = 1e6 + 1e-7·noise stopped at a gap of 1e-3 ("raise max_iter")
    and 1 + 1e-13·noise ran to max_iter; the game is now solved as v − v(∅)."""
    noise = np.random.default_rng(3).normal(size=(2, 64))
    for off, amp in ((1e6, 1e-7), (1.0, 1e-13)):
        v = off + amp * noise
        res, ref = and_or(v), and_or(v - v[:, :1])
        assert np.all(np.asarray(res.status) == 3), res.messages()
        np.testing.assert_allclose(np.asarray(res.objective), np.asarray(ref.objective), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(res.I_and)[:, 0], np.asarray(ref.I_and)[:, 0] + v[:, 0], rtol=1e-15)
        sh = and_or_shared(v, q_ratio=0.02)
        assert np.all(np.asarray(sh.status) == 3)


def test_games_outside_the_solvable_magnitudes_are_not_certified_under_jit():
    """User trial (2026-12-08): eager and_or refuses them, under jit they came back certified
    (objective 0 for float64 subnormals, 7.6% off universal matching in float32)."""
    g = np.random.default_rng(1).normal(size=(2, 16))
    for v in (g * 1e-310, (g * 1e-37).astype(np.float32), (g * 1e-40).astype(np.float32)):
        with pytest.raises(ValueError, match="outside the range"):
            and_or(v)
        for res in (jax.jit(and_or)(jnp.asarray(v)), jax.vmap(and_or)(jnp.asarray(v))):
            assert np.all(np.asarray(res.status) == 2) and not np.any(np.asarray(res.converged))
            assert all("outside the magnitudes" in m for m in res.messages())
    ok = g.copy()
    ok[:, 3] = 1e-310  # one subnormal entry in a game of normal size: solved as usual
    assert np.all(np.asarray(jax.jit(and_or)(jnp.asarray(ok)).status) == 3)
