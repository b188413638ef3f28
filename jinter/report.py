r"""The main job: interaction dynamics over training, theory overlay, generalization power.

:func:`run_demo` trains a network with checkpoints, sweeps the AND-OR interactions of training
samples (the same for every model) at every checkpoint, and writes a self-contained report folder:

- ``settings.json``: the settings the folder was made with (a rerun with other settings
  is refused unless ``force``); written only after every check of the run passed, so a
  refused run leaves the folder as it was;
- ``.jinter-demo.lock``: held while a run works in the folder (pid and host); a second run
  on the folder is refused while the holder lives, a lock of a dead process is taken over;
- ``train/``, ``baseline/``, ``noise_*/``: checkpoints and learning curves
  (:mod:`jinter.training`), reused on rerun only if ``training.json`` and every checkpoint
  pass their SHA-256 checks (:func:`jinter.training.verify_training_dir`); a corrupt file
  is named in the log and its training redone;
- ``sweep*/``: one atomic, checksummed file per (checkpoint × sample block)
  (:mod:`jinter.sweep`): a killed run resumes where it stopped;
- ``results.json``: every number behind every figure, with the settings and timings;
- ``*.png`` and ``index.html``.

Analysis (:func:`jinter.study.analyze`, computed once and presented from; docs/math.md §4–7):
order distributions ``I_real^(k)`` per checkpoint with
``τ = 0.03·E_x|v(x) − v(x_∅)|`` [D24]; the theory overlay ``I_theo^(k)`` from the noisy
regression of §5 with ``w*`` = the salient interactions of the final checkpoint and σ² fitted
per checkpoint (:func:`jinter.theory.fit_sigma2`); the epoch where phase 2 starts
(:func:`jinter.dynamics.phase_two_start`) beside the epoch where the loss gap widens
(:func:`jinter.dynamics.gap_widening_epoch`); generalization power ``N̄``, ``H̄`` against a
baseline model trained on the test split [H25]; decay/spindle parts per checkpoint and across
label-noise levels [G25].
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jinter._checks import check_int, check_real, json_list, safe_divide_host
from jinter.models import DEFAULT_MODEL  # one default architecture per dataset, re-exported

__all__ = ["DemoSettings", "ReportError", "run_demo", "DEFAULT_MODEL", "LOCK"]

_OWNED = ("settings.json", "results.json", "index.html", "train", "baseline", "sweep", "sweep_baseline")


class ReportError(ValueError):
    """A user error: bad settings, or an output folder made with other settings."""


def _opt(default, help: str, flag: str | None = None):
    """A :class:`DemoSettings` field with its command-line help (``jinter demo --help``)."""
    return dataclasses.field(default=default, metadata={"help": help, "flag": flag})


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Settings of :func:`run_demo` (the defaults finish in a few minutes on 2 CPU cores).

    The command line ``jinter demo`` is generated from these fields (flag ``--name-with-dashes``
    unless noted, help from the field's metadata).

    Attributes:
        dataset: ``digits`` (8×8 images, 2×2 patches as players), ``wine``,
            ``breast_cancer`` or ``synthetic`` (tabular, features or feature groups).
        n_players: number of players n (2**n masks per sample).
        epochs: training epochs of the main model and the [H25] baseline.
        checkpoints: number of checkpoints of the main model (epoch 0 included).
        dense_epochs: a checkpoint at every epoch from 0 to this one (where [D24]'s phase 2
            starts, so that its start is pinned to ±1 epoch), log-spaced after it (fewer if
            ``checkpoints`` or ``epochs`` leave no room).
        samples: training samples whose interactions are computed (the same samples for
            every model: main, baseline, label-noise models).
        label_noise: fraction of flipped train labels of the main model ([D24]: 0.01).
        noise_levels: label-noise levels of extra models for decay/spindle [G25].
        noise_epochs, noise_optimizer, noise_learning_rate: training of the label-noise models,
            long enough to fit their noisy labels (Adam 1e-3 for 150 epochs reaches train
            accuracy 1.0 at 30% noise on digits; SGD for 40 epochs stays at the clean fraction).
        seed: seeds data split, noise, initialization, shuffling and sample choice.
        q_ratio: noise box of the AND-OR split (docs/math.md §3).
        tol: certified relative duality gap of each AND-OR split (1e-4: objective within
            0.01% of the exact optimum; :func:`jinter.and_or` defaults to 1e-5).
        model: architecture (default :data:`DEFAULT_MODEL`, ``mlp``, on every dataset).
        learning_rate: SGD learning rate (momentum 0.9, [D24]).
    """

    dataset: str = _opt("digits", "digits | wine | breast_cancer | synthetic")
    n_players: int = _opt(10, "players n (2^n masks per sample)", flag="--n")
    epochs: int = _opt(40, "training epochs of the main model and the baseline")
    checkpoints: int = _opt(14, "checkpoints of the main model (epoch 0 included)")
    dense_epochs: int = _opt(8, "a checkpoint at every epoch up to this one, log-spaced after")
    samples: int = _opt(20, "training samples probed, the same for every model")
    label_noise: float = _opt(0.01, "fraction of flipped train labels of the main model")
    noise_levels: tuple[float, ...] = _opt((0.0, 0.1, 0.3), "label-noise levels for decay/spindle, comma-separated")
    noise_epochs: int = _opt(150, "training epochs of the label-noise models (until they fit their labels)")
    noise_optimizer: str = _opt("adam", "optimizer of the label-noise models: adam | sgd")
    noise_learning_rate: float = _opt(1e-3, "learning rate of the label-noise models")
    seed: int = _opt(0, "random seed")
    q_ratio: float = _opt(0.02, "AND-OR noise box")
    tol: float = _opt(1e-4, "certified relative gap of each AND-OR split")
    model: str | None = _opt(None, "mlp | cnn; auto = mlp on every dataset (the CNN trains ~70x slower per epoch on CPU)")
    learning_rate: float = _opt(0.01, "SGD learning rate of the main model and the baseline", flag="--lr")

    def validate(self) -> "DemoSettings":
        """Return the settings with defaults filled in, or raise :class:`ReportError`."""
        from jinter.data import DATASETS
        from jinter.models import MODELS

        typed = {}
        for f in dataclasses.fields(self):  # the type of every field first: no truncated 2.5 epochs, no inf
            value, kind = getattr(self, f.name), f.type
            try:
                if kind == "int":
                    # any integer here: the range checks below state each field's own range
                    try:
                        typed[f.name] = check_int(value, f.name, 0)
                    except ValueError:
                        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                            raise ValueError(f"{f.name} must be an integer, got {value!r}") from None
                        typed[f.name] = int(value)
                elif kind == "float":
                    typed[f.name] = check_real(value, f.name)
                elif kind == "tuple[float, ...]":
                    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
                        raise ValueError(f"{f.name} must be a sequence of numbers, got {value!r}")
                    typed[f.name] = tuple(check_real(x, f"{f.name} entries") for x in value)
                elif not (isinstance(value, str) or (value is None and kind == "str | None")):
                    raise ValueError(f"{f.name} must be a string, got {value!r}")
            except ValueError as e:
                raise ReportError(str(e)) from None
        self = dataclasses.replace(self, **typed)
        if self.dataset not in DATASETS:
            raise ReportError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        model = DEFAULT_MODEL if self.model in (None, "auto") else self.model
        if model not in MODELS:
            raise ReportError(f"unknown model {model!r}; choose one of {', '.join(MODELS)} (or auto)")
        if model == "cnn" and self.dataset != "digits":
            raise ReportError(f"model cnn takes images (dataset digits); {self.dataset} is tabular: use mlp")
        checks = [
            (2 <= self.n_players <= 16, f"n_players must be in [2, 16], got {self.n_players}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (2 <= self.checkpoints <= self.epochs + 1, f"checkpoints must be in [2, epochs + 1], got {self.checkpoints}"),
            (self.dense_epochs >= 1, f"dense_epochs must be >= 1, got {self.dense_epochs}"),
            (self.samples >= 1, f"samples must be >= 1, got {self.samples}"),
            (0 <= self.label_noise < 1, f"label_noise must be in [0, 1), got {self.label_noise}"),
            (self.noise_epochs >= 1, f"noise_epochs must be >= 1, got {self.noise_epochs}"),
            (self.noise_optimizer in ("adam", "sgd"), f"noise_optimizer must be adam or sgd, got {self.noise_optimizer!r}"),
            (self.noise_learning_rate > 0, f"noise_learning_rate must be > 0, got {self.noise_learning_rate}"),
            (all(0 <= x < 1 for x in self.noise_levels), f"noise levels must be in [0, 1), got {self.noise_levels}"),
            (self.q_ratio >= 0, f"q_ratio must be >= 0, got {self.q_ratio}"),
            (0 < self.tol < 1, f"tol must be in (0, 1), got {self.tol}"),
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (0 <= self.seed < 2**32, f"seed must be in [0, 2**32), got {self.seed}"),
            (len(set(self.noise_levels)) == len(self.noise_levels), f"noise levels must be distinct, got {self.noise_levels}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ReportError(message)
        return dataclasses.replace(self, model=model, noise_levels=tuple(float(x) for x in self.noise_levels))

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


LOCK = ".jinter-demo.lock"
"""Lock file of a running ``jinter demo`` inside its output folder."""


class _FolderLock:
    """One ``jinter demo`` per output folder at a time.

    The lock is the file ``LOCK`` in the folder, created with ``O_CREAT | O_EXCL`` (atomic on
    local and NFSv3+ file systems) and holding ``pid host``. A second run on the same folder
    refuses with a clear message while the holder lives; a lock left by a dead process (same
    host, pid no longer running) is stale and taken over. The lock is removed when the run
    ends, also on errors and Ctrl-C.
    """

    def __init__(self, out: Path):
        self.path = out / LOCK
        self.held = False

    def _holder(self) -> tuple[int, str] | None:
        try:
            pid, host = self.path.read_text().split()[:2]
            return int(pid), host
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        import socket

        me = f"{os.getpid()} {socket.gethostname()}\n".encode()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None:  # being written this instant, or garbled: look again
                    time.sleep(0.2)
                    holder = self._holder()
                if holder is not None and (holder[1] != socket.gethostname() or _pid_alive(holder[0])):
                    raise ReportError(
                        f"{self.path.parent} is in use by another jinter demo (pid {holder[0]} on {holder[1]}); "
                        f"wait for it to finish or use another --out. If that run no longer exists, delete "
                        f"{self.path}."
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "wb") as f:
                f.write(me)
            self.held = True
            return
        raise ReportError(f"could not take the lock {self.path}; delete it if no jinter demo is running")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _check_out_path(out: Path) -> None:
    """Refuse an ``--out`` that cannot be a writable folder, before anything is written."""
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                what = "is a file" if parent == out else f"is under {parent}, which is a file"
                raise ReportError(f"--out {out} {what}; give a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ReportError(f"--out {out}: {parent} is not writable")
            return


def _prepare_out(out: Path, settings: DemoSettings, force: bool) -> None:
    """Check that ``out`` is empty or holds a report made with the same settings; then (and
    only then) clear it if ``force`` and write ``settings.json``. Called under the lock."""
    path = out / "settings.json"
    wanted = settings.to_json()
    stale = False
    if path.exists():
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            found = None
        if found != wanted:
            if not force:
                what = "an unreadable settings.json" if found is None else "a report made with other settings"
                diff = "" if found is None else ": " + ", ".join(
                    [f"{k}={found.get(k)!r} (now {v!r})" for k, v in wanted.items() if found.get(k) != v]
                    + [f"{k}={found[k]!r} (not a setting)" for k in found if k not in wanted]
                )
                raise ReportError(f"{out} holds {what}{diff}. Use another --out, or --force to replace it.")
            stale = True
    elif any(p.name != LOCK for p in out.iterdir()) and not force:
        raise ReportError(f"{out} is not empty and holds no jinter report; use another --out or --force")
    if stale:
        for name in list(_OWNED) + [p.name for p in out.glob("noise_*")] + [p.name for p in out.glob("*.png")]:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    from jinter.training import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(wanted, indent=1).encode())


def _train_cached(model, dataset, directory: Path, *, epochs: int, checkpoint_epochs, seed: int,
                  learning_rate: float, optimizer: str = "sgd", baseline: bool = False, progress: bool = False,
                  log=print):
    """Train, or reuse a finished training run in ``directory``.

    Reused only if ``training.json`` passes its checksum, was made with these settings, and
    every checkpoint matches the SHA-256 recorded in it; otherwise the folder is retrained
    from scratch (a corrupt file is named in the log), never mixed in.
    """
    from jinter import training

    wanted = sorted(set(int(e) for e in checkpoint_epochs))
    if directory.exists():
        try:
            history, found, manifest = training.verify_training_dir(directory)
            got = manifest.get("settings", {})
            same = (sorted(found) == wanted and got.get("epochs") == epochs and got.get("seed") == seed
                    and got.get("optimizer") == optimizer and got.get("learning_rate") == float(learning_rate)
                    and manifest.get("model") == repr(model)
                    and manifest.get("data_sha256") == training.data_sha256(
                        dataset.swap() if baseline else dataset))
            if same:
                return history, found, False
            log(f"      {directory}: made with other training settings; retraining")
        except training.CorruptFileError as e:
            log(f"      {e.path}: {e.reason}; retraining {directory.name}")
        shutil.rmtree(directory)
    fn = training.train_baseline if baseline else training.train
    try:
        result = fn(model, dataset, epochs=epochs, checkpoint_epochs=wanted, checkpoint_dir=directory,
                    seed=seed, learning_rate=learning_rate, optimizer=optimizer, progress=progress)
    except training.DivergedError as e:
        raise ReportError(f"{directory.name}: {e}") from None
    return result.history, result.checkpoints, True


def _checkpoint_epochs(s: DemoSettings) -> tuple[int, ...]:
    """Every epoch up to ``dense_epochs`` (as far as the checkpoint count allows), log-spaced after."""
    from jinter import training

    dense = min(s.dense_epochs, s.checkpoints - 2, s.epochs - 1)
    if dense < 1:
        return training.log_spaced_epochs(s.epochs, s.checkpoints)
    return training.dense_then_log_epochs(s.epochs, s.checkpoints, dense)


def run_demo(settings: DemoSettings = DemoSettings(), out: str | Path = "jinter-report", *,
             force: bool = False, progress: bool = True, log=print) -> dict[str, Any]:
    """Run the whole study and write the report folder; return ``results.json``'s content."""
    import jax

    from jinter import data, models, sweep

    jax.config.update("jax_enable_x64", True)  # alternating sums cancel: interactions in float64
    settings = settings.validate()
    s = settings
    # Every check that can refuse the run happens before anything is written.
    try:
        ds = data.load_dataset(s.dataset, seed=s.seed, label_noise=s.label_noise)
        players = sweep.default_players(ds.input_shape, s.n_players)
        model = models.model_for_dataset(ds, s.model)
    except ValueError as e:
        raise ReportError(f"--dataset {s.dataset} with --n {s.n_players}: {e}") from None
    if s.samples > len(ds.y_train):
        raise ReportError(f"samples={s.samples} exceeds the {len(ds.y_train)} training samples of {s.dataset}")
    if not str(out).strip():
        raise ReportError("--out is empty; give a folder (e.g. --out jinter-report)")
    out = Path(out)
    _check_out_path(out)
    created = [d for d in [out, *out.parents] if not d.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(f"cannot create --out {out}: {e.strerror or e}") from None
    lock = _FolderLock(out)
    try:
        lock.acquire()
        try:
            _prepare_out(out, settings, force)
        except ReportError:
            lock.release()
            for d in created:  # a refused run leaves the file system as it was
                try:
                    d.rmdir()
                except OSError:
                    break
            raise
        return _run_locked(settings, out, ds, players, model, progress=progress, log=log)
    finally:
        lock.release()


def _run_locked(s: DemoSettings, out: Path, ds, players, model, *, progress: bool, log) -> dict[str, Any]:
    """Train, sweep, analyze (once), then present: figures, ``results.json``, ``index.html``."""
    from jinter import study

    timings: dict[str, float] = {"training": 0.0, "masked_evaluation": 0.0, "and_or": 0.0, "theory": 0.0}
    start = time.perf_counter()

    t = time.perf_counter()
    trained = _train_models(s, out, ds, model, progress=progress, log=log)
    timings["training"] += time.perf_counter() - t

    swept = _sweep_models(s, out, ds, players, model, trained, progress=progress, log=log)
    timings["masked_evaluation"] += swept.value_seconds
    timings["and_or"] += swept.and_or_seconds

    log("[4/5] analysis and theory")
    t = time.perf_counter()
    analysis = study.analyze(swept.main, history=trained.history, baseline=swept.baseline,
                             noise={level: (swept.noise[level], trained.noise[level][0]) for level in trained.noise})
    timings["theory"] += time.perf_counter() - t
    results = _results(s, analysis, trained, swept.main, timings)

    log("[5/5] figures and report")
    t = time.perf_counter()
    figures = _figures(out, results, analysis, _probe(ds, swept.main, players))
    timings["figures"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start  # results["timings_seconds"] is this dict
    from jinter.training import atomic_write_bytes

    atomic_write_bytes(out / "results.json", json.dumps(results, indent=1, allow_nan=False).encode())
    _write_html(out, s, results, figures)
    log(f"report written to {out / 'index.html'} ({timings['total']:.0f} s)")
    return results


class _Trained(NamedTuple):
    """The demo's trained models: ``(history, checkpoints)`` of each, as :func:`_train_cached` gives them."""

    history: dict  # main model
    checkpoints: dict
    base_history: dict  # [H25] baseline, trained on the test split
    base_checkpoints: dict
    noise: dict  # label noise -> (history, checkpoints, trained now) of the [G25] label-noise models


def _train_models(s: DemoSettings, out: Path, ds, model, *, progress: bool, log) -> _Trained:
    """Train (or reuse from ``out``) the main model, the baseline and the label-noise models."""
    from jinter import data

    ckpt_epochs = _checkpoint_epochs(s)
    log(f"[1/5] training {s.model} on {s.dataset} for {s.epochs} epochs ({len(ckpt_epochs)} checkpoints)")
    history, checkpoints, _ = _train_cached(model, ds, out / "train", epochs=s.epochs, checkpoint_epochs=ckpt_epochs,
                                            seed=s.seed, learning_rate=s.learning_rate, progress=progress, log=log)
    log("[2/5] training the baseline model on the test split [H25]")
    base_hist, base_ckpt, _ = _train_cached(model, ds, out / "baseline", epochs=s.epochs, checkpoint_epochs=[s.epochs],
                                            seed=s.seed, learning_rate=s.learning_rate, baseline=True,
                                            progress=progress, log=log)
    noise_runs = {}
    for level in s.noise_levels:
        log(f"      training at label noise {level:g} for {s.noise_epochs} epochs ({s.noise_optimizer}) [G25]")
        nds = data.load_dataset(s.dataset, seed=s.seed, label_noise=level)
        noise_runs[level] = _train_cached(model, nds, out / f"noise_{level:g}", epochs=s.noise_epochs,
                                          checkpoint_epochs=[s.noise_epochs], seed=s.seed,
                                          learning_rate=s.noise_learning_rate, optimizer=s.noise_optimizer,
                                          progress=progress, log=log)
    return _Trained(history, checkpoints, base_hist, base_ckpt, noise_runs)


class _Swept(NamedTuple):
    """The sweeps of every trained model, loaded back from ``out``, and their wall times."""

    main: Any  # :class:`jinter.sweep.SweepResult` of the main model's checkpoints
    baseline: Any
    noise: dict  # label noise -> SweepResult
    value_seconds: float  # masked evaluation, summed over the sweeps
    and_or_seconds: float


def _sweep_models(s: DemoSettings, out: Path, ds, players, model, trained: _Trained, *, progress: bool,
                  log) -> _Swept:
    """Sweep the AND-OR interactions of every model (resuming from ``out``) and load the sweeps."""
    from jinter import decomposition, sweep

    # Every model is probed on the same TRAINING samples of the main model (the [H25] setting:
    # a model's own training samples, against a baseline trained on the test split), with the
    # clean labels as the reward's class, so all models answer the same question.
    idx = sweep.select_samples(len(ds.y_train), s.samples, s.seed)
    x, y = ds.x_train[idx], ds.clean_y_train[idx]
    kw = dict(sample_indices=idx, solver=decomposition.AndOrOptions(q_ratio=s.q_ratio, tol=s.tol), progress=progress)
    log(f"[3/5] interactions: {len(trained.checkpoints)} checkpoints x {s.samples} samples x 2^{s.n_players} masks")
    reports = [sweep.run_sweep(model, trained.checkpoints, x, y, players, out / "sweep", **kw)]
    reports.append(sweep.run_sweep(model, trained.base_checkpoints, x, y, players, out / "sweep_baseline", **kw))
    for level, (_, ck, _) in trained.noise.items():
        reports.append(sweep.run_sweep(model, ck, x, y, players, out / f"noise_{level:g}" / "sweep", **kw))
    value_seconds = and_or_seconds = 0.0
    for r in reports:
        for name in r.recomputed_files:
            log(f"      {r.out_dir / name}: corrupt or stale; recomputed")
        value_seconds += getattr(r, "value_seconds", 0.0)
        and_or_seconds += getattr(r, "and_or_seconds", r.seconds)
    return _Swept(sweep.load_sweep(out / "sweep"), sweep.load_sweep(out / "sweep_baseline"),
                  {level: sweep.load_sweep(out / f"noise_{level:g}" / "sweep") for level in trained.noise},
                  value_seconds, and_or_seconds)


def _results(s: DemoSettings, analysis, trained: _Trained, res, timings: dict[str, float]) -> dict[str, Any]:
    """``results.json``'s content: settings, definitions, histories, the AND-OR convergence of the
    main sweep ``res``, ``analysis``, ``timings`` (the dict itself: later stages add to it) and the findings."""
    import jax

    from jinter import study

    results = {
        "settings": s.to_json(),
        "jax": {"version": jax.__version__, "devices": [str(d) for d in jax.devices()]},
        "definitions": {
            "tau": "0.03 * E_x |v(x_N) - v(x_empty)| per checkpoint [D24]",
            "phase_two_start": "checkpoint of minimal mean order of salient interactions, if it rises after",
            "gap_widening_epoch": "first epoch after the minimal loss gap where the gap exceeds it by 10% of its later rise",
            "sigma2_fit": "theory.fit_sigma2: RMS between mean-normalized I_real^(k) and I_theo^(k), grid + refinement",
            "generalization": "salient |I|>tau in the model generalizes iff |I_base|>tau_base with the same sign [H25]",
            "spindle_template": study.SPINDLE_TEMPLATES[analysis.spindle],
        },
        "history": {k: json_list(v) for k, v in trained.history.items()},
        "baseline_history": {k: json_list(v) for k, v in trained.base_history.items()},
        "sample_indices": json_list(res.sample_indices),
        "and_or": {"objective_mean": json_list(res.objective.mean(axis=1)), "gap_max": float(np.max(res.gap)),
                   "all_converged": bool(np.all(res.converged)), "unconverged": int(np.sum(~res.converged)),
                   "tol": s.tol},
        **analysis.to_json(),
        "timings_seconds": timings,
    }
    results["findings"] = _findings(results, s.n_players)
    return results


_ALIGN_EPOCHS = 2  # [D24] alignment counts as matched within ±2 epochs
_FEW = 0.1  # [R24] "few": at most 10% of the 2(2^n − 1) AND and OR interactions are salient


def _findings(r: dict[str, Any], n: int) -> list[dict[str, str]]:
    """Each claim of [R24], [D24], [G25], [H25] the demo tests: what was measured, and whether
    it matches (``match`` / ``mismatch``, or ``untested`` when the measurement cannot decide)."""
    out = []

    def add(paper, claim, measured, verdict):
        out.append({"paper": paper, "claim": claim, "measured": measured, "verdict": verdict})

    epochs = r["epochs"]
    nbar = r["generalization"]["n_bar"]
    frac = nbar[-1] / (2 * (2**n - 1))
    add("R24", f"A trained network encodes few salient interactions (here: ≤ {_FEW:.0%} of the 2(2^n−1) AND and OR terms)",
        f"{nbar[-1]:.1f} salient per sample at the final checkpoint = {frac:.1%} of {2 * (2**n - 1)}",
        "match" if frac <= _FEW else "mismatch")
    mo = r["mean_order"]
    p2, gap = r["phase_two_start_epoch"], r["gap_widening_epoch"]
    i_min = int(np.argmin(mo))
    two = p2 is not None and mo[0] > mo[i_min]
    add("D24", "Two phases: the mean order of salient interactions first falls, then rises",
        f"mean order {mo[0]:.2f} at epoch {epochs[0]}, minimum {mo[i_min]:.2f} at epoch {epochs[i_min]}, "
        f"{mo[-1]:.2f} at epoch {epochs[-1]}", "match" if two else "mismatch")
    if p2 is None or gap is None:
        add("D24", "Phase 2 starts where the train–test loss gap starts to widen",
            f"phase-2 start: {p2}, gap widening: {gap} (one of them not found)", "untested")
    else:
        add("D24", f"Phase 2 starts where the train–test loss gap starts to widen (here: within ±{_ALIGN_EPOCHS} epochs)",
            f"phase 2 starts at epoch {p2}, the smoothed loss gap widens at epoch {gap} (distance {abs(p2 - gap)})",
            "match" if abs(p2 - gap) <= _ALIGN_EPOCHS else "mismatch")
    th = r["theory"]
    rel = [c for c, ok in enumerate(th["reliable"]) if ok and p2 is not None and epochs[c] >= p2]
    if p2 is None:
        add("D24", "The noise level σ² of the best-fitting noisy regression falls during phase 2",
            "phase 2 not found (the mean order does not fall and rise again): no phase to test", "untested")
    elif len(rel) < 2:
        add("D24", "The noise level σ² of the best-fitting noisy regression falls during phase 2",
            f"{len(rel)} reliable σ² fit(s) in phase 2 ({sum(not x for x in th['reliable'])} of {len(epochs)} "
            "checkpoints flagged: grid edge, poor fit or not identifiable)", "untested")
    else:
        a, b = th["sigma2"][rel[0]], th["sigma2"][rel[-1]]
        add("D24", "The noise level σ² of the best-fitting noisy regression falls during phase 2",
            f"σ² {a:.2g} at epoch {epochs[rel[0]]} → {b:.2g} at epoch {epochs[rel[-1]]} ({len(rel)} reliable fits)",
            "match" if b < a else "mismatch")
    study = sorted(r["label_noise_study"], key=lambda e: e["label_noise"])  # the trend runs over the levels
    tpl = f" (spindle template: {r['spindle_template']['name']})" if "spindle_template" in r else ""
    usable = [e for e in study if e["fits_its_labels"] and not e["poor_fit"]]
    share = lambda e: safe_divide_host(e["spindle"], e["decay"] + e["spindle"])  # noqa: E731
    if len(study) < 2:
        add("G25", "The spindle-shaped (noise-like) part grows with label noise",
            f"not tested: {len(study)} label-noise model(s) trained (--noise-levels); a trend needs at least 2",
            "untested")
    elif len(usable) < 2 or len(usable) < len(study):
        def state(e):
            poor = f", poor fit (residual {e['residual']:.2f})" if e["poor_fit"] else ""
            return f"noise {e['label_noise']:g}: train acc {e['train_accuracy']:.2f}, spindle share {share(e):.2f}{poor}"

        why = "; ".join(state(e) for e in study)
        shape = [f"{e['label_noise']:g}: extra strength at order {e['extra_peak_order']}, spindle at order "
                 f"{e['spindle_peak_order']}" for e in study if e["poor_fit"] and e.get("extra_peak_order")
                 and e.get("spindle_peak_order") and e["extra_peak_order"] != e["spindle_peak_order"]]
        shape_why = ("; the poor fits are a shape mismatch: what label noise added over the clean model peaks at "
                     "another order than the spindle template (" + "; ".join(shape) + ")") if shape else ""
        add("G25", "The spindle-shaped (noise-like) part grows with label noise",
            f"not decided: not every noise model fits its labels with a good decay + spindle fit{tpl} ({why})"
            f"{shape_why}", "untested")
    else:
        shares = ", ".join(f"{e['label_noise']:g}: {share(e):.2f} (residual {e['residual']:.2f})" for e in usable)
        grows = share(usable[-1]) > share(usable[0])
        add("G25", "The spindle-shaped (noise-like) part grows with label noise",
            f"spindle share of Σ|A| per label noise{tpl} (every model at train accuracy ≥ 0.95): {shares}",
            "match" if grows else "mismatch")
    hbar = r["generalization"]["h_bar"]
    if p2 is None:
        add("H25", "Interactions learned later (phase 2 on) generalize less: H̄ falls",
            f"phase 2 not found, so no start to measure from (H̄ {hbar[0]:.2f} at epoch {epochs[0]}, "
            f"{hbar[-1]:.2f} at epoch {epochs[-1]})", "untested")
        return out
    c0 = epochs.index(p2)
    cp = c0 + int(np.argmax(hbar[c0:]))  # the peak from the phase-2 start on
    add("H25", "Interactions learned later (phase 2 on) generalize less: H̄ falls",
        f"H̄ {hbar[c0]:.2f} at epoch {epochs[c0]}, peak {hbar[cp]:.2f} at epoch {epochs[cp]}, "
        f"{hbar[-1]:.2f} at epoch {epochs[-1]}", "match" if cp < len(hbar) - 1 and hbar[-1] < hbar[cp] else "mismatch")
    return out


class _Probe(NamedTuple):
    """The first probed training sample as an image, for the figures that draw on it."""

    image: np.ndarray  # (H, W) or (H, W, C)
    label: int  # its clean label, the class whose log-odds v measures
    log_odds: float  # v on the whole image at the final checkpoint
    players: Any  # the players (image patches), :func:`jinter.sweep.default_players`


def _probe(ds, res, players) -> _Probe | None:
    """The first probed sample of the main sweep ``res`` as an image; ``None`` on tabular data."""
    if len(ds.input_shape) < 2:
        return None
    image = ds.x_train[res.sample_indices[0]]
    image = image[..., 0] if image.ndim == 3 else image
    label = int(ds.clean_y_train[res.sample_indices[0]])
    full = float(res.v[-1][0][-1])  # log-odds of the label on the whole image, final checkpoint
    return _Probe(image, label, full, players)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(out: Path, fig, name: str, caption: str) -> tuple[str, str]:
    """Write ``fig`` to ``out / name``, close it, and return the page's ``(name, caption)``."""
    fig.savefig(out / name, dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return name, caption


def _figures(out: Path, results: dict[str, Any], analysis, probe: _Probe | None) -> list[tuple[str, str]]:
    """Draw and save the report's figures, in page order; return their ``(file name, caption)``.

    Every figure is drawn from ``analysis`` (:class:`jinter.study.DemoAnalysis`); the learning
    curves and the quoted finding come from ``results`` (``history``, ``findings``); the image
    figures (image datasets only) from ``probe`` (:func:`_probe`). Each figure is saved before
    the next is drawn.
    """
    _pyplot()  # the Agg backend before anything draws
    picks = _picked_epochs(analysis.epochs)
    figs = [
        _save(out, *_loss_figure(results["history"], analysis)),
        _save(out, *_order_distributions_figure(analysis)),
        _save(out, *_sigma2_figure(analysis, next((f for f in results["findings"] if "σ²" in f["claim"]), None))),
        _save(out, *_generalization_figure(analysis)),
        _save(out, *_decay_spindle_figure(analysis)),
        _save(out, *_and_or_orders_figure(analysis, picks)),
        _save(out, *_sparsity_figure(analysis, picks)),
    ]
    if probe is not None:
        figs.append(_save(out, *_players_figure(probe)))
        figs += [_save(out, *f) for f in _top_interaction_figures(analysis, probe)]
    return figs


def _picked_epochs(epochs) -> list[int]:
    """The first, a middle and the final checkpoint (fewer if they coincide)."""
    epochs = list(epochs)
    return sorted({epochs[0], epochs[len(epochs) // 2], epochs[-1]})


def _loss_figure(history: dict[str, Any], analysis):
    from jinter import plots

    phases = {k: v for k, v in (("phase 2 starts", analysis.phase_two_start),
                                ("loss gap widens", analysis.gap_widening_epoch)) if v is not None}
    fig = plots.plot_curves(history["epoch"], {"train loss": history["train_loss"], "test loss": history["test_loss"]},
                            phases=phases, ylabel="cross-entropy", title="Learning curves")
    return fig, "loss.png", ("Train and test loss per epoch; vertical lines mark where phase 2 of the interaction "
                             "dynamics starts (mean order of salient interactions turns upward) and where the loss "
                             "gap starts to widen [D24].")


def _order_distributions_figure(analysis):
    plt = _pyplot()
    epochs, fit = list(analysis.epochs), analysis.sigma_fit
    cols = min(4, len(epochs))
    rows = -(-len(epochs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    k = np.arange(1, analysis.n + 1)
    for c, e in enumerate(epochs):
        ax = axes.flat[c]
        ax.bar(k, analysis.order_distribution[c], color="tab:blue", label="measured $I^{(k)}$")
        flag = "" if fit.reliable[c] else " (flagged)"
        ax.plot(k, fit.curve[c], "o-", color="tab:red" if fit.reliable[c] else "tab:gray", ms=3,
                label=f"theory, σ²={fit.sigma2[c]:.2g}{flag}")
        ax.set_ylabel("$I^{(k)}$ (normalized)", fontsize=7)
        ax.set_title(f"epoch {e}", fontsize=9)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(epochs):]:
        ax.axis("off")
    fig.supxlabel("order k")
    fig.tight_layout()
    return fig, "order_distributions.png", (
        "Normalized strength of salient interactions per order at each checkpoint (bars) and the closed-form "
        "noisy-regression prediction with σ² fitted per checkpoint (red) [D24 Fig. 4].")


def _sigma2_figure(analysis, finding: dict[str, str]):
    """σ² per checkpoint; the caption quotes ``finding``, the [D24] σ² claim of :func:`_findings`."""
    plt = _pyplot()
    fit = analysis.sigma_fit
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ok = np.asarray(fit.reliable, bool)
    e_arr = np.asarray(list(analysis.epochs))
    lo, hi = np.maximum(fit.sigma2_low, 1e-12), np.maximum(fit.sigma2_high, 1e-12)
    ax.fill_between(e_arr, lo, hi, color="tab:blue", alpha=0.15, label="σ² within the fit's noise")
    ax.plot(e_arr[ok], np.maximum(fit.sigma2[ok], 1e-12), "o", color="tab:blue", label="reliable fit")
    ax.plot(e_arr[~ok], np.maximum(fit.sigma2[~ok], 1e-12), "o", mfc="none", color="tab:gray",
            label="flagged (edge / poor fit / not identifiable)")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("σ²")
    ax.set_title("Fitted noise level over training")
    ax.legend(fontsize=7)
    return fig, "sigma2.png", (
        "σ² of the noisy-regression theory that best matches each checkpoint, with the range of σ² that fits "
        "within the fit's noise; hollow grey points are flagged and are not measurements. [D24] predicts that σ² "
        f"falls during phase 2; measured: {finding['measured']} ({finding['verdict']}).")


def _generalization_figure(analysis):
    from jinter import plots

    plt = _pyplot()
    epochs = list(analysis.epochs)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    plots.plot_curves(epochs, {"N̄": analysis.n_bar}, ax=axes[0], ylabel="salient interactions / sample", title="N̄")
    plots.plot_curves(epochs, {"H̄": analysis.h_bar, "H̄ (strength-weighted)": analysis.h_bar_weighted}, ax=axes[1],
                      ylabel="fraction generalizing", title="H̄")
    fig.tight_layout()
    return fig, "generalization.png", (
        "Mean number of salient interactions per sample (N̄) and the fraction of them that generalize to a "
        "baseline model trained on the test split (H̄, plain and strength-weighted) [H25].")


def _decay_spindle_figure(analysis):
    from jinter import study

    plt = _pyplot()
    epochs = list(analysis.epochs)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    over_training = [study.part_strengths(d) for d in analysis.parts]
    axes[0].plot(epochs, [d["decay"] for d in over_training], "o-", label="decay part")
    axes[0].plot(epochs, [d["spindle"] for d in over_training], "s-", label="spindle part")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("Σ_k |A^(k),±| of the part (log-odds)")
    axes[1].set_ylabel("Σ_k |A^(k),±| of the part (log-odds)")
    axes[0].set_title("Decay vs spindle over training")
    axes[0].legend(fontsize=8)
    per_level = [study.part_strengths(p.fit) for p in analysis.noise]
    x = np.arange(len(per_level))
    axes[1].bar(x - 0.2, [d["decay"] for d in per_level], 0.4, label="decay")
    axes[1].bar(x + 0.2, [d["spindle"] for d in per_level], 0.4, label="spindle")
    axes[1].set_xticks(x, [f"{p.label_noise:g}" for p in analysis.noise])
    axes[1].set_xlabel("label noise")
    axes[1].set_title("Final model per label-noise level")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    poor = [f"epoch {e}" for e, d in zip(epochs, analysis.parts) if d.poor_fit] + [
        f"noise {p.label_noise:g}" for p in analysis.noise if p.fit.poor_fit]
    template = {"pipeline": "the pipeline's own (iid noise on v(x_S) of low-order games pushed through the same "
                            "q box and τ rule, theory.pipeline_spindle)",
                "mobius": "the Möbius transform of iid noise at τ = 0 (theory.spindle_curve)"}[analysis.spindle]
    return fig, "decay_spindle.png", (
        "Signed order strengths A^(k),± split into a decay-shaped (generalizable) and a spindle-shaped (noise-like) "
        "part, per checkpoint and across label-noise levels [G25]. "
        f"Spindle template: {template}. "
        + (f"Poor fits (relative residual > 0.2, not a decomposition of the data): {', '.join(poor)}." if poor
           else "Every fit has a relative residual ≤ 0.2."))


def _and_or_orders_figure(analysis, picks: list[int]):
    plt = _pyplot()
    epochs = list(analysis.epochs)
    k = np.arange(1, analysis.n + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    width = 0.8 / len(picks)
    for ax, name, strength in ((axes[0], "AND", analysis.strength_and), (axes[1], "OR", analysis.strength_or)):
        for j, e in enumerate(picks):
            ax.bar(k + (j - (len(picks) - 1) / 2) * width, strength[epochs.index(e)], width, label=f"epoch {e}")
        ax.set_xlabel("order k")
        ax.set_title(f"{name} interactions")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("mean Σ|I| of salient interactions (log-odds)")
    fig.tight_layout()
    return fig, "and_or_orders.png", (
        "Strength of the salient AND interactions (left) and OR interactions (right) per order, averaged over the "
        "probed samples, at the first, a middle and the final checkpoint (τ of each checkpoint; single players "
        "count as AND).")


def _sparsity_figure(analysis, picks: list[int]):
    from jinter import plots

    epochs = list(analysis.epochs)
    fig = plots.plot_sparsity_curve({f"epoch {e}": analysis.sparsity[epochs.index(e)] for e in picks},
                                    title="Sparsity of interactions")
    return fig, "sparsity.png", (
        "Interaction strengths |I| (AND and OR) divided by their maximum, sorted, averaged over samples: a few "
        "salient interactions and a long tail of near-zero ones [R24].")


def _verdict(probe: _Probe) -> str:
    return (f"predicted {probe.label} (p > 0.5)" if probe.log_odds > 0
            else f"not predicted as {probe.label} (p < 0.5)")


def _players_figure(probe: _Probe):
    """The players as numbered patches on the probed image."""
    plt = _pyplot()
    image, label, full, players = probe
    verdict = _verdict(probe)
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    ax.imshow(image, cmap="gray_r")
    member = np.asarray(players.membership).reshape((len(players.membership),) + image.shape[:2] + (-1,)).any(-1)
    for i, m in enumerate(member):
        rows, cols = np.nonzero(m)
        ax.add_patch(plt.Rectangle((cols.min() - 0.5, rows.min() - 0.5), cols.max() - cols.min() + 1,
                                   rows.max() - rows.min() + 1, fill=False, ec="tab:red", lw=1.5))
        ax.text(cols.mean(), rows.mean(), str(i), color="tab:red", ha="center", va="center", fontsize=11,
                fontweight="bold")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"class {label}; final model: log-odds {full:+.2f}, {verdict}", fontsize=8)
    return fig, "players.png", (
        f"The players: {len(member)} image patches (red, numbered as in the interactions) of the first probed "
        f"training digit, class {label}; the final model's log-odds of class {label} on the whole image is "
        f"{full:+.2f} ({verdict}). Pixels outside the patches always keep their values.")


def _top_interaction_figures(analysis, probe: _Probe):
    """The strongest interactions on the probed image: AND and OR together, then each type alone."""
    from jinter import plots

    image, label, players = probe.image, probe.label, probe.players
    yield (plots.plot_top_interactions_image(image, players, list(analysis.top[:6])), "top_interactions.png",
           f"The strongest interactions of the final model on the same digit (class {label}): each panel highlights "
           "the patches of one AND or OR interaction, with its value in log-odds of the class.")
    for kind, records in (("AND", analysis.top_and), ("OR", analysis.top_or)):
        if records:
            yield (plots.plot_top_interactions_image(image, players, list(records[:5])), f"top_{kind.lower()}.png",
                   f"The strongest {kind} interactions alone (final model, same digit, values in log-odds of class "
                   f"{label}).")


def _write_html(out: Path, s: DemoSettings, results: dict, figures: list[tuple[str, str]]) -> None:
    from jinter.training import atomic_write_bytes

    t = results["timings_seconds"]
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.1f}</td></tr>" for k, v in t.items())
    top = "".join(f"<tr><td>{r['type'].upper()}</td><td>{r['players']}</td><td>{r['value']:+.4f}</td></tr>"
                  for r in results["top_interactions_sample0"])
    colour = {"match": "#1a7f37", "mismatch": "#cf222e", "untested": "#6e7781"}
    findings = "".join(
        f"<tr><td>[{html.escape(f['paper'])}]</td><td>{html.escape(f['claim'])}</td><td>{html.escape(f['measured'])}</td>"
        f"<td style=\"color:{colour[f['verdict']]};font-weight:bold\">{f['verdict']}</td></tr>" for f in results["findings"])
    figs = "".join(f'<figure><img src="{html.escape(n)}" alt="{html.escape(n)}"><figcaption>{html.escape(c)}'
                   f"</figcaption></figure>" for n, c in figures)
    settings = html.escape(json.dumps(results["settings"]))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>jinter report: {html.escape(s.dataset)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;}} img{{max-width:100%;}}
figure{{margin:2em 0;}} figcaption{{color:#444;font-size:0.9em;}} td{{padding:0 1em;}}</style></head>
<body><h1>Interaction dynamics of a {html.escape(str(s.model))} on {html.escape(s.dataset)}</h1>
<h2>Findings: the papers' claims against what this run measured</h2>
<table><tr><th>paper</th><th>claim</th><th>measured here</th><th>verdict</th></tr>{findings}</table>
<p>Verdicts use the thresholds named in each claim; <i>untested</i> means the measurement cannot decide
(e.g. a flagged fit). Values of v and of interactions are in log-odds of the sample's class.</p>
<p>n = {s.n_players} players, {s.samples} training samples, {len(results['epochs'])} checkpoints over {s.epochs} epochs,
label noise {s.label_noise:g}. Phase 2 starts at epoch {results['phase_two_start_epoch']}; the loss gap widens at
epoch {results['gap_widening_epoch']}. AND-OR splits: {results['and_or']['unconverged']} of {len(results['epochs']) * s.samples} did not reach the
certified relative gap {s.tol:g} (largest gap {results['and_or']['gap_max']:.2e}).</p>
<p><code>{settings}</code></p>
{figs}
<h2>Top interactions (sample 0, final checkpoint; values in log-odds)</h2><table>{top}</table>
<h2>Wall time (s)</h2><table>{rows}</table>
<p>Every number behind these figures: <a href="results.json">results.json</a>.</p>
</body></html>
"""
    atomic_write_bytes(out / "index.html", page.encode())
