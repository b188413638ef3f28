r"""Model outputs on masked inputs: ``v(x_S)`` for every subset ``S`` of players (docs/math.md §1).

``x_S`` keeps the input elements of the players in ``S`` and replaces those of the other
players by a baseline; elements that belong to no player (background) always stay. A player
specification (:class:`TabularPlayers`, :class:`PatchPlayers`, :class:`TokenPlayers`) maps
every input element to its player, so a masked input is one fused
``where(bit_{owner}(S), x, baseline)`` inside the jitted evaluation: masked inputs are never
materialized outside the chunk that feeds the model.

Masks follow :mod:`jinter.transforms`: bit ``i`` of ``S`` is player ``i``; the result has last
axis ``2**n`` (index 0 = ∅), ready for :func:`jinter.mobius` / :func:`jinter.or_mobius`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Callable, Literal, NamedTuple, Sequence, get_args

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from jinter._budget import MemoryBudgetError, check_budget, format_bytes, memory_budget
from jinter._checks import check_bool, check_finite, check_int, check_ints, check_option, check_real, is_traced
from jinter._host import HostModel, _Id, host_model, reraise_host_errors
from jinter.transforms import mobius

__all__ = [
    "TabularPlayers",
    "PatchPlayers",
    "TokenPlayers",
    "masked_outputs",
    "mean_baseline",
    "learn_baseline",
    "LearnedBaseline",
    "log_odds",
    "logit",
    "host_model",
    "HostModel",
    "NonFiniteOutputError",
]

MAX_CHUNK = 4096
"""Default cap on the number of masked inputs fed to the model at once."""
_LIVE_FACTOR = 4  # bytes live per masked input element: input + baseline blend + activations (guess)
_MAX_ALL_MASKS = 30  # 2**30 outputs is already 8 GiB in float64


class NonFiniteOutputError(ValueError):
    """Raised when a model output on some masked input is NaN or infinite."""


# --------------------------------------------------------------------------------------------
# Player specifications
# --------------------------------------------------------------------------------------------


class _Players:
    """Shared behaviour: ``owner`` maps every input element to its player (−1: background)."""

    n: int
    input_shape: tuple[int, ...]

    def _owner(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @functools.cached_property
    def owner(self) -> np.ndarray:
        """Int array of shape ``input_shape``: the player of each element, −1 for background."""
        owner = np.asarray(self._owner(), dtype=np.int32)
        owner.setflags(write=False)
        return owner

    @property
    def membership(self) -> np.ndarray:
        """Bool array ``(n, *input_shape)``: ``membership[i]`` marks the elements of player ``i``."""
        return self.owner[None] == np.arange(self.n).reshape((-1,) + (1,) * len(self.input_shape))

    @property
    def background(self) -> np.ndarray:
        """Bool array of shape ``input_shape``: elements in no player (never masked)."""
        return self.owner < 0


def _check_disjoint(groups: Sequence[Sequence[int]], size: int, what: str) -> np.ndarray:
    owner = np.full(size, -1, dtype=np.int32)
    for i, g in enumerate(groups):
        idx = np.asarray(g, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise ValueError(f"{what} {i} is empty")
        if idx.min() < 0 or idx.max() >= size:
            raise ValueError(f"{what} {i} has indices {idx.tolist()} outside [0, {size})")
        if np.any(owner[idx] >= 0) or len(set(idx.tolist())) != idx.size:
            raise ValueError(f"{what}s must be disjoint; {what} {i} = {idx.tolist()} overlaps another")
        owner[idx] = i
    return owner


def _refuse_complex(a: Any, what: str) -> None:
    """Inputs, baselines and data are real: a complex one is a ``TypeError`` naming it."""
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise TypeError(f"{what} is complex ({a.dtype}); inputs are real")


@dataclasses.dataclass(frozen=True)
class TabularPlayers(_Players):
    """Tabular input of ``n_features`` values; each feature is a player, or each group is.

    Args:
        n_features: input length (input shape ``(n_features,)``).
        groups: optional disjoint groups of feature indices; group ``i`` is player ``i`` and
            features in no group are background.
    """

    n_features: int
    groups: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "n_features", check_int(self.n_features, "n_features", 1))
        if self.groups is not None:
            groups = tuple(check_ints(g, "groups", flatten=True) for g in self.groups)
            if not groups or not all(groups):
                raise ValueError(f"groups must be non-empty groups of feature indices (at least one), got {self.groups!r}")
            object.__setattr__(self, "groups", groups)
            _check_disjoint(groups, self.n_features, "group")

    @property
    def n(self) -> int:
        return self.n_features if self.groups is None else len(self.groups)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n_features,)

    def _owner(self) -> np.ndarray:
        if self.groups is None:
            return np.arange(self.n_features)
        return _check_disjoint(self.groups, self.n_features, "group")


@dataclasses.dataclass(frozen=True)
class PatchPlayers(_Players):
    """A grid of patches over the trailing spatial dims of an image; each patch is a player.

    Example: ``PatchPlayers((8, 8), (2, 2))`` has 16 players (a 4×4 grid of 2×2 patches);
    ``PatchPlayers((8, 8), (2, 2), cells=[5, 6, 9, 10])`` uses only the central 2×2 cells
    (the rest is background), as [D24] picks 10 patches from the centre of a feature map.

    Args:
        image_shape: shape of one input. The last ``len(patch_shape)`` dims are spatial, any
            leading dims (channels first) are shared by a patch; with ``channels_last`` the
            last dim is the channel axis and the spatial dims come just before it.
        patch_shape: patch size along each spatial dim; must divide the spatial dims.
        cells: grid cells used as players, in player order: row-major flat indices into the
            grid or tuples of grid coordinates. Default: every cell, row-major.
        channels_last: whether the last dim of ``image_shape`` is a channel axis (NHWC).
    """

    image_shape: tuple[int, ...]
    patch_shape: tuple[int, ...]
    cells: tuple[int, ...] | None = None
    channels_last: bool = False

    def __post_init__(self):
        image = check_ints(self.image_shape, "image_shape", 1)
        patch = check_ints(self.patch_shape, "patch_shape", 1)
        object.__setattr__(self, "channels_last", check_bool(self.channels_last, "channels_last"))
        object.__setattr__(self, "image_shape", image)
        object.__setattr__(self, "patch_shape", patch)
        k = len(patch)
        if k == 0:
            raise ValueError("patch_shape must not be empty: one size per spatial axis, e.g. (2, 2)")
        if len(image) < k + int(self.channels_last):
            raise ValueError(
                f"image_shape {image} needs at least {k + int(self.channels_last)} dims for "
                f"patch_shape {patch}" + (" and a channel axis" if self.channels_last else "")
            )
        spatial = self._spatial
        if any(p <= 0 or s % p for s, p in zip(spatial, patch)):
            raise ValueError(f"patch_shape {patch} must divide the spatial dims {spatial} of {image}")
        if self.cells is not None:
            grid = self.grid_shape
            flat = []
            for c in self.cells:
                if isinstance(c, (tuple, list, np.ndarray)) and np.ndim(c) == 1:
                    c = check_ints(c, "cells")
                    if len(c) != len(grid) or any(not 0 <= a < g for a, g in zip(c, grid)):
                        raise ValueError(f"cell {c} is not a coordinate of the patch grid {grid}")
                    c = int(np.ravel_multi_index(c, grid))
                c = check_int(c, "cells entries", 0)
                if not 0 <= c < math.prod(grid):
                    raise ValueError(f"cell {c} is outside the patch grid {grid} ({math.prod(grid)} cells)")
                flat.append(c)
            if len(set(flat)) != len(flat):
                raise ValueError(f"cells must be distinct, got {flat}")
            if not flat:
                raise ValueError("cells must not be empty")
            object.__setattr__(self, "cells", tuple(flat))

    @property
    def _spatial(self) -> tuple[int, ...]:
        k = len(self.patch_shape)
        end = len(self.image_shape) - int(self.channels_last)
        return self.image_shape[end - k : end]

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Number of patches along each spatial dim."""
        return tuple(s // p for s, p in zip(self._spatial, self.patch_shape))

    @property
    def n(self) -> int:
        return math.prod(self.grid_shape) if self.cells is None else len(self.cells)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.image_shape

    def _owner(self) -> np.ndarray:
        grid = self.grid_shape
        coords = np.meshgrid(*[np.arange(s) // p for s, p in zip(self._spatial, self.patch_shape)], indexing="ij")
        cell = np.ravel_multi_index(tuple(coords), grid)  # spatial shape
        player = np.arange(math.prod(grid))
        if self.cells is not None:
            player = np.full(math.prod(grid), -1)
            player[list(self.cells)] = np.arange(len(self.cells))
        owner = player[cell]
        k = len(self.patch_shape)
        lead = len(self.image_shape) - k - int(self.channels_last)
        owner = owner.reshape((1,) * lead + owner.shape + (1,) * int(self.channels_last))
        return np.broadcast_to(owner, self.image_shape)


@dataclasses.dataclass(frozen=True)
class TokenPlayers(_Players):
    """A token sequence; each (chosen) position is a player.

    Masked positions take the baseline: a mask token id (input shape ``(seq_len,)``) or a
    mask embedding of length ``embed_dim`` (input shape ``(seq_len, embed_dim)``).

    Args:
        seq_len: sequence length.
        positions: positions used as players, in player order (default: all); the others
            (e.g. [CLS], [SEP]) are background.
        embed_dim: set when inputs are embeddings rather than token ids.
        mask_token: the id that masked positions take when inputs are token ids (e.g. the
            tokenizer's ``[MASK]`` or pad id). Token-id inputs need it, or an explicit integer
            ``baseline=``: a default of zeros would silently mean token 0, a real token.
    """

    seq_len: int
    positions: tuple[int, ...] | None = None
    embed_dim: int | None = None
    mask_token: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "seq_len", check_int(self.seq_len, "seq_len", 1))
        object.__setattr__(self, "embed_dim", check_int(self.embed_dim, "embed_dim", 1, none=True))
        if self.positions is not None:
            pos = check_ints(self.positions, "positions", flatten=True)
            if not pos:
                raise ValueError("positions must not be empty")
            object.__setattr__(self, "positions", pos)
            _check_disjoint([[p] for p in pos], self.seq_len, "position")
        if self.mask_token is not None:
            if self.embed_dim is not None:
                raise ValueError("mask_token is for token-id inputs; with embed_dim, pass the mask "
                                 "embedding as baseline=...")
            if isinstance(self.mask_token, bool) or not isinstance(self.mask_token, (int, np.integer)):
                raise TypeError(f"mask_token must be an integer token id, got {self.mask_token!r}")
            if int(self.mask_token) < 0:
                raise ValueError(f"mask_token must be a token id ≥ 0, got {self.mask_token!r}")
            object.__setattr__(self, "mask_token", int(self.mask_token))

    @property
    def n(self) -> int:
        return self.seq_len if self.positions is None else len(self.positions)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.seq_len,) if self.embed_dim is None else (self.seq_len, int(self.embed_dim))

    def _owner(self) -> np.ndarray:
        if self.positions is None:
            owner = np.arange(self.seq_len)
        else:
            owner = _check_disjoint([[p] for p in self.positions], self.seq_len, "position")
        if self.embed_dim is not None:
            owner = np.broadcast_to(owner[:, None], self.input_shape)
        return owner


Players = TabularPlayers | PatchPlayers | TokenPlayers


def _check_players(players: Any) -> None:
    """``players`` must be a players object (``n``, ``input_shape``, ``owner``), e.g. a
    :class:`TabularPlayers`; anything else is a ``TypeError`` naming the argument."""
    if not all(hasattr(players, a) for a in ("n", "input_shape", "owner")):
        raise TypeError(
            "players must be a players object such as TabularPlayers(n), PatchPlayers(...) or TokenPlayers(...) "
            f"(with n, input_shape and owner), got {type(players).__name__}"
        )

# --------------------------------------------------------------------------------------------
# Rewards
# --------------------------------------------------------------------------------------------


def _label_array(label: ArrayLike) -> Array:
    lab = np.asarray(label) if not is_traced(label) else label
    if not jnp.issubdtype(lab.dtype, jnp.integer):
        raise ValueError(f"label must be an integer or an integer array, got dtype {lab.dtype}")
    return lab


def _check_outputs_2d(outputs: Array, name: str) -> None:
    if outputs.ndim != 2:
        raise ValueError(f"{name} expects model outputs of shape (B, num_classes), got shape {outputs.shape}")


def _pick(label: Array, batch: int) -> Array:
    lab = label.reshape(-1)
    if lab.size not in (1, batch):
        raise ValueError(f"label must be a scalar or have one entry per input ({batch}), got shape {label.shape}")
    return jnp.broadcast_to(lab, (batch,))


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: the label is an array (jax.jit(reward))
class _LabelReward:
    label: Any
    kind: str
    label_range: tuple[int, int] | None = None  # (min, max) of a concrete label: static, for checks
    what: str = "label"  # the argument the labels came from, for the error

    def tree_flatten(self):
        return (self.label,), (self.kind, self.label_range, self.what)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[0], *aux)

    def __call__(self, outputs: Float[Array, "B C"]) -> Float[Array, " B"]:
        _check_outputs_2d(outputs, f"{self.kind}(label)")
        b, c = outputs.shape
        self.validate(c)  # also when called on its own: an out-of-range label would pick NaN or wrap
        lab = _pick(jnp.asarray(self.label), b).astype(jnp.int32)  # any int dtype, strict promotion
        if c == 1 and self.kind == "log_odds":  # a single binary logit z: log-odds z (label 1), −z (label 0)
            return jnp.where(lab == 1, outputs[:, 0], -outputs[:, 0])
        picked = jnp.take_along_axis(outputs, lab[:, None], axis=1)[:, 0]
        if self.kind == "logit":
            return picked
        others = jnp.where(jnp.arange(c, dtype=jnp.int32)[None, :] == lab[:, None], -jnp.inf, outputs)
        return picked - jax.nn.logsumexp(others, axis=1)

    def validate(self, num_classes: int) -> None:
        rng_ = self.label_range
        if rng_ is None and not is_traced(self.label) and np.size(self.label):
            rng_ = (int(np.min(self.label)), int(np.max(self.label)))
        if rng_ is None:
            return
        hi = 2 if (num_classes == 1 and self.kind == "log_odds") else num_classes
        if rng_[0] < 0 or rng_[1] >= hi:
            lo, top = rng_
            raise ValueError(f"{self.what} must be class indices in [0, {hi}) for a model with {num_classes} "
                             f"output(s), got {lo if lo < 0 else top}")


def log_odds(label: int | Int[ArrayLike, " B"]) -> Callable[[Array], Array]:
    r"""Reward ``v = log(p_y / (1 − p_y))``, ``p = softmax(logits)`` (docs/math.md §1, [R24] [D24]).

    Computed stably as ``logit_y − logsumexp_{c≠y} logit_c``. With a single output (a binary
    logit ``z``) it is ``z`` for label 1 and ``−z`` for label 0.

    Args:
        label: ground-truth class, an int or one per batch input.
    """
    return _LabelReward(_label_array(label), "log_odds")


def logit(label: int | Int[ArrayLike, " B"]) -> Callable[[Array], Array]:
    """Reward ``v = logit_y``: the raw model output of class ``label`` (an int or one per input)."""
    return _LabelReward(_label_array(label), "logit")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@jax.tree_util.register_pytree_node_class
class _Apply:
    """A model as ``apply(variables, batch)``: variables are traced, the rest is static."""

    def __init__(self, kind: str, static: Any, variables: Any = None):
        self.kind, self.static, self.variables = kind, static, variables

    def tree_flatten(self):
        return (self.variables,), (self.kind, self.static)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(aux[0], aux[1], children[0])

    def __call__(self, batch: Array) -> Array:
        if self.kind == "fn":
            return self.static.obj(batch)
        if self.kind == "linen":
            return self.static.obj.apply(self.variables, batch)
        if self.kind == "nnx":
            from flax import nnx

            return nnx.merge(self.static, self.variables)(batch)
        raise AssertionError(self.kind)  # pragma: no cover


def _is_linen(model: Any) -> bool:
    from flax import linen

    return isinstance(model, linen.Module)


def _refuse_nnx_training_mode(model: Any, nnx: Any) -> None:
    """An nnx module built for training (BatchNorm on batch statistics, active Dropout, the
    default after construction) would make ``v(x_S)`` depend on which masks share a chunk:
    refused, naming the submodule, as the torch and transformers adapters do."""
    for path, mod in nnx.iter_graph(model):
        if not isinstance(mod, nnx.Module):
            continue
        where = ".".join(map(str, path)) or "the model"
        rate = getattr(mod, "rate", getattr(mod, "dropout_rate", 0.0))
        if getattr(mod, "use_running_average", None) is False:
            why = f"{type(mod).__name__} at {where!r} normalizes with the statistics of each batch of masked inputs"
        elif getattr(mod, "deterministic", None) is False and isinstance(rate, (int, float)) and rate > 0:
            why = f"{type(mod).__name__} at {where!r} drops units at random (rate {rate})"
        else:
            continue
        raise ValueError(f"model is an nnx module in training mode: {why}; call model.eval() first "
                         "(the values would depend on the chunk of masks evaluated together)")


def _adapt(model: Any, params: Any) -> _Apply:
    try:
        from flax import linen, nnx
    except ImportError:  # pragma: no cover - flax is a dependency
        linen = nnx = None
    if nnx is not None and isinstance(model, nnx.Module):
        _refuse_nnx_training_mode(model, nnx)
        graphdef, state = nnx.split(model)
        return _Apply("nnx", graphdef, state)
    if linen is not None and isinstance(model, linen.Module):
        if params is None:
            raise ValueError("a Flax linen Module needs its variables: pass params=...")
        if isinstance(params, dict) and "params" not in params:
            params = {"params": params}
        return _Apply("linen", _Id(model), params)
    if not callable(model):
        raise ValueError(
            f"model must be a callable, a Flax Module or a (features, head) pair, got {type(model).__name__}"
        )
    if params is not None:
        raise ValueError(f"params=... is for Flax linen modules; this model ({type(model).__name__}) takes none "
                         "(a plain function closes over its own parameters)")
    return _Apply("fn", _Id(model))


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def mean_baseline(data: Float[ArrayLike, "N *input_shape"], players: Players | None = None) -> Array:
    """Mean input over ``data`` (docs/math.md §1): over axis 0, or over every leading axis beyond
    ``players.input_shape`` when ``players`` is given."""
    data = jnp.asarray(data)
    if data.ndim == 0:
        raise ValueError("data must have a leading sample axis, got a scalar")
    _refuse_complex(data, "data")
    if players is not None:
        _check_players(players)
        k = len(players.input_shape)
        if data.shape[data.ndim - k :] != players.input_shape or data.ndim == k:
            raise ValueError(f"data of shape {data.shape} is not a set of inputs of shape {players.input_shape}")
        data = data.reshape((-1,) + players.input_shape)
    if data.shape[0] == 0:
        raise ValueError(f"data has no samples to average (shape {data.shape})")
    if not jnp.issubdtype(data.dtype, jnp.floating):  # integers and bools: the mean in the default float
        data = data.astype(jnp.result_type(float))
    if not is_traced(data) and not bool(jnp.all(jnp.isfinite(data))):
        bad = int(np.argmax(~np.isfinite(np.asarray(data)).reshape(data.shape[0], -1).all(axis=1)))
        raise ValueError(f"data holds NaN or inf (first in sample {bad}): the mean baseline would be non-finite")
    return jnp.mean(data, axis=0)


def _keep(masks: Array, owner: Array) -> Array:
    """``keep[j, e]``: element ``e`` is present in mask ``j`` (its player's bit is set, or background)."""
    shift = jnp.maximum(owner, 0).astype(masks.dtype)
    m = masks.reshape(masks.shape + (1,) * owner.ndim)
    return ((m >> shift) & 1).astype(bool) | (owner < 0)


def _reward_values(outputs: Array, reward: Any, batch: int, chunk: int) -> Array:
    """Model outputs ``(batch·chunk, …)`` → values ``(batch, chunk)``."""
    n_in = batch * chunk
    if outputs.ndim == 0 or outputs.shape[0] != n_in:
        raise ValueError(
            f"model returned shape {outputs.shape} for a batch of {n_in} inputs; "
            f"expected ({n_in},) or ({n_in}, num_outputs)"
        )
    if jnp.issubdtype(outputs.dtype, jnp.complexfloating):
        raise TypeError(f"model returned complex outputs ({outputs.dtype}); v(x_S) must be real")
    if not jnp.issubdtype(outputs.dtype, jnp.floating):  # integer or bool outputs: values are floats
        outputs = outputs.astype(jnp.result_type(float))
    if reward is None:
        if outputs.shape[1:] not in ((), (1,)):
            raise ValueError(
                f"model returned shape {outputs.shape} (more than one value per input) and no "
                "reward was given: pass reward=log_odds(label), logit(label) or a function "
                "outputs -> (B,)"
            )
        return outputs.reshape(batch, chunk)
    per_mask = outputs.reshape((batch, chunk) + outputs.shape[1:])
    probe = jax.eval_shape(reward, per_mask[:, 0])  # a label reward checks its labels in there
    if not hasattr(probe, "shape") or probe.shape != (batch,):
        got = getattr(probe, "shape", type(probe).__name__)
        raise ValueError(
            f"reward returned shape {got} for model outputs of shape {per_mask[:, 0].shape}; "
            f"it must return one value per input, shape ({batch},)"
        )
    return jax.vmap(reward, in_axes=1, out_axes=1)(per_mask)


@jax.tree_util.register_pytree_node_class
class _Static:
    """Wrap a non-pytree callable (a user reward) as static jit data."""

    def __init__(self, obj):
        self.obj = obj

    def tree_flatten(self):
        return (), _Id(self.obj)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(aux.obj)

    def __call__(self, *a):
        return self.obj(*a)


@functools.partial(jax.jit, static_argnames=("chunk",))
def _eval_chunk(apply: _Apply, reward: Any, x: Array, base: Array, owner: Array, masks: Array | None,
                start: Array, *, chunk: int) -> Array:
    """``v(x_S)`` for one chunk of masks: ``masks`` ``(chunk,)``, or ``start + arange(chunk)``.

    ``x`` is ``(*batch, *shape)``; ``base`` is ``shape`` or ``x.shape``. Returns ``(*batch, chunk)``.
    """
    shape = owner.shape
    batch = x.shape[: x.ndim - owner.ndim]
    b = math.prod(batch)
    if masks is None:
        masks = start + jnp.arange(chunk, dtype=start.dtype)
    keep = _keep(masks, owner)  # (c, *shape)
    xf = x.reshape((b, 1) + shape)
    base = base.reshape((b, 1) + shape) if base.ndim > owner.ndim else base[None, None]
    masked = jnp.where(keep[None], xf, base)  # (B, c, *shape), fused into the model's first op
    outputs = apply(masked.reshape((b * chunk,) + shape))
    return _reward_values(jnp.asarray(outputs), reward, b, chunk).reshape(batch + (chunk,))


_features_jit = jax.jit(lambda apply, x: apply(x))


def _mask_dtype(n: int):
    if n <= 31:
        return jnp.int32
    if not jax.config.jax_enable_x64:
        raise ValueError(f"masks of n={n} > 31 players need 64-bit integers: enable jax_enable_x64")
    return jnp.int64


_BaselineName = Literal["zeros", "mean"]  # a baseline by name (else an array)
_InitName = Literal["mean", "zeros"]  # learn_baseline's start by name (else an array)


def _check_ids_fit(values: np.ndarray, dtype: Any, what: str, players: Players) -> None:
    """Integer baseline values must be representable in the inputs' integer dtype (no wrap-around,
    e.g. −1 → 255 in uint8), and token ids must not be negative."""
    if values.size == 0 or jnp.issubdtype(dtype, jnp.bool_):
        return
    info = np.iinfo(dtype)
    lo = 0 if isinstance(players, TokenPlayers) else int(info.min)
    bad = values[(values < lo) | (values > int(info.max))]
    if bad.size:
        kind = "token ids" if isinstance(players, TokenPlayers) else "the inputs"
        raise ValueError(f"{what} {int(bad.flat[0])} does not fit {kind} of dtype {np.dtype(dtype).name} "
                         f"(values {lo} … {int(info.max)}): it would wrap around silently")


def _resolve_baseline(baseline, data, feats_fn, players: Players, x: Array) -> Array | np.ndarray:
    """Baseline of shape ``input_shape`` (shared) or ``x.shape`` (one per batch input).

    ``None`` is the players' natural default: zeros, or the mask token of token-id players.
    Nothing is converted silently: integer inputs (token ids) take only integer baselines.
    """
    shape = tuple(players.input_shape)
    token_ids = jnp.issubdtype(x.dtype, jnp.integer) or jnp.issubdtype(x.dtype, jnp.bool_)
    if data is not None and baseline is None:  # an explicit other baseline leaves data unused by choice
        raise ValueError('data=... is used only by baseline="mean" (the inputs it averages), and the default '
                         'baseline is zeros: pass baseline="mean", or baseline="zeros" to keep zeros')
    if baseline is None:
        if isinstance(players, TokenPlayers) and players.embed_dim is None:
            if players.mask_token is None:
                raise ValueError(
                    "token-id players need a mask token: pass TokenPlayers(..., mask_token=ID) or "
                    "baseline=ID (the tokenizer's [MASK] or pad id); zeros would mean token 0, a real token"
                )
            _check_ids_fit(np.asarray(players.mask_token), x.dtype, "mask_token", players)
            return np.full(shape, players.mask_token, dtype=x.dtype)
        baseline = "zeros"
    elif isinstance(players, TokenPlayers) and players.mask_token is not None and not isinstance(baseline, str):
        raise ValueError(f"both TokenPlayers(mask_token={players.mask_token}) and baseline= are given: pass one "
                         "of them (masked positions take one value)")
    if isinstance(baseline, str):
        check_option(baseline, "baseline", get_args(_BaselineName), otherwise="an array")
        if baseline == "zeros":
            if isinstance(players, TokenPlayers) and players.embed_dim is None:
                fix = (f"these players mask with their mask_token={players.mask_token}: leave baseline at its "
                       "default (None)" if players.mask_token is not None else
                       "name the mask token (TokenPlayers(..., mask_token=ID) or baseline=ID)")
                raise ValueError(f'baseline="zeros" on token ids would mean token 0, a real token: {fix}; '
                                 "baseline=0 if token 0 is meant")
            return np.zeros(shape, dtype=x.dtype)
        if baseline == "mean":
            if token_ids:
                raise ValueError('baseline="mean" averages inputs; token ids cannot be averaged'
                                 if isinstance(players, TokenPlayers) else
                                 f'baseline="mean" of integer inputs ({x.dtype}) would be truncated: pass x as floats')
            if data is None:
                raise ValueError('baseline="mean" needs data=... (inputs to average over)')
            data = jnp.asarray(data)
            if feats_fn is not None:
                data = feats_fn(data)
            return mean_baseline(data, players).astype(x.dtype)
    xp = jnp if isinstance(baseline, jax.Array) else np
    base = xp.asarray(baseline)
    _refuse_complex(base, "baseline")
    if base.dtype.kind == "f" and not is_traced(base) and not bool(xp.all(xp.isfinite(base))):
        raise ValueError("baseline holds NaN or inf: every masked input would take it (pass finite values)")
    if token_ids and not (xp.issubdtype(base.dtype, xp.integer) or base.dtype == bool):
        if isinstance(players, TokenPlayers):
            raise TypeError(
                f"inputs are token ids ({x.dtype}) but the baseline is {base.dtype}: pass an integer "
                "token id (a float would be truncated silently)"
            )
        raise TypeError(
            f"x has integer values ({x.dtype}) but the baseline is {base.dtype}: pass x as floats "
            "(x.astype(float)) or an integer baseline (a float baseline would be truncated silently)"
        )
    if token_ids and not is_traced(base) and xp.issubdtype(base.dtype, xp.integer):
        _check_ids_fit(np.asarray(base), x.dtype, "baseline", players)
    for target in (shape, x.shape):
        try:
            if np.broadcast_shapes(base.shape, target) == target:
                return xp.broadcast_to(base, target).astype(x.dtype)
        except ValueError:
            pass
    raise ValueError(
        f"baseline of shape {base.shape} does not broadcast to the input shape {shape} "
        f"of {type(players).__name__} nor to the inputs of shape {x.shape}"
    )


def masked_outputs(
    model: Any,
    x: ArrayLike,
    players: Players,
    *,
    baseline: ArrayLike | _BaselineName | None = None,
    reward: Callable[[Array], Array] | None = None,
    masks: Int[ArrayLike, " M"] | None = None,
    data: ArrayLike | None = None,
    chunk_size: int | None = None,
    memory_budget: int | str | None = None,
    params: Any = None,
    progress: bool | None = None,
) -> Float[Array, "*batch M"]:
    r"""Model values ``v(x_S)`` on masked inputs, for all ``2**n`` masks or the given ones.

    ``x_S`` keeps the players in ``S`` and sets the others to the baseline; background elements
    stay (docs/math.md §1). Feed the result to :func:`jinter.mobius` for AND interactions
    ([R24] eq. 1, [D24] eq. 2).

    Args:
        model: a JAX function of a batch ``(B, *input_shape)`` returning ``(B,)`` or ``(B, C)``;
            a Flax linen Module (variables in ``params``); a ``flax.nnx`` Module; a
            :func:`host_model`; or a ``(features, head)`` pair of those, in which case masking
            happens on ``features(x)`` ([D24]: players on an intermediate feature map) and
            ``players`` describes the feature shape. ``features`` is applied once to ``x`` as
            given (so ``x`` carries its batch axis), ``head`` to every masked feature batch;
            with linen modules in a pair, ``params`` is the pair of their variables.
        x: inputs of shape ``(*batch, *players.input_shape)``; leading axes are batch axes.
        players: the player specification (:class:`TabularPlayers`, :class:`PatchPlayers`,
            :class:`TokenPlayers`).
        baseline: values of masked players: an array broadcasting to the inputs (e.g. one of
            shape ``input_shape``, a mask embedding, an integer mask token id), ``"zeros"``,
            or ``"mean"`` (mean over ``data``, see :func:`mean_baseline`). ``None``
            (default): zeros, or for token-id players their ``mask_token`` (required then).
        reward: maps model outputs ``(B, C)`` to values ``(B,)``, e.g. :func:`log_odds` (the
            default of the papers) or :func:`logit`. ``None``: the model returns one value
            per input.
        masks: 1-D integer masks to evaluate (bit ``i`` = player ``i``); default all ``2**n``.
        data: inputs to average over for ``baseline="mean"`` (raw inputs for a pair model).
        chunk_size: masks evaluated per model call (each for every batch input). Default: as
            many as fit the memory budget, at most ``4096`` masked inputs per call.
        memory_budget: bytes (or ``"2G"``); default :func:`jinter.memory_budget`.
        params: Flax linen variables (or a pair of them for a pair model).
        progress: show a progress bar over chunks: ``None`` (default) when the first chunk
            predicts more than 3 s in all, ``True`` always, ``False`` never.

    Memory: before anything runs, the peak is planned as the float64 values ``(*batch, M)``
    (written in place, chunk by chunk) plus one chunk's live bytes as XLA reports them for the
    compiled evaluation (masked inputs, the model's activations and outputs); the chunk halves
    until that fits the budget, else :class:`MemoryBudgetError` states the bytes needed.

    Returns:
        Values of shape ``(*batch, 2**n)`` (or ``(*batch, len(masks))``).

    Raises:
        ValueError: on shapes that do not match ``players``, masks out of range, or a model /
            reward output that is not one value per input.
        MemoryBudgetError: if the output, or one masked input per batch entry, exceeds the budget.
        NonFiniteOutputError: if some value is NaN or infinite (names the first such mask).
            Called inside ``jax.jit`` or ``jax.vmap`` the values are traced and cannot be
            checked: NaN then passes through, so check the result after the transformed call.
    """
    _check_players(players)
    if not (progress is None or isinstance(progress, (bool, np.bool_))):
        raise ValueError(f"progress must be None, True or False, got {progress!r}")
    n = players.n
    shape = tuple(players.input_shape)
    apply, feats_fn, x = _adapt_model(model, params, x, players)
    batch = x.shape[: x.ndim - len(shape)]
    b = math.prod(batch)
    mask_arr, num = _mask_list(masks, n)

    limit = _memory_budget(memory_budget)
    chunk = _chunk_size_option(chunk_size)
    base = _resolve_baseline(baseline, data, feats_fn, players, x)
    reward = _prepare_reward(reward, b)

    if num == 0 or b == 0:
        return jnp.zeros(batch + (num,), dtype=jnp.result_type(float))

    mdtype = _mask_dtype(n)
    args = (apply, reward, x, base, players.owner)
    with reraise_host_errors():  # a host model's own exception, not an opaque JaxRuntimeError
        run, chunk = _plan_chunks(args, mdtype, mask_arr is not None, b, num, shape, x.dtype, limit, chunk)
        values = _run_chunks(run, args, mask_arr, mdtype, batch, num, chunk, progress)
        check_finite(values, "model values on the masked inputs", masks=mask_arr, error=NonFiniteOutputError)
    return values


def _input_array(x: Any) -> Array:
    """An input as a JAX array; a torch tensor (also one that requires grad, or on a GPU) is
    detached and copied to the host first, its values unchanged."""
    if all(hasattr(x, a) for a in ("detach", "cpu", "numpy")) and not isinstance(x, (np.ndarray, jax.Array)):
        x = x.detach().cpu().numpy()
    return jnp.asarray(x)


def _adapt_model(model: Any, params: Any, x: ArrayLike, players: Players) -> tuple[Any, Any, Array]:
    """Stage 1 of :func:`masked_outputs`, model adaptation: ``(apply, features, x)``.

    ``apply`` evaluates a batch of (masked) inputs; for a ``(features, head)`` pair ``features``
    is the jitted feature map and ``x`` is returned as ``features(x)``, the array masking acts on
    (else ``features`` is ``None``). ``x`` is checked to end with the players' input shape.
    """
    shape = tuple(players.input_shape)
    if isinstance(model, tuple):
        if len(model) != 2:
            raise ValueError(f"a model pair must be (features, head), got {len(model)} elements")
        if isinstance(params, tuple):
            fparams, hparams = params
        else:  # one set of variables: for whichever of the two is a linen module
            fparams, hparams = (params if _is_linen(m) else None for m in model)
        feats_apply = _adapt(model[0], fparams)
        apply = _adapt(model[1], hparams)
        feats_fn = functools.partial(_features_jit, feats_apply)
        x = jnp.asarray(feats_fn(_input_array(x)))
        where = "features(x)"
    else:
        feats_fn = None
        apply = _adapt(model, params)
        x = _input_array(x)
        where = "x"
    _refuse_complex(x, where)
    k = len(shape)
    if x.ndim < k or x.shape[x.ndim - k :] != shape:
        raise ValueError(
            f"{where} has shape {x.shape}, which does not end with the player input shape {shape} "
            f"of {type(players).__name__}"
        )
    return apply, feats_fn, x


def _mask_list(masks: Any, n: int) -> tuple[np.ndarray | None, int]:
    """Stage 2 of :func:`masked_outputs`: the checked masks (``None`` = all ``2**n``) and their number."""
    if masks is None:
        if n > _MAX_ALL_MASKS:
            dt = jnp.dtype(jnp.result_type(float))  # the dtype of the values
            raise MemoryBudgetError(
                f"all 2**{n} masks of {n} players are too many: their {dt.name} values alone need "
                f"{format_bytes(dt.itemsize * 2**n)} per input (and the masked inputs far more); pass masks=..., or "
                "jinter.sparse_and_or for many players"
            )
        return None, 2**n
    m = np.asarray(masks)
    if m.ndim != 1 or not (np.issubdtype(m.dtype, np.integer) or m.size == 0):
        raise ValueError(f"masks must be a 1-D integer array, got shape {m.shape} dtype {m.dtype}")
    if m.size and np.issubdtype(m.dtype, np.unsignedinteger) and int(m.max()) >= 2**n:  # before the int64 cast
        raise ValueError(f"mask {int(m.max())} is out of range for n={n} players (0 ≤ mask < 2**{n})")
    m = m.astype(np.int64)
    if m.size and (m.min() < 0 or m.max() >= 2**n):
        bad = m[(m < 0) | (m >= 2**n)][0]
        raise ValueError(f"mask {int(bad)} is out of range for n={n} players (0 ≤ mask < 2**{n})")
    return m, m.size


def _chunk_size_option(chunk_size: Any) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return int(chunk_size)


def _prepare_reward(reward: Any, b: int) -> Any:
    """Validate a reward and wrap it as jit data: label rewards carry their label range."""
    if reward is not None and not isinstance(reward, _LabelReward):
        if not callable(reward):
            raise ValueError(f"reward must be callable, got {type(reward).__name__}")
        return _Static(reward)
    if isinstance(reward, _LabelReward):
        lab = reward.label
        if lab.ndim and lab.size not in (1, b):
            raise ValueError(f"label has shape {lab.shape}; expected a scalar or one label per input ({b})")
        rng_ = reward.label_range  # a traced label keeps the range its caller stated
        if not is_traced(lab) and lab.size:
            rng_ = (int(np.min(lab)), int(np.max(lab)))
        return _LabelReward(lab.reshape(-1) if lab.ndim else lab, reward.kind, rng_, reward.what)
    return reward


def _chunk_inputs(mdtype, explicit: bool, chunk: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Placeholder ``(masks, start)`` of one chunk, for planning and compilation."""
    if explicit:
        return np.zeros(chunk, dtype=mdtype), np.asarray(0, dtype=mdtype)
    return None, np.asarray(0, dtype=mdtype)


def _compiled_chunk(args: tuple, mdtype, explicit: bool, chunk: int):
    """The evaluation of one chunk, compiled ahead of time (cached by JAX), and its peak bytes."""
    cm, first = _chunk_inputs(mdtype, explicit, chunk)
    compiled = _eval_chunk.lower(*args, cm, first, chunk=chunk).compile()
    try:
        stats = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - a backend without memory statistics
        stats = None
    if stats is None:
        return compiled, None
    peak = stats.temp_size_in_bytes + stats.output_size_in_bytes + stats.argument_size_in_bytes
    return compiled, int(peak)


def _plan_chunks(args, mdtype, explicit, b, num, shape, dtype, limit, chunk):
    """Chunk size and compiled chunk evaluation that fit the memory budget, or a clear error.

    Peak memory = the ``(*batch, num)`` float64 output (written in place) + one chunk's live
    bytes. A chunk's bytes are those XLA reports for the compiled evaluation (inputs, masked
    batch, the model's activations and outputs); a host model's own memory is outside XLA and
    is estimated as ``4×`` its masked inputs.
    """
    out_bytes = b * num * 8
    check_budget(out_bytes, f"values of {b} input(s) on {num} masks", limit, argument=True)
    per_mask = b * max(math.prod(shape), 1) * np.dtype(dtype).itemsize * _LIVE_FACTOR
    room = limit - out_bytes
    if chunk is None:
        chunk = min(max(room // per_mask, 1), max(MAX_CHUNK // max(b, 1), 1))
        chunk = 1 << (int(chunk).bit_length() - 1)  # a power of two: divides 2**n evenly
    chunk = max(1, min(chunk, num))
    if is_traced(args):
        # inside a user's trace (e.g. the gradient of learn_baseline): no ahead-of-time
        # compilation; the heuristic chunk stands and the caller's computation is compiled once
        return functools.partial(_eval_chunk, chunk=chunk), chunk
    while True:
        run, peak = _compiled_chunk(args, mdtype, explicit, chunk)
        need = peak if peak is not None else chunk * per_mask
        if _is_host(args[0]):
            need += chunk * per_mask  # the host model's own memory, outside XLA's account
        if need <= room:
            return run, chunk
        if chunk == 1:
            raise MemoryBudgetError(
                f"masked evaluation of {b} input(s) of shape {shape} would need about "
                f"{format_bytes(out_bytes + need)} ({format_bytes(out_bytes)} for the values on {num} "
                f"masks + {format_bytes(need)} for one masked input per batch entry through the "
                f"model), more than the memory budget of {format_bytes(limit)}"
            )
        chunk = max(1, min(chunk // 2, 1 << max(int(chunk * room // max(need, 1)).bit_length() - 1, 0)))


def _is_host(apply: _Apply) -> bool:
    return apply.kind == "fn" and isinstance(apply.static.obj, HostModel)


@functools.partial(jax.jit, donate_argnums=0)
def _write_chunk(out: Array, val: Array, start: Array) -> Array:
    return jax.lax.dynamic_update_slice_in_dim(out, val, start, axis=-1)


_PROGRESS_AFTER_S = 3.0  # show a progress bar when the evaluation is expected to take longer


def _run_chunks(run, args, mask_arr, mdtype, batch, num, chunk, progress) -> Array:
    """Evaluate every chunk into one preallocated output (updated in place, no concatenation)."""
    n_chunks = -(-num // chunk)
    padded = n_chunks * chunk
    out = None
    bar = None
    t0 = time.perf_counter()
    try:
        for i, start in enumerate(range(0, num, chunk)):
            stop = min(start + chunk, num)
            if mask_arr is None:
                cm, first = None, np.asarray(start, dtype=mdtype)
            else:
                cm, first = np.zeros(chunk, dtype=mdtype), np.asarray(0, dtype=mdtype)
                cm[: stop - start] = mask_arr[start:stop]
            val = run(*args, cm, first)
            if n_chunks == 1:
                return val[..., :num] if padded > num else val
            if is_traced(val):  # traced: the caller's compiler plans memory
                out = val if out is None else jnp.concatenate([out, val], axis=-1)
                continue
            if out is None:
                out = jnp.zeros(batch + (padded,), dtype=val.dtype)
            out = _write_chunk(out, val, np.asarray(start, dtype=np.int64))
            if i == 0 and progress is not False:
                val.block_until_ready()
                expected = (time.perf_counter() - t0) * n_chunks
                if progress or expected > _PROGRESS_AFTER_S:
                    from tqdm import tqdm

                    bar = tqdm(total=n_chunks, initial=1, unit="chunk", desc=f"masked inputs ({num} masks)",
                               leave=False)
            elif bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out[..., :num] if padded > num else out


def _memory_budget(budget: int | str | None) -> int:
    return memory_budget(budget)  # the module-level function (the argument shadows it above)


# --------------------------------------------------------------------------------------------
# Learned baselines
# --------------------------------------------------------------------------------------------


class LearnedBaseline(NamedTuple):
    """Result of :func:`learn_baseline`.

    Attributes:
        baseline: the learned baseline, shape ``players.input_shape`` (pass it to
            :func:`masked_outputs` as ``baseline=``).
        loss: ``(steps + 1,)`` mean ``Σ_{T≠∅}|I_and(T)|`` over the inputs before each step and
            after the last one (``loss[0]`` at ``init``).
    """

    baseline: Array
    loss: Array


def learn_baseline(
    model: Any,
    x: ArrayLike,
    players: Players,
    *,
    reward: Callable[[Array], Array] | None = None,
    params: Any = None,
    init: ArrayLike | _InitName = "mean",
    box: tuple[ArrayLike, ArrayLike] | None = None,
    data: ArrayLike | None = None,
    steps: int = 200,
    learning_rate: float = 0.05,
    optimizer: Any = None,
    chunk_size: int | None = None,
    memory_budget: int | str | None = None,
) -> LearnedBaseline:
    r"""A baseline that makes the AND interactions of ``x`` sparse (docs/math.md §1).

    Minimizes the mean over the inputs of ``Σ_{T≠∅} |mobius(v)(T)|`` (``v`` from
    :func:`masked_outputs` with the baseline in place of absent players) over the baseline
    values, with an optax optimizer whose every step is followed by the projection on a box
    around the data, as the papers' lab code does. Without the box the trivial optimum of one
    input is the input itself (nothing absent, no interaction).

    Args:
        model, x, players, reward, params, chunk_size, memory_budget: as for
            :func:`masked_outputs`; ``x`` has one leading batch axis or more (the inputs the
            baseline is shared by); the model must be differentiable JAX code (no
            :func:`host_model`, no ``(features, head)`` pair).
        init: ``"mean"`` (over ``data``, else over ``x``), ``"zeros"`` or an array of shape
            ``players.input_shape``; clipped into the box.
        box: ``(low, high)`` broadcasting to ``players.input_shape``; default the element-wise
            range of ``data`` (else of ``x``).
        data: inputs that define the default ``init`` and ``box``.
        steps: optimizer steps.
        learning_rate: peak rate of the default optimizer, Adam with a cosine decay to 1% over
            ``steps`` (so the iterate settles on a kink of the ℓ1 objective).
        optimizer: any ``optax.GradientTransformation`` instead of the default.

    Returns:
        :class:`LearnedBaseline` (baseline, and the loss before each step and after the last: ``(steps + 1,)``).

    Raises:
        ValueError: a host or pair model, ``steps < 0``, a box with ``low > high``, ``x``
            without a batch axis, or a non-finite loss (the step is named).

    Example:
        >>> import jax.numpy as jnp, numpy as np, jinter
        >>> x = np.random.default_rng(0).normal(size=(25, 3))
        >>> model = lambda b: b @ jnp.array([1.0, -2.0, 0.5])   # additive: |I({i})| = |w_i||x_i − b_i|
        >>> res = jinter.learn_baseline(model, x, jinter.TabularPlayers(3), box=(-3.0, 3.0))
        >>> bool(np.allclose(res.baseline, np.median(x, axis=0), atol=0.05))
        True
    """
    import optax

    if isinstance(model, (tuple, HostModel)):
        raise ValueError(
            "learn_baseline differentiates the model: pass a JAX function or a Flax module "
            f"(got {type(model).__name__}; host models and (features, head) pairs are not supported)"
        )
    steps = check_int(steps, "steps", 0)
    _check_players(players)
    if optimizer is None:
        learning_rate = check_real(learning_rate, "learning_rate", above=0.0)
    shape = tuple(players.input_shape)
    x = _input_array(x)
    if isinstance(players, TokenPlayers) and players.embed_dim is None:
        raise ValueError("learn_baseline learns a continuous baseline: token-id inputs have none (learn it on the "
                         "embeddings, TokenPlayers(..., embed_dim=...))")
    _refuse_complex(x, "x")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    if x.ndim <= len(shape) or x.shape[x.ndim - len(shape) :] != shape:
        raise ValueError(
            f"x must have shape (batch..., *{shape}) with at least one batch axis, got {x.shape}"
        )

    def real(value: Any, what: str) -> Array:
        a = jnp.asarray(value)
        _refuse_complex(a, what)
        return a.astype(x.dtype)

    def fit(value: Any, what: str) -> Array:
        a = real(value, what)
        try:
            return jnp.broadcast_to(a, shape)
        except ValueError:
            raise ValueError(f"{what} must broadcast to the input shape {shape}, got shape {a.shape}") from None

    ref = x if data is None else real(data, "data")
    if ref.ndim <= len(shape) or ref.shape[ref.ndim - len(shape) :] != shape or ref.size == 0:
        raise ValueError(f"data must be a non-empty set of inputs of shape {shape}, got shape {ref.shape}")
    ref = ref.reshape((-1,) + shape)
    if box is None:
        low, high = jnp.min(ref, axis=0), jnp.max(ref, axis=0)
    else:
        if not (isinstance(box, (tuple, list)) and len(box) == 2):
            raise ValueError(f"box must be a pair (low, high), got {box!r}")
        low, high = fit(box[0], "box low"), fit(box[1], "box high")
        if not bool(jnp.all(jnp.isfinite(low) | (low == -jnp.inf)) & jnp.all(jnp.isfinite(high) | (high == jnp.inf))):
            raise ValueError("box must be (low, high) without NaN (and without +inf low or −inf high)")
        if bool(jnp.any(low > high)):
            raise ValueError("box must have low ≤ high everywhere")
    if isinstance(init, str):
        check_option(init, "init", get_args(_InitName), otherwise="an array")
        start = jnp.mean(ref, axis=0) if init == "mean" else jnp.zeros(shape, x.dtype)
    else:
        start = fit(init, "init")
    start = jnp.clip(start, low, high)
    if optimizer is None:
        optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, max(steps, 1), alpha=0.01))
    elif not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))):
        raise TypeError(f"optimizer must be an optax.GradientTransformation (e.g. optax.adam(1e-2)), got "
                        f"{optimizer!r}")

    def loss_fn(base):
        v = masked_outputs(model, x, players, baseline=base, reward=reward, params=params,
                           chunk_size=chunk_size, memory_budget=memory_budget)  # fmt: skip
        return jnp.mean(jnp.sum(jnp.abs(mobius(v)[..., 1:]), axis=-1))

    value_and_grad = jax.jit(jax.value_and_grad(loss_fn))

    @jax.jit
    def step(base, state, grad):
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int step counts and floats
            updates, state = optimizer.update(grad, state, base)
        return jnp.clip(optax.apply_updates(base, updates), low, high).astype(base.dtype), state

    base, state, losses = start, optimizer.init(start), []
    for k in range(int(steps) + 1):
        loss, grad = value_and_grad(base)
        if not np.isfinite(float(loss)):
            raise ValueError(f"learn_baseline: the loss is {float(loss)} at step {k}; check the model and the box")
        losses.append(loss)
        if k < int(steps):
            base, state = step(base, state, grad)
    return LearnedBaseline(baseline=base, loss=jnp.stack(losses))
