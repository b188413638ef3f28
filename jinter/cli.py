"""Command line: ``jinter demo [options]`` runs the main job and writes an HTML report.

The options of ``jinter demo`` are generated from the fields of
:class:`jinter.report.DemoSettings` (name, type, default and help), so the command line and
the Python API cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing

from jinter.report import DemoSettings, ReportError, run_demo

__all__ = ["main", "build_parser"]


def _noise_levels(text: str) -> tuple[float, ...]:
    """Comma-separated distinct numbers; an empty string is none (``--noise-levels ''``)."""
    if not text.strip():
        return ()
    try:
        levels = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if len(set(levels)) != len(levels):
        raise argparse.ArgumentTypeError(f"expected distinct levels, got {text!r}")
    return levels


def _parse_type(annotation):
    """argparse ``type=`` for a field annotation of :class:`DemoSettings`."""
    if annotation in (int, float, str):
        return annotation
    if typing.get_origin(annotation) is tuple:
        return _noise_levels
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) == 1:  # X | None
        return _parse_type(args[0])
    raise TypeError(f"no command-line type for {annotation!r}")  # pragma: no cover - a new field


def _show(value) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" for v in value)
    return "auto" if value is None else str(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jinter", description="Exact AND-OR interactions of deep networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="train a network, follow its interactions over training, compare with theory",
        description="Train a network with checkpoints, compute all 2^n AND-OR interactions of training samples at "
        "every checkpoint, fit the two-phase theory, measure generalization power and the label-noise study, and "
        "write a report (results.json, PNG figures, index.html). Rerunning with the same --out resumes; one run "
        "at a time per --out (lock file .jinter-demo.lock).",
    )
    hints = typing.get_type_hints(DemoSettings)
    for f in dataclasses.fields(DemoSettings):
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        demo.add_argument(flag, dest=f.name, type=_parse_type(hints[f.name]), default=f.default,
                          help=f"{f.metadata.get('help', '')} (default: {_show(f.default)})")
    demo.add_argument("--out", default="jinter-report", help="output folder (default: %(default)s)")
    demo.add_argument("--force", action="store_true", help="replace a report made with other settings")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        settings = DemoSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DemoSettings)})
        try:
            run_demo(settings, args.out, force=args.force, progress=not args.quiet)
        except ReportError as e:
            print(f"jinter demo: error: {e}", file=sys.stderr)
            return 2
        except OSError as e:  # the output folder became unwritable, disk full, ...
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            print(f"jinter demo: error: cannot write the report{where}: {e.strerror or e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("\njinter demo: interrupted; rerun the same command to resume.", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
