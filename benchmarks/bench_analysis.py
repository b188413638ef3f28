"""Analysis benchmarks: top-k, sparsity curve and generalization power vs plain numpy.

Each row times a numpy reference and jinter in the same run (alternating repetitions,
medians), checks they agree, and prints their ratio; numbers go to
``benchmarks/results/bench_analysis.json``.

1. ``top_interactions`` (k=10, AND + OR) on one sample at n=20 vs a full stable argsort of
   ``|I|`` (the obvious implementation).
2. ``sparsity_curve`` on 50 samples at n=14 vs numpy (normalize, ``np.sort``, mean).
3. ``generalization_power`` on 50 samples at n=14 vs numpy boolean masks.

Usage: ``python benchmarks/bench_analysis.py [--quick]`` (``--quick``: small sizes, a smoke run).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from _common import compare, save_results  # noqa: E402

from jinter.analysis import generalization_power, sparsity_curve, top_interactions  # noqa: E402


def ref_top(a: np.ndarray, o: np.ndarray, k: int) -> list[tuple[str, int, float]]:
    flat = np.abs(np.concatenate([a[1:], o[1:]]))
    idx = np.argsort(-flat, kind="stable")[:k]
    m = a.size - 1
    return [(("and", "or")[i // m], i % m + 1, float((a, o)[i // m][i % m + 1])) for i in idx]


def ref_sparsity(a: np.ndarray, o: np.ndarray) -> np.ndarray:
    x = np.abs(np.concatenate([a[:, 1:], o[:, 1:]], axis=1))
    x = x / x.max(axis=1, keepdims=True)
    return np.sort(x, axis=1)[:, ::-1].mean(0)


def ref_gp(m: tuple, b: tuple, tm: float, tb: float) -> float:
    fr = []
    for s in range(m[0].shape[0]):
        n_sal = n_gen = 0
        for im, ib in zip(m, b):
            sal = np.abs(im[s, 1:]) > tm
            gen = sal & (np.abs(ib[s, 1:]) > tb) & (im[s, 1:] * ib[s, 1:] > 0)
            n_sal += sal.sum()
            n_gen += gen.sum()
        if n_sal:
            fr.append(n_gen / n_sal)
    return float(np.mean(fr))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_top, n_b, samples, reps = (12, 8, 8, 3) if args.quick else (20, 14, 50, 9)
    rng = np.random.default_rng(0)
    rows = []

    a, o = rng.standard_normal((2, 2**n_top))
    got = [(r.type, r.mask, r.value) for r in top_interactions(a, o, 10)]
    assert got == ref_top(a, o, 10)
    times = compare(lambda: ref_top(a, o, 10), lambda: top_interactions(a, o, 10), reps)
    rows.append(("top_interactions k=10", n_top, "numpy argsort", *times))

    a, o = rng.standard_normal((2, samples, 2**n_b))
    np.testing.assert_allclose(np.asarray(sparsity_curve(a, o)), ref_sparsity(a, o), rtol=1e-12)
    times = compare(lambda: ref_sparsity(a, o), lambda: sparsity_curve(a, o), reps)
    rows.append(("sparsity_curve", n_b, "numpy sort", *times))

    ba, bo = rng.standard_normal((2, samples, 2**n_b))
    h_ref = ref_gp((a, o), (ba, bo), 1.0, 1.0)
    assert abs(float(generalization_power((a, o), (ba, bo), 1.0, 1.0).h_bar) - h_ref) < 1e-12
    times = compare(
        lambda: ref_gp((a, o), (ba, bo), 1.0, 1.0),
        lambda: generalization_power((a, o), (ba, bo), 1.0, 1.0).h_bar,
        reps,
    )
    rows.append(("generalization_power", n_b, "numpy masks", *times))

    print(f"{'benchmark':24s} {'n':>3s} {'reference':16s} {'ref ms':>9s} {'jinter ms':>10s} {'speedup':>8s}")
    out = []
    for name, n, ref, tr, tc in rows:
        print(f"{name:24s} {n:3d} {ref:16s} {1e3 * tr:9.2f} {1e3 * tc:10.2f} {tr / tc:7.1f}x")
        out.append({"benchmark": name, "n": n, "reference": ref, "ref_s": tr, "jinter_s": tc, "speedup": tr / tc})
    save_results("bench_analysis", {"samples": samples, "reps": reps, "rows": out}, quick=args.quick)


if __name__ == "__main__":
    main()
