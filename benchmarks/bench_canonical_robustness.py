"""How much the demo's aggregate curves move when ties are broken canonically (issue #11 item 7).

The ℓ1 AND-OR objective has many optima on most games; ``jinter demo`` reports whichever one
the solver reaches (``and_or(..., canonical=False)``). This script re-solves a few of a demo
folder's games with the canonical optimum (``canonical=True``: the least-norm optimum, unique)
and compares, on the same games and with the same τ (the demo's, from all its samples):

- the order distribution ``I^(k)`` and its mean order, per checkpoint;
- ``N̄`` and ``H̄`` (plain and strength-weighted) against the baseline, whose games are
  re-solved canonically too;
- the decay/spindle split of ``A^(k),±`` (the demo's pipeline spindle template): decay and
  spindle strengths, the spindle share, σ̂ and the residual;
- single interactions: ``max |I_canonical − I_demo| / max |I_demo|`` per game;
- the label-noise models (their final checkpoint): the decay/spindle split, demo vs canonical.

Canonical solves are slow at n = 10 (tens of seconds per game on a CPU core), so a few
checkpoints are taken (``--checkpoints``, default indices 0, 4, 8 and the last) with a few
samples (``--samples``), the baseline on the same samples, and a few samples of each
label-noise model (``--noise-samples``); the demo folder's n is kept. Usage::

    jinter demo --out /tmp/demo-def          # once (the defaults: digits, n = 10)
    python benchmarks/bench_canonical_robustness.py --demo /tmp/demo-def
    python benchmarks/bench_canonical_robustness.py --demo /tmp/demo-def --quick   # 1 checkpoint, 2 samples

writes ``benchmarks/results/canonical_robustness.json`` (not with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np
from _common import save_results  # benchmarks/ is the script's folder

jax.config.update("jax_enable_x64", True)

from jinter import generalization, statistics, study, sweep, theory  # noqa: E402
from jinter.decomposition import and_or  # noqa: E402


def _curves(i_and, i_or, tau, b_and, b_or, tau_base, template, delta):
    """The aggregate curves of ``(checkpoints, samples, 2**n)`` interactions (τ per checkpoint)."""
    tb = tau[:, None]
    dist = np.asarray(statistics.order_distribution(i_and, i_or, tb, sample_axis=1))
    n = dist.shape[-1]
    shape = i_and.shape
    g = generalization.generalization_power((i_and, i_or), (np.broadcast_to(b_and, shape), np.broadcast_to(b_or, shape)),
                                            tb, tau_base, sample_axis=1)
    pos, neg = (np.asarray(a).mean(axis=1) for a in statistics.signed_order_strength(i_and, i_or, tb))
    fits = [theory.disentangle(pos[c], neg[c], n, spindle=template.scaled(delta[c])) for c in range(len(tau))]
    parts = [study.part_strengths(d) for d in fits]
    return {
        "order_distribution": dist,
        "mean_order": (dist * np.arange(1, n + 1)).sum(-1) / np.maximum(dist.sum(-1), 1e-300),
        "n_bar": np.asarray(g.n_bar), "h_bar": np.asarray(g.h_bar), "h_bar_weighted": np.asarray(g.h_bar_weighted),
        "decay": np.array([p["decay"] for p in parts]), "spindle": np.array([p["spindle"] for p in parts]),
        "spindle_share": np.array([p["spindle"] / max(p["decay"] + p["spindle"], 1e-300) for p in parts]),
        "sigma": np.array([d.params["sigma_pos"] for d in fits]),
        "residual": np.array([d.residual for d in fits]),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo", type=Path, default=Path("/tmp/demo-def"), help="a jinter demo output folder")
    ap.add_argument("--checkpoints", default="0,4,8,-1", help="checkpoint indices of the main model (comma-separated)")
    ap.add_argument("--samples", type=int, default=6, help="the first this many of the demo's samples (0: all)")
    ap.add_argument("--noise-samples", type=int, default=3, help="samples of each label-noise model to re-solve")
    ap.add_argument("--quick", action="store_true", help="1 checkpoint (the last), 2 samples; results not saved")
    args = ap.parse_args(argv)
    demo = args.demo
    if not (demo / "results.json").exists():
        print(f"skipped: {demo} is not a finished jinter demo folder (no results.json); run `jinter demo --out {demo}` "
              "first (run_all.py runs this script too, and a missing demo is not a failure)")
        return {}
    settings = json.loads((demo / "settings.json").read_text())
    main_sw, base_sw = sweep.load_sweep(demo / "sweep"), sweep.load_sweep(demo / "sweep_baseline")
    picks = [-1] if args.quick else [int(c) for c in args.checkpoints.split(",")]
    n_s = 2 if args.quick else (args.samples or main_sw.v.shape[1])
    levels = [] if args.quick or not args.noise_samples else [float(x) for x in settings.get("noise_levels", [])]
    m_s = args.noise_samples
    noise_sw = {lv: sweep.load_sweep(demo / f"noise_{lv:g}" / "sweep") for lv in levels}
    cks = sorted({c % len(main_sw.epochs) for c in picks})
    q, tol = float(settings["q_ratio"]), float(settings["tol"])
    n = int(settings["n_players"])

    # τ and Δ̄ as the demo has them: from all of its samples (they do not depend on the optimum)
    tau = np.asarray(statistics.tau_output(main_sw.v[cks], study.TAU_FRAC, sample_axis=1))
    delta = tau / study.TAU_FRAC
    tau_base = np.asarray(statistics.tau_output(base_sw.v[0], study.TAU_FRAC))
    template = theory.pipeline_spindle(n, q_ratio=q, tau_frac=study.TAU_FRAC)

    v = np.concatenate([main_sw.v[cks, :n_s].reshape(-1, 2**n), base_sw.v[0, :n_s]]
                       + [noise_sw[lv].v[0, :m_s] for lv in levels])  # (games, 2**n)
    k = len(cks) * n_s
    bounds = np.cumsum([0, k + n_s] + [m_s] * len(levels))  # main + baseline, then each noise model
    parts, group_seconds = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        t0 = time.perf_counter()
        parts.append(jax.block_until_ready(and_or(v[a:b], q_ratio=q, tol=tol, canonical=True)))
        group_seconds.append(time.perf_counter() - t0)
        print(f"canonical solves {a}–{b}: {group_seconds[-1]:.1f} s", flush=True)
    can = jax.tree.map(lambda *x: np.concatenate([np.asarray(y) for y in x]), *parts)
    seconds = float(sum(group_seconds))
    c_and, c_or = (np.asarray(a) for a in (can.I_and, can.I_or))
    k = len(cks) * n_s
    m_and, m_or = c_and[:k].reshape(len(cks), n_s, -1), c_or[:k].reshape(len(cks), n_s, -1)
    b_and, b_or = c_and[k:k + n_s], c_or[k:k + n_s]
    noise_rows = {}
    for j, lv in enumerate(levels):  # the label-noise models' decay/spindle split, demo vs canonical
        sl = slice(k + n_s + m_s * j, k + n_s + m_s * (j + 1))
        r = noise_sw[lv]
        tl = float(statistics.tau_output(r.v[0], study.TAU_FRAC))
        row = {}
        for name, (ia, io) in (("demo", (r.I_and[0, :m_s], r.I_or[0, :m_s])), ("canonical", (c_and[sl], c_or[sl]))):
            pos, neg = (np.asarray(a).mean(0) for a in statistics.signed_order_strength(ia, io, tl))
            d = theory.disentangle(pos, neg, n, spindle=template.scaled(tl / study.TAU_FRAC))
            ps = study.part_strengths(d)
            row[name] = {**ps, "spindle_share": ps["spindle"] / max(ps["decay"] + ps["spindle"], 1e-300),
                         "sigma": d.params["sigma_pos"], "residual": d.residual, "poor_fit": d.poor_fit}
        noise_rows[f"{lv:g}"] = row
    d_and, d_or = main_sw.I_and[cks, :n_s], main_sw.I_or[cks, :n_s]
    demo_c = _curves(d_and, d_or, tau, base_sw.I_and[0, :n_s], base_sw.I_or[0, :n_s], tau_base, template, delta)
    canon_c = _curves(m_and, m_or, tau, b_and, b_or, tau_base, template, delta)

    arb = np.concatenate([np.concatenate([d_and.reshape(k, -1), base_sw.I_and[0, :n_s]]
                                         + [noise_sw[lv].I_and[0, :m_s] for lv in levels]),
                          np.concatenate([d_or.reshape(k, -1), base_sw.I_or[0, :n_s]]
                                         + [noise_sw[lv].I_or[0, :m_s] for lv in levels])], axis=-1)
    cano = np.concatenate([c_and, c_or], axis=-1)
    single = np.abs(cano - arb)[:, 1:].max(-1) / np.abs(arb[:, 1:]).max(-1)
    objective_gap = (np.asarray(can.objective) - np.concatenate([main_sw.objective[cks, :n_s].ravel(),
                                                                base_sw.objective[0, :n_s]]
                                                               + [noise_sw[lv].objective[0, :m_s] for lv in levels]))

    def moved(key):
        a, b = demo_c[key], canon_c[key]
        out = {"demo": a.tolist(), "canonical": b.tolist(), "max_abs_change": float(np.max(np.abs(b - a)))}
        if key == "order_distribution":
            out["l1_change_per_checkpoint"] = (np.abs(b - a).sum(-1) / np.maximum(np.abs(a).sum(-1), 1e-300)).tolist()
        return out

    result = {
        "demo_folder": str(demo),
        "setting": {"dataset": settings["dataset"], "n": n, "q_ratio": q, "tol": tol,
                    "checkpoint_epochs": [int(main_sw.epochs[c]) for c in cks], "samples": n_s,
                    "games": int(v.shape[0]), "baseline_games": n_s, "label_noise_levels": levels, "noise_samples": m_s,
                    "tau": "the demo's (0.03 * E_x|v(x_N) - v(x_empty)| over all its samples)",
                    "spindle_template": study.SPINDLE_TEMPLATES["pipeline"]},
        "canonical": {"seconds": seconds, "seconds_per_game": seconds / v.shape[0],
                      "seconds_per_group": dict(zip(["main+baseline"] + [f"noise {lv:g}" for lv in levels],
                                                    group_seconds)),
                      "all_canonical": bool(np.all(np.asarray(can.canonical))),
                      "status": np.asarray(can.status).tolist(),
                      "max_objective_change_relative": float(np.max(np.abs(objective_gap) / np.asarray(can.objective)))},
        "single_interactions_max_change_relative_to_max_abs": {
            "per_game": single.tolist(), "median": float(np.median(single)), "max": float(single.max())},
        "curves": {key: moved(key) for key in demo_c},
        "label_noise_models": noise_rows,
    }
    print(json.dumps({k: result[k] for k in ("setting", "canonical", "single_interactions_max_change_relative_to_max_abs")},
                     indent=1))
    for key in demo_c:
        print(f"{key:>20}: max |canonical − demo| = {result['curves'][key]['max_abs_change']:.4g}")
    for lv, row in noise_rows.items():
        print(f"label noise {lv}: " + "; ".join(f"{name} share {r['spindle_share']:.3f} σ {r['sigma']:.4f} residual "
                                               f"{r['residual']:.3f}" for name, r in row.items()))
    save_results("canonical_robustness", result, quick=args.quick)
    return result


if __name__ == "__main__":
    main()
