r"""Salience, order statistics, thresholds and sparsity of interactions (docs/math.md §4).

Conventions: interaction arrays have shape ``(..., 2**n)`` (mask encoding of
:mod:`jinter.transforms`). Per-order results have shape ``(..., n)``, entry ``k − 1`` for
order ``k = 1 … n``; the empty set (bias) is never counted. A threshold ``tau`` is a scalar
or an array broadcasting against the leading axes (one τ per sample); :func:`tau_relative`
[R24, C24] and :func:`tau_output` [D24] compute the usual choices.

Every function here is pure and jit-able, and depends only on :mod:`jinter.transforms`: the
decomposition (shared salient sets of :func:`jinter.and_or_shared`), the generalization power
(:mod:`jinter.generalization`) and the result object (:mod:`jinter.interactions`) build on it.
:func:`interaction_arrays` is the one converter of "a result or arrays" arguments, dispatching
on the nominal type :class:`InteractionResult` of jinter's result objects.
"""

from __future__ import annotations

import abc
import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from jinter._checks import (
    as_real_float,
    check_axis,
    check_finite,
    check_numbers,
    check_real,
    check_tau,
    is_traced,
    safe_divide,
    tiny,
)
from jinter.transforms import mask_orders, num_players

__all__ = [
    "InteractionResult",
    "interaction_arrays",
    "salient_mask",
    "shared_salient",
    "order_sums",
    "order_strength",
    "signed_order_strength",
    "salient_counts",
    "order_distribution",
    "tau_relative",
    "tau_output",
    "sparsity_curve",
]


def _tau(tau: ArrayLike, dtype) -> Array:
    """``τ`` (checked by the caller, :func:`check_tau`) with a trailing axis to broadcast over subsets."""
    return jnp.asarray(tau, dtype=dtype)[..., None]


def salient_mask(
    interactions: Float[ArrayLike, "*batch 2**n"], tau: ArrayLike = 0.0, *, strict: bool = False
) -> Array:
    """Boolean mask of salient interactions ``|I(S)| ≥ τ``, ``S ≠ ∅`` (the bias is never salient).

    ``strict=True`` uses ``|I(S)| > τ`` instead, as [H25] eq. (6) does. With the default
    ``τ = 0`` every ``S ≠ ∅`` is salient, also the entries that are zero by convention (the
    single players' ``I_or({i}) = 0`` of an AND-OR split); pass a τ rule (``tau_relative``,
    ``tau_output``) or ``strict=True`` to count only the non-zero ones.
    """
    (i,) = _types(interactions, None, ("interactions", ""))
    return _salient(i, tau, strict)


def _salient(i: Array, tau: ArrayLike, strict: bool = False) -> Array:
    """:func:`salient_mask` of an array already checked by :func:`_types`."""
    num_players(i, what="interactions")
    check_tau(tau, "tau", i.shape[:-1])
    a, t = jnp.abs(i), _tau(tau, i.dtype)
    sal = a > t if strict else a >= t
    return sal.at[..., 0].set(False)


def shared_salient(
    x: Any, i_or: ArrayLike | None = None, *, frac: float = 0.05, model_axis: int = 0
) -> tuple[Array, Array]:
    r"""Interactions salient in every model [C24]: ``(shared_and, shared_or)`` boolean masks.

    ``Ω_shared = ∩_i {S ≠ ∅ : |I^(i)(S)| ≥ frac · max_{T≠∅} |I^(i)(T)|}``, the max taken over the AND
    and the OR interactions of model ``i`` on the input together (docs/math.md §3.8).

    Args:
        x: a result with ``I_and``/``I_or`` (e.g. :func:`jinter.and_or_shared`'s), an
            ``(i_and, i_or)`` pair or the AND array, shape ``(m, *batch, 2**n)``.
        i_or: the OR array when ``x`` is one.
        frac: threshold relative to each model's largest interaction on the input.
        model_axis: the axis of the ``m`` models (0 for :func:`jinter.and_or_shared`).

    Returns:
        ``(shared_and, shared_or)``, boolean, shape ``(*batch, 2**n)`` (the model axis removed).

    >>> import numpy as np
    >>> i_and = np.array([[0.0, 1.0, 0.01, 0.5], [0.0, 2.0, 1.0, 0.01]])
    >>> shared_and, shared_or = shared_salient(i_and, np.zeros_like(i_and), frac=0.05)
    >>> shared_and.tolist(), bool(shared_or.any())
    ([False, True, False, False], False)
    """
    i_and, i_or = interaction_arrays(x, i_or, what="x")
    if i_or is None:
        raise ValueError("shared_salient needs the OR interactions too (i_or)")
    f = float(frac)
    if not (math.isfinite(f) and 0 <= f <= 1):
        raise ValueError(f"frac must be in [0, 1], got {frac!r}")
    a = jnp.moveaxis(jnp.asarray(i_and), model_axis, 0)
    o = jnp.moveaxis(jnp.asarray(i_or), model_axis, 0)
    if a.shape != o.shape or a.ndim < 2:
        raise ValueError(f"i_and and i_or must share a shape (m, *batch, 2**n), got {a.shape} and {o.shape}")
    both = jnp.concatenate([jnp.abs(a[..., 1:]), jnp.abs(o[..., 1:])], axis=-1)
    tau = f * jnp.max(both, axis=-1)  # per model and input (AND and OR together)
    return jnp.all(_salient(a, tau), axis=0), jnp.all(_salient(o, tau), axis=0)


def order_sums(values: Float[ArrayLike, "*batch 2**n"]) -> Float[Array, "*batch n"]:
    """Sum of ``values`` over the masks of each order ``k = 1 … n``."""
    values = jnp.asarray(values)
    n = num_players(values)
    orders = jnp.asarray(mask_orders(n), dtype=jnp.int32)
    out = jnp.zeros(values.shape[:-1] + (n + 1,), dtype=values.dtype)
    return out.at[..., orders].add(values)[..., 1:]


def _types(i_and: ArrayLike, i_or: ArrayLike | None, names: tuple[str, str] = ("i_and", "i_or")) -> list[Array]:
    """The AND (and OR) arrays as real float arrays; complex values, NaN and inf are refused by
    name, with the first offending mask (when concrete)."""
    arrays = []
    for name, x in zip(names, (i_and, i_or)):
        if x is not None:
            check_numbers(x, name)
            a = as_real_float(x, name)
            check_finite(a, name)
            arrays.append(a)
    if len(arrays) == 2 and arrays[0].shape != arrays[1].shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {arrays[0].shape} and {arrays[1].shape}"
        )
    return arrays


def order_strength(
    i_and: Float[ArrayLike, "*batch 2**n"],
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    tau: ArrayLike = 0.0,
) -> Float[Array, "*batch n"]:
    """Per sample: ``Σ_type Σ_{|S|=k, |I(S)|≥τ} |I(S)|`` for ``k = 1 … n`` ([D24] eq. 12 numerator)."""
    total = 0
    for i in _types(i_and, i_or):
        total = total + order_sums(jnp.where(_salient(i, tau), jnp.abs(i), 0))
    return total


def signed_order_strength(
    i_and: Float[ArrayLike, "*batch 2**n"],
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    tau: ArrayLike = 0.0,
) -> tuple[Float[Array, "*batch n"], Float[Array, "*batch n"]]:
    """Per sample ``(A^(k),+, A^(k),−)``: sums of positive / negative salient interactions of order k."""
    pos = neg = 0
    for i in _types(i_and, i_or):
        sal = _salient(i, tau)
        pos = pos + order_sums(jnp.where(sal, jnp.maximum(i, 0), 0))
        neg = neg + order_sums(jnp.where(sal, jnp.minimum(i, 0), 0))
    return pos, neg


def salient_counts(
    i_and: Float[ArrayLike, "*batch 2**n"],
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    tau: ArrayLike = 0.0,
) -> Float[Array, "*batch n"]:
    """Per sample ``R^(k)``: number of salient interactions of each order (AND and OR together)."""
    total = 0
    for i in _types(i_and, i_or):
        total = total + order_sums(_salient(i, tau).astype(i.dtype))
    return total


def order_distribution(
    i_and: Float[ArrayLike, "*batch 2**n"],
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    tau: ArrayLike = 0.0,
    *,
    sample_axis: int | None = 0,
) -> Float[Array, "*rest n"]:
    r"""Normalized order distribution :math:`I^{(k)}` of [D24] eq. (12) (docs/math.md §4).

    ``I^(k) = E_x[Σ_type Σ_{|S|=k, |I|≥τ} |I(S|x)|] / Z`` with ``Z`` the mean over
    ``k = 1 … n`` of the numerator, so the entries average to 1. The expectation is over
    ``sample_axis`` of the interaction arrays (``None``: no averaging, one distribution per
    leading index). A zero numerator gives zeros, not NaN.
    """
    num = order_strength(i_and, i_or, tau)
    sample_axis = check_axis(sample_axis, num.shape[:-1])
    if sample_axis is not None and num.ndim > 1:
        num = jnp.mean(num, axis=sample_axis)
    z = jnp.mean(num, axis=-1, keepdims=True)
    return safe_divide(num, z)


# --------------------------------------------------------------------------------------------
# Thresholds and sparsity (docs/math.md §4)


def _check_frac(frac: Any, what: str = "frac") -> Any:
    """A concrete fraction as a Python float (weakly typed: keeps float32 inputs float32)."""
    if is_traced(frac):
        return frac
    return check_real(frac, what, above=0.0)


class InteractionResult(abc.ABC):
    """The jinter result types that hold AND-OR interactions as ``I_and`` and ``I_or``.

    A nominal type, not a protocol: :func:`interaction_arrays` unpacks exactly its (virtual)
    subclasses, never whatever happens to have an ``I_and`` attribute. The library's result
    types are registered where they meet this module: :class:`~jinter.AndOrResult`,
    :class:`~jinter.SharedAndOrResult` and :class:`~jinter.Interactions` in
    :mod:`jinter.interactions`, :class:`~jinter.sweep.SweepResult` in :mod:`jinter.sweep`.
    Another type joins by subclassing or with ``InteractionResult.register(cls)``.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def I_and(self) -> Any:
        """AND interactions ``(..., 2**n)``; ``I_and[..., 0]`` holds the bias."""

    @property
    @abc.abstractmethod
    def I_or(self) -> Any:
        """OR interactions of the same shape, or ``None``."""


_RESULT_NAMES = "an AndOrResult, SharedAndOrResult, SweepResult or Interactions"
_ARRAY_TYPES = (np.ndarray, np.generic, jax.Array, list, int, float)


def interaction_arrays(x: Any, i_or: Any = None, *, what: str = "i_and") -> tuple[Any, Any]:
    """``(i_and, i_or)`` from a result object, an ``(i_and, i_or)`` tuple or arrays.

    The one converter of the functions that take "a result or arrays" (plots,
    :func:`~jinter.generalization_power`), dispatching on the type of ``x``:

    - an :class:`InteractionResult` (:class:`~jinter.AndOrResult`,
      :class:`~jinter.SharedAndOrResult`, :class:`~jinter.sweep.SweepResult`,
      :class:`~jinter.Interactions`): its ``I_and`` and ``I_or`` (``i_or`` may be given only
      for a result without OR interactions);
    - a tuple ``(i_and,)`` or ``(i_and, i_or)`` (then ``i_or`` may not be given too);
    - an array (numpy, JAX, a nested list or a number): ``(x, i_or)``, unchanged.

    Raises:
        TypeError: ``x`` is none of these; the message names ``what`` (the caller's argument).
        ValueError: a tuple of another length, or OR interactions given twice.
    """
    if isinstance(x, InteractionResult):
        if i_or is not None and x.I_or is not None:
            raise ValueError(f"OR interactions given twice: in the result {what} ({type(x).__name__}) and as i_or")
        return x.I_and, (x.I_or if i_or is None else i_or)
    if isinstance(x, tuple):
        if len(x) not in (1, 2):
            raise ValueError(f"{what} as a tuple must be (i_and,) or (i_and, i_or), got {len(x)} entries")
        if len(x) == 2 and i_or is not None:
            raise ValueError(f"OR interactions given twice: in the pair {what} and as i_or")
        return x[0], (x[1] if len(x) == 2 else i_or)
    if isinstance(x, _ARRAY_TYPES):
        return x, i_or
    raise TypeError(
        f"{what} must be {_RESULT_NAMES} (an InteractionResult), an (i_and, i_or) tuple or an array, "
        f"got {type(x).__name__}"
    )


def _and_or_arrays(i_and: ArrayLike, i_or: ArrayLike | None, names: tuple[str, str] = ("i_and", "i_or")) -> list[Array]:
    """AND (and OR) interactions as arrays, checked to be finite, over subsets and of one shape."""
    arrays = _types(i_and, i_or, names)
    for name, a in zip(names, arrays):
        num_players(a, what=name)
    if len(arrays) == 2 and arrays[0].shape != arrays[1].shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {arrays[0].shape} and {arrays[1].shape}"
        )
    return arrays


def tau_relative(
    i_and: Float[ArrayLike, "*batch 2**n"],
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    frac: float = 0.05,
) -> Float[Array, "*batch"]:
    """Per-sample threshold ``τ = frac·max_{S≠∅} |I(S)|`` over AND and OR together [R24, C24].

    The bias ``I(∅)`` is not an interaction and does not enter the maximum. τ is at least the
    smallest normal number of the dtype, so a game without interactions (all zero) has none
    salient (τ = 0 would count every zero, :func:`salient_mask`).
    """
    frac = _check_frac(frac)
    peak = None
    for i in _and_or_arrays(i_and, i_or):
        m = jnp.max(jnp.abs(i[..., 1:]), axis=-1, initial=0)
        peak = m if peak is None else jnp.maximum(peak, m)
    return _positive(frac * peak)


def _positive(tau: Array) -> Array:
    """A τ from a rule, at least the dtype's smallest normal number (a zero is never salient)."""
    return jnp.maximum(tau, tiny(tau.dtype))


def tau_output(
    v: Float[ArrayLike, "*batch 2**n"],
    frac: float = 0.03,
    sample_axis: int | None = 0,
    *,
    keepdims: bool = False,
) -> Float[Array, "*rest"]:
    """Threshold ``τ = frac·E_x |v(x_N) − v(x_∅)|`` of [D24] (docs/math.md §4).

    Args:
        v: outputs on all masks, shape ``(..., 2**n)``.
        frac: the fraction (0.03 in [D24]).
        sample_axis: axis of the leading axes averaged over (``None``: one τ per sample).
        keepdims: keep the averaged axis (length 1) so that τ broadcasts against the leading
            axes of interaction arrays.

    τ is at least the smallest normal number of the dtype (``v(x_N) = v(x_∅)`` would give 0, and
    τ = 0 counts every zero interaction as salient).
    """
    frac = _check_frac(frac)
    v = jnp.asarray(v)
    num_players(v, what="v")
    d = jnp.abs(v[..., -1] - v[..., 0])
    sample_axis = check_axis(sample_axis, d.shape)
    if sample_axis is not None and d.ndim > 0:
        d = jnp.mean(d, axis=sample_axis, keepdims=keepdims)
    return _positive(frac * d)  # at least the smallest normal number: a zero is never salient


def sparsity_curve(
    i_and: Float[ArrayLike, "*batch 2**n"],
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    sample_axis: int | None = 0,
) -> Float[Array, "*rest m"]:
    """Sorted normalized strengths ([R24] Fig. 2, docs/math.md §4).

    Per sample, ``|I(S)|`` for ``S ≠ ∅`` of AND and OR together (``m = 2**n − 1`` or twice
    that) divided by its maximum and sorted in descending order, then averaged over
    ``sample_axis`` (``None``: one curve per sample). An all-zero sample gives zeros.
    """
    arrays = tuple(_and_or_arrays(i_and, i_or))
    return _sparsity_curve(arrays, check_axis(sample_axis, arrays[0].shape[:-1]))


def _sort_descending_nonneg(a: Array) -> Array:
    """Sort values ``≥ 0`` in descending order along the last axis.

    Bit patterns of non-negative IEEE floats are ordered like their values, and XLA:CPU sorts
    integers several times faster than floats (whose comparator handles NaN and −0).
    """
    ints = {2: jnp.int16, 4: jnp.int32, 8: jnp.int64}[a.dtype.itemsize]
    s = jax.lax.sort(jax.lax.bitcast_convert_type(a, ints), dimension=a.ndim - 1, is_stable=False)
    return jnp.flip(jax.lax.bitcast_convert_type(s, a.dtype), axis=-1)


@partial(jax.jit, static_argnums=1)
def _sparsity_curve(arrays: tuple[Array, ...], sample_axis: int | None) -> Array:
    a = jnp.concatenate([jnp.abs(i[..., 1:]) for i in arrays], axis=-1)
    peak = jnp.max(a, axis=-1, keepdims=True, initial=0)
    a = safe_divide(a, peak)
    a = _sort_descending_nonneg(a)
    if sample_axis is not None and a.ndim > 1:
        a = jnp.mean(a, axis=sample_axis)
    return a
