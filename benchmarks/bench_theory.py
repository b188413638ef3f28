"""Benchmark of jinter.theory.noisy_regression (docs/math.md §5).

1. n = 12: butterfly closed form vs a dense numpy solve of (A + σ²D) ŵ = A w* (A, D prebuilt).
2. n = 20 with 32 σ² values (one w*): wall time of the closed form (target < 10 s on CPU).
3. row_norms (Theorem 4) vs dense row norms of M̂ at n = 10.

Ratios are of medians measured in the same run. Usage: python benchmarks/bench_theory.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import save_results  # noqa: E402
from oracles import noisy_regression_matrices  # noqa: E402

from jinter import theory as T  # noqa: E402
from jinter.transforms import mask_orders  # noqa: E402


def timeit(fn, reps):
    fn()  # warm-up / compile
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []

    n1 = 9 if args.quick else 12
    reps = 3 if args.quick else 5
    a, d = noisy_regression_matrices(n1)
    w = rng.normal(size=2**n1)
    s2 = 0.05
    ref = lambda: np.linalg.solve(a + s2 * d, a @ w)
    f = jax.jit(T.noisy_regression)
    cand = lambda: f(w, s2).block_until_ready()
    err = float(np.abs(np.asarray(f(w, s2)) - ref()).max())
    t_ref, t_cand = timeit(ref, reps), timeit(cand, reps * 4)
    rows.append(dict(case=f"noisy_regression n={n1}, 1 sigma2", reference="dense numpy solve",
                     t_reference_s=t_ref, t_candidate_s=t_cand, ratio=t_ref / t_cand, max_abs_diff=err))

    n2 = 16 if args.quick else 20
    w2 = rng.normal(size=2**n2)
    sig = jnp.logspace(-4, 1, 32)
    cand2 = lambda: T.noisy_regression(w2, sig).block_until_ready()
    t0 = time.perf_counter()
    cand2()
    t_first = time.perf_counter() - t0
    t_warm = timeit(cand2, 1 if args.quick else 3)
    rows.append(dict(case=f"noisy_regression n={n2}, 32 sigma2", reference="target 10 s (CPU)",
                     t_reference_s=10.0, t_candidate_s=t_warm, t_first_call_s=t_first, ratio=10.0 / t_warm))

    n3 = 8 if args.quick else 10
    a3, d3 = noisy_regression_matrices(n3)
    ref3 = lambda: np.linalg.norm(np.linalg.solve(a3 + s2 * d3, a3), axis=1)
    cand3 = lambda: T.row_norms(n3, s2).block_until_ready()
    err3 = float(np.abs(np.asarray(T.row_norms(n3, s2))[mask_orders(n3)] - ref3()).max())
    t_ref3, t_cand3 = timeit(ref3, reps), timeit(cand3, reps * 4)
    rows.append(dict(case=f"row_norms n={n3}", reference="dense M-hat row norms",
                     t_reference_s=t_ref3, t_candidate_s=t_cand3, ratio=t_ref3 / t_cand3, max_abs_diff=err3))

    print(f"{'case':38s} {'reference':26s} {'ref [s]':>10s} {'jinter [s]':>11s} {'ratio':>9s}")
    for r in rows:
        print(f"{r['case']:38s} {r['reference']:26s} {r['t_reference_s']:10.4f} {r['t_candidate_s']:11.4f} "
              f"{r['ratio']:8.1f}x")
    save_results("bench_theory", dict(rows=rows), quick=args.quick)


if __name__ == "__main__":
    main()
