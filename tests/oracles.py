"""Brute-force oracles shared by the tests and the benchmarks: popcount, dense Kronecker powers
(transform matrices), the noisy regression's dense matrices and the least-norm optimum.

Dense 2**n × 2**n matrices are fine here (n ≤ 12); the library never builds them. The
benchmarks import this module by path (``benchmarks/`` puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import warnings

import numpy as np


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cvxpy's bound propagation on 0·inf
        lp = cp.Problem(cp.Minimize(cost), cons)
        lp.solve(solver=cp.HIGHS)
        assert lp.status == cp.OPTIMAL, lp.status
        fstar = float(lp.value)
        qp = cp.Problem(cp.Minimize(cp.sum_squares(g) + cp.sum_squares(q)),
                        cons + [cost <= fstar + slack * max(1.0, fstar)])
        qp.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
        assert qp.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), qp.status
    gv, qv = np.asarray(g.value), np.asarray(q.value)
    i_and = m_and @ (0.5 * (v + qv) + gv)
    i_or = m_or @ (0.5 * (v + qv) - gv)
    for i in range(n):
        i_and[1 << i] += i_or[1 << i]
        i_or[1 << i] = 0.0
    i_and[0], i_or[0] = v[0] + qv[0], 0.0
    return {"objective": fstar, "gamma": gv, "q": qv, "I_and": i_and, "I_or": i_or}
