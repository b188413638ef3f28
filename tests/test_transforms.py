"""Transforms against brute-force subset sums (docs/math.md §2) and their identities."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from oracles import kron_power, popcount

from jinter._budget import MemoryBudgetError
from jinter.transforms import (
    MOBIUS,
    ZETA,
    kron_apply,
    mask_orders,
    mask_to_players,
    masks_of_order,
    matching_error,
    mobius,
    num_players,
    or_mobius,
    or_zeta,
    players_to_mask,
    reconstruct,
    zeta,
)

HYP = settings(max_examples=25, deadline=None, derandomize=True)

# ----------------------------------------------------------------------------- brute force


def subsets(t):
    """All L ⊆ T (as masks)."""
    return [l for l in range(t + 1) if l & t == l]


def bf_mobius(v):
    return np.array([sum((-1) ** (popcount(t) - popcount(l)) * v[l] for l in subsets(t)) for t in range(len(v))])


def bf_zeta(i):
    return np.array([sum(i[t] for t in subsets(s)) for s in range(len(i))])


def bf_or_mobius(v):
    full = len(v) - 1
    out = [-sum((-1) ** (popcount(t) - popcount(l)) * v[full - l] for l in subsets(t)) for t in range(len(v))]
    out[0] = v[0]
    return np.array(out)


def bf_or_zeta(i):
    return np.array([i[0] + sum(i[t] for t in range(1, len(i)) if t & s) for s in range(len(i))])


def random_game(rng, n, batch=()):
    return rng.normal(size=batch + (2**n,))


# ----------------------------------------------------------------------------- oracles


@pytest.mark.parametrize("n", [0, 1, 3, 6])
def test_against_brute_force(rng, n):
    v = random_game(rng, n)
    np.testing.assert_allclose(mobius(v), bf_mobius(v), atol=1e-12)
    np.testing.assert_allclose(zeta(v), bf_zeta(v), atol=1e-12)
    np.testing.assert_allclose(or_mobius(v), bf_or_mobius(v), atol=1e-12)
    np.testing.assert_allclose(or_zeta(v), bf_or_zeta(v), atol=1e-12)


def test_brute_force_n8_batched(rng):
    v = random_game(rng, 8, (2,))
    np.testing.assert_allclose(mobius(v)[1], bf_mobius(v[1]), atol=1e-11)
    np.testing.assert_allclose(or_mobius(v)[0], bf_or_mobius(v[0]), atol=1e-11)


def test_planted_and_or_terms():
    """v = Σ a_k·1(T_k ⊆ S) + Σ b_k·1(S ∩ U_k ≠ ∅): Möbius recovers the AND dividends, and a
    pure OR game has OR interactions exactly at its terms."""
    n = 7
    and_terms = {0b0000101: 2.0, 0b1100000: -1.5, 0b0011110: 0.5, 0: 0.25}
    or_terms = {0b0000011: 3.0, 0b1010000: -2.0}
    s = np.arange(2**n)
    v_and = sum(a * ((s & t) == t) for t, a in and_terms.items())
    want = np.zeros(2**n)
    for t, a in and_terms.items():
        want[t] += a
    np.testing.assert_allclose(mobius(v_and), want, atol=1e-12)
    v_or = sum(b * ((s & u) != 0) for u, b in or_terms.items())
    want = np.zeros(2**n)
    for u, b in or_terms.items():
        want[u] += b
    np.testing.assert_allclose(or_mobius(v_or), want, atol=1e-12)  # v(∅) = 0 is the bias
    np.testing.assert_allclose(or_mobius(v_or + 1.5)[0], 1.5)
    # the sum of both is matched by the two kinds together
    np.testing.assert_allclose(reconstruct(mobius(v_and), or_mobius(v_or)), v_and + v_or, atol=1e-12)
    # docstring examples
    np.testing.assert_allclose(mobius([0.0, 1.0, 2.0, 5.0]), [0, 1, 2, 2])
    np.testing.assert_allclose(or_mobius([0.0, 1.0, 1.0, 1.0]), [0, 0, 0, 1])


# ----------------------------------------------------------------------------- properties

games = st.integers(0, 6).flatmap(
    lambda n: st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2**n, max_size=2**n)
)


@HYP
@given(games)
def test_inverse_pairs(v):
    v = np.asarray(v)
    tol = 1e-12 * (1 + np.abs(v).sum())
    np.testing.assert_allclose(zeta(mobius(v)), v, atol=tol)
    np.testing.assert_allclose(mobius(zeta(v)), v, atol=tol * len(v))
    np.testing.assert_allclose(or_zeta(or_mobius(v)), v, atol=tol)
    np.testing.assert_allclose(or_mobius(or_zeta(v)), v, atol=tol * len(v))


@HYP
@given(games, st.floats(-10, 10))
@example([5e-324], 0.0)  # subnormal scale: XLA flushes it to 0 on CPU (failed CI on fresh clones)
@example([2.2250738585072014e-308, -1e-310], 0.5)  # smallest normal scale, a subnormal beside it
@example([0.0, 0.0, 0.0, 0.0], 1.0)  # no scale at all
def test_universal_matching(v, gamma):
    """Any split v = o_and + o_or (docs/math.md §3) is matched exactly by AND + OR interactions."""
    v = np.asarray(v)
    o_and, o_or = v / 2 + gamma, v / 2 - gamma
    i_and, i_or = mobius(o_and), or_mobius(o_or)
    tol = 1e-11 * (1 + np.abs(v).sum() + abs(gamma) * len(v))
    np.testing.assert_allclose(reconstruct(i_and, i_or), v, atol=tol)
    assert float(matching_error(v, i_and, i_or)) <= tol
    assert float(matching_error(v, mobius(v))) <= tol
    # a wrong interaction shows up, absolute and relative
    bad = np.asarray(i_and).copy()
    bad[-1] += 1.0
    assert abs(float(matching_error(v, bad, i_or)) - 1.0) < 1e-9
    # relative: divided by max|v|, or by 1 when max|v| is below the smallest normal number
    scale = np.abs(v).max()
    scale = scale if scale >= np.finfo(np.float64).tiny else 1.0
    assert abs(float(matching_error(v, bad, i_or, relative=True)) - 1.0 / scale) <= 1e-9 / scale


@HYP
@given(st.integers(1, 6), st.lists(st.floats(-2, 2), min_size=4, max_size=4), st.integers(0, 2**31 - 1))
def test_kron_apply_matches_dense(n, f, seed):
    factor = np.asarray(f).reshape(2, 2)
    x = np.random.default_rng(seed).normal(size=(2, 2**n))
    dense = kron_power(factor, n)  # bit i of the index is player i
    want = x @ dense.T
    tol = 1e-12 * (1 + np.abs(want).max()) * 3**n
    np.testing.assert_allclose(kron_apply(x, factor), want, atol=tol)
    np.testing.assert_allclose(jax.jit(kron_apply)(x, jnp.asarray(factor)), want, atol=tol)  # traced factor


def test_jit_and_vmap(rng):
    v = random_game(rng, 5, (3,))
    for fn, bf in [(mobius, bf_mobius), (zeta, bf_zeta), (or_mobius, bf_or_mobius), (or_zeta, bf_or_zeta)]:
        want = np.stack([bf(r) for r in v])
        np.testing.assert_allclose(jax.jit(fn)(v), want, atol=1e-12)
        np.testing.assert_allclose(jax.vmap(fn)(v), want, atol=1e-12)
    i_and, i_or = mobius(v / 2), or_mobius(v / 2)
    np.testing.assert_allclose(jax.vmap(reconstruct)(i_and, i_or), v, atol=1e-12)
    assert jax.jit(matching_error)(v, i_and, i_or).shape == (3,)
    assert float(jnp.max(jax.vmap(matching_error)(v, i_and, i_or))) < 1e-12


@pytest.mark.parametrize("fn", [mobius, zeta, or_mobius, or_zeta])
def test_float32_within_documented_bound(rng, fn):
    """|f32 − f64| ≤ (n+1)·eps32·Σ_{L⊆T}|v(L)| (module docstring), per output T.

    The sum runs over the inputs the output is built from: v(N∖L) for OR interactions (T ≠ ∅;
    I_or(∅) = v(∅) is a copy: only the cast to float32 rounds it), and for or_zeta, which
    computes Σ_{T∩S≠∅} I(T) as Σ_T I(T) − Σ_{T⊆N∖S} I(T), over all subsets (see report).
    """
    n = 10
    v = rng.normal(size=(3, 2**n)) * 10.0 ** rng.integers(-3, 4, size=(3, 2**n))
    out64 = np.asarray(fn(v))
    out32 = np.asarray(fn(v.astype(np.float32)))
    assert out32.dtype == np.float32
    absv = np.abs(v)
    if fn in (mobius, zeta):
        mass = np.asarray(zeta(absv))
    elif fn is or_mobius:
        mass = np.array(zeta(absv[..., ::-1]))
        mass[..., 0] = absv[..., 0]
    else:
        mass = np.broadcast_to(absv.sum(-1, keepdims=True), v.shape)
    bound = (n + 1) * np.finfo(np.float32).eps * mass
    assert np.all(np.abs(out32 - out64) <= bound)


def test_n22_float32_round_trip(rng):
    v = rng.normal(size=2**22).astype(np.float32)
    back = np.asarray(zeta(mobius(v)))
    # each Möbius output sums up to 2^|T| terms: error relative to the largest dividend
    assert np.max(np.abs(back - v)) < 23 * np.finfo(np.float32).eps * 2**11 * 4


# ----------------------------------------------------------------------------- helpers


def test_helpers():
    np.testing.assert_array_equal(mask_orders(3), [0, 1, 1, 2, 1, 2, 2, 3])
    np.testing.assert_array_equal(mask_orders(0), [0])
    for n in range(6):
        orders = mask_orders(n)
        assert orders.tolist() == [popcount(m) for m in range(2**n)]
        for k in range(n + 1):
            assert masks_of_order(n, k).tolist() == [m for m in range(2**n) if popcount(m) == k]
    assert mask_to_players(0b1011) == (0, 1, 3) and mask_to_players(0) == ()
    assert players_to_mask((0, 1, 3)) == 0b1011 and players_to_mask([]) == 0
    for m in range(64):
        assert players_to_mask(mask_to_players(m)) == m
    assert mask_to_players(np.int64(2**40)) == (40,)
    assert num_players(np.zeros((3, 32))) == 5
    assert MOBIUS == ((1.0, 0.0), (-1.0, 1.0)) and ZETA == ((1.0, 0.0), (1.0, 1.0))
    assert list(itertools.chain(*[masks_of_order(4, k) for k in range(5)])) == sorted(
        range(16), key=lambda m: (popcount(m), m)
    )


def test_bad_input(monkeypatch):
    with pytest.raises(ValueError, match="not a power of two"):
        mobius(np.zeros(6))
    with pytest.raises(ValueError, match="scalar"):
        zeta(1.0)
    with pytest.raises(ValueError, match="not a power of two"):
        or_mobius(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="2x2"):
        kron_apply(np.zeros(4), np.eye(3))
    with pytest.raises(ValueError, match="order k"):
        masks_of_order(3, 4)
    with pytest.raises(ValueError, match="n must be"):
        mask_orders(-1)
    with pytest.raises(ValueError, match="non-negative"):
        mask_to_players(-1)
    with pytest.raises(ValueError, match="non-negative"):
        players_to_mask([0, -2])
    monkeypatch.setenv("JINTER_MEMORY_BUDGET", "1M")
    mobius(np.zeros(2**14))  # 3 live copies · 128 KiB fit
    with pytest.raises(MemoryBudgetError, match=r"1\.5 MiB.*1\.0 MiB"):
        mobius(np.zeros(2**16))  # 3 · 512 KiB = 1.5 MiB
    with pytest.raises(MemoryBudgetError, match="need about"):
        or_zeta(np.zeros((8, 2**14), dtype=np.float32))  # 3 · 512 KiB


# ----------------------------------------------------------------------------- jit / no-jit / device variants


class TestVariants(chex.TestCase):
    """Each transform gives the same numbers eagerly, jitted and on a committed device array."""

    @chex.variants(with_jit=True, without_jit=True, with_device=True)
    def test_transforms_and_matching(self):
        v = np.random.default_rng(3).normal(size=(2, 32))
        want = {"mobius": mobius(v), "or_mobius": or_mobius(v)}
        got_and = self.variant(mobius)(v)
        got_or = self.variant(or_mobius)(v)
        chex.assert_shape([got_and, got_or], (2, 32))
        chex.assert_trees_all_close((got_and, got_or), (want["mobius"], want["or_mobius"]), rtol=1e-13, atol=1e-13)
        chex.assert_trees_all_close(self.variant(zeta)(got_and), v, atol=1e-12)
        chex.assert_trees_all_close(self.variant(or_zeta)(got_or), v, atol=1e-12)
        half = self.variant(lambda a, o: reconstruct(a, o))(mobius(v / 2), or_mobius(v / 2))
        chex.assert_trees_all_close(half, v, atol=1e-12)
        err = self.variant(lambda x, a: matching_error(x, a, relative=True))(v, got_and)
        chex.assert_shape(err, (2,))
        chex.assert_tree_all_finite(err)
        assert float(jnp.max(err)) < 1e-12


def test_bad_input_of_the_or_transforms_factors_and_masks():
    """Scalars and empty arrays get the num_players message in every transform; a factor must be a
    finite real 2x2 matrix (also when traced); mismatched interaction arrays are named; masks and
    players are integers, not floats, bools or strings."""
    for fn in (or_mobius, or_zeta, mobius, zeta):
        with pytest.raises(ValueError, match="last axis of length 2\\*\\*n, got a scalar"):
            fn(1.0)
        with pytest.raises(ValueError, match="not a power of two"):
            fn(np.zeros(0))
    with pytest.raises(ValueError, match="factor must be finite"):
        kron_apply([1.0, 2, 3, 4], [[np.nan, 0], [1, 1]])
    with pytest.raises(TypeError, match="factor must be a real 2x2 matrix"):
        kron_apply([1.0, 2, 3, 4], [[1j, 0], [1, 1]])
    with pytest.raises(ValueError, match="factor must be a 2x2 matrix, got shape \\(3, 3\\)"):
        jax.jit(lambda f: kron_apply(jnp.ones(4), f))(jnp.ones((3, 3)))
    np.testing.assert_allclose(jax.jit(lambda f: kron_apply(jnp.ones(4), f))(jnp.ones((2, 2))), 4.0)
    with pytest.raises(ValueError, match="v and the interactions must be over the same 2\\*\\*n subsets"):
        matching_error(np.ones(8), np.ones(4))
    with pytest.raises(ValueError, match="i_or must be over the same 2\\*\\*n subsets as i_and"):
        reconstruct(np.ones(8), np.ones(4))
    for bad in (1.5, True, "3"):
        with pytest.raises(TypeError, match="a mask is a non-negative integer"):
            mask_to_players(bad)
    with pytest.raises(TypeError, match="got the string"):
        players_to_mask("12")
    with pytest.raises(TypeError, match="players are non-negative integers"):
        players_to_mask([0, 1.5])
    assert mask_to_players(np.int64(11)) == mask_to_players(jnp.asarray(11)) == (0, 1, 3)
    assert players_to_mask(np.array([0, 1, 3])) == 11
