"""Core-engine benchmarks: exact transforms and masked-input evaluation.

Each row times a reference and jinter in the same run (alternating repetitions, medians) and
prints their ratio; numbers go to ``benchmarks/results/bench_core.json``.

1. Möbius transform at n=14 vs shapiq ``ExactComputer(game, n)("Moebius")`` (same game values;
   the values are checked to agree). shapiq is a benchmark-only dependency.
2. Möbius at n=24 float64 vs an in-place numpy butterfly (one pass per player).
3. ``masked_outputs`` at n=12 on a small MLP and a small CNN vs the same jitted model + reward
   applied to the same 2**12 ready-made masked inputs.
4. Möbius at n=26 float32 (the supported maximum): time and peak RSS of a fresh process.

Usage: ``python benchmarks/bench_core.py [--quick]`` (``--quick``: small sizes, a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import compare, save_results  # noqa: E402

import jinter  # noqa: E402
from jinter.masking import PatchPlayers, log_odds, masked_outputs  # noqa: E402


def _ready(x):
    return jax.block_until_ready(x)


# ----------------------------------------------------------------------------- 1. shapiq


def bench_shapiq(n: int, reps: int) -> dict:
    import shapiq

    rng = np.random.default_rng(0)
    table = rng.normal(size=2**n)
    bits = 1 << np.arange(n)

    def game(coalitions):  # (m, n) bool -> v(S) from the table, bit i = player i
        return table[coalitions.astype(np.int64) @ bits]

    def ref():
        ec = shapiq.ExactComputer(game, n_players=n, evaluate_game=False)
        ec._evaluate_game()  # game values are not timed: jinter also starts from the table
        t = time.perf_counter()
        iv = ec("Moebius")
        ref.elapsed = time.perf_counter() - t
        ref.iv = iv
        return 0

    v = jnp.asarray(table)
    cand = lambda: jinter.mobius(v)  # noqa: E731
    _ready(cand())
    tr, tc = [], []
    for _ in range(reps):
        ref()
        tr.append(ref.elapsed)
        for _ in range(5):
            t = time.perf_counter()
            _ready(cand())
            tc.append(time.perf_counter() - t)
    ours = np.asarray(cand())
    theirs = np.zeros(2**n)
    for players, pos in ref.iv.interaction_lookup.items():
        theirs[jinter.players_to_mask(players)] = ref.iv.values[pos]
    err = float(np.max(np.abs(ours - theirs)))
    assert err < 1e-9 * max(1.0, np.abs(theirs).max()), f"shapiq and jinter disagree by {err}"
    r, c = statistics.median(tr), statistics.median(tc)
    return {"name": f"mobius n={n} float64", "reference": "shapiq ExactComputer('Moebius')",
            "ref_s": r, "jinter_s": c, "speedup": r / c, "max_abs_diff": err, "target": ">= 1000x"}


# ----------------------------------------------------------------------------- 2. numpy


def numpy_mobius_inplace(v: np.ndarray) -> np.ndarray:
    """In-place butterfly: for each player i, v[S ∪ {i}] −= v[S] (S without i)."""
    n = v.shape[-1].bit_length() - 1
    for i in range(n):
        w = v.reshape(-1, 2, 2**i)
        np.subtract(w[:, 1], w[:, 0], out=w[:, 1])
    return v


def bench_numpy(n: int, reps: int) -> dict:
    rng = np.random.default_rng(1)
    table = rng.normal(size=2**n)
    work = table.copy()
    v = jnp.asarray(table)

    def setup():
        np.copyto(work, table)

    r, c = compare(lambda: numpy_mobius_inplace(work), lambda: jinter.mobius(v), reps, setup)
    setup()
    err = float(np.max(np.abs(numpy_mobius_inplace(work) - np.asarray(jinter.mobius(v)))))
    return {"name": f"mobius n={n} float64", "reference": "numpy in-place butterfly",
            "ref_s": r, "jinter_s": c, "speedup": r / c, "max_abs_diff": err, "target": ">= 1x (aim 2x)"}


# ----------------------------------------------------------------------------- 3. masking


def _models():
    from flax import linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, b):
            h = b.reshape(b.shape[0], -1)
            h = nn.relu(nn.Dense(256)(h))
            h = nn.relu(nn.Dense(256)(h))
            return nn.Dense(10)(h)

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, b):
            h = nn.relu(nn.Conv(16, (3, 3))(b))
            h = nn.relu(nn.Conv(32, (3, 3))(h))
            h = nn.avg_pool(h, (2, 2), (2, 2))
            return nn.Dense(10)(h.reshape(h.shape[0], -1))

    return {"MLP 64-256-256-10": MLP(), "CNN conv16-conv32-pool-dense10": CNN()}


def bench_masking(n: int, reps: int) -> list[dict]:
    grid = [(r, c) for r in range(4) for c in range(4)]
    players = PatchPlayers((8, 8, 1), (2, 2), cells=grid[:n], channels_last=True)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(8, 8, 1)).astype(np.float32)
    base = np.zeros_like(x)
    # ready-made masked inputs, built by hand
    member = players.membership  # (n, 8, 8, 1)
    masks = np.arange(2**n)
    present = ((masks[:, None] >> np.arange(n)) & 1).astype(bool)  # (M, n)
    keep = np.einsum("mi,ixyc->mxyc", present, member) | players.background
    ready = jnp.asarray(np.where(keep, x, base))
    reward = log_odds(3)
    rows = []
    for name, model in _models().items():
        params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1), jnp.float32))
        ref_fn = jax.jit(lambda p, b, model=model: reward(model.apply(p, b)))
        cand = lambda model=model, params=params: masked_outputs(  # noqa: E731
            model, x, players, params=params, reward=reward, baseline=base)
        r, c = compare(lambda: ref_fn(params, ready), cand, reps)
        err = float(np.max(np.abs(np.asarray(ref_fn(params, ready)) - np.asarray(cand()))))
        rows.append({"name": f"masked_outputs n={n} {name}", "reference": "jitted model on ready masked inputs",
                     "ref_s": r, "jinter_s": c, "speedup": r / c, "overhead_pct": 100 * (c / r - 1),
                     "max_abs_diff": err, "target": "<= 10% slower"})
    return rows


# ----------------------------------------------------------------------------- 4. n = 26


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def n26_worker(n: int) -> None:
    v = np.random.default_rng(3).normal(size=2**n).astype(np.float32)
    vj = _ready(jnp.asarray(v))
    before = _peak_rss()  # runtime + the input on host and device
    t = time.perf_counter()
    out = _ready(jinter.mobius(vj))
    first = time.perf_counter() - t
    times = []
    for _ in range(3):
        del out
        t = time.perf_counter()
        out = _ready(jinter.mobius(vj))
        times.append(time.perf_counter() - t)
    peak = _peak_rss()
    back = np.asarray(jinter.zeta(out))
    # float32 error grows like eps·(n+1)·Σ|v(L)| (transforms docstring): report it relative to that scale
    rel = float(np.max(np.abs(back - v)) / np.max(np.abs(v)))
    print(json.dumps({"first_s": first, "median_s": statistics.median(times), "peak_rss_bytes": peak,
                      "rss_before_bytes": before, "array_bytes": v.nbytes,
                      "round_trip_max_rel_err": rel, "finite": bool(np.isfinite(np.asarray(out)).all())}))


def bench_n26(n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--n26-worker", str(n)], capture_output=True, text=True,
                         check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return {"name": f"mobius n={n} float32 (fresh process)", **res}


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a fast smoke run")
    ap.add_argument("--n26-worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.n26_worker is not None:
        n26_worker(args.n26_worker)
        return
    q = args.quick
    rows = [bench_shapiq(8 if q else 14, 1 if q else 3), bench_numpy(16 if q else 24, 3 if q else 9)]
    rows += bench_masking(8 if q else 12, 5 if q else 80)
    big = bench_n26(18 if q else 26)

    print(f"{'benchmark':<58} {'reference':<38} {'ref':>10} {'jinter':>10} {'ratio':>9}")
    for r in rows:
        print(f"{r['name']:<58} {r['reference']:<38} {r['ref_s']*1e3:>8.2f}ms {r['jinter_s']*1e3:>8.2f}ms "
              f"{r['speedup']:>8.2f}x")
    print(f"{big['name']}: {big['median_s']:.2f} s (first call {big['first_s']:.2f} s incl. compile), "
          f"peak RSS {big['peak_rss_bytes'] / 2**30:.2f} GiB (+{(big['peak_rss_bytes'] - big['rss_before_bytes']) / 2**30:.2f} "
          f"GiB over runtime + input) for a {big['array_bytes'] / 2**20:.0f} MiB array, "
          f"round-trip rel. err {big['round_trip_max_rel_err']:.1e}")
    print("ratio = reference time / jinter time (>1: jinter faster); medians of alternating repetitions")

    save_results("bench_core", {"rows": rows, "n26": big}, quick=q)


if __name__ == "__main__":
    main()
