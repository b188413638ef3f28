"""Reference recipe for the AND-OR split (faithful to the papers' code): dense matrices + SGD.

[R24] / [D24] / [C24] learn γ (and the noise q) by minimizing ‖I_and‖₁ + ‖I_or‖₁ with SGD
with momentum, the learning rate decaying from 1e-5 to 1e-6 over 10k steps, with the
interaction transforms as dense 2^n×2^n matrices. This numpy port keeps exactly that: dense
Möbius matrices, (sub)gradients through ``sign``, momentum 0.9, lr decayed geometrically
1e-5 → 1e-6, q clipped to its box after each step. It is the baseline of
``bench_and_or.py``; it is not part of the library.
"""

from __future__ import annotations

import _common  # noqa: F401 - puts tests/ (the oracles) on sys.path
import numpy as np
from oracles import dense_mobius


def reference_and_or(
    v: np.ndarray,
    *,
    q_ratio: float = 0.02,
    steps: int = 10_000,
    lr_start: float = 1e-5,
    lr_end: float = 1e-6,
    momentum: float = 0.9,
) -> dict:
    """SGD-with-momentum AND-OR split of one game ``v`` (2**n,). Returns I_and, I_or, q, objective."""
    v = np.asarray(v, dtype=np.float64)
    N = v.shape[-1]
    n = N.bit_length() - 1
    M = dense_mobius(n)
    L = M[:, ::-1]  # Möbius after the complement (index reversal)
    rq = q_ratio * abs(v[-1] - v[0])
    gamma = np.zeros(N)
    q = np.zeros(N)
    mg = np.zeros(N)
    mq = np.zeros(N)
    lrs = lr_start * (lr_end / lr_start) ** (np.arange(steps) / max(steps - 1, 1))
    mask = np.ones(N)
    mask[0] = 0.0  # the bias carries no cost
    for lr in lrs:
        w = v + q
        i_and = M @ (0.5 * w + gamma)
        i_or = -(L @ (0.5 * w - gamma))
        sa, so = np.sign(i_and) * mask, np.sign(i_or) * mask
        g_gamma = M.T @ sa + L.T @ so
        g_q = 0.5 * (M.T @ sa) - 0.5 * (L.T @ so)
        mg = momentum * mg + g_gamma
        mq = momentum * mq + g_q
        gamma -= lr * mg
        q = np.clip(q - lr * mq, -rq, rq)
    w = v + q
    i_and = M @ (0.5 * w + gamma)
    i_or = -(L @ (0.5 * w - gamma))
    obj = float(np.sum(np.abs(i_and[1:])) + np.sum(np.abs(i_or[1:])))
    return {"I_and": i_and, "I_or": i_or, "q": q, "gamma": gamma, "objective": obj}
