"""Command line: ``jinter demo [options]`` runs the main job and writes an HTML report."""

from __future__ import annotations

import argparse
import sys

from jinter.report import DemoSettings, ReportError, run_demo

__all__ = ["main", "build_parser"]


def _noise_levels(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    d = DemoSettings()
    parser = argparse.ArgumentParser(prog="jinter", description="Exact AND-OR interactions of deep networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="train a network, follow its interactions over training, compare with theory",
        description="Train a network with checkpoints, compute all 2^n AND-OR interactions of test samples at "
        "every checkpoint, fit the two-phase theory, measure generalization power, and write a report "
        "(results.json, PNG figures, index.html). Rerunning with the same --out resumes.",
    )
    demo.add_argument("--dataset", default=d.dataset, help="digits | wine | breast_cancer | synthetic (default: %(default)s)")
    demo.add_argument("--model", default=None, help="mlp | cnn (default: mlp; the CNN trains ~100x slower on CPU)")
    demo.add_argument("--n", dest="n_players", type=int, default=d.n_players, help="players n (default: %(default)s)")
    demo.add_argument("--epochs", type=int, default=d.epochs, help="training epochs (default: %(default)s)")
    demo.add_argument("--checkpoints", type=int, default=d.checkpoints, help="log-spaced checkpoints (default: %(default)s)")
    demo.add_argument("--samples", type=int, default=d.samples, help="test samples (default: %(default)s)")
    demo.add_argument("--label-noise", type=float, default=d.label_noise, help="flipped train labels (default: %(default)s)")
    demo.add_argument("--noise-levels", type=_noise_levels, default=d.noise_levels,
                      help="label-noise levels for decay/spindle, comma-separated (default: 0,0.1,0.3)")
    demo.add_argument("--q-ratio", type=float, default=d.q_ratio, help="AND-OR noise box (default: %(default)s)")
    demo.add_argument("--tol", type=float, default=d.tol, help="certified relative gap of each AND-OR split (default: %(default)s)")
    demo.add_argument("--lr", dest="learning_rate", type=float, default=d.learning_rate, help="SGD learning rate (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=d.seed, help="random seed (default: %(default)s)")
    demo.add_argument("--out", default="jinter-report", help="output folder (default: %(default)s)")
    demo.add_argument("--force", action="store_true", help="replace a report made with other settings")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        settings = DemoSettings(
            dataset=args.dataset, model=args.model, n_players=args.n_players, epochs=args.epochs,
            checkpoints=args.checkpoints, samples=args.samples, label_noise=args.label_noise,
            noise_levels=args.noise_levels, q_ratio=args.q_ratio, tol=args.tol, learning_rate=args.learning_rate, seed=args.seed,
        )
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
