"""jinter.sparse: sparse AND-OR interactions from a budget of calls, checked against planted
ground truth, the exact path (and_or on all masks), brute-force masking, and bad input."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jinter
from jinter import NonFiniteOutputError, and_or, masked_outputs, salient_mask, sparse_and_or
from jinter.sparse import masked_value_fn


def planted(n, k_and, k_or, seed, orders=(1, 2, 3, 4), bias=0.3, disjoint=False):
    """A game with ``k_and`` AND and ``k_or`` OR terms on distinct player sets (OR of order ≥ 2).

    With ``disjoint`` no two terms share a player: small games with overlapping terms can have
    several representations of equal ``Σ|I|`` (e.g. via ``[a∨b] = [a] + [b] − [a∧b]``), so
    only the objective, not the support, is unique there."""
    rng = np.random.default_rng(seed)
    terms, seen = [], set()
    free = list(rng.permutation(n))
    for kind, k in (("and", k_and), ("or", k_or)):
        while sum(t[0] == kind for t in terms) < k:
            o = int(rng.choice(orders))
            if kind == "or":
                o = max(o, 2)
            if disjoint:
                t = tuple(sorted(int(free.pop()) for _ in range(o)))
            else:
                t = tuple(sorted(rng.choice(n, o, replace=False).tolist()))
            if t in seen:
                continue
            seen.add(t)
            terms.append((kind, t, float(rng.choice([-1, 1]) * rng.uniform(0.5, 2.0))))

    def game(s):
        s = np.asarray(s)
        out = np.full(s.shape[0], bias)
        for kind, t, v in terms:
            c = s[:, list(t)]
            out = out + v * (c.all(1) if kind == "and" else c.any(1))
        return out

    return game, terms


def all_masks(n):
    idx = np.arange(2**n)
    return ((idx[:, None] >> np.arange(n)) & 1).astype(bool)


def as_set(records):
    return {(r.type, r.players) for r in records}


@pytest.mark.parametrize("n, budget, seed, disjoint", [(12, 600, 1, True), (40, 1200, 2, False)])
def test_sampled_path_recovers_planted_terms(n, budget, seed, disjoint):
    game, terms = planted(n, 3, 3, seed, orders=(1, 2, 3), disjoint=disjoint) if n < 20 else planted(n, 4, 4, seed)
    res = sparse_and_or(game, n, budget=budget, exact=False, progress=False)
    assert not res.exact and res.calls == budget and res.holdout_calls > 0
    assert as_set(res.records) == {(k, t) for k, t, _ in terms}
    want = {(k, t): v for k, t, v in terms}
    for r in res.records:
        assert r.value == pytest.approx(want[(r.type, r.players)], abs=1e-8)
        assert r.order == len(r.players) and r.mask == sum(1 << i for i in r.players)
    assert res.bias == pytest.approx(0.3, abs=1e-8)
    assert res.faithfulness > 1 - 1e-10
    s = np.random.default_rng(9).random((200, n)) < 0.5
    np.testing.assert_allclose(res.predict(s), game(s), atol=1e-8)
    mags = [abs(r.value) for r in res.records]
    assert mags == sorted(mags, reverse=True)
    assert res.objective == pytest.approx(sum(abs(v) for *_, v in terms))


def test_sampled_path_agrees_with_and_or_objective():
    """General (sampled) path at n = 10 with 2**n calls vs the exact optimum of and_or (q = 0)."""
    n = 10
    game, _ = planted(n, 2, 2, 3, orders=(1, 2, 3), disjoint=True)
    exact = and_or(jnp.asarray(game(all_masks(n))), q_ratio=0.0)
    res = sparse_and_or(game, n, budget=2**n, exact=False, progress=False)
    assert res.objective == pytest.approx(float(exact.objective), rel=0.01)
    tau = 0.05 * max(float(jnp.max(jnp.abs(exact.I_and[1:]))), float(jnp.max(jnp.abs(exact.I_or[1:]))))
    sal = {("and", tuple(i for i in range(n) if m >> i & 1)) for m in np.flatnonzero(salient_mask(exact.I_and, tau))}
    sal |= {("or", tuple(i for i in range(n) if m >> i & 1)) for m in np.flatnonzero(salient_mask(exact.I_or, tau))}
    assert {(r.type, r.players) for r in res.records if abs(r.value) >= tau} == sal


@pytest.mark.parametrize("q_ratio", [0.0, 0.02])
def test_exact_path_matches_and_or(q_ratio):
    n = 8
    game, _ = planted(n, 2, 2, 4, orders=(1, 2), disjoint=True)
    noise = np.random.default_rng(0).normal(scale=1e-3, size=2**n)
    v = game(all_masks(n)) + noise
    table = dict(zip(map(bytes, np.packbits(all_masks(n), axis=1)), v))
    fn = lambda s: np.array([table[bytes(r)] for r in np.packbits(s, axis=1)])  # noqa: E731
    res = sparse_and_or(fn, n, budget=2**n, q_ratio=q_ratio, progress=False)
    ref = and_or(jnp.asarray(v), q_ratio=q_ratio)
    assert res.exact and res.calls == 2**n and res.holdout_calls == 0
    assert res.objective == pytest.approx(float(ref.objective), rel=0.01)
    tau = 0.05 * max(float(jnp.max(jnp.abs(ref.I_and[1:]))), float(jnp.max(jnp.abs(ref.I_or[1:]))))
    sal = {(k, tuple(i for i in range(n) if m >> i & 1))
           for k, arr in (("and", ref.I_and), ("or", ref.I_or)) for m in np.flatnonzero(salient_mask(arr, tau))}
    assert {(r.type, r.players) for r in res.records if abs(r.value) >= tau} == sal
    assert res.bias == pytest.approx(float(ref.I_and[0]))
    np.testing.assert_allclose(res.predict(all_masks(n)), v + np.asarray(ref.q), atol=1e-7)


@settings(max_examples=4, deadline=None, derandomize=True)
@given(st.sampled_from([3, 5]), st.integers(0, 2**31 - 1))
def test_exact_path_universal_matching(n, seed):
    """With q = 0, the exact path's surrogate reproduces v on every mask."""
    v = np.random.default_rng(seed).normal(size=2**n)
    res = sparse_and_or(lambda s: v[(s * (1 << np.arange(n))).sum(1)], n, budget=2**n, q_ratio=0.0,
                        progress=False)
    np.testing.assert_allclose(res.predict(all_masks(n)), v, atol=1e-7)
    assert all(r.type == "and" for r in res.records if r.order == 1)


def test_deterministic_and_seeded():
    game, _ = planted(30, 3, 3, 5)
    a = sparse_and_or(game, 30, budget=500, seed=1, progress=False)
    b = sparse_and_or(game, 30, budget=500, seed=1, progress=False)
    assert a == b


def test_overlapping_small_game_reaches_the_objective():
    """Overlapping terms on few players: the support may be another representation, but of the
    same Σ|I| as the planted one, and the surrogate is the game."""
    n = 10
    game, terms = planted(n, 4, 4, 1)
    res = sparse_and_or(game, n, budget=600, exact=False, progress=False)
    assert res.objective == pytest.approx(sum(abs(v) for *_, v in terms), rel=1e-6)
    np.testing.assert_allclose(res.predict(all_masks(n)), game(all_masks(n)), atol=1e-8)


def test_large_n_and_budget_is_respected():
    n = 300
    game, terms = planted(n, 3, 3, 6)
    calls = []

    def counted(s):
        calls.append(s.shape[0])
        return jnp.asarray(game(s))  # JAX output accepted

    res = sparse_and_or(counted, n, budget=1500, batch_size=400, progress=False)
    assert sum(calls) == res.calls == 1500 and max(calls) <= 400
    assert as_set(res.records) == {(k, t) for k, t, _ in terms}
    assert res.faithfulness > 0.999
    assert max(r.mask for r in res.records).bit_length() <= n


def test_value_fn_errors():
    n = 20
    with pytest.raises(ValueError, match=r"expected \(1024,\)"):
        sparse_and_or(lambda s: np.zeros((s.shape[0], 2)), n, budget=2000, progress=False)
    with pytest.raises(ValueError, match=r"expected \(1024,\)"):
        sparse_and_or(lambda s: np.zeros(s.shape[0] - 1), n, budget=2000, progress=False)

    def nan_when_7_and_3(s):
        return np.where(s[:, 7] & s[:, 3], np.nan, 1.0)

    with pytest.raises(NonFiniteOutputError, match=r"players \(.*3.*7.*\)"):
        sparse_and_or(nan_when_7_and_3, n, budget=500, progress=False)
    with pytest.raises(ValueError, match=r"too small for n=20.*at least \d+ calls"):
        sparse_and_or(lambda s: np.zeros(len(s)), n, budget=50, progress=False)
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="n must be an integer ≥ 1"):
            sparse_and_or(lambda s: np.zeros(len(s)), bad, budget=100, progress=False)
    with pytest.raises(ValueError, match="budget must be an integer ≥ 1"):
        sparse_and_or(lambda s: np.zeros(len(s)), 4, budget=0, progress=False)
    # integral floats pass like every integer option; seeds stay exact above 2**53
    s20 = sparse_and_or(lambda s: s[:, 0] * 1.0, 20.0, budget=600.0, progress=False)
    assert s20.n == 20 and s20.calls <= 600
    designs = [sparse_and_or(lambda s: np.sin(s @ np.arange(20.0)), 20, budget=400, seed=2**70 + k,
                             progress=False) for k in (0, 1)]
    assert designs[0].faithfulness != designs[1].faithfulness or designs[0].records != designs[1].records
    with pytest.raises(ValueError, match=r"exact=True needs budget ≥ 2\*\*12 = 4096"):
        sparse_and_or(lambda s: np.zeros(len(s)), 12, budget=1000, exact=True, progress=False)
    with pytest.raises(ValueError, match="keep_rates"):
        sparse_and_or(lambda s: np.zeros(len(s)), 12, budget=1000, keep_rates=[0.0, 0.5], progress=False)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="lasso_iters must be an integer ≥ 1"):
            sparse_and_or(lambda s: np.zeros(len(s)), 12, budget=1000, lasso_iters=bad, progress=False)
    with pytest.raises(TypeError, match="value_fn must be callable"):
        sparse_and_or(None, 12, budget=1000, progress=False)


def test_too_small_budget_message_is_enough():
    """The number of calls the error asks for does fit."""
    n = 50
    with pytest.raises(ValueError, match="at least") as err:
        sparse_and_or(lambda s: np.zeros(len(s)), n, budget=20, progress=False)
    need = int(str(err.value).split("at least ")[1].split()[0])
    res = sparse_and_or(lambda s: s[:, 0].astype(float), n, budget=need, progress=False)
    assert res.calls == need


@pytest.mark.parametrize("n,holdout", [(2, 0.1), (8, 0.1), (16, 0.1), (16, 0.5), (64, 0.1), (64, 0.3), (300, 0.1)])
def test_too_small_budget_message_is_the_least_budget(n, holdout):
    """The message asks for the least budget that runs: one call fewer is refused again, and the
    exact path is offered where all 2**n masks cost less."""
    f = lambda s: s[:, 0].astype(float)  # noqa: E731
    with pytest.raises(ValueError, match="at least") as err:
        sparse_and_or(f, n, budget=3, holdout=holdout, progress=False)
    need = int(str(err.value).split("at least ")[1].split()[0])
    assert ("for the exact path" in str(err.value)) == (2**n < need)
    if 2**n < need:  # fewer masks than the sampled fit needs, distinct: only the exact path runs
        assert f"only 2**{n} = {2**n}" in str(err.value)
        return
    with pytest.raises(ValueError, match=f"at least {need} calls"):
        sparse_and_or(f, n, budget=need - 1, holdout=holdout, exact=False, progress=False)
    res = sparse_and_or(f, n, budget=need, holdout=holdout, exact=False, progress=False)
    assert res.calls == need and not res.exact


@pytest.mark.parametrize("scale", [1e-300, 1e-160, 1e-14, 1.0, 1e150, 1e300])
def test_sampled_fit_is_the_same_at_every_scale(scale):
    """The fit runs on the values shifted and divided by a power of two: a game times 1e-160 or
    1e150 gives the same terms (values times the scale) and the same held-out R²."""
    def game(s):
        return 3 + 2.0 * (s[:, 0] & s[:, 1]) - 1.5 * s[:, 2:5].any(axis=1)

    ref = sparse_and_or(game, 20, budget=800, progress=False)
    res = sparse_and_or(lambda s: scale * game(s), 20, budget=800, progress=False)
    assert as_set(res.records) == as_set(ref.records) == {("and", (0, 1)), ("or", (2, 3, 4))}
    np.testing.assert_allclose([r.value for r in res.records], [scale * r.value for r in ref.records], rtol=1e-9)
    assert res.bias == pytest.approx(scale * ref.bias, rel=1e-9)
    assert res.faithfulness == pytest.approx(ref.faithfulness, abs=1e-9) and ref.faithfulness > 0.999


def test_constant_and_huge_games_give_finite_faithfulness():
    const = sparse_and_or(lambda s: np.full(len(s), 7.0), 20, budget=400, progress=False)
    assert const.records == () and const.bias == 7.0 and const.faithfulness == 1.0
    huge = sparse_and_or(lambda s: 1e200 * (1.0 + s[:, 0] - 2.0 * (s[:, 1] & s[:, 2])), 6, budget=64,
                         progress=False)
    assert huge.exact and np.isfinite(huge.faithfulness) and huge.faithfulness > 0.99


def test_max_order_and_max_terms_take_the_sampled_path():
    """With max_order < n or max_terms the budget of 2**n runs the sampled fit, which honours
    them (the exact optimum has every order); exact=True with them is refused."""
    def game(s):
        return 3 + 2.0 * (s[:, 0] & s[:, 1] & s[:, 2]) - 1.5 * s[:, 3:5].any(axis=1) + 0.5 * s[:, 5]

    res = sparse_and_or(game, 8, budget=256, max_order=2, progress=False)
    assert not res.exact and res.records and max(r.order for r in res.records) <= 2
    res = sparse_and_or(game, 8, budget=256, max_order=8, progress=False)
    assert res.exact  # max_order ≥ n limits nothing
    with pytest.raises(ValueError, match="max_order=2 applies to the sampled fit only"):
        sparse_and_or(game, 8, budget=256, max_order=2, exact=True, progress=False)
    with pytest.raises(ValueError, match="max_terms=3 applies to the sampled fit only"):
        sparse_and_or(game, 8, budget=256, max_terms=3, exact=True, progress=False)


@pytest.mark.parametrize("option,bad", [
    ("max_order", 2.5), ("max_order", 0), ("max_order", np.nan), ("max_order", np.inf), ("max_order", True),
    ("max_terms", -1), ("max_terms", "3"), ("max_terms", np.nan), ("max_records", -1), ("max_records", 1.5),
    ("batch_size", 2.5), ("batch_size", True), ("batch_size", "8"), ("patience", 0), ("patience", -1),
    ("patience", 2.5), ("exact_max_n", -1), ("exact_max_n", None), ("exact_max_n", np.nan), ("seed", -1),
    ("seed", 1.5), ("holdout", "0.1"), ("holdout", None), ("holdout", 1.0), ("holdout", np.nan),
    ("keep_rates", "ab"), ("keep_rates", [0.5, 1.0]), ("r2_slack", -1), ("r2_slack", np.nan), ("r2_slack", np.inf),
    ("r2_slack", "x"), ("r2_slack", None), ("q_ratio", -1), ("q_ratio", np.nan), ("q_ratio", "0.02"),
    ("lasso_iters", 0),
])
def test_bad_options_are_refused_before_any_call(option, bad):
    calls = []

    def f(s):
        calls.append(len(s))
        return s[:, 0].astype(float)

    with pytest.raises(ValueError, match=option):
        sparse_and_or(f, 8, budget=256, progress=False, **{option: bad})
    assert calls == []


def test_exact_option_takes_booleans_only():
    f = lambda s: s[:, 0] * 2.0 + (s[:, 1] & s[:, 2])  # noqa: E731
    assert sparse_and_or(f, 6, budget=64, exact=np.True_, progress=False).exact
    assert not sparse_and_or(f, 6, budget=64, exact=np.False_, progress=False).exact
    for bad in (1, "yes", 0.0):
        with pytest.raises(TypeError, match="exact must be True, False or None"):
            sparse_and_or(f, 6, budget=64, exact=bad, progress=False)


def test_value_fn_exceptions_keep_their_type_and_message():
    class CodedError(Exception):
        def __init__(self, code, msg):
            super().__init__(msg)
            self.code = code

    def f(s):
        raise CodedError(3, "custom failure")

    with pytest.raises(CodedError, match="custom failure") as err:
        sparse_and_or(f, 10, budget=400, progress=False)
    assert err.value.code == 3 and any("raised by value_fn" in note for note in err.value.__notes__)
    with pytest.raises(KeyError) as err:
        sparse_and_or(lambda s: {}["absent"], 10, budget=400, progress=False)
    assert err.value.args == ("absent",)


def test_value_fn_editing_its_masks_does_not_change_the_fit():
    def game(s):
        return 3 + 2.0 * (s[:, 0] & s[:, 1]) - 1.5 * s[:, 2:5].any(axis=1)

    def editing(s):
        v = game(s)
        s[:, :5] = ~s[:, :5]
        return v

    ref = sparse_and_or(game, 20, budget=800, progress=False)
    assert sparse_and_or(editing, 20, budget=800, progress=False) == ref


def test_predict_checks_masks():
    res = sparse_and_or(lambda s: s[:, 0] * 2.0, 16, budget=400, progress=False)
    assert as_set(res.records) == {("and", (0,))}
    with pytest.raises(ValueError, match=r"shape \(m, n=16\)"):
        res.predict(np.zeros((3, 15), bool))
    with pytest.raises(TypeError, match="boolean"):
        res.predict(np.full((3, 16), 0.5))
    with pytest.raises(ValueError, match=r"masks must be boolean rows of shape \(m, n=16\), got rows of unequal"):
        res.predict([[True] * 16, [True] * 15])


# --------------------------------------------------------------------------------------------
# masked_value_fn
# --------------------------------------------------------------------------------------------


def _rows_of(masks, n):
    return ((np.asarray(masks)[:, None] >> np.arange(n)) & 1).astype(bool)


def test_masked_value_fn_matches_masked_outputs(rng):
    w = rng.normal(size=(12, 3))

    def model(b):
        return jnp.tanh(b @ jnp.asarray(w))

    x = jnp.asarray(rng.normal(size=12))
    players = jinter.TabularPlayers(12, groups=[[0, 1], [2], [5, 6, 7], [9], [11]])
    base = jnp.asarray(rng.normal(size=12))
    ref = masked_outputs(model, x, players, reward=jinter.log_odds(2), baseline=base)
    fn = masked_value_fn(model, x, players, reward=jinter.log_odds(2), baseline=base, chunk_size=8)
    got = fn(_rows_of(np.arange(2**players.n), players.n))
    np.testing.assert_allclose(got, np.asarray(ref), rtol=1e-12, atol=1e-12)
    assert fn(np.zeros((0, players.n), bool)).shape == (0,)


def test_masked_value_fn_patches(rng):
    img = jnp.asarray(rng.normal(size=(8, 8)))
    players = jinter.PatchPlayers((8, 8), (4, 4))
    model = lambda b: jnp.sum(b.reshape(b.shape[0], -1) ** 2, axis=1)  # noqa: E731
    ref = masked_outputs(model, img, players, baseline="zeros")
    got = masked_value_fn(model, img, players)(_rows_of(np.arange(16), 4))
    np.testing.assert_allclose(got, np.asarray(ref), rtol=1e-12)


def test_masked_value_fn_many_players_and_sparse_fit(rng):
    """n = 200 players (beyond 64-bit integer masks): a linear model gives its exact singletons."""
    n = 200
    coef = np.zeros(n)
    coef[[3, 50, 199]] = [1.5, -2.0, 0.7]
    x = jnp.asarray(rng.normal(size=n))
    fn = masked_value_fn(lambda b: b @ jnp.asarray(coef), x, jinter.TabularPlayers(n))
    res = sparse_and_or(fn, n, budget=800, progress=False)
    got = {r.players: r.value for r in res.records}
    want = {(i,): coef[i] * float(x[i]) for i in (3, 50, 199)}
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-8)


def test_masked_value_fn_errors(rng):
    players = jinter.TabularPlayers(4)
    with pytest.raises(ValueError, match=r"ONE input of shape \(4,\)"):
        masked_value_fn(lambda b: b.sum(1), jnp.zeros((2, 4)), players)
    fn = masked_value_fn(lambda b: jnp.log(b.sum(1)), jnp.asarray([1.0, -1.0, 2.0, 0.5]), players)
    with pytest.raises(NonFiniteOutputError, match=r"players \(0, 1\)"):
        fn(np.array([[True, True, True, True], [True, True, False, False]]))
    with pytest.raises(ValueError, match=r"shape \(m, n=4\)"):
        fn(np.ones((2, 5), bool))
    with pytest.raises(ValueError, match="chunk_size"):
        masked_value_fn(lambda b: b.sum(1), jnp.zeros(4), players, chunk_size=0)
    for bad in (4, None, (4,)):
        with pytest.raises(TypeError, match="players must be a players object"):
            masked_value_fn(lambda b: b.sum(1), jnp.zeros(4), bad)
        with pytest.raises(TypeError, match="players must be a players object"):
            masked_outputs(lambda b: b.sum(1), jnp.zeros(4), bad)


def test_masked_value_fn_values_are_floats_for_integer_inputs():
    f = masked_value_fn(lambda b: b.sum(1), jnp.arange(6), jinter.TabularPlayers(6))
    out = f(np.array([[True] * 6, [False, True] + [False] * 4]))
    assert np.issubdtype(out.dtype, np.floating) and out.tolist() == [15.0, 1.0]


# --------------------------------------------------------------------------------------------
# selection internals: incremental Gram, collinear columns, backward elimination
# --------------------------------------------------------------------------------------------


def _rand_terms(n, k, seed):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < k:
        o = int(rng.integers(1, 4))
        t = ("and" if o == 1 or rng.random() < 0.5 else "or", tuple(sorted(rng.choice(n, o, replace=False).tolist())))
        if t not in out:
            out.append(t)
    return out


def test_design_incremental_gram_matches_a_fresh_least_squares():
    """_Design grown in pieces (past its capacity) fits every subset as _lstsq does from scratch."""
    from jinter.sparse import _Design, _features, _lstsq

    rng = np.random.default_rng(0)
    n, m = 20, 300
    s, sv = rng.random((m, n)) < 0.5, rng.random((80, n)) < 0.5
    y = rng.normal(size=m)
    terms = _rand_terms(n, 40, 1)
    d = _Design(s, y, sv, capacity=4)
    for a in range(0, 40, 7):
        d.add(terms[a : a + 7])
    assert d.k == 40 and d.terms == terms
    for idx in (list(range(40)), [0, 5, 17, 39], list(range(0, 40, 3))):
        b, w = d.fit(idx)
        b0, w0 = _lstsq(_features(s, [terms[i] for i in idx]), y)
        assert b == pytest.approx(b0, abs=1e-9)
        np.testing.assert_allclose(w, w0, atol=1e-9)
    d.truncate(10)
    d.add(terms[30:32])
    b, w = d.fit()
    b0, w0 = _lstsq(_features(s, terms[:10] + terms[30:32]), y)
    np.testing.assert_allclose(w, w0, atol=1e-9)


def test_independent_drops_linear_combinations_keeping_the_preferred():
    """[a∨b] = [a] + [b] − [a∧b]: of the four, the three first in the given order stay."""
    from jinter.sparse import _features, _independent

    s = np.random.default_rng(1).random((400, 6)) < 0.5
    terms = [("or", (0, 1)), ("and", (2,)), ("and", (0,)), ("and", (0, 1)), ("and", (1,)), ("and", (3, 4))]
    x = _features(s, terms)
    xc = x - x.mean(axis=0)
    assert _independent(xc.T @ xc) == [0, 1, 2, 3, 5]  # [b] = [a∨b] − [a] + [a∧b] goes
    order = [4, 2, 3, 0, 1, 5]
    g = (xc.T @ xc)[np.ix_(order, order)]
    assert [order[i] for i in _independent(g)] == [4, 2, 3, 1, 5]  # now [a∨b] goes


def test_prune_keeps_validation_r2_above_the_floor_and_drops_noise():
    """Backward elimination (downdated inverse) removes useless columns, keeps the game's, and
    agrees with a refit from scratch on what it keeps."""
    from jinter.sparse import _Design, _features, _lstsq, _prune, _r2

    rng = np.random.default_rng(2)
    n, m = 30, 600
    s, sv = rng.random((m, n)) < 0.5, rng.random((200, n)) < 0.5
    true = [("and", (0,)), ("and", (1, 2)), ("or", (3, 4)), ("and", (5, 6, 7))]
    coef = np.array([1.0, -2.0, 1.5, 3.0])

    def game(z):
        return 0.5 + _features(z, true) @ coef

    noise = [t for t in _rand_terms(n, 60, 3) if t not in true]
    dictionary = true + noise + [("and", (3,)), ("and", (4,)), ("and", (3, 4))]  # + a collinear set
    d = _Design(s, game(s), sv, capacity=8)
    d.add(dictionary)
    yv = game(sv)
    floor = 1 - 1e-6
    keep = _prune(d, list(range(d.k)), yv, floor)
    kept = {dictionary[i] for i in keep}
    assert set(true) - {("or", (3, 4))} <= kept and len(kept) <= 6
    x = _features(s, [dictionary[i] for i in keep])
    b, w = _lstsq(x, game(s))
    assert _r2(yv, b + _features(sv, [dictionary[i] for i in keep]) @ w) >= floor


def test_lasso_path_meets_the_optimality_conditions():
    """FISTA with its early stop: |Gw − c| ≤ λ everywhere, = λ·sign(w) on the support."""
    from jinter.sparse import _lasso_path

    rng = np.random.default_rng(4)
    x = (rng.random((500, 30)) < 0.4).astype(float)
    y = x[:, :5] @ np.array([2.0, -1.0, 0.5, 1.5, -0.7]) + 0.1 * rng.normal(size=500)
    xc, yc = x - x.mean(axis=0), y - y.mean()
    g, c = xc.T @ xc / 500, xc.T @ yc / 500
    lams = np.max(np.abs(c)) * np.array([0.5, 0.1, 0.01])
    for lam, w in zip(lams, _lasso_path(g, c, lams, 5000)):
        grad = c - g @ w
        assert np.all(np.abs(grad) <= lam * (1 + 1e-4) + 1e-8)
        on = np.abs(w) > 0
        np.testing.assert_allclose(grad[on], lam * np.sign(w[on]), rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("spoil", ["selection", "dictionary"])
def test_max_records_below_the_selection_also_prunes_the_whole_dictionary(monkeypatch, spoil):
    """A cap below the selected model: the backward elimination also starts from every column
    of the dictionary (down to the cap), and of the two capped models the one with the higher
    validation R² is the result (checked by spoiling one of them: the other one wins)."""
    from jinter import sparse

    calls, dictionaries = [], []
    prune, neighbors = sparse._prune, sparse._neighbors

    def spy_prune(d, idx, y_val, floor, max_records=None):
        out = prune(d, idx, y_val, floor, max_records)
        if (spoil == "selection") == np.isfinite(floor):  # the spoiled one: its weakest columns
            out = list(idx)[-len(out):]
        calls.append((len(idx), floor, out, d.val_r2(y_val, out, *d.fit(out)), d.k))
        return out

    monkeypatch.setattr(sparse, "_prune", spy_prune)
    monkeypatch.setattr(sparse, "_neighbors", lambda terms: dictionaries.append(neighbors(terms)) or dictionaries[-1])
    monkeypatch.setattr(sparse, "_swap", lambda d, keep: list(keep))  # the swap step after it: tested apart
    n = 40
    game, _ = planted(n, 6, 6, 5)
    res = sparse_and_or(game, n, budget=1500, max_records=4, progress=False)
    assert len(calls) == 2, "one pruning from the selection, one from the whole dictionary"
    (n_sel, floor, a, r2a, k), (n_all, top, b, r2b, _) = calls
    assert 4 < n_sel <= n_all == k and np.isfinite(floor) and top == np.inf
    assert len(a) == len(b) == 4 and r2a != r2b
    good = b if spoil == "selection" else a
    assert as_set(res.records) == {dictionaries[0][i] for i in good}
    # without a cap only the selection is pruned
    calls.clear()
    sparse_and_or(game, n, budget=1500, progress=False)
    assert len(calls) == 1


def _rss(d, idx):
    b, w = d.fit(idx)
    x = d.raw[:, list(idx)]
    return float(np.sum((d.yc + d.ybar - b - x @ w) ** 2))


def test_swap_reaches_a_subset_no_single_swap_improves():
    """The swap search lowers the fit residual from a poor start and ends where no swap of one
    column for another lowers it (checked by refitting every swap from scratch); its scores
    (rank-one downdates) agree with those refits. A column that is a combination of the kept
    ones is never swapped in."""
    from jinter.sparse import _Design, _features, _swap

    rng = np.random.default_rng(5)
    n, m = 12, 300
    s, sv = rng.random((m, n)) < 0.5, rng.random((50, n)) < 0.5
    terms = [("and", (i,)) for i in range(n)] + [("and", (0, 1)), ("or", (2, 3)), ("and", (4, 5, 6)), ("or", (0, 1))]
    coef = rng.normal(size=len(terms)) * (rng.random(len(terms)) < 0.5)
    y = _features(s, terms) @ coef + 0.3 * rng.normal(size=m)
    d = _Design(s, y, sv, capacity=4)
    d.add(terms)
    start = [n, n + 1, n + 3, 7]  # [a∨b] = [a] + [b] − [a∧b] keeps {[a], [b]} out of one subset
    kept = _swap(d, start)
    assert len(kept) == len(start) == len(set(kept))
    best = _rss(d, kept)
    assert best < _rss(d, start) * (1 - 1e-3)
    for p in range(len(kept)):
        for j in set(range(d.k)) - set(kept):
            trial = kept[:p] + [j] + kept[p + 1 :]
            xs = d.xc[:, trial]
            if np.linalg.matrix_rank(xs.T @ xs) < len(trial):
                continue  # a combination of the others: not a candidate
            assert _rss(d, trial) >= best * (1 - 1e-9)
    assert _swap(d, kept) == kept  # a fixed point
    assert _swap(d, list(range(d.k))) == list(range(d.k)) and _swap(d, []) == []
    # one step takes the best single swap, as found by refitting every one from scratch
    starts = [start] + [sorted(rng.choice(d.k, 4, replace=False).tolist()) for _ in range(12)]
    for s0 in starts:
        if np.linalg.matrix_rank(d.xc[:, s0].T @ d.xc[:, s0]) < len(s0):
            continue
        trials = []
        for p in range(len(s0)):
            for j in set(range(d.k)) - set(s0):
                trial = s0[:p] + [j] + s0[p + 1 :]
                xs = d.xc[:, trial]
                if np.linalg.matrix_rank(xs.T @ xs) == len(trial):
                    trials.append((_rss(d, trial), trial))
        if min(trials)[0] < _rss(d, s0) * (1 - 1e-6):
            assert _swap(d, s0, max_swaps=1) == min(trials)[1]
    # a kept set with dependent columns ([a∨b], [a], [b], [a∧b]) or a constant one is left alone
    dependent = [n + 3, 0, 1, n]
    assert _swap(d, dependent) == dependent
    d0 = _Design(np.ones((m, n), bool), y, sv, capacity=4)
    d0.add(terms)
    assert _swap(d0, [0, 1]) == [0, 1]


@pytest.mark.parametrize("seed, swap, kept", [(1, "search", "swapped"), (18, "search", "eliminated"),
                                            (1, "worse", "eliminated")])
def test_max_records_keeps_the_swapped_model_only_when_validation_agrees(monkeypatch, seed, swap, kept):
    """Below the selection the capped model goes through the swap search; its result replaces
    the eliminated model only when the validation R² is higher. Seed 1: the swaps raise the
    validation R² from 0.66 to 0.82; seed 18: they lower the fit residual but not the
    validation error, so the eliminated model stays; a spoiled swap is refused."""
    from jinter import sparse
    from jinter.sparse import _Design, _features, _final_support

    rng = np.random.default_rng(seed)
    n, m = 8, 300
    s, sv = rng.random((m, n)) < 0.5, rng.random((200, n)) < 0.5
    terms = [("and", (i,)) for i in range(n)] + [("and", (0, 1)), ("or", (0, 1)), ("or", (2, 3)), ("and", (2, 3)),
                                                 ("and", (4, 5, 6)), ("or", (4, 5, 6))]
    coef = rng.normal(size=len(terms))

    def game(z):
        return _features(z, terms) @ coef

    d = _Design(s, game(s) + 0.3 * rng.normal(size=m), sv, capacity=4)
    d.add(terms)
    y_val = game(sv)
    calls = []
    real = sparse._swap

    def spy(d_, keep):
        out = real(d_, keep) if swap == "search" else [c for c in range(d_.k) if c not in keep][-len(keep):]
        calls.append((list(keep), out))
        return out

    monkeypatch.setattr(sparse, "_swap", spy)
    sel = list(range(d.k))
    got = _final_support(d, y_val, sel, sel, -np.inf, max_records=4)
    assert len(calls) == 1
    before, after = calls[0]
    assert len(got) == 4 and before != after

    def val(c):
        return d.val_r2(y_val, c, *d.fit(c))

    if swap == "search":
        assert _rss(d, after) < _rss(d, before)
    assert got == (after if kept == "swapped" else before)
    assert (val(after) > val(before)) == (kept == "swapped")
    calls.clear()
    assert _final_support(d, y_val, sel, sel, -np.inf) == sparse._prune(d, sel, y_val, -np.inf) and not calls


def test_max_records_caps_the_result():
    """max_records: at most that many terms, the strongest kept, the rest of the game lost."""
    n = 40
    game, terms = planted(n, 4, 4, 2)
    full = sparse_and_or(game, n, budget=1200, progress=False)
    assert len(full) == 8
    strongest = sorted(terms, key=lambda t: -abs(t[2]))
    for k in (0, 3, 8, 20):
        res = sparse_and_or(game, n, budget=1200, max_records=k, progress=False)
        assert len(res) == min(k, 8)
        assert res.faithfulness <= full.faithfulness + 1e-12
    res3 = sparse_and_or(game, n, budget=1200, max_records=3, progress=False)
    assert as_set(res3.records) <= {(k, t) for k, t, _ in terms}
    assert res3.faithfulness > 0.2
    assert as_set(res3.records) & {(k, t) for k, t, _ in strongest[:4]}
    small, _ = planted(8, 2, 2, 4, orders=(1, 2), disjoint=True)
    exact = sparse_and_or(small, 8, budget=2**8, progress=False)
    capped = sparse_and_or(small, 8, budget=2**8, max_records=2, progress=False)
    assert capped.exact and capped.records == exact.records[:2]
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="max_records"):
            sparse_and_or(game, n, budget=1200, max_records=bad, progress=False)


def test_lasso_path_working_sets_on_a_dependent_dictionary(monkeypatch):
    """The working-set path on a dictionary with exact dependencies (duplicate columns and
    ``[a∨b] = [a] + [b] − [a∧b]``, as the selection's dictionary has): every point meets the
    optimality conditions on all columns, including those never in its working set, and the
    objective equals that of FISTA on the whole dictionary (the minimizer is not unique)."""
    from jinter import sparse
    from jinter.sparse import _fista, _lasso_path

    sizes = []

    def recording(g, *args):
        sizes.append(g.shape[0])
        return _fista(g, *args)

    monkeypatch.setattr(sparse, "_fista", recording)
    rng = np.random.default_rng(5)
    s = rng.random((800, 12)) < 0.5
    cols = [s[:, j] for j in range(12)] + [s[:, 0] | s[:, 1], s[:, 0] & s[:, 1], s[:, 2], s[:, 3] & s[:, 4]]
    x = np.stack(cols, axis=1).astype(float)
    x = np.concatenate([x, (rng.random((800, 40)) < 0.3).astype(float)], axis=1)  # 40 idle columns
    y = 2 * x[:, 12] - 1.5 * x[:, 15] + 0.7 * x[:, 5] + 0.05 * rng.normal(size=800)
    xc, yc = x - x.mean(axis=0), y - y.mean()
    g, c = xc.T @ xc / 800, xc.T @ yc / 800
    lams = np.max(np.abs(c)) * np.geomspace(0.5, 1e-3, 8)
    path = list(_lasso_path(g, c, lams, 20000))
    assert len(path) == len(lams)

    def objective(w, lam):
        return 0.5 * w @ g @ w - c @ w + lam * np.abs(w).sum()

    for lam, w in zip(lams, path):
        grad = c - g @ w
        assert np.all(np.abs(grad) <= lam * (1 + 1e-4) + 1e-8)
        full, _ = _fista(g, c, np.zeros_like(c), float(lam), 20000)
        assert objective(w, lam) <= objective(full, lam) + 1e-9 * max(1.0, abs(objective(full, lam)))
    assert np.count_nonzero(path[0]) < 10
    assert sizes[0] < x.shape[1] // 2  # the first point was solved on a working set, not all 56 columns


def test_lasso_path_stops_after_the_validation_peak(monkeypatch):
    """The selection stops consuming the lasso path at a perfect validation fit (or once
    ``_PATH_PATIENCE`` new supports in a row add ≤ 0.1·r2_slack), and on a game whose path
    reaches R² = 1 that stop changes nothing: the same terms as with the whole path."""
    from jinter import sparse

    game, _ = planted(40, 3, 2, 7, orders=(1, 2), disjoint=True)
    consumed = []
    path = sparse._lasso_path

    def counting(*args):
        consumed.append(0)
        for w in path(*args):
            consumed[-1] += 1
            yield w

    monkeypatch.setattr(sparse, "_lasso_path", counting)
    early = sparse_and_or(game, 40, budget=1500, progress=False)
    monkeypatch.setattr(sparse, "_PATH_PATIENCE", 10**6)
    monkeypatch.setattr(sparse, "_PERFECT_R2", np.inf)
    whole = sparse_and_or(game, 40, budget=1500, progress=False)
    assert consumed[0] < consumed[1] == 25
    assert early.records == whole.records and early.bias == whole.bias


def test_lasso_path_early_stop_waits_past_a_dominant_term(monkeypatch):
    """A dominant term keeps the path's first points on one support; repeated supports do not
    count towards the stop, so the selection is the one the whole path gives (the four true
    columns), in the same order of preference."""
    from jinter import sparse

    rng = np.random.default_rng(1)
    s = rng.random((2000, 8)) < 0.5
    y = 50 * s[:, 0] + 3 * s[:, 1] + 2.5 * s[:, 2] + 2 * s[:, 3] + 0.01 * rng.normal(size=2000)
    d = sparse._Design(s[:1500], y[:1500], s[1500:], capacity=8)
    d.add([("and", (j,)) for j in range(8)])
    early = sparse._select(d, y[1500:], [], -np.inf, 1e-3, 500)
    monkeypatch.setattr(sparse, "_PATH_PATIENCE", 10**6)
    whole = sparse._select(d, y[1500:], [], -np.inf, 1e-3, 500)
    assert sorted(early[0]) == sorted(whole[0]) == [0, 1, 2, 3]
    assert early[0] == whole[0] and early[1] == whole[1]


def test_validation_r2_by_columns_or_by_all_columns():
    """``_Design.val_r2`` gives the same R² from the chosen columns (few) and from a product
    with all columns (many)."""
    from jinter.sparse import _Design

    rng = np.random.default_rng(2)
    s_fit, s_val = rng.random((200, 10)) < 0.5, rng.random((60, 10)) < 0.5
    d = _Design(s_fit, rng.normal(size=200), s_val, capacity=4)
    d.add([("and", (j,)) for j in range(10)] + [("or", (0, 1)), ("and", (2, 3))])
    y_val = rng.normal(size=60)
    for idx in ([3], list(range(12)), [0, 5, 11]):
        b, w = d.fit(idx)
        x = d.xv[:, idx]
        assert d.val_r2(y_val, idx, b, w) == pytest.approx(1 - np.sum((y_val - b - x @ w) ** 2)
                                                           / np.sum((y_val - y_val.mean()) ** 2), rel=1e-12)


def _pick_by_blocks(chunks, seen, k):
    """The round's pick spelled out parent by parent (the oracle of ``_pick``): the 8 best
    children of each parent, the new ones kept, all sorted by score (stable), then up to ``k``
    distinct ones scoring ≥ 0.7 of the best."""
    cand = []
    for sc, kind, parents in chunks:
        for p, t in enumerate(parents):
            for j in np.argsort(-sc[:, p])[:8].tolist():
                key = (kind if t else "and", tuple(sorted(t + (j,))))
                if j not in t and key not in seen:
                    cand.append((float(sc[j, p]), key))
    cand.sort(key=lambda c: -c[0])
    add = []
    for score, key in cand:
        if len(add) >= k or score < 0.7 * cand[0][0]:
            break
        if key not in add:
            add.append(key)
    return (cand[0][0] if cand else -np.inf), add


def test_discovery_stages():
    """The stages of ``_discover``: scores of the single players and of a parent's children,
    the round's pick (new candidates only, strongest first, as the parent-by-parent oracle
    picks them), and the pool's parents."""
    from jinter.sparse import _child_scores, _Design, _grow, _pick, _Pool, _validate

    rng = np.random.default_rng(0)
    s = rng.random((400, 6)) < 0.5
    y = 2.0 * (s[:, 0] & s[:, 1]) + 0.3 * s[:, 3]
    d, pool = _Design(s, y, s[:50], capacity=4), _Pool.of(s)
    chunks = _child_scores(pool, d, d.yc)
    assert [(k, t) for _, k, t in chunks] == [("and", [()])]
    top, add = _pick(chunks, pool.seen, 6)
    assert set(add[:2]) == {("and", (0,)), ("and", (1,))} and (top, add) == _pick_by_blocks(chunks, pool.seen, 6)
    assert _pick(chunks, pool.seen, 1) == (top, add[:1])
    first = add[0]
    d.add([first])
    _grow(pool, d, 0, max_order=3)
    assert pool.par_and == pool.par_or == [0] and pool.seen == {first}
    chunks = _child_scores(pool, d, d.yc - d.xc[:, :1] @ d.fit()[1])
    assert [(k, t) for _, k, t in chunks] == [("and", [()]), ("and", [first[1]]), ("or", [first[1]])]
    top, add = _pick(chunks, pool.seen, 6)
    assert first not in add and add[0] == ("and", (0, 1))
    err, r2 = _validate(d, y[:50], *d.fit())
    assert err > 0 and 0 < r2 < 1


def test_pick_matches_the_parent_by_parent_oracle():
    """``_pick`` ranks the children of all parents at once; on a grown pool (many parents of
    both types, some children already taken) it picks what the parent-by-parent rule picks."""
    from jinter.sparse import _child_scores, _Design, _grow, _pick, _Pool

    rng = np.random.default_rng(3)
    s = rng.random((600, 12)) < rng.uniform(0.2, 0.8, size=(600, 1))
    y = (2.0 * (s[:, 0] & s[:, 1] & s[:, 2]) - 1.5 * (s[:, 3] | s[:, 4]) + 0.8 * s[:, 5]
         + 0.1 * rng.normal(size=600))
    d, pool = _Design(s, y, s[:60], capacity=4), _Pool.of(s)
    w = np.zeros(0)
    for round_ in range(6):
        chunks = _child_scores(pool, d, d.yc - d.xc[:, : d.k] @ w)
        for k in (1, 3, 50):
            assert _pick(chunks, pool.seen, k) == _pick_by_blocks(chunks, pool.seen, k), (round_, k)
        first = d.k
        d.add(_pick(chunks, pool.seen, 3)[1])
        _grow(pool, d, first, max_order=4)
        w = d.fit()[1]
    assert len(pool.par_and) > 5 and len(pool.par_or) > 5


def test_one_pool_limits_only_scipys_own_blas_and_keeps_the_fit(monkeypatch):
    """Inside ``one_pool`` scipy's separately vendored BLAS runs 1 thread, numpy's keeps its pool,
    both are restored after, and the sparse fit is the same with or without the limit."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import contextlib
    import os

    import scipy

    from jinter import _blas

    def threads():
        return {lib["filepath"]: lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                if lib["user_api"] == "blas"}

    scipy_dir = os.path.dirname(os.path.realpath(scipy.__file__))
    before = threads()
    scipys = {p for p in before if os.path.realpath(p).startswith((scipy_dir + os.sep, scipy_dir + ".libs" + os.sep))}
    assert set(_blas._scipy_own_blas()) == scipys  # every BLAS of scipy's own folders, nothing else
    with _blas.one_pool():
        inside = threads()
    assert threads() == before
    for path, k in before.items():
        assert inside[path] == (1 if path in scipys else k), path
    if not scipys or all(before[p] == 1 for p in scipys):
        pytest.skip("no separately vendored scipy BLAS with more than one thread here: nothing to limit")

    def game(s):
        return 1.0 + 2.0 * (s[:, 0] & s[:, 1]) - 1.5 * s[:, 2:5].any(axis=1) + 0.3 * s[:, 7:10].all(axis=1)

    a = sparse_and_or(game, 30, budget=600, progress=False)
    monkeypatch.setattr(jinter.sparse, "one_pool", contextlib.nullcontext)
    b = sparse_and_or(game, 30, budget=600, progress=False)
    assert [(r.type, r.players) for r in a.records] == [(r.type, r.players) for r in b.records]
    np.testing.assert_allclose([r.value for r in a.records], [r.value for r in b.records], rtol=1e-9, atol=1e-12)
    assert abs(a.faithfulness - b.faithfulness) < 1e-9


def test_one_pool_falls_back_when_threadpoolctl_fails(monkeypatch):
    """The thread limit is an optimisation: a threadpoolctl that raises leaves the fit as it is."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from jinter import _blas

    def broken(*args, **kwargs):
        raise RuntimeError("no controller here")

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", broken)
    with _blas.one_pool() as ctx:
        assert ctx is None  # contextlib.nullcontext()
    res = sparse_and_or(lambda s: 1.0 + 2.0 * (s[:, 0] & s[:, 1]), 20, budget=400, progress=False)
    assert [(r.type, r.players, round(r.value, 6)) for r in res.records] == [("and", (0, 1), 2.0)]


def test_fifth_user_trial_sparse():
    """A term found after the sparsest good round is a column of the ℓ1 fit (the default slack had
    returned 26 terms at R² 0.99915 where the 24 planted ones give 1); records are a tuple; a
    bfloat16 value_fn is real; masked_value_fn defaults to the players' own baseline; memory is
    stated before the masks are drawn; string keep rates are refused."""
    terms = [("and", (108, 202, 213), -0.641), ("and", (189, 231, 232), -0.55), ("and", (3, 16, 25, 119), -0.906),
             ("and", (63, 131, 141, 241), 1.903), ("and", (15, 51, 101, 118), 1.15), ("and", (87,), 1.473),
             ("or", (34, 91, 140, 185), -1.044), ("or", (186, 209), -0.982), ("and", (128,), 0.592),
             ("or", (102, 187), -1.529), ("and", (16, 154, 201, 238), 1.198), ("and", (79,), 1.276),
             ("and", (203,), -1.797), ("or", (10, 41, 69), 1.148), ("and", (61, 171, 183, 220), 1.445),
             ("or", (109, 201, 242, 253), 0.54), ("and", (2,), 0.51), ("and", (143, 172), 0.644),
             ("and", (15, 176, 196, 197), -0.982), ("or", (180, 223), 0.711), ("and", (1, 95, 123), -1.561),
             ("and", (46, 63, 140, 178), 1.665), ("or", (63, 200), -1.69), ("and", (46,), -1.826)]

    def game(s):
        out = np.zeros(len(s))
        for kind, t, c in terms:
            out += c * (s[:, list(t)].all(1) if kind == "and" else s[:, list(t)].any(1))
        return out

    res = sparse_and_or(game, 256, budget=3000, progress=False)
    assert as_set(res.records) == {(k, t) for k, t, _ in terms} and res.faithfulness > 1 - 1e-9
    assert isinstance(res.records, tuple) and hash(res) == hash(res)
    small = sparse_and_or(lambda s: jnp.asarray(game(s), jnp.bfloat16), 256, budget=400, progress=False, max_terms=4)
    assert small.records
    emb = jnp.asarray(np.random.default_rng(0).standard_normal((20, 3)))
    model = lambda ids: emb[ids].sum((1, 2))  # noqa: E731
    x = jnp.array([1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13])
    players = jinter.TokenPlayers(12, mask_token=7)
    s = np.random.default_rng(1).random((5, 12)) < 0.5
    masks = jnp.asarray((s * (1 << np.arange(12))).sum(1))
    np.testing.assert_allclose(masked_value_fn(model, x, players)(s), np.asarray(masked_outputs(model, x, players, masks=masks)))
    with pytest.raises(ValueError, match="these players mask with their mask_token=7"):
        masked_value_fn(model, x, players, baseline="zeros")
    g = lambda s: 1.0 + (s[:, 0] & s[:, 1])  # noqa: E731
    with pytest.raises(jinter.MemoryBudgetError, match=r"exact path over all 2\*\*26 masks would need about"):
        sparse_and_or(g, 26, budget=2**26, exact=True, progress=False)
    with pytest.raises(jinter.MemoryBudgetError, match="1000000000 sampled masks of 30 players"):
        sparse_and_or(g, 30, budget=10**9, progress=False)
    with pytest.raises(ValueError, match="out of reach at n=63"):
        sparse_and_or(g, 63, budget=2**63, exact=True, progress=False)
    with pytest.raises(ValueError, match=r"keep_rates must be probabilities in \(0, 1\) \(numbers\)"):
        sparse_and_or(g, 20, budget=800, keep_rates=("0.5",), progress=False)


def test_progress_flag_and_mask_values_are_checked():
    game = lambda s: 1.0 + (s[:, 0] & s[:, 1])  # noqa: E731
    with pytest.raises(TypeError, match="progress must be True or False"):
        sparse_and_or(game, 20, budget=800, progress="no")
    res = sparse_and_or(game, 20, budget=800, progress=False)
    with pytest.raises(ValueError, match="values other than 0 and 1"):
        res.predict(np.full((2, 20), 2))
    with pytest.raises(TypeError, match="got dtype float64"):
        res.predict(np.ones((2, 20)))


def test_seventh_user_trial_sparse():
    """Defects a black-box user trial reproduced (2026-12-08)."""
    from jinter import InteractionRecord, SparseAndOrResult

    ok = InteractionRecord((0, 1), "and", 1.0, 3, 2)
    SparseAndOrResult([ok], 0.0, 3, 1.0, 10, 2, False, 1.0, (0.5,))
    bad = [(InteractionRecord((0, 1), "xor", 1.0, 3, 2), "type 'xor'"),
           (InteractionRecord((0, 1), "and", 1.0, 5, 7), "mask 5 / order 7 do not match"),
           (InteractionRecord((0, 1), "and", float("nan"), 3, 2), "value must be a finite number"),
           (InteractionRecord((0, 5), "and", 1.0, 33, 2), r"players must be distinct ascending .* \[0, 3\)")]
    for rec, msg in bad:
        with pytest.raises(ValueError, match=r"records\[0\].*" + msg):
            SparseAndOrResult([rec], 0.0, 3, 1.0, 10, 2, False, 1.0, (0.5,))
    with pytest.raises(TypeError, match=r"records\[0\] must be an InteractionRecord"):
        SparseAndOrResult([("and", (0,), 1.0)], 0.0, 3, 1.0, 10, 2, False, 1.0, (0.5,))

    # the sampled path at few players: no mask is called twice, held-out masks are unseen by the fit
    n, seen = 10, []

    def game(s):
        seen.append(s.copy())
        return np.sin(s @ np.arange(1.0, n + 1))

    res = sparse_and_or(game, n, budget=3000, exact=False, progress=False)
    rows = np.concatenate(seen)
    keys = rows @ (1 << np.arange(n))
    assert res.calls == len(rows) == len(np.unique(keys)) <= 2**n
    assert not set(keys[: res.holdout_calls].tolist()) & set(keys[res.holdout_calls :].tolist())
    with pytest.raises(ValueError, match=r"distinct masks, and n=4 players have only 2\*\*4 = 16"):
        sparse_and_or(lambda s: s[:, 0] * 1.0, 4, budget=500, exact=False, progress=False)
