"""Benchmark of ``and_or`` per game class, at default settings, against HiGHS on the same LP.

Issue #10 asks for an AND-OR solver certified on every kind of game at its defaults
(q_ratio = 0.02, tol = 1e-5, float64) and timed per class at n = 10 and 12. Classes:

- ``network``: games of the demo's MLP on digits (log-odds of the sample's class, 2×5 patch
  players, zero baseline) at epochs 0 (untrained: the hard games of every dynamics study),
  1, 4 and 40, through :func:`jinter.sweep.run_sweep` (only at n = 10: the demo's players);
- ``gaussian``: iid N(0, 1) values on every mask;
- ``planted``: 4 AND + 4 OR terms of orders 1–4, weights ±U(1, 2), plus iid noise of 2% of
  ``|v(N) − v(∅)|`` on every mask (like ``data.make_synthetic`` or an untrained network);
- ``constant``: a constant game (0 is the optimum) and a near-constant one (1e-9 noise);
- ``range1e6``: planted terms with weights spread over 1e-3 … 1e3 (dynamic range 1e6).

Per game: and_or's seconds (compiled: each shape is compiled on a first game, not timed),
iterations, relative gap, status; HiGHS (scipy ``linprog``, the LP of ``tests/oracles.py``, on
the game shifted to v(∅) = 0 and scaled to unit range, since its tolerances are absolute) time
and its optimum beside and_or's objective. Per class: medians and the HiGHS/and_or ratio.
``--large 16 20``: one planted game at each n with a cap of ``--large-iter`` iterations (time incl.
compile, iterations, gap, status; default: n = 16 to a certificate, n = 20 capped); each is
printed when it starts and ends and saved at once (an n = 20 run takes ~0.9 s per iteration).
``--quick``: n = 8, two games per class, for a smoke run (results/ left as recorded).
``--classes constant --no-network``: re-measure some classes only; they replace their entries of
the recorded file (each class entry says when it was ``measured``), the rest is kept.
Writes benchmarks/results/and_or_classes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
from _common import RESULTS, save_results  # noqa: E402 - also puts tests/ (the oracles) on sys.path
from oracles import highs  # noqa: E402

from jinter import data, models, sweep, training  # noqa: E402
from jinter.decomposition import and_or  # noqa: E402
from jinter.transforms import or_zeta, zeta  # noqa: E402

Q_RATIO = 0.02


def _planted(rng: np.random.Generator, n: int, weights) -> np.ndarray:
    """``v = zeta(I_and) + or_zeta(I_or)`` with len(weights) // 2 AND and OR terms of orders 1–4."""
    i_and, i_or = np.zeros(2**n), np.zeros(2**n)
    for j, w in enumerate(weights):
        order = int(rng.integers(1, min(4, n) + 1))
        mask = int(sum(1 << int(p) for p in rng.choice(n, size=order, replace=False)))
        (i_and if j % 2 == 0 else i_or)[mask] += w
    return np.asarray(zeta(i_and)) + np.asarray(or_zeta(i_or))


CLASSES = ("gaussian", "planted", "constant", "range1e6")


def synthetic_games(cls: str, n: int, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` games of class ``cls`` at ``n`` players (see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        if cls == "gaussian":
            v = rng.normal(size=2**n)
        elif cls == "planted":
            v = _planted(rng, n, rng.choice([-1.0, 1.0], 8) * rng.uniform(1, 2, 8))
            v = v + 0.02 * abs(v[-1] - v[0]) * rng.normal(size=2**n)
        elif cls == "constant":
            v = np.full(2**n, 1.5) + (1e-9 * rng.normal(size=2**n) if out else 0.0)
        elif cls == "range1e6":
            v = _planted(rng, n, rng.choice([-1.0, 1.0], 8) * np.logspace(-3, 3, 8))
        else:
            raise ValueError(cls)
        out.append(v)
    return out


def network_games(epochs=(0, 1, 4, 40), samples: int = 3) -> dict[int, list[np.ndarray]]:
    """The demo's MLP on digits, n = 10 patch players: the games of ``samples`` training samples
    at each of ``epochs`` (run_sweep's values, log-odds reward)."""
    ds = data.load_dataset("digits", seed=0)
    model = models.model_for_dataset(ds)
    with tempfile.TemporaryDirectory() as tmp:
        tr = training.train(model, ds, epochs=max(epochs), checkpoint_epochs=list(epochs),
                            checkpoint_dir=Path(tmp) / "ckpt", seed=0)
        idx = sweep.select_samples(len(ds.y_train), samples, 0)
        players = sweep.default_players(ds.input_shape, 10)
        sweep.run_sweep(model, tr.checkpoints, ds.x_train[idx], ds.clean_y_train[idx], players,
                        Path(tmp) / "sweep", progress=False)
        res = sweep.load_sweep(Path(tmp) / "sweep")
        v = np.asarray(res.v)
    return {int(e): list(v[c]) for c, e in enumerate(res.epochs)}


def solve(games: list[np.ndarray], *, with_highs: bool, highs_limit: float) -> dict:
    """and_or (compiled on the first game, then timed per game) and HiGHS on every game."""
    and_or(games[0][None], q_ratio=Q_RATIO)  # compile this shape
    rows = []
    for v in games:
        t = time.perf_counter()
        r = and_or(v[None], q_ratio=Q_RATIO)
        jax.block_until_ready(r.I_and)
        dt = time.perf_counter() - t
        row = {"seconds": dt, "iterations": int(r.iterations[0]), "gap": float(r.gap[0]),
               "converged": bool(r.converged[0]), "status": r.messages()[0], "objective": float(r.objective[0])}
        if with_highs:
            # HiGHS's tolerances are absolute: on a near-constant game (1e-9 noise) it stops at
            # objective 0 while the optimum is 1e-6·span. The LP is invariant under v → (v − c)/s
            # (c moves into I_and(∅), the objective scales by s), so HiGHS gets the game shifted
            # and scaled to unit range, the same relative accuracy and_or works to.
            c, s = float(v[0]), float(np.max(np.abs(v - v[0]))) or 1.0
            opt, th, _ = highs((v - c) / s, Q_RATIO * abs(v[-1] - v[0]) / s, time_limit=highs_limit)
            opt *= s
            row |= {"highs_seconds": th, "highs_objective": opt,
                    "highs_finished": bool(np.isfinite(opt)),
                    "rel_diff_vs_highs": (row["objective"] - opt) / max(abs(opt), 1e-300) if np.isfinite(opt) else None}
        rows.append(row)
    med = statistics.median(x["seconds"] for x in rows)
    summary = {"games": len(rows), "median_seconds": med, "max_seconds": max(x["seconds"] for x in rows),
               "median_iterations": statistics.median(x["iterations"] for x in rows),
               "max_iterations": max(x["iterations"] for x in rows),
               "certified": sum(x["converged"] for x in rows), "max_gap": max(x["gap"] for x in rows)}
    if with_highs:
        hs = [x["highs_seconds"] for x in rows]
        ratios = [x["highs_seconds"] / x["seconds"] for x in rows]
        summary |= {"highs_median_seconds": statistics.median(hs), "ratio_of_medians": statistics.median(hs) / med,
                    "min_ratio": min(ratios), "highs_all_finished": all(x["highs_finished"] for x in rows)}
    return {"summary": summary, "per_game": rows, "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--games", type=int, default=5, help="games per synthetic class at n = 10")
    ap.add_argument("--games12", type=int, default=2, help="games per synthetic class at n = 12 (0: skip n = 12)")
    ap.add_argument("--highs-limit", type=float, default=300.0, help="HiGHS time limit per game (s)")
    ap.add_argument("--no-highs12", action="store_true", help="skip HiGHS at n = 12 (minutes per game)")
    ap.add_argument("--large", type=int, nargs="*", default=[], help="also one planted game at each n (e.g. 16 20)")
    ap.add_argument("--classes", nargs="*", default=list(CLASSES), choices=CLASSES,
                    help="synthetic classes to run (a subset is merged into the recorded results, per class)")
    ap.add_argument("--no-network", action="store_true", help="skip the network class (merged as above)")
    ap.add_argument("--large-iter", type=int, nargs="*", default=[100_000, 2000],
                    help="iteration cap per --large n (the last one repeats)")
    args = ap.parse_args()
    args.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    n1 = 8 if args.quick else 10
    count = 2 if args.quick else args.games
    res: dict = {"q_ratio": Q_RATIO, "tol": "default (1e-5 in float64)", "device": str(jax.devices()[0]),
                 f"n{n1}": {}}
    table = []
    for cls in args.classes:
        out = solve(synthetic_games(cls, n1, count), with_highs=True, highs_limit=args.highs_limit)
        res[f"n{n1}"][cls] = out
        table.append((n1, cls, out["summary"]))
    if not args.quick:
        for epoch, games in ({} if args.no_network else network_games()).items():
            out = solve(games, with_highs=True, highs_limit=args.highs_limit)
            res[f"n{n1}"][f"network_epoch{epoch}"] = out
            table.append((n1, f"network epoch {epoch}", out["summary"]))
        if args.games12 > 0:
            res["n12"] = {}
            for cls in args.classes:
                out = solve(synthetic_games(cls, 12, args.games12, seed=1), with_highs=not args.no_highs12,
                            highs_limit=args.highs_limit)
                res["n12"][cls] = out
                table.append((12, cls, out["summary"]))
    partial = args.no_network or set(args.classes) != set(CLASSES)
    for n_big, cap in zip(args.large, _large_caps(args)):
        v = synthetic_games("planted", n_big, 1, seed=2)[0]
        print(f"n={n_big}: one planted game, at most {cap} iterations ({time.strftime('%H:%M:%S')})", flush=True)
        t = time.perf_counter()
        r = and_or(v[None], q_ratio=Q_RATIO, max_iter=cap)
        jax.block_until_ready(r.I_and)
        res[f"large_n{n_big}"] = {"seconds_incl_compile": time.perf_counter() - t, "max_iter": cap,
                                  "iterations": int(r.iterations[0]), "gap": float(r.gap[0]),
                                  "converged": bool(r.converged[0]), "status": r.messages()[0],
                                  "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        print(f"n={n_big}:", res[f"large_n{n_big}"], flush=True)
        if not args.quick:  # on record at once: a later --large n may run for hours
            save_results("and_or_classes", _merged(res, args) if partial else _with_old_large(res), quick=args.quick)
    print(f"{'n':>3} {'class':<18} {'games':>5} {'cert':>4} {'med s':>8} {'max s':>8} {'med it':>8} "
          f"{'max it':>8} {'HiGHS s':>8} {'ratio':>7} {'min':>7}")
    for n, cls, s in table:
        hs = (f"{s['highs_median_seconds']:8.2f} {s['ratio_of_medians']:7.1f} {s['min_ratio']:7.1f}"
              if "highs_median_seconds" in s else f"{'—':>8} {'—':>7} {'—':>7}")
        print(f"{n:>3} {cls:<18} {s['games']:>5} {s['certified']:>4} {s['median_seconds']:8.3f} {s['max_seconds']:8.3f} "
              f"{s['median_iterations']:>8.0f} {s['max_iterations']:>8} {hs}")
    if not args.quick:
        res = _merged(res, args) if partial else _with_old_large(res)
    save_results("and_or_classes", res, quick=args.quick)


def _large_caps(args) -> list[int]:
    """The iteration cap of each ``--large`` n (the last ``--large-iter`` repeats)."""
    return [args.large_iter[min(k, len(args.large_iter) - 1)] for k in range(len(args.large))]


def _recorded() -> dict | None:
    """The recorded results file, or None before the first run."""
    path = RESULTS / "and_or_classes.json"
    return json.loads(path.read_text()) if path.exists() else None


def _with_old_large(res: dict) -> dict:
    """A full run's results plus the recorded ``large_n*`` entries it did not re-run (each keeps
    its own ``measured`` time), so that a full run without ``--large`` does not drop them."""
    if (old := _recorded()) is None:
        return res
    return {k: v for k, v in old.items() if k.startswith("large_n") and k not in res} | res


def _merged(res: dict, args) -> dict:
    """A partial run's results merged into the recorded file, per class (and per large n)."""
    if (old := _recorded()) is None:
        return res
    for key in [k for k in old if k.startswith("n") and isinstance(old[k], dict)]:
        for entry in old[key].values():  # entries of the last full run: measured then
            entry.setdefault("measured", old.get("full_run_time", old.get("time")))
    res = dict(res)
    for key in [k for k in res if k.startswith("n") and isinstance(res[k], dict)]:
        res[key] = old.get(key, {}) | res[key]
    run = {"classes": args.classes, "network": not args.no_network, "large": args.large,
           "large_iter": _large_caps(args), "time": args.started}
    runs = [r for r in old.get("partial_runs", []) if r != run]  # this run saved before (a large n)
    return old | res | {"full_run_time": old.get("full_run_time", old.get("time")), "partial_runs": runs + [run]}


if __name__ == "__main__":
    main()
