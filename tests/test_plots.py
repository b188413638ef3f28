"""Every plot renders to a PNG under the Agg backend and draws what it should."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from jinter.analysis import Interactions, sparsity_curve, top_interactions  # noqa: E402
from jinter.plots import (  # noqa: E402
    plot_and_or_pie,
    plot_curves,
    plot_order_distribution,
    plot_sparsity_curve,
    plot_top_interactions_image,
    plot_top_interactions_tokens,
)

N = 4
M = 2**N
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def save_png(fig: Figure, path) -> None:
    assert isinstance(fig, Figure)
    fig.savefig(path, dpi=40)
    data = path.read_bytes()
    assert len(data) > 200 and data[:8] == PNG_MAGIC


@pytest.fixture
def inter(rng):
    i_and, i_or = rng.normal(size=(2, 3, M))
    i_or[..., 0] = 0.0
    return Interactions.from_arrays(i_and, i_or, tau=0.3, players=["w0", "w1", "w2", "w3"])


def test_sparsity_curve_plot(inter, tmp_path):
    curve = sparsity_curve(inter.i_and, inter.i_or)
    fig = plot_sparsity_curve({"model": curve, "half": np.asarray(curve) / 2}, title="sparsity")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and len(ax.lines) == 2
    save_png(fig, tmp_path / "sparsity.png")
    fig2 = plot_sparsity_curve(inter)  # an Interactions object
    assert fig2.axes[0].lines[0].get_xdata().size == 2 * (M - 1)
    save_png(fig2, tmp_path / "sparsity2.png")
    with pytest.raises(ValueError, match="labels"):
        plot_sparsity_curve(np.ones((2, 3)), labels=["a"])


def test_order_distribution_plot(inter, tmp_path):
    theory = np.linspace(1, 0.1, N)
    fig = plot_order_distribution(inter, theory=theory, normalize=True)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 4 and all(len(c.patches) == N for c in bars)  # AND ±, OR ±
    pos_heights = [p.get_height() for p in bars[0].patches]
    neg_heights = [p.get_height() for p in bars[1].patches]
    assert min(pos_heights) >= 0 and max(neg_heights) <= 0
    assert any(np.allclose(line.get_ydata(), theory) for line in ax.lines)
    save_png(fig, tmp_path / "orders.png")
    fig2 = plot_order_distribution(inter.i_and, tau=0.3, theory=(theory, -theory))
    bars2 = [c for c in fig2.axes[0].containers if isinstance(c, BarContainer)]
    assert len(bars2) == 2
    save_png(fig2, tmp_path / "orders_and.png")


def test_top_interactions_image_plot(inter, rng, tmp_path):
    image = rng.uniform(size=(8, 8, 3))
    member = np.zeros((N, 2, 2), bool)  # a 2x2 grid of patch players, scaled up to 8x8
    for p in range(N):
        member[p, p // 2, p % 2] = True
    recs = inter.top(3, sample=0)
    fig = plot_top_interactions_image(image, member, recs)
    panels = [a for a in fig.axes if a.images]
    assert len(panels) == 3
    for a, r in zip(panels, recs):
        assert f"{r.value:+.3g}" in a.get_title()
        shown = a.images[0].get_array()
        inside = np.kron(member[list(r.players)].any(0), np.ones((4, 4))).astype(bool)
        np.testing.assert_allclose(shown[inside], image[inside])  # patches of S untouched
        assert not np.allclose(shown[~inside], image[~inside])  # the rest is faded
    save_png(fig, tmp_path / "image.png")

    class Players:  # duck-typed stand-in for masking.PatchPlayers
        membership = np.kron(member, np.ones((1, 4, 4))).astype(bool)

    dicts = [{"mask": 0b11, "type": "or", "value": -0.5}]
    save_png(plot_top_interactions_image(image[..., 0], Players(), dicts), tmp_path / "image2.png")
    with pytest.raises(ValueError, match="divide"):
        plot_top_interactions_image(image, np.zeros((N, 3, 3), bool), recs)
    with pytest.raises(ValueError, match="empty"):
        plot_top_interactions_image(image, member, [])


def test_top_interactions_tokens_plot(inter, tmp_path):
    tokens = ["the", "cat", "sat", "down"]
    recs = top_interactions(inter.i_and[1], inter.i_or[1], k=4)
    fig = plot_top_interactions_tokens(tokens, recs, title="tokens")
    ax = fig.axes[0]
    boxed = [t for t in ax.texts if t.get_bbox_patch() is not None]
    assert len(boxed) == sum(r.order for r in recs)
    assert len(ax.texts) == len(recs) * (1 + len(tokens))
    save_png(fig, tmp_path / "tokens.png")
    with pytest.raises(ValueError, match="tokens"):
        plot_top_interactions_tokens(tokens[:1], recs)


def test_and_or_pie(inter, tmp_path):
    fig = plot_and_or_pie(inter.i_and, inter.i_or)
    wedges = fig.axes[0].patches
    assert len(wedges) == 2
    a, o = np.abs(inter.i_and[..., 1:]).sum(), np.abs(inter.i_or[..., 1:]).sum()
    assert wedges[0].theta2 - wedges[0].theta1 == pytest.approx(360 * a / (a + o))
    save_png(fig, tmp_path / "pie.png")
    with pytest.raises(ValueError, match="zero"):
        plot_and_or_pie(np.zeros(M), np.zeros(M))


def test_curves_with_phases_on_given_axes(tmp_path):
    fig = Figure()
    ax = fig.add_subplot()
    x = np.arange(10)
    series = {"train": 1 / (x + 1), "test": 1 / (x + 2) + 0.1}
    out = plot_curves(x, series, phases={"II": 3, "III": 7}, ax=ax, logy=True)
    assert out is fig and len(ax.lines) == 4  # two curves + two phase marks
    assert [t.get_text() for t in ax.texts] == ["II", "III"]
    save_png(fig, tmp_path / "curves.png")
    with pytest.raises(ValueError, match="shape"):
        plot_curves(x, {"bad": x[:3]})


def test_image_plot_with_patch_players(inter, rng, tmp_path):
    masking = pytest.importorskip("jinter.masking")
    players = masking.PatchPlayers((3, 8, 8), (4, 4))  # channels first, 2x2 grid = 4 players
    image = rng.uniform(size=(3, 8, 8))
    recs = inter.top(2, sample=2)
    fig = plot_top_interactions_image(image, players, recs)
    panels = [a for a in fig.axes if a.images]
    assert len(panels) == 2 and panels[0].images[0].get_array().shape == (8, 8, 3)
    save_png(fig, tmp_path / "patches.png")
