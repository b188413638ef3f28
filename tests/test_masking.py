"""masked_outputs against hand-built masked inputs (docs/math.md §1)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jinter
from jinter._budget import MemoryBudgetError
from jinter.masking import (
    NonFiniteOutputError,
    PatchPlayers,
    TabularPlayers,
    TokenPlayers,
    host_model,
    learn_baseline,
    log_odds,
    logit,
    masked_outputs,
    mean_baseline,
)
from jinter.transforms import mask_to_players

# ----------------------------------------------------------------------------- oracles


def oracle(model, x, n, mask_input, masks=None):
    """Plain loop: build x_S by hand for each mask, call the model on it alone."""
    masks = range(2**n) if masks is None else masks
    return np.array([float(np.asarray(model(mask_input(np.array(x, copy=True), set(mask_to_players(m))))[0]))
                     for m in masks])


def tabular_masker(groups, baseline):
    def mask(x, s):
        for i, g in enumerate(groups):
            if i not in s:
                x[list(g)] = baseline[list(g)]
        return x[None]
    return mask


def patch_masker(cells, patch, baseline, channels=False):
    ph, pw = patch

    def mask(x, s):
        for i, (r, c) in enumerate(cells):
            if i not in s:
                sl = (Ellipsis, slice(r * ph, (r + 1) * ph), slice(c * pw, (c + 1) * pw))
                if channels:
                    sl = sl + (slice(None),)
                x[sl] = baseline[sl]
        return x[None]
    return mask


def quadratic_model(w, a):
    """A smooth non-additive model of a flattened input: b·w + (b·a)²."""
    def f(batch):
        flat = batch.reshape(batch.shape[0], -1)
        return flat @ w + (flat @ a) ** 2
    return f


# ----------------------------------------------------------------------------- players


def test_player_specs():
    t = TabularPlayers(5, groups=[[0, 2], [4]])
    assert (t.n, t.input_shape) == (2, (5,))
    np.testing.assert_array_equal(t.owner, [0, -1, 0, -1, 1])
    np.testing.assert_array_equal(t.background, [False, True, False, True, False])
    assert t.membership.shape == (2, 5) and t.membership[0].tolist() == [1, 0, 1, 0, 0]
    p = PatchPlayers((8, 8), (2, 2))
    assert p.n == 16 and p.grid_shape == (4, 4) and p.owner[7, 7] == 15 and p.owner[0, 3] == 1
    q = PatchPlayers((3, 8, 8), (2, 2), cells=[(1, 1), 10])
    assert q.n == 2 and q.owner.shape == (3, 8, 8) and q.owner[2, 2, 3] == 0 and q.owner[0, 5, 4] == 1
    assert (q.owner >= 0).sum() == 2 * 4 * 3
    c = PatchPlayers((8, 8, 3), (4, 4), channels_last=True)
    assert c.n == 4 and c.owner[5, 1, 2] == 2
    tok = TokenPlayers(6, positions=[1, 2, 3, 4], embed_dim=3)
    assert tok.n == 4 and tok.input_shape == (6, 3) and tok.owner[0, 0] == -1 and tok.owner[4, 2] == 3
    assert hash(t) == hash(TabularPlayers(5, groups=((0, 2), (4,))))


# ----------------------------------------------------------------------------- values vs oracle


def test_tabular_single_and_grouped(rng):
    w, a = rng.normal(size=6), rng.normal(size=6)
    f = quadratic_model(w, a)
    x, base = rng.normal(size=6), rng.normal(size=6)
    v = masked_outputs(f, x, TabularPlayers(6), baseline=base)
    assert v.shape == (64,)
    np.testing.assert_allclose(v, oracle(f, x, 6, tabular_masker([[i] for i in range(6)], base)), rtol=1e-12)
    groups = [[0, 3], [1], [5, 2]]  # feature 4 is background
    v = masked_outputs(f, x, TabularPlayers(6, groups=groups), baseline=base)
    np.testing.assert_allclose(v, oracle(f, x, 3, tabular_masker(groups, base)), rtol=1e-12)
    # zeros baseline is the default
    v0 = masked_outputs(f, x, TabularPlayers(6, groups=groups))
    np.testing.assert_allclose(v0, oracle(f, x, 3, tabular_masker(groups, np.zeros(6))), rtol=1e-12)


@pytest.mark.parametrize("channels", [None, "first", "last"])
def test_patches(rng, channels):
    shape = {None: (8, 8), "first": (2, 8, 8), "last": (8, 8, 2)}[channels]
    f = quadratic_model(rng.normal(size=128 if channels else 64), rng.normal(size=128 if channels else 64) / 8)
    x, base = rng.normal(size=shape), rng.normal(size=shape)
    cells = [(1, 1), (1, 2), (2, 1), (2, 2), (0, 3), (3, 0)]  # a subset of the 4×4 grid
    players = PatchPlayers(shape, (2, 2), cells=cells, channels_last=channels == "last")
    v = masked_outputs(f, x, players, baseline=base)
    np.testing.assert_allclose(v, oracle(f, x, 6, patch_masker(cells, (2, 2), base, channels == "last")), rtol=1e-11)


def test_all_patches_given_masks_and_batch(rng):
    """All 16 2×2 patches of an 8×8 digit, a list of masks, two batch axes."""
    f = quadratic_model(rng.normal(size=64), rng.normal(size=64) / 8)
    xs = rng.normal(size=(2, 3, 8, 8))
    masks = np.array([0, 2**16 - 1, 5, 40000, 12345, 5])
    cells = [divmod(i, 4) for i in range(16)]
    v = masked_outputs(f, xs, PatchPlayers((8, 8), (2, 2)), masks=masks, baseline=0.5)
    assert v.shape == (2, 3, 6)
    for i, j in itertools.product(range(2), range(3)):
        want = oracle(f, xs[i, j], 16, patch_masker(cells, (2, 2), np.full((8, 8), 0.5)), masks)
        np.testing.assert_allclose(v[i, j], want, rtol=1e-11)


def test_tokens_ids_and_embeddings(rng):
    table = rng.normal(size=(10, 4))
    w = rng.normal(size=(5, 4))

    def f(ids):  # token ids -> a scalar
        e = jnp.asarray(table)[ids]
        return jnp.tanh(jnp.einsum("bsd,sd->b", e, jnp.asarray(w)))

    ids = np.array([1, 4, 7, 2, 3])
    players = TokenPlayers(5, positions=[1, 2, 3])  # 0 and 4 are [CLS]/[SEP]-like background
    v = masked_outputs(f, ids, players, baseline=9)  # 9 = the mask token id
    np.testing.assert_allclose(v, oracle(f, ids, 3, tabular_masker([[1], [2], [3]], np.full(5, 9))), rtol=1e-12)

    g = lambda e: jnp.tanh(jnp.einsum("bsd,sd->b", e, jnp.asarray(w)))  # noqa: E731
    emb, mask_emb = table[ids], rng.normal(size=4)
    v = masked_outputs(g, emb, TokenPlayers(5, positions=[1, 2, 3], embed_dim=4), baseline=mask_emb)

    def mask(e, s):
        for i, pos in enumerate([1, 2, 3]):
            if i not in s:
                e[pos] = mask_emb
        return e[None]

    np.testing.assert_allclose(v, oracle(g, emb, 3, mask), rtol=1e-12)


def test_log_odds_reward_and_label_per_input(rng):
    wm = rng.normal(size=(4, 3))
    f = lambda b: b @ jnp.asarray(wm)  # noqa: E731 - logits of 3 classes
    xs = rng.normal(size=(2, 4))
    labels = np.array([2, 0])
    v = masked_outputs(f, xs, TabularPlayers(4), reward=log_odds(labels))
    for i in range(2):
        logits = np.stack([oracle(lambda b: f(b)[:, c], xs[i], 4, tabular_masker([[k] for k in range(4)], np.zeros(4)))
                           for c in range(3)], axis=-1)
        p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        np.testing.assert_allclose(v[i], np.log(p[:, labels[i]] / (1 - p[:, labels[i]])), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(masked_outputs(f, xs[i], TabularPlayers(4), reward=logit(labels[i])),
                                   logits[:, labels[i]], rtol=1e-12)
    # stable for huge logits where the naive formula overflows
    big = lambda b: jnp.stack([1000.0 * b[:, 0], -1000.0 * b[:, 0]], axis=1)  # noqa: E731
    v = masked_outputs(big, np.array([1.0]), TabularPlayers(1), reward=log_odds(0))
    np.testing.assert_allclose(v, [0.0, 2000.0])
    # a single binary logit
    one = lambda b: b[:, :1] * 3.0  # noqa: E731
    np.testing.assert_allclose(masked_outputs(one, np.array([1.0]), TabularPlayers(1), reward=log_odds(0)), [0, -3.0])


def test_custom_reward_and_chunking(rng):
    wm = rng.normal(size=(5, 2))
    f = lambda b: jnp.tanh(b @ jnp.asarray(wm))  # noqa: E731
    x = rng.normal(size=(3, 5))
    reward = lambda out: out[:, 0] - 2 * out[:, 1]  # noqa: E731
    full = masked_outputs(f, x, TabularPlayers(5), reward=reward)
    tiny = masked_outputs(f, x, TabularPlayers(5), reward=reward, chunk_size=3)  # 32 = 10·3 + 2: padded
    np.testing.assert_allclose(tiny, full, rtol=1e-13)
    masks = np.array([31, 0, 7])
    np.testing.assert_allclose(masked_outputs(f, x, TabularPlayers(5), reward=reward, masks=masks, chunk_size=3),
                               full[:, masks], rtol=1e-13)
    # the memory budget also chunks: a small budget gives the same numbers
    np.testing.assert_allclose(masked_outputs(f, x, TabularPlayers(5), reward=reward, memory_budget=3000), full,
                               rtol=1e-13)


def test_mean_baseline(rng):
    data = rng.normal(size=(20, 4))
    np.testing.assert_allclose(mean_baseline(data), data.mean(0))
    np.testing.assert_allclose(mean_baseline(data.reshape(4, 5, 4), TabularPlayers(4)), data.mean(0))
    f = lambda b: jnp.sum(b**3, axis=-1)  # noqa: E731
    x = rng.normal(size=4)
    v = masked_outputs(f, x, TabularPlayers(4), baseline="mean", data=data)
    np.testing.assert_allclose(v, oracle(f, x, 4, tabular_masker([[i] for i in range(4)], data.mean(0))), rtol=1e-12)


# ----------------------------------------------------------------------------- model kinds


def test_flax_linen_and_nnx(rng):
    from flax import linen as nn
    from flax import nnx

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, b):
            return nn.Dense(3, param_dtype=jnp.float64)(jnp.tanh(nn.Dense(8, param_dtype=jnp.float64)(b)))

    x = rng.normal(size=5)
    mlp = MLP()
    variables = mlp.init(jax.random.PRNGKey(0), jnp.zeros((1, 5)))
    v = masked_outputs(mlp, x, TabularPlayers(5), params=variables, reward=logit(1))
    want = oracle(lambda b: mlp.apply(variables, b)[:, 1], x, 5, tabular_masker([[i] for i in range(5)], np.zeros(5)))
    np.testing.assert_allclose(v, want, rtol=1e-12)
    # raw params (no "params" key) are wrapped
    np.testing.assert_allclose(masked_outputs(mlp, x, TabularPlayers(5), params=variables["params"], reward=logit(1)), v)

    lin = nnx.Linear(5, 1, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
    v = masked_outputs(lin, x, TabularPlayers(5))
    want = oracle(lambda b: lin(jnp.asarray(b))[:, 0], x, 5, tabular_masker([[i] for i in range(5)], np.zeros(5)))
    np.testing.assert_allclose(v, want, rtol=1e-12)


def test_features_head_pair(rng):
    """[D24]: mask patches of an intermediate feature map, a zero baseline, centre cells only."""
    k = rng.normal(size=(4, 8, 8))

    def features(b):  # (B, 8, 8) -> (B, 4, 8, 8) channels-first "feature map"
        return jax.nn.relu(jnp.einsum("chw,bhw->bchw", jnp.asarray(k), b))

    wh = rng.normal(size=4 * 64) / 16

    def head(fm):
        return jnp.tanh(fm.reshape(fm.shape[0], -1) @ jnp.asarray(wh))

    xs = rng.normal(size=(2, 8, 8))
    cells = [(1, 1), (1, 2), (2, 1), (2, 2), (1, 3)]
    players = PatchPlayers((4, 8, 8), (2, 2), cells=cells)
    v = masked_outputs((features, head), xs, players)
    assert v.shape == (2, 32)
    for i in range(2):
        fm = np.asarray(features(xs[i : i + 1]))[0]
        np.testing.assert_allclose(v[i], oracle(head, fm, 5, patch_masker(cells, (2, 2), np.zeros_like(fm))), rtol=1e-12)
    # mean baseline over the features of the data
    data = rng.normal(size=(6, 8, 8))
    vm = masked_outputs((features, head), xs[:1], players, baseline="mean", data=data)
    fm = np.asarray(features(xs[:1]))[0]
    base = np.asarray(features(data)).mean(0)
    np.testing.assert_allclose(vm[0], oracle(head, fm, 5, patch_masker(cells, (2, 2), base)), rtol=1e-12)


def test_host_model_numpy_callable(rng):
    w = rng.normal(size=(4, 2))
    calls = []

    def np_model(b):  # e.g. a PyTorch model behind torch.from_numpy
        assert isinstance(b, np.ndarray)
        calls.append(len(b))
        return np.tanh(b @ w)

    x = rng.normal(size=4)
    hm = host_model(np_model, batch_size=5)
    v = masked_outputs(hm, x, TabularPlayers(4), reward=log_odds(1))
    ref = masked_outputs(lambda b: jnp.tanh(b @ jnp.asarray(w)), x, TabularPlayers(4), reward=log_odds(1))
    np.testing.assert_allclose(v, ref, rtol=1e-12)
    assert max(calls) <= 5
    # declared output shape: no probe call; works under jit and vmap
    hm2 = host_model(np_model, output_shape=(2,), dtype=np.float64)
    b = rng.normal(size=(3, 7, 4))
    np.testing.assert_allclose(jax.vmap(hm2)(b), np.tanh(b @ w), rtol=1e-12)
    np.testing.assert_allclose(jax.jit(hm2)(b[0]), np.tanh(b[0] @ w), rtol=1e-12)


# ----------------------------------------------------------------------------- errors


def test_errors(rng):
    f = lambda b: jnp.sum(b, axis=-1)  # noqa: E731
    p = TabularPlayers(3)
    with pytest.raises(ValueError, match=r"shape \(4,\).*\(3,\)"):
        masked_outputs(f, np.ones(4), p)
    with pytest.raises(ValueError, match="mask 8 is out of range"):
        masked_outputs(f, np.ones(3), p, masks=[1, 8])
    with pytest.raises(ValueError, match="mask -1"):
        masked_outputs(f, np.ones(3), p, masks=[-1])
    with pytest.raises(ValueError, match="1-D integer"):
        masked_outputs(f, np.ones(3), p, masks=[[1]])
    multi = lambda b: jnp.stack([b[:, 0], b[:, 1]], 1)  # noqa: E731
    with pytest.raises(ValueError, match=r"shape \(8, 2\).*no reward"):
        masked_outputs(multi, np.ones(3), p)
    with pytest.raises(ValueError, match=r"reward returned shape \(\)"):
        masked_outputs(multi, np.ones(3), p, reward=lambda o: o.sum())
    with pytest.raises(ValueError, match=r"model returned shape \(\)"):
        masked_outputs(lambda b: b.sum(), np.ones(3), p)
    with pytest.raises(ValueError, match="label"):
        masked_outputs(multi, np.ones(3), p, reward=log_odds(5))
    with pytest.raises(ValueError, match="label"):
        masked_outputs(multi, np.ones((2, 3)), p, reward=log_odds([0, 1, 1]))
    with pytest.raises(ValueError, match="data"):
        masked_outputs(f, np.ones(3), p, baseline="mean")
    with pytest.raises(ValueError, match="baseline"):
        masked_outputs(f, np.ones(3), p, baseline="median")
    with pytest.raises(ValueError, match="baseline of shape"):
        masked_outputs(f, np.ones(3), p, baseline=np.ones(4))
    with pytest.raises(ValueError, match="params"):
        from flax import linen as nn

        masked_outputs(nn.Dense(1), np.ones(3), p)
    with pytest.raises(ValueError, match="disjoint"):
        TabularPlayers(4, groups=[[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="outside"):
        TabularPlayers(4, groups=[[0, 4]])
    with pytest.raises(ValueError, match="divide"):
        PatchPlayers((8, 8), (3, 3))
    with pytest.raises(ValueError, match="grid"):
        PatchPlayers((8, 8), (2, 2), cells=[16])
    with pytest.raises(ValueError, match="grid"):
        PatchPlayers((8, 8), (2, 2), cells=[(4, 0)])
    with pytest.raises(ValueError, match="chunk_size"):
        masked_outputs(f, np.ones(3), p, chunk_size=0)


def test_memory_budget_errors():
    f = lambda b: jnp.sum(b, axis=-1)  # noqa: E731
    with pytest.raises(MemoryBudgetError, match="KiB"):  # the output alone: 2**12 · 8 B = 32 KiB
        masked_outputs(f, np.ones(12), TabularPlayers(12), memory_budget="16K")
    with pytest.raises(MemoryBudgetError, match="one masked input"):
        masked_outputs(f, np.ones((4, 1000)), TabularPlayers(1000, groups=[[0], [1]]), memory_budget="40K")


def test_non_finite_names_the_mask():
    def f(b):  # NaN exactly when player 1 is present and player 0 absent
        return jnp.where((b[:, 1] > 0) & (b[:, 0] == 0), jnp.nan, b.sum(-1))

    with pytest.raises(NonFiniteOutputError, match=r"batch index \(1,\), mask 2 = players \(1,\)"):
        masked_outputs(f, np.array([[-1.0, -1.0, 1.0], [1.0, 1.0, 1.0]]), TabularPlayers(3))
    with pytest.raises(NonFiniteOutputError, match=r"mask 6 = players \(1, 2\)"):
        masked_outputs(f, np.ones(3), TabularPlayers(3), masks=[1, 6, 2])
    assert issubclass(NonFiniteOutputError, ValueError)


def test_under_jit_and_vmap(rng):
    """masked_outputs traces (the NaN check is skipped on tracers): jit and vmap agree."""
    wm = rng.normal(size=(4, 3))
    f = lambda b: jnp.tanh(b @ jnp.asarray(wm))  # noqa: E731
    xs, labels = rng.normal(size=(3, 4)), np.array([0, 2, 1])
    p = TabularPlayers(4)
    want = masked_outputs(f, xs, p, reward=log_odds(labels))
    got = jax.jit(lambda x, y: masked_outputs(f, x, p, reward=log_odds(y)))(xs, labels)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    got = jax.vmap(lambda x, y: masked_outputs(f, x, p, reward=log_odds(y), chunk_size=4))(xs, labels)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8])
def test_log_odds_accepts_any_integer_label_dtype(dtype):
    logits = jnp.asarray([[0.5, 1.5, -1.0], [2.0, 0.0, 0.0]])
    got = log_odds(np.asarray([1, 0], dtype=dtype))(logits)
    p = jax.nn.softmax(logits, axis=1)
    want = jnp.log(jnp.asarray([p[0, 1], p[1, 0]]) / (1 - jnp.asarray([p[0, 1], p[1, 0]])))
    np.testing.assert_allclose(got, want, rtol=1e-10)


# ----------------------------------------------------------------------------- learned baselines


def test_learned_baseline_reaches_the_known_optimum_of_an_additive_model():
    """Additive model: Σ_T|I_and(T)| = Σ_i |w_i|·|x_i − b_i|, minimized at the median of x_i
    (inside the box) or at the box edge nearest to it."""
    x = np.random.default_rng(0).normal(size=(25, 3))
    w = jnp.array([1.0, -2.0, 0.5])
    model = lambda b: b @ w  # noqa: E731
    med = np.median(x, axis=0)
    res = learn_baseline(model, x, TabularPlayers(3), box=(-3.0, 3.0), init="zeros")
    assert res.baseline.shape == (3,) and res.loss.shape == (201,)
    np.testing.assert_allclose(res.baseline, med, atol=0.02)
    best = np.mean(np.sum(np.abs(w) * np.abs(x - med), axis=1))
    np.testing.assert_allclose(float(res.loss[0]), np.mean(np.sum(np.abs(w) * np.abs(x), axis=1)), rtol=1e-12)
    assert best <= float(res.loss[-1]) <= best * (1 + 1e-3)
    # an active box: the optimum is the edge nearest to the median
    low = med + np.array([0.5, -1.0, -1.0])
    boxed = learn_baseline(model, x, TabularPlayers(3), box=(low, low + 0.2), steps=100)
    np.testing.assert_allclose(boxed.baseline, [low[0], low[1] + 0.2, low[2] + 0.2], atol=1e-9)
    # an optax optimizer of one's own (plain SGD) also gets there
    sgd = learn_baseline(model, x, TabularPlayers(3), box=(-3.0, 3.0), optimizer=optax.sgd(0.01), steps=300)
    np.testing.assert_allclose(sgd.baseline, med, atol=0.05)


def test_learned_baseline_sparsifies_a_flax_model_on_patches():
    from jinter.data import load_dataset
    from jinter.models import model_for_dataset

    ds = load_dataset("digits", seed=0)
    model = model_for_dataset(ds, "mlp", hidden=(16,))
    params = model.init(jax.random.PRNGKey(0), jnp.asarray(ds.x_train[:1]))
    players = PatchPlayers((8, 8, 1), (2, 2), cells=(5, 6, 9, 10), channels_last=True)
    x, y = ds.x_test[:6], ds.y_test[:6].astype(np.int64)
    res = learn_baseline(model, x, players, params=params, reward=log_odds(y), data=ds.x_train, steps=40)
    assert res.baseline.shape == (8, 8, 1)
    assert np.all(res.baseline >= ds.x_train.min(axis=0) - 1e-12) and np.all(res.baseline <= ds.x_train.max(axis=0) + 1e-12)
    assert float(res.loss[-1]) < 0.9 * float(res.loss[0])  # ‖I_and‖₁ down by more than 10%
    v = masked_outputs(model, x, players, params=params, reward=log_odds(y), baseline=res.baseline)
    from jinter.transforms import mobius

    np.testing.assert_allclose(float(np.mean(np.sum(np.abs(mobius(v)[..., 1:]), -1))), float(res.loss[-1]), rtol=1e-5)  # float32 model


def test_learned_baseline_errors():
    x = np.random.default_rng(1).normal(size=(4, 3))
    players = TabularPlayers(3)
    model = lambda b: jnp.sum(b, axis=-1)  # noqa: E731
    with pytest.raises(ValueError, match="differentiates"):
        learn_baseline(host_model(lambda b: b.sum(-1)), x, players)
    with pytest.raises(ValueError, match="differentiates"):
        learn_baseline((model, model), x, players)
    with pytest.raises(ValueError, match="steps"):
        learn_baseline(model, x, players, steps=-1)
    with pytest.raises(ValueError, match="low ≤ high"):
        learn_baseline(model, x, players, box=(1.0, 0.0))
    with pytest.raises(ValueError, match="batch axis"):
        learn_baseline(model, x[0], players)
    with pytest.raises(ValueError, match="init"):
        learn_baseline(model, x, players, init="median")
    with pytest.raises(ValueError, match="step 0"):
        learn_baseline(lambda b: jnp.log(b[:, 0]), x, players, box=(-1.0, -0.5), steps=3)


# ----------------------------------------------------------------------------- memory plan, progress, no silent conversions


def test_memory_plan_at_n30_states_the_bytes_before_allocating():
    """n = 30: 2**30 float64 values are 8 GiB; a budget below that is refused up front."""
    f = lambda x: jnp.sum(x, axis=-1)  # noqa: E731
    with pytest.raises(MemoryBudgetError, match=r"8\.0 GiB"):
        masked_outputs(f, np.ones(30), TabularPlayers(30), memory_budget="6G")
    # output fits alone, but not with one chunk through the model beside it: the message adds both
    with pytest.raises(MemoryBudgetError, match=r"8\.0 GiB for the values on 1073741824 masks"):
        masked_outputs(f, np.ones(30), TabularPlayers(30), memory_budget=8 * 2**30 + 100)


def test_memory_plan_counts_the_models_activations():
    """A wide hidden layer dominates a chunk: the plan shrinks the chunk, then refuses with bytes."""
    from jinter.masking import _Apply, _Id, _plan_chunks

    w1, w2 = jnp.ones((8, 20000)) / 100.0, jnp.ones(20000) / 100.0
    model = lambda x: jnp.tanh(x @ w1) @ w2  # noqa: E731  # 160 KB of activations per masked input
    x = np.linspace(0.0, 1.0, 8)
    want = masked_outputs(model, x, TabularPlayers(8), chunk_size=256)
    got = masked_outputs(model, x, TabularPlayers(8), memory_budget="2M")
    np.testing.assert_allclose(got, want, rtol=1e-12)
    args = (_Apply("fn", _Id(model)), None, jnp.asarray(x), np.zeros(8), TabularPlayers(8).owner)
    _, chunk = _plan_chunks(args, jnp.int32, False, 1, 256, (8,), jnp.float64, 2 * 2**20, None)
    assert chunk <= 2 * 2**20 // (20000 * 8) and chunk >= 1  # activations, not only the 64 B inputs
    with pytest.raises(MemoryBudgetError, match="through the model"):
        masked_outputs(model, x, TabularPlayers(8), memory_budget="200K")  # one input's activations (320 KB as XLA reports them)


def test_progress_bar_on_request_and_silent_by_default(capsys):
    f = lambda x: jnp.sum(x, axis=-1)  # noqa: E731
    x = np.arange(6.0)
    quiet = masked_outputs(f, x, TabularPlayers(6), chunk_size=8)
    assert "masked inputs" not in capsys.readouterr().err  # fast: no bar
    loud = masked_outputs(f, x, TabularPlayers(6), chunk_size=8, progress=True)
    assert "masked inputs (64 masks)" in capsys.readouterr().err
    np.testing.assert_array_equal(quiet, loud)
    np.testing.assert_allclose(loud, [sum(x[i] for i in range(6) if s >> i & 1) for s in range(64)])


def test_no_silent_conversions(rng):
    f = lambda x: jnp.sum(x, axis=-1)  # noqa: E731
    with pytest.raises(TypeError, match="v is complex"):
        jinter.mobius(np.array([1.0, 2.0 + 1.0j]))
    with pytest.raises(TypeError, match="complex outputs"):
        masked_outputs(lambda x: jax.lax.complex(jnp.sum(x, -1), x[:, 0]), np.ones(3), TabularPlayers(3))
    with pytest.raises(TypeError, match="baseline is complex"):
        masked_outputs(f, np.ones(3), TabularPlayers(3), baseline=np.ones(3) * 1j)
    ids = np.array([1, 4, 7, 2, 3])
    table = jnp.asarray(rng.normal(size=(10,)))
    g = lambda t: table[t].sum(-1)  # noqa: E731
    tokens = TokenPlayers(5, positions=[1, 2, 3])
    with pytest.raises(TypeError, match="token ids .* integer token id"):
        masked_outputs(g, ids, tokens, baseline=3.7)
    with pytest.raises(ValueError, match="mask token"):
        masked_outputs(g, ids, tokens)  # no default token: zeros would be token 0
    with pytest.raises(ValueError, match="token 0, a real token"):
        masked_outputs(g, ids, tokens, baseline="zeros")
    # a named mask token is used, equal to passing it as the baseline
    named = masked_outputs(g, ids, TokenPlayers(5, positions=[1, 2, 3], mask_token=9))
    np.testing.assert_allclose(named, masked_outputs(g, ids, tokens, baseline=9), rtol=0)
    np.testing.assert_allclose(named[0], float(table[1] + table[9] * 3 + table[3]), rtol=1e-12)
    with pytest.raises(TypeError, match="mask_token must be an integer"):
        TokenPlayers(5, mask_token=1.5)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        masked_outputs(f, np.ones(3), TabularPlayers(3), chunk_size="big")


def test_players_must_be_a_players_object():
    """Every entry point that takes players names the argument instead of an AttributeError."""
    from jinter.masking import learn_baseline, mean_baseline

    for bad in (4, (4,), "tabular"):
        with pytest.raises(TypeError, match="players must be a players object"):
            mean_baseline(np.zeros((3, 4)), bad)
        with pytest.raises(TypeError, match="players must be a players object"):
            learn_baseline(lambda b: b.sum(-1), np.zeros((2, 4)), bad)
        with pytest.raises(TypeError, match="players must be a players object"):
            jinter.masked_outputs(lambda b: b.sum(-1), np.zeros(4), bad)


def test_log_odds_of_one_binary_logit_and_non_float_outputs():
    """One binary logit z: log_odds(1) is z, log_odds(0) is −z (documented; before, label 1 looked up
    a second column and gave NaN); integer or bool model outputs give float values."""
    players = jinter.TabularPlayers(4)
    w = jnp.array([1.0, -2.0, 0.5, 3.0])
    z = jinter.masked_outputs(lambda b: b @ w, np.ones(4), players, baseline=np.zeros(4))
    for label, sign in ((1, 1.0), (0, -1.0)):
        v = jinter.masked_outputs(lambda b: (b @ w)[:, None], np.ones(4), players, baseline=np.zeros(4),
                                  reward=jinter.log_odds(label))
        np.testing.assert_allclose(v, sign * z)
    v = jinter.masked_outputs(lambda b: b.sum(-1).astype(jnp.int32), np.ones(4), players)
    assert jnp.issubdtype(v.dtype, jnp.floating) and float(v[-1]) == 4.0


def test_complex_inputs_and_empty_data_are_refused():
    from jinter.masking import mean_baseline

    players = jinter.TabularPlayers(4)
    with pytest.raises(TypeError, match="data is complex"):
        jinter.masked_outputs(lambda b: b.sum(-1), np.ones(4), players, baseline="mean", data=np.ones((3, 4)) * (1 + 2j))
    with pytest.raises(TypeError, match="x is complex"):
        jinter.masked_outputs(lambda b: b.sum(-1), np.ones(4) + 1j, players)
    with pytest.raises(ValueError, match="no samples"):
        mean_baseline(np.ones((0, 4)), players)
    with pytest.raises(ValueError, match="no samples"):
        mean_baseline(np.ones((0, 4)))
    with pytest.raises(MemoryBudgetError, match="float64 values alone need 32.0 GiB per input"):
        jinter.masked_outputs(lambda b: b.sum(-1), np.ones(32), jinter.TabularPlayers(32))


@pytest.mark.parametrize("make", [
    lambda: jinter.TabularPlayers(2.5), lambda: jinter.TabularPlayers("4"), lambda: jinter.TabularPlayers(True),
    lambda: jinter.TabularPlayers(float("nan")), lambda: jinter.TabularPlayers(4, groups=[[0.5], [1.7]]),
    lambda: jinter.TabularPlayers(4, groups=[[True, False, True]]), lambda: jinter.TabularPlayers(4, groups=[]),
    lambda: jinter.PatchPlayers((8, 8), (2.5, 2.5)), lambda: jinter.PatchPlayers((4, 4), (2, 2), cells=[1.5, 2]),
    lambda: jinter.PatchPlayers((3, -4, 4), (2, 2)), lambda: jinter.PatchPlayers((0, 4), (2, 2)),
    lambda: jinter.PatchPlayers((8, 8), 2), lambda: jinter.PatchPlayers((4, 4, 3), (2, 2), channels_last="yes"),
    lambda: jinter.TokenPlayers(2.5), lambda: jinter.TokenPlayers(3, embed_dim=2.5), lambda: jinter.TokenPlayers(3, embed_dim=0),
    lambda: jinter.TokenPlayers(3, positions=[0.5, 2]), lambda: jinter.TokenPlayers(4, positions=[]),
    lambda: jinter.TokenPlayers(3, mask_token=-1),
])
def test_player_specs_refuse_what_they_would_truncate(make):
    """Before: TabularPlayers(2.5) had 2 players, groups [[0.5]] became ((0,),), a negative image dim
    gave n = −4; now each is an error naming the argument."""
    with pytest.raises((ValueError, TypeError)):
        make()


def test_learn_baseline_checks_its_options_and_shapes():
    from jinter.masking import learn_baseline

    players, f = jinter.TabularPlayers(4), (lambda b: b @ jnp.array([1.0, -2.0, 0.5, 3.0]))
    x = np.random.default_rng(0).normal(size=(5, 4))
    for kwargs, error, message in [
        (dict(steps=2.5), ValueError, "steps"), (dict(steps=True), ValueError, "steps"),
        (dict(steps=float("nan")), ValueError, "steps"), (dict(learning_rate=-1.0), ValueError, "learning_rate"),
        (dict(learning_rate="a"), ValueError, "learning_rate"), (dict(data=np.ones((5, 3))), ValueError, "data"),
        (dict(init=np.ones(3)), ValueError, "init must broadcast"), (dict(box=(np.zeros(3), np.ones(3))), ValueError, "box low"),
        (dict(box=(0.0, 1.0, 2.0)), ValueError, "box must be a pair"), (dict(init=np.ones(4) * 1j), TypeError, "init is complex"),
        (dict(data=np.ones((5, 4)) * 1j), TypeError, "data is complex"),
    ]:
        with pytest.raises(error, match=message):
            learn_baseline(f, x, players, steps=kwargs.pop("steps", 2), **kwargs)
    with pytest.raises(TypeError, match="x is complex"):
        learn_baseline(f, x + 1j, players, steps=1)
    with pytest.raises(ValueError, match="token-id inputs"):
        learn_baseline(lambda b: b.sum(-1).astype(float), np.ones((2, 4), int), jinter.TokenPlayers(4, mask_token=0), steps=1)


def test_host_model_options_are_not_truncated():
    f = lambda b: b.sum(1)  # noqa: E731
    assert jinter.host_model(f, batch_size=np.int64(3)).batch_size == 3
    for kwargs in (dict(batch_size=2.5), dict(batch_size=True), dict(batch_size="3"), dict(output_shape=(2.5,))):
        with pytest.raises(ValueError, match="batch_size|output_shape"):
            jinter.host_model(f, **kwargs)
    with pytest.raises(TypeError, match="output_shape must be a sequence"):
        jinter.host_model(f, output_shape="ab")


def test_integer_tabular_inputs_unsigned_masks_and_progress():
    players = jinter.TabularPlayers(4)
    f = lambda b: b.sum(-1)  # noqa: E731
    with pytest.raises(TypeError, match="x has integer values"):
        jinter.masked_outputs(f, np.ones(4, int), players, baseline=np.full(4, 0.5))
    with pytest.raises(ValueError, match="integer inputs"):
        jinter.masked_outputs(f, np.ones(4, int), players, baseline="mean", data=np.ones((3, 4), int))
    with pytest.raises(ValueError, match=f"mask {2**63 + 1} is out of range"):
        jinter.masked_outputs(f, np.ones(4), players, masks=np.array([2**63 + 1], dtype=np.uint64))
    for bad in ("yes", 2):
        with pytest.raises(ValueError, match="progress must be None, True or False"):
            jinter.masked_outputs(f, np.ones(4), players, progress=bad)
    np.testing.assert_array_equal(jinter.masked_outputs(f, np.ones(4), players, masks=np.array([3], np.uint64)), [2.0])


def test_nan_baseline_is_named():
    """A baseline array with NaN is refused as the baseline (it was reported as non-finite model
    values at mask 0)."""
    import jinter

    base = np.zeros(4)
    base[2] = np.nan
    with pytest.raises(ValueError, match="baseline holds NaN or inf"):
        jinter.masked_outputs(lambda b: b.sum(-1), np.ones(4), jinter.TabularPlayers(4), baseline=base)


def test_jax_does_not_miscompile_a_constant_weight_matmul_then_sum():
    """jax/jaxlib 0.10.2 (excluded in pyproject.toml) returned, on the CPU, values of player 0
    alone for ``(z @ W).sum(-1)`` with a constant ``W`` of shape (3, 512) (jax-ml/jax#39103 is
    the same XLA:CPU matmul-fusion bug). This guards the installed JAX against it."""
    x = np.array([1.0, -2.0, 3.0])
    for width in (256, 512, 1024):
        w = jnp.ones((3, width)) * 0.01
        v = np.asarray(masked_outputs(lambda z, w=w: (z @ w).sum(-1), x, TabularPlayers(3), progress=False))
        ref = np.array([x[[i for i in range(3) if m >> i & 1]].sum() * 0.01 * width for m in range(8)])
        np.testing.assert_allclose(v, ref, rtol=1e-5, atol=1e-6, err_msg=f"width {width}")


def test_seventh_user_trial_masking():
    """Defects a black-box user trial reproduced (2026-12-08), each now a clear error or kept promise."""
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(3, 4, rngs=rngs, param_dtype=jnp.float32)
            self.bn = nnx.BatchNorm(4, rngs=rngs, param_dtype=jnp.float32)
            self.do = nnx.Dropout(0.2, rngs=rngs)

        def __call__(self, x):
            return self.do(self.bn(self.l1(x))).sum(-1)

    net, x3 = Net(nnx.Rngs(0)), np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"nnx module in training mode: BatchNorm at 'bn'.*model.eval\(\)"):
        masked_outputs(net, x3, TabularPlayers(3))
    net.bn.use_running_average = True
    with pytest.raises(ValueError, match=r"Dropout at 'do' drops units at random \(rate 0.2\)"):
        masked_outputs(net, x3, TabularPlayers(3))
    net.eval()
    v = masked_outputs(net, x3, TabularPlayers(3), progress=False)
    np.testing.assert_allclose(v, masked_outputs(net, x3, TabularPlayers(3), chunk_size=2, progress=False))

    f = lambda z: z.sum(-1)  # noqa: E731
    x = np.arange(1.0, 5.0)
    with pytest.raises(ValueError, match=r"params=\.\.\. is for Flax linen modules"):
        masked_outputs(f, x, TabularPlayers(4), params={"w": 1.0})
    with pytest.raises(ValueError, match=r'data=\.\.\. is used only by baseline="mean".*default baseline is zeros'):
        masked_outputs(f, x, TabularPlayers(4), data=np.ones((3, 4)))

    # a reward on its own: labels out of range are refused, and it can be jitted
    z = jnp.array([[1.0, 2.0, -1.0], [3.0, 0.0, -3.0]])
    for bad, r in ((5, logit), (5, log_odds), (-1, logit)):
        with pytest.raises(ValueError, match=r"label must be class indices in \[0, 3\)"):
            r(bad)(z)
    with pytest.raises(ValueError, match=r"in \[0, 1\) for a model with 1 output"):
        logit(1)(jnp.array([[2.0], [-3.0]]))
    np.testing.assert_allclose(jax.jit(log_odds(1))(z), log_odds(1)(z))

    # integer baselines that would wrap around in the ids' dtype; mask_token and baseline both given
    ids = np.array([1, 5, 7, 2])
    idsum = lambda i: i.astype(jnp.float32).sum(-1)  # noqa: E731
    with pytest.raises(ValueError, match=r"baseline -1 does not fit token ids of dtype uint8"):
        masked_outputs(idsum, ids.astype(np.uint8), TokenPlayers(4), baseline=-1)
    with pytest.raises(ValueError, match=r"baseline 1099511627776 does not fit token ids of dtype int32"):
        masked_outputs(idsum, ids.astype(np.int32), TokenPlayers(4), baseline=2**40)
    with pytest.raises(ValueError, match=r"mask_token 300 does not fit token ids of dtype int8"):
        masked_outputs(idsum, ids.astype(np.int8), TokenPlayers(4, mask_token=300))
    with pytest.raises(ValueError, match=r"both TokenPlayers\(mask_token=0\) and baseline= are given"):
        masked_outputs(idsum, ids, TokenPlayers(4, mask_token=0), baseline=3)

    # mean_baseline: integers averaged in the default float, NaN named
    assert mean_baseline(np.ones((2, 3), np.int32), TabularPlayers(3)).dtype == jnp.result_type(float)
    with pytest.raises(ValueError, match=r"data holds NaN or inf \(first in sample 1\)"):
        mean_baseline(np.array([[0.0, 1.0], [np.nan, 1.0]]))

    # a host model whose output shape changes after the probe: jinter's own ValueError
    fn = lambda b: b.sum(-1) if len(b) == 2 else b[:, :2]  # noqa: E731
    with pytest.raises(ValueError, match=r"returned shape \(16, 2\).*expected \(16,\).*first probe batch"):
        masked_outputs(host_model(fn), np.ones(4), TabularPlayers(4), progress=False)

    # learn_baseline options, player specs
    lin = lambda b: b @ jnp.array([1.0, -2.0, 0.5])  # noqa: E731
    xs = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(TypeError, match="optimizer must be an optax.GradientTransformation"):
        learn_baseline(lin, xs, TabularPlayers(3), optimizer="adam", steps=2)
    with pytest.raises(ValueError, match="box must be .* without NaN"):
        learn_baseline(lin, xs, TabularPlayers(3), box=(np.nan, 1.0), steps=2)
    with pytest.raises(ValueError, match="patch_shape must not be empty"):
        PatchPlayers((8, 8), ())


def test_seventh_user_trial_transforms():
    with pytest.raises(ValueError, match=r"order k \(of n=3 players\) must be an integer in \[0, 3\], got 1.5"):
        jinter.masks_of_order(3, 1.5)
    with pytest.raises(ValueError, match=r"n must be an integer in \[0, 40\], got -1"):
        jinter.mask_orders(-1)
    np.testing.assert_array_equal(jinter.mask_orders(2.0), [0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"v of shape \(2, 8\) and the interactions of shape \(3, 8\)"):
        jinter.matching_error(np.ones((2, 8)), np.ones((3, 8)))
    with pytest.raises(ValueError, match=r"i_and of shape \(2, 8\) and i_or of shape \(3, 8\)"):
        jinter.reconstruct(np.ones((2, 8)), np.ones((3, 8)))
    assert jinter.matching_error(np.ones((1, 8)), np.ones((3, 8))).shape == (3,)  # broadcasting stays
    with pytest.raises(MemoryBudgetError, match=r"raise the budget \(env JINTER_MEMORY_BUDGET\)"):
        with _env_budget("1K"):
            jinter.mobius(jnp.zeros(256))


import contextlib  # noqa: E402
import os  # noqa: E402


@contextlib.contextmanager
def _env_budget(value):
    old = os.environ.get("JINTER_MEMORY_BUDGET")
    os.environ["JINTER_MEMORY_BUDGET"] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ["JINTER_MEMORY_BUDGET"]
        else:
            os.environ["JINTER_MEMORY_BUDGET"] = old
