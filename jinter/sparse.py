r"""Sparse AND-OR interactions for many players (n = 32–1024) from a budget of model calls.

The exact path (:func:`jinter.and_or`) needs all ``2**n`` masked outputs. Here the game is
only queried on ``budget`` random coalitions and fitted by a sparse surrogate

.. math::

    \hat v(S) = b + \sum_{T \in \mathcal A} I_{and}(T)\,[T \subseteq S]
                  + \sum_{T \in \mathcal O} I_{or}(T)\,[T \cap S \neq \emptyset],

the AND-OR form of [D24] eq. (11) / [C24] restricted to a discovered support, with the same
sparsity objective ``Σ |I_and(T)| + |I_or(T)|`` as :func:`jinter.and_or` (as an ℓ1 penalty).

Method (:func:`sparse_and_or`):

1. **Sampling.** Coalitions are drawn i.i.d. with every player present with probability
   ``p``, one ``p`` per row cycling over ``keep_rates`` (default 0.1, 0.2, …, 0.9). A low ``p``
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
   squares, and discovery stops when the validation error stops improving. This exploits the
   hierarchy of interactions (a strong order-k term leaves a trace on its order-(k−1) parts
   under random masking), as in hierarchical screening for sparse Möbius / Fourier recovery
   (SPEX, Kang et al. 2025; ProxySPEX, Butler et al. 2025, who observe the same hierarchy in
   trained models).
3. **ℓ1 fit and pruning.** On the discovered support, a lasso path
   ``min ½‖y − b − Xw‖²/m + λ‖w‖₁`` (FISTA on the Gram matrix; unweighted ℓ1 on the raw
   coefficients, i.e. the ``and_or`` objective), each point debiased by least squares on its
   support; the sparsest point whose validation R² is within ``r2_slack`` of the best wins, and
   is refitted on all fitting rows. Among representations of the same function (e.g.
   ``[a∨b] = [a] + [b] − [a∧b]``) the ℓ1 penalty prefers the one with the least
   ``Σ|I|``, as ``and_or`` does. A single player's AND and OR terms are the same feature: it
   is reported as AND (as in ``and_or``).

**Exact path.** When ``budget ≥ 2**n`` (and ``n ≤ exact_max_n``), all masks are evaluated
(``2**n`` calls) and :func:`jinter.and_or` gives the certified optimum; ``records`` then lists
its non-zero terms and ``faithfulness`` is the R² of ``predict`` on all masks (there is no
unseen mask left to hold out). Pass ``exact=False`` to use the sampled method anyway.

Where it can fail: terms whose lower-order parts leave no trace (e.g. a pure parity-like
interaction with cancelling sub-effects) are never proposed; terms of very high order are
rarely active under random masking (an AND of order k is on with probability ``p^k``) and need
large budgets; dense games (many comparable terms, as random games) are not sparse and give a
low held-out R²; AND/OR terms on the same few players are nearly collinear, so at small budgets
the split between them can differ from the exact optimum even when ``predict`` is accurate.

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
from jaxtyping import Array, ArrayLike, Bool, Float

from jinter._budget import MemoryBudgetError, format_bytes
from jinter._budget import memory_budget as _memory_budget
from jinter.decomposition import and_or
from jinter.interactions import InteractionRecord
from jinter.masking import (
    NonFiniteOutputError,
    _adapt,
    _BaselineName,
    _chunk_size_option,
    _features_jit,
    _LabelReward,
    _resolve_baseline,
    _reward_values,
    _Static,
)

__all__ = ["SparseAndOrResult", "sparse_and_or", "masked_value_fn"]

_KEEP_RATES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_MAX_CHUNK = 4096  # masked inputs per model call in masked_value_fn
_LIVE_FACTOR = 4  # bytes live per masked input element (input, blend, activations; a guess)


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SparseAndOrResult:
    """Result of :func:`sparse_and_or`.

    Attributes:
        records: the interactions, strongest ``|value|`` first (:class:`InteractionRecord`,
            ``mask`` a Python int, so any ``n``).
        bias: the constant ``b`` of the surrogate (``v(∅)`` up to the fit).
        n: number of players.
        faithfulness: R² of :meth:`predict` on held-out masks drawn at every keep rate
            (exact path: on all ``2**n`` masks).
        calls: model calls spent (rows passed to ``value_fn``), ≤ ``budget``.
        holdout_calls: how many of them were held out for ``faithfulness``.
        exact: True when the exact path (all masks + :func:`jinter.and_or`) was taken.
        objective: ``Σ |value|`` over the records (the ``and_or`` sparsity objective).
        keep_rates: the keep rates of the sampling design.
    """

    records: list[InteractionRecord]
    bias: float
    n: int
    faithfulness: float
    calls: int
    holdout_calls: int
    exact: bool
    objective: float
    keep_rates: tuple[float, ...]

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


def _check_masks(masks: ArrayLike, n: int, what: str) -> np.ndarray:
    s = np.asarray(masks)
    if s.ndim != 2 or s.shape[1] != n:
        raise ValueError(f"{what} must be boolean rows of shape (m, n={n}), got shape {s.shape}")
    if s.dtype != np.bool_:
        if not (np.issubdtype(s.dtype, np.integer) and np.isin(s, (0, 1)).all()):
            raise TypeError(f"{what} must be boolean (True = player present), got dtype {s.dtype}")
        s = s.astype(bool)
    return s


# --------------------------------------------------------------------------------------------
# Calling the game
# --------------------------------------------------------------------------------------------


def _players_of(row: np.ndarray, limit: int = 20) -> str:
    who = np.flatnonzero(row).tolist()
    text = ", ".join(map(str, who[:limit])) + (f", … ({len(who)} in all)" if len(who) > limit else "")
    return f"({text})"


def _query(value_fn: Callable, masks: np.ndarray, offset: int) -> np.ndarray:
    """``value_fn(masks)`` checked: shape ``(m,)``, real, finite (naming the first bad row)."""
    m = masks.shape[0]
    try:
        out = value_fn(masks)
    except Exception as e:  # noqa: BLE001 - re-raised with context, chained
        raise type(e)(f"value_fn raised on a batch of {m} masks of shape {masks.shape}: {e}") from e
    out = np.asarray(out)
    if out.shape != (m,):
        raise ValueError(
            f"value_fn returned shape {out.shape} for {m} masks of shape {masks.shape}; expected ({m},), "
            "one value per mask row"
        )
    if not (np.issubdtype(out.dtype, np.floating) or np.issubdtype(out.dtype, np.integer) or out.dtype == np.bool_):
        raise TypeError(f"value_fn must return real numbers, got dtype {out.dtype}")
    out = out.astype(np.float64)
    _check_finite_rows(out, masks, offset, "value_fn returned {value} on mask row", "in this batch")
    return out


def _check_finite_rows(vals: np.ndarray, rows: np.ndarray, offset: int, what: str, scope: str) -> None:
    """Raise :class:`NonFiniteOutputError` naming the first non-finite row and its players."""
    bad = ~np.isfinite(vals)
    if bad.any():
        j = int(np.argmax(bad))
        raise NonFiniteOutputError(
            f"{what.format(value=vals[j])} {offset + j} = players {_players_of(rows[j])} "
            f"({int(bad.sum())} non-finite value(s) {scope})"
        )


def _evaluate(value_fn, masks: np.ndarray, batch_size: int, progress: bool, desc: str) -> np.ndarray:
    starts = range(0, masks.shape[0], batch_size)
    if progress and len(starts) > 1:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch")
    return np.concatenate([_query(value_fn, masks[a : a + batch_size], a) for a in starts]) if len(starts) else np.zeros(0)


def _draw(rng: np.random.Generator, m: int, n: int, keep_rates: np.ndarray) -> np.ndarray:
    p = keep_rates[np.arange(m) % keep_rates.size]
    rng.shuffle(p)
    return rng.random((m, n)) < p[:, None]


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


def _feature(s: np.ndarray, kind: str, players: tuple[int, ...]) -> np.ndarray:
    cols = s[:, list(players)]
    return (cols.all(axis=1) if kind == "and" else cols.any(axis=1)).astype(np.float64)


def _lstsq(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Intercept and coefficients of least squares, by the normal equations with a ridge of
    ``1e-10·mean diag`` (collinear columns, e.g. ``[a∨b]``, ``[a]``, ``[b]``, ``[a∧b]``, get a
    tiny-norm split instead of a singular solve)."""
    if x.shape[1] == 0:
        return float(np.mean(y)), np.zeros(0)
    mx, my = x.mean(axis=0), y.mean()
    xc = x - mx
    g = xc.T @ xc
    ridge = 1e-10 * max(float(np.trace(g)) / g.shape[0], 1e-300)
    g[np.diag_indices_from(g)] += ridge
    try:
        w = np.linalg.solve(g, xc.T @ (y - my))
    except np.linalg.LinAlgError:  # pragma: no cover - the ridge makes g positive definite
        w = np.linalg.lstsq(xc, y - my, rcond=None)[0]
    return float(my - mx @ w), w


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean()) ** 2))
    res = float(np.sum((y - pred) ** 2))
    if ss <= 1e-300:
        return 1.0 if res <= 1e-24 * max(1.0, float(np.sum(y**2))) else 0.0
    return 1.0 - res / ss


@functools.partial(jax.jit, static_argnames=("iters",))
def _fista_path(g, c, lams, lip, *, iters):
    """FISTA on ``½wᵀGw − cᵀw + λ‖w‖₁`` for every λ of ``lams`` (warm-started in order)."""

    def solve(w, lam):
        def step(_, st):
            w, z, t = st
            w_new = z - (g @ z - c) / lip
            w_new = jnp.sign(w_new) * jnp.maximum(jnp.abs(w_new) - lam / lip, 0.0)
            t_new = 0.5 * (1 + jnp.sqrt(1 + 4 * t * t))
            return w_new, w_new + (t - 1) / t_new * (w_new - w), t_new

        w, _, _ = jax.lax.fori_loop(0, iters, step, (w, w, jnp.ones((), g.dtype)))
        return w, w

    _, ws = jax.lax.scan(solve, jnp.zeros_like(c), lams)
    return ws


def _lasso_path(x: np.ndarray, y: np.ndarray, lams: np.ndarray, iters: int) -> list[np.ndarray]:
    """Lasso ``½‖ȳ − X̄w‖²/m + λ‖w‖₁`` (centered) along ``lams``, by :func:`_fista_path` in
    float64 numpy-equivalent precision when x64 is on (the Gram is padded to a multiple of 64
    columns so that few shapes compile)."""
    m, k = x.shape
    xc, yc = x - x.mean(axis=0), y - y.mean()
    g = xc.T @ xc / m
    c = xc.T @ yc / m
    lip = max(float(np.linalg.eigvalsh(g)[-1]), 1e-300)
    kp = -(-k // 64) * 64
    gp = np.zeros((kp, kp))
    gp[:k, :k] = g
    cp = np.zeros(kp)
    cp[:k] = c
    dt = jnp.result_type(float)
    ws = _fista_path(jnp.asarray(gp, dt), jnp.asarray(cp, dt), jnp.asarray(lams, dt), jnp.asarray(lip, dt),
                     iters=int(iters))
    return list(np.asarray(ws, dtype=np.float64)[:, :k])


def _children_scores(s: np.ndarray, sf: np.ndarray, terms, feats: np.ndarray, r: np.ndarray,
                     max_order: int, types: tuple[str, ...]):
    """Normalized |corr| with the residual of every child ``T ∪ {j}`` of every term (and of ∅:
    the single players). Returns a list of (score, kind, players)."""
    m, n = s.shape
    rows = []
    col_r = sf.T @ r  # singletons
    cnt = sf.sum(axis=0)
    var = np.maximum(cnt - cnt**2 / m, 1e-12)
    rows.append((np.abs(col_r) / np.sqrt(var), "and", ()))
    parents = [(k, t, f) for (k, t), f in zip(terms, feats.T) if len(t) < max_order]
    if parents:
        blocks_and = [(k, t, f) for k, t, f in parents if k == "and" or len(t) == 1]
        blocks_or = [(k, t, f) for k, t, f in parents if k == "or" or len(t) == 1]
        if "and" in types and blocks_and:
            f = np.stack([b[2] for b in blocks_and], axis=1)  # (m, P)
            ip = sf.T @ (f * r[:, None])  # (n, P)
            c = sf.T @ f
            v = np.maximum(c - c**2 / m, 1e-12)
            sc = np.abs(ip) / np.sqrt(v)
            for p, (_, t, _) in enumerate(blocks_and):
                rows.append((sc[:, p], "and", t))
        if "or" in types and blocks_or:
            a = 1.0 - np.stack([b[2] for b in blocks_or], axis=1)  # all of T absent
            ar = a * r[:, None]
            ip = -(ar.sum(axis=0)[None] - sf.T @ ar)  # child feature = 1 − ā(1 − s_j)
            c = m - (a.sum(axis=0)[None] - sf.T @ a)
            v = np.maximum(c - c**2 / m, 1e-12)
            sc = np.abs(ip) / np.sqrt(v)
            for p, (_, t, _) in enumerate(blocks_or):
                rows.append((sc[:, p], "or", t))
    return rows


def _discover(s_fit, y_fit, s_val, y_val, max_order, max_terms, patience, progress):
    """Greedy hierarchical pursuit (step 2 of the module docstring). Returns the terms."""
    m, n = s_fit.shape
    sf = s_fit.astype(np.float64)
    terms: list[tuple[str, tuple[int, ...]]] = []
    seen: set[tuple[str, tuple[int, ...]]] = set()
    feats = np.zeros((m, 0))
    vfeats = np.zeros((s_val.shape[0], 0))
    b, w = _lstsq(feats, y_fit)
    best_err, best_len, stall = np.inf, 0, 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_terms, desc="sparse_and_or: discovering terms", unit="term")
    try:
        while len(terms) < max_terms:
            r = y_fit - b - feats @ w
            rows = _children_scores(s_fit, sf, terms, feats, r, max_order, ("and", "or"))
            cand = []
            for sc, kind, t in rows:
                order = np.argsort(-sc)[: 8]
                for j in order.tolist():
                    if j in t:
                        continue
                    key = (kind if t else "and", tuple(sorted(t + (j,))))
                    if key not in seen:
                        cand.append((float(sc[j]), key))
            if not cand:
                break
            cand.sort(key=lambda c: -c[0])
            top = cand[0][0]
            if top <= 1e-12 * (1 + np.sqrt(np.sum(r**2))):
                break
            add, taken = [], set()
            k = max(1, len(terms) // 8)
            for sc, key in cand:
                if len(add) >= k or sc < 0.7 * top:
                    break
                if key not in taken:
                    add.append(key)
                    taken.add(key)
            add = add[: max_terms - len(terms)]
            for key in add:
                seen.add(key)
                terms.append(key)
            feats = np.concatenate([feats] + [_feature(s_fit, *key)[:, None] for key in add], axis=1)
            vfeats = np.concatenate([vfeats] + [_feature(s_val, *key)[:, None] for key in add], axis=1)
            b, w = _lstsq(feats, y_fit)
            err = float(np.mean((y_val - b - vfeats @ w) ** 2))
            if bar is not None:
                bar.update(len(add))
                bar.set_postfix(val_r2=f"{_r2(y_val, b + vfeats @ w):.4f}")
            if err < best_err * (1 - 1e-6) - 1e-300:
                best_err, best_len, stall = err, len(terms), 0
            else:
                stall += 1
                if stall >= patience:
                    break
            if err <= 1e-20 * max(float(np.mean(y_val**2)), 1e-300):
                break
    finally:
        if bar is not None:
            bar.close()
    return terms[:best_len]


def _neighbors(terms):
    """The terms, the other type on the same players, and every term one player smaller (both
    types): the alternative representations the ℓ1 fit chooses from (e.g. ``[a∨b∨c]`` found
    as ``[a∨b∨c∨d] − …``)."""
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


def _select_l1(terms, s_fit, y_fit, s_val, y_val, r2_slack, lasso_iters):
    """Step 3: lasso path + debiasing; the sparsest point within ``r2_slack`` of the best."""
    if not terms:
        return []
    x = np.stack([_feature(s_fit, *t) for t in terms], axis=1)
    xv = np.stack([_feature(s_val, *t) for t in terms], axis=1)
    xc, yc = x - x.mean(axis=0), y_fit - y_fit.mean()
    lam_max = float(np.max(np.abs(xc.T @ yc))) / x.shape[0]
    if lam_max <= 0:
        return []
    lams = lam_max * np.geomspace(0.5, 1e-6, 25)
    cands = []
    for w in _lasso_path(x, y_fit, lams, lasso_iters):
        sup = tuple(np.flatnonzero(np.abs(w) > 1e-12 * max(1.0, float(np.max(np.abs(w))))).tolist())
        if cands and cands[-1][0] == sup:
            continue
        b, wd = _lstsq(x[:, list(sup)], y_fit)
        cands.append((sup, _r2(y_val, b + xv[:, list(sup)] @ wd)))
    b, wd = _lstsq(x, y_fit)
    cands.append((tuple(range(len(terms))), _r2(y_val, b + xv @ wd)))
    best = max(c[1] for c in cands)
    ok = [c for c in cands if c[1] >= best - r2_slack]
    sup = min(ok, key=lambda c: (len(c[0]), -c[1]))[0]
    return [terms[i] for i in sup]


def _prune(terms, s_fit, y_fit, s_val, y_val, r2_slack):
    """Drop terms one at a time (weakest first) while the validation R² stays within slack."""
    def score(ts):
        x = np.stack([_feature(s_fit, *t) for t in ts], axis=1) if ts else np.zeros((len(y_fit), 0))
        xv = np.stack([_feature(s_val, *t) for t in ts], axis=1) if ts else np.zeros((len(y_val), 0))
        b, w = _lstsq(x, y_fit)
        return _r2(y_val, b + xv @ w), w

    base, w = score(terms)
    floor = base - r2_slack
    order = np.argsort(np.abs(w))
    keep = list(terms)
    for i in order.tolist():
        t = terms[i]
        trial = [u for u in keep if u != t]
        r2, _ = score(trial)
        if r2 >= floor:
            keep = trial
        elif len(keep) > 64:
            break  # pruning is a finishing step: stop at the first term that matters
    return keep


def _records(terms, values, n) -> list[InteractionRecord]:
    recs = [
        InteractionRecord(players=t, type=k, value=float(v), mask=sum(1 << i for i in t), order=len(t))
        for (k, t), v in zip(terms, values)
    ]
    recs.sort(key=lambda r: (-abs(r.value), r.type != "and", r.order, r.players))
    return recs


def _exact(value_fn, n, q_ratio, batch_size, progress, tol) -> SparseAndOrResult:
    idx = np.arange(2**n)
    masks = ((idx[:, None] >> np.arange(n)) & 1).astype(bool)
    v = _evaluate(value_fn, masks, batch_size, progress, "sparse_and_or: all masks")
    res = and_or(jnp.asarray(v, dtype=jnp.result_type(float)), q_ratio=q_ratio)
    i_and, i_or = np.asarray(res.I_and), np.asarray(res.I_or)
    scale = max(float(np.max(np.abs(i_and[1:]))) if n else 0.0, float(np.max(np.abs(i_or[1:]))), 1e-300)
    terms, values = [], []
    for kind, arr in (("and", i_and), ("or", i_or)):
        for mask in np.flatnonzero(np.abs(arr) > tol * scale).tolist():
            if mask:
                terms.append((kind, tuple(i for i in range(n) if mask >> i & 1)))
                values.append(arr[mask])
    recs = _records(terms, values, n)
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
        r2_slack: the ℓ1 selection and pruning keep the sparsest model whose validation R² is
            within this of the best.
        patience: discovery rounds without a better validation error before it stops.
        batch_size: rows per ``value_fn`` call.
        exact: True: always the exact path (needs ``budget ≥ 2**n``); False: never; None
            (default): exact when ``budget ≥ 2**n`` and ``n ≤ exact_max_n``.
        exact_max_n: largest ``n`` of the automatic exact path.
        q_ratio: noise box of the exact path (:func:`jinter.and_or`); unused by the sampled fit.
        progress: tqdm progress bars on the model calls and the discovery.
        lasso_iters: FISTA iterations per point of the lasso path.

    Returns:
        :class:`SparseAndOrResult`.

    Raises:
        ValueError: ``n < 1``, bad ``budget`` / ``keep_rates`` / ``holdout``, ``budget`` too
            small to fit anything (the message says how many calls are needed), ``value_fn``
            returning the wrong shape.
        NonFiniteOutputError: ``value_fn`` returned NaN/inf (the message names the mask's players).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer ≥ 1 (number of players), got {n!r}")
    n = int(n)
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be a positive integer (model calls), got {budget!r}")
    budget = int(budget)
    kr = np.asarray(keep_rates, dtype=np.float64).reshape(-1)
    if kr.size == 0 or not np.all((kr > 0) & (kr < 1)):
        raise ValueError(f"keep_rates must be probabilities in (0, 1), got {keep_rates!r}")
    if not (0 < holdout < 1):
        raise ValueError(f"holdout must be in (0, 1), got {holdout!r}")
    if max_order is None:
        max_order = n
    if int(max_order) < 1:
        raise ValueError(f"max_order must be ≥ 1, got {max_order!r}")
    max_order = min(int(max_order), n)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size!r}")
    batch_size = int(batch_size)
    if not callable(value_fn):
        raise TypeError(f"value_fn must be callable, got {type(value_fn).__name__}")

    fits_all = n <= 62 and budget >= 2**n
    if exact is True and not fits_all:
        need = f"2**{n} = {2**n}" if n <= 62 else f"2**{n}"
        raise ValueError(f"exact=True needs budget ≥ {need} calls (all masks); got budget={budget}")
    if exact is True or (exact is None and fits_all and n <= exact_max_n):
        return _exact(value_fn, n, q_ratio, batch_size, progress, 1e-9)

    # budget split: held-out | validation | fit
    min_fit = 8 * (n.bit_length() + 1)
    min_val, min_hold = 8, 10
    n_hold = max(min_hold, int(round(holdout * budget)))
    n_train = budget - n_hold
    n_val = max(min_val, n_train // 5)
    n_fit = n_train - n_val
    if n_fit < min_fit:
        need = math.ceil(max(min_fit + min_val, (min_fit + min_val) * 1.0) / (1 - holdout))
        need = max(need, min_fit + min_val + min_hold, math.ceil((min_fit / 0.8) / (1 - holdout)) + 1)
        raise ValueError(
            f"budget={budget} calls is too small for n={n} players: the sampled fit needs at least "
            f"{need} calls ({min_fit} to fit, the rest to validate and to hold out for the R²)"
        )

    rng = np.random.default_rng(seed)
    masks = _draw(rng, budget, n, kr)
    y = _evaluate(value_fn, masks, batch_size, progress, "sparse_and_or: model calls")
    s_hold, y_hold = masks[:n_hold], y[:n_hold]
    s_fit, y_fit = masks[n_hold : n_hold + n_fit], y[n_hold : n_hold + n_fit]
    s_val, y_val = masks[n_hold + n_fit :], y[n_hold + n_fit :]

    if max_terms is None:
        max_terms = int(min(max(n_fit // 3, 1), 400))
    terms = _discover(s_fit, y_fit, s_val, y_val, max_order, int(max_terms), int(patience), progress)
    terms = _select_l1(_neighbors(terms), s_fit, y_fit, s_val, y_val, r2_slack, int(lasso_iters))
    terms = _prune(terms, s_fit, y_fit, s_val, y_val, r2_slack)
    s_tr, y_tr = masks[n_hold:], y[n_hold:]
    x = np.stack([_feature(s_tr, *t) for t in terms], axis=1) if terms else np.zeros((len(y_tr), 0))
    b, w = _lstsq(x, y_tr)
    nz = np.abs(w) > 0
    terms = [t for t, k in zip(terms, nz) if k]
    recs = _records(terms, w[nz], n)
    out = SparseAndOrResult(recs, b, n, 0.0, budget, n_hold, False,
                            float(sum(abs(r.value) for r in recs)), tuple(float(p) for p in kr))
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
    baseline: ArrayLike | _BaselineName = "zeros",
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
    shape = tuple(players.input_shape)
    n = int(players.n)
    if isinstance(model, tuple):
        if len(model) != 2:
            raise ValueError(f"a model pair must be (features, head), got {len(model)} elements")
        fparams, hparams = params if isinstance(params, tuple) else (params, params)
        feats_fn = functools.partial(_features_jit, _adapt(model[0], fparams))
        apply = _adapt(model[1], hparams)
        xa = jnp.asarray(x)
        feats = jnp.asarray(feats_fn(xa[None]))
        if feats.shape[1:] != shape:
            raise ValueError(f"features(x) has shape {feats.shape[1:]}, not the player input shape {shape}")
        xa = feats[0]
    else:
        feats_fn = None
        apply = _adapt(model, params)
        xa = jnp.asarray(x)
    if xa.shape != shape:
        raise ValueError(
            f"x must be ONE input of shape {shape} (players.input_shape of {type(players).__name__}); "
            f"got shape {xa.shape}"
        )
    base = jnp.asarray(_resolve_baseline(baseline, data, feats_fn, players, xa))
    if base.shape != shape:
        raise ValueError(f"baseline must broadcast to the input shape {shape}, got {base.shape}")
    if reward is not None and not isinstance(reward, _LabelReward):
        if not callable(reward):
            raise ValueError(f"reward must be callable, got {type(reward).__name__}")
        reward = _Static(reward)
    if isinstance(reward, _LabelReward):
        lab = np.asarray(reward.label)
        if lab.size != 1:
            raise ValueError(f"label must be a single class for one input, got shape {lab.shape}")
        reward = _LabelReward(lab.reshape(()), reward.kind, (int(lab.reshape(())),) * 2)
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
        for a in range(0, m, c):
            rows = np.zeros((c, n), dtype=bool)
            rows[: min(c, m - a)] = s[a : a + c]
            outs.append(np.asarray(_eval_rows(apply, reward, xa, base, owner, jnp.asarray(rows), chunk=c))[: m - a])
        vals = np.concatenate(outs) if outs else np.zeros(0)
        _check_finite_rows(vals, s, 0, "model value is {value} on masked input row", "in all")
        return vals

    return value_fn
