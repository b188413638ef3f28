r"""Salience, order distributions and counts of interactions (MATH.md §4).

Conventions: interaction arrays have shape ``(..., 2**n)`` (mask encoding of
:mod:`jinter.transforms`). Per-order results have shape ``(..., n)``, entry ``k − 1`` for
order ``k = 1 … n``; the empty set (bias) is never counted. A threshold ``tau`` is a scalar
or an array broadcasting against the leading axes (one τ per sample).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from jinter.transforms import mask_orders, num_players

__all__ = [
    "salient_mask",
    "order_sums",
    "order_strength",
    "signed_order_strength",
    "salient_counts",
    "order_distribution",
]


def _tau(tau: ArrayLike, dtype) -> Array:
    return jnp.asarray(tau, dtype=dtype)[..., None]


def salient_mask(interactions: Float[ArrayLike, "*batch 2**n"], tau: ArrayLike = 0.0) -> Array:
    """Boolean mask of salient interactions ``|I(S)| ≥ τ``, ``S ≠ ∅`` (the bias is never salient)."""
    i = jnp.asarray(interactions)
    num_players(i, what="interactions")
    sal = jnp.abs(i) >= _tau(tau, i.dtype)
    return sal.at[..., 0].set(False)


def order_sums(values: Float[ArrayLike, "*batch 2**n"]) -> Float[Array, "*batch n"]:
    """Sum of ``values`` over the masks of each order ``k = 1 … n``."""
    values = jnp.asarray(values)
    n = num_players(values)
    orders = jnp.asarray(mask_orders(n), dtype=jnp.int32)
    out = jnp.zeros(values.shape[:-1] + (n + 1,), dtype=values.dtype)
    return out.at[..., orders].add(values)[..., 1:]


def _types(i_and: ArrayLike, i_or: ArrayLike | None) -> list[Array]:
    return [jnp.asarray(i_and)] + ([] if i_or is None else [jnp.asarray(i_or)])


def order_strength(
    i_and: Float[ArrayLike, "*batch 2**n"],
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    tau: ArrayLike = 0.0,
) -> Float[Array, "*batch n"]:
    """Per sample: ``Σ_type Σ_{|S|=k, |I(S)|≥τ} |I(S)|`` for ``k = 1 … n`` ([D24] eq. 12 numerator)."""
    total = 0
    for i in _types(i_and, i_or):
        total = total + order_sums(jnp.where(salient_mask(i, tau), jnp.abs(i), 0))
    return total


def signed_order_strength(
    i_and: Float[ArrayLike, "*batch 2**n"],
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    tau: ArrayLike = 0.0,
) -> tuple[Float[Array, "*batch n"], Float[Array, "*batch n"]]:
    """Per sample ``(A^(k),+, A^(k),−)``: sums of positive / negative salient interactions of order k."""
    pos = neg = 0
    for i in _types(i_and, i_or):
        sal = salient_mask(i, tau)
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
        total = total + order_sums(salient_mask(i, tau).astype(i.dtype))
    return total


def order_distribution(
    i_and: Float[ArrayLike, "*batch 2**n"],
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    tau: ArrayLike = 0.0,
    *,
    sample_axis: int | None = 0,
) -> Float[Array, "*rest n"]:
    r"""Normalized order distribution :math:`I^{(k)}` of [D24] eq. (12) (MATH.md §4).

    ``I^(k) = E_x[Σ_type Σ_{|S|=k, |I|≥τ} |I(S|x)|] / Z`` with ``Z`` the mean over
    ``k = 1 … n`` of the numerator, so the entries average to 1. The expectation is over
    ``sample_axis`` of the interaction arrays (``None``: no averaging, one distribution per
    leading index). A zero numerator gives zeros, not NaN.
    """
    num = order_strength(i_and, i_or, tau)
    if sample_axis is not None and num.ndim > 1:
        num = jnp.mean(num, axis=sample_axis)
    z = jnp.mean(num, axis=-1, keepdims=True)
    return jnp.where(z > 0, num / jnp.where(z > 0, z, 1), 0)
