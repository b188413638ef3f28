r"""Generalization power of salient interactions [H25] (docs/math.md §7).

An interaction of a model generalizes when a baseline model trained on the test set has it
too: salient there, with the same sign and type. Salience comes from :mod:`jinter.statistics`.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from jinter._checks import check_axis, check_tau, safe_divide
from jinter.statistics import _and_or_arrays, interaction_arrays, salient_mask

__all__ = ["GeneralizationPower", "generalization_power"]


class GeneralizationPower(NamedTuple):
    """Generalization power of salient interactions [H25] (see :func:`generalization_power`).

    Per-type arrays have a last axis over the types ``("and", "or")`` (only ``"and"`` when no
    OR interactions were given).
    """

    n_salient: Float[Array, "*batch types"]
    n_generalizable: Float[Array, "*batch types"]
    strength: Float[Array, "*batch types"]
    strength_generalizable: Float[Array, "*batch types"]
    fraction: Float[Array, "*batch"]
    weighted_fraction: Float[Array, "*batch"]
    n_bar: Float[Array, "*rest"]
    h_bar: Float[Array, "*rest"]
    h_bar_weighted: Float[Array, "*rest"]


def _masked_mean(x: Array, valid: Array, axis: int) -> Array:
    cnt = jnp.sum(valid.astype(x.dtype), axis=axis)
    tot = jnp.sum(jnp.where(valid, x, 0), axis=axis)
    return safe_divide(tot, cnt)


def generalization_power(
    i_model: Any,
    i_base: Any,
    tau_model: ArrayLike,
    tau_base: ArrayLike,
    *,
    sample_axis: int | None = 0,
) -> GeneralizationPower:
    r"""Generalization power of a model's salient interactions [H25] eq. (6) (docs/math.md §7).

    An interaction ``S ≠ ∅`` is salient in the model iff ``|I(S)| > τ_model``; it generalizes
    iff also ``|I_base(S)| > τ_base`` and ``I(S)·I_base(S) > 0`` (AND with AND, OR with OR),
    where ``I_base`` comes from a baseline model trained on the test set.

    Args:
        i_model, i_base: results (:class:`~jinter.AndOrResult`, :class:`~jinter.SharedAndOrResult`,
            :class:`~jinter.sweep.SweepResult`, :class:`~jinter.interactions.Interactions`),
            ``(i_and, i_or)`` tuples or single AND arrays, shape ``(..., 2**n)``; anything else
            is a ``TypeError`` (:func:`~jinter.statistics.interaction_arrays`).
        tau_model, tau_base: thresholds broadcasting against the leading axes.
        sample_axis: leading axis averaged over for ``n_bar``/``h_bar`` (``None``: none).

    Returns:
        :class:`GeneralizationPower`: per-sample counts and strengths per type, the
        per-sample fraction ``G/N`` and ``|I|``-weighted fraction, ``n_bar`` = mean number of
        salient interactions per sample (AND + OR), ``h_bar`` = mean fraction that generalize
        and ``h_bar_weighted``. Samples without salient interactions have fraction 0 and are
        left out of ``h_bar`` (which is 0 if no sample has any).
    """
    m_and, m_or = interaction_arrays(i_model, what="i_model")
    b_and, b_or = interaction_arrays(i_base, what="i_base")
    if (m_or is None) != (b_or is None):
        raise ValueError("i_model and i_base must both have OR interactions or both not")
    model = _and_or_arrays(m_and, m_or, ("i_model's I_and", "i_model's I_or"))
    base = _and_or_arrays(b_and, b_or, ("i_base's I_and", "i_base's I_or"))
    if model[0].shape != base[0].shape:
        raise ValueError(f"model and base shapes differ: {model[0].shape} vs {base[0].shape}")
    batch = model[0].shape[:-1]
    check_tau(tau_model, "tau_model", batch)
    check_tau(tau_base, "tau_base", batch)
    if sample_axis is not None and batch and 0 in batch:
        raise ValueError(f"i_model holds no samples (batch shape {batch}): there is nothing to average")
    # One kernel per type: XLA:CPU runs one fused kernel over both types several times slower.
    cols = [_generalization_counts(im, ib, tau_model, tau_base) for im, ib in zip(model, base)]
    return _generalization_summary(tuple(cols), check_axis(sample_axis, model[0].ndim - 1))


@jax.jit
def _generalization_counts(im: Array, ib: Array, tau_model: Array, tau_base: Array) -> Array:
    """``(..., 4)``: salient count, generalizable count, and their ``|I|`` sums, for one type."""
    sal = salient_mask(im, tau_model, strict=True)
    gen = sal & salient_mask(ib, tau_base, strict=True) & (im * ib > 0)
    a = jnp.abs(im)
    xs = (sal.astype(a.dtype), gen.astype(a.dtype), jnp.where(sal, a, 0), jnp.where(gen, a, 0))
    return jnp.stack([jnp.sum(x, axis=-1) for x in xs], axis=-1)


@partial(jax.jit, static_argnums=1)
def _generalization_summary(cols: tuple[Array, ...], sample_axis: int | None) -> GeneralizationPower:
    ns, ng, st, sg = jnp.unstack(jnp.stack(cols, axis=-1), axis=-2)  # each (..., types)
    n_tot, g_tot, s_tot, sg_tot = (x.sum(-1) for x in (ns, ng, st, sg))
    frac = safe_divide(g_tot, n_tot)
    wfrac = safe_divide(sg_tot, s_tot)
    if sample_axis is not None and n_tot.ndim > 0:
        n_bar = jnp.mean(n_tot, axis=sample_axis)
        h_bar = _masked_mean(frac, n_tot > 0, sample_axis)
        h_w = _masked_mean(wfrac, s_tot > 0, sample_axis)
    else:
        n_bar, h_bar, h_w = n_tot, frac, wfrac
    return GeneralizationPower(ns, ng, st, sg, frac, wfrac, n_bar, h_bar, h_w)
