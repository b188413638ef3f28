r"""The study behind ``jinter demo``: one pure analysis of a training run's sweeps.

:func:`analyze` turns the sweeps of a run (the main model's checkpoints, optionally an [H25]
baseline trained on the test split and models trained at several label-noise levels) into a
frozen :class:`DemoAnalysis`: every number the report shows and ``results.json`` stores,
computed once, vectorized over checkpoints. The report (:mod:`jinter.report`) and the
notebooks present from it; nothing downstream recomputes a statistic. Two of its parts also
stand alone, for notebooks that need only them: :func:`label_noise_study` (the [G25] label-noise
models) and :func:`generalization_study` (``N̄, H̄`` against a baseline [H25]).

Definitions (docs/math.md §4–7):

- ``τ = 0.03·E_x|v(x_N) − v(x_∅)|`` per checkpoint [D24];
- order distributions ``I^(k)`` of the salient AND and OR interactions
  (:func:`jinter.statistics.order_distribution`) and their mean order;
- ``w*`` (:func:`ground_truth`): the salient interactions of the final checkpoint, zero
  elsewhere, the bias kept; the noisy-regression overlay ``I_theo^(k)`` with σ² fitted per
  checkpoint (:func:`jinter.theory.fit_sigma2`);
- the epoch where phase 2 starts beside the epoch where the smoothed loss gap widens
  (:mod:`jinter.dynamics`);
- generalization power ``N̄, H̄`` against the baseline [H25];
- signed order strengths ``A^(k),±`` split into decay and spindle parts
  (:func:`jinter.theory.disentangle`) per checkpoint and per label-noise model [G25], the
  spindle template by default that of the pipeline used (:func:`jinter.theory.pipeline_spindle`:
  iid noise on a low-order signal through the same ``q_ratio`` split and τ rule, per unit of
  each model's ``Δ̄ = E_x|v(x_N) − v(x_∅)|``); ``spindle="mobius"`` keeps the Möbius transform
  of iid noise at τ = 0 (:func:`jinter.theory.spindle_curve`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple, get_args

import numpy as np

from jinter import dynamics, generalization, interactions, statistics, theory
from jinter._checks import check_int, check_option, check_real, tiny
from jinter._checks import json_list as _json
from jinter.transforms import num_players

__all__ = ["DemoAnalysis", "NoiseLevelAnalysis", "analyze", "label_noise_study", "generalization_study",
           "noise_peak_orders", "ground_truth", "part_strengths", "SPINDLE_TEMPLATES"]

TAU_FRAC = 0.03
"""[D24]'s threshold fraction: ``τ = 0.03·E_x|v(x_N) − v(x_∅)|``."""

_SpindleName = Literal["pipeline", "mobius"]  # a spindle template of analyze, by name

SPINDLE_TEMPLATES = {
    "pipeline": "theory.pipeline_spindle: expected A^(k),± that iid noise on every v(x_S) adds to random order-1-3 "
                "games through the same and_or q_ratio split and tau rule, per unit of the model's "
                "E_x|v(x_N) - v(x_empty)|, Monte Carlo (20 games, seed 0)",
    "mobius": "theory.spindle_curve: Moebius transform of iid noise at tau = 0, C(n,k) 2^(k/2) sigma / sqrt(2 pi)",
}
"""The spindle templates :func:`analyze` can fit with, and what each is (quoted by the report)."""


class NoiseLevelAnalysis(NamedTuple):
    """Decay and spindle parts of the final model trained at one label-noise level [G25]."""

    label_noise: float
    train_accuracy: float  # on its own (noisy) training labels
    test_accuracy: float
    a_pos: np.ndarray  # (n,) A^(k),+ averaged over the probed samples
    a_neg: np.ndarray  # (n,) A^(k),−
    fit: theory.DisentangleResult

    @property
    def fits_its_labels(self) -> bool:
        """Train accuracy ≥ 0.95: the model has learned its noisy labels."""
        return bool(self.train_accuracy >= 0.95)


@dataclasses.dataclass(frozen=True)
class DemoAnalysis:
    """Everything :func:`analyze` measured; arrays have a leading checkpoint axis ``C``."""

    n: int
    epochs: tuple[int, ...]
    tau: np.ndarray  # (C,)
    order_distribution: np.ndarray  # (C, n), mean 1 over orders
    mean_order: np.ndarray  # (C,)
    sigma_fit: theory.FitResult
    signed_pos: np.ndarray  # (C, n) A^(k),+ averaged over samples
    signed_neg: np.ndarray  # (C, n)
    parts: tuple[theory.DisentangleResult, ...]  # one per checkpoint
    sparsity: np.ndarray  # (C, m) sparsity curves
    phase_two_start: int | float | None
    gap_widening_epoch: int | float | None
    top: tuple[interactions.InteractionRecord, ...]  # sample 0, final checkpoint, AND and OR together
    top_and: tuple[interactions.InteractionRecord, ...]  # the strongest AND interactions alone
    top_or: tuple[interactions.InteractionRecord, ...]  # the strongest OR interactions alone
    strength_and: np.ndarray  # (C, n) mean over samples of Σ_{|S|=k, |I|≥τ} |I_and(S)|
    strength_or: np.ndarray  # (C, n) the same for OR interactions
    n_bar: np.ndarray | None = None  # (C,) [H25], None without a baseline
    h_bar: np.ndarray | None = None
    h_bar_weighted: np.ndarray | None = None
    noise: tuple[NoiseLevelAnalysis, ...] = ()
    spindle: _SpindleName = "pipeline"  # the template of the decay/spindle fits (a key of SPINDLE_TEMPLATES)
    uncertified: np.ndarray | None = None  # (C,) samples whose AND-OR split is not certified (None: not known)

    def to_json(self) -> dict[str, Any]:
        """The analysis part of the demo's ``results.json`` (lists, floats, ``None``)."""
        fit = self.sigma_fit
        out: dict[str, Any] = {
            "epochs": list(self.epochs),
            "tau": _json(self.tau),
            "order_distribution": _json(self.order_distribution),
            "mean_order": _json(self.mean_order),
            "theory": {"sigma2": _json(fit.sigma2), "curve": _json(fit.curve), "fit_error": _json(fit.error),
                       "sigma2_low": _json(fit.sigma2_low), "sigma2_high": _json(fit.sigma2_high),
                       "reliable": _json(fit.reliable), "flags": fit.flags()},
            "phase_two_start_epoch": self.phase_two_start,
            "gap_widening_epoch": self.gap_widening_epoch,
            "signed_strength": {"positive": _json(self.signed_pos), "negative": _json(self.signed_neg)},
            "spindle_template": {"name": self.spindle, "definition": SPINDLE_TEMPLATES[self.spindle]},
            "decay_spindle": [dict(epoch=e, **part_strengths(d), residual=float(d.residual), poor_fit=d.poor_fit,
                                   params={k: _json(v) if isinstance(v, np.ndarray) else v
                                           for k, v in d.params.items()})
                              for e, d in zip(self.epochs, self.parts)],
            "noise_levels": [dict(label_noise=p.label_noise, test_acc=p.test_accuracy, a_pos=_json(p.a_pos),
                                  a_neg=_json(p.a_neg), **part_strengths(p.fit), residual=float(p.fit.residual),
                                  poor_fit=p.fit.poor_fit, sigma=p.fit.params["sigma_pos"],
                                  rel_sigma=p.fit.params.get("rel_sigma_pos")) for p in self.noise],
            "label_noise_study": [dict(label_noise=p.label_noise, train_accuracy=p.train_accuracy,
                                       test_accuracy=p.test_accuracy, fits_its_labels=p.fits_its_labels,
                                       **part_strengths(p.fit), residual=float(p.fit.residual), poor_fit=p.fit.poor_fit,
                                       **peaks)
                                  for p, peaks in zip(self.noise, noise_peak_orders(self.noise))],
            "sparsity_curves": {str(e): _json(c) for e, c in zip(self.epochs, self.sparsity)},
            "top_interactions_sample0": _records(self.top),
            "top_and_sample0": _records(self.top_and),
            "top_or_sample0": _records(self.top_or),
            "order_strength_by_type": {"and": _json(self.strength_and), "or": _json(self.strength_or)},
            "and_or_uncertified": None if self.uncertified is None else _json(self.uncertified),
        }
        if self.n_bar is not None:
            out["generalization"] = {"n_bar": _json(self.n_bar), "h_bar": _json(self.h_bar),
                                     "h_bar_weighted": _json(self.h_bar_weighted)}
        return out


def _peak_order(pos: np.ndarray, neg: np.ndarray) -> int | None:
    """The order ``k`` (1-based) where ``|A^(k),+| + |A^(k),−|`` peaks; ``None`` where it is 0 everywhere."""
    s = np.abs(np.asarray(pos, np.float64)) + np.abs(np.asarray(neg, np.float64))
    return int(np.argmax(s)) + 1 if float(np.max(s, initial=0.0)) > 0 else None


def noise_peak_orders(levels: Sequence[NoiseLevelAnalysis]) -> list[dict[str, int | None]]:
    """Where the label-noise models' extra strength sits, against where the fitted spindle sits [G25].

    Per level: ``extra_peak_order``, the order at which ``|A^(k),+| + |A^(k),−|`` exceeds the
    clean model's (label noise 0) the most (``None`` for the clean model itself, or without one),
    and ``spindle_peak_order``, the peak order of the fitted spindle part (``None`` if it is 0).
    When the two differ, the spindle template does not have the shape of what the noise added.
    """
    clean = next((p for p in levels if p.label_noise == 0), None)
    out = []
    for p in levels:
        extra = None
        if clean is not None and p is not clean:
            d = (np.abs(p.a_pos) + np.abs(p.a_neg)) - (np.abs(clean.a_pos) + np.abs(clean.a_neg))
            extra = _peak_order(np.maximum(d, 0.0), np.zeros_like(d))
        out.append({"extra_peak_order": extra, "spindle_peak_order": _peak_order(p.fit.spindle_pos, p.fit.spindle_neg)})
    return out


def _records(records) -> list[dict[str, Any]]:
    return [dict(players=list(r.players), type=r.type, value=float(r.value)) for r in records]


def part_strengths(d: theory.DisentangleResult) -> dict[str, float]:
    """Total strength ``Σ_k |A^(k),+| + |A^(k),−|`` of the decay and of the spindle part of a fit."""
    def total(*xs):
        return float(sum(np.abs(np.asarray(x)).sum() for x in xs))

    return {"decay": total(d.decay_pos, d.decay_neg), "spindle": total(d.spindle_pos, d.spindle_neg)}


def ground_truth(i_and: np.ndarray, i_or: np.ndarray | None, tau: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``w*`` of the noisy regression [D24] §5: the salient interactions, zero elsewhere, bias kept.

    Args:
        i_and, i_or: interactions of the final checkpoint, ``(samples, 2**n)``.
        tau: the threshold of salience (broadcasting against the leading axes).
    """
    i_and = np.asarray(i_and)
    w_and = np.where(np.asarray(statistics.salient_mask(i_and, tau)), i_and, 0.0)
    w_and[..., 0] = i_and[..., 0]  # the bias is part of the truth, never "salient"
    if i_or is None:
        return w_and, None
    i_or = np.asarray(i_or)
    return w_and, np.where(np.asarray(statistics.salient_mask(i_or, tau)), i_or, 0.0)


def _signed(i_and: np.ndarray, i_or: np.ndarray, tau: Any, axis: int) -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.asarray(a).mean(axis=axis) for a in statistics.signed_order_strength(i_and, i_or, tau))


def _uncertified(sweep: Any, checkpoints: int) -> np.ndarray | None:
    """Per checkpoint, the samples whose AND-OR split is not certified (``converged`` False), or
    ``None`` when the sweep does not say; any such split is flagged with a warning: what is
    measured from it is not a certified finding."""
    converged = getattr(getattr(sweep, "and_or", None), "converged", None)
    if converged is None:
        return None
    bad = (~np.asarray(converged, dtype=bool)).reshape(checkpoints, -1).sum(axis=1)
    if bad.any():
        warnings.warn(
            f"{int(bad.sum())} of {np.size(converged)} AND-OR splits of the sweep are NOT certified (per checkpoint: "
            f"{bad.tolist()}): the measures computed from them are not certified findings; rerun the sweep with a "
            "larger max_iter", stacklevel=3)
    return bad


def analyze(
    sweep: Any,
    *,
    history: Mapping[str, Sequence[float]] | None = None,
    baseline: Any = None,
    noise: Mapping[float, tuple[Any, Mapping[str, Sequence[float]]]] | None = None,
    top_k: int = 8,
    spindle: _SpindleName = "pipeline",
    q_ratio: float | None = None,
) -> DemoAnalysis:
    """Analyze a training run's sweeps once (see the module docstring for the definitions).

    Args:
        sweep: the main model's :class:`~jinter.sweep.SweepResult` (checkpoints × samples); of
            it this reads ``epochs``, ``v``, ``I_and``, ``I_or`` and ``settings`` (and of
            ``baseline`` and the noise sweeps ``v``, ``I_and`` and ``I_or``).
        history: its learning curves (``epoch``, ``train_loss``, ``test_loss``) for the
            gap-widening epoch; ``None`` leaves that epoch ``None``.
        baseline: the sweep of a baseline trained on the test split, on the same samples
            (its first checkpoint is used) for ``N̄, H̄`` [H25]; ``None`` leaves them out.
        noise: label-noise level → ``(sweep, history)`` of a model trained at that level (its
            first checkpoint is used) for the decay/spindle study [G25].
        top_k: number of strongest interactions kept (sample 0, final checkpoint): of both
            types together, of AND alone and of OR alone.
        spindle: the spindle template of the decay/spindle fits: ``"pipeline"`` (default,
            :func:`jinter.theory.pipeline_spindle` for this ``q_ratio`` and τ rule, scaled to each
            model's ``Δ̄``; computed once per setting and process, about 1–2 min at n = 10 on 2
            CPU cores) or ``"mobius"`` (:func:`jinter.theory.spindle_curve`).
        q_ratio: the ``q`` box of the sweeps' AND-OR split, for the pipeline template; ``None``:
            the sweep's ``settings["q_ratio"]`` (0.02, the default of :func:`jinter.and_or`, if its
            settings have none).
    """
    check_option(spindle, "spindle", get_args(_SpindleName))
    top_k = check_int(top_k, "top_k", 0)
    _check_sweep("sweep", sweep, ("epochs", "v", "I_and", "I_or"))
    if baseline is not None:
        _check_sweep("baseline", baseline)
    _check_noise(noise, np.shape(sweep.I_and)[-1])
    if history is not None and not all(k in history for k in ("epoch", "train_loss", "test_loss")):
        raise ValueError(f"history needs 'epoch', 'train_loss' and 'test_loss', got keys {sorted(history)}")
    i_and, i_or = np.asarray(sweep.I_and), np.asarray(sweep.I_or)
    if i_and.ndim != 3 or i_or.shape != i_and.shape:
        raise ValueError(f"sweep must hold (checkpoints, samples, 2**n) interactions, got {i_and.shape}")
    n = num_players(i_and)
    epochs = tuple(int(e) for e in sweep.epochs)
    tau = np.asarray(statistics.tau_output(sweep.v, TAU_FRAC, sample_axis=1))  # (C,)
    tau_b = tau[:, None]  # one τ per checkpoint, broadcast over the samples
    dist = np.asarray(statistics.order_distribution(i_and, i_or, tau_b, sample_axis=1))
    orders = np.asarray(dynamics.mean_order(dist))
    w_and, w_or = ground_truth(i_and[-1], i_or[-1], tau[-1])
    fit = theory.fit_sigma2(dist, w_and, w_star_or=w_or)
    pos, neg = _signed(i_and, i_or, tau_b, axis=1)
    split = _splitter(n, spindle, _sweep_q_ratio(sweep, q_ratio))
    parts = tuple(split(pos[c], neg[c], tau[c]) for c in range(len(epochs)))
    sparsity = np.asarray(statistics.sparsity_curve(i_and, i_or, sample_axis=1))
    gap = None
    if history is not None:
        gap = dynamics.gap_widening_epoch(history["epoch"], history["train_loss"], history["test_loss"])
    ranked = interactions.top_interactions(i_and[-1, 0], i_or[-1, 0], k=2 * 2**n, tau=float(tau[-1]))
    top = tuple(ranked[:top_k])
    top_and = tuple([r for r in ranked if r.type == "and"][:top_k])
    top_or = tuple([r for r in ranked if r.type == "or"][:top_k])
    strength_and, strength_or = (np.asarray(statistics.order_strength(i, None, tau_b)).mean(axis=1)
                                 for i in (i_and, i_or))
    gp = {} if baseline is None else _generalization(i_and, i_or, tau, baseline)
    levels = _noise_levels(noise or {}, split)
    uncertified = _uncertified(sweep, len(epochs))
    return DemoAnalysis(n=n, epochs=epochs, tau=tau, order_distribution=dist, mean_order=orders, sigma_fit=fit,
                        signed_pos=pos, signed_neg=neg, parts=parts, sparsity=sparsity,
                        phase_two_start=dynamics.phase_two_start(epochs, orders), gap_widening_epoch=gap, top=top,
                        top_and=top_and, top_or=top_or, strength_and=strength_and, strength_or=strength_or,
                        noise=levels, spindle=spindle, uncertified=uncertified, **gp)


def label_noise_study(
    noise: Mapping[float, tuple[Any, Mapping[str, Sequence[float]]]],
    *,
    spindle: _SpindleName = "pipeline",
    q_ratio: float | None = None,
) -> tuple[NoiseLevelAnalysis, ...]:
    """The decay/spindle study of models trained at several label-noise levels [G25], as :func:`analyze`
    makes it (``DemoAnalysis.noise``) but without a main model's sweep.

    Per level: ``A^(k),±`` of the first checkpoint's salient interactions (τ rule :data:`TAU_FRAC`)
    averaged over the samples, split by :func:`jinter.theory.disentangle` with the spindle
    template ``spindle`` scaled to the model's ``Δ̄``; :func:`noise_peak_orders` locates its parts.

    Args:
        noise: label-noise level → ``(sweep, history)`` of a model trained at that level (its
            first checkpoint is used; ``history`` has ``train_acc`` and ``test_acc``).
        spindle, q_ratio: as in :func:`analyze`; ``q_ratio=None`` takes the first sweep's
            ``settings["q_ratio"]`` (0.02 if it has none).
    """
    check_option(spindle, "spindle", get_args(_SpindleName))
    _check_noise(noise)
    if not noise:
        return ()
    first = next(iter(noise.values()))[0]
    _check_noise(noise, np.shape(first.I_and)[-1])  # every level over the same players
    n = num_players(np.asarray(first.I_and))
    return _noise_levels(noise, _splitter(n, spindle, _sweep_q_ratio(first, q_ratio)))


def generalization_study(sweep: Any, baseline: Any) -> dict[str, np.ndarray]:
    """``N̄``, ``H̄`` and the strength-weighted ``H̄`` of every checkpoint of ``sweep`` against a
    baseline trained on the test split [H25], as :func:`analyze` computes them.

    Args:
        sweep: the model's sweep (checkpoints × samples); τ = :data:`TAU_FRAC` ``·Δ̄`` per checkpoint.
        baseline: the baseline's sweep on the same samples (its first checkpoint is used).

    Returns:
        ``{"n_bar": (C,), "h_bar": (C,), "h_bar_weighted": (C,)}``, the fields of :class:`DemoAnalysis`.
    """
    i_and, i_or = np.asarray(sweep.I_and), np.asarray(sweep.I_or)
    if i_and.ndim != 3 or i_or.shape != i_and.shape:
        raise ValueError(f"sweep must hold (checkpoints, samples, 2**n) interactions, got {i_and.shape}")
    tau = np.asarray(statistics.tau_output(sweep.v, TAU_FRAC, sample_axis=1))
    return _generalization(i_and, i_or, tau, baseline)


def _sweep_q_ratio(sweep: Any, q_ratio: float | None) -> float:
    """``q_ratio``, or the ``q`` box of the sweep's AND-OR split if ``None`` (0.02 if it has no settings)."""
    if q_ratio is None:
        q_ratio = float(sweep.settings.get("q_ratio", 0.02))
    return q_ratio


def _splitter(n: int, spindle: _SpindleName, q_ratio: float):
    """``split(a_pos, a_neg, tau) -> DisentangleResult``: the decay/spindle fit of one model with
    threshold ``tau``, the spindle template ``spindle`` scaled to its ``Δ̄ = tau / TAU_FRAC``."""
    template = theory.pipeline_spindle(n, q_ratio=q_ratio, tau_frac=TAU_FRAC) if spindle == "pipeline" else None

    def split(a_pos, a_neg, tau_):
        if template is None:
            return theory.disentangle(a_pos, a_neg, n)
        delta = max(float(tau_) / TAU_FRAC, tiny(np.float64))  # Δ̄ = E_x|v(x_N) − v(x_∅)|
        return theory.disentangle(a_pos, a_neg, n, spindle=template.scaled(delta))

    return split


def _check_sweep(what: str, obj: Any, needs: tuple[str, ...] = ("v", "I_and", "I_or")) -> None:
    if not all(hasattr(obj, a) for a in needs):
        raise TypeError(f"{what} must be a sweep result ({', '.join(needs)}; e.g. jinter.sweep.load_sweep), "
                        f"got {type(obj).__name__}")


def _check_noise(noise: Any, size: int | None = None) -> None:
    """``noise`` is None or ``{level in [0, 1]: (sweep, history with train_acc and test_acc)}``,
    each sweep over the ``size = 2**n`` subsets of the main sweep's players."""
    if noise is None:
        return
    if not isinstance(noise, Mapping):
        raise TypeError(f"noise must be a mapping label-noise level → (sweep, history), got {type(noise).__name__}")
    for level, entry in noise.items():
        check_real(level, "noise levels", least=0.0, most=1.0)
        if not (isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) == 2):
            raise TypeError(f"noise[{level!r}] must be a pair (sweep, history), got {type(entry).__name__}")
        _check_sweep(f"noise[{level!r}][0]", entry[0])
        if size is not None and np.shape(entry[0].I_and)[-1] != size:
            raise ValueError(f"noise[{level!r}][0] has interactions over {np.shape(entry[0].I_and)[-1]} subsets, the "
                             f"sweep over {size}: the label-noise models must be probed with the same players")
        h = entry[1]
        if not (isinstance(h, Mapping) and all(k in h and len(h[k]) > 0 for k in ("train_acc", "test_acc"))):
            raise ValueError(f"noise[{level!r}][1] must be a training history with 'train_acc' and 'test_acc'")


def _noise_levels(noise: Mapping[float, tuple[Any, Mapping[str, Sequence[float]]]], split) -> tuple[NoiseLevelAnalysis, ...]:
    """One :class:`NoiseLevelAnalysis` per label-noise model (its first checkpoint), fitted by ``split``."""
    levels = []
    for level, (r, h) in sorted(noise.items(), key=lambda kv: float(kv[0])):  # ascending noise: the trend's order
        r_and, r_or = np.asarray(r.I_and)[0], np.asarray(r.I_or)[0]
        tl = np.asarray(statistics.tau_output(np.asarray(r.v)[0], TAU_FRAC))
        p_, n_ = _signed(r_and, r_or, tl, axis=0)
        levels.append(NoiseLevelAnalysis(float(level), float(h["train_acc"][-1]), float(h["test_acc"][-1]), p_, n_,
                                         split(p_, n_, tl)))
    return tuple(levels)


def _generalization(i_and: np.ndarray, i_or: np.ndarray, tau: np.ndarray, baseline: Any) -> dict[str, np.ndarray]:
    """:func:`generalization_study` of interactions ``(C, S, 2**n)`` with thresholds ``tau`` ``(C,)``."""
    b_and, b_or = np.asarray(baseline.I_and)[0], np.asarray(baseline.I_or)[0]
    if b_and.shape != i_and.shape[1:]:
        raise ValueError(f"baseline must hold the same samples and players as sweep: {b_and.shape} vs "
                         f"{i_and.shape[1:]}")
    tau_base = np.asarray(statistics.tau_output(np.asarray(baseline.v)[0], TAU_FRAC))
    shape = i_and.shape
    g = generalization.generalization_power((i_and, i_or), (np.broadcast_to(b_and, shape),
                                            np.broadcast_to(b_or, shape)), tau[:, None], tau_base, sample_axis=1)
    return dict(n_bar=np.asarray(g.n_bar), h_bar=np.asarray(g.h_bar), h_bar_weighted=np.asarray(g.h_bar_weighted))
