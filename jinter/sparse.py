r"""Sparse AND-OR interactions for many players (n = 32–1024) from a budget of model calls.

The exact path (:func:`jinter.and_or`) needs all ``2**n`` masked outputs. Here the game is
only queried on ``budget`` random coalitions and fitted by a sparse surrogate

.. math::

    \hat v(S) = b + \sum_{T \in \mathcal A} I_{and}(T)\,[T \subseteq S]
                  + \sum_{T \in \mathcal O} I_{or}(T)\,[T \cap S \neq \emptyset],

the AND-OR form of [D24] eq. (11) / [C24] restricted to a discovered support, with the same
sparsity objective ``Σ |I_and(T)| + |I_or(T)|`` as :func:`jinter.and_or` (as an ℓ1 penalty).

Method (:func:`sparse_and_or`):

1. **Sampling.** Coalitions are drawn with every player present with probability
   ``p``, one ``p`` per row cycling over ``keep_rates`` (default 0.1, 0.2, …, 0.9); a row equal
   to an earlier one is drawn again at its ``p``, so every call is a new mask (at small ``n``,
   repeats that cannot be replaced are left out and fewer calls are spent). A low ``p``
   exposes OR terms (``[T∩S≠∅]`` varies only when few players are present), a high ``p``
   high-order AND terms. A share ``holdout`` of the budget is set aside (same design, so the
   held-out R² covers all keep rates); of the rest, one fifth validates the model selection.
2. **Support discovery, hierarchical** (orthogonal matching pursuit over a growing pool). The
   pool starts with the ``n`` single players; every selected term ``T`` of order ``k <
   max_order`` adds its children ``T ∪ {j}`` of the same type (a single player, both types).
   A child's inner product with the residual ``r`` costs one matrix product for all ``j``:
   ``[T∪{j} ⊆ S] = f_T(S)·s_j`` gives ``Sᵀ(f_T ⊙ r)``, and ``[T∪{j} ∩ S ≠ ∅] = 1 − ā_T(S)(1 −
   s_j)`` gives ``−(1−S)ᵀ(ā_T ⊙ r)``, so a round costs ``O(m·n·#terms)``: linear in budget × n.
   The strongest candidates (normalized correlation) join, the support is refitted by least
   squares (the centered Gram of the support is kept and extended, so a refit is a ``k×k``
   solve, not a pass over the rows), and discovery stops when the validation error stops
   improving. This exploits the hierarchy of interactions (a strong order-k term leaves a
   trace on its order-(k−1) parts under random masking), as in hierarchical screening for
   sparse Möbius / Fourier recovery (SPEX, Kang et al. 2025; ProxySPEX, Butler et al. 2025,
   who observe the same hierarchy in trained models).
3. **Selection: ℓ1 fit and pruning**, all against one floor: the best validation R² seen
   (discovery rounds, lasso points, the full fit) minus ``r2_slack``. The discovery is cut at
   its sparsest round above that floor; its terms and their alternatives (the other type on
   the same players, every term one player smaller), then the terms of the later rounds, form
   a dictionary (so a term found late, e.g. an order-4 OR worth the last 0.001 of R², is a column
   rather than left to order-3 stand-ins), on which a lasso path
   ``min ½‖y − b − Xw‖²/m + λ‖w‖₁`` is computed (unweighted ℓ1 on the raw coefficients, i.e.
   the ``and_or`` objective; FISTA with restarts on the Gram matrix, each point on a working
   set of its columns checked by the optimality conditions on all of them), each point
   debiased by least squares on its support; the path stops once three new supports in a row
   have together raised the validation R² by no more than ``r2_slack/10``, or at a perfect fit
   (the later, mostly larger supports are not computed; their columns come last in the order of
   preference). The sparsest candidate above the floor (lasso points, discovery rounds, the
   full dictionary) is pruned: columns that are linear combinations of preferred ones (earlier
   on the lasso path, i.e. cheaper in ℓ1) are dropped, e.g. one of ``[a], [b], [a∨b], [a∧b]``
   since ``[a∨b] = [a] + [b] − [a∧b]``; then backward elimination drops the term whose removal
   raises the fit residual least while the validation R² stays above the floor. So the
   selected model's validation R² is within ``r2_slack`` of the best model seen; it is then
   refitted on the fitting and validation rows together. Among representations of the same function the ℓ1 penalty prefers the one with
   the least ``Σ|I|``, as ``and_or`` does. A single player's AND and OR terms are the same
   feature: it is reported as AND (as in ``and_or``).

   Cost: discovery ``O(m·n·#terms)`` per round (plus ``O(m·#terms)`` per new term for the
   Gram); selection ``O(m·K²)`` for the dictionary's Gram (``K`` columns), ``O(lasso_iters·W²)``
   per lasso point (``W`` columns in its working set) and ``O(|support|³)`` per debiasing.
   ``r2_slack`` sets the trade-off: the default keeps the model within 0.001 of the best R²,
   which on dense games (many small terms, e.g. trained networks) means many terms; a larger
   ``r2_slack`` gives fewer terms at a lower R².

   Threads: the products and the lasso run in numpy's BLAS, the Cholesky factorizations,
   triangular solves and Lanczos in scipy's; where the wheels ship two separate copies of
   OpenBLAS, scipy's is held to one thread during steps 2–3 (``jinter._blas.one_pool``),
   which made the fits of ``benchmarks/bench_sparse.py`` 1.2–2.9× faster on 2 cores, with the
   same records and held-out R² to 6 digits.

Scale: the fit runs on the values shifted by their median and divided by a power of two at
least their spread (exact in binary floating point), so a game times ``1e-160`` or ``1e150``
gives the same terms times that factor and the same held-out R².

**Exact path.** When ``budget ≥ 2**n`` (and ``n ≤ exact_max_n``, with no ``max_order < n`` or
``max_terms``, which only the sampled fit honours), all masks are evaluated (``2**n`` calls)
and :func:`jinter.and_or` gives the certified optimum, with its noise term ``q`` (``q_ratio``,
0.02 by default as in ``and_or``); ``records`` then lists its terms above ``1e-9·max|I|``
(``predict`` reproduces ``v + q`` up to the terms left out: each below ``1e-9·max|I|``, together
about ``1e-8·max|I|`` on a user trial's games at n = 6, where ``and_or`` itself matches to 1e-15)
and ``faithfulness`` is the R² of ``predict`` against ``v`` on all masks (there is no unseen
mask left to hold out). With ``q_ratio > 0`` that R² is below 1 by what ``q`` absorbs, which on
a nearly constant game can be most of its variance: pass ``q_ratio=0`` for a surrogate that
reproduces ``v`` (to the same ``1e-9`` cut), or ``exact=False`` for the sampled method.

Where it can fail: terms whose lower-order parts leave no trace (e.g. a pure parity-like
interaction with cancelling sub-effects) are never proposed; terms of very high order are
rarely active under random masking (an AND of order k is on with probability ``p^k``) and need
large budgets; dense games (many comparable terms, as random games) are not sparse and give a
low held-out R²; AND/OR terms on the same few players are nearly collinear, so at small budgets
the split between them can differ from the exact optimum even when ``predict`` is accurate; an
AND and an OR of equal weight on the same players (``AND{0,1,2} + OR{0,1,2}``, a function of how
many of them are present) leaves, once the single players are fitted, a residual almost
uncorrelated with each of its pairs and with its triple, so the pursuit can stop at the single
players (held-out R² 0.87 on such a game at n = 64 for some seeds, 1.0 for others): the held-out
R² shows the miss. The sampled masks are distinct (a repeat is drawn again, or left out when a
keep rate has too few likely masks at small n), so the held-out ones are masks the fit never saw.

Example:
    >>> import numpy as np, jinter
    >>> def game(S):                      # 3 + 2·AND{0,1} − OR{2,3,4} on n = 40 players
    ...     return 3 + 2.0 * (S[:, 0] & S[:, 1]) - 1.5 * S[:, 2:5].any(axis=1)
    >>> res = jinter.sparse_and_or(game, 40, budget=800)
    >>> [(r.type, r.players, round(r.value, 6)) for r in res.records]
    [('and', (0, 1), 2.0), ('or', (2, 3, 4), -1.5)]
    >>> round(res.bias, 6), res.calls, res.faithfulness > 0.999
    (3.0, 800, True)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jaxtyping import Array, ArrayLike, Bool, Float

from jinter._blas import one_pool
from jinter._budget import MemoryBudgetError, check_budget, format_bytes
from jinter._budget import memory_budget as _memory_budget
from jinter._checks import check_bool, check_finite, check_int, check_ints, check_real
from jinter._host import reraise_host_errors
from jinter._records import InteractionRecord
from jinter.decomposition import and_or
from jinter.masking import (
    NonFiniteOutputError,
    _adapt_model,
    _BaselineName,
    _check_players,
    _chunk_size_option,
    _input_array,
    _prepare_reward,
    _resolve_baseline,
    _reward_values,
)

__all__ = ["SparseAndOrResult", "sparse_and_or", "masked_value_fn"]

_KEEP_RATES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_MAX_CHUNK = 4096  # masked inputs per model call in masked_value_fn
_EXACT_CUTOFF = 1e-9  # exact path: terms above this share of max|I| are records
_LIVE_FACTOR = 4  # bytes live per masked input element (input, blend, activations; a guess)


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SparseAndOrResult:
    """Result of :func:`sparse_and_or`.

    Attributes:
        records: the interactions, strongest ``|value|`` first, a tuple of
            :class:`InteractionRecord` (``mask`` a Python int, so any ``n``).
        bias: the constant ``b`` of the surrogate (``v(∅)`` up to the fit).
        n: number of players.
        faithfulness: R² of :meth:`predict` on held-out masks drawn at every keep rate
            (exact path: on all ``2**n`` masks).
        calls: model calls spent (rows passed to ``value_fn``, distinct masks), ≤ ``budget``.
        holdout_calls: how many of them were held out for ``faithfulness``.
        exact: True when the exact path (all masks + :func:`jinter.and_or`) was taken.
        objective: ``Σ |value|`` over the records (the ``and_or`` sparsity objective).
        keep_rates: the keep rates of the sampling design.
    """

    records: tuple[InteractionRecord, ...]
    bias: float
    n: int
    faithfulness: float
    calls: int
    holdout_calls: int
    exact: bool
    objective: float
    keep_rates: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", tuple(self.records))  # frozen: predict and objective cannot drift apart
        n = check_int(self.n, "n", 0)
        for i, r in enumerate(self.records):
            _check_record(r, n, f"records[{i}]")
        check_real(self.bias, "bias")  # finite

    def predict(self, masks: Bool[ArrayLike, "m n"]) -> np.ndarray:
        """Surrogate ``b + Σ I_and(T)[T ⊆ S] + Σ I_or(T)[T ∩ S ≠ ∅]`` on boolean rows ``(m, n)``."""
        s = _check_masks(masks, self.n, "masks")
        out = np.full(s.shape[0], self.bias, dtype=np.float64)
        for r in self.records:
            cols = s[:, list(r.players)]
            out += r.value * (cols.all(axis=1) if r.type == "and" else cols.any(axis=1))
        return out

    def __len__(self) -> int:
        return len(self.records)


def _check_record(r: Any, n: int, what: str) -> None:
    """A record the surrogate can evaluate: an :class:`InteractionRecord` of type "and"/"or"
    over distinct players in ``[0, n)``, ascending, with the matching ``mask`` and ``order`` and
    a finite value (a rebuilt result must not predict NaN or read an unknown type as OR)."""
    if not isinstance(r, InteractionRecord):
        raise TypeError(f"{what} must be an InteractionRecord, got {type(r).__name__}")
    if r.type not in ("and", "or"):
        raise ValueError(f"{what} has type {r.type!r}; an interaction is 'and' or 'or'")
    players = check_ints(r.players, f"{what}.players", 0) if len(r.players) else ()
    if not players or any(p >= n for p in players) or list(players) != sorted(set(players)):
        raise ValueError(f"{what}.players must be distinct ascending player indices in [0, {n}), got {r.players!r}")
    if r.mask != sum(1 << p for p in players) or r.order != len(players):
        raise ValueError(f"{what}: mask {r.mask!r} / order {r.order!r} do not match its players {players}")
    check_real(r.value, f"{what}.value")  # a finite real


def _check_masks(masks: ArrayLike, n: int, what: str) -> np.ndarray:
    try:
        s = np.asarray(masks)
    except ValueError as e:  # ragged rows
        raise ValueError(f"{what} must be boolean rows of shape (m, n={n}), got rows of unequal length ({e})") from e
    if s.ndim != 2 or s.shape[1] != n:
        raise ValueError(f"{what} must be boolean rows of shape (m, n={n}), got shape {s.shape}")
    if s.dtype != np.bool_:
        if not np.issubdtype(s.dtype, np.integer):
            raise TypeError(f"{what} must be boolean (True = player present), got dtype {s.dtype}")
        if not np.isin(s, (0, 1)).all():
            raise ValueError(f"{what} must be boolean (True = player present); its {s.dtype} entries hold values "
                             f"other than 0 and 1 (e.g. {s[~np.isin(s, (0, 1))].flat[0]})")
        s = s.astype(bool)
    return s


# --------------------------------------------------------------------------------------------
# Calling the game
# --------------------------------------------------------------------------------------------


def _query(value_fn: Callable, masks: np.ndarray, offset: int) -> np.ndarray:
    """``value_fn(masks)`` checked: shape ``(m,)``, real, finite (naming the first bad row)."""
    m = masks.shape[0]
    try:
        out = value_fn(masks.copy())  # a copy: a value_fn that edits its input cannot change the design
    except Exception as e:
        e.add_note(f"(raised by value_fn on a batch of {m} masks of shape {masks.shape}, rows {offset}–{offset + m - 1})")
        raise
    out = np.asarray(out)
    if out.shape != (m,):
        raise ValueError(
            f"value_fn returned shape {out.shape} for {m} masks of shape {masks.shape}; expected ({m},), "
            "one value per mask row"
        )
    real = jnp.issubdtype(out.dtype, jnp.floating) or jnp.issubdtype(out.dtype, jnp.integer)  # bfloat16 too
    if not (real or out.dtype == np.bool_):
        raise TypeError(f"value_fn must return real numbers, got dtype {out.dtype}")
    out = out.astype(np.float64)
    check_finite(out, "value_fn's output on this batch", masks=masks, offset=offset, index_name="mask row",
                 error=NonFiniteOutputError)
    return out


def _evaluate(value_fn, masks: np.ndarray, batch_size: int, progress: bool, desc: str) -> np.ndarray:
    starts = range(0, masks.shape[0], batch_size)
    if progress and len(starts) > 1:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch")
    return np.concatenate([_query(value_fn, masks[a : a + batch_size], a) for a in starts]) if len(starts) else np.zeros(0)


def _repeats(s: np.ndarray) -> np.ndarray:
    """Rows equal to an earlier row (boolean per row)."""
    keys = np.ascontiguousarray(np.packbits(s, axis=1))
    keys = keys.view(np.dtype((np.void, keys.shape[1]))).reshape(-1)
    rep = np.ones(len(s), dtype=bool)
    rep[np.unique(keys, return_index=True)[1]] = False
    return rep


def _draw(rng: np.random.Generator, m: int, n: int, keep_rates: np.ndarray,
          rounds: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``m`` masks, row ``i`` keeping each player with probability ``keep_rates[i % k]`` (rates
    shuffled over the rows); a row equal to an earlier one is drawn again at its rate (up to
    ``rounds`` times), so no call is spent twice on one mask and the held-out rows (the first
    ones) are masks the fit never saw, unless a keep rate has too few likely masks at small n.
    Returns the masks and the rows that still repeat an earlier one (:func:`_drop_repeats`)."""
    p = keep_rates[np.arange(m) % keep_rates.size]
    rng.shuffle(p)
    s = rng.random((m, n)) < p[:, None]
    rep = _repeats(s)
    for _ in range(rounds):
        if not rep.any():
            break
        s[rep] = rng.random((int(rep.sum()), n)) < p[rep, None]
        rep = _repeats(s)
    return s, rep


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


def _feature(s: np.ndarray, kind: str, players: tuple[int, ...]) -> np.ndarray:
    cols = s[:, list(players)]
    return (cols.all(axis=1) if kind == "and" else cols.any(axis=1)).astype(np.float64)


def _features(s: np.ndarray, terms) -> np.ndarray:
    return np.stack([_feature(s, *t) for t in terms], axis=1) if terms else np.zeros((s.shape[0], 0))


def _solve_gram(g: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``w`` of the centered normal equations ``G w = c`` with a ridge of ``1e-10·mean diag``
    (collinear columns, e.g. ``[a∨b]``, ``[a]``, ``[b]``, ``[a∧b]``, get a tiny-norm split
    instead of a singular solve)."""
    if g.shape[0] == 0:
        return np.zeros(0)
    g = g.copy()
    ridge = 1e-10 * max(float(np.trace(g)) / g.shape[0], 1e-300)
    g[np.diag_indices_from(g)] += ridge
    try:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(g), c)
    except np.linalg.LinAlgError:  # rounding made the ridged Gram indefinite (exact collinearity)
        return np.linalg.lstsq(g, c, rcond=None)[0]


def _lstsq(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Intercept and coefficients of least squares, by the centered normal equations
    (:func:`_solve_gram`)."""
    if x.shape[1] == 0:
        return float(np.mean(y)), np.zeros(0)
    mx, my = x.mean(axis=0), y.mean()
    xc = x - mx
    w = _solve_gram(xc.T @ xc, xc.T @ (y - my))
    return float(my - mx @ w), w


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    """``1 − Σ(y − pred)² / Σ(y − ȳ)²``, computed on ``y``, ``pred`` divided by ``max|y|`` (no
    overflow or underflow at any scale). A constant ``y`` (spread ≤ 1e-12 of its magnitude):
    1 if ``pred`` matches it to that accuracy, else 0."""
    scale = float(np.max(np.abs(y))) if y.size else 0.0
    if not np.isfinite(scale):
        raise ValueError("R² of non-finite values")
    if scale == 0.0:
        return 1.0 if not np.any(pred) else 0.0
    y, pred = y / scale, pred / scale
    ss = float(np.sum((y - y.mean()) ** 2))
    res = float(np.sum((y - pred) ** 2))
    if ss <= 1e-24 * y.size:
        return 1.0 if res <= 1e-24 * y.size else 0.0
    return 1.0 - res / ss


class _Design:
    """Centered design of a set of terms on the fit rows, its Gram ``X̄ᵀX̄`` and ``X̄ᵀȳ``, and the
    raw features on the validation rows: every least-squares fit of a subset of the columns is
    then a ``k×k`` solve (no pass over the rows). Columns can be appended (discovery)."""

    def __init__(self, s_fit, y_fit, s_val, capacity: int):
        self.s_fit, self.s_val = s_fit, s_val
        self.m = s_fit.shape[0]
        self.ybar = float(y_fit.mean())
        self.yc = y_fit - self.ybar
        self.raw = np.zeros((self.m, capacity))  # 0/1 features on the fit rows
        self.xc = np.zeros((self.m, capacity))  # centered
        self.mean = np.zeros(capacity)
        self.xv = np.zeros((s_val.shape[0], capacity))
        self.g = np.zeros((capacity, capacity))
        self.c = np.zeros(capacity)
        self.k = 0
        self.terms: list[tuple[str, tuple[int, ...]]] = []

    def add(self, terms) -> None:
        a, b = self.k, self.k + len(terms)
        if b > self.raw.shape[1]:  # grow (amortized doubling)
            cap = max(b, 2 * self.raw.shape[1])
            for name in ("raw", "xc", "xv"):
                old = getattr(self, name)
                new = np.zeros((old.shape[0], cap))
                new[:, :a] = old[:, :a]
                setattr(self, name, new)
            g = np.zeros((cap, cap))
            g[:a, :a] = self.g[:a, :a]
            self.g = g
            self.mean = np.concatenate([self.mean[:a], np.zeros(cap - a)])
            self.c = np.concatenate([self.c[:a], np.zeros(cap - a)])
        new = _features(self.s_fit, terms)
        self.raw[:, a:b] = new
        self.mean[a:b] = new.mean(axis=0)
        zc = new - self.mean[a:b]
        self.xc[:, a:b] = zc
        cross = self.xc[:, :a].T @ zc
        self.g[:a, a:b] = cross
        self.g[a:b, :a] = cross.T
        self.g[a:b, a:b] = zc.T @ zc
        self.c[a:b] = zc.T @ self.yc
        self.xv[:, a:b] = _features(self.s_val, terms)
        self.k = b
        self.terms = self.terms[:a] + list(terms)

    def truncate(self, k: int) -> None:
        """Keep the first ``k`` columns (later ones are overwritten by :meth:`add`)."""
        self.k = k
        self.terms = self.terms[:k]

    def fit(self, idx=None) -> tuple[float, np.ndarray]:
        """Intercept and coefficients of least squares on the columns ``idx`` (default all)."""
        idx = np.arange(self.k) if idx is None else np.asarray(idx, dtype=np.intp)
        w = _solve_gram(self.g[np.ix_(idx, idx)], self.c[idx])
        return self.ybar - float(self.mean[idx] @ w), w

    def val_r2(self, y_val, idx, b, w) -> float:
        """Validation R² of the fit ``(b, w)`` on the columns ``idx``."""
        idx = np.asarray(idx, dtype=np.intp)
        if 4 * idx.size < self.k:
            return _r2(y_val, b + self.xv[:, idx] @ w)
        full = np.zeros(self.k)  # many columns: one product with all of them beats copying them
        full[idx] = w
        return _r2(y_val, b + self.xv[:, : self.k] @ full)


def _top_eigenvalue(g: np.ndarray) -> float:
    """Largest eigenvalue of a symmetric PSD matrix (Lanczos beyond 200 columns), times 1.01:
    a safe Lipschitz constant for FISTA."""
    if g.shape[0] <= 200:
        return 1.01 * float(np.linalg.eigvalsh(g)[-1])
    import scipy.sparse.linalg

    v0 = np.ones(g.shape[0]) / np.sqrt(g.shape[0])  # deterministic start
    return 1.01 * float(scipy.sparse.linalg.eigsh(g, k=1, which="LA", v0=v0, tol=1e-8)[0][0])


def _fista(g: np.ndarray, c: np.ndarray, w: np.ndarray, lam: float, iters: int) -> tuple[np.ndarray, int]:
    """FISTA on ``½wᵀGw − cᵀw + λ‖w‖₁`` from ``w`` (Beck & Teboulle, SIAM J. Imaging Sci.
    2009) on the Jacobi-scaled problem (``w = Dv``, ``D = diag(G)^−½``: the penalty on ``vⱼ``
    is ``λ·Dⱼⱼ``, the same minimizer, a better-conditioned Gram), step ``1/L`` with ``L`` from
    :func:`_top_eigenvalue` (so it never diverges), the momentum restarted whenever it points
    uphill (``(z − w⁺)·(w⁺ − w) > 0``: O'Donoghue & Candès, Found. Comput. Math. 2015). Stops
    after ``iters`` iterations or once an iteration moves the scaled iterate ``v`` by less than
    1e-10 of its size.
    Returns the solution and the iterations run."""
    dg = np.diag(g)
    scale = 1 / np.sqrt(np.where(dg > 0, dg, 1.0))
    g = g * scale[:, None] * scale[None, :]
    lip = max(_top_eigenvalue(g), 1e-300)
    g, c, w = g / lip, c * scale / lip, w / scale
    z, t, thr = w.copy(), 1.0, lam * scale / lip
    i = 0
    while i < iters:
        i += 1
        u = z - (g @ z - c)
        w_new = np.sign(u) * np.maximum(np.abs(u) - thr, 0.0)
        step = w_new - w
        if float((z - w_new) @ step) > 0:  # restart: a plain proximal gradient step from here
            t = 1.0
        t_new = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        z = w_new + (t - 1) / t_new * step
        w, t = w_new, t_new
        if np.max(np.abs(step), initial=0.0) <= 1e-10 * max(float(np.max(np.abs(w), initial=0.0)), 1e-300):
            break
    return w * scale, i


def _lasso_path(g: np.ndarray, c: np.ndarray, lams: np.ndarray, iters: int):
    """Lasso ``½wᵀGw − cᵀw + λ‖w‖₁`` (``G = X̄ᵀX̄/m``, ``c = X̄ᵀȳ/m``: the centered
    ``½‖ȳ − X̄w‖²/m + λ‖w‖₁``) along the decreasing ``lams``: yields the solution ``w`` (all
    columns) at each λ in turn (each warm-started from the last), so that a caller can stop.

    Each point is solved on a working set, as in working-set lasso solvers (Johnson &
    Guestrin, *Blitz*, ICML 2015; Massias et al., *Celer*, ICML 2018): the last support and
    the columns that violate the optimality conditions ``|cⱼ − (Gw)ⱼ| ≤ λ`` at the new λ;
    FISTA (:func:`_fista`) on that set, then the conditions are checked on every other
    column and the violators join the set until none is left or the point's ``iters``
    iterations (over all its rounds) are spent. A point then costs what its working set
    costs, not the whole dictionary, and the smaller Gram has a smaller Lipschitz constant
    (longer steps)."""
    k = g.shape[0]
    w = np.zeros(k)
    for lam in np.asarray(lams, dtype=np.float64):
        work, left, solved = w != 0, int(iters), False
        while left > 0 or not solved:
            on = np.flatnonzero(w)
            viol = ~work & (np.abs(c - g[:, on] @ w[on]) > lam * (1 + 1e-6))
            if solved and not viol.any():
                break
            work |= viol
            idx = np.flatnonzero(work)
            w_ws, used = _fista(g[np.ix_(idx, idx)], c[idx], w[idx], float(lam), left) if idx.size else (w[idx], 0)
            w = np.zeros(k)
            w[idx] = w_ws
            left, solved = left - max(used, 1), True
        yield w


def _count_sd(c: np.ndarray, m: int) -> np.ndarray:
    """``√m`` × the standard deviation of 0/1 features with ``c`` ones on ``m`` rows (≥ 1e-6)."""
    return np.sqrt(np.maximum(c - c**2 / m, 1e-12))


class _Columns:
    """A matrix of ``m`` rows to which blocks of columns are appended (amortized doubling);
    ``.x`` is the filled part."""

    def __init__(self, m: int):
        self._buf, self.k = np.zeros((m, 8)), 0

    def extend(self, cols: np.ndarray) -> None:
        a, b = self.k, self.k + cols.shape[1]
        if b > self._buf.shape[1]:
            buf = np.zeros((self._buf.shape[0], max(b, 2 * self._buf.shape[1])))
            buf[:, :a] = self._buf[:, :a]
            self._buf = buf
        self._buf[:, a:b] = cols
        self.k = b

    @property
    def x(self) -> np.ndarray:
        return self._buf[:, : self.k]


@dataclasses.dataclass
class _Pool:
    """The discovery's candidate pool: the fit rows ``sf`` (float), the scale ``sd1`` of the
    single players, the parents whose children are scored (their columns in the design; the
    AND parents' features ``f_T`` and the OR parents' ``ā_T = 1 − f_T`` kept side by side, so
    scoring reads them without a copy) with their children's scale ``(n, #parents)`` (a
    child's number of ones on the fit rows: it does not depend on the residual), and the
    terms already taken."""

    sf: np.ndarray
    sd1: np.ndarray
    sd_and: np.ndarray
    sd_or: np.ndarray
    f_and: _Columns
    a_or: _Columns
    par_and: list[int] = dataclasses.field(default_factory=list)
    par_or: list[int] = dataclasses.field(default_factory=list)
    seen: set[tuple[str, tuple[int, ...]]] = dataclasses.field(default_factory=set)

    @classmethod
    def of(cls, s_fit: np.ndarray) -> _Pool:
        """The pool of the single players on the fit rows ``s_fit`` (no parents yet)."""
        m, n = s_fit.shape
        sf = s_fit.astype(np.float64)
        return cls(sf, _count_sd(sf.sum(axis=0), m), np.zeros((n, 0)), np.zeros((n, 0)), _Columns(m), _Columns(m))


def _child_scores(pool: _Pool, d: _Design, r: np.ndarray) -> list[tuple[np.ndarray, str, list[tuple[int, ...]]]]:
    """``(scores (n, P), type, the P parents' players)`` per kind of parent: the normalized
    correlation of the residual ``r`` with every single player (one parent ``()``) and every
    child ``T ∪ {j}`` of each parent ``T`` (one matrix product per type, module docstring step
    2; ``Sᵀ(f_T ⊙ r) = (S ⊙ r)ᵀf_T``, whichever of ``S ⊙ r`` and ``F ⊙ r`` is smaller is
    formed)."""
    sf = pool.sf
    sr = sf * r[:, None] if sf.shape[1] <= pool.f_and.k + pool.a_or.k else None

    def weighted(x):  # Sᵀ(x ⊙ r), through the smaller m-row temporary
        return sr.T @ x if sr is not None else sf.T @ (x * r[:, None])

    chunks = [(np.abs(sf.T @ r)[:, None] / pool.sd1[:, None], "and", [()])]
    if pool.par_and:
        sc = np.abs(weighted(pool.f_and.x)) / pool.sd_and  # child [T∪{j} ⊆ S] = f_T·s_j
        chunks.append((sc, "and", [d.terms[i][1] for i in pool.par_and]))
    if pool.par_or:
        a = pool.a_or.x  # all of T absent
        sc = np.abs((r @ a)[None] - weighted(a)) / pool.sd_or  # child = 1 − ā_T(1 − s_j)
        chunks.append((sc, "or", [d.terms[i][1] for i in pool.par_or]))
    return chunks


_PER_PARENT = 8  # children of each parent that may join a round: its strongest ones


def _pick(chunks, seen, k: int) -> tuple[float, list[tuple[str, tuple[int, ...]]]]:
    """The terms that join this round, from the scores of :func:`_child_scores`: of the
    ``_PER_PARENT`` strongest children of each parent those that are new (not in ``seen``, not
    the parent itself; a single player is an AND term), up to ``k`` distinct ones, strongest
    first (ties in parent order), each scoring at least 0.7 of the strongest new one. Returns
    that strongest score (``-inf`` when no child is new) and the terms.

    The strongest children of all parents are ranked at once (one sort per kind of parent and
    one merge); only the ranked list's head is read, as far as the picks reach."""
    scores, where = [], []
    for c, (sc, _, parents) in enumerate(chunks):
        top = np.argsort(-sc, axis=0)[:_PER_PARENT].T  # (P, ≤8): per parent, strongest first
        p = np.broadcast_to(np.arange(len(parents))[:, None], top.shape)
        scores.append(sc[top, p].ravel())
        where.append(np.stack([np.full(top.size, c), top.ravel(), p.ravel()], axis=1))
    scores, where = np.concatenate(scores), np.concatenate(where)
    best, add, taken = -np.inf, [], set()
    for i in np.argsort(-scores, kind="stable").tolist():
        sc_ = float(scores[i])
        if len(add) >= k or sc_ < 0.7 * best:
            break
        c, j, p = where[i].tolist()
        _, kind, parents = chunks[c]
        t = parents[p]
        if j in t:
            continue
        key = (kind if t else "and", tuple(sorted(t + (j,))))
        if key in seen or key in taken:
            continue
        best = max(best, sc_)
        add.append(key)
        taken.add(key)
    return best, add


def _grow(pool: _Pool, d: _Design, first: int, max_order: int) -> None:
    """Take the design's columns from ``first`` on into the pool: each is seen, and each of
    order below ``max_order`` becomes a parent (its type's children; a single player's
    children of both types)."""
    m = pool.sf.shape[0]
    new_and, new_or = [], []
    for i in range(first, d.k):
        key = d.terms[i]
        pool.seen.add(key)
        kind, t = key
        if len(t) >= max_order:
            continue
        if kind == "and" or len(t) == 1:
            new_and.append(i)
        if kind == "or" or len(t) == 1:
            new_or.append(i)
    if new_and:
        f = d.raw[:, new_and]
        pool.f_and.extend(f)
        pool.par_and += new_and
        pool.sd_and = np.concatenate([pool.sd_and, _count_sd(pool.sf.T @ f, m)], axis=1)
    if new_or:
        a = 1.0 - d.raw[:, new_or]
        pool.a_or.extend(a)
        pool.par_or += new_or
        pool.sd_or = np.concatenate([pool.sd_or, _count_sd(m - (a.sum(axis=0)[None] - pool.sf.T @ a), m)], axis=1)


def _validate(d: _Design, y_val: np.ndarray, b: float, w: np.ndarray) -> tuple[float, float]:
    """Validation mean squared error and R² of the fit ``(b, w)`` on all columns of ``d``."""
    pred = b + d.xv[:, : d.k] @ w
    return float(np.mean((y_val - pred) ** 2)), _r2(y_val, pred)


def _discovery_bar(progress: bool, total: int):
    """The discovery's tqdm bar over ``total`` terms, or None without ``progress``."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sparse_and_or: discovering terms", unit="term")


def _discover(s_fit, y_fit, s_val, y_val, max_order, max_terms, patience, progress):
    """Greedy hierarchical pursuit (step 2 of the module docstring). Returns the
    :class:`_Design` of the terms in the order found, up to the round of least validation
    error, and per round up to it ``(terms so far, validation R² of their least-squares fit)``.

    A round: score the pool's candidates against the residual (:func:`_child_scores`), add
    the strongest new ones (:func:`_pick`) to the design and the pool
    (:func:`_grow`), refit and validate (:func:`_validate`); stop when no new candidate is left
    or none correlates, after ``patience`` rounds without a better validation error, or at a perfect fit."""
    d = _Design(s_fit, y_fit, s_val, capacity=min(max_terms, 64))
    pool = _Pool.of(s_fit)
    w = np.zeros(0)
    history: list[tuple[int, float]] = []
    best_err, best_len, stall = np.inf, 0, 0
    bar = _discovery_bar(progress, max_terms)
    try:
        while d.k < max_terms:
            r = d.yc - d.xc[:, : d.k] @ w  # residual y − b − Xw
            top, add = _pick(_child_scores(pool, d, r), pool.seen, min(max(1, d.k // 8), max_terms - d.k))
            if not add or top <= 1e-12 * (1 + np.sqrt(np.sum(r**2))):
                break
            first = d.k
            d.add(add)
            _grow(pool, d, first, max_order)
            b, w = d.fit()
            err, r2 = _validate(d, y_val, b, w)
            history.append((d.k, r2))
            if bar is not None:
                bar.update(len(add))
                bar.set_postfix(val_r2=f"{history[-1][1]:.4f}")
            if err < best_err * (1 - 1e-6) - 1e-300:
                best_err, best_len, stall = err, d.k, 0
            else:
                stall += 1
                if stall >= patience:
                    break
            if err <= 1e-20 * max(float(np.mean(y_val**2)), 1e-300):
                break
    finally:
        if bar is not None:
            bar.close()
    d.truncate(best_len)
    return d, [h for h in history if h[0] <= best_len]


def _neighbors(terms):
    """The terms, the other type on the same players, and every term one player smaller (both
    types): the alternative representations the ℓ1 fit chooses from (e.g. ``[a∨b∨c]`` found
    as ``[a∨b∨c∨d] − …``). The terms come first, in their order."""
    out, seen = [], set()

    def put(key):
        if key not in seen:
            seen.add(key)
            out.append(key)

    for kind, t in terms:
        put((kind, t))
    for kind, t in terms:
        if len(t) > 1:
            put(("or" if kind == "and" else "and", t))
            for i in range(len(t)):
                sub = t[:i] + t[i + 1 :]
                put(("and", sub))
                if len(sub) > 1:
                    put(("or", sub))
    return out


_PATH_PATIENCE = 3  # new lasso supports in a row that together raise the validation R² by ≤ 0.1·r2_slack
_PERFECT_R2 = 1 - 1e-12  # a validation R² no later point can improve on


def _select(d: _Design, y_val, rounds, best: float, r2_slack, lasso_iters):
    """Step 3: the sparsest support over the columns of ``d`` whose validation R² is within
    ``r2_slack`` of the best (of the candidates and of ``best``, the discovery's). Candidates:
    the points of a lasso path (each debiased by least squares), all columns, and the
    discovery's rounds that are prefixes of the columns (``rounds``: ``(prefix length,
    validation R²)``); on equal size the higher R² wins, then a lasso point (the ℓ1-cheaper
    representation). Returns the support, its columns in order of preference (earlier on the
    lasso path first, then the discovery's order), the floor ``best − r2_slack``, and all
    columns in that order."""
    k, m = d.k, d.m
    if k == 0:
        return [], best - r2_slack, []
    g, c = d.g[:k, :k], d.c[:k]
    cands = []
    entry = np.full(k, np.inf)  # first point of the lasso path where each column is non-zero
    lam_max = float(np.max(np.abs(c))) / m
    if lam_max > 0:
        lams = lam_max * np.geomspace(0.5, 1e-6, 25)
        ref, since = -np.inf, 0  # R² of the last point that raised it by more than 0.1·r2_slack
        for i, w in enumerate(_lasso_path(g / m, c / m, lams, lasso_iters)):
            sup = tuple(np.flatnonzero(np.abs(w) > 1e-12 * max(1.0, float(np.max(np.abs(w))))).tolist())
            entry[list(sup)] = np.minimum(entry[list(sup)], i)
            if cands and cands[-1][0] == sup:
                continue  # the same support: the same debiased fit
            b, wd = d.fit(sup)
            cands.append((sup, d.val_r2(y_val, sup, b, wd)))
            r2 = cands[-1][1]
            ref, since = (r2, 0) if r2 > ref + 0.1 * r2_slack else (ref, since + 1)
            if since >= _PATH_PATIENCE or r2 >= _PERFECT_R2:  # past the validation peak, or a perfect fit
                break
    full = tuple(range(k))
    b, wd = d.fit(full)
    cands.append((full, d.val_r2(y_val, full, b, wd)))
    cands += [(tuple(range(p)), r2) for p, r2 in rounds if p <= k]
    floor = max(best, max(cv[1] for cv in cands)) - r2_slack
    ok = [cv for cv in cands if cv[1] >= floor]
    sel = min(ok, key=lambda cv: (len(cv[0]), -cv[1]))[0]
    return sorted(sel, key=lambda j: (entry[j], j)), floor, sorted(full, key=lambda j: (entry[j], j))


def _independent(g: np.ndarray, tol: float = 1e-9) -> list[int]:
    """Columns (in the given order of preference) each outside the span of the earlier kept
    ones: its variance left after projecting on them is more than ``tol`` of its own
    (incremental Cholesky of the Gram ``g``). E.g. of ``[a], [b], [a∨b], [a∧b]`` only three are
    kept, since ``[a∨b] = [a] + [b] − [a∧b]``."""
    k = g.shape[0]
    chol = np.zeros((k, k))
    kept: list[int] = []
    for j in range(k):
        gjj = g[j, j]
        if gjj <= 0:
            continue
        q = len(kept)
        z = scipy.linalg.solve_triangular(chol[:q, :q], g[kept, j], lower=True) if q else np.zeros(0)
        left = gjj - float(z @ z)
        if left > tol * gjj:
            chol[q, :q] = z
            chol[q, q] = np.sqrt(left)
            kept.append(j)
    return kept


def _ridged_inverse(d: _Design, keep) -> tuple[np.ndarray, np.ndarray]:
    """``(G + δI, (G + δI)⁻¹)`` for the Gram ``G`` of the columns ``keep`` of ``d``, ``δ`` = 1e-10 ×
    its mean diagonal (a tie-breaker for columns that are combinations of the others up to rounding)."""
    g = d.g[np.ix_(keep, keep)].copy()
    g[np.diag_indices_from(g)] += 1e-10 * max(float(np.trace(g)) / g.shape[0], 1e-300)
    return g, np.linalg.inv(g)


def _prune(d: _Design, idx, y_val, floor, max_records=None):
    """Drop the columns of ``idx`` (in order of preference) that are linear combinations of
    preferred ones (:func:`_independent`), then backward elimination: drop the column whose
    removal raises the fit residual least (``w_p² / (G⁻¹)_pp``), while the validation R² stays
    ≥ ``floor``, and past it while more than ``max_records`` columns are left. ``G⁻¹`` is
    downdated after each drop (``O(k²)``), checked on a probe vector, and recomputed when the
    check fails or after 32 drops."""
    keep = np.asarray(idx, dtype=np.intp)
    if keep.size == 0:
        return []
    keep = keep[_independent(d.g[np.ix_(keep, keep)])]
    probe = np.random.default_rng(0).standard_normal(keep.size)

    def fresh(keep):
        g, inv = _ridged_inverse(d, keep)
        return g, inv, inv @ d.c[keep]

    g, inv, w = fresh(keep)
    since = 0
    while keep.size:
        p = int(np.argmin(w**2 / np.diag(inv)))
        w_new = np.delete(w - inv[:, p] * (w[p] / inv[p, p]), p)
        rest = np.delete(keep, p)
        b = d.ybar - float(d.mean[rest] @ w_new)
        within_cap = max_records is None or keep.size <= max_records  # above the cap it drops regardless
        if within_cap and d.val_r2(y_val, rest, b, w_new) < floor:
            break
        keep, since = rest, since + 1
        if not keep.size:
            break
        inv = np.delete(np.delete(inv - np.outer(inv[:, p], inv[p]) / inv[p, p], p, 0), p, 1)
        g, w = np.delete(np.delete(g, p, 0), p, 1), w_new
        u = probe[: keep.size]
        if since >= 32 or np.max(np.abs(g @ (inv @ u) - u)) > 1e-6 * np.max(np.abs(u)):
            g, inv, w = fresh(keep)
            since = 0
    return keep.tolist()


def _swap(d: _Design, keep, max_swaps: int = 200) -> list[int]:
    """Local search for the best subset of ``len(keep)`` columns of ``d`` (least squares on the
    fit rows): replace one column of ``keep`` by one other column when that lowers the fit
    residual, the best such swap first, until none lowers it by more than ``1e-9·‖ȳ‖²`` (or
    after ``max_swaps``). This is the swap step of best-subset local search (Miller, *Subset
    Selection in Regression*, 2002, §3.5; Bertsimas, King & Mazumder, Ann. Statist. 2016);
    backward elimination alone can end in a subset one swap away from a better one.

    All ``k·(K − k)`` swaps are scored at once from the Gram, in ``O(K·k²)``: with
    ``A = G_SS⁻¹``, ``w = A c_S``, ``B = G_{:S} A``, residual correlations ``r = c − G_{:S} w``
    and residual norms ``δ_j = G_jj − (B ⊙ G_{:S})_j 1``, dropping ``p`` raises the residual
    by ``w_p²/A_pp`` and then adding ``j`` lowers it by ``(r_j + B_jp w_p/A_pp)² /
    (δ_j + B_jp²/A_pp)`` (the rank-one downdate of the projection on ``S``). A column that is a
    combination of the others (``δ_j + B_jp²/A_pp ≤ 1e-9·G_jj``) is never added, and a
    ``keep`` whose own columns are dependent (or constant) is returned as it is."""
    keep = list(keep)
    k, K = len(keep), d.k
    g, c = d.g[:K, :K], d.c[:K]
    if not 0 < k < K or len(_independent(g[np.ix_(keep, keep)])) < k:
        return keep
    gdiag = np.diag(g)
    yy = float(d.yc @ d.yc)
    for _ in range(max_swaps):
        _, a = _ridged_inverse(d, keep)
        w = a @ c[keep]
        cols = g[:, keep]
        bmat = cols @ a
        r = c - cols @ w
        delta = gdiag - np.einsum("ij,ij->i", bmat, cols)
        ad = np.diag(a)
        den = delta[:, None] + bmat**2 / ad[None, :]
        num = r[:, None] + bmat * (w / ad)[None, :]
        ok = den > 1e-9 * np.maximum(gdiag, 1e-300)[:, None]
        ok[keep] = False
        change = np.where(ok, (w**2 / ad)[None, :] - num**2 / np.where(ok, den, 1.0), np.inf)
        j, p = np.unravel_index(int(np.argmin(change)), change.shape)
        if not change[j, p] < -1e-9 * yy:
            break
        keep[p] = int(j)
    return keep


def _final_support(d: _Design, y_val, sel, order, floor, max_records=None) -> list[int]:
    """The result's columns: the selection ``sel`` pruned (:func:`_prune`). When ``max_records``
    cuts below it, also a backward elimination from the whole dictionary (``order``) down to
    the cap, since it may find a better small model; of the two the higher validation R² wins,
    and then swaps at that size (:func:`_swap`) replace it if they raise the validation R²."""
    keep = _prune(d, sel, y_val, floor, max_records)
    if max_records is not None and 0 < max_records < len(sel):

        def val(c):
            return d.val_r2(y_val, c, *d.fit(c))

        keep = max((_prune(d, order, y_val, np.inf, max_records), keep), key=val)
        keep = max((keep, _swap(d, keep)), key=val)  # ties keep the unswapped model
    return keep


def _records(terms, values, n) -> list[InteractionRecord]:
    recs = [
        InteractionRecord(players=t, type=k, value=float(v), mask=sum(1 << i for i in t), order=len(t))
        for (k, t), v in zip(terms, values)
    ]
    recs.sort(key=lambda r: (-abs(r.value), r.type != "and", r.order, r.players))
    return recs


def _exact(value_fn, n, q_ratio, batch_size, progress, max_records=None) -> SparseAndOrResult:
    """All ``2**n`` masks and :func:`jinter.and_or`. Every term above ``1e-9·max|I|`` is listed,
    so that ``predict`` reproduces ``v + q`` on every mask (universal matching); that includes
    the first-order solver's residue (terms often ~1e-8 of the largest, within the certified
    relative gap of 1e-5), listed last."""
    idx = np.arange(2**n)
    masks = ((idx[:, None] >> np.arange(n)) & 1).astype(bool)
    v = _evaluate(value_fn, masks, batch_size, progress, "sparse_and_or: all masks")
    dt = jnp.result_type(float)
    res = and_or(jnp.asarray(v, dtype=dt), q_ratio=q_ratio)
    i_and, i_or = np.asarray(res.I_and), np.asarray(res.I_or)
    scale = max(float(np.max(np.abs(i_and[1:]))) if n else 0.0, float(np.max(np.abs(i_or[1:]))))
    terms, values = [], []
    for kind, arr in (("and", i_and), ("or", i_or)):
        for mask in np.flatnonzero(np.abs(arr) > _EXACT_CUTOFF * scale).tolist():
            if mask:
                terms.append((kind, tuple(i for i in range(n) if mask >> i & 1)))
                values.append(arr[mask])
    recs = _records(terms, values, n)[:max_records]  # strongest first
    out = SparseAndOrResult(recs, float(i_and[0]), n, 0.0, 2**n, 0, True,
                            float(sum(abs(r.value) for r in recs)), ())
    return dataclasses.replace(out, faithfulness=_r2(v, out.predict(masks)))


def sparse_and_or(
    value_fn: Callable[[np.ndarray], ArrayLike],
    n: int,
    *,
    budget: int,
    max_order: int | None = None,
    seed: int = 0,
    keep_rates: Sequence[float] = _KEEP_RATES,
    holdout: float = 0.1,
    max_terms: int | None = None,
    max_records: int | None = None,
    r2_slack: float = 1e-3,
    patience: int = 6,
    batch_size: int = 1024,
    exact: bool | None = None,
    exact_max_n: int = 14,
    q_ratio: float = 0.02,
    progress: bool = True,
    lasso_iters: int = 500,
) -> SparseAndOrResult:
    r"""Sparse AND-OR interactions of a game from at most ``budget`` calls (module docstring).

    Args:
        value_fn: ``value_fn(masks)`` takes boolean rows ``(m, n)`` (True = player present)
            and returns ``(m,)`` real values (numpy or JAX), as shapiq games do. See
            :func:`masked_value_fn` to build one from a model and jinter's masking.
        n: number of players (≥ 1).
        budget: most rows ``value_fn`` may be called on in all.
        max_order: largest interaction order searched (default: no limit but ``n``).
        seed: seed of the sampling design (equal seeds give equal results).
        keep_rates: probabilities of a player being present, cycled over the rows.
        holdout: share of the budget held out for ``faithfulness`` (R² on unseen masks).
        max_terms: cap on the discovered support (default ``min(train rows / 3, 400)``).
        max_records: most interactions in the result (default: no cap). When the ``r2_slack``
            rule keeps more, the backward elimination goes on down to this many (the
            validation R² may then fall further below the best), once from the selected model
            and once from the whole dictionary, and the one with the higher validation R² is
            kept; then swaps of one term for another at that size lower the fit residual
            (best-subset local search) and replace it if they raise the validation R². The
            best small model the method finds, e.g. to compare with another method at an
            equal number of terms.
            The exact path keeps the ``max_records`` strongest terms of the optimum.
        r2_slack: the ℓ1 selection and pruning keep the sparsest model whose validation R² is
            within this of the best.
        patience: discovery rounds without a better validation error before it stops.
        batch_size: rows per ``value_fn`` call.
        exact: True: always the exact path (needs ``budget ≥ 2**n``, no ``max_order < n`` or
            ``max_terms``); False: never; None (default): exact when ``budget ≥ 2**n``,
            ``n ≤ exact_max_n`` and neither ``max_order < n`` nor ``max_terms`` is given.
        exact_max_n: largest ``n`` of the automatic exact path.
        q_ratio: noise box of the exact path (:func:`jinter.and_or`); unused by the sampled fit.
        progress: tqdm progress bars on the model calls and the discovery.
        lasso_iters: FISTA iterations per point of the lasso path (over all rounds of its
            working set), ≥ 1.

    Returns:
        :class:`SparseAndOrResult`.

    Raises:
        ValueError: ``n < 1``, a bad option (a bool, fraction, NaN, string or out-of-range value
            where a number is expected; checked before any call), ``budget`` too small to fit
            anything (the message says the least budget that runs, and ``2**n`` where the exact
            path costs less), ``value_fn`` returning the wrong shape.
        TypeError: ``exact`` not True / False / None, ``value_fn`` not callable.
        NonFiniteOutputError: ``value_fn`` returned NaN/inf (the message names the mask's players).
        Any exception of ``value_fn`` itself propagates unchanged, with a note naming the batch.

    ``value_fn`` gets a copy of each batch of masks: editing it in place changes nothing here.
    """
    n = check_int(n, "n", 1)
    budget = check_int(budget, "budget", 1)
    try:
        kr = np.asarray(keep_rates)
    except (TypeError, ValueError) as e:
        raise ValueError(f"keep_rates must be probabilities in (0, 1), got {keep_rates!r}") from e
    if kr.dtype.kind not in "iuf":  # strings, bools and objects are not probabilities
        raise ValueError(f"keep_rates must be probabilities in (0, 1) (numbers), got {keep_rates!r}")
    kr = kr.astype(np.float64).reshape(-1)
    if kr.size == 0 or not np.all((kr > 0) & (kr < 1)):
        raise ValueError(f"keep_rates must be probabilities in (0, 1), got {keep_rates!r}")
    holdout = check_real(holdout, "holdout", above=0.0, below=1.0)
    max_order = min(check_int(max_order, "max_order", 1, none=True) or n, n)
    max_terms = check_int(max_terms, "max_terms", 1, none=True)
    max_records = check_int(max_records, "max_records", 0, none=True)
    r2_slack = check_real(r2_slack, "r2_slack", least=0.0)
    patience = check_int(patience, "patience", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    exact_max_n = check_int(exact_max_n, "exact_max_n", 0)
    lasso_iters = check_int(lasso_iters, "lasso_iters", 1)
    seed = check_int(seed, "seed", 0)
    check_real(q_ratio, "q_ratio", least=0.0)
    progress = check_bool(progress, "progress")
    if not (exact is None or isinstance(exact, (bool, np.bool_))):
        raise TypeError(f"exact must be True, False or None, got {exact!r}")
    exact = None if exact is None else bool(exact)
    if not callable(value_fn):
        raise TypeError(f"value_fn must be callable, got {type(value_fn).__name__}")

    fits_all = n <= 62 and budget >= 2**n
    limited = [f"{k}={v}" for k, v in (("max_order", max_order), ("max_terms", max_terms))
               if v is not None and not (k == "max_order" and v >= n)]
    if exact is True and n > 62:
        raise ValueError(f"exact=True enumerates all 2**n masks: out of reach at n={n}; use the sampled fit "
                         "(exact=None or False)")
    if exact is True and not fits_all:
        raise ValueError(f"exact=True needs budget ≥ 2**{n} = {2**n} calls (all masks); got budget={budget}")
    if exact is True and limited:
        raise ValueError(f"exact=True finds the optimum over all orders and terms; {', '.join(limited)} "
                         "applies to the sampled fit only (exact=False or None)")
    if exact is True or (exact is None and fits_all and n <= exact_max_n and not limited):
        # the masks (built through an int64 copy), the outputs and and_or's arrays over 2**n subsets
        check_budget((9 * n + 8 * 32) * 2**n, f"sparse_and_or's exact path over all 2**{n} masks")
        return _exact(value_fn, n, q_ratio, batch_size, progress, max_records)

    n_hold, n_val, n_fit = _split(budget, holdout)
    need = _min_budget(n, holdout)
    if n < 63 and 2**n < need:
        raise ValueError(f"the sampled fit needs at least {need} distinct masks, and n={n} players "
                         f"have only 2**{n} = {2**n}: pass budget ≥ {2**n} for the exact path (exact=None)")
    if n_fit < _min_fit(n):
        alt = (f", or 2**{n} = {2**n} for the exact path" if exact is None and not limited and n <= exact_max_n
               and 2**n < need else "")
        raise ValueError(
            f"budget={budget} calls is too small for n={n} players: the sampled fit needs at least "
            f"{need} calls ({_min_fit(n)} to fit, the rest to validate and to hold out for the R²){alt}"
        )

    # the masks, their draw (float64 uniforms) and the fit's design (three float64 copies of ≥ 64 columns)
    check_budget(budget * (9 * n + 3 * 8 * 64), f"sparse_and_or's {budget} sampled masks of {n} players and their fit")
    rng = np.random.default_rng(seed)
    masks, rep = _draw(rng, budget, n, kr)
    masks, n_hold, n_fit = _drop_repeats(masks, rep, n_hold, n_fit)
    y = _evaluate(value_fn, masks, batch_size, progress, "sparse_and_or: model calls")

    if max_terms is None:
        max_terms = int(min(max(n_fit // 3, 1), 400))
    with one_pool():  # numpy products and scipy factorizations alternate: one BLAS pool busy
        return _fit(masks, y, n_hold, n_fit, kr, max_order=max_order, max_terms=max_terms,
                    patience=patience, r2_slack=r2_slack, lasso_iters=lasso_iters,
                    max_records=max_records, progress=progress)


_MIN_VAL, _MIN_HOLD = 8, 10  # least validation and held-out rows of the sampled fit


def _drop_repeats(masks: np.ndarray, rep: np.ndarray, n_hold: int, n_fit: int) -> tuple[np.ndarray, int, int]:
    """The drawn rows without the repeats ``rep`` that :func:`_draw` could not replace (few players:
    the budget exceeds the masks likely at some keep rate), and the split of what is left; a call
    is never spent twice on one mask, and no held-out mask is one the fit sees."""
    if not rep.any():
        return masks, n_hold, n_fit
    n, m = masks.shape[1], int((~rep).sum())
    n_hold = int((~rep[:n_hold]).sum())
    n_fit = _val_fit(m - n_hold)[1]
    if n_fit < _min_fit(n) or n_hold < _MIN_HOLD:
        raise ValueError(f"the sampled fit drew only {m} distinct masks of n={n} players ({len(masks)} asked): too "
                         f"few to fit, validate and hold out; use the exact path (budget ≥ 2**{n} = {2**n}, "
                         "exact=None)")
    return masks[~rep], n_hold, n_fit


def _min_fit(n: int) -> int:
    """Least fitting rows of the sampled path at ``n`` players."""
    return 8 * (n.bit_length() + 1)


def _split(budget: int, holdout: float) -> tuple[int, int, int]:
    """``(held out, validation, fit)`` rows of a budget; each is non-decreasing in ``budget``."""
    n_hold = max(_MIN_HOLD, int(round(holdout * budget)))
    return (n_hold, *_val_fit(budget - n_hold))


def _val_fit(n_train: int) -> tuple[int, int]:
    """``(validation, fit)`` rows of ``n_train`` training rows: a fifth (at least ``_MIN_VAL``) validates."""
    n_val = max(_MIN_VAL, n_train // 5)
    return n_val, n_train - n_val


def _min_budget(n: int, holdout: float) -> int:
    """The least budget whose split leaves :func:`_min_fit` fitting rows (bisection: monotone)."""
    lo, hi = 1, _min_fit(n) + _MIN_VAL + _MIN_HOLD
    while _split(hi, holdout)[2] < _min_fit(n):
        lo, hi = hi, 2 * hi
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if _split(mid, holdout)[2] < _min_fit(n) else (lo, mid)
    return lo


def _fit(masks, y, n_hold, n_fit, kr, *, max_order, max_terms, patience, r2_slack, lasso_iters,
         max_records, progress) -> SparseAndOrResult:
    """Steps 2–3 of the method on the drawn rows (held-out | fit | validation): discovery,
    selection, the refit on fit + validation rows, the held-out R²."""
    budget, n = masks.shape
    kr = tuple(float(p) for p in kr)
    # the fit runs on y shifted by its median and divided by a power of two ≥ its spread (exact
    # in binary floating point): the same answer at any scale of the game (1e-160 or 1e150)
    y_hold, y_tr = y[:n_hold], y[n_hold:]
    shift = float(np.median(y_tr))
    spread = float(np.max(np.abs(y_tr - shift)))
    if spread == 0.0:  # a constant game on every training row: the bias alone
        out = SparseAndOrResult([], shift, n, 0.0, budget, n_hold, False, 0.0, kr)
        return dataclasses.replace(out, faithfulness=_r2(y_hold, out.predict(masks[:n_hold])))
    unit = math.ldexp(1.0, math.frexp(spread)[1])
    y = (y - shift) / unit
    s_hold = masks[:n_hold]
    s_fit, y_fit = masks[n_hold : n_hold + n_fit], y[n_hold : n_hold + n_fit]
    s_val, y_val = masks[n_hold + n_fit :], y[n_hold + n_fit :]
    d, rounds = _discover(s_fit, y_fit, s_val, y_val, max_order, max_terms, patience, progress)
    best = max((r2 for _, r2 in rounds), default=-np.inf)
    found = list(d.terms)
    d.truncate(min((k for k, r2 in rounds if r2 >= best - r2_slack), default=0))  # the sparsest good round
    dictionary = _neighbors(d.terms)  # its terms first, then their alternatives,
    known = set(dictionary)
    # then the later rounds' terms (without alternatives): a term found after the sparsest good round
    # (e.g. an order-4 OR that lifts R² from 0.999 to 1) is a column, not left to order-3 stand-ins
    dictionary += [t for t in found if t not in known]
    d.add(dictionary[d.k :])
    sel, floor, order = _select(d, y_val, rounds, best, r2_slack, lasso_iters)
    keep = _final_support(d, y_val, sel, order, floor, max_records)
    terms = [dictionary[i] for i in keep]
    s_tr, y_tr = masks[n_hold:], y[n_hold:]
    b, w = _lstsq(_features(s_tr, terms), y_tr)
    nz = np.abs(w) > 0
    terms = [t for t, k in zip(terms, nz) if k]
    recs = _records(terms, w[nz] * unit, n)
    out = SparseAndOrResult(recs, b * unit + shift, n, 0.0, budget, n_hold, False,
                            float(sum(abs(r.value) for r in recs)), kr)
    return dataclasses.replace(out, faithfulness=_r2(y_hold, out.predict(s_hold)))


# --------------------------------------------------------------------------------------------
# value_fn from jinter's masking
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("chunk",))
def _eval_rows(apply, reward, x, base, owner, rows, *, chunk):
    """``v(x_S)`` for boolean rows ``(chunk, n)``: element ``e`` kept iff its player is present."""
    flat = owner.reshape(-1)
    keep = jnp.where(flat[None] >= 0, rows[:, jnp.maximum(flat, 0)], True).reshape((chunk,) + owner.shape)
    masked = jnp.where(keep, x[None], base[None])
    outputs = apply(masked)
    return _reward_values(jnp.asarray(outputs), reward, 1, chunk).reshape(chunk)


def masked_value_fn(
    model: Any,
    x: ArrayLike,
    players: Any,
    *,
    reward: Callable[[Array], Array] | None = None,
    baseline: ArrayLike | _BaselineName | None = None,
    data: ArrayLike | None = None,
    chunk_size: int | None = None,
    memory_budget: int | str | None = None,
    params: Any = None,
) -> Callable[[np.ndarray], np.ndarray]:
    r"""``value_fn(masks) -> (m,)`` for :func:`sparse_and_or`, from jinter's masking.

    The same masked input as :func:`jinter.masked_outputs` (``x_S`` keeps the elements of the
    players in ``S``, sets the others to the baseline; background elements stay), but with
    coalitions as boolean rows ``(m, n)``, so any number of players (integer masks stop at 63).
    The evaluation is jitted and chunked: ``chunk_size`` rows per model call (default as many
    as fit the memory budget, at most 4096), the last chunk padded so one shape compiles.

    Args:
        model, players, reward, baseline, data, params: as in :func:`jinter.masked_outputs`
            (a ``(features, head)`` pair masks ``features(x)``).
        x: ONE input, of shape ``players.input_shape``.
        chunk_size: rows per model call.
        memory_budget: bytes (or ``"2G"``); default :func:`jinter.memory_budget`.

    Returns:
        A function of boolean rows ``(m, n)`` returning a float numpy array ``(m,)``; it raises
        :class:`NonFiniteOutputError` naming the players of the first non-finite row.

    Example:
        >>> import jax.numpy as jnp, numpy as np, jinter
        >>> players = jinter.TabularPlayers(3)
        >>> f = jinter.masked_value_fn(lambda b: b.sum(axis=1), jnp.array([1.0, 2.0, 4.0]), players)
        >>> f(np.array([[True, False, True], [False, False, False]])).tolist()
        [5.0, 0.0]
    """
    _check_players(players)
    shape = tuple(players.input_shape)
    n = int(players.n)
    pair = isinstance(model, tuple)
    xs = _input_array(x)
    if not pair and xs.shape != shape:  # named before the model adaptation sees it as a batch of one
        raise ValueError(f"x must be ONE input of shape {shape} (players.input_shape of {type(players).__name__}); "
                         f"got shape {xs.shape}")
    apply, feats_fn, xb = _adapt_model(model, params, xs[None], players)  # one input, as a batch of one
    if xb.shape != (1,) + shape:
        raise ValueError(f"features(x) must be ONE input of shape {shape} (players.input_shape of "
                         f"{type(players).__name__}); got shape {xb.shape[1:]}")
    xa = xb[0]
    base = jnp.asarray(_resolve_baseline(baseline, data, feats_fn, players, xa))
    if base.shape != shape:
        raise ValueError(f"baseline must broadcast to the input shape {shape}, got {base.shape}")
    reward = _prepare_reward(reward, 1)
    limit = _memory_budget(memory_budget)
    per_row = max(math.prod(shape), 1) * xa.dtype.itemsize * _LIVE_FACTOR
    fit = limit // per_row
    if fit < 1:
        raise MemoryBudgetError(
            f"one masked input {shape} {xa.dtype} needs about {format_bytes(per_row)}, more than the "
            f"memory budget of {format_bytes(limit)}"
        )
    chunk = _chunk_size_option(chunk_size)
    if chunk is None:
        chunk = min(int(fit), _MAX_CHUNK)
        chunk = 1 << (chunk.bit_length() - 1)
    owner = jnp.asarray(players.owner)

    def value_fn(masks: Bool[ArrayLike, "m n"]) -> Float[np.ndarray, " m"]:
        s = _check_masks(masks, n, "masks")
        m = s.shape[0]
        c = max(1, min(chunk, 1 << max(m - 1, 0).bit_length()))  # small calls compile small chunks
        outs = []
        with reraise_host_errors():  # a host model's own exception, not an opaque JaxRuntimeError
            for a in range(0, m, c):
                rows = np.zeros((c, n), dtype=bool)
                rows[: min(c, m - a)] = s[a : a + c]
                outs.append(np.asarray(_eval_rows(apply, reward, xa, base, owner, jnp.asarray(rows), chunk=c))[: m - a])
        vals = np.concatenate(outs) if outs else np.zeros(0)
        if not np.issubdtype(vals.dtype, np.floating):  # e.g. an integer x and model: values as floats
            vals = vals.astype(np.float64)
        check_finite(vals, "model values on the masked inputs", masks=s, index_name="mask row",
                     error=NonFiniteOutputError)
        return vals

    return value_fn
