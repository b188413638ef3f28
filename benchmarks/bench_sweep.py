"""Sweep throughput: (sample × checkpoint) units per second at n = 10 players on CPU.

Reference: the plain loop one would write by hand — for every checkpoint and every sample,
``masked_outputs`` on that one sample then ``and_or`` on its 2**n values (no files).
Candidate: :func:`jinter.sweep.run_sweep` (blocks of samples sharded over the devices, one
compiled program per block, atomic unit files with hashes). Both use the same AND-OR solver
settings; compilation is excluded from both (one warm-up each). The resume row times a rerun
over a finished sweep (every unit verified and reused).

Usage: ``python benchmarks/bench_sweep.py [--quick]``; writes ``benchmarks/results/bench_sweep.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import save_results  # noqa: E402

from jinter import decomposition, masking  # noqa: E402
from jinter.data import load_dataset  # noqa: E402
from jinter.models import make_model  # noqa: E402
from jinter.sweep import default_players, run_sweep, select_samples  # noqa: E402
from jinter.training import load_params, train  # noqa: E402

HERE = Path(__file__).resolve().parent


def reference(model, ckpts, x, y, players, and_or_kwargs):
    out = []
    for params in ckpts.values():
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        for i in range(len(x)):
            xi = jnp.asarray(x[i : i + 1], jnp.float64)
            v = masking.masked_outputs(model, xi, players, reward=masking.log_odds(y[i : i + 1]), params=params)
            r = decomposition.and_or(v, **and_or_kwargs)
            out.append(np.asarray(r.I_and))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs (median)")
    args = ap.parse_args()
    n = 8 if args.quick else 10
    n_samples, n_ckpt = (6, 2) if args.quick else (20, 3)
    block = 6 if args.quick else 10
    repeats = args.repeats or (1 if args.quick else 3)
    and_or_kwargs = {"max_iter": 1000 if args.quick else 3000, "check_every": 50}

    ds = load_dataset("synthetic", seed=0, n_samples=1000, n_features=n)
    model = make_model("mlp", n_classes=2, hidden=(100, 100, 100, 100))
    tmp = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    res = train(model, ds, epochs=n_ckpt, checkpoint_epochs=range(1, n_ckpt + 1), checkpoint_dir=tmp / "ckpt")
    ckpts = {e: load_params(p) for e, p in res.checkpoints.items()}
    idx = select_samples(len(ds.y_test), n_samples, 0)
    x, y = ds.x_test[idx], ds.y_test[idx].astype(np.int64)
    players = default_players(ds.input_shape, n)
    units = n_samples * n_ckpt

    # warm-up (compilation) for both
    reference(model, dict(list(ckpts.items())[:1]), x[:1], y[:1], players, and_or_kwargs)
    run_sweep(model, dict(list(ckpts.items())[:1]), x[:block], y[:block], players, tmp / "warm",
              block_size=block, and_or_kwargs=and_or_kwargs, progress=False)

    t_ref, t_new, t_resume = [], [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        reference(model, ckpts, x, y, players, and_or_kwargs)
        t_ref.append(time.perf_counter() - t0)
        out = tmp / f"sweep{r}"
        t0 = time.perf_counter()
        run_sweep(model, ckpts, x, y, players, out, block_size=block, and_or_kwargs=and_or_kwargs, progress=False)
        t_new.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rep = run_sweep(model, ckpts, x, y, players, out, block_size=block, and_or_kwargs=and_or_kwargs,
                        progress=False)
        t_resume.append(time.perf_counter() - t0)
        assert rep.reused == rep.units
    shutil.rmtree(tmp, ignore_errors=True)

    rows = {
        "reference (per-sample loop)": units / statistics.median(t_ref),
        "run_sweep": units / statistics.median(t_new),
        "run_sweep resume (all reused)": units / statistics.median(t_resume),
    }
    base = rows["reference (per-sample loop)"]
    print(f"n={n}, {n_ckpt} checkpoints x {n_samples} samples, block {block}, devices {jax.device_count()} "
          f"({jax.devices()[0].platform}), and_or {and_or_kwargs}, median of {repeats}")
    print(f"{'method':34s} {'units/s':>10s} {'ratio':>8s}")
    for name, rate in rows.items():
        print(f"{name:34s} {rate:10.2f} {rate / base:8.2f}")
    save_results("bench_sweep", {
        "n_players": n, "checkpoints": n_ckpt, "samples": n_samples, "block_size": block,
        "and_or_kwargs": and_or_kwargs, "repeats": repeats,
        "units_per_second": rows, "ratio_vs_reference": {k: v / base for k, v in rows.items()},
        "seconds": {"reference": t_ref, "run_sweep": t_new, "resume": t_resume},
    }, quick=args.quick)


if __name__ == "__main__":
    main()
