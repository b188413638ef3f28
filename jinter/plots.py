r"""Figures of interaction analyses (docs/math.md §4, §7): matplotlib, Agg-safe.

Every function returns the :class:`matplotlib.figure.Figure` it drew on and takes an
optional ``ax``. Without one, a new figure is created without pyplot (no global figure
state, nothing is shown); save it with ``fig.savefig(path)`` or display it in a notebook
by returning it. Functions taking interactions also accept a result in place of ``i_and``
(:class:`~jinter.AndOrResult`, :class:`~jinter.SharedAndOrResult`,
:class:`~jinter.sweep.SweepResult` or :class:`~jinter.interactions.Interactions`, whose ``tau``
and player names are then used too) or an ``(i_and, i_or)`` tuple; anything else is a
``TypeError`` (:func:`jinter.statistics.interaction_arrays`).
"""

from __future__ import annotations

import sys
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from jaxtyping import ArrayLike, Float
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from jinter._checks import (
    check_axis,
    check_int,
    check_ints,
    check_option,
    check_real,
    check_tau,
    host_real,
    sample_index,
)
from jinter.interactions import InteractionRecord, Interactions, top_interactions
from jinter.masking import PatchPlayers
from jinter.statistics import _and_or_arrays, interaction_arrays, signed_order_strength, sparsity_curve
from jinter.transforms import mask_to_players, num_players

__all__ = [
    "plot_sparsity_curve",
    "plot_order_distribution",
    "plot_top_interactions_image",
    "plot_top_interactions_tokens",
    "plot_and_or_pie",
    "plot_curves",
    "plot_upset",
    "plot_interaction_network",
]

_AND_COLORS = ("#c0392b", "#f1948a")  # positive, negative
_OR_COLORS = ("#1f5fa8", "#85b7e8")
_POS, _NEG = "#c0392b", "#1f5fa8"


def _fig_ax(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (or None for a new figure), got {type(ax).__name__}")
    if ax is None:
        if "IPython" in sys.modules:  # in a notebook, pyplot registers the display hook for Figures
            import matplotlib.pyplot  # noqa: F401
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    return _root(ax), ax


def _root(ax: Axes) -> Figure:
    try:
        return ax.get_figure(root=True)
    except TypeError:  # pragma: no cover - matplotlib < 3.10
        return ax.figure


def _unpack(i_and: Any, i_or: Any, tau: Any) -> tuple[np.ndarray, np.ndarray | None, Any]:
    """Arrays (and τ) from arrays, a tuple or a result (:func:`interaction_arrays`; an
    :class:`~jinter.Interactions` also gives its τ)."""
    if tau is None:
        tau = i_and.tau if isinstance(i_and, Interactions) else 0.0
    a, o = interaction_arrays(i_and, i_or, what="i_and")
    checked = _and_or_arrays(a, o)  # real, finite, over subsets, AND and OR of one shape
    return np.asarray(checked[0]), None if o is None else np.asarray(checked[1]), tau


def _record(r: Any) -> InteractionRecord:
    """An InteractionRecord from a record or a dict with players/mask, type and value."""
    if isinstance(r, InteractionRecord):
        return r
    if isinstance(r, Mapping):
        if "value" not in r or ("players" not in r and "mask" not in r):
            raise ValueError(f"a record dict needs 'value' and 'players' (or 'mask'), got keys {sorted(r)}")
        players = r.get("players")
        if players is None:
            players = mask_to_players(r["mask"])
        players = check_ints(players, "record players")
        mask = sum(1 << p for p in players)
        if r.get("mask") is not None and r.get("players") is not None and int(r["mask"]) != mask:
            raise ValueError(f"record mask {r['mask']} does not match its players {players}")
        kind = r.get("type", "and")
        check_option(kind, "record type", ("and", "or"))
        value = check_real(r["value"], "record value")
        names = r.get("names")
        return InteractionRecord(players, kind, value, mask, len(players), None if names is None else tuple(names))
    raise TypeError(f"a record is an InteractionRecord or a dict, got {type(r).__name__}")


def _records(records: Sequence[Any]) -> list[InteractionRecord]:
    if isinstance(records, (InteractionRecord, Mapping)):
        raise TypeError("records must be a list of records (e.g. top_interactions(...)); wrap a single one: [record]")
    out = [_record(r) for r in records]
    if not out:
        raise ValueError("records is empty: nothing to draw")
    return out


# ------------------------------------------------------------------------------------------


def plot_sparsity_curve(
    curves: Float[ArrayLike, "m"] | Float[ArrayLike, "series m"] | Mapping[str, ArrayLike] | Any,
    *,
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Sorted normalized interaction strengths on a log y axis ([R24] Fig. 2).

    Args:
        curves: one curve from :func:`~jinter.statistics.sparsity_curve`, several as rows, a
            mapping label → curve, or an ``Interactions`` object.
        labels: legend labels for the rows.
    """
    def curve(c: Any) -> np.ndarray:
        if isinstance(c, Interactions):
            return c.sparsity_curve()
        if hasattr(c, "I_and"):  # an and_or result: its curve averaged over its samples
            return np.asarray(sparsity_curve(*interaction_arrays(c, what="curves")))
        return host_real(c, "curves")

    if isinstance(curves, Mapping):
        if labels is not None:
            raise ValueError("labels come from the mapping's keys; pass either a mapping or labels")
        labels, rows = list(curves), [curve(c) for c in curves.values()]
        if any(r.ndim != 1 for r in rows):
            raise ValueError(f"each curve of the mapping must be 1-D, got shapes {[r.shape for r in rows]}")
    else:
        arr = curve(curves)
        if arr.ndim not in (1, 2):
            raise ValueError(f"curves must be 1-D or 2-D, got shape {arr.shape}")
        rows = list(np.atleast_2d(arr))
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"{len(labels)} labels for {len(rows)} curves")
    if not rows or not all(r.size and np.all(np.isfinite(r)) and np.all(r >= 0) for r in rows):
        raise ValueError("curves must be non-empty, finite and ≥ 0 (normalized strengths, e.g. sparsity_curve)")
    fig, ax = _fig_ax(ax, (5.0, 3.5))
    for j, row in enumerate(rows):
        y = np.where(row > 0, row, np.nan)  # zeros have no place on a log axis
        ax.plot(np.arange(1, row.size + 1), y, label=None if labels is None else labels[j])
    ax.set_yscale("log")
    ax.set_xlabel("interactions, sorted by strength")
    ax.set_ylabel("|I(S)| / max |I(S)|")
    if labels is not None:
        ax.legend()
    if title:
        ax.set_title(title)
    return fig


def plot_order_distribution(
    i_and: Float[ArrayLike, "*batch 2**n"] | Any,
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    tau: ArrayLike | None = None,
    *,
    sample_axis: int | None = 0,
    normalize: bool = False,
    theory: ArrayLike | tuple[ArrayLike, ArrayLike] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Signed strength of salient interactions per order ([D24], [G25], docs/math.md §4).

    Bars of ``A^(k),+`` above zero and ``A^(k),−`` below, side by side for AND and OR,
    averaged over ``sample_axis``.

    Args:
        tau: salience threshold (default: the object's τ, or 0 for arrays).
        normalize: divide by ``Z = mean_k Σ_type (A^(k),+ − A^(k),−)`` (as in [D24] eq. 12).
        theory: optional overlay: one curve over orders ``1…n`` (e.g. ``I_theo^(k)``) or a
            ``(positive, negative)`` pair.
    """
    a, o, tau = _unpack(i_and, i_or, tau)
    n = num_players(a, what="i_and")
    check_tau(tau, "tau", a.shape[:-1])
    curves = None
    if theory is not None:
        curves = list(theory) if isinstance(theory, tuple) else [theory]
        curves = [host_real(c, "theory") for c in curves]
        if len(curves) > 2 or any(c.shape != (n,) or not np.all(np.isfinite(c)) for c in curves):
            raise ValueError(f"theory must be one curve over the orders 1…{n} (shape ({n},)) or a (positive, "
                             f"negative) pair of them, finite; got shapes {[c.shape for c in curves]}")
    parts = [("AND", a, _AND_COLORS)] + ([("OR", o, _OR_COLORS)] if o is not None else [])
    stats = []
    for name, arr, colors in parts:
        pos, neg = (np.asarray(x) for x in signed_order_strength(arr, None, tau))
        axis = check_axis(sample_axis, pos.ndim - 1)
        if axis is not None and pos.ndim > 1:
            pos, neg = pos.mean(axis=axis), neg.mean(axis=axis)
        if pos.ndim != 1:
            raise ValueError(f"after averaging, expected one distribution, got shape {pos.shape}")
        stats.append((name, pos, neg, colors))
    if normalize and n:  # n = 0: no orders, nothing to normalize
        z = np.mean(sum(p - q for _, p, q, _ in stats))
        if z > 0:
            stats = [(nm, p / z, q / z, c) for nm, p, q, c in stats]
    fig, ax = _fig_ax(ax, (6.0, 3.5))
    k = np.arange(1, n + 1)
    width = 0.8 / len(stats)
    for j, (name, pos, neg, colors) in enumerate(stats):
        x = k + (j - (len(stats) - 1) / 2) * width
        ax.bar(x, pos, width, color=colors[0], label=f"{name} +")
        ax.bar(x, neg, width, color=colors[1], label=f"{name} −")
    for c, style in zip(curves or (), ("k-", "k--")):
        ax.plot(k, c, style, marker="o", ms=3, label="theory")
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xticks(k)
    ax.set_xlabel("order k")
    ax.set_ylabel("normalized strength" if normalize else "strength of salient interactions")
    ax.legend(fontsize="small", ncols=2)
    if title:
        ax.set_title(title)
    return fig


def _membership(players: Any, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (n, H, W) membership of patch players, scaled up to the image size."""
    channels_last = False
    if isinstance(players, PatchPlayers):
        channels_last, players = players.channels_last, players.membership
    elif not isinstance(players, (np.ndarray, jax.Array, list, tuple)):
        raise TypeError(
            f"players must be a PatchPlayers or a boolean (n, H, W) membership array, got {type(players).__name__}"
        )
    m = np.asarray(players)
    if m.dtype != np.bool_ and not (m.dtype.kind in "iuf" and np.all((m == 0) | (m == 1))):
        raise ValueError(f"players must be a boolean membership (True/False or 0/1), got {m.dtype} values "
                         f"{np.unique(m)[:5].tolist()}")
    m = m.astype(bool)
    if m.ndim == 4:  # (n, C, H, W) or, with channels_last, (n, H, W, C): a patch spans channels
        m = m.any(axis=-1 if channels_last else 1)
    if m.ndim != 3:
        raise ValueError(f"players must be a boolean (n, H, W) membership array, got shape {m.shape}")
    h, w = m.shape[1:]
    if (h, w) != shape:
        if shape[0] % h or shape[1] % w:
            raise ValueError(f"membership grid {(h, w)} does not divide the image size {shape}")
        m = m.repeat(shape[0] // h, axis=1).repeat(shape[1] // w, axis=2)
    return m


def plot_top_interactions_image(
    image: Float[ArrayLike, "H W"] | Float[ArrayLike, "H W C"],
    players: ArrayLike | Any,
    records: Sequence[InteractionRecord | Mapping[str, Any]],
    *,
    ax: Axes | Sequence[Axes] | None = None,
    ncols: int | None = None,
    dim: float = 0.75,
) -> Figure:
    """Top interactions drawn on an image: one panel per record, its patches highlighted.

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)`` image (floats, rescaled to [0, 1]
            for display if outside it, or uint8).
        players: boolean membership ``(n, h, w)`` of the patch players (``(h, w)`` may be a
            coarser grid dividing ``(H, W)``, e.g. a feature-map grid), or a
            :class:`~jinter.masking.PatchPlayers` (its ``membership``, ``(n, C, h, w)`` or, with
            ``channels_last``, ``(n, h, w, C)``); anything else is a ``TypeError``.
        records: from :func:`~jinter.interactions.top_interactions` (or dicts with ``players``
            or ``mask``, ``type`` and ``value``).
        ax: optional axes, one per record.
        ncols: panels per row (default up to 5).
        dim: how strongly pixels outside the interaction are faded (0 none, 1 white).
    """
    recs = _records(records)
    dim = check_real(dim, "dim", least=0.0, most=1.0)
    if ncols is not None:
        ncols = check_int(ncols, "ncols", 1, most=len(recs))
    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.dtype.kind not in "uif":
        raise ValueError(f"image must be a real (H, W) or (H, W, C) image, got shape {img.shape} dtype {img.dtype}")
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3, 4):
        img = np.moveaxis(img, 0, -1)  # channels first → last
    if img.ndim == 3 and img.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image must have 1, 3 or 4 channels (gray, RGB, RGBA), got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise ValueError("image has NaN or infinite pixels")
    if img.dtype == np.uint8:
        img = img / 255.0
    img = img.astype(float)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    elif img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    lo, hi = float(img.min()), float(img.max())
    if lo < 0 or hi > 1:  # e.g. a normalized image: rescale for display
        img = (img - lo) / (hi - lo if hi > lo else 1.0)
    member = _membership(players, img.shape[:2])
    n = member.shape[0]
    if ax is None:
        cols = min(len(recs), 5) if ncols is None else int(ncols)
        rows = -(-len(recs) // cols)
        fig = Figure(figsize=(2.2 * cols, 2.4 * rows), layout="constrained")
        axes = list(np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel())
        for extra in axes[len(recs):]:
            extra.set_axis_off()
    else:
        axes = [ax] if isinstance(ax, Axes) else list(ax)
        if len(axes) < len(recs):
            raise ValueError(f"{len(recs)} records need as many axes, got {len(axes)}")
        fig = _root(axes[0])
    for a, r in zip(axes, recs):
        if any(p >= n for p in r.players):
            raise ValueError(f"record {r.label} names a player >= n={n}")
        region = member[list(r.players)].any(axis=0)
        shown = np.where(region[..., None], img[..., :3], (1 - dim) * img[..., :3] + dim)
        a.imshow(shown, interpolation="nearest")
        color = _POS if r.value >= 0 else _NEG
        if region.any() and not region.all():
            a.contour(region.astype(float), levels=[0.5], colors=[color], linewidths=1.5)
        a.set_title(f"{r.label}\n{r.value:+.3g}", fontsize="small", color=color)
        a.set_xticks([])
        a.set_yticks([])
    return fig


def plot_top_interactions_tokens(
    tokens: Sequence[str],
    records: Sequence[InteractionRecord | Mapping[str, Any]],
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Top interactions on a token sequence: one line per record, its tokens boxed.

    AND interactions get solid boxes, OR interactions dashed ones; red for positive values,
    blue for negative. Player ``i`` is ``tokens[i]``.
    """
    recs = _records(records)
    toks = [str(t) for t in tokens]
    for r in recs:
        if any(p >= len(toks) for p in r.players):
            raise ValueError(f"record {r.label} names a player >= the {len(toks)} tokens")
    starts = np.cumsum([0] + [len(t) + 2 for t in toks])  # character units
    label_w = 12
    total = label_w + int(starts[-1])
    fig, ax = _fig_ax(ax, (max(4.0, 0.11 * total), 0.45 * len(recs) + 0.6))
    for row, r in enumerate(recs):
        y = -row
        color = _POS if r.value >= 0 else _NEG
        ax.text(0, y, f"{r.type.upper()} {r.value:+.3g}", color=color, va="center", family="monospace", fontsize=9)
        chosen = set(r.players)
        for i, t in enumerate(toks):
            box = None
            if i in chosen:
                box = dict(boxstyle="round,pad=0.2", fc="none", ec=color, ls="-" if r.type == "and" else "--")
            ax.text(label_w + starts[i], y, t, va="center", family="monospace", fontsize=9, bbox=box)
    ax.set_xlim(-0.5, total)
    ax.set_ylim(-len(recs) + 0.4, 0.6)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def plot_and_or_pie(
    i_and: Float[ArrayLike, "*batch 2**n"] | Any,
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Share of the total strength ``Σ|I(S)|`` (``S ≠ ∅``, all samples) in AND vs OR."""
    a, o, _ = _unpack(i_and, i_or, None)
    if o is None:
        raise ValueError("plot_and_or_pie needs OR interactions")
    num_players(a, what="i_and")
    shares = [float(np.abs(x[..., 1:]).sum()) for x in (a, o)]
    if not sum(shares) > 0:
        raise ValueError("all interactions are zero: no shares to draw")
    fig, ax = _fig_ax(ax, (3.5, 3.5))
    ax.pie(shares, labels=["AND", "OR"], colors=[_AND_COLORS[0], _OR_COLORS[0]], autopct="%1.1f%%")
    ax.set_title(title or "share of |I| (AND vs OR)")
    return fig


def plot_curves(
    x: Float[ArrayLike, "t"],
    series: Mapping[str, Float[ArrayLike, "t"]],
    *,
    phases: Sequence[float] | Mapping[str, float] | None = None,
    ax: Axes | None = None,
    xlabel: str = "epoch",
    ylabel: str | None = None,
    logy: bool = False,
    title: str | None = None,
) -> Figure:
    """Per-epoch curves (e.g. train/test loss, ``N̄``, ``H̄``) with vertical phase marks.

    Args:
        x: positions (epochs), length ``t``.
        series: label → values of length ``t``.
        phases: x positions of phase boundaries, or label → position.
    """
    xs = host_real(x, "x")
    if not isinstance(series, Mapping):
        raise TypeError(f"series must be a mapping label → values, got {type(series).__name__}")
    if not series:
        raise ValueError("series is empty")
    if phases is not None:
        if not isinstance(phases, Mapping) and (isinstance(phases, (str, bytes)) or not hasattr(phases, "__iter__")):
            raise TypeError(f"phases must be a sequence of x positions or a mapping label → position, got {phases!r}")
        items = list(phases.items()) if isinstance(phases, Mapping) else [(None, p) for p in phases]
        phases = [(label, check_real(p, "phases entries")) for label, p in items]
    fig, ax = _fig_ax(ax, (5.5, 3.5))
    for label, ys in series.items():
        ys = host_real(ys, f"series {label!r}")
        if ys.shape != xs.shape:
            raise ValueError(f"series {label!r} has shape {ys.shape}, x has {xs.shape}")
        ax.plot(xs, ys, label=label)
    if phases is not None:
        for label, p in phases:
            ax.axvline(float(p), color="gray", ls="--", lw=1)
            if label is not None:
                ax.annotate(str(label), (float(p), 1.0), xycoords=("data", "axes fraction"),
                            rotation=90, va="top", ha="right", fontsize="small", color="gray")  # fmt: skip
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


# ------------------------------------------------------------------------------------------
# shapiq-style views of one sample's top interactions: UpSet plot and interaction network


def _one_sample(
    i_and: Any,
    i_or: Any,
    sample: int | tuple[int, ...] | None,
    players: Sequence[Any] | None,
    k: int,
    what: str,
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...], int]:
    """One sample's AND (and OR) arrays, player names and ``k``, from arrays, a tuple or a result
    (:func:`interaction_arrays`; an ``Interactions`` object also gives its player names)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{what}: k must be an integer >= 1, got {k!r}")
    if players is None and isinstance(i_and, Interactions):
        players = i_and.players
    a, o, _ = _unpack(i_and, i_or, None)
    n = num_players(a, what="i_and")
    if o is not None:
        num_players(o, what="i_or")
        if o.shape != a.shape:
            raise ValueError(f"i_and and i_or must have the same shape, got {a.shape} and {o.shape}")
    batch = a.shape[:-1]
    if sample is None:
        if batch:
            raise ValueError(
                f"{what} draws one sample: pass I[i] (or sample=i); got interactions of shape {a.shape}"
            )
    else:
        index = sample_index(sample, batch)
        a, o = a[index], None if o is None else o[index]
    names = tuple(f"p{i}" for i in range(n)) if players is None else tuple(str(p) for p in players)
    if len(names) != n:
        raise ValueError(f"players must name all n={n} players, got {len(names)} names")
    return a.astype(float), None if o is None else o.astype(float), names, int(k)


def _sign_type_legend(ax: Axes, recs: Sequence[InteractionRecord], handle: Any, **kwargs: Any) -> None:
    """Legend entries for the signs and types among ``recs``; ``handle(sign, type)`` makes one."""
    entries = []
    if any(r.value >= 0 for r in recs):
        entries.append((handle("+", None), "positive"))
    if any(r.value < 0 for r in recs):
        entries.append((handle("-", None), "negative"))
    for t in ("and", "or"):
        if any(r.type == t for r in recs):
            entries.append((handle(None, t), t.upper()))
    if entries:
        ax.legend(*zip(*entries), **kwargs)


def plot_upset(
    i_and: Float[ArrayLike, "*batch 2**n"] | Any,
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    *,
    k: int = 10,
    players: Sequence[Any] | None = None,
    sample: int | tuple[int, ...] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    title: str | None = None,
) -> Figure:
    """UpSet plot of one sample's ``k`` strongest interactions (mirrors shapiq's ``upset_plot``).

    Upper panel: one bar per interaction, strongest first (AND and OR ranked together as in
    :func:`~jinter.interactions.top_interactions`), red if positive, blue if negative, OR bars
    hatched. Lower panel: one row per player, a filled dot where the player is in the set,
    the dots of a set joined by a vertical line.

    Args:
        i_and, i_or: interactions of one sample, shape ``(2**n,)``, or a batch with ``sample``
            (a result, e.g. an ``Interactions`` or an ``AndOrResult``, or an ``(i_and, i_or)``
            tuple may stand in for ``i_and``).
        k: number of interactions (>= 1; fewer if fewer exist).
        players: names of the n players (default the object's, else ``p0``, ``p1``, …).
        sample: index of the sample in the leading batch axes.
        ax: one axes (split into the two panels) or a pair ``(bars, matrix)``.

    Raises:
        ValueError: a batch without ``sample``, lengths not equal powers of two, ``k < 1``,
            or ``players`` not of length n.
    """
    a, o, names, k = _one_sample(i_and, i_or, sample, players, k, "plot_upset")
    n = len(names)
    recs = top_interactions(a, o, k, names)
    m = len(recs)
    if ax is None:
        fig = Figure(figsize=(max(4.0, 0.45 * m + 2.0), 2.8 + 0.28 * n), layout="constrained")
        bar_ax, mat_ax = fig.subplots(2, 1, sharex=True, height_ratios=[2.8, max(1.0, 0.28 * n)])
    elif isinstance(ax, Axes):
        fig = _root(ax)
        frac = min(0.6, 0.1 + 0.06 * n)
        mat_ax = ax.inset_axes((0.0, 0.0, 1.0, frac))
        bar_ax = ax.inset_axes((0.0, frac + 0.04, 1.0, 0.96 - frac), sharex=mat_ax)
        ax.set_axis_off()
    else:
        axes = list(ax)
        if len(axes) != 2:
            raise ValueError(f"ax must be one axes or a pair (bars, matrix), got {len(axes)} axes")
        bar_ax, mat_ax = axes
        fig = _root(bar_ax)
    x = np.arange(m)
    values = [r.value for r in recs]
    colors = [_POS if v >= 0 else _NEG for v in values]
    bars = bar_ax.bar(x, values, 0.7, color=colors, edgecolor="black", linewidth=0.6)
    for patch, r in zip(bars.patches, recs):
        patch.set_hatch("///" if r.type == "or" else "")
    bar_ax.axhline(0.0, color="black", lw=0.8)
    bar_ax.set_ylabel("interaction")
    bar_ax.tick_params(axis="x", labelbottom=False, bottom=False)

    def handle(sign: str | None, kind: str | None) -> Any:
        from matplotlib.patches import Patch

        if sign is not None:
            return Patch(facecolor=_POS if sign == "+" else _NEG, edgecolor="black", linewidth=0.6)
        return Patch(facecolor="white", edgecolor="black", linewidth=0.6, hatch="///" if kind == "or" else "")

    _sign_type_legend(bar_ax, recs, handle, fontsize="small", ncols=2)
    rows = n - 1 - np.arange(n)  # player 0 on top
    gx, gy = np.meshgrid(x, rows)
    mat_ax.scatter(gx.ravel(), gy.ravel(), s=40, color="#dddddd", zorder=1, gid="upset-nonmembers")
    mx = np.array([j for j, r in enumerate(recs) for _ in r.players], dtype=float)
    my = np.array([rows[p] for r in recs for p in r.players], dtype=float)
    mat_ax.scatter(mx, my, s=40, color="#333333", zorder=3, gid="upset-members")
    spans = [(j, rows[max(r.players)], rows[min(r.players)]) for j, r in enumerate(recs) if r.order > 1]
    if spans:
        jx, lo, hi = (np.array(c, dtype=float) for c in zip(*spans))
        mat_ax.vlines(jx, lo, hi, color="#333333", lw=2.0, zorder=2, gid="upset-connectors")
    mat_ax.set_yticks(rows, names)
    mat_ax.set_ylim(-0.6, n - 0.4)
    mat_ax.set_xlim(-0.6, m - 0.4)
    mat_ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        mat_ax.spines[side].set_visible(False)
    mat_ax.tick_params(axis="y", length=0)
    if title:
        bar_ax.set_title(title)
    return fig


def plot_interaction_network(
    i_and: Float[ArrayLike, "*batch 2**n"] | Any,
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    *,
    k: int = 20,
    players: Sequence[Any] | None = None,
    sample: int | tuple[int, ...] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Interaction network of one sample (mirrors shapiq's ``network_plot``).

    Players sit on a circle. Each of the ``k`` strongest non-zero interactions with two or
    more players (AND and OR ranked together as in :func:`~jinter.interactions.top_interactions`)
    is a hyperedge: a line for a pair, a translucent polygon for a larger set; width and
    opacity grow with ``|I(S)|``, red if positive, blue if negative, solid for AND and dashed
    for OR. A node's size and color show its singleton value ``I_and({i}) + I_or({i})``.

    Args:
        i_and, i_or: as for :func:`plot_upset`.
        k: number of hyperedges (>= 1; fewer if fewer non-zero ones exist).
        players: names of the n players (default the object's, else ``p0``, ``p1``, …).
        sample: index of the sample in the leading batch axes.

    Raises:
        ValueError: a batch without ``sample``, lengths not equal powers of two, ``k < 1``,
            or ``players`` not of length n.
    """
    from matplotlib.colors import to_rgba
    from matplotlib.lines import Line2D
    from matplotlib.patches import Polygon

    a, o, names, k = _one_sample(i_and, i_or, sample, players, k, "plot_interaction_network")
    n = len(names)
    single = np.array([1 << i for i in range(n)], dtype=np.int64)
    node_values = a[single] + (0.0 if o is None else o[single])
    # rank the sets of >= 2 players: zeroed singletons sink to the bottom of the ranking
    ranked = [x.copy() for x in (a, o) if x is not None]
    for x in ranked:
        x[single] = 0.0
    recs = top_interactions(ranked[0], ranked[1] if len(ranked) == 2 else None, k + 2 * n, names)
    recs = [r for r in recs if r.order >= 2 and r.value != 0][:k]
    theta = np.pi / 2 - 2 * np.pi * np.arange(n) / n  # clockwise from the top
    pos = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    fig, ax = _fig_ax(ax, (6.0, 4.5))
    vmax = max((abs(r.value) for r in recs), default=0.0) or 1.0
    for r in reversed(recs):  # strongest drawn last, on top
        w = abs(r.value) / vmax
        color = _POS if r.value >= 0 else _NEG
        ls = "-" if r.type == "and" else "--"
        pts = pos[list(r.players)]  # players in index order: a convex polygon on the circle
        if r.order == 2:
            ax.add_line(Line2D(pts[:, 0], pts[:, 1], color=color, lw=0.8 + 5.0 * w, ls=ls,
                               alpha=0.3 + 0.7 * w, zorder=1 + w, gid=r.label))  # fmt: skip
        else:
            ax.add_patch(Polygon(pts, closed=True, facecolor=to_rgba(color, 0.05 + 0.25 * w),
                                 edgecolor=to_rgba(color, 0.3 + 0.7 * w), lw=0.8 + 3.0 * w, ls=ls,
                                 zorder=w, gid=r.label))  # fmt: skip
    smax = float(np.max(np.abs(node_values), initial=0.0)) or 1.0
    ax.scatter(pos[:, 0], pos[:, 1], s=120 + 700 * np.abs(node_values) / smax, c=node_values,
               cmap="RdBu_r", vmin=-smax, vmax=smax, edgecolors="black", linewidths=0.8, zorder=10,
               gid="network-nodes")  # fmt: skip
    for (px, py), name in zip(pos, names):
        ax.text(1.28 * px, 1.28 * py, name, ha="center", va="center", fontsize="small")

    def handle(sign: str | None, kind: str | None) -> Any:
        if sign is not None:
            return Line2D([], [], color=_POS if sign == "+" else _NEG, lw=3)
        return Line2D([], [], color="black", lw=1.5, ls="-" if kind == "and" else "--")

    _sign_type_legend(ax, recs, handle, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.5, 1.5)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig
