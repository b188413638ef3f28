r"""Resumable, sharded sweeps: AND-OR interactions for every checkpoint × test sample.

The dynamics experiments of [D24] (and [H25]) need ``v(x_S)`` on all ``2**n`` masks and its
AND-OR split (docs/math.md §3) for each saved checkpoint and each of (by default) 50 test samples
with n = 10 players. A sweep splits this work into *units*, one checkpoint × one block of
samples, and writes one file per unit:

- A unit computes ``v = masked_outputs(model, x_block, players, ...)`` and
  ``and_or(v, **solver.kwargs())`` (``solver``: an :class:`~jinter.decomposition.AndOrOptions`)
  and writes ``unit_cXXXX_bXXXX.npz`` atomically (temporary file, fsync, ``os.replace``): a
  file exists only once it is complete.
- Each file stores a *unit hash* (settings + checkpoint bytes + the samples' inputs and labels)
  and a checksum of its arrays. On resume a file is reused only if both match; a corrupt,
  truncated or stale file (other settings, other checkpoint) is detected and recomputed, never
  mixed in. A sweep killed at any moment therefore resumes where it stopped and loses
  nothing, and the resumed result is bitwise the one of an uninterrupted run (every unit is
  a pure function of its inputs with fixed shapes).
- ``sweep.json`` (the manifest) lists the settings and every unit with its hash;
  :func:`load_sweep` reads all units into a :class:`SweepResult`: ``v`` and the stacked
  :class:`~jinter.decomposition.AndOrResult` (``res.and_or``, every field; ``res.I_and`` etc. read
  through to it), arrays of shape ``(checkpoints, samples, ...)``.
- Format (``settings["format"]``): 2 stores ``v`` and every field of ``AndOrResult``. Folders of
  format 1 (which lacked ``canonical``, ``canonical_eps``, ``canonical_distance``, ``status``)
  still load, see :func:`load_sweep`; resuming one recomputes its units in format 2.

Devices: the sample axis of a block is sharded over a ``jax.sharding.Mesh`` of all devices
(``NamedSharding(mesh, P("samples"))``); the block is padded to a multiple of the device
count by repeating its last sample (every block to the same size, so one compilation serves
all units), and the padding is dropped before writing. The same code
runs on one CPU, several GPUs or a TPU slice.

Multi-host: call ``jax.distributed.initialize()`` in every process first. Each process then
takes the units ``u`` with ``u % process_count == process_index`` and shards them over its
own (local) devices; unit files are process-local work written into a shared ``out_dir``
(distinct names, so no two processes write one file), and process 0 writes the manifest.
Run :func:`load_sweep` after all processes finish (or rerun the sweep: finished units are
reused). Without a shared file system, give each host its own ``out_dir`` and copy the unit
files together before loading. (Tested with two CPU processes joined by
``jax.distributed.initialize`` on a localhost coordinator: the result equals one process's.)

Typical use (what ``jinter demo`` does)::

    ds = load_dataset("synthetic", seed=0, label_noise=0.01)
    model = model_for_dataset(ds)
    run = train(model, ds, epochs=100, checkpoint_epochs=log_spaced_epochs(100, 12),
                checkpoint_dir="out/ckpt")
    sweep_dataset(model, ds, run.checkpoints, "out/sweep", n_players=10, n_samples=50)
    res = load_sweep("out/sweep")          # res.I_and: (12, 50, 1024)
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, NamedTuple, Sequence, get_args

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import ArrayLike, Float, Int

from jinter import decomposition, masking, statistics
from jinter._checks import check_finite, check_int, check_option
from jinter._host import reraise_host_errors
from jinter.training import atomic_write_bytes, list_checkpoints, restore_params

__all__ = [
    "SweepReport",
    "SweepResult",
    "SweepError",
    "run_sweep",
    "sweep_dataset",
    "load_sweep",
    "select_samples",
    "default_players",
    "sample_mesh",
]

FORMAT_VERSION = 2  # 2: every AndOrResult field is stored (1 lacked canonical, canonical_eps, ...)
MANIFEST = "sweep.json"
_AXIS = "samples"
_SPLIT_FIELDS: tuple[str, ...] = decomposition.AndOrResult._fields  # stored per unit, with "v"
_UNIT_FIELDS = ("v",) + _SPLIT_FIELDS
# Format 1 stored the fields of the LP solve only; without the canonical phase (canonical=False,
# the default) the others are determined by them, as and_or computes them (see _fill_format_1).
_FORMAT_1_MISSING = ("canonical", "canonical_eps", "canonical_distance", "status")


class SweepError(ValueError):
    """A sweep directory is incomplete, corrupt, or was written with other settings."""


class SweepReport(NamedTuple):
    """What :func:`run_sweep` did: unit counts and wall time."""

    out_dir: Path
    units: int  # units assigned to this process
    computed: int  # computed now (missing before)
    reused: int  # valid files kept
    recomputed: int  # files found corrupt or stale, computed again
    seconds: float
    unconverged: int = 0  # samples (in units computed now) whose AND-OR solve hit its cap
    value_seconds: float = 0.0  # time in masked model evaluation (v)
    and_or_seconds: float = 0.0  # time in the AND-OR split
    recomputed_files: tuple[str, ...] = ()  # the files found corrupt or stale, by name


class SweepResult(NamedTuple):
    """All units of a sweep as arrays; leading axes ``(checkpoints, samples)``.

    ``and_or`` is the stacked :class:`jinter.decomposition.AndOrResult` of every unit (NumPy
    arrays of shape ``(C, S, 2**n)`` for ``I_and``, ``I_or``, ``gamma``, ``q`` and ``(C, S)``
    for the per-game fields). Each of its fields is also a read-only attribute of the result,
    ``res.I_and is res.and_or.I_and``, ``res.gap``, ``res.status``, ...
    """

    epochs: np.ndarray  # (C,) checkpoint epochs
    sample_indices: np.ndarray  # (S,) indices of the samples (e.g. into the test split)
    labels: np.ndarray  # (S,)
    v: np.ndarray  # (C, S, 2**n)
    and_or: decomposition.AndOrResult  # every field with leading axes (C, S)
    settings: dict


def _delegate(name: str) -> property:
    return property(lambda self: getattr(self.and_or, name), doc=f"``and_or.{name}`` (read-only).")


for _name in _SPLIT_FIELDS:  # res.I_and, res.gap, res.converged, ...: the fields of res.and_or
    setattr(SweepResult, _name, _delegate(_name))
del _name
statistics.InteractionResult.register(SweepResult)  # res.I_and, res.I_or: a result of the analysis functions


# --------------------------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fingerprint(obj: Any) -> Any:
    """A JSON-able description of ``obj`` that changes whenever its content does."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.ndarray, jax.Array, np.generic)):
        a = np.asarray(obj)
        return {"array": _sha(np.ascontiguousarray(a).tobytes()), "shape": list(a.shape), "dtype": str(a.dtype)}
    if isinstance(obj, (tuple, list)):
        return [_fingerprint(o) for o in obj]
    if isinstance(obj, Mapping):
        return {str(k): _fingerprint(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, nn.Module):
        return {"module": repr(obj)}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: _fingerprint(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return {"type": type(obj).__qualname__, **fields}
    if callable(obj):
        return {"callable": f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"}
    return {"repr": repr(obj)}


def _hash_json(obj: Any) -> str:
    return _sha(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())


def _checksum(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Unit files
# --------------------------------------------------------------------------------------------


def _unit_name(c: int, b: int) -> str:
    return f"unit_c{c:04d}_b{b:04d}.npz"


def _write_unit(path: Path, arrays: dict[str, np.ndarray], unit_hash: str) -> None:
    payload = dict(arrays)
    payload["unit_hash"] = np.asarray(unit_hash)
    payload["checksum"] = np.asarray(_checksum(arrays | {"unit_hash": payload["unit_hash"]}))
    buf = io.BytesIO()
    np.savez(buf, **payload)
    atomic_write_bytes(path, buf.getvalue())


def _has_fields(arrays: dict[str, np.ndarray] | None) -> bool:
    """A unit's arrays hold every field this format stores (a file that lacks one is recomputed)."""
    return arrays is not None and all(name in arrays for name in _UNIT_FIELDS)


def _read_unit(path: Path, unit_hash: str) -> dict[str, np.ndarray] | None:
    """The unit's arrays, or None if the file is missing, corrupt or for other settings."""
    if not path.is_file():
        return None
    try:
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception:  # truncated / garbled zip, bad header, ...: treat as corrupt
        return None
    checksum = arrays.pop("checksum", None)
    if checksum is None or str(arrays.get("unit_hash")) != unit_hash:
        return None
    if str(checksum) != _checksum(arrays):
        return None
    arrays.pop("unit_hash")
    return arrays


# --------------------------------------------------------------------------------------------
# Checkpoints, samples, players
# --------------------------------------------------------------------------------------------


def _as_checkpoints(checkpoints) -> list[tuple[int, Any]]:
    """Normalize to ``[(epoch, path_or_params), ...]`` sorted by epoch."""
    if isinstance(checkpoints, (str, os.PathLike)):
        found = list_checkpoints(checkpoints)
        if not found:
            raise ValueError(f"no checkpoints (epoch_*.msgpack) in {checkpoints}")
        checkpoints = found
    pairs = checkpoints.items() if isinstance(checkpoints, Mapping) else checkpoints
    items = [(check_int(e, "checkpoint epochs", 0), p) for e, p in pairs]
    if not items:
        raise ValueError("a sweep needs at least one checkpoint")
    epochs = [e for e, _ in items]
    if len(set(epochs)) != len(epochs):
        raise ValueError(f"checkpoint epochs must be distinct, got {epochs}")
    return sorted(items, key=lambda t: t[0])


def _load_checkpoint(ckpt: Any) -> tuple[Any, str]:
    """``(params, sha256 of their msgpack bytes)`` for a path or a parameter pytree."""
    if isinstance(ckpt, (str, os.PathLike)):
        data = Path(ckpt).read_bytes()
        return restore_params(data, ckpt), _sha(data)
    return ckpt, _sha(flax.serialization.to_bytes(ckpt))


def select_samples(n_available: int, n_samples: int = 50, seed: int = 0) -> np.ndarray:
    """``n_samples`` distinct indices in ``[0, n_available)``, sorted, chosen with ``seed``."""
    if not 1 <= n_samples <= n_available:
        raise ValueError(f"cannot pick {n_samples} samples out of {n_available}")
    return np.sort(np.random.default_rng([seed, 3]).choice(n_available, n_samples, replace=False))


def default_players(input_shape: Sequence[int], n_players: int = 10):
    """Players for an input shape: ``n_players`` contiguous feature groups for tabular data
    (all features when there are exactly ``n_players``), or ``n_players`` 2×2 patches of an
    8×8-like image chosen from the centre outwards (as [D24] picks central patches).
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 1:
        d = shape[0]
        if not 1 <= n_players <= d:
            raise ValueError(f"cannot make {n_players} players from {d} features")
        if n_players == d:
            return masking.TabularPlayers(d)
        groups = tuple(tuple(int(i) for i in g) for g in np.array_split(np.arange(d), n_players))
        return masking.TabularPlayers(d, groups=groups)
    if len(shape) in (2, 3):
        channels_last = len(shape) == 3
        h, w = shape[:2]
        if h % 2 or w % 2:
            raise ValueError(f"images of shape {shape} need even height and width for 2×2 patches")
        grid = (h // 2, w // 2)
        centre = ((grid[0] - 1) / 2, (grid[1] - 1) / 2)
        cells = sorted(
            range(grid[0] * grid[1]),
            key=lambda c: ((c // grid[1] - centre[0]) ** 2 + (c % grid[1] - centre[1]) ** 2, c),
        )
        if not 1 <= n_players <= len(cells):
            raise ValueError(f"cannot make {n_players} players from {len(cells)} patches")
        return masking.PatchPlayers(shape, (2, 2), cells=tuple(sorted(cells[:n_players])), channels_last=channels_last)
    raise ValueError(f"no default players for inputs of shape {shape}")


def sample_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """1-D mesh with axis ``"samples"`` over ``devices`` (default: this process's devices)."""
    devices = list(jax.local_devices() if devices is None else devices)
    return Mesh(np.asarray(devices), (_AXIS,))


# --------------------------------------------------------------------------------------------
# The unit computation
# --------------------------------------------------------------------------------------------


def _cast(tree: Any, dtype) -> Any:
    return jax.tree.map(
        lambda a: jnp.asarray(a).astype(dtype) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a, tree
    )


_RewardName = Literal["log_odds", "logit"]  # a reward by name (None: a scalar model)
_OnMismatch = Literal["recompute", "error"]


_VALUES_CACHE: dict[Any, Callable] = {}


def _values_fn(model, players, baseline_kind: str, reward: str | None, dtype, mesh: Mesh, label_max: int = 0):
    """Jitted ``(params, x, y, baseline, data) -> v``, sharded over the sample axis.

    Cached per (model, players, settings, mesh), so repeated or resumed sweeps in one process
    compile once (unhashable models are simply not cached). ``label_max``, the largest label of
    ``y``, is checked against the model's number of outputs when it is compiled.
    """
    key = (model, players, baseline_kind, reward, jnp.dtype(dtype), mesh, label_max)
    try:
        return _VALUES_CACHE[key]
    except TypeError:
        return _build_values_fn(model, players, baseline_kind, reward, dtype, mesh, label_max)
    except KeyError:
        if len(_VALUES_CACHE) > 32:
            _VALUES_CACHE.clear()
        fn = _VALUES_CACHE[key] = _build_values_fn(model, players, baseline_kind, reward, dtype, mesh, label_max)
        return fn


def _build_values_fn(model, players, baseline_kind: str, reward: str | None, dtype, mesh: Mesh, label_max: int):
    sharded = NamedSharding(mesh, PartitionSpec(_AXIS))
    replicated = NamedSharding(mesh, PartitionSpec())

    def values(params, x, y, baseline, data):
        params = _cast(params, dtype)
        x = x.astype(dtype)
        y = y.astype(jnp.result_type(int))  # the default int (int64 under x64)
        base = baseline.astype(dtype) if baseline_kind == "array" else baseline_kind
        data = None if data is None else data.astype(dtype)
        label_reward = None if reward is None else masking._LabelReward(y, reward, (0, label_max), "y")
        v = masking.masked_outputs(
            model, x, players, baseline=base, reward=label_reward,
            data=data, params=params,
        )
        return jax.lax.with_sharding_constraint(v, sharded)

    return jax.jit(
        values,
        in_shardings=(replicated, sharded, sharded, replicated, replicated),
        out_shardings=sharded,
    )


def _pad(a: np.ndarray, size: int) -> np.ndarray:
    if len(a) == size:
        return a
    return np.concatenate([a, np.repeat(a[-1:], size - len(a), axis=0)])


# --------------------------------------------------------------------------------------------
# Planning: the settings, the units and their hashes, the manifest (no file is written)
# --------------------------------------------------------------------------------------------


class _Plan(NamedTuple):
    """What a sweep computes, decided before any file is touched (see :func:`_plan`)."""

    x: np.ndarray
    y: np.ndarray
    sample_indices: np.ndarray
    checkpoints: list[tuple[int, Any]]  # (epoch, params or path), sorted by epoch
    params: dict[int, Any]  # parameters given in memory, by checkpoint index (paths load lazily)
    blocks: list[np.ndarray]  # positions in x of each block's samples
    baseline_kind: str  # "zeros", "mean" or "array"
    baseline: np.ndarray  # the array baseline (empty otherwise)
    data: np.ndarray | None  # the inputs averaged by baseline="mean"
    reward: str | None
    options: decomposition.AndOrOptions
    dtype: np.dtype
    manifest: dict  # settings, hashes, epochs, samples, blocks and every unit (what sweep.json holds)

    @property
    def units(self) -> list[dict]:
        """Every unit (checkpoint × block) in order: ``checkpoint``, ``epoch``, ``block``, ``file``, ``hash``."""
        return self.manifest["units"]


def _process_split(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    pidx = jax.process_index() if process_index is None else check_int(process_index, "process_index", 0)
    pcount = jax.process_count() if process_count is None else check_int(process_count, "process_count", 1)
    if not 0 <= pidx < pcount:
        raise ValueError(f"process_index {pidx} not in [0, {pcount})")
    return pidx, pcount


def _solver_options(
    solver: decomposition.AndOrOptions | None, and_or_kwargs: Mapping[str, Any] | None, q_ratio: float | None
) -> decomposition.AndOrOptions:
    """The sweep's solver options from ``solver``, ``and_or_kwargs`` and ``q_ratio`` (see :func:`run_sweep`)."""
    if solver is not None and and_or_kwargs is not None:
        raise ValueError("give solver=AndOrOptions(...) or and_or_kwargs={...}, not both")
    if solver is not None:
        if not isinstance(solver, decomposition.AndOrOptions):
            raise ValueError(
                f"solver must be a jinter.AndOrOptions, got {type(solver).__name__} "
                "(a mapping of and_or's keyword arguments: AndOrOptions(**mapping) or and_or_kwargs=)"
            )
        options, explicit = solver, True
    else:
        if and_or_kwargs is not None and not isinstance(and_or_kwargs, Mapping):
            raise ValueError(f"and_or_kwargs must be a mapping, got {type(and_or_kwargs).__name__}")
        try:
            options = decomposition.AndOrOptions.from_kwargs(and_or_kwargs)
        except ValueError as e:
            raise ValueError(f"and_or_kwargs: {e}") from None
        explicit = "q_ratio" in (and_or_kwargs or {})
    if q_ratio is not None:
        where = "solver.q_ratio" if solver is not None else "and_or_kwargs['q_ratio']"
        if explicit and options.replace(q_ratio=q_ratio).q_ratio != options.q_ratio:
            raise ValueError(
                f"q_ratio={q_ratio!r} and {where}={options.q_ratio!r} differ; set it in one place "
                "(e.g. solver=AndOrOptions(q_ratio=..., ...) without q_ratio=)"
            )
        options = options.replace(q_ratio=q_ratio)
    return options


def _plan(
    model: Any, checkpoints: Any, x: ArrayLike, y: ArrayLike, players: Any, *, sample_indices: ArrayLike | None,
    block_size: int, baseline: Any, data: ArrayLike | None, reward: str | None, q_ratio: float | None,
    solver: decomposition.AndOrOptions | None, and_or_kwargs: Mapping[str, Any] | None, dtype: Any,
) -> _Plan:
    """Check the arguments of :func:`run_sweep` and decide its units and their hashes.

    A unit is checkpoint ``c`` × block ``b``; its hash covers the settings, the checkpoint's bytes
    and the block's inputs, labels and sample indices. Reads the checkpoints (paths: their bytes
    only, the parameters are loaded when a unit needs them); writes nothing.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"x must hold at least one sample along axis 0, got shape {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"y must have shape ({len(x)},) (one label per sample), got {y.shape}")
    sample_indices = np.arange(len(x)) if sample_indices is None else np.asarray(sample_indices)
    if sample_indices.shape != (len(x),) or not np.issubdtype(sample_indices.dtype, np.integer):
        raise ValueError(f"sample_indices must be {len(x)} integers, got {sample_indices.dtype} {sample_indices.shape}")
    block_size = check_int(block_size, "block_size", 1)
    check_option(reward, "reward", get_args(_RewardName) + (None,))
    if reward is not None and not (np.issubdtype(y.dtype, np.integer) and np.all(y >= 0)):
        # the reward reads class y of the outputs: a float label would be truncated
        raise ValueError(f"y must hold class labels (integers ≥ 0) for reward={reward!r}, got {y.dtype} "
                         f"values {y[:5].tolist()}")
    dtype = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a float dtype (float32 or float64), got {dtype}")
    options = _solver_options(solver, and_or_kwargs, q_ratio)
    ckpts = _as_checkpoints(checkpoints)
    if isinstance(baseline, str):
        check_option(baseline, "baseline", get_args(masking._BaselineName), otherwise="an array")
        if baseline == "mean" and data is None:
            raise ValueError('baseline="mean" needs data=... (the inputs to average over)')
        baseline_kind, base_arr = baseline, np.zeros(0, dtype=np.float32)
    else:
        baseline_kind, base_arr = "array", np.asarray(baseline)
    data_arr = None if baseline_kind != "mean" else np.asarray(data)

    settings = {
        "format": FORMAT_VERSION,
        "model": _fingerprint(model),
        "players": _fingerprint(players),
        "n_players": int(players.n),
        "baseline": baseline_kind,
        "baseline_array": _fingerprint(base_arr) if baseline_kind == "array" else None,
        "data": _fingerprint(data_arr) if data_arr is not None else None,
        "reward": reward,
        "q_ratio": options.q_ratio,  # also in "solver"; kept for readers of the manifest
        "solver": _fingerprint(options),
        "dtype": str(dtype),
        "block_size": block_size,
    }
    settings_hash = _hash_json(settings)
    blocks = [np.arange(s, min(s + block_size, len(x))) for s in range(0, len(x), block_size)]
    block_hashes = [
        _hash_json([_fingerprint(x[b]), _fingerprint(y[b]), _fingerprint(sample_indices[b])]) for b in blocks
    ]
    ckpt_hashes, params = [], {}
    for c, (_, ck) in enumerate(ckpts):
        if isinstance(ck, (str, os.PathLike)):
            ckpt_hashes.append(_sha(Path(ck).read_bytes()))  # loaded lazily, one at a time
        else:
            params[c], h = _load_checkpoint(ck)
            ckpt_hashes.append(h)
    units = [
        {
            "checkpoint": c,
            "epoch": epoch,
            "block": b,
            "file": _unit_name(c, b),
            "hash": _hash_json([settings_hash, ckpt_hashes[c], block_hashes[b]]),
        }
        for c, (epoch, _) in enumerate(ckpts)
        for b in range(len(blocks))
    ]
    manifest = {
        "settings": settings,
        "settings_hash": settings_hash,
        "sweep_hash": _hash_json([settings_hash, ckpt_hashes, block_hashes]),
        "epochs": [e for e, _ in ckpts],
        "sample_indices": sample_indices.tolist(),
        "labels": y.tolist(),
        "blocks": [b.tolist() for b in blocks],
        "units": units,
    }
    return _Plan(x, y, sample_indices, ckpts, params, blocks, baseline_kind, base_arr, data_arr, reward, options,
                 dtype, manifest)


def _assigned(units: list[dict], process_index: int, process_count: int) -> list[dict]:
    """The units of one process: ``u % process_count == process_index``."""
    return [u for i, u in enumerate(units) if i % process_count == process_index]


# --------------------------------------------------------------------------------------------
# Resume state: the folder, and which unit files are valid
# --------------------------------------------------------------------------------------------


def _open_out_dir(out: Path, manifest: dict, on_mismatch: str, process_index: int, process_count: int) -> None:
    """Check a manifest already in ``out`` against this sweep (``on_mismatch="error"``: raise if
    it differs), remove temporary files of writes cut short (one process only), and write the
    manifest (process 0)."""
    for above in (out, *out.parents):
        if above.exists():
            if not above.is_dir():
                raise SweepError(f"out_dir {out} cannot be a folder: {above} is a file")
            break
    man_path = out / MANIFEST
    if man_path.is_file():
        try:
            old = json.loads(man_path.read_text())
        except (OSError, ValueError):
            old = None
        if on_mismatch == "error" and not isinstance(old, dict):
            raise SweepError(f"{man_path} cannot be read as a sweep manifest, so on_mismatch='error' cannot check it "
                             "against this sweep; use a new out_dir or on_mismatch='recompute'")
        old_format = (old.get("settings") or {}).get("format") if isinstance(old, dict) else None
        stale = old is not None and (old.get("sweep_hash") != manifest["sweep_hash"] or old_format != FORMAT_VERSION)
        if on_mismatch == "error" and stale:
            older = "" if old_format == FORMAT_VERSION else (
                f" (by another jinter: sweep format {old_format!r}, this one writes {FORMAT_VERSION}; "
                "load_sweep reads format 1 as it is)"
            )
            raise SweepError(
                f"{man_path} was written with other settings, checkpoints or samples{older}; use a new "
                "out_dir or on_mismatch='recompute'"
            )
    if process_count == 1:  # temporary files of writes cut short by a kill (no other writer exists)
        for tmp in out.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
    if process_index == 0:
        atomic_write_bytes(man_path, json.dumps(manifest, indent=1).encode())


_UnitState = Literal["valid", "missing", "invalid"]


def _unit_state(path: Path, unit_hash: str) -> _UnitState:
    """``"valid"`` (reuse it), ``"missing"``, or ``"invalid"`` (corrupt, stale or incomplete: recompute)."""
    existed = path.exists()
    if _has_fields(_read_unit(path, unit_hash)):
        return "valid"
    return "invalid" if existed else "missing"


# --------------------------------------------------------------------------------------------
# Execution: evaluate v on the sample mesh, split it, the unit's arrays
# --------------------------------------------------------------------------------------------


class _Executor:
    """Computes the arrays of a plan's units on a sample mesh (one compiled value function and
    one padded block shape for all units; one checkpoint's parameters held at a time)."""

    def __init__(self, plan: _Plan, model: Any, players: Any, devices: Sequence[jax.Device] | None):
        self.plan = plan
        mesh = sample_mesh(devices)
        label_max = int(plan.y.max()) if plan.reward is not None else 0
        self.values_fn = _values_fn(model, players, plan.baseline_kind, plan.reward, plan.dtype, mesh, label_max)
        self.baseline = jnp.asarray(plan.baseline)
        self.data = None if plan.data is None else jnp.asarray(plan.data)
        self.sharded = NamedSharding(mesh, PartitionSpec(_AXIS))
        # Every block is padded to one shape (a multiple of the device count): one compilation.
        n_dev = mesh.devices.size
        self.padded = -(-min(int(plan.manifest["settings"]["block_size"]), len(plan.x)) // n_dev) * n_dev
        self.loaded: dict[int, Any] = {}
        self.value_seconds = self.and_or_seconds = 0.0

    def preflight(self) -> None:
        """Trace the value function on the first unit's block (``jax.eval_shape``: no model call),
        so that shape and label errors (``x`` against the players, labels against the model's
        outputs) and non-finite inputs are raised before the output folder is touched."""
        plan = self.plan
        check_finite(plan.x, "x")
        if not plan.units:
            return
        unit = plan.units[0]
        idx = plan.blocks[unit["block"]]
        xb, yb = _pad(plan.x[idx], self.padded), _pad(plan.y[idx], self.padded)
        with reraise_host_errors():
            jax.eval_shape(self.values_fn, self.params(unit["checkpoint"]), xb, yb, self.baseline, self.data)

    def params(self, c: int) -> Any:
        if c not in self.loaded:
            self.loaded.clear()  # hold one checkpoint's parameters at a time
            plan = self.plan
            self.loaded[c] = plan.params[c] if c in plan.params else _load_checkpoint(plan.checkpoints[c][1])[0]
        return self.loaded[c]

    def evaluate(self, unit: dict) -> jax.Array:
        """``v`` of the unit's block (padded, sharded over the mesh); raises on non-finite values."""
        plan, idx = self.plan, self.plan.blocks[unit["block"]]
        xb = jax.device_put(_pad(plan.x[idx], self.padded), self.sharded)
        yb = jax.device_put(_pad(plan.y[idx], self.padded), self.sharded)
        t0 = time.perf_counter()
        with reraise_host_errors():  # a host model's own exception, not an opaque JaxRuntimeError
            v = self.values_fn(self.params(unit["checkpoint"]), xb, yb, self.baseline, self.data)
            host = np.asarray(v)[: len(idx)]
        self.value_seconds += time.perf_counter() - t0
        check_finite(host, f"model values in unit {unit['file']}", error=masking.NonFiniteOutputError,
                     context=f" (epoch {unit['epoch']}, samples {plan.sample_indices[idx].tolist()})")
        return v

    def split(self, v: jax.Array) -> decomposition.AndOrResult:
        t0 = time.perf_counter()
        res = decomposition.and_or(v, **self.plan.options.kwargs())
        res = jax.block_until_ready(res)
        self.and_or_seconds += time.perf_counter() - t0
        return res

    def unit_arrays(self, unit: dict) -> dict[str, np.ndarray]:
        """What the unit's file stores: ``v``, every :class:`AndOrResult` field, provenance."""
        n = len(self.plan.blocks[unit["block"]])
        v = self.evaluate(unit)
        split = self.split(v)
        arrays = {"v": np.asarray(v)[:n]}
        arrays |= {name: np.asarray(getattr(split, name))[:n] for name in _SPLIT_FIELDS}
        arrays["sample_indices"] = self.plan.sample_indices[self.plan.blocks[unit["block"]]]
        arrays["epoch"] = np.asarray(unit["epoch"])
        return arrays


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def run_sweep(
    model: Any,
    checkpoints: Mapping[int, Any] | Sequence[tuple[int, Any]] | str | os.PathLike,
    x: Float[ArrayLike, "S *input_shape"],
    y: Int[ArrayLike, " S"],
    players: Any,
    out_dir: str | os.PathLike,
    *,
    sample_indices: Int[ArrayLike, " S"] | None = None,
    block_size: int = 10,
    baseline: masking._BaselineName | ArrayLike = "zeros",
    data: ArrayLike | None = None,
    reward: _RewardName | None = "log_odds",
    q_ratio: float | None = None,
    solver: decomposition.AndOrOptions | None = None,
    and_or_kwargs: Mapping[str, Any] | None = None,
    dtype: Any = None,
    progress: bool = True,
    devices: Sequence[jax.Device] | None = None,
    on_mismatch: _OnMismatch = "recompute",
    process_index: int | None = None,
    process_count: int | None = None,
) -> SweepReport:
    """Compute ``v`` and its AND-OR split for every checkpoint × sample, resumably.

    Args:
        model: what :func:`jinter.masking.masked_outputs` accepts (e.g. a linen module).
        checkpoints: ``{epoch: params or msgpack path}`` (e.g. ``TrainResult.checkpoints``),
            a list of ``(epoch, params_or_path)`` pairs, or a directory of checkpoints.
        x: the samples, shape ``(S, *players.input_shape)``.
        y: their labels (for the reward), shape ``(S,)``.
        players: player specification (e.g. :func:`default_players`).
        out_dir: folder for the unit files and ``sweep.json``.
        sample_indices: provenance of the samples (e.g. indices into the test split);
            default ``arange(S)``.
        block_size: samples per unit (a multiple of the device count avoids padding).
        baseline: ``"zeros"``, ``"mean"`` (over ``data``) or an array (docs/math.md §1).
        data: inputs to average for ``baseline="mean"``.
        reward: ``"log_odds"`` (docs/math.md §1, default), ``"logit"``, or None (scalar model).
        q_ratio: noise box of the AND-OR split (docs/math.md §3; default ``solver.q_ratio``,
            0.02 as in [D24]); a value that differs from an explicit ``solver``'s is an error.
        solver: the options of :func:`jinter.decomposition.and_or`, a
            :class:`jinter.decomposition.AndOrOptions` (default ``AndOrOptions()``). They are
            part of the sweep's fingerprint: a resumed sweep with other options recomputes its
            units (or refuses, ``on_mismatch="error"``).
        and_or_kwargs: the same options as a mapping (``{"tol": 1e-5}``), kept for existing
            callers: converted with :meth:`AndOrOptions.from_kwargs <jinter.decomposition.AndOrOptions.from_kwargs>`
            (an unknown key is a ``ValueError``), fingerprinted as the equal ``solver``. Give
            ``solver`` or ``and_or_kwargs``, not both.
        dtype: computation dtype (default: float64 when x64 is enabled, else float32).
        progress: show a tqdm bar.
        devices: devices of the sample mesh (default: this process's devices).
        on_mismatch: a ``sweep.json`` with other settings in ``out_dir``: ``"recompute"``
            (replace it; stale units are recomputed) or ``"error"`` (raise :class:`SweepError`).
        process_index, process_count: multi-host split (default: from ``jax``); this
            process computes the units ``u`` with ``u % process_count == process_index``.

    Returns:
        :class:`SweepReport`. Read the results with :func:`load_sweep`.
    """
    from tqdm import tqdm

    start_time = time.perf_counter()
    check_option(on_mismatch, "on_mismatch", get_args(_OnMismatch))
    masking._check_players(players)
    pidx, pcount = _process_split(process_index, process_count)
    plan = _plan(
        model, checkpoints, x, y, players, sample_indices=sample_indices, block_size=block_size,
        baseline=baseline, data=data, reward=reward, q_ratio=q_ratio, solver=solver,
        and_or_kwargs=and_or_kwargs, dtype=dtype,
    )
    out = Path(out_dir)
    executor = _Executor(plan, model, players, devices)
    executor.preflight()  # labels, shapes, non-finite x: refused before the folder is touched
    _open_out_dir(out, plan.manifest, on_mismatch, pidx, pcount)
    mine = _assigned(plan.units, pidx, pcount)
    counts = {"valid": 0, "missing": 0, "invalid": 0}  # reused, computed, recomputed
    invalid: list[str] = []
    unconverged = 0
    bar = tqdm(total=len(mine), desc="sweep", unit="unit", disable=not progress)
    try:
        for u in mine:
            path = out / u["file"]
            state = _unit_state(path, u["hash"])
            counts[state] += 1
            if state == "invalid":
                invalid.append(u["file"])
            if state != "valid":
                arrays = executor.unit_arrays(u)
                unconverged += int(np.size(arrays["converged"]) - np.count_nonzero(arrays["converged"]))
                _write_unit(path, arrays, u["hash"])
            bar.update(1)
    finally:
        bar.close()
    seconds = time.perf_counter() - start_time
    return SweepReport(
        out, len(mine), counts["missing"], counts["valid"], counts["invalid"], seconds, unconverged,
        executor.value_seconds, executor.and_or_seconds, tuple(invalid),
    )


def _fill_format_1(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The fields a format-1 unit lacks, as :func:`jinter.decomposition.and_or` computes them
    without the canonical phase: ``canonical`` False, ``canonical_eps`` 0, ``canonical_distance``
    inf (in the dtype of ``v``), ``status`` :data:`~jinter.decomposition.STATUS_ANY_OPTIMUM` where
    ``converged``, else :data:`~jinter.decomposition.STATUS_UNCERTIFIED` (int32)."""
    converged = np.asarray(arrays["converged"], dtype=bool)
    dtype = np.asarray(arrays["v"]).dtype
    return arrays | {
        "canonical": np.zeros(converged.shape, bool),
        "canonical_eps": np.zeros(converged.shape, dtype),
        "canonical_distance": np.full(converged.shape, np.inf, dtype),
        "status": np.where(converged, decomposition.STATUS_ANY_OPTIMUM, decomposition.STATUS_UNCERTIFIED).astype(
            np.int32
        ),
    }


def _check_format(out: Path, settings: Mapping[str, Any]) -> int:
    """The folder's format, if :func:`load_sweep` can read it; else a :class:`SweepError` that says why."""
    fmt = settings.get("format")
    if fmt == FORMAT_VERSION:
        return fmt
    if fmt == 1:
        kwargs = settings.get("and_or_kwargs") or {}
        if isinstance(kwargs, Mapping) and kwargs.get("canonical"):
            raise SweepError(
                f"{out} was written by an older jinter (sweep format 1) with and_or canonical=True, and "
                f"format 1 did not store the canonical phase's fields {list(_FORMAT_1_MISSING)}; rerun "
                "run_sweep with the same arguments on this folder (its units are recomputed in format "
                f"{FORMAT_VERSION}) or use a new out_dir"
            )
        return fmt
    raise SweepError(
        f"{out} has sweep format {fmt!r}; this jinter reads formats 1 and {FORMAT_VERSION} (a newer jinter "
        "wrote it? load it with that one, or rerun the sweep)"
    )


def _manifest_layout(out: Path, manifest: Any) -> tuple[list[np.ndarray], int, np.ndarray]:
    """``(blocks, checkpoints, sample_indices)`` of a manifest, checked: its fields are there and
    of the right kinds, and its units cover every (checkpoint, block) exactly once (a unit dropped
    from the list would otherwise load as zeros). A malformed manifest is a :class:`SweepError`."""
    where = out / MANIFEST
    try:
        if not isinstance(manifest, dict) or not isinstance(manifest.get("settings"), dict):
            raise ValueError("not a mapping with a settings mapping")
        blocks = [np.asarray(b, dtype=np.int64).reshape(-1) for b in manifest["blocks"]]
        sample_indices = np.asarray(manifest["sample_indices"], dtype=np.int64).reshape(-1)
        n_c = len(manifest["epochs"])
        keys = [(int(u["checkpoint"]), int(u["block"])) for u in manifest["units"]]
        files = [str(u["file"]) + str(u["hash"]) for u in manifest["units"]]
        n_labels = len(manifest["labels"])
    except (KeyError, TypeError, ValueError) as e:
        raise SweepError(
            f"{where} is not a sweep manifest jinter can read ({type(e).__name__}: {e}); rerun the sweep"
        ) from None
    n_s = sum(len(b) for b in blocks)
    if sorted(keys) != [(c, b) for c in range(n_c) for b in range(len(blocks))] or len(set(files)) != len(files):
        raise SweepError(f"{where} lists {len(keys)} unit(s) for {n_c} checkpoint(s) × {len(blocks)} block(s): "
                         "some unit is missing or listed twice; rerun the sweep")
    if n_labels != n_s or sample_indices.size != n_s or any(np.any((b < 0) | (b >= n_s)) for b in blocks):
        raise SweepError(f"{where}: its blocks, sample_indices and labels do not describe the same {n_s} samples; "
                         "rerun the sweep")
    return blocks, n_c, sample_indices


def _unit_matches(arrays: dict[str, np.ndarray], epoch: Any, samples: np.ndarray) -> bool:
    """A unit file's own epoch and sample indices (where it stores them) agree with the manifest."""
    if "epoch" in arrays and int(np.asarray(arrays["epoch"])) != int(epoch):
        return False
    return "sample_indices" not in arrays or np.array_equal(np.asarray(arrays["sample_indices"]), samples)


def load_sweep(out_dir: str | os.PathLike) -> SweepResult:
    """Read every unit of a finished sweep into arrays ``(checkpoints, samples, ...)``.

    A folder written by an older jinter (sweep format 1, which stored the AND-OR fields up to
    ``converged`` only) still loads when it was computed without the canonical phase (the
    default): the missing fields are what :func:`jinter.decomposition.and_or` returns then,
    ``canonical`` False, ``canonical_eps`` 0, ``canonical_distance`` inf, ``status``
    ``STATUS_ANY_OPTIMUM`` (3) where converged, else ``STATUS_UNCERTIFIED`` (2). A format-1 folder
    computed with ``canonical=True`` is refused (:class:`SweepError`): rerun the sweep on it.
    ``settings["format"]`` says which format the folder has.

    Raises:
        SweepError: if the manifest is missing, or some unit file is missing, corrupt or
            was written with other settings (the message lists them; rerun the sweep), or
            the folder's format cannot be read (the message says what to do).
    """
    out = Path(out_dir)
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise SweepError(f"no readable {MANIFEST} in {out}: {e}") from None
    blocks, n_c, sample_indices = _manifest_layout(out, manifest)
    fmt = _check_format(out, manifest["settings"])
    n_s = sample_indices.size  # = Σ block sizes (checked by _manifest_layout)
    stacked: dict[str, np.ndarray] = {}
    bad = []
    for u in manifest["units"]:
        arrays = _read_unit(out / u["file"], u["hash"])
        if arrays is not None and fmt == 1 and not any(name in arrays for name in _FORMAT_1_MISSING):
            arrays = _fill_format_1(arrays)
        idx = blocks[u["block"]]
        if not _has_fields(arrays) or not _unit_matches(arrays, manifest["epochs"][u["checkpoint"]], sample_indices[idx]):
            bad.append(u["file"])
            continue
        for name in _UNIT_FIELDS:
            a = arrays[name]
            if name not in stacked:
                stacked[name] = np.zeros((n_c, n_s) + a.shape[1:], dtype=a.dtype)
            stacked[name][u["checkpoint"], idx] = a
    if bad:
        raise SweepError(
            f"{len(bad)} of {len(manifest['units'])} unit(s) in {out} are missing, corrupt or stale "
            f"(e.g. {bad[:3]}); rerun the sweep to (re)compute them"
        )
    return SweepResult(
        epochs=np.asarray(manifest["epochs"], dtype=np.int64),
        sample_indices=sample_indices,
        labels=np.asarray(manifest["labels"]),
        v=stacked["v"],
        and_or=decomposition.AndOrResult(**{name: stacked[name] for name in _SPLIT_FIELDS}),
        settings=manifest["settings"],
    )


def sweep_dataset(
    model: Any,
    dataset: Any,
    checkpoints: Mapping[int, Any] | Sequence[tuple[int, Any]] | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    n_players: int = 10,
    n_samples: int = 50,
    seed: int = 0,
    players: Any = None,
    **kwargs,
) -> SweepReport:
    """:func:`run_sweep` on ``n_samples`` test samples of a :class:`jinter.data.Dataset`.

    Samples come from :func:`select_samples` (``seed``), players from
    :func:`default_players` unless given; ``baseline="mean"`` averages the train split.
    Other keyword arguments go to :func:`run_sweep`.
    """
    idx = select_samples(len(dataset.y_test), n_samples, seed)
    if players is None:
        players = default_players(dataset.input_shape, n_players)
    if isinstance(kwargs.get("baseline"), str) and kwargs["baseline"] == "mean":
        kwargs.setdefault("data", dataset.x_train)
    return run_sweep(
        model, checkpoints, dataset.x_test[idx], dataset.y_test[idx], players, out_dir,
        sample_indices=idx, **kwargs,
    )
