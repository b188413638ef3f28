"""Host models: a numpy-in / numpy-out callable (PyTorch, ONNX, scikit-learn ...) run by jinter.

The callable runs on the host through :func:`jax.pure_callback`, so it can be fed by
:func:`jinter.masked_outputs` like any JAX model, inside ``jax.jit`` and ``jax.vmap``.
Re-exported by :mod:`jinter.masking`; the adapters of :mod:`jinter.integrations` build on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Any, Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from jinter._checks import check_int, check_ints

__all__ = ["HostModel", "host_model"]


class _Id:
    """Hashable by identity: lets arbitrary objects (modules, functions, host models) be static jit data."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return isinstance(other, _Id) and other.obj is self.obj


_RAISED: list[BaseException] = []  # exceptions of host callables, taken back by reraise_host_errors
_RAISED_LOCK = threading.Lock()


def _record(e: BaseException) -> None:
    with _RAISED_LOCK:
        _RAISED.append(e)


@contextlib.contextmanager
def reraise_host_errors() -> Iterator[None]:
    """Inside it, a host callable's own exception reaches the caller as itself (e.g. torch's
    ``IndexError``), with a note, instead of the opaque ``JaxRuntimeError`` that
    :func:`jax.pure_callback` turns it into. Wrap the code that runs *and materializes* results."""
    with _RAISED_LOCK:
        _RAISED.clear()
    try:
        yield
    except jax.errors.JaxRuntimeError:
        with _RAISED_LOCK:
            first = _RAISED[0] if _RAISED else None
            _RAISED.clear()
        if first is None:
            raise
        first.add_note("(raised by the host model while jinter evaluated a batch of masked inputs)")
        raise first from None


def _default_float():
    """JAX's default float dtype: float64 when ``jax_enable_x64`` is on, float32 otherwise."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def _shape_of(out: Any) -> tuple[int, ...] | None:
    shape = getattr(out, "shape", None)
    return None if shape is None else tuple(int(s) for s in shape)


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True, eq=False)
class HostModel:
    """A numpy-in / numpy-out callable evaluated on the host through :func:`jax.pure_callback`.

    Build it with :func:`host_model`. Calling it on a JAX batch ``(B, *input_shape)`` returns
    ``(B, *output_shape)`` of dtype ``dtype``; it works inside ``jax.jit`` and ``jax.vmap``.
    """

    fn: Callable[[np.ndarray], Any]
    output_shape: tuple[int, ...] | None = None
    dtype: Any = None
    batch_size: int | None = None
    input_dtype: Any = None

    def tree_flatten(self):
        return (), _Id(self)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return aux.obj

    @property
    def out_dtype(self) -> np.dtype:
        """The dtype of the values handed back to JAX (``dtype``, or JAX's default float)."""
        return _default_float() if self.dtype is None else jax.dtypes.canonicalize_dtype(self.dtype)

    def _jax_input_dtype(self, dtype) -> np.dtype:
        """The dtype a batch of ``dtype`` is cast to in JAX before the callback: ``input_dtype``
        for a float batch where JAX has it (float64 needs x64), else ``dtype`` unchanged."""
        dtype = np.dtype(dtype)
        want = self.input_dtype
        if want is None or want == dtype or not np.issubdtype(dtype, np.floating):
            return dtype
        return want if jax.dtypes.canonicalize_dtype(want) == want else dtype

    def _call(self, flat: np.ndarray, per_input: tuple[int, ...] | None = None) -> np.ndarray:
        """``fn`` on one batch ``(m, *input_shape)``, checked to return ``(m, *output_shape)``
        (or ``(m, *per_input)``: the shape the probe found, which every later batch must keep)."""
        want = self.input_dtype
        if want is not None and flat.dtype != want and np.issubdtype(flat.dtype, np.floating):
            flat = flat.astype(want)  # JAX lacks the dtype (float64 without x64): cast here, a fresh copy
        elif not flat.flags.writeable:  # jinter's buffers are read-only; torch.from_numpy warns on those
            flat = flat.copy()
        out = self.fn(flat)
        shape = _shape_of(out)
        if shape is None:
            raise TypeError(f"host model must return an array, got {type(out).__name__}")
        per = self.output_shape if self.output_shape is not None else per_input
        expected = (len(flat),) + (per if per is not None else shape[1:])
        if shape != expected:
            said = (f"output_shape={per}" if self.output_shape is not None else
                    f"the shape per input it returned on the first probe batch, {per}" if per is not None else
                    f"output_shape={shape[1:]}")
            raise ValueError(f"host model returned shape {shape} for a batch of shape {flat.shape}; expected "
                             f"{expected} ({said})")
        out = np.asarray(out)
        if not (np.issubdtype(out.dtype, np.floating) or np.issubdtype(out.dtype, np.integer)
                or out.dtype == np.bool_):
            raise TypeError(f"host model must return real numbers, got dtype {out.dtype}")
        return out

    def _probe(self, input_shape: tuple[int, ...], in_dtype) -> tuple[int, ...]:
        """Per-input output shape: ``fn`` on a zero batch of 2, checked against ``output_shape``."""
        out = self._call(np.zeros((2,) + tuple(input_shape), dtype=in_dtype))
        return out.shape[1:]

    def __call__(self, batch: Array) -> Array:
        batch = jnp.asarray(batch)
        if batch.ndim == 0:
            raise ValueError("a host model takes a batch (B, *input_shape), got a scalar")
        input_shape = tuple(batch.shape[1:])
        in_dtype = self._jax_input_dtype(batch.dtype)
        if in_dtype != batch.dtype:  # fused with the masking: the callback gets the bytes fn uses
            batch = batch.astype(in_dtype)
        # one small probe at trace time: a wrong output_shape is a ValueError here, not an
        # opaque runtime error from inside the callback
        out_shape = self._probe(input_shape, np.dtype(batch.dtype))
        out_dtype = self.out_dtype
        k = len(input_shape)

        def host(b):
            b = np.asarray(b)
            lead = b.shape[: b.ndim - k]
            flat = b.reshape((-1,) + input_shape)
            step = self.batch_size or max(len(flat), 1)
            try:
                outs = [self._call(flat[i : i + step], out_shape).astype(out_dtype, copy=False)
                        for i in range(0, len(flat), step)]
            except Exception as e:  # noqa: BLE001 - handed back to the caller by reraise_host_errors
                _record(e)
                raise
            out = np.concatenate(outs, axis=0) if outs else np.zeros((0,) + out_shape, dtype=out_dtype)
            return out.reshape(lead + out_shape)

        spec = jax.ShapeDtypeStruct(batch.shape[:1] + out_shape, out_dtype)
        return jax.pure_callback(host, spec, batch, vmap_method="broadcast_all")


def host_model(
    fn: Callable[[np.ndarray], Any],
    *,
    output_shape: Sequence[int] | None = None,
    dtype: Any = None,
    batch_size: int | None = None,
    input_dtype: Any = None,
) -> HostModel:
    r"""Wrap a numpy-in / numpy-out model (PyTorch, ONNX, ...) for :func:`jinter.masked_outputs`.

    ``fn`` receives a fresh, writable float array (so ``torch.from_numpy`` works on it without
    a warning) and returns an array (numpy, or anything with ``.shape`` that ``np.asarray``
    reads, e.g. a CPU ``torch.Tensor`` without grad). Its output is cast to ``dtype``:
    by default JAX's default float, i.e. **float64 when** ``jax_enable_x64`` **is on**, so a
    float32 network still gives float64 values ``v`` and :func:`jinter.and_or` certifies in
    float64 (the values then carry the network's float32 rounding, ~1e-7 relative; run the
    network in float64, e.g. ``module.double()``, for values exact to ~1e-16).

    At trace time ``fn`` is called once on a zero batch of 2 to find (or, if ``output_shape``
    is given, check) the per-input output shape; a mismatch raises a ``ValueError`` naming
    the expected and received shapes.

    Args:
        fn: maps a numpy batch ``(B, *input_shape)`` to ``(B,)`` or ``(B, C)``.
        output_shape: the expected per-input output shape (``()`` or ``(C,)``); default:
            whatever ``fn`` returns on the probe.
        dtype: dtype of the values handed to JAX (canonicalized: float64 becomes float32
            when x64 is off). Default: JAX's default float dtype.
        batch_size: largest batch passed to ``fn`` at once (default: the whole chunk that
            :func:`jinter.masked_outputs` evaluates, at most 4096 inputs); choose it for
            the network's activation memory (see :func:`jinter.integrations.torch.torch_batch_size`).
        input_dtype: float dtype ``fn`` receives its float batches in (e.g. ``np.float32`` for a
            float32 network). The masked inputs are then cast inside JAX, fused with the masking,
            so the callback moves and ``fn`` converts nothing (where JAX lacks the dtype, i.e.
            float64 with x64 off, numpy casts on the host). Integer batches (token ids) are left
            as they are. Default: the dtype of the batch (of ``x``).

    Example:
        >>> import numpy as np, jinter
        >>> w = np.array([1.0, 2.0, -1.0])
        >>> model = jinter.host_model(lambda b: b @ w, output_shape=())
        >>> v = jinter.masked_outputs(model, np.ones(3), jinter.TabularPlayers(3))
        >>> [float(a) for a in v]
        [0.0, 1.0, 2.0, 3.0, -1.0, 0.0, 1.0, 2.0]
    """
    if not callable(fn):
        raise TypeError(f"host_model needs a callable fn, got {type(fn).__name__}")
    if output_shape is not None:
        output_shape = check_ints(output_shape, "output_shape")
    if dtype is not None:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be a numpy float dtype, got {dtype!r}") from None
        if not np.issubdtype(dt, np.floating):
            raise ValueError(f"dtype must be a float dtype (values v are real), got {dt}")
    batch_size = check_int(batch_size, "batch_size", 1, none=True)
    if input_dtype is not None:
        try:
            input_dtype = np.dtype(input_dtype)
        except TypeError:
            raise TypeError(f"input_dtype must be a numpy float dtype, got {input_dtype!r}") from None
        if not np.issubdtype(input_dtype, np.floating):
            raise ValueError(f"input_dtype must be a float dtype, got {input_dtype}")
    return HostModel(fn, output_shape, dtype, batch_size, input_dtype)
