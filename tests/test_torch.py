"""Host models (numpy callables, PyTorch modules) against hand-built masked inputs.

The host-model checks run without torch; the PyTorch ones skip cleanly when torch is absent.
"""

import math
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from jinter import (
    PatchPlayers,
    TabularPlayers,
    TokenPlayers,
    and_or,
    host_model,
    log_odds,
    logit,
    masked_outputs,
    mobius,
)


def _log_odds_np(logits, y):
    """The papers' reward log(p_y / (1 - p_y)) = l_y - logsumexp_{c != y} l_c, by hand."""
    others = np.delete(logits, y, axis=-1)
    m = others.max(-1)
    return logits[..., y] - (m + np.log(np.exp(others - m[..., None]).sum(-1)))


# ------------------------------------------------------------------ host_model (no torch)


def test_host_model_float64_from_float32_fn(rng):
    w = rng.normal(size=(5, 3)).astype(np.float32)
    x = rng.normal(size=5)
    seen = []

    def fn(b):
        seen.append((b.dtype, b.flags.writeable))
        return (b.astype(np.float32) @ w).astype(np.float32)

    ref = np.stack([(np.where([(s >> i) & 1 for i in range(5)], x, 0.0).astype(np.float32) @ w) for s in range(32)])
    for kwargs in ({}, {"output_shape": (3,)}):  # x64 on: float64 v by default, shape given or not
        v = masked_outputs(host_model(fn, **kwargs), x, TabularPlayers(5), reward=logit(2))
        assert v.dtype == jnp.float64
        np.testing.assert_allclose(v, ref[:, 2].astype(np.float64), rtol=1e-6)
    assert all(ok for _, ok in seen)  # fn always gets writable arrays
    v32 = masked_outputs(host_model(fn, output_shape=(3,), dtype=np.float32), x, TabularPlayers(5), reward=logit(2))
    assert v32.dtype == jnp.float32


def test_host_model_input_dtype(rng):
    """``input_dtype``: fn gets its float batches in that dtype (cast in JAX, fused with the
    masking; by numpy where JAX lacks it), the same values as hand-built masked inputs cast."""
    import jax

    w = rng.normal(size=(5, 3)).astype(np.float32)
    x = rng.normal(size=5)
    seen = []

    def fn(b):
        seen.append((b.dtype, b.flags.writeable))
        return b @ w.astype(b.dtype)

    hand = np.stack([np.where([(s >> i) & 1 for i in range(5)], x, 0.0) for s in range(32)])  # float64
    v = masked_outputs(host_model(fn, output_shape=(3,), input_dtype=np.float32), x, TabularPlayers(5),
                       reward=logit(2))
    assert seen == [(np.float32, True)] * 2  # the trace-time probe, then the one chunk
    assert v.dtype == jnp.float64
    np.testing.assert_array_equal(v, (hand.astype(np.float32) @ w)[:, 2].astype(np.float64))
    # integer batches (token ids) are passed as they are
    seen.clear()
    ids = masked_outputs(host_model(fn, output_shape=(3,), input_dtype=np.float32), np.arange(5),
                         TabularPlayers(5), baseline=0, reward=logit(0))
    assert {d for d, _ in seen} == {np.dtype(np.int64)} and ids.shape == (32,)
    # x64 off: JAX has no float64, so numpy casts on the host (a fresh, writable copy)
    jax.config.update("jax_enable_x64", False)
    seen.clear()
    v64 = masked_outputs(host_model(fn, output_shape=(3,), input_dtype=np.float64), x.astype(np.float32),
                         TabularPlayers(5), reward=logit(2))
    assert seen == [(np.float64, True)] * 2 and v64.dtype == jnp.float32
    with pytest.raises(ValueError, match="input_dtype must be a float dtype"):
        host_model(np.sum, input_dtype=np.int32)
    with pytest.raises(TypeError, match="input_dtype must be a numpy float dtype"):
        host_model(np.sum, input_dtype="no such dtype")


def test_host_model_output_shape_mismatch_is_value_error(rng):
    x = rng.normal(size=4)
    fn = lambda b: np.stack([b.sum(-1), b.prod(-1)], axis=-1)  # noqa: E731  (B, 2)
    with pytest.raises(ValueError, match=r"returned shape \(2, 2\).*expected \(2, 3\)"):
        masked_outputs(host_model(fn, output_shape=(3,)), x, TabularPlayers(4), reward=logit(0))
    with pytest.raises(ValueError, match=r"returned shape \(2, 2\).*expected \(2,\)"):
        masked_outputs(host_model(fn, output_shape=()), x, TabularPlayers(4))
    # a model that drops inputs of the batch
    with pytest.raises(ValueError, match=r"returned shape \(1,\).*expected \(2,\)"):
        masked_outputs(host_model(lambda b: b[:1].sum(-1)), x, TabularPlayers(4))
    with pytest.raises(TypeError, match="must return an array"):
        masked_outputs(host_model(lambda b: float(b.sum())), x, TabularPlayers(4))


def test_host_model_argument_errors():
    with pytest.raises(TypeError, match="callable fn"):
        host_model(3)
    with pytest.raises(ValueError, match="dtype must be a float dtype"):
        host_model(np.sum, dtype=np.int32)
    with pytest.raises(ValueError, match="batch_size must be an integer ≥ 1"):
        host_model(np.sum, batch_size=0)
    with pytest.raises(TypeError, match="output_shape"):
        host_model(np.sum, output_shape=3)


# ------------------------------------------------------------------ PyTorch


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _resnet(torch, num_classes=3, width=8):
    """A small ResNet-style network (conv-BN-ReLU stem, two basic blocks with skips, one
    strided with a 1x1 projection, global average pool, linear head), BN in eval mode."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = torch.relu(self.b1(self.c1(x)))
            return torch.relu(self.b2(self.c2(y)) + self.skip(x))

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                        Block(width, width, 1), Block(width, 2 * width, 2),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes))
    with torch.no_grad():  # non-trivial running statistics, so BN is not the identity
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def _hand_masked_images(x, base, cells, grid_w, patch, n):
    """All 2**n masked images built by slicing: cell c of the grid covers rows
    (c // grid_w)·p .. +p and columns (c % grid_w)·p .. +p, all channels."""
    out = np.empty((2**n,) + x.shape)
    for s in range(2**n):
        img = x.copy()
        for i, c in enumerate(cells):
            if not (s >> i) & 1:
                r, q = divmod(c, grid_w)
                img[:, r * patch:(r + 1) * patch, q * patch:(q + 1) * patch] = \
                    base[:, r * patch:(r + 1) * patch, q * patch:(q + 1) * patch]
        out[s] = img
    return out


def test_torch_resnet_matches_hand_built_masks(torch, rng):
    from jinter.integrations.torch import torch_model

    net = _resnet(torch)
    x = rng.normal(size=(3, 16, 16))
    base = rng.normal(size=(3, 16, 16)) * 0.1
    cells = [1, 2, 5, 6, 9, 10, 13]  # 7 of the 16 cells of 4x4 patches; the rest is background
    players = PatchPlayers((3, 16, 16), (4, 4), cells=cells)
    ref_imgs = _hand_masked_images(x, base, cells, 4, 4, players.n)

    net64 = _resnet(torch).double()
    with torch.no_grad():
        ref64 = _log_odds_np(net64(torch.from_numpy(ref_imgs)).numpy(), 1)
    calls = []

    def out(t):
        calls.append(t.shape[0])
        return t

    v64 = masked_outputs(torch_model(net64, output=out, output_shape=(3,), batch_size=20), x, players,
                         baseline=base, reward=log_odds(1))
    assert v64.dtype == jnp.float64
    np.testing.assert_allclose(v64, ref64, rtol=1e-12, atol=1e-12)
    assert max(calls) <= 20

    # float32 network: float64 values carrying the network's float32 rounding; the masked
    # inputs reach it as float32 (built in its dtype inside JAX, nothing converted by torch)
    with torch.no_grad():
        ref32 = _log_odds_np(net(torch.from_numpy(ref_imgs).float()).double().numpy(), 1)
    got = []
    hook = net.register_forward_pre_hook(lambda _m, args: got.append(args[0].dtype))
    model32 = torch_model(net)
    assert model32.input_dtype == np.float32
    v32 = masked_outputs(model32, x, players, baseline=base, reward=log_odds(1))
    hook.remove()
    assert set(got) == {torch.float32}
    assert v32.dtype == jnp.float64
    np.testing.assert_allclose(v32, ref32, rtol=1e-5, atol=1e-5)

    # float64 v gives a float64 certificate, and the AND part reproduces v
    res = and_or(v64)
    assert bool(res.converged)
    np.testing.assert_allclose(jnp.sum(mobius(v64)), v64[-1], rtol=1e-9)


def test_torch_documented_pattern_runs_without_warnings(torch, rng):
    lin = torch.nn.Linear(6, 2).double().eval()

    def fn(b):  # the pattern of the host_model docstring
        with torch.no_grad():
            return lin(torch.from_numpy(b)).numpy()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = masked_outputs(host_model(fn, output_shape=(2,)), rng.normal(size=6), TabularPlayers(6),
                           reward=logit(0))
    assert v.shape == (64,) and v.dtype == jnp.float64


def test_torch_model_errors(torch, rng):
    from jinter.integrations.torch import torch_model

    net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match="training mode"):
        torch_model(net)
    with pytest.raises(TypeError, match="nn.Module or a callable"):
        torch_model("resnet18")
    with pytest.raises(ValueError, match="device must be a torch device"):
        torch_model(net.eval(), device="bogus")
    with pytest.raises(ValueError, match=r"expected \(2, 5\)"):
        masked_outputs(torch_model(net.eval(), output_shape=(5,)), np.ones(4), TabularPlayers(4), reward=logit(0))
    with pytest.raises(TypeError, match="pass output="):
        masked_outputs(torch_model(lambda t: {"y": t}), np.ones(4), TabularPlayers(4))


def test_torch_batch_size(torch):
    from jinter.integrations.torch import torch_batch_size

    net = torch.nn.Sequential(torch.nn.Linear(4, 2)).eval()
    # per input: the Linear's and the Sequential's outputs (2 + 2 floats) + the input (4 floats)
    per_input = (2 + 2 + 4) * 4
    assert torch_batch_size(net, (4,), memory_budget=2 * per_input * 10) == 10
    assert torch_batch_size(net, (4,), memory_budget=1) == 1
    assert torch_batch_size(net, (4,), memory_budget="1G", max_batch=64) == 64
    big = _resnet(torch)
    small_budget = torch_batch_size(big, (3, 16, 16), memory_budget="1M")
    assert 1 <= small_budget < torch_batch_size(big, (3, 16, 16), memory_budget="64M")


def test_torchvision_resnet18_recipe(torch, rng):
    """The documented torchvision recipe (jinter.integrations.torch), where torchvision loads
    beside this torch: a float32 resnet18 at random init as written there, and in float64."""
    try:
        import torchvision
    except Exception as e:  # noqa: BLE001 - e.g. a CUDA torchvision wheel beside a CPU torch
        pytest.skip(f"torchvision does not load here: {type(e).__name__}: {e}")
    from jinter.integrations.torch import torch_batch_size, torch_model

    x = rng.normal(size=(3, 32, 32))
    cells = [1, 2, 5, 6]
    players = PatchPlayers((3, 32, 32), (8, 8), cells=cells)
    imgs = _hand_masked_images(x, np.zeros_like(x), cells, 4, 8, 4)  # (16, 3, 32, 32) float64

    # the recipe: float32 network, float64 values v and certificate
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=10)
    net.eval()
    bs = torch_batch_size(net, players.input_shape)
    got = []
    hook = net.register_forward_pre_hook(lambda _m, args: got.append(args[0].dtype))
    v32 = masked_outputs(torch_model(net, output_shape=(10,), batch_size=bs), x, players, baseline="zeros",
                         reward=log_odds(3))
    hook.remove()
    assert v32.dtype == jnp.float64 and set(got) == {torch.float32}
    with torch.no_grad():
        ref32 = _log_odds_np(torch.cat([net(torch.from_numpy(imgs[i:i + bs]).float())
                                        for i in range(0, len(imgs), bs)]).double().numpy(), 3)
    # same float32 inputs in the same forward batches: the logits agree, only the rewards'
    # float64 rounding differs (jinter's log-odds in JAX, the reference's in numpy)
    np.testing.assert_allclose(v32, ref32, rtol=1e-12, atol=1e-12)
    res = and_or(v32)
    assert bool(res.converged)

    # float64 network: values exact to float64 rounding
    net64 = net.double()
    model = torch_model(net64, output_shape=(10,), batch_size=torch_batch_size(net64, (3, 32, 32)))
    v = masked_outputs(model, x, players, reward=log_odds(3))
    with torch.no_grad():
        ref = _log_odds_np(net64(torch.from_numpy(imgs)).numpy(), 3)
    np.testing.assert_allclose(v, ref, rtol=1e-12, atol=1e-12)
    assert math.isfinite(float(v[-1]))
    np.testing.assert_allclose(jnp.sum(mobius(v)), v[-1], rtol=1e-9)


def test_torch_second_user_trial(torch):
    """Training mode anywhere in the module (now or later) is refused; integer inputs reach the
    module as token ids; a torch tensor x is detached; the module's own exception is raised."""
    from jinter.integrations.torch import torch_model

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 3))
    net.eval()
    net[2].train()
    with pytest.raises(ValueError, match=r"training mode \(modules 2\)"):
        torch_model(net)
    net.eval()
    model, x, players = torch_model(net, output_shape=(3,)), np.linspace(-1, 1, 6), TabularPlayers(6)
    ref = masked_outputs(model, x, players, reward=log_odds(0))
    net.train()  # switched after wrapping: refused at the call
    with pytest.raises(ValueError, match="training mode"):
        masked_outputs(model, x, players, reward=log_odds(0))
    net.eval()
    np.testing.assert_array_equal(masked_outputs(model, torch.tensor(x, requires_grad=True), players,
                                                 reward=log_odds(0)), ref)

    class TokNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.e, self.l = torch.nn.Embedding(20, 8), torch.nn.Linear(8, 2)

        def forward(self, ids):
            assert ids.dtype == torch.long
            return self.l(self.e(ids).mean(1))

    tok = TokNet().eval()
    ids, tplayers = np.array([3, 5, 7, 9, 11]), TokenPlayers(5, mask_token=0)
    v = masked_outputs(torch_model(tok), ids, tplayers, reward=log_odds(0))
    with torch.no_grad():
        full = tok(torch.tensor(ids)[None])[0].double()
    assert float(v[-1]) == pytest.approx(float(full[0] - full[1]), abs=1e-6)
    with pytest.raises(IndexError, match="index out of range") as err:  # torch's own error, with a note
        masked_outputs(torch_model(tok), np.array([3, 50, 7, 9, 11]), tplayers, reward=log_odds(0))
    assert any("raised by the host model" in note for note in err.value.__notes__)
