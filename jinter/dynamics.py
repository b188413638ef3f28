r"""Training dynamics of interactions [D24, H25]: the mean order of salient interactions and
the epochs where the second phase starts and where the loss gap widens."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from jinter._checks import check_real, is_traced, safe_divide

__all__ = ["mean_order", "phase_two_start", "gap_widening_epoch"]


def mean_order(distribution: Float[ArrayLike, "*batch n"]) -> Float[Array, "*batch"]:
    """Mean interaction order ``Σ_k k·I^(k) / Σ_k I^(k)`` of a per-order distribution (a
    distribution of zeros has mean order 0). Its entries are strengths: a concrete one that is NaN,
    infinite or negative is a ``ValueError``."""
    d = jnp.asarray(distribution)
    if not jnp.issubdtype(d.dtype, jnp.floating) and not jnp.issubdtype(d.dtype, jnp.integer):
        raise TypeError(f"distribution must hold real strengths, got dtype {d.dtype}")
    if d.ndim == 0:
        raise ValueError("distribution must have a last axis over the orders k = 1 … n, got a scalar")
    if not is_traced(d) and not bool(jnp.all(jnp.isfinite(d) & (d >= 0))):
        raise ValueError("distribution must hold finite strengths ≥ 0 (one per order), got NaN, inf or a negative value")
    k = jnp.arange(1, d.shape[-1] + 1, dtype=d.dtype)
    total = jnp.sum(d, axis=-1)
    return safe_divide(jnp.sum(k * d, axis=-1), total)


def _real(x: ArrayLike, what: str) -> np.ndarray:
    """``x`` as a float64 array; strings, bools and complex values are refused by name."""
    a = np.asarray(x)
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{what} must hold real numbers, got dtype {a.dtype}")
    return a.astype(np.float64)


def _check_increasing(epochs: np.ndarray) -> None:
    if not (np.all(np.isfinite(epochs)) and np.all(np.diff(epochs) > 0)):
        raise ValueError(f"epochs must be increasing finite numbers (one per checkpoint, in order), got {epochs.tolist()}")


def _epoch(e: float) -> int | float:
    """An epoch as given: whole numbers as ``int``, fractional epochs (e.g. 0.25) as ``float``."""
    return int(e) if float(e).is_integer() else float(e)


def phase_two_start(epochs: ArrayLike, mean_orders: ArrayLike) -> int | float | None:
    """Epoch where the second phase of [D24] starts: the mean order of salient interactions
    turns upward.

    Defined as the checkpoint where the mean order reaches its minimum, provided the order
    rises after it; ``None`` if it never rises (the first phase lasts the whole run). Phase 1
    removes complex interactions (the mean order falls), phase 2 learns ever more complex
    ones (it rises) [D24 §1, Fig. 2]. Epochs are returned as given: whole numbers as ``int``,
    fractional ones (checkpoints within an epoch) as ``float``.
    """
    epochs, orders = _real(epochs, "epochs"), _real(mean_orders, "mean_orders")
    if epochs.shape != orders.shape or epochs.ndim != 1 or len(epochs) == 0:
        raise ValueError(f"epochs and mean_orders must be 1-D of equal length, got {epochs.shape}, {orders.shape}")
    if not np.all(np.isfinite(orders)):
        raise ValueError("mean_orders must be finite (a NaN mean order has no minimum)")
    _check_increasing(epochs)
    i = int(np.argmin(orders))
    if i == len(orders) - 1 or not np.any(orders[i + 1 :] > orders[i]):
        return None
    return _epoch(epochs[i])


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centered moving average over ``window`` (odd) points, the window shrinking at the ends."""
    if window <= 1:
        return x
    h = window // 2
    c = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(len(x))
    lo, hi = np.maximum(i - h, 0), np.minimum(i + h + 1, len(x))
    return (c[hi] - c[lo]) / (hi - lo)


def gap_widening_epoch(
    epochs: ArrayLike, train_loss: ArrayLike, test_loss: ArrayLike, *, frac: float = 0.1, smooth: int = 5
) -> int | float | None:
    """First epoch at which the loss gap (test − train) starts to widen.

    The gap is first smoothed by a centered moving average over ``smooth`` consecutive entries
    (odd; the window shrinks at the ends; 1: no smoothing), so that one noisy epoch does not
    decide. The entries are the epochs where the losses were recorded: every epoch for a
    training history (:func:`jinter.training.train`), so the window is ``smooth`` epochs there;
    on sparser records it spans more. The epoch is returned as given (``int`` when whole).
    After the epoch of the smallest smoothed gap, the first epoch whose smoothed gap is at least
    that minimum plus ``frac`` of the later rise (``max − min``); ``None`` if the gap never rises.
    [D24] aligns this epoch with the start of the second phase.

    Example:
        >>> import numpy as np
        >>> e = np.arange(12)
        >>> gap = np.r_[1.0, 0.5, 0.2, 0.1, 0.9, 0.1, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0]  # a spike at epoch 4
        >>> gap_widening_epoch(e, np.zeros(12), gap, smooth=1), gap_widening_epoch(e, np.zeros(12), gap)
        (4, 6)
    """
    epochs = _real(epochs, "epochs")
    train, test = _real(train_loss, "train_loss"), _real(test_loss, "test_loss")
    if not (epochs.ndim == train.ndim == test.ndim == 1 and len(epochs) == len(train) == len(test) > 0):
        raise ValueError("epochs, train_loss and test_loss must be 1-D arrays of equal length, got shapes "
                         f"{epochs.shape}, {train.shape}, {test.shape}")
    if not (np.all(np.isfinite(train)) and np.all(np.isfinite(test))):
        raise ValueError("train_loss and test_loss must be finite (a NaN or inf loss has no gap)")
    _check_increasing(epochs)
    gap = test - train
    frac = check_real(frac, "frac", above=0.0, below=1.0)
    if isinstance(smooth, bool) or not isinstance(smooth, (int, np.integer)) or smooth < 1 or smooth % 2 == 0:
        raise ValueError(f"smooth must be an odd number of entries ≥ 1, got {smooth!r}")
    gap = _moving_average(gap, int(smooth))
    i = int(np.argmin(gap))
    rise = gap[i:].max() - gap[i]
    if rise <= 0:
        return None
    j = i + int(np.argmax(gap[i:] - gap[i] >= frac * rise))
    return _epoch(epochs[j])
