"""Training loop with checkpoints at chosen epochs ([D24] setup: SGD lr 0.01, momentum 0.9).

- :func:`train`: optax SGD-with-momentum (or Adam) on softmax cross-entropy; one jit-compiled
  function runs a whole epoch (``lax.scan`` over shuffled minibatches; the last partial batch
  is padded with zero-weight samples, so every sample counts once per epoch). Train / test
  loss and accuracy are recorded at epoch 0 (initialization) and after every epoch. The same
  seed gives the same numbers.
- Parameters are saved at chosen epochs (:func:`log_spaced_epochs`) as flax msgpack bytes,
  written atomically (temporary file + ``os.replace``), so a killed run never leaves a
  half-written checkpoint. :func:`load_params` reads one back exactly. Files are created
  with mode ``0o666 & ~umask`` (world-readable under the usual umask 022).
- ``training.json`` (written last, after every checkpoint) holds the learning curves, the
  settings, the SHA-256 of every checkpoint file and a checksum of its own content.
  :func:`verify_training_dir` checks all of them before a later run trusts the folder: a
  flipped byte anywhere is detected and the offending file named.
- :func:`train_baseline`: the same architecture trained on the TEST split, the baseline
  model ``v_base`` of [H25] (docs/math.md §7).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal, Mapping, NamedTuple, Sequence, get_args

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jinter._checks import check_int, check_ints, check_option, check_real
from jinter._files import atomic_write_bytes
from jinter.data import Dataset
from jinter.models import init_params

__all__ = [
    "TrainResult",
    "train",
    "train_baseline",
    "log_spaced_epochs",
    "dense_then_log_epochs",
    "save_params",
    "load_params",
    "data_sha256",
    "restore_params",
    "list_checkpoints",
    "atomic_write_bytes",
    "evaluate",
    "load_history",
    "checkpoint_path",
    "verify_training_dir",
    "CorruptFileError",
    "DivergedError",
    "file_sha256",
]

_CKPT_PREFIX = "epoch_"
_CKPT_SUFFIX = ".msgpack"
MANIFEST = "training.json"


class TrainResult(NamedTuple):
    """Output of :func:`train`.

    Attributes:
        params: final parameters.
        history: ``epoch``, ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``,
            numpy arrays of length ``epochs + 1`` (entry 0 = initialization).
        checkpoints: ``{epoch: path}`` of the saved parameter files (empty without a
            ``checkpoint_dir``).
    """

    params: Any
    history: dict[str, np.ndarray]
    checkpoints: dict[int, Path]


def log_spaced_epochs(n_epochs: int, k: int) -> tuple[int, ...]:
    """``k`` distinct epochs from 0 to ``n_epochs`` (both included), log-spaced after 0.

    Dense early (where interactions change fastest [D24]), sparse late. Needs
    ``2 <= k <= n_epochs + 1``.

    Example:
        >>> log_spaced_epochs(100, 6)
        (0, 1, 3, 10, 32, 100)
    """
    n_epochs, k = int(n_epochs), int(k)
    if n_epochs < 1 or not 2 <= k <= n_epochs + 1:
        raise ValueError(f"need n_epochs >= 1 and 2 <= k <= n_epochs + 1, got {n_epochs=}, {k=}")
    out, prev = [0, 1], 1
    for remaining in range(k - 2, 0, -1):
        ratio = (n_epochs / prev) ** (1.0 / remaining)
        nxt = max(prev + 1, int(round(prev * ratio)))
        nxt = min(nxt, n_epochs - remaining + 1)
        out.append(nxt)
        prev = nxt
    return tuple(out[:k]) if k > 2 or n_epochs == 1 else (0, n_epochs)


def dense_then_log_epochs(n_epochs: int, k: int, dense: int) -> tuple[int, ...]:
    """``k`` checkpoint epochs: every epoch from 0 to ``dense``, then log-spaced up to ``n_epochs``.

    Fine early, where [D24]'s phase 2 starts (so its start is pinned to ±1 epoch there), sparse
    late. ``dense = 1`` is :func:`log_spaced_epochs`. Needs ``1 <= dense < n_epochs`` and
    ``dense + 2 <= k <= n_epochs + 1``.

    Example:
        >>> dense_then_log_epochs(40, 12, 6)
        (0, 1, 2, 3, 4, 5, 6, 9, 13, 19, 28, 40)
    """
    n_epochs, k, dense = int(n_epochs), int(k), int(dense)
    if not 1 <= dense < n_epochs or not dense + 2 <= k <= n_epochs + 1:
        raise ValueError(f"need 1 <= dense < n_epochs and dense + 2 <= k <= n_epochs + 1, got {n_epochs=}, {k=}, {dense=}")
    out, prev = list(range(dense + 1)), dense
    for remaining in range(k - dense - 1, 0, -1):
        ratio = (n_epochs / prev) ** (1.0 / remaining)
        nxt = min(max(prev + 1, int(round(prev * ratio))), n_epochs - remaining + 1)
        out.append(nxt)
        prev = nxt
    return tuple(out)


class CorruptFileError(ValueError):
    """A file a later run would trust is missing, unreadable, or fails its checksum."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_params(path: str | os.PathLike, params: Any) -> Path:
    """Save a parameter pytree as flax msgpack bytes, atomically."""
    return atomic_write_bytes(path, flax.serialization.to_bytes(params))


def load_params(path: str | os.PathLike, template: Any = None) -> Any:
    """Load parameters saved by :func:`save_params`.

    Args:
        path: the msgpack file.
        template: optional pytree with the target structure (e.g. ``init_params(...)``);
            without it the nested dicts stored in the file are returned (linen's layout).
    """
    data = Path(path).read_bytes()
    if template is not None:
        return restore_params(data, path, template)
    return jax.tree.map(jnp.asarray, restore_params(data, path))


def restore_params(data: bytes, path: str | os.PathLike, template: Any = None) -> Any:
    """The parameters in the msgpack bytes ``data`` read from ``path`` (into ``template``'s
    structure if given); bytes that are not a checkpoint are a ``ValueError`` naming the file."""
    try:
        stored = flax.serialization.msgpack_restore(data)  # parsed once (from_bytes would parse it again)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{os.fspath(path)!r} is not a readable parameter checkpoint (flax msgpack): "
                         f"{type(e).__name__}: {e}") from e
    if template is None:
        return stored
    want = jax.tree.map(np.shape, flax.serialization.to_state_dict(template))
    if jax.tree.map(np.shape, stored) != want:
        raise ValueError(f"{os.fspath(path)!r} holds parameters of another structure or shape than the template: "
                         f"{jax.tree.map(np.shape, stored)} vs {want}")
    return flax.serialization.from_state_dict(template, stored)


def checkpoint_path(directory: str | os.PathLike, epoch: int) -> Path:
    """File name of the checkpoint of ``epoch`` (an integer ≥ 0) in ``directory``."""
    return Path(directory) / f"{_CKPT_PREFIX}{check_int(epoch, 'epoch', 0):06d}{_CKPT_SUFFIX}"


def list_checkpoints(directory: str | os.PathLike) -> dict[int, Path]:
    """``{epoch: path}`` of the checkpoints saved in ``directory``, by epoch (where the folder has
    a ``training.json``, only the checkpoints it lists)."""
    found = {}
    for p in Path(directory).glob(f"{_CKPT_PREFIX}*{_CKPT_SUFFIX}"):
        stem = p.name[len(_CKPT_PREFIX) : -len(_CKPT_SUFFIX)]
        if stem.isdigit():
            found[int(stem)] = p
    manifest = Path(directory) / MANIFEST
    if manifest.is_file():
        try:
            listed = set(json.loads(manifest.read_text())["checkpoints"].values())
            found = {e: p for e, p in found.items() if p.name in listed}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # an unreadable manifest restricts nothing (verify_training_dir names it)
    return dict(sorted(found.items()))


_Optimizer = Literal["sgd", "adam"]


def _make_optimizer(optimizer: str, learning_rate: float, momentum: float):
    if optimizer == "sgd":
        return optax.sgd(learning_rate, momentum=momentum or None)
    if optimizer == "adam":
        return optax.adam(learning_rate)
    raise ValueError(f"unknown optimizer {optimizer!r}; valid: 'sgd', 'adam'")


def _loss_acc(model: nn.Module, params, x, y, w):
    logits = model.apply(params, x)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    correct = (jnp.argmax(logits, axis=-1).astype(y.dtype) == y).astype(losses.dtype)
    total = jnp.sum(w)
    return jnp.sum(w * losses) / total, jnp.sum(w * correct) / total


@functools.lru_cache(maxsize=32)
def _compiled(model: nn.Module, optimizer: str, learning_rate: float, momentum: float, batch_size: int):
    """Jitted (epoch step, evaluation) for one model / optimizer (cached across calls)."""
    tx = _make_optimizer(optimizer, learning_rate, momentum)

    def loss_fn(params, x, y, w):
        return _loss_acc(model, params, x, y, w)[0]

    @jax.jit
    def epoch(params, opt_state, key, x, y):
        n = x.shape[0]
        n_batches = -(-n // batch_size)
        pad = n_batches * batch_size - n
        perm = jax.random.permutation(key, n)
        idx = jnp.concatenate([perm, perm[jnp.arange(pad) % n]]).reshape(n_batches, batch_size)  # pad ≥ n too
        weights = jnp.concatenate([jnp.ones(n, x.dtype), jnp.zeros(pad, x.dtype)])
        weights = weights.reshape(n_batches, batch_size)

        def step(carry, batch):
            params, opt_state = carry
            i, w = batch
            grads = jax.grad(loss_fn)(params, x[i], y[i], w)
            with jax.numpy_dtype_promotion("standard"):  # optax mixes int step counts and floats
                updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), (idx, weights))
        return params, opt_state

    @jax.jit
    def evaluate(params, x, y):
        return _loss_acc(model, params, x, y, jnp.ones(y.shape, x.dtype))

    return tx, epoch, evaluate


def evaluate(model: nn.Module, params: Any, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``model`` on ``(x, y)``."""
    loss, acc = _loss_acc(model, params, jnp.asarray(x), jnp.asarray(y), jnp.ones(len(y), jnp.float32))
    return float(loss), float(acc)


class DivergedError(ValueError):
    """The train loss became NaN or infinite: the run is stopped at that epoch."""


def data_sha256(dataset: Dataset) -> str:
    """SHA-256 of a dataset's four arrays (dtype, shape and bytes): what a training run saw."""
    h = hashlib.sha256()
    for name in ("x_train", "y_train", "x_test", "y_test"):
        a = np.ascontiguousarray(getattr(dataset, name))
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _check_split(model: nn.Module, params: Any, dataset: Dataset) -> None:
    """Finite inputs, one integer label in ``[0, C)`` per input, ``C`` the model's outputs."""
    out = jax.eval_shape(lambda p, x: model.apply(p, x), params,
                         jax.ShapeDtypeStruct((1,) + tuple(dataset.input_shape), jnp.asarray(dataset.x_train).dtype))
    classes = out.shape[-1]
    for split in ("train", "test"):
        x, y = np.asarray(getattr(dataset, f"x_{split}")), np.asarray(getattr(dataset, f"y_{split}"))
        if len(x) != len(y) or y.ndim != 1:
            raise ValueError(f"x_{split} and y_{split} must hold one label per input, got shapes {x.shape} and {y.shape}")
        if split == "train" and len(x) == 0:
            raise ValueError("x_train is empty: there is nothing to train on")
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(f"x_{split} has NaN or infinite values, the first at index {tuple(int(i) for i in bad)}")
        if y.size and (y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= classes):
            raise ValueError(f"y_{split} must be integer class labels in [0, {classes}) for a model with {classes} "
                             f"outputs, got {y.dtype} labels in [{y.min()}, {y.max()}]")


def train(
    model: nn.Module,
    dataset: Dataset,
    *,
    epochs: int = 100,
    batch_size: int = 64,
    optimizer: _Optimizer = "sgd",
    learning_rate: float = 0.01,
    momentum: float = 0.9,
    seed: int = 0,
    checkpoint_epochs: Sequence[int] = (),
    checkpoint_dir: str | os.PathLike | None = None,
    params: Any = None,
    progress: bool = False,
) -> TrainResult:
    """Train ``model`` on ``dataset.x_train`` / ``y_train`` and record its learning curves.

    Args:
        model: a flax linen module mapping inputs to logits.
        dataset: a :class:`jinter.data.Dataset`.
        epochs: number of passes over the train split.
        batch_size: minibatch size (the last partial batch is padded with zero weights; a
            batch size above the split's size gives one padded batch).
        optimizer: ``"sgd"`` (with ``momentum``; [D24]: lr 0.01, momentum 0.9) or ``"adam"``.
        learning_rate: step size (> 0).
        momentum: SGD momentum in [0, 1) (0 for plain SGD).
        seed: seeds initialization and shuffling, an integer in [0, 2**32) (the PRNG key's
            range); the same seed gives the same numbers.
        checkpoint_epochs: epochs (0 = initialization) whose parameters are saved.
        checkpoint_dir: folder for ``epoch_XXXXXX.msgpack`` files and ``training.json``
            (history, settings, checkpoint list). Required if ``checkpoint_epochs`` is set.
            A previous run's ``training.json`` and checkpoints there are removed first, so the
            folder never mixes two runs.
        params: initial parameters (default: ``init_params(model, input_shape, seed)``).
        progress: show a tqdm bar over epochs.

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: bad options or data: non-finite inputs, labels outside ``[0, C)`` for a
            model with ``C`` outputs, splits of other lengths; or a loss that became non-finite
            (training diverged: the epoch and the learning rate are named).
    """
    epochs, batch_size = check_int(epochs, "epochs", 0), check_int(batch_size, "batch_size", 1)
    seed = check_int(seed, "seed", 0, most=2**32 - 1)
    learning_rate = check_real(learning_rate, "learning_rate", above=0.0)
    momentum = check_real(momentum, "momentum", least=0.0, below=1.0)
    wanted = sorted(set(check_ints(checkpoint_epochs, "checkpoint_epochs")))
    if wanted and (wanted[0] < 0 or wanted[-1] > epochs):
        raise ValueError(f"checkpoint epochs must be in [0, {epochs}], got {wanted}")
    if wanted and checkpoint_dir is None:
        raise ValueError("checkpoint_epochs needs a checkpoint_dir")
    from tqdm import tqdm

    check_option(optimizer, "optimizer", get_args(_Optimizer))
    tx, epoch_fn, eval_fn = _compiled(model, optimizer, float(learning_rate), float(momentum), batch_size)
    x_tr, y_tr = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    x_te, y_te = jnp.asarray(dataset.x_test), jnp.asarray(dataset.y_test)
    if params is None:
        params = init_params(model, dataset.input_shape, seed, dtype=x_tr.dtype)
    _check_split(model, params, dataset)
    if checkpoint_dir is not None and Path(checkpoint_dir).is_dir():  # a new run: the old one's files go
        (Path(checkpoint_dir) / MANIFEST).unlink(missing_ok=True)
        for old in list_checkpoints(checkpoint_dir).values():
            old.unlink()
    opt_state = tx.init(params)
    key = jax.random.PRNGKey(seed)
    names = ("train_loss", "train_acc", "test_loss", "test_acc")
    rows: list[tuple[float, ...]] = []
    checkpoints: dict[int, Path] = {}

    def record(e, params):
        rows.append(tuple(float(a) for a in (*eval_fn(params, x_tr, y_tr), *eval_fn(params, x_te, y_te))))
        if e in wanted:
            checkpoints[e] = save_params(checkpoint_path(checkpoint_dir, e), params)

    record(0, params)
    for e in tqdm(range(1, epochs + 1), desc="train", unit="epoch", disable=not progress):
        params, opt_state = epoch_fn(params, opt_state, jax.random.fold_in(key, e), x_tr, y_tr)
        record(e, params)
        if not np.isfinite(rows[-1][0]):
            raise DivergedError(f"training diverged: the train loss is {rows[-1][0]} after epoch {e} "
                             f"(learning_rate={learning_rate:g}, optimizer={optimizer!r}); try a smaller learning rate")
    cols = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
    history = {"epoch": np.arange(epochs + 1)} | {k: cols[:, i] for i, k in enumerate(names)}
    if checkpoint_dir is not None:
        manifest = {
            "dataset": dataset.name,
            "data_sha256": data_sha256(dataset),
            "model": repr(model),
            "settings": dict(
                epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                learning_rate=float(learning_rate), momentum=float(momentum), seed=int(seed),
            ),
            "checkpoints": {str(e): p.name for e, p in checkpoints.items()},
            "sha256": {str(e): file_sha256(p) for e, p in checkpoints.items()},
            "history": {k: v.tolist() for k, v in history.items()},
        }
        manifest["checksum"] = _manifest_checksum(manifest)
        atomic_write_bytes(Path(checkpoint_dir) / MANIFEST, json.dumps(manifest, indent=1).encode())
    return TrainResult(params, history, checkpoints)


def train_baseline(model: nn.Module, dataset: Dataset, **kwargs) -> TrainResult:
    """Train the same architecture on the TEST split: the baseline ``v_base`` of [H25] §7.

    Takes the keyword arguments of :func:`train`; its "test" curves are on the train split.
    """
    return train(model, dataset.swap(), **kwargs)


def _manifest_checksum(manifest: Mapping) -> str:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _read_manifest(directory: str | os.PathLike) -> dict:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise CorruptFileError(path, "missing") from None
    except (OSError, ValueError) as e:
        raise CorruptFileError(path, f"unreadable ({e})") from None
    if not isinstance(manifest, dict) or "checksum" not in manifest:
        raise CorruptFileError(path, "has no checksum (written by an older jinter?)")
    if manifest["checksum"] != _manifest_checksum(manifest):
        raise CorruptFileError(path, "checksum mismatch (the file was changed after it was written)")
    return manifest


def load_history(directory: str | os.PathLike) -> dict[str, np.ndarray]:
    """Learning curves saved by :func:`train` in ``directory/training.json``.

    Raises:
        CorruptFileError: ``training.json`` is missing, unreadable or fails its checksum.
    """
    manifest = _read_manifest(directory)
    return {k: np.asarray(v) for k, v in manifest["history"].items()}


def verify_training_dir(directory: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[int, Path], dict]:
    """Check a finished training folder before trusting it; return ``(history, checkpoints, manifest)``.

    ``training.json`` must pass its own checksum, and every checkpoint it lists must exist
    with the SHA-256 recorded when it was written.

    Raises:
        CorruptFileError: naming the first file that is missing, unreadable or changed.
    """
    directory = Path(directory)
    manifest = _read_manifest(directory)
    checkpoints: dict[int, Path] = {}
    for epoch, name in manifest["checkpoints"].items():
        path = directory / name
        if not path.is_file():
            raise CorruptFileError(path, "missing")
        if file_sha256(path) != manifest["sha256"].get(epoch):
            raise CorruptFileError(path, "checksum mismatch (the file was changed after it was written)")
        checkpoints[int(epoch)] = path
    history = {k: np.asarray(v) for k, v in manifest["history"].items()}
    return history, dict(sorted(checkpoints.items())), manifest
