"""Benchmark of the exact AND-OR decomposition (jinter.decomposition.and_or).

Compares, in the same run (ratios of medians):
1. one game at n=10, q_ratio=0: HiGHS (scipy.optimize.linprog on the same LP, sparse matrices)
   vs and_or (compiled, tol=1e-5 certified gap); both optima printed;
2. the papers' recipe (benchmarks/reference_sgd.py: dense matrices, SGD + momentum,
   lr 1e-5→1e-6, 10k steps, numpy) vs and_or with q_ratio=0.02; objectives vs the LP optimum;
3. 64 games at n=10: one batched call vs 64 single calls (games/s);
4. n=16: time to certificate and final gap;
5. ``trained``: the n=10 games of a lightly trained MLP in tests/data/andor_trained_games.npz
   with q_ratio=0.02: HiGHS vs and_or (time, iterations, objective vs the LP optimum);
6. ``shared``: 3 models sharing interactions [C24] (q_ratio=0.02, α=0.1) at n=8, 3 inputs:
   HiGHS on the shared LP vs and_or_shared (tol=1e-5), objectives vs the LP optimum;
7. ``canonical``: ``and_or(canonical=True)`` on random games at n=6 (q_ratio 0 and 0.02) vs the
   least-norm QP over the LP's optimal set (cvxpy: HiGHS then Clarabel, tests/oracles.py):
   time, status, the largest interaction difference relative to max|I| (also for the default,
   arbitrary optimum), and the share of games verified canonical at n=8.
``--quick``: n=8 / 16 games / n=12 / 2k SGD steps / one trained game / shared n=6, for a smoke run.
Writes benchmarks/results/bench_and_or.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
from _common import save_results  # noqa: E402 - also puts tests/ (the oracles) on sys.path
from oracles import highs, highs_shared, least_norm_optimum  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_sgd import reference_and_or  # noqa: E402

from jinter.decomposition import and_or, and_or_shared  # noqa: E402


def timed(fn, repeats):
    out, times = None, []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", action="append",
                    choices=["highs", "reference", "batch", "large", "trained", "shared", "canonical"],
                    help="run only these sections (repeatable); results are merged into the JSON")
    args = ap.parse_args()
    todo = set(args.only or ["highs", "reference", "batch", "large", "trained", "shared", "canonical"])
    n1, n_batch, n_big, sgd_steps = (8, 16, 12, 2000) if args.quick else (10, 64, 16, 10_000)
    rng = np.random.default_rng(0)
    res: dict = {"quick": args.quick, "device": str(jax.devices()[0])}
    rows = []

    # 1. HiGHS vs and_or, q_ratio = 0
    games = [rng.normal(size=2**n1) for _ in range(3)]
    if "highs" in todo:
        _highs_section(games, n1, res, rows)
    if "reference" in todo:
        _reference_section(games[0], n1, sgd_steps, res, rows)
    if "batch" in todo:
        _batch_section(rng, n1, n_batch, res, rows)
    if "large" in todo:
        _large_section(rng, n_big, res, rows)
    if "trained" in todo:
        _trained_section(1 if args.quick else None, res, rows)
    if "shared" in todo:
        _shared_section(rng, 6 if args.quick else 8, res, rows)
    if "canonical" in todo:
        _canonical_section(2 if args.quick else 6, res, rows)
    _report(res, rows, merge=args.only is not None)


def _canonical_section(games, res, rows):
    out = {}
    for q_ratio in (0.0, 0.02):
        vs = np.random.default_rng(6).normal(size=(games, 64))
        and_or(vs, q_ratio=q_ratio, canonical=True)  # compile this batch shape (a slice of it compiles another)
        t0 = time.perf_counter()
        can = and_or(vs, q_ratio=q_ratio, canonical=True)
        t_can = time.perf_counter() - t0
        plain = and_or(vs, q_ratio=q_ratio)
        t0 = time.perf_counter()
        refs = [least_norm_optimum(v, q_ratio) for v in vs]
        t_qp = time.perf_counter() - t0
        d_can, d_plain = [], []
        for k, ref in enumerate(refs):
            scale = max(np.abs(ref["I_and"][1:]).max(), np.abs(ref["I_or"]).max())
            for dst, r in ((d_can, can), (d_plain, plain)):
                dst.append(max(np.abs(np.asarray(r.I_and[k]) - ref["I_and"])[1:].max(),
                               np.abs(np.asarray(r.I_or[k]) - ref["I_or"]).max()) / scale)
        out[f"q{q_ratio:g}"] = {
            "n": 6, "games": games, "canonical_s_per_game": t_can / games, "qp_s_per_game": t_qp / games,
            "verified": int(np.sum(np.asarray(can.status) == 0)), "max_rel_diff_canonical": max(d_can),
            "max_rel_diff_default": max(d_plain), "iterations": np.asarray(can.iterations).tolist(),
        }
        rows.append((f"canonical n=6 q={q_ratio:g} (vs least-norm QP)", t_qp / games, t_can / games,
                     t_qp / t_can, f"max |ΔI|/max|I| {max(d_can):.1e} (default optimum {max(d_plain):.2f}); "
                     f"{out[f'q{q_ratio:g}']['verified']}/{games} verified"))
    vs8 = np.random.default_rng(8).normal(size=(4, 256))
    and_or(vs8, q_ratio=0.02, canonical=True)  # compile
    t0 = time.perf_counter()
    r8 = and_or(vs8, q_ratio=0.02, canonical=True)
    out["n8"] = {"games": 4, "verified": int(np.sum(np.asarray(r8.status) == 0)),
                 "seconds_per_game": (time.perf_counter() - t0) / 4, "iterations": np.asarray(r8.iterations).tolist()}
    rows.append(("canonical n=8 q=0.02, share verified", 0.0, out["n8"]["seconds_per_game"], 0.0,
                 f"{out['n8']['verified']}/4 verified within max_iter"))
    res["canonical"] = out


def _highs_section(games, n1, res, rows):
    and_or(games[0], q_ratio=0.0)  # compile
    t_lp, t_us, rel = [], [], []
    for v in games:
        opt, tl, _ = highs(v)
        r, tu = timed(lambda: and_or(v, q_ratio=0.0), 3)
        t_lp.append(tl)
        t_us.append(tu)
        rel.append(float(r.objective) / opt - 1)
        assert bool(r.converged)
    ratio = statistics.median(t_lp) / statistics.median(t_us)
    res["highs_vs_and_or"] = {
        "n": n1, "highs_s": statistics.median(t_lp), "and_or_s": statistics.median(t_us),
        "speedup": ratio, "max_rel_diff_vs_lp": max(abs(x) for x in rel),
    }
    rows.append((f"1 game n={n1} q=0: HiGHS vs and_or", statistics.median(t_lp), statistics.median(t_us), ratio,
                 f"obj rel diff ≤ {max(abs(x) for x in rel):.1e}"))


def _reference_section(v, n1, sgd_steps, res, rows):
    # 2. reference SGD recipe vs and_or, q_ratio = 0.02
    rq = 0.02 * abs(v[-1] - v[0])
    opt_q, t_lpq, _ = highs(v, rq)
    t = time.perf_counter()
    ref = reference_and_or(v, q_ratio=0.02, steps=sgd_steps)
    t_ref = time.perf_counter() - t
    and_or(v, q_ratio=0.02)  # compile
    r, t_q = timed(lambda: and_or(v, q_ratio=0.02), 3)
    res["reference_vs_and_or"] = {
        "n": n1, "sgd_steps": sgd_steps, "reference_s": t_ref, "and_or_s": t_q, "speedup": t_ref / t_q,
        "lp_optimum": opt_q, "highs_s": t_lpq, "reference_objective": ref["objective"],
        "and_or_objective": float(r.objective), "and_or_gap": float(r.gap),
        "reference_excess": ref["objective"] / opt_q - 1, "and_or_excess": float(r.objective) / opt_q - 1,
    }
    rows.append((f"1 game n={n1} q=0.02: SGD ref vs and_or", t_ref, t_q, t_ref / t_q,
                 f"objective/LP-1: ref {ref['objective'] / opt_q - 1:+.2e}, ours {float(r.objective) / opt_q - 1:+.2e}"))


def _batch_section(rng, n1, n_batch, res, rows):
    # 3. batched vs single calls, alternated 3 times (load on the shared machine drifts)
    vb = rng.normal(size=(n_batch, 2**n1))

    def singles():
        return [and_or(x, q_ratio=0.0).objective for x in vb]

    rb = and_or(vb, q_ratio=0.0)  # compile both
    singles()
    tb_all, ts_all = [], []
    for _ in range(3):
        rb, t = timed(lambda: and_or(vb, q_ratio=0.0), 1)
        tb_all.append(t)
        rs, t = timed(singles, 1)
        ts_all.append(t)
    t_b, t_s = statistics.median(tb_all), statistics.median(ts_all)
    np.testing.assert_allclose(np.asarray(rb.objective), np.asarray(rs), rtol=1e-4)
    res["batched_vs_single"] = {
        "n": n1, "games": n_batch, "batched_s": t_b, "single_calls_s": t_s,
        "games_per_s_batched": n_batch / t_b, "games_per_s_single": n_batch / t_s, "speedup": t_s / t_b,
        "all_converged": bool(np.all(rb.converged)),
    }
    rows.append((f"{n_batch} games n={n1}: single calls vs batched", t_s, t_b, t_s / t_b,
                 f"{n_batch / t_b:.1f} vs {n_batch / t_s:.1f} games/s"))


def _large_section(rng, n_big, res, rows):
    # 4. large n
    vbig = rng.normal(size=2**n_big)
    t = time.perf_counter()
    rbig = and_or(vbig, q_ratio=0.0, max_iter=40_000)
    jax.block_until_ready(rbig)
    t_big = time.perf_counter() - t
    res["large_n"] = {
        "n": n_big, "seconds_incl_compile": t_big, "gap": float(rbig.gap), "iterations": int(rbig.iterations),
        "converged": bool(rbig.converged), "objective": float(rbig.objective),
    }
    rows.append((f"n={n_big} one game q=0 (incl. compile)", float("nan"), t_big, float("nan"),
                 f"gap {float(rbig.gap):.1e} after {int(rbig.iterations)} it"))


def _trained_section(limit, res, rows):
    # 5. trained-MLP games, q_ratio = 0.02 (the papers' default)
    path = Path(__file__).resolve().parents[1] / "tests" / "data" / "andor_trained_games.npz"
    data = np.load(path)
    vs = data["v"][:limit]
    q_ratio = float(data["q_ratio"])
    and_or(vs[:1], q_ratio=q_ratio)  # compile
    t_lp, t_us, rel, its = [], [], [], []
    for v in vs:
        opt, tl, _ = highs(v, q_ratio * abs(v[-1] - v[0]))
        r, tu = timed(lambda: and_or(v[None], q_ratio=q_ratio), 3)
        t_lp.append(tl)
        t_us.append(tu)
        rel.append(float(r.objective[0]) / opt - 1)
        its.append(int(r.iterations[0]))
        assert bool(r.converged[0])
    ratio = statistics.median(t_lp) / statistics.median(t_us)
    res["trained_q002"] = {
        "n": int(vs.shape[-1]).bit_length() - 1, "games": len(vs), "highs_s": statistics.median(t_lp),
        "and_or_s": statistics.median(t_us), "speedup": ratio, "iterations": its,
        "max_rel_diff_vs_lp": max(abs(x) for x in rel),
    }
    rows.append((f"{len(vs)} trained games q=0.02: HiGHS vs and_or", statistics.median(t_lp),
                 statistics.median(t_us), ratio, f"its {its}, obj rel diff ≤ {max(abs(x) for x in rel):.1e}"))


def _shared_section(rng, n, res, rows):
    # 6. shared interactions of 3 models [C24]: HiGHS vs and_or_shared
    m, games = 3, 3
    base = rng.normal(size=(games, 2**n))
    vss = base[:, None] + 0.5 * rng.normal(size=(games, m, 2**n))  # correlated models
    and_or_shared(vss[0])  # compile
    t_lp, t_us, rel, its = [], [], [], []
    for vs in vss:
        d = np.abs(vs[:, -1] - vs[:, 0])
        opt, tl, x = highs_shared(vs, 0.1, 0.5 * d, 0.02 * d)
        t_lp.append(tl)
        r, tu = timed(lambda: and_or_shared(vs), 3)
        t_us.append(tu)
        rel.append(float(r.objective) / opt - 1)
        its.append(int(r.iterations))
        assert bool(r.converged) and x is not None
    ratio = statistics.median(t_lp) / statistics.median(t_us)
    res["shared_vs_highs"] = {
        "n": n, "models": m, "games": games, "highs_s": statistics.median(t_lp),
        "and_or_shared_s": statistics.median(t_us), "speedup": ratio, "iterations": its,
        "max_rel_diff_vs_lp": max(abs(x) for x in rel),
    }
    rows.append((f"{m} models shared n={n}: HiGHS vs and_or_shared", statistics.median(t_lp),
                 statistics.median(t_us), ratio, f"its {its}, obj rel diff ≤ {max(abs(x) for x in rel):.1e}"))


def _report(res, rows, merge):
    print(f"{'case':42s} {'reference s':>12s} {'and_or s':>10s} {'ratio':>8s}  note")
    for name, a, b, rt, note in rows:
        print(f"{name:42s} {a:12.4f} {b:10.4f} {rt:8.1f}  {note}")
    save_results("bench_and_or", res, quick=res["quick"], merge=merge)


if __name__ == "__main__":
    main()
