r"""Theory of interaction dynamics: two-phase regression, decay/spindle shapes, sparsity bound.

- :func:`noisy_regression`, :func:`row_norms`, :func:`order_ratio` — the closed-form solution
  of the noisy interaction regression of [D24] (docs/math.md §5), Theorem 4 and Proposition 1.
- :func:`theoretical_order_distribution`, :func:`fit_sigma2` — predicted order distribution
  :math:`I_{theo}^{(k)}` and the noise level σ² that best matches a measured one.
- :func:`spindle_curve`, :func:`pipeline_spindle`, :func:`decay_curve`, :func:`parametric_decay`,
  :func:`disentangle` — decay- and spindle-shaped interaction distributions ([G25], docs/math.md §6).
- :func:`sparsity_bound` — the bound on the number of salient interactions of [R24] (docs/math.md §8).

Everything over subsets uses the mask encoding of :mod:`jinter.transforms` and never builds a
``2^n × 2^n`` matrix: ``A = ⊗[[1, ½], [½, ½]]`` and ``D = ⊗diag(1, 2)`` are diagonalized
together by the Kronecker power of the 2×2 generalized eigenvectors of ``(a, d)``.
"""

from __future__ import annotations

import functools
import math
from typing import Literal, NamedTuple, get_args

import jax.numpy as jnp
import numpy as np
import scipy.optimize
from jaxtyping import Array, ArrayLike, Float

from jinter._budget import check_budget
from jinter._checks import (
    check_finite,
    check_int,
    check_option,
    check_real,
    check_tau,
    default_tol,
    is_traced,
    safe_divide_host,
)
from jinter.statistics import order_distribution, order_sums, salient_counts, signed_order_strength
from jinter.transforms import _as_float, kron_apply, num_players

__all__ = [
    "noisy_regression",
    "row_norms",
    "order_ratio",
    "theoretical_order_distribution",
    "fit_sigma2",
    "FitResult",
    "spindle_curve",
    "pipeline_spindle",
    "SpindleTemplate",
    "decay_curve",
    "parametric_decay",
    "disentangle",
    "DisentangleResult",
    "sparsity_bound",
    "SparsityBound",
]

# --- the 2×2 pair (a, d) and its generalized eigendecomposition -----------------------------
_A2 = np.array([[1.0, 0.5], [0.5, 0.5]])  # A = ⊗ _A2: A[T,T'] = 2^{-|T ∪ T'|}
_D2 = np.diag([1.0, 2.0])  # D = ⊗ _D2: D[T,T] = 2^{|T|}
_DH = np.diag(1.0 / np.sqrt(np.diag(_D2)))
_MU, _U = np.linalg.eigh(_DH @ _A2 @ _DH)  # d^{-1/2} a d^{-1/2} = U diag(mu) U^T
_V = _DH @ _U  # V^T d V = I, V^T a V = diag(mu)
_VINV = _U.T @ np.diag(np.sqrt(np.diag(_D2)))  # V^{-1}
_LOG_MU = np.log(_MU)
# Per-bit weights of the row-norm generating function (see row_norms).
_G2 = _VINV @ _VINV.T  # W^{-1} W^{-T} = ⊗ _G2
_H2 = [np.outer(_V[t], _V[t]) * _G2 for t in (0, 1)]  # h_t[e, e'] = V[t,e] g[e,e'] V[t,e']
_MAX_ROW_NORM_N = 60


def _check_sigma2(sigma2: ArrayLike, what: str = "sigma2") -> None:
    if is_traced(sigma2):
        return
    s = np.asarray(sigma2)
    if s.dtype == np.bool_ or not (np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)):
        raise ValueError(f"{what} must be real numbers (noise variances ≥ 0), got {sigma2!r}")
    if s.ndim > 1:
        raise ValueError(f"{what} must be a scalar or a 1-D array, got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"{what} is a noise variance: it must be finite and >= 0, got {s}")


def _eig_log_lambda(n: int, dtype) -> Array:
    """log λ_E of ⊗diag(mu) for every eigen-index E (bit i of E picks mu[bit])."""
    orders = np.zeros(1)
    for _ in range(n):
        orders = np.concatenate([orders, orders + 1])
    return jnp.asarray((n - orders) * _LOG_MU[0] + orders * _LOG_MU[1], dtype=dtype)


def _shrink(log_lam: Array, sigma2: Array) -> Array:
    """λ/(λ + σ²) computed as 1/(1 + σ² e^{-log λ}), with a leading σ² axis if σ² is 1-D."""
    s = sigma2.reshape(sigma2.shape + (1,) * log_lam.ndim)
    return 1.0 / (1.0 + s * jnp.exp(-log_lam))


def noisy_regression(
    w_star: Float[ArrayLike, "*batch 2**n"], sigma2: Float[ArrayLike, ""] | Float[ArrayLike, " s"]
) -> Float[Array, "*s *batch 2**n"]:
    r"""Interactions learned under noise level σ²: :math:`\hat w = (A + σ^2 D)^{-1} A w^*` ([D24] Thm 3).

    Minimizer of :math:`E_ε E_S (y_S - w^T(J(x_S) + ε))^2` with :math:`y_S = \sum_{T⊆S} w^*_T`,
    ``Var ε_T = 2^{|T|}σ²`` and ``S`` uniform (docs/math.md §5). With ``W = ⊗V`` the generalized
    eigenvectors of the 2×2 pair (``Vᵀ a V = diag(μ)``, ``Vᵀ d V = I``),
    ``M̂ = W diag(λ_E/(λ_E + σ²)) W⁻¹`` with ``λ_E = Π_i μ_{E_i}``: two butterflies and a
    diagonal scaling, O(n·2^n) per σ². Exact for σ² = 0 (``ŵ = w*``). jit/vmap friendly.

    Args:
        w_star: ground-truth interactions, shape ``(..., 2**n)``.
        sigma2: σ² ≥ 0, a scalar or a 1-D array (the result then gets a leading σ² axis).

    Returns:
        ŵ, shape ``(..., 2**n)`` or ``(len(sigma2), ..., 2**n)``.

    Raises:
        ValueError: σ² negative / not finite / more than 1-D, or a last axis not a power of two.
        MemoryBudgetError: the result would not fit the memory budget.
    """
    w = _as_float(w_star)
    n = num_players(w, what="w_star")
    if not is_traced(w):
        check_finite(w, "w_star")
    _check_sigma2(sigma2)
    s = jnp.asarray(sigma2).astype(w.dtype)
    if s.ndim > 1:
        raise ValueError(f"sigma2 must be a scalar or a 1-D array, got shape {s.shape}")
    copies = 3 * (s.shape[0] if s.ndim else 1)
    check_budget(copies * w.size * w.dtype.itemsize, f"noisy_regression over {w.shape} x {s.shape} sigma2")
    t = kron_apply(w, _VINV)  # W^{-1} w*
    f = _shrink(_eig_log_lambda(n, w.dtype), s)  # (s?, 2^n)
    if s.ndim:
        f = f.reshape(f.shape[:1] + (1,) * (w.ndim - 1) + f.shape[1:])
    return kron_apply(f * t, _V)


def _poly_mul(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    out = np.zeros((p.shape[0] + q.shape[0] - 1, p.shape[1] + q.shape[1] - 1))
    for a, b in zip(*np.nonzero(p)):
        out[a : a + q.shape[0], b : b + q.shape[1]] += p[a, b] * q
    return out


@functools.lru_cache(maxsize=64)
def _row_norm_coefficients(n: int) -> np.ndarray:
    """C[k, a, b]: coefficient of x^a y^b in P_1(x,y)^k P_0(x,y)^(n-k), P_t = Σ h_t[e,e'] x^e y^e'."""
    pows = []
    for h in _H2:
        cur, ps = np.ones((1, 1)), [np.ones((1, 1))]
        for _ in range(n):
            cur = _poly_mul(cur, h)
            ps.append(cur)
        pows.append(ps)
    return np.stack([_poly_mul(pows[1][k], pows[0][n - k]) for k in range(n + 1)])


def row_norms(n: int, sigma2: Float[ArrayLike, ""] | Float[ArrayLike, " s"]) -> Float[Array, "*s n+1"]:
    r"""Norm ``‖m̂_T‖`` of the rows of :math:`\hat M = (A+σ^2D)^{-1}A` per order ``|T| = 0 … n``.

    Rows of equal order have equal norms ([D24] Theorem 4). Computed without any matrix:
    ``‖m̂_T‖² = Σ_{E,E'} W[T,E] W[T,E'] f(|E|) f(|E'|) G[E,E']`` with ``G = W⁻¹W⁻ᵀ = ⊗g`` and
    ``f = λ/(λ+σ²)`` depending on ``|E|`` only, so the sum collapses to a bivariate generating
    polynomial ``P_1^{|T|} P_0^{n-|T|}`` of per-bit weights: O(n³) work for all orders.
    Rounding grows like ``2^n·eps`` (fine for n ≤ 30 in float64).

    Returns:
        Shape ``(n + 1,)`` (entry k = order k), with a leading σ² axis if ``sigma2`` is 1-D.
    """
    n = check_int(n, "n", 0, most=_MAX_ROW_NORM_N)
    _check_sigma2(sigma2)
    s = jnp.asarray(sigma2)
    dtype = s.dtype if jnp.issubdtype(s.dtype, jnp.floating) else jnp.result_type(float)
    s = s.astype(dtype)
    coef = jnp.asarray(_row_norm_coefficients(n), dtype=dtype)  # cached per n  # (n+1, n+1, n+1)
    log_lam = jnp.asarray((n - np.arange(n + 1)) * _LOG_MU[0] + np.arange(n + 1) * _LOG_MU[1], dtype=dtype)
    f = _shrink(log_lam, s)  # (s?, n+1) indexed by |E|
    sq = jnp.einsum("...a,kab,...b->...k", f, coef, f)
    return jnp.sqrt(jnp.maximum(sq, 0))


def order_ratio(n: int, sigma2: Float[ArrayLike, ""] | Float[ArrayLike, " s"]) -> Float[Array, "*s n-1"]:
    r"""``r^(k) = ‖m̂_T‖ / ‖m̂_T'‖`` with ``|T| = k``, ``|T'| = k+1``, for ``k = 1 … n−1`` ([D24] Prop. 1).

    [D24]'s reading: each ratio is > 1 for σ² > 0 (equal to 1 at σ² = 0) and shrinks as σ²
    shrinks, so the noise suppresses high orders more and lowering it lets higher orders be
    learned. That holds only in part of the plane. Measured with this closed form (which
    matches a dense solve to 1e-10) on ``σ² ∈ logspace(−12, 3, 301)``:

    - n ≤ 10: every ``r^(k) ≥ 1`` and non-decreasing in σ² over the whole range.
    - n ≥ 11, small σ²: ``r^(k) < 1`` for the lowest orders (k = 1 at n = 11–12, k ≤ 2 at
      n = 13, k ≤ 3 at n = 14, k ≤ 4 at n = 16), for σ² in about [3.5e-8, 4.5e-8] at n = 11
      (r^(1) down to 0.999996), from 1.6e-10 up to 1.3e-7 at n = 12, from 8.9e-12 up to 7.9e-7
      at n = 13 and from below 1e-12 up to 4.5e-7 at n = 16; e.g. ``r^(1) = 0.99996`` at n = 12,
      σ² = 1e-8 (minimum over the range: 0.99574 at n = 16). There ``r^(k)`` also *falls* as
      σ² grows, up to σ² ≈ 4e-8 (n = 11), 5.6e-7 (n = 12), 2.8e-5 (n = 16).
    - Every n, σ² ≳ 3e-5: ``r^(k) > 1`` and rising with σ² (the regime of [D24]'s Fig. 3).

    So for n ≥ 11 and σ² ≲ 1e-6 the ratio does not order the orders as the paper states.

    Example:
        >>> import jax; jax.config.update("jax_enable_x64", True)
        >>> bool(order_ratio(12, 1e-8)[0] < 1), bool(order_ratio(12, 1e-2)[0] > 1)
        (True, True)
    """
    norms = row_norms(n, sigma2)
    return norms[..., 1:n] / norms[..., 2 : n + 1]


# --- theoretical order distribution and σ² fitting ------------------------------------------
def theoretical_order_distribution(
    w_star: Float[ArrayLike, "*samples 2**n"],
    sigma2: Float[ArrayLike, ""] | Float[ArrayLike, " s"],
    *,
    w_star_or: Float[ArrayLike, "*samples 2**n"] | None = None,
    tau_frac: float = 0.03,
) -> Float[Array, "*s n"]:
    r""":math:`I^{(k)}_{theo}`: the order distribution (docs/math.md §4, [D24] eq. 12) of ``ŵ(σ²)``.

    ``ŵ = noisy_regression(w*, σ²)``; all leading axes of ``w_star`` are samples and are
    averaged. Threshold, per sample and per σ²: ``τ = tau_frac·|Σ_{S≠∅} ŵ_S|``, i.e.
    ``tau_frac·|v̂(N) − v̂(∅)|`` of the regressed model (= ``|Σ_S ŵ_S − ŵ_∅|`` of docs/math.md §5;
    the [D24] choice 0.03·|v(x) − v(x_∅)| made per sample and on ŵ, so it moves with σ²).
    OR interactions, if given, go through the same regression (an OR interaction is an AND
    interaction of the complemented game) and count in the same distribution and threshold.
    Normalized like :func:`jinter.statistics.order_distribution`: entries average to 1.

    Returns:
        Shape ``(n,)`` (order k at index k−1), with a leading σ² axis if ``sigma2`` is 1-D.
    """
    w = _as_float(w_star)
    n = num_players(w, what="w_star")
    if w.size == 0:
        raise ValueError(f"w_star holds no samples (shape {w.shape}): there is no ground truth to average over")
    scalar = np.ndim(sigma2) == 0
    s = jnp.atleast_1d(jnp.asarray(sigma2))
    _check_sigma2(s)
    if tau_frac < 0:
        raise ValueError(f"tau_frac must be >= 0, got {tau_frac}")
    ws = [w.reshape(-1, 2**n)]
    if w_star_or is not None:
        wo = _as_float(w_star_or)
        if wo.shape != w.shape:
            raise ValueError(f"w_star_or has shape {wo.shape}, w_star has {w.shape}")
        ws.append(wo.reshape(-1, 2**n))
    hats = [noisy_regression(x, s) for x in ws]  # (s, m, 2^n)
    total = sum(jnp.sum(h[..., 1:], axis=-1) for h in hats)
    tau = tau_frac * jnp.abs(total)  # (s, m)
    out = order_distribution(hats[0], hats[1] if len(hats) > 1 else None, tau, sample_axis=1)
    return out[0] if scalar else out


class FitResult(NamedTuple):
    """Result of :func:`fit_sigma2` (leading axes = checkpoints of ``measured``)."""

    sigma2: np.ndarray  # best σ² per checkpoint
    curve: np.ndarray  # I_theo at that σ², shape (..., n)
    error: np.ndarray  # RMS difference between curve and the normalized measured distribution
    sigma2_low: np.ndarray | None = None  # σ² range whose error is within the fit's noise of the best
    sigma2_high: np.ndarray | None = None
    at_edge: np.ndarray | None = None  # best σ² at an end of the grid (the true value may lie beyond)
    poor_fit: np.ndarray | None = None  # error above ``max_error``: the theory does not describe the curve
    reliable: np.ndarray | None = None  # none of the flags, and the range spans at most one decade

    def flags(self) -> list[str]:
        """Why each checkpoint's σ² is not reliable ("" if it is), flattened over the checkpoints."""
        out = []
        for edge, poor, lo, hi in zip(*(np.ravel(np.asarray(a)) for a in (self.at_edge, self.poor_fit,
                                                                            self.sigma2_low, self.sigma2_high))):
            why = [w for w, on in (("at the grid edge", edge), ("poor fit", poor),
                                   ("not identifiable (range > 1 decade)", hi > 10 * max(lo, 1e-300))) if on]
            out.append("; ".join(why))
        return out


def _normalize(d: np.ndarray) -> np.ndarray:
    z = d.mean(axis=-1, keepdims=True)
    return np.where(z > 0, d / np.where(z > 0, z, 1), 0)


def fit_sigma2(
    measured: Float[ArrayLike, "*checkpoints n"],
    w_star: Float[ArrayLike, "*samples 2**n"],
    *,
    w_star_or: Float[ArrayLike, "*samples 2**n"] | None = None,
    grid: ArrayLike | None = None,
    tau_frac: float = 0.03,
    refine: bool = True,
    noise: float = 0.1,
    max_error: float = 0.3,
) -> FitResult:
    r"""σ² per checkpoint whose :math:`I_{theo}` best matches a measured :math:`I^{(k)}` ([D24] §5).

    Criterion (the paper gives none): least squares between the two distributions, each
    normalized to average 1 over orders, ``err(σ²) = sqrt(mean_k (I_theo^(k) − I_real^(k))²)``.
    Minimized over a log-spaced grid (default ``logspace(-10, 3, 131)``: σ² is relative to
    the eigenvalues ``λ_E ∈ [0.11^n, 1.14^n]``), then refined by a bounded scalar search in
    ``log σ²`` between the best grid point's neighbours (kept only if it lowers the error).
    The thresholded curve is piecewise constant in σ², so σ² is identified up to the flat
    interval containing it. Not jit-able (host-side search).

    Args:
        measured: measured distribution(s), shape ``(..., n)`` (e.g. from
            :func:`jinter.statistics.order_distribution`), one per checkpoint.
        w_star: ground truth (salient interactions of the final model), ``(..., 2**n)``.
        w_star_or: optional OR part of the ground truth.
        grid: candidate σ² values (≥ 0, 1-D).
        tau_frac: threshold fraction, as in :func:`theoretical_order_distribution`.
        refine: run the local refinement.
        noise: relative width of "within the fit's noise": the σ² range reported is the
            contiguous run of grid values around the best one whose error is at most
            ``(1 + noise)·best error + 0.005`` (0.005: the rounding of normalized curves).
        max_error: a best error above this is flagged ``poor_fit`` (errors are RMS over orders of
            curves normalized to mean 1: 0.3 is a 30% typical mismatch per order).

    Returns:
        :class:`FitResult`. Besides the best σ², its curve and error, each checkpoint has the
        σ² range within the fit's noise (``sigma2_low``, ``sigma2_high``) and flags:
        ``at_edge`` (best σ² at an end of the grid: the fit would go further), ``poor_fit``
        and ``reliable`` (no flag and the range spans at most one decade). A value that is
        not ``reliable`` must not be read as a measurement of σ²; :meth:`FitResult.flags`
        says why.
    """
    noise = check_real(noise, "noise", least=0.0)
    max_error = check_real(max_error, "max_error", above=0.0)
    tau_frac = check_real(tau_frac, "tau_frac", least=0.0)
    if not isinstance(refine, (bool, np.bool_)):
        raise TypeError(f"refine must be True or False, got {refine!r}")
    meas = np.asarray(measured, dtype=np.float64)
    n = num_players(np.asarray(w_star), what="w_star")
    if meas.ndim == 0 or meas.shape[-1] != n:
        raise ValueError(f"measured must have a last axis of n={n} orders, got shape {meas.shape}")
    if not np.all(np.isfinite(meas) & (meas >= 0)):
        raise ValueError("measured must be order distributions: finite strengths ≥ 0 (got NaN, inf or a negative value)")
    check_finite(np.asarray(w_star), "w_star")
    if grid is not None and np.ndim(grid) > 1:
        raise ValueError(f"grid must be a 1-D array of σ² values, got shape {np.shape(grid)}")
    grid = np.logspace(-10, 3, 131) if grid is None else np.sort(np.asarray(grid, dtype=np.float64).ravel())
    _check_sigma2(grid, "grid")
    if grid.size == 0:
        raise ValueError("grid must not be empty")
    batch = meas.shape[:-1]
    target = _normalize(meas.reshape(-1, n))
    kw = dict(w_star_or=w_star_or, tau_frac=tau_frac)
    chunk = 16  # σ² values per batch: bounds memory at 16 x samples x 2^n per call
    curves = np.concatenate([np.asarray(theoretical_order_distribution(w_star, grid[i : i + chunk], **kw))
                             for i in range(0, grid.size, chunk)]).astype(np.float64)
    errs = np.sqrt(np.mean((curves[None] - target[:, None]) ** 2, axis=-1))  # (c, g)
    best = np.argmin(errs, axis=1)
    sig = grid[best].copy()
    err = errs[np.arange(len(best)), best].copy()
    curve = curves[best].copy()
    if refine and grid.size > 1:
        for c, i in enumerate(best):
            lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
            lo = max(lo, grid[grid > 0].min() * 1e-3 if np.any(grid > 0) else 1e-12)
            if not hi > lo:
                continue

            def obj(logs, c=c):
                d = np.asarray(theoretical_order_distribution(w_star, float(np.exp(logs)), **kw))
                return float(np.sqrt(np.mean((d - target[c]) ** 2)))

            res = scipy.optimize.minimize_scalar(
                obj, bounds=(np.log(lo), np.log(hi)), method="bounded", options={"xatol": 1e-4}
            )
            if res.fun < err[c]:
                sig[c], err[c] = float(np.exp(res.x)), res.fun
                curve[c] = np.asarray(theoretical_order_distribution(w_star, sig[c], **kw))
    # σ² range within the fit's noise: the contiguous run of grid points around the best one
    lo_s, hi_s = np.empty(len(best)), np.empty(len(best))
    for c, i in enumerate(best):
        ok = errs[c] <= (1 + noise) * err[c] + 0.005
        a = b = int(i)
        while a > 0 and ok[a - 1]:
            a -= 1
        while b < grid.size - 1 and ok[b + 1]:
            b += 1
        lo_s[c], hi_s[c] = min(grid[a], sig[c]), max(grid[b], sig[c])
    edge = (best == 0) | (best == grid.size - 1)
    poor = err > max_error
    reliable = ~edge & ~poor & (hi_s <= 10 * np.maximum(lo_s, 1e-300))
    r = lambda x: x.reshape(batch)  # noqa: E731
    return FitResult(r(sig), curve.reshape(batch + (n,)), r(err), r(lo_s), r(hi_s), r(edge), r(poor), r(reliable))


# --- decay- and spindle-shaped distributions [G25] ------------------------------------------
def _binom(n: int) -> np.ndarray:
    return np.array([math.comb(n, k) for k in range(1, n + 1)], dtype=np.float64)


def spindle_curve(
    n: int, sigma: Float[ArrayLike, "*batch"], *, tau: float = 0.0
) -> tuple[Float[Array, "*batch n"], Float[Array, "*batch n"]]:
    r"""Expected :math:`A^{(k),\pm}` of pure noise: ``±C(n,k)·2^{k/2}·σ/√(2π)`` (docs/math.md §6, [G25]).

    If each masked output ``v(x_S)`` carries iid noise of variance σ², ``I(S)`` is Gaussian-like
    with variance ``s_k² = 2^k σ²`` ([D24] Lemma 1), so ``E max(I, 0) = s_k/√(2π)`` per subset.
    With a salience threshold τ > 0 (only ``|I| ≥ τ`` counted) and Gaussian noise this becomes
    ``s_k·φ(τ/s_k)`` = ``s_k/√(2π)·exp(−τ²/(2 s_k²))``.

    Returns:
        ``(pos, neg)``, each of shape ``(..., n)`` for orders ``k = 1 … n``; ``neg = −pos``.
    """
    n = check_int(n, "n", 1)
    sig = _as_float(sigma)
    if not is_traced(sig):
        check_finite(sig, "sigma")
    if not is_traced(sig) and np.any(np.asarray(sig) < 0):
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if not is_traced(tau):
        tau = check_real(tau, "tau", least=0.0)
    k = np.arange(1, n + 1)
    sk = sig[..., None] * jnp.asarray(2.0 ** (k / 2), dtype=sig.dtype)
    pos = jnp.asarray(_binom(n), dtype=sig.dtype) * sk / math.sqrt(2 * math.pi)
    if is_traced(tau) or tau:
        pos = jnp.where(sk > 0, pos * jnp.exp(-(tau**2) / (2 * jnp.where(sk > 0, sk, 1) ** 2)), 0)
    return pos, -pos


# --- the spindle of the pipeline that is used -----------------------------------------------
_Signal = Literal["low-order", "none"]  # the game that pipeline_spindle puts noise on
_SIGNALS = get_args(_Signal)


class SpindleTemplate(NamedTuple):
    r"""Expected ``A^(k),±`` that iid noise adds through the AND-OR pipeline (:func:`pipeline_spindle`).

    Tabulated per unit game scale ``Δ̄ = E_x|v(x_N) − v(x_∅)|`` of the measured (noisy) games, on a
    grid of relative noise levels ``ρ = σ/Δ̄``; the template of games of scale ``Δ̄`` is
    ``scaled(Δ̄)``: noise level ``σ = ρ·Δ̄``, curves ``Δ̄·pos`` and ``Δ̄·neg`` (the pipeline is
    positively homogeneous: ``v → c·v`` maps the interactions, ``q`` box and ``τ`` to ``c`` times them).
    Between the grid points (and from ``σ = 0``, where it is 0) the template is linear in ``σ``.
    """

    n: int
    rel_sigma: np.ndarray  # (g,) ρ = σ/Δ̄, increasing, > 0
    pos: np.ndarray  # (g, n) E[A^(k),+(signal + noise) − A^(k),+(signal)] / Δ̄, order k at index k−1
    neg: np.ndarray  # (g, n) the same for A^(k),− (mostly ≤ 0)
    pos_se: np.ndarray  # (g, n) Monte Carlo standard errors of pos
    neg_se: np.ndarray  # (g, n) of neg
    setting: tuple  # ((name, value), ...): what the template was computed for
    scale: float = 1.0  # Δ̄ of the games the template is applied to

    @property
    def sigma(self) -> np.ndarray:
        """The grid's noise levels ``σ = ρ·scale``."""
        return self.rel_sigma * self.scale

    def scaled(self, scale: float) -> "SpindleTemplate":
        """The template for games of scale ``Δ̄ = scale`` (e.g. ``statistics.tau_output(v, 1.0)``)."""
        s = float(scale)
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"scale must be a finite number > 0 (E_x|v(x_N) - v(x_empty)|), got {scale!r}")
        return self._replace(scale=s)

    def curve(self, sigma: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(pos, neg)`` at noise level(s) ``σ`` (0 ≤ σ ≤ the grid's last σ), shape ``(*σ, n)``."""
        s = np.asarray(sigma, dtype=np.float64)
        top = float(self.sigma[-1])
        if not (np.all(np.isfinite(s)) and np.all(s >= 0) and np.all(s <= top * (1 + 1e-12))):
            raise ValueError(f"sigma must be in [0, {top:.4g}] (the template's grid at scale {self.scale:g}), got {sigma}")
        grid = np.concatenate([[0.0], self.sigma])
        out = []
        for table in (self.pos, self.neg):
            t = np.concatenate([np.zeros((1, self.n)), table]) * self.scale
            out.append(np.stack([np.interp(s, grid, t[:, k]) for k in range(self.n)], axis=-1))
        return out[0], out[1]


def _low_order_signal(n: int, games: int, rng: np.random.Generator, terms: int, max_order: int,
                      sigma2: float) -> np.ndarray:
    """Outputs of random order-1…max_order truths (``terms`` N(0,1) terms) seen through
    :func:`noisy_regression` at σ² (docs/math.md §5): the decay-shaped games of [G25]."""
    from jinter.transforms import zeta

    w = np.zeros((games, 2**n))
    for row in w:
        for _ in range(terms):
            k = int(rng.integers(1, min(max_order, n) + 1))
            row[sum(1 << int(i) for i in rng.choice(n, k, replace=False))] += rng.normal()
    return np.asarray(zeta(noisy_regression(w, sigma2)), dtype=np.float64)


def pipeline_spindle(
    n: int,
    *,
    q_ratio: float = 0.02,
    tau_frac: float = 0.03,
    signal: _Signal = "low-order",
    rel_sigma: tuple[float, ...] | None = None,
    samples: int = 20,
    seed: int = 0,
    tol: float = 1e-4,
    terms: int | None = None,
    max_order: int = 3,
    regression_sigma2: float = 1e-2,
) -> SpindleTemplate:
    r"""Spindle template of the pipeline that is used: noise pushed through :func:`jinter.and_or` (docs/math.md §6).

    Monte Carlo: ``samples`` games ``s`` (``signal="low-order"``: random order-1…``max_order``
    truths with ``terms`` terms (default ``2n``) through :func:`noisy_regression` at
    ``regression_sigma2``; ``"none"``: pure noise, ``s = 0``) get iid ``N(0, σ²)`` noise on every
    ``v(x_S)``, the same draw at every grid point (common random numbers), with
    ``σ = ρ·Δ̄_s`` for each ``ρ`` in ``rel_sigma``. All ``(grid point, game)`` pairs and the
    noise-free games go through one batched :func:`jinter.and_or` (``q_ratio``, ``tol``); per grid
    point ``τ = tau_frac·E_x|v(x_N) − v(x_∅)|`` over its games (:func:`jinter.statistics.tau_output`;
    ``tau_frac = 0``: τ = 0) and ``A^(k),±`` by :func:`jinter.statistics.signed_order_strength`
    of AND and OR together, averaged over the games, as ``jinter demo`` measures them. The
    template is the increment ``E A^±(s + noise) − A^±(s)`` per unit of the noisy games' ``Δ̄``,
    at ``ρ = σ/Δ̄`` of the noisy games. For pure noise the scale is the noise itself, so the
    template is linear in σ: it is computed at one σ and tabulated on the grid.

    The result is cached in-process per setting (the same arguments return the identical
    object). Cost: ``samples·(len(rel_sigma) + 1)`` AND-OR solves (about 10 s at n = 8, mostly compiling, and
    1–2 min at n = 10 on 2 CPU cores with the defaults).

    Args:
        n: players (2 ≤ n ≤ 14).
        q_ratio: the noise box of the split (as in :func:`jinter.and_or`).
        tau_frac: the salience threshold's fraction (0.03 in [D24]; 0: τ = 0).
        signal: ``"low-order"`` (noise on a representative decay-shaped signal) or ``"none"``.
        rel_sigma: the grid of ``ρ = σ/Δ̄`` (default 12 points from 1e-3 to 0.3, log-spaced).
        samples: games per grid point (they share one τ, as a demo checkpoint's samples do).
        seed, tol: Monte Carlo seed and the solver's certified relative gap.
        terms, max_order, regression_sigma2: the low-order signal (ignored for ``"none"``).

    Example:
        >>> from jinter.theory import pipeline_spindle
        >>> t = pipeline_spindle(4, samples=4, rel_sigma=(0.05, 0.2))
        >>> t.pos.shape, t is pipeline_spindle(4, samples=4, rel_sigma=(0.05, 0.2))
        ((2, 4), True)
    """
    n = int(n)
    if not 2 <= n <= 14:
        raise ValueError(f"n must be in [2, 14], got {n}")
    check_option(signal, "signal", _SIGNALS)
    for name, val in (("q_ratio", q_ratio), ("tau_frac", tau_frac)):
        if not (isinstance(val, (int, float, np.floating)) and math.isfinite(val) and val >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {val!r}")
    grid = tuple(float(r) for r in (np.geomspace(1e-3, 0.3, 12) if rel_sigma is None else np.atleast_1d(rel_sigma)))
    if not grid or not all(math.isfinite(r) and r > 0 for r in grid) or any(b <= a for a, b in zip(grid, grid[1:])):
        raise ValueError(f"rel_sigma must be increasing finite numbers > 0, got {rel_sigma!r}")
    for name, val, lo in (("samples", samples, 2), ("max_order", max_order, 1)):
        if int(val) != val or val < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {val!r}")
    terms = 2 * n if terms is None else terms
    if int(terms) != terms or terms < 1:
        raise ValueError(f"terms must be an integer >= 1, got {terms!r}")
    if not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    _check_sigma2(regression_sigma2, "regression_sigma2")
    if signal == "none":  # scale-free: σ does not matter, the defaults of the signal neither
        terms, max_order, regression_sigma2 = 0, 0, 0.0
    return _pipeline_spindle(n, float(q_ratio), float(tau_frac), signal, grid, int(samples), int(seed),
                             float(tol), int(terms), int(max_order), float(regression_sigma2))


@functools.lru_cache(maxsize=32)
def _pipeline_spindle(n, q_ratio, tau_frac, signal, grid, samples, seed, tol, terms, max_order, sigma2):
    from jinter.decomposition import and_or
    from jinter.statistics import tau_output

    rng = np.random.default_rng(seed)
    rho = np.asarray(grid)
    if signal == "none":
        s = np.zeros((samples, 2**n))
        sig = np.ones(1)
    else:
        s = _low_order_signal(n, samples, rng, terms, max_order, sigma2)
        sig = rho * np.mean(np.abs(s[:, -1] - s[:, 0]))
    eps = rng.normal(size=(samples, 2**n))
    v = np.concatenate([s[None], s[None] + sig[:, None, None] * eps[None]])  # (1 + g', samples, 2^n)
    dt = jnp.asarray(np.zeros(0)).dtype  # float64 with jax_enable_x64, else float32
    v = jnp.asarray(v, dtype=dt)
    res = and_or(v, q_ratio=q_ratio, tol=max(tol, default_tol(dt)))
    tau = tau_output(v, tau_frac, sample_axis=1) if tau_frac > 0 else jnp.zeros(v.shape[0], dt)
    pos, neg = (np.asarray(a, dtype=np.float64) for a in signed_order_strength(res.I_and, res.I_or, tau[:, None]))
    delta = np.asarray(tau_output(v, 1.0, sample_axis=1), dtype=np.float64)[1:]  # Δ̄ of the noisy games
    dp, dn = pos[1:] - pos[:1], neg[1:] - neg[:1]  # per game increments
    se = lambda a: a.std(axis=1, ddof=1) / math.sqrt(samples)  # noqa: E731
    tabs = [a.mean(axis=1) / delta[:, None] for a in (dp, dn)] + [se(a) / delta[:, None] for a in (dp, dn)]
    if signal == "none":  # linear in σ: per unit σ times ρ·Δ̄ = σ, per unit Δ̄ = ρ
        tabs = [rho[:, None] * (t[0] * delta[0]) for t in tabs]
        rel = rho
    else:
        rel = sig / delta
        if np.any(np.diff(rel) <= 0):
            raise ValueError(f"rel_sigma {grid} does not give increasing σ/Δ̄ on the noisy games ({rel}); use a finer grid")
    setting = (("n", n), ("q_ratio", q_ratio), ("tau_frac", tau_frac), ("signal", signal), ("samples", samples),
               ("seed", seed), ("tol", tol), ("terms", terms), ("max_order", max_order),
               ("regression_sigma2", sigma2))
    out = SpindleTemplate(n, rel, *tabs, setting)
    for a in out[1:6]:
        a.setflags(write=False)
    return out


def decay_curve(
    w_star: Float[ArrayLike, "*batch 2**n"],
    sigma2: Float[ArrayLike, ""] | Float[ArrayLike, " s"],
    *,
    tau: ArrayLike = 0.0,
) -> tuple[Float[Array, "*s *batch n"], Float[Array, "*s *batch n"]]:
    r"""Decay-shaped ``(A^(k),+, A^(k),−)`` of a (low-order) ground truth seen through
    :func:`noisy_regression` at noise σ² (docs/math.md §6): higher orders are suppressed more.

    Per sample (leading axes kept); ``tau`` is the salience threshold of
    :func:`jinter.statistics.signed_order_strength`.
    """
    return signed_order_strength(noisy_regression(w_star, sigma2), None, tau)


def parametric_decay(n: int, rate: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch n"]:
    r"""Parametric decay family ``d_k = exp(−rate·(k−1))``, ``k = 1 … n`` (``d_1 = 1``, rate ≥ 0).

    A one-parameter geometric decay over orders, used by :func:`disentangle` when no decay
    shape from a ground truth is given (our choice; [G25]'s analytic form is not available).
    """
    n = check_int(n, "n", 1)
    r = _as_float(rate)
    if not is_traced(r):
        check_finite(r, "rate")
        if np.any(np.asarray(r) < 0):
            raise ValueError(f"rate must be >= 0 (a decay over orders), got {rate}")
    return jnp.exp(-r[..., None] * jnp.arange(n, dtype=r.dtype))


_DecayFamily = Literal["log-quadratic", "geometric"]  # the decay shapes disentangle fits
_DECAY_FAMILIES = get_args(_DecayFamily)


class DisentangleResult(NamedTuple):
    """Result of :func:`disentangle`: the fitted parts, their parameters and the fit error."""

    decay_pos: np.ndarray  # (n,) ≥ 0
    decay_neg: np.ndarray  # (n,) ≤ 0
    spindle_pos: np.ndarray  # (n,) ≥ 0
    spindle_neg: np.ndarray  # (n,) ≤ 0
    params: dict  # decay_weight_pos, decay_weight_neg, sigma_pos, sigma_neg, rate (or None)
    residual: float  # ‖fit − data‖ / ‖data‖ over the stacked (A+, −A−)
    poor_fit: bool = False  # residual > max_residual: the two-part model does not describe the data


def disentangle(
    a_pos: Float[ArrayLike, " n"],
    a_neg: Float[ArrayLike, " n"],
    n: int | None = None,
    *,
    decay: ArrayLike | None = None,
    rate_bounds: tuple[float, float] | None = None,
    symmetric_spindle: bool = True,
    max_residual: float = 0.2,
    decay_family: _DecayFamily = "log-quadratic",
    max_peak: float | None = None,
    spindle: SpindleTemplate | None = None,
) -> DisentangleResult:
    r"""Split measured ``A^(k),±`` into a decay part and a spindle part (docs/math.md §6, [G25]).

    Model: ``A^+ = c⁺·d + σ⁺·s``, ``A^− = −c⁻·d⁻ − σ⁻·s`` with ``s_k = C(n,k)2^{k/2}/√(2π)``
    (:func:`spindle_curve` at σ = 1), nonnegative weights ``c⁺, c⁻, σ^±`` solved exactly by
    non-negative least squares (scipy ``nnls``) on the stacked ``(A^+, −A^−)``, and decay shape
    ``d`` either given (``decay``: shape ``(n,)`` or ``(2, n)`` for separate +/− shapes, e.g.
    from :func:`decay_curve`) or fitted from a family (``decay_family``):

    * ``"log-quadratic"`` (default): ``log d_k = −r(k−1) − c(k−1)²`` with ``c ≥ 0``, one shape per
      sign. It contains the geometric decay (``c = 0``) and peaks at any order up to
      ``max_peak`` (default ``max(2, n/3)``), as the distributions derived from a noisy
      regression of low-order truths do (they peak at orders 2–3, with a faster than geometric
      fall after it). The cap keeps the part *decay*-shaped in [G25]'s sense (concentrated at
      low orders): a log-quadratic peaking at middle orders would take the place of the spindle. Fitted on a grid of one shared shape,
      then both shapes refined by Nelder–Mead; ``params`` gets ``rate_pos``, ``curvature_pos``,
      ``rate_neg``, ``curvature_neg``. On planted mixtures (decay from :func:`decay_curve` of
      random order-1–3 truths at σ² = 1e-3–1e-1, n = 10, plus a spindle) the decay weight is
      recovered within 2.5% and the spindle weight within 3% at a spindle share of 0.5, 11%
      at 0.2 and 25% at 0.1 (a log-quadratic decay can take part of a weak spindle's low orders).
    * ``"geometric"``: :func:`parametric_decay`, rate fitted by a grid search over
      ``rate_bounds`` (default ``(0, 10)``, 201 points) then a bounded scalar search
      (``params["rate"]``); peaks at order 1 only. ``rate_bounds`` belongs to this family and
      ``max_peak`` to the log-quadratic one; either given where it is not used is refused.

    ``symmetric_spindle`` ties ``σ⁺ = σ⁻`` (noise is symmetric).

    ``spindle``: ``None`` (default) is the template above, the Möbius transform of iid noise
    at τ = 0. A :class:`SpindleTemplate` of :func:`pipeline_spindle`, scaled to the measured
    games (``template.scaled(Δ̄)``, ``Δ̄ = E_x|v(x_N) − v(x_∅)|``), replaces it by what the
    pipeline that measured ``A^±`` (``q`` box, threshold) does to noise: the model becomes
    ``A^+ = c⁺·d⁺ + T⁺(σ)``, ``A^− = −c⁻·d⁻ + T⁻(σ)`` with the template's expected increments
    ``T^±(σ)``, which are not linear in σ: σ is found by a search over the template's grid
    (16 points per interval, then a bounded scalar search), the decay weights are nonnegative
    projections. ``params`` then also has ``spindle="pipeline"``, ``rel_sigma_pos/neg`` (σ/Δ̄) and
    ``sigma_at_grid_edge``; ``sigma_pos``/``sigma_neg`` are the noise level σ in the units of
    ``v``, and ``spindle_pos``/``spindle_neg`` are ``T^±(σ̂)`` (an increment, mostly but not
    everywhere of the sign of its part). Measured on planted games (low-order truth plus iid
    noise σ_n on every ``v(x_S)``, q_ratio 0.02, τ = 0.03·Δ̄): σ̂/σ_n within 4% for
    σ_n/Δ̄ = 0.01–0.1 at n = 10 and within 6% for 0.015–0.2 at n = 8; below σ_n/Δ̄ ≈ 0.01 the
    ``q`` box absorbs the noise and σ is not identifiable (σ̂ anywhere from 0 to 1.4·σ_n).
    The Möbius template gives σ̂/σ_n = 0.00–0.25 on the same games.

    Args:
        a_pos, a_neg: measured ``A^(k),+ ≥ 0`` and ``A^(k),− ≤ 0`` for ``k = 1 … n``.
        n: number of players (checked against the length of ``a_pos``).
        max_residual: a relative residual above this is flagged ``poor_fit`` (the weights of a
            poor fit are not a decomposition of the data and must not be read as one).
        spindle: ``None`` (the Möbius template) or a :class:`SpindleTemplate` for ``n`` players.
    """
    ap, an, n = _measured_strengths(a_pos, a_neg, n, max_residual)
    check_option(decay_family, "decay_family", _DECAY_FAMILIES)
    unused = [name for name, given, used in (
        ("rate_bounds", rate_bounds is not None, decay is None and decay_family == "geometric"),
        ("max_peak", max_peak is not None, decay is None and decay_family == "log-quadratic")) if given and not used]
    if unused:
        why = "a given decay is not fitted" if decay is not None else f'decay_family="{decay_family}" does not use it'
        raise ValueError(f"{', '.join(unused)} given, but {why} (rate_bounds: the geometric family's rate; "
                         "max_peak: the log-quadratic's peak)")
    rate_bounds = (0.0, 10.0) if rate_bounds is None else rate_bounds
    scale = np.linalg.norm(np.concatenate([ap, -an])) or 1.0
    solve, fit_spindle, fine = _spindle_stage(ap, an, spindle, symmetric_spindle, scale)
    if decay is None:
        dpos, dneg, rate, shape_params = _fit_decay_family(solve, n, rate_bounds, decay_family, max_peak, fine)
    else:
        (dpos, dneg), rate, shape_params = _given_decay(decay, n), None, {}
    return _assemble_parts(ap, an, scale, dpos, dneg, fit_spindle(dpos, dneg), rate, shape_params, max_residual)


# --- the stages of disentangle: measured data, spindle solver, decay shapes, spindle fit, result
class _SpindleFit(NamedTuple):
    """The spindle stage of :func:`disentangle` for given decay shapes: weights and curves."""

    w: np.ndarray  # decay weights c⁺, c⁻ first (the Möbius solve also carries σ^± after them)
    spin_pos: np.ndarray  # (n,) the spindle part of A^+
    spin_neg: np.ndarray  # (n,) the spindle part of A^−
    fit_pos: np.ndarray  # (n,) decay + spindle: the model of A^+
    fit_neg: np.ndarray  # (n,) the model of A^−
    sigma_pos: float  # σ⁺ (Möbius: a weight; template: the noise level in the units of v)
    sigma_neg: float
    params: dict  # extra entries of DisentangleResult.params (the template's rel_sigma_pos/neg, …)


def _measured_strengths(a_pos, a_neg, n, max_residual) -> tuple[np.ndarray, np.ndarray, int]:
    """The checked inputs of :func:`disentangle`: ``A^±`` as float64 vectors and the player count."""
    if not (math.isfinite(max_residual) and max_residual > 0):
        raise ValueError(f"max_residual must be a finite number > 0, got {max_residual!r}")
    ap = np.asarray(a_pos, dtype=np.float64)
    an = np.asarray(a_neg, dtype=np.float64)
    if ap.ndim != 1 or ap.shape != an.shape:
        raise ValueError(f"a_pos and a_neg must be 1-D of equal length, got {ap.shape}, {an.shape}")
    n = ap.shape[0] if n is None else int(n)
    if ap.shape[0] != n:
        raise ValueError(f"a_pos has {ap.shape[0]} orders but n={n}")
    if not (np.all(np.isfinite(ap)) and np.all(np.isfinite(an))):
        raise ValueError("a_pos / a_neg contain non-finite values")
    return ap, an, n


def _spindle_stage(ap, an, spindle, symmetric: bool, scale):
    """``solve(dpos, dneg) -> (weights, residual)``, the inner solve of the decay fit,
    ``fit(dpos, dneg) -> _SpindleFit``, the final spindle fit, and ``fine(dpos, dneg) -> residual``
    (``None`` where ``solve`` is already exact) of :func:`disentangle` for the Möbius template
    (``spindle=None``) or a :class:`SpindleTemplate` of the same ``n``; a template's ``solve``
    takes σ on a grid, its ``fine`` searches σ continuously as ``fit`` does."""
    n = ap.shape[0]
    if spindle is None:
        return (*_mobius_stage(ap, an, symmetric, scale), None)
    if not isinstance(spindle, SpindleTemplate):
        raise ValueError(f"spindle must be a SpindleTemplate (theory.pipeline_spindle) or None, got {type(spindle).__name__}")
    if spindle.n != n:
        raise ValueError(f"spindle is a template for n={spindle.n} players, but n={n}")
    solve, refine = _template_solver(ap, an, spindle, symmetric, scale)

    def fit(dpos, dneg):
        w, spin_pos, spin_neg, sp, sn, _ = refine(dpos, dneg)
        top = float(spindle.sigma[-1])
        extra = dict(spindle="pipeline", rel_sigma_pos=sp / spindle.scale, rel_sigma_neg=sn / spindle.scale,
                     sigma_at_grid_edge=bool(max(sp, sn) >= top * (1 - 1e-9)))
        return _SpindleFit(w, spin_pos, spin_neg, w[0] * dpos + spin_pos, -w[1] * dneg + spin_neg, sp, sn, extra)

    return solve, fit, lambda dpos, dneg: refine(dpos, dneg)[5]


def _mobius_stage(ap, an, symmetric: bool, scale):
    """:func:`_spindle_stage` for the Möbius template ``s = spindle_curve(n, 1)``: the weights
    ``c⁺, c⁻, σ^±`` of the stacked ``(A^+, −A^−)`` by non-negative least squares (columns
    normalized, scipy ``nnls``), ``σ⁺ = σ⁻`` when ``symmetric``."""
    n = ap.shape[0]
    y = np.concatenate([ap, -an])
    zero = np.zeros(n)
    spin = np.asarray(spindle_curve(n, np.float64(1.0))[0])
    spin_cols = [np.concatenate([spin, spin])] if symmetric else [
        np.concatenate([spin, zero]), np.concatenate([zero, spin])]

    def solve(dpos, dneg):
        cols = [np.concatenate([dpos, zero]), np.concatenate([zero, dneg])] + spin_cols
        b = np.stack(cols, axis=1)
        norms = np.linalg.norm(b, axis=0)
        norms = np.where(norms > 0, norms, 1)
        w, res = scipy.optimize.nnls(b / norms, y / scale)
        return w / norms * scale, res

    def fit(dpos, dneg):
        w, _ = solve(dpos, dneg)
        sp, sn = (w[2], w[2]) if symmetric else (w[2], w[3])
        spin_pos, spin_neg = sp * spin, -sn * spin
        return _SpindleFit(w, spin_pos, spin_neg, w[0] * dpos + spin_pos, -(w[1] * dneg + sn * spin), sp, sn, {})

    return solve, fit


def _fit_decay_family(solve, n: int, rate_bounds, decay_family: _DecayFamily, max_peak, fine=None):
    """The decay stage of :func:`disentangle` without a given ``decay``: the shapes ``d^±`` of
    ``decay_family`` that minimize ``solve``'s residual. Returns ``(dpos, dneg, rate, shape_params)``
    (``rate``: the geometric family's, else ``None``; ``shape_params``: the log-quadratic's)."""
    lo, hi = map(float, rate_bounds)
    if not 0 <= lo < hi:
        raise ValueError(f"rate_bounds must satisfy 0 <= lo < hi, got {rate_bounds}")
    km = np.arange(n, dtype=np.float64)  # k − 1
    peak = max(2.0, n / 3) if max_peak is None else float(max_peak)
    if not peak >= 1:
        raise ValueError(f"max_peak must be ≥ 1 (an order), got {max_peak!r}")

    def shape(r, c):
        # the peak 1 − r/2c of a rising start (r < 0) is held at or below max_peak
        r = max(r, -2.0 * c * (peak - 1.0))
        return np.exp(-r * km - c * km * km)

    if decay_family == "geometric":
        rate = _fit_geometric_rate(solve, shape, lo, hi, fine)
        d = shape(rate, 0.0)
        return d, d, rate, {}
    return _fit_log_quadratic(solve, shape, hi, peak)


def _fit_geometric_rate(solve, shape, lo: float, hi: float, fine=None) -> float:
    """The rate of the geometric decay ``shape(r, 0)`` (one shape for both signs) on ``[lo, hi]``:
    a grid of 201 rates scored by ``solve``, then a bounded scalar search between the best one's
    neighbours. With ``fine`` (a template, whose ``solve`` takes σ on a grid) the best three grid
    rates are scored again and the search runs on ``fine``'s residual, σ searched continuously."""

    def residual(r):
        d = shape(r, 0.0)
        return solve(d, d)[1]

    rates = np.linspace(lo, hi, 201)
    coarse = [residual(r) for r in rates]
    if fine is None:
        obj, i = residual, int(np.argmin(coarse))
    else:
        def obj(r):
            d = shape(r, 0.0)
            return fine(d, d)

        near = np.argsort(coarse)[:3]
        i = int(near[np.argmin([obj(rates[j]) for j in near])])
    res = scipy.optimize.minimize_scalar(
        obj, bounds=(rates[max(i - 1, 0)], rates[min(i + 1, 200)]), method="bounded", options={"xatol": 1e-10}
    )
    return float(res.x) if res.fun <= obj(rates[i]) else float(rates[i])


def _fit_log_quadratic(solve, shape, hi: float, peak: float):
    """The log-quadratic decay ``log d_k = −r(k−1) − c(k−1)²``, ``c ≥ 0`` (geometric at ``c = 0``,
    peaking at ``k = 1 − r/2c`` for ``r < 0``): one shape for both signs on a grid, then both
    shapes refined by Nelder–Mead. Returns ``(dpos, dneg, None, shape_params)``."""
    grid = [(r, c) for r in np.linspace(-hi, hi, 41) for c in (0.0, *np.geomspace(1e-3, 5.0, 24))]
    r0, c0 = min(grid, key=lambda rc: solve(shape(*rc), shape(*rc))[1])

    def obj4(p):
        return solve(shape(p[0], p[1] ** 2), shape(p[2], p[3] ** 2))[1]  # c = p² ≥ 0

    x0 = np.array([r0, np.sqrt(c0), r0, np.sqrt(c0)])
    res = scipy.optimize.minimize(obj4, x0, method="Nelder-Mead",
                                  options={"xatol": 1e-6, "fatol": 1e-12, "maxiter": 4000})
    p = res.x if res.fun <= obj4(x0) else x0
    dpos, dneg = shape(p[0], p[1] ** 2), shape(p[2], p[3] ** 2)
    rp, rn = (max(float(p[i]), -2.0 * float(p[i + 1] ** 2) * (peak - 1.0)) for i in (0, 2))
    shape_params = dict(rate_pos=rp, curvature_pos=float(p[1] ** 2), rate_neg=rn,
                        curvature_neg=float(p[3] ** 2), max_peak=peak)
    return dpos, dneg, None, shape_params


def _given_decay(decay, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The decay stage of :func:`disentangle` with a given ``decay``: ``(n,)`` for both signs or
    ``(2, n)`` for separate ``+``/``−`` shapes, as magnitudes."""
    d = np.asarray(decay, dtype=np.float64)
    if d.shape == (n,):
        return np.abs(d), np.abs(d)
    if d.shape == (2, n):
        return np.abs(d[0]), np.abs(d[1])
    raise ValueError(f"decay must have shape ({n},) or (2, {n}), got {d.shape}")


def _assemble_parts(ap, an, scale, dpos, dneg, fit: _SpindleFit, rate, shape_params: dict,
                    max_residual: float) -> DisentangleResult:
    """The :class:`DisentangleResult` of the fitted shapes and weights: the parts, ``params``
    and the relative residual of the stacked ``(A^+, A^−)`` (``poor_fit`` above ``max_residual``)."""
    w = fit.w
    resid = float(np.linalg.norm(np.concatenate([fit.fit_pos - ap, fit.fit_neg - an])) / scale)
    params = dict(decay_weight_pos=float(w[0]), decay_weight_neg=float(w[1]), sigma_pos=float(fit.sigma_pos),
                  sigma_neg=float(fit.sigma_neg), rate=rate, **shape_params, **fit.params)
    return DisentangleResult(w[0] * dpos, -w[1] * dneg, fit.spin_pos, fit.spin_neg, params, resid,
                             bool(resid > max_residual))


def _template_solver(ap, an, tpl: SpindleTemplate, symmetric: bool, scale: float):
    """``solve(dpos, dneg) -> (weights, residual)`` and ``refine(dpos, dneg) -> (weights, T⁺, T⁻, σ⁺, σ⁻,
    residual)`` of :func:`disentangle` with a
    :class:`SpindleTemplate`: for given decay shapes, the decay weights are nonnegative
    projections (closed form: the ± rows are disjoint) of the data less the template at σ, and σ
    is the best of a fine grid (16 points per template interval, the template is piecewise
    linear in σ); ``refine`` then searches σ continuously between the neighbouring grid points."""
    nodes = np.concatenate([[0.0], tpl.sigma])
    fine = np.unique(np.concatenate([np.linspace(a, b, 17) for a, b in zip(nodes[:-1], nodes[1:])]))
    tp, tn = tpl.curve(fine)  # (m, n)
    rp, rn = ap[None] - tp, -(an[None] - tn)  # the data less the spindle, ± rows (m, n)

    def errs(r, d):
        c = safe_divide_host(np.maximum(r @ d, 0), d @ d)
        return np.sum((r - c[:, None] * d) ** 2, axis=1), c

    def pick(dpos, dneg):
        ep, cp = errs(rp, dpos)
        en, cn = errs(rn, dneg)
        if symmetric:
            j = jp = jn = int(np.argmin(ep + en))
            e = ep[j] + en[j]
        else:
            jp, jn = int(np.argmin(ep)), int(np.argmin(en))
            e = ep[jp] + en[jn]
        return np.array([cp[jp], cn[jn], fine[jp], fine[jn]]), math.sqrt(max(e, 0.0)) / scale, (jp, jn)

    def solve(dpos, dneg):
        w, res, _ = pick(dpos, dneg)
        return w, res

    def refine(dpos, dneg):
        _, _, (jp, jn) = pick(dpos, dneg)

        def err(sp, sn):
            p, _ = tpl.curve(sp)
            _, m = tpl.curve(sn)
            e1, c1 = errs((ap - p)[None], dpos)
            e2, c2 = errs((-(an - m))[None], dneg)
            return float(e1[0] + e2[0]), float(c1[0]), float(c2[0]), p, m

        def around(j):
            return fine[max(j - 1, 0)], fine[min(j + 1, len(fine) - 1)]

        if symmetric:
            lo, hi = around(jp)
            r = scipy.optimize.minimize_scalar(lambda s: err(s, s)[0], bounds=(lo, hi), method="bounded",
                                               options={"xatol": 1e-6 * max(hi, 1e-300)})
            sp = sn = float(r.x) if r.fun <= err(fine[jp], fine[jp])[0] else float(fine[jp])
        else:
            out = []
            for j, side in ((jp, 0), (jn, 1)):
                lo, hi = around(j)
                f = (lambda s, side=side: err(s, fine[jn])[0] if side == 0 else err(fine[jp], s)[0])
                r = scipy.optimize.minimize_scalar(f, bounds=(lo, hi), method="bounded",
                                                   options={"xatol": 1e-6 * max(hi, 1e-300)})
                out.append(float(r.x) if r.fun <= f(fine[j]) else float(fine[j]))
            sp, sn = out
        e, c1, c2, p, m = err(sp, sn)
        return np.array([c1, c2]), p, m, sp, sn, math.sqrt(max(e, 0.0)) / scale

    return solve, refine


# --- sparsity bound [R24] -------------------------------------------------------------------
class SparsityBound(NamedTuple):
    """Result of :func:`sparsity_bound`; leading axes = samples, order k at index k−1."""

    bound: np.ndarray  # (..., n) [R24]-form bound on R^(k) (inf where the assumptions fail)
    bound_identity: np.ndarray  # (..., n) bound from the exact identity (always holds)
    count: np.ndarray  # (..., n) actual R^(k)
    eta: np.ndarray  # (..., n) η^(k) = Σ_{|S|=k} I(S) / Σ_{|S|=k} |I(S)|
    u_bar: np.ndarray  # (..., n+1) ū^(m), m = 0 … n (ū^(0) = 0)
    p: np.ndarray  # (...) smallest p with ū^(m') ≥ (m'/m)^p ū^(m) for all 1 ≤ m' ≤ m
    assumptions_hold: np.ndarray  # (...) bool: ū^(m) > 0 for all m ≥ 1
    tightness: np.ndarray  # (..., n) bound / max(R^(k), 1)


def sparsity_bound(
    v: Float[ArrayLike, "*batch 2**n"],
    interactions: Float[ArrayLike, "*batch 2**n"] | None = None,
    tau: ArrayLike | None = None,
    *,
    delta: float = 0.0,
) -> SparsityBound:
    r"""Upper bound on the number ``R^(k)`` of salient AND interactions of each order ([R24], docs/math.md §8).

    [R24]'s bound has the form ``R^(k) ≤ ū^(1)/(τ|η^(k)|)·|poly_k(n)|``. Its proof rests on
    (i) ``τ·R^(k) ≤ Σ_{|S|=k}|I(S)| = |Σ_{|S|=k} I(S)| / |η^(k)|`` and (ii) expressing
    ``Σ_{|S|=k} I(S)`` through the mean outputs ``ū^(m)``; we use the exact identity
    ``Σ_{|S|=k} I(S) = C(n,k)·Σ_{m=0}^{k} (−1)^{k−m} C(k,m) ū^(m)`` (k ≥ 1, AND interactions
    of ``v``). The paper's constants ``λ^(k), a^(k)_j`` are not available to us, so:

    - ``bound_identity`` = ``C(n,k)|Σ_m (−1)^{k−m}C(k,m)ū^(m)| / (τ|η^(k)|)``: holds for every
      game (no assumption), i.e. ``Σ_{|S|=k}|I(S)|/τ``, which it is where ``η^(k) = 0`` (the
      order's interactions cancel or vanish, and the quotient is 0/0).
    - ``bound`` (the [R24]-form, conservative): with Assumption 3 (polynomial decrease,
      ``ū^(m) ≤ m^p ū^(1)``) and ``ū^(m) ≥ 0``, the alternating sum is at most the larger of
      its two same-sign groups, giving ``ū^(1)/(τ|η^(k)|)·C(n,k)·max_{parity}Σ_{m≥1, k−m ≡ par}
      C(k,m) m^{p+δ}``. ``p`` is estimated per sample as the smallest exponent for which
      Assumption 3 holds on the data (so it does hold); ``δ ≥ 0`` loosens it (default 0).
      Where some ``ū^(m) ≤ 0`` (m ≥ 1) the assumptions fail and ``bound`` is ``inf``; where
      ``η^(k) = 0`` the form is vacuous and ``bound`` is ``inf`` at that order.
      Assumption 1 (no interactions above order M) is not needed for this form.

    Args:
        v: outputs on all masks, shape ``(..., 2**n)`` (leading axes: samples).
        interactions: AND interactions of ``v`` (default :func:`jinter.mobius` of ``v``).
        tau: salience threshold (> 0), scalar or one per sample.
        delta: extra exponent δ ≥ 0.

    Raises:
        ValueError: τ missing or ≤ 0, δ < 0, shapes that disagree.
    """
    from jinter.transforms import mobius

    vv = np.asarray(_as_float(v), dtype=np.float64)
    n = num_players(vv, what="v")
    if n < 1:
        raise ValueError("sparsity_bound needs n >= 1 players")
    check_finite(vv, "v")
    if tau is None:
        raise ValueError("tau must be > 0 (a salience threshold), got None")
    check_tau(tau)
    if np.any(np.asarray(tau) <= 0) or not np.all(np.isfinite(np.asarray(tau, dtype=np.float64))):
        raise ValueError(f"tau must be > 0 and finite (a salience threshold), got {tau}")
    delta = check_real(delta, "delta", least=0.0)
    inter = mobius(vv) if interactions is None else _as_float(interactions)
    if inter.shape != vv.shape:
        raise ValueError(f"interactions shape {inter.shape} != v shape {vv.shape}")
    tau_a = np.asarray(tau, dtype=np.float64)
    count = np.asarray(salient_counts(inter, None, tau_a))
    pos, neg = signed_order_strength(inter, None, 0.0)
    pos, neg = np.asarray(pos), np.asarray(neg)
    absum = pos - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        eta = np.where(absum > 0, (pos + neg) / np.where(absum > 0, absum, 1), 0.0)
    binom_n = _binom(n)
    u = np.asarray(order_sums(vv - vv[..., :1])) / binom_n  # ū^(m), m = 1..n
    u_bar = np.concatenate([np.zeros(u.shape[:-1] + (1,)), u], axis=-1)
    tau_b = tau_a[..., None]
    # exact identity: Σ_{|S|=k} I(S) = C(n,k) Σ_m (-1)^{k-m} C(k,m) ū^(m)
    diff = np.stack([sum((-1) ** (k - m) * math.comb(k, m) * u_bar[..., m] for m in range(k + 1))
                     for k in range(1, n + 1)], axis=-1)
    # |Σ I| / |η| = Σ|I| where η ≠ 0; Σ|I|/τ itself also where the order's interactions cancel (η = 0)
    # or vanish, where the quotient is 0/0
    bound_identity = np.where(np.abs(eta) > 0, binom_n * np.abs(diff) / np.where(eta != 0, np.abs(eta), 1.0),
                              absum) / tau_b
    # p: smallest exponent with ū^(m') >= (m'/m)^p ū^(m) for 1 <= m' < m <= n
    holds = np.all(u > 0, axis=-1)
    uu = np.where(u > 0, u, 1.0)
    p = np.zeros(u.shape[:-1])
    for m in range(2, n + 1):
        for mp in range(1, m):
            p = np.maximum(p, np.log(uu[..., m - 1] / uu[..., mp - 1]) / np.log(m / mp))
    # envelope ū^(m) <= m^(p+δ) ū^(1); |alternating sum| <= larger same-sign group
    m_pow = np.arange(1, n + 1, dtype=np.float64) ** (p + delta)[..., None]  # (..., n): m = 1..n
    poly = np.zeros(u.shape[:-1] + (n,))
    for k in range(1, n + 1):
        groups = [sum(math.comb(k, m) * m_pow[..., m - 1] for m in range(1, k + 1) if (k - m) % 2 == par)
                  for par in (0, 1)]
        poly[..., k - 1] = np.maximum(groups[0], groups[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(np.abs(eta) > 0, u[..., :1] * binom_n * poly / (tau_b * np.abs(eta)), np.inf)
    bound = np.where(holds[..., None], bound, np.inf)
    tight = bound / np.maximum(count, 1)
    return SparsityBound(bound, bound_identity, count, eta, u_bar, p, holds, tight)
