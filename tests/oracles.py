"""Brute-force oracles shared by the tests and the benchmarks: popcount, dense Kronecker powers
(transform matrices), the noisy regression's dense matrices, the AND-OR LPs (one game and the
shared objective [C24]) solved by HiGHS, and the least-norm optimum.

Dense 2**n × 2**n matrices are fine here (n ≤ 12); the library never builds them. The
benchmarks import this module by path (``benchmarks/`` puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import scipy.sparse as sp


def popcount(s: int) -> int:
    """Number of players in the mask ``s`` (bit i = player i)."""
    return bin(int(s)).count("1")


def kron_power(factor, n: int) -> np.ndarray:
    """``factor ⊗ … ⊗ factor`` (n times), e.g. the dense Möbius matrix for ``[[1, 0], [-1, 1]]``."""
    out = np.ones((1, 1))
    for _ in range(n):
        out = np.kron(out, np.asarray(factor, dtype=float))
    return out


def dense_mobius(n: int) -> np.ndarray:
    """The dense 2**n × 2**n Möbius matrix (bit i = player i)."""
    return kron_power([[1.0, 0.0], [-1.0, 1.0]], n)


def noisy_regression_matrices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A, D)`` of the noisy regression [D24] from their definitions: ``A[T, T'] = 2^{-|T∪T'|}``,
    ``D = diag(2^{|T|})``."""
    idx = np.arange(2**n)
    orders = np.array([popcount(t) for t in idx])
    return 2.0 ** -orders[idx[:, None] | idx[None, :]].astype(float), np.diag(2.0 ** orders.astype(float))


def dense_noisy_regression(n: int, s2: float) -> np.ndarray:
    """``M̂ = (A + σ²D)⁻¹A`` by a dense solve."""
    a, d = noisy_regression_matrices(n)
    return np.linalg.solve(a + s2 * d, a)


def dense(fn, size: int) -> np.ndarray:
    """The matrix of the linear map ``fn`` on vectors of length ``size`` (column j = fn(e_j))."""
    return np.stack([np.asarray(fn(e)) for e in np.eye(size)], axis=1)


def lp_problem(v: np.ndarray, rho_q: float):
    """The LP of docs/math.md §3 as ``(cost, A_ub, b_ub, bounds)`` (sparse). Variables
    ``(o_and, q, s, t)``: ``|M o_and| ≤ s``, ``|L(o_and − v − q)| ≤ t`` off ∅, ``|q| ≤ rho_q``,
    cost ``Σ s + Σ t``; the ``q`` block is left out when ``rho_q == 0``."""
    v = np.asarray(v, dtype=np.float64)
    N = v.shape[-1]
    n = N.bit_length() - 1
    M = sp.csr_matrix(dense_mobius(n))
    L = sp.csr_matrix(dense_mobius(n)[:, ::-1])
    Mn, Ln = M[1:], L[1:]
    I = sp.identity(N - 1, format="csr")  # noqa: E741
    Z = None
    A = sp.bmat(
        [[Mn, None, -I, Z], [-Mn, None, -I, Z], [Ln, -Ln, Z, -I], [-Ln, Ln, Z, -I]], format="csr"
    ) if rho_q > 0 else sp.bmat([[Mn, -I, Z], [-Mn, -I, Z], [Ln, Z, -I], [-Ln, Z, -I]], format="csr")
    lv = Ln @ v
    b = np.concatenate([np.zeros(2 * (N - 1)), lv, -lv])
    nq = N if rho_q > 0 else 0
    cost = np.concatenate([np.zeros(N + nq), np.ones(2 * (N - 1))])
    bounds = [(None, None)] * N + [(-rho_q, rho_q)] * nq + [(0, None)] * (2 * (N - 1))
    return cost, A, b, bounds


def shared_lp_problem(vs: np.ndarray, alpha: float, gb: np.ndarray, rq: np.ndarray):
    """The shared LP of [C24] (docs/math.md §3) as ``(cost, A_ub, b_ub, bounds)`` (sparse).
    Variables: γ̄ (free), γ̂^(i) (box gb_i), q^(i) (box rq_i), then per type (AND, OR) the max
    e ≥ 0 and the per-model |I| bounds a^(i) ≥ 0: ±I^(i)(S) ≤ e_S and ≤ a^(i)_S for S ≠ ∅;
    cost (1−α)Σe + αΣa."""
    vs = np.asarray(vs, dtype=np.float64)
    m, N = vs.shape
    n = N.bit_length() - 1
    M = sp.csr_matrix(dense_mobius(n))
    L = sp.csr_matrix(dense_mobius(n)[:, ::-1])
    nv = N * (1 + 2 * m) + 2 * (N - 1) * (1 + m)
    off_e = N * (1 + 2 * m)
    blocks, rhs = [], []
    for t, (F, sq, const) in enumerate(((M, 0.5, 0.5 * (M @ vs.T).T), (L, -0.5, -0.5 * (L @ vs.T).T))):
        F = F[1:]
        e_col = off_e + t * (N - 1) * (1 + m)
        for i in range(m):
            zero = sp.csr_matrix((N - 1, N))
            lin = sp.hstack([F] + [F if k == i else zero for k in range(m)]
                            + [sq * F if k == i else zero for k in range(m)] + [sp.csr_matrix((N - 1, nv - off_e))])
            for col in (e_col, e_col + (N - 1) * (1 + i)):
                sel = sp.csr_matrix((np.ones(N - 1), (np.arange(N - 1), col + np.arange(N - 1))), shape=(N - 1, nv))
                for sg in (1.0, -1.0):
                    blocks.append(sg * lin - sel)
                    rhs.append(-sg * const[i, 1:])
    cost = np.zeros(nv)
    for t in range(2):
        e_col = off_e + t * (N - 1) * (1 + m)
        cost[e_col : e_col + N - 1] = 1 - alpha
        cost[e_col + N - 1 : e_col + (N - 1) * (1 + m)] = alpha
    bounds = ([(None, None)] * N + [(-gb[i], gb[i]) for i in range(m) for _ in range(N)]
              + [(-rq[i], rq[i]) for i in range(m) for _ in range(N)] + [(0, None)] * (nv - off_e))
    return cost, sp.vstack(blocks, format="csr"), np.concatenate(rhs), bounds


def solve_lp(problem, *, time_limit: float | None = None) -> tuple[float, float, np.ndarray | None]:
    """HiGHS (scipy ``linprog``) on ``problem = (cost, A_ub, b_ub, bounds)``:
    ``(optimum, seconds, x)``, with ``optimum = nan`` and ``x = None`` when HiGHS stops without
    an optimum (e.g. at ``time_limit`` seconds). Only the solve is timed."""
    from scipy.optimize import linprog

    cost, A, b, bounds = problem
    options = {} if time_limit is None else {"time_limit": time_limit}
    t = time.perf_counter()
    r = linprog(cost, A_ub=A, b_ub=b, bounds=bounds, method="highs", options=options)
    seconds = time.perf_counter() - t
    return (float(r.fun), seconds, r.x) if r.status == 0 else (float("nan"), seconds, None)


def highs(v: np.ndarray, rho_q: float = 0.0, *, time_limit: float | None = None):
    """HiGHS on :func:`lp_problem`: ``(optimum or nan, seconds, x)`` (see :func:`solve_lp`)."""
    return solve_lp(lp_problem(v, rho_q), time_limit=time_limit)


def highs_shared(vs: np.ndarray, alpha: float, gb: np.ndarray, rq: np.ndarray, *, time_limit: float | None = None):
    """HiGHS on :func:`shared_lp_problem`: ``(optimum or nan, seconds, x)``."""
    return solve_lp(shared_lp_problem(vs, alpha, gb, rq), time_limit=time_limit)


def lp_optimum(v: np.ndarray, rho_q: float, full: bool = False):
    """Exact optimum of docs/math.md §3 (:func:`lp_problem` by HiGHS); ``full``: also the LP's
    point ``(o_and, q, s, t)`` (``q = 0`` when ``rho_q == 0``)."""
    fun, _, x = highs(v, rho_q)
    assert x is not None, "HiGHS found no optimum"
    if not full:
        return fun
    N = np.shape(v)[-1]
    if not rho_q > 0:
        x = np.concatenate([x[:N], np.zeros(N), x[N:]])
    return fun, x


def lp_shared(vs: np.ndarray, alpha: float, gb: np.ndarray, rq: np.ndarray) -> float:
    """Exact optimum of the shared objective [C24] (:func:`shared_lp_problem` by HiGHS)."""
    fun, _, x = highs_shared(vs, alpha, gb, rq)
    assert x is not None, "HiGHS found no optimum"
    return fun


def least_norm_optimum(v: np.ndarray, q_ratio: float, slack: float = 1e-9) -> dict:
    """The canonical AND-OR optimum of one game by two exact solves (cvxpy: HiGHS, then Clarabel).

    1. ``F* = min Σ_{T≠∅} |I_and(T)| + |I_or(T)|`` over ``γ`` (``γ(∅) = 0``) and ``|q| ≤ ρ``
       (an LP, HiGHS);
    2. ``min ‖γ‖² + ‖q‖²`` subject to the same constraints and ``F ≤ F* + slack·max(1, F*)``
       (a QP over the LP's optimal set, Clarabel).

    Returns ``F*`` and the least-norm ``γ``, ``q`` and interactions with singletons merged into
    AND (``I_or({i}) = 0``) and the bias in ``I_and[0]``, as :func:`jinter.and_or` reports them.
    """
    import cvxpy as cp

    from jinter.transforms import mobius, or_mobius

    v = np.asarray(v, dtype=np.float64)
    size = v.shape[-1]
    n = size.bit_length() - 1
    m_and, m_or = dense(mobius, size), dense(or_mobius, size)
    rq = q_ratio * abs(v[-1] - v[0])
    g, q = cp.Variable(size), cp.Variable(size)
    w = 0.5 * (v + q)
    cost = cp.sum(cp.abs((m_and @ (w + g))[1:])) + cp.sum(cp.abs((m_or @ (w - g))[1:]))
    cons = [g[0] == 0, cp.abs(q) <= rq] if q_ratio > 0 else [g[0] == 0, q == 0]
    fstar = _lp_then_least_norm(cost, cons, cp.sum_squares(g) + cp.sum_squares(q), slack)
    gv, qv = np.asarray(g.value), np.asarray(q.value)
    i_and = m_and @ (0.5 * (v + qv) + gv)
    i_or = m_or @ (0.5 * (v + qv) - gv)
    for i in range(n):
        i_and[1 << i] += i_or[1 << i]
        i_or[1 << i] = 0.0
    i_and[0], i_or[0] = v[0] + qv[0], 0.0
    return {"objective": fstar, "gamma": gv, "q": qv, "I_and": i_and, "I_or": i_or}


def least_norm_shared(vs: np.ndarray, q_ratio: float, alpha: float = 0.1, gb: np.ndarray | None = None,
                      slack: float = 1e-11) -> dict:
    """The canonical optimum of the shared objective [C24] by two exact solves (cvxpy: HiGHS, then Clarabel).

    Variables as in :func:`shared_lp_problem`: ``γ̄`` (``γ̄(∅) = 0``, no loss: a constant added to
    ``γ̄`` changes no interaction), ``|γ̂^(i)| ≤ gb_i`` on every subset (∅ included),
    ``|q^(i)| ≤ q_ratio·|v^(i)(N) − v^(i)(∅)|``; ``gb`` defaults to ``0.5·|v^(i)(N) − v^(i)(∅)|``.

    1. ``F* = min Σ_{S≠∅} φ(I_and(S)) + φ(I_or(S))``, ``φ(z) = (1−α) max_i|z_i| + α Σ_i|z_i|`` (HiGHS);
    2. ``min ‖γ̄‖² + Σ_i ‖γ̂^(i)‖² + ‖q^(i)‖²`` subject to the same constraints and
       ``F ≤ F* + slack·max(1, F*)`` (Clarabel). The shared optimal sets are flat (the max in φ
       leaves the other models' entries free): against slack 1e-12, slack 1e-9 moved the
       interactions by 2.7e-4·max|I| on a measured n = 6 input, 1e-11 by 2.4e-6 (linear in it).

    Returns ``F*``, ``gamma_shared``, ``gamma_model`` (unshifted), ``q`` and the interactions as
    :func:`jinter.and_or_shared` reports them (``I_and[:, 0]`` the bias, ``I_or[:, 0] = 0``, no
    merging of singletons).
    """
    import cvxpy as cp

    from jinter.transforms import mobius, or_mobius

    vs = np.asarray(vs, dtype=np.float64)
    m, size = vs.shape
    d = np.abs(vs[:, -1] - vs[:, 0])
    gb = 0.5 * d if gb is None else np.broadcast_to(np.asarray(gb, dtype=np.float64), (m,))
    rq = q_ratio * d
    m_and, m_or = dense(mobius, size)[1:], dense(or_mobius, size)[1:]
    gbar, ghat, q = cp.Variable(size), cp.Variable((m, size)), cp.Variable((m, size))
    ia = cp.vstack([m_and @ (0.5 * (vs[i] + q[i]) + gbar + ghat[i]) for i in range(m)])
    io = cp.vstack([m_or @ (0.5 * (vs[i] + q[i]) - gbar - ghat[i]) for i in range(m)])
    cost = sum((1 - alpha) * cp.sum(cp.max(cp.abs(x), axis=0)) + alpha * cp.sum(cp.abs(x)) for x in (ia, io))
    cons = [gbar[0] == 0] + [cp.abs(ghat[i]) <= gb[i] for i in range(m)]
    cons += [cp.abs(q[i]) <= rq[i] for i in range(m)] if q_ratio > 0 else [q == 0]
    fstar = _lp_then_least_norm(cost, cons, cp.sum_squares(gbar) + cp.sum_squares(ghat) + cp.sum_squares(q), slack)
    gv, hv, qv = np.asarray(gbar.value), np.asarray(ghat.value), np.asarray(q.value)
    w = vs + qv
    i_and = np.stack([dense(mobius, size) @ (0.5 * w[i] + gv + hv[i]) for i in range(m)])
    i_or = np.stack([dense(or_mobius, size) @ (0.5 * w[i] - gv - hv[i]) for i in range(m)])
    i_and[:, 0], i_or[:, 0] = w[:, 0], 0.0
    return {"objective": fstar, "gamma_shared": gv, "gamma_model": hv, "q": qv, "I_and": i_and, "I_or": i_or}



def shared_salient_sets(i_and: np.ndarray, i_or: np.ndarray, frac: float = 0.05):
    """Ω_shared of [C24] from per-model interactions ``(m, *batch, 2**n)``: ``(and, or)`` masks over
    the non-empty sets ``(*batch, 2**n − 1)`` and the per-model thresholds ``τ (m, *batch)``."""
    tau = frac * np.maximum(np.abs(i_and[..., 1:]).max(-1), np.abs(i_or[..., 1:]).max(-1))
    sal = lambda x: np.all(np.abs(x[..., 1:]) >= tau[..., None], axis=0)  # noqa: E731
    return sal(i_and), sal(i_or), tau

def _lp_then_least_norm(cost, cons, norm, slack: float) -> float:
    """Solve ``min cost`` (HiGHS), then ``min norm`` over ``cost ≤ F* + slack·max(1, F*)``
    (Clarabel, retried at looser accuracies if it stalls); the variables hold the QP's point.
    Returns ``F*``."""
    import cvxpy as cp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cvxpy's bound propagation on 0·inf
        lp = cp.Problem(cp.Minimize(cost), cons)
        lp.solve(solver=cp.HIGHS)
        assert lp.status == cp.OPTIMAL, lp.status
        fstar = float(lp.value)
        qp = cp.Problem(cp.Minimize(norm), cons + [cost <= fstar + slack * max(1.0, fstar)])
        for acc in (1e-10, 1e-9, 1e-8):  # Clarabel can stall at the tightest tolerances
            try:
                qp.solve(solver=cp.CLARABEL, tol_gap_abs=acc, tol_gap_rel=acc, tol_feas=acc)
            except cp.error.SolverError:
                continue
            if qp.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
                break
        assert qp.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), qp.status
    return fstar
