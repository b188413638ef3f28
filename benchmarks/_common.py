"""Shared by the benchmark scripts: where recorded numbers go, and what machine made them.

Importing it also puts ``tests/`` on ``sys.path``: the benchmarks use the tests' brute-force
oracles (``tests/oracles.py``), one module for both.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
_TESTS = str(Path(__file__).resolve().parents[1] / "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)


def machine() -> dict:
    """Platform, CPU count, jax version and device of this run."""
    import jax

    return {"platform": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
            "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}"}


def save_results(name: str, data: dict, *, quick: bool, merge: bool = False) -> Path | None:
    """Write ``results/<name>.json`` (with the machine and time). Smoke runs (``quick``) never
    overwrite the recorded numbers; ``merge`` updates the keys of an existing file."""
    if quick:
        print(f"(--quick: smoke run, results/{name}.json left as recorded)")
        return None
    path = RESULTS / f"{name}.json"
    if merge and path.exists():
        data = json.loads(path.read_text()) | data
    data = data | {"machine": machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def compare_runs(ref, cand, reps: int, setup=None) -> tuple[list[float], list[float]]:
    """Seconds of each ``ref()`` and ``cand()`` run, alternating repetitions after a warm-up
    (``setup()`` runs before each pair); results are blocked on, so async dispatch is timed."""
    import jax

    tr, tc = [], []
    if setup:
        setup()
    jax.block_until_ready(ref())
    jax.block_until_ready(cand())
    for _ in range(reps):
        if setup:
            setup()
        t = time.perf_counter()
        jax.block_until_ready(ref())
        tr.append(time.perf_counter() - t)
        t = time.perf_counter()
        jax.block_until_ready(cand())
        tc.append(time.perf_counter() - t)
    return tr, tc


def compare(ref, cand, reps: int, setup=None) -> tuple[float, float]:
    """Median seconds of ``ref()`` and ``cand()`` (see :func:`compare_runs`)."""
    import statistics

    tr, tc = compare_runs(ref, cand, reps, setup)
    return statistics.median(tr), statistics.median(tc)
