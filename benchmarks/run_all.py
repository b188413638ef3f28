"""Run every benchmark script in this folder and print their tables.

Usage: ``python benchmarks/run_all.py [--quick] [names ...]``. Each ``bench_*.py`` prints the
reference, jinter, and their ratio measured in the same run, and writes
``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, smoke run")
    parser.add_argument("names", nargs="*", help="e.g. core and_or theory sweep (default: all)")
    args = parser.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        start = time.perf_counter()
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        if subprocess.call(cmd) != 0:
            failed.append(script.name)
        print(f"({script.name}: {time.perf_counter() - start:.1f} s)", flush=True)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
