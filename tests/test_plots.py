"""Every plot renders to a PNG under the Agg backend and draws what it should."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import jinter  # noqa: E402
from jinter.analysis import Interactions, sparsity_curve, top_interactions  # noqa: E402
from jinter.plots import (  # noqa: E402
    plot_and_or_pie,
    plot_curves,
    plot_interaction_network,
    plot_order_distribution,
    plot_sparsity_curve,
    plot_top_interactions_image,
    plot_top_interactions_tokens,
    plot_upset,
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
    curve = sparsity_curve(inter.I_and, inter.I_or)
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
    fig2 = plot_order_distribution(inter.I_and, tau=0.3, theory=(theory, -theory))
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

    players = jinter.PatchPlayers((8, 8), (4, 4))  # the same 2x2 grid as players of the 8x8 image
    np.testing.assert_array_equal(players.membership, np.kron(member, np.ones((1, 4, 4))).astype(bool))
    dicts = [{"mask": 0b11, "type": "or", "value": -0.5}]
    save_png(plot_top_interactions_image(image[..., 0], players, dicts), tmp_path / "image2.png")

    class Players:  # a look-alike is not sniffed for a membership attribute
        membership = players.membership

    with pytest.raises(TypeError, match="players must be a PatchPlayers or a boolean"):
        plot_top_interactions_image(image, Players(), recs)
    with pytest.raises(ValueError, match="divide"):
        plot_top_interactions_image(image, np.zeros((N, 3, 3), bool), recs)
    with pytest.raises(ValueError, match="empty"):
        plot_top_interactions_image(image, member, [])


def test_top_interactions_tokens_plot(inter, tmp_path):
    tokens = ["the", "cat", "sat", "down"]
    recs = top_interactions(inter.I_and[1], inter.I_or[1], k=4)
    fig = plot_top_interactions_tokens(tokens, recs, title="tokens")
    ax = fig.axes[0]
    boxed = [t for t in ax.texts if t.get_bbox_patch() is not None]
    assert len(boxed) == sum(r.order for r in recs)
    assert len(ax.texts) == len(recs) * (1 + len(tokens))
    save_png(fig, tmp_path / "tokens.png")
    with pytest.raises(ValueError, match="tokens"):
        plot_top_interactions_tokens(tokens[:1], recs)


def test_and_or_pie(inter, tmp_path):
    fig = plot_and_or_pie(inter.I_and, inter.I_or)
    wedges = fig.axes[0].patches
    assert len(wedges) == 2
    a, o = np.abs(inter.I_and[..., 1:]).sum(), np.abs(inter.I_or[..., 1:]).sum()
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


# ------------------------------------------------------------------ UpSet plot and network
# A planted n = 5 game decomposed by jinter.and_or (one compile, shared by the tests below):
# AND{0,2} = 2, AND{1,3,4} = -1.5, OR{0,4} = 1, singletons AND{3} = 0.5, AND{1} = -0.3.
PLANTED = [("and", (0, 2)), ("and", (1, 3, 4)), ("or", (0, 4))]
NAMES = ["a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def planted():
    n = 5
    i_and, i_or = np.zeros(2**n), np.zeros(2**n)
    i_and[0] = 0.1
    for m, v in (((0, 2), 2.0), ((1, 3, 4), -1.5), ((3,), 0.5), ((1,), -0.3)):
        i_and[jinter.players_to_mask(m)] = v
    i_or[jinter.players_to_mask((0, 4))] = 1.0
    v = np.asarray(jinter.zeta(i_and)) + np.asarray(jinter.or_zeta(i_or))
    res = jinter.and_or(v, q_ratio=0.0)
    assert bool(res.converged)
    rand = jinter.and_or(np.random.default_rng(1).normal(size=2**n), q_ratio=0.0)
    return res, rand


def _by_gid(artists, prefix):
    return [a for a in artists if (a.get_gid() or "").startswith(prefix)]


def test_upset_plot(planted, tmp_path):
    res, rand = planted
    k = 6
    fig = plot_upset(res.I_and, res.I_or, k=k, title="upset")  # jax arrays
    recs = top_interactions(res.I_and, res.I_or, k=k)
    assert [(r.type, r.players) for r in recs[:3]] == PLANTED
    bar_ax, mat_ax = fig.axes
    (bars,) = [c for c in bar_ax.containers if isinstance(c, BarContainer)]
    assert len(bars.patches) == k
    np.testing.assert_allclose([p.get_height() for p in bars.patches], [r.value for r in recs])
    assert [bool(p.get_hatch()) for p in bars.patches] == [r.type == "or" for r in recs]
    reds = [p.get_facecolor()[0] > p.get_facecolor()[2] for p in bars.patches]
    assert reds == [r.value >= 0 for r in recs]
    assert [t.get_text() for t in bar_ax.get_legend().get_texts()] == ["positive", "negative", "AND", "OR"]
    # matrix: player 0 on the top row; one dark dot per (set, member), connectors for |S| >= 2
    assert [t.get_text() for t in mat_ax.get_yticklabels()] == ["p0", "p1", "p2", "p3", "p4"]
    (members,) = _by_gid(mat_ax.collections, "upset-members")
    dots = members.get_offsets()
    assert len(dots) == sum(r.order for r in recs)
    for j, r in enumerate(recs):
        rows = dots[dots[:, 0] == j, 1]
        assert sorted(4 - rows.astype(int)) == list(r.players)
    (background,) = _by_gid(mat_ax.collections, "upset-nonmembers")
    assert len(background.get_offsets()) == k * 5
    (links,) = _by_gid(mat_ax.collections, "upset-connectors")
    assert len(links.get_segments()) == sum(r.order > 1 for r in recs)
    save_png(fig, tmp_path / "upset.png")

    # into one given axes (split in two), with names and a batch + sample
    fig2 = Figure()
    ax = fig2.add_subplot()
    both = Interactions.from_arrays(
        np.stack([res.I_and, rand.I_and]), np.stack([res.I_or, rand.I_or]), players=NAMES
    )
    assert plot_upset(both, k=3, sample=0, ax=ax) is fig2
    mat_ax2, bar_ax2 = ax.child_axes
    assert [t.get_text() for t in mat_ax2.get_yticklabels()] == NAMES  # the object's names
    assert len(bar_ax2.containers[0].patches) == 3
    save_png(fig2, tmp_path / "upset2.png")
    pair = Figure().subplots(2, 1)
    plot_upset(rand, k=4, ax=pair)  # an AndOrResult, onto a (bars, matrix) pair
    assert len(pair[0].containers[0].patches) == 4


def test_interaction_network_plot(planted, tmp_path):
    res, rand = planted
    fig = plot_interaction_network(res.I_and, res.I_or, k=3, players=NAMES)
    ax = fig.axes[0]
    lines, polys = _by_gid(ax.lines, ("AND{", "OR{")), _by_gid(ax.patches, ("AND{", "OR{"))
    assert sorted(a.get_gid() for a in lines + polys) == ["AND{a, c}", "AND{b, d, e}", "OR{a, e}"]
    (nodes,) = _by_gid(ax.collections, "network-nodes")
    pos = nodes.get_offsets()
    assert len(pos) == 5 and np.allclose(np.hypot(pos[:, 0], pos[:, 1]), 1.0)
    edge = {a.get_gid(): a for a in lines + polys}
    np.testing.assert_allclose(np.column_stack(edge["AND{a, c}"].get_data()), pos[[0, 2]])
    np.testing.assert_allclose(edge["AND{b, d, e}"].get_xy()[:3], pos[[1, 3, 4]])  # a hyperedge polygon
    assert edge["AND{a, c}"].get_linestyle() == "-" and edge["OR{a, e}"].get_linestyle() == "--"
    assert edge["AND{a, c}"].get_linewidth() > edge["OR{a, e}"].get_linewidth()  # |2| > |1|
    assert edge["AND{a, c}"].get_color() == "#c0392b"  # positive: red
    assert edge["AND{b, d, e}"].get_edgecolor()[2] > edge["AND{b, d, e}"].get_edgecolor()[0]  # negative: blue
    sizes = nodes.get_sizes()
    assert np.argmax(sizes) == 3 and np.argsort(sizes)[-2] == 1  # |I({d})| = 0.5 > |I({b})| = 0.3
    assert [t.get_text() for t in ax.texts] == NAMES
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["positive", "negative", "AND", "OR"]
    save_png(fig, tmp_path / "network.png")

    # a random game: all non-zero interactions of order >= 2 when k is large, none of order 1
    fig2 = plot_interaction_network(rand, k=100)
    ax2 = fig2.axes[0]
    edges = _by_gid(ax2.lines, ("AND{", "OR{")) + _by_gid(ax2.patches, ("AND{", "OR{"))
    order = np.array(jinter.mask_orders(5))
    expected = sum(int(np.sum((np.asarray(x) != 0) & (order >= 2))) for x in (rand.I_and, rand.I_or))
    assert len(edges) == expected and all(g.get_gid().count(",") >= 1 for g in edges)
    ax3 = plot_interaction_network(rand, k=2).axes[0]
    assert len(_by_gid(ax3.lines, ("AND{", "OR{")) + _by_gid(ax3.patches, ("AND{", "OR{"))) == 2
    save_png(fig2, tmp_path / "network2.png")


@pytest.mark.parametrize("plot", [plot_upset, plot_interaction_network])
def test_upset_and_network_bad_inputs(plot):
    a = np.random.default_rng(2).normal(size=(3, M))
    with pytest.raises(ValueError, match=r"one sample: pass I\[i\]"):
        plot(a, a)
    with pytest.raises(ValueError, match="does not index one sample"):
        plot(a, sample=(0, 1))
    with pytest.raises(ValueError, match="power of two"):
        plot(np.ones(12))
    with pytest.raises(ValueError, match="same shape"):
        plot(a[0], np.ones(2 * M))
    for k in (0, -1, 2.5):
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            plot(a[0], k=k)
    with pytest.raises(ValueError, match="players must name all n=4"):
        plot(a[0], a[1], players=["x", "y"])
    assert isinstance(plot(a, sample=1, players="wxyz"), Figure)


def test_plots_name_their_bad_arguments(rng):
    """From a user trial: each bad argument is a clear error naming it, before anything is drawn."""
    v = rng.normal(size=(3, M))
    res = jinter.and_or(v)
    one = Interactions.from_arrays(res.I_and[0], res.I_or[0])
    recs = one.top(3)
    img = rng.random((8, 8))
    mem = np.zeros((N, 8, 8), bool)
    mem[0, :4, :4] = mem[1, :4, 4:] = mem[2, 4:, :4] = mem[3, 4:, 4:] = True
    for call, error, message in [
        (lambda: plot_and_or_pie(np.ones(M), np.ones(8)), ValueError, "i_and and i_or must have the same shape"),
        (lambda: plot_and_or_pie(np.full(M, np.nan), np.ones(M)), ValueError, r"i_and: 16 non-finite"),
        (lambda: plot_and_or_pie(np.array(["a"] * M), np.ones(M)), TypeError, "i_and must hold numbers"),
        (lambda: plot_upset(np.ones(M) * 1j), TypeError, "i_and is complex"),
        (lambda: plot_upset(one, np.ones(M), k=3), ValueError, "OR interactions given twice"),
        (lambda: plot_upset(res, sample=9), ValueError, r"sample 9 does not index one sample of batch shape \(3,\)"),
        (lambda: plot_upset(res, sample=0.0), ValueError, "sample 0.0 does not index"),
        (lambda: plot_interaction_network(np.ones(M), ax="foo"), TypeError, "ax must be a matplotlib Axes"),
        (lambda: plot_order_distribution(res, tau=np.ones(5)), ValueError, r"tau must broadcast to the batch shape \(3,\)"),
        (lambda: plot_order_distribution(res, theory=np.ones(3)), ValueError, r"theory must be one curve over the orders 1…4"),
        (lambda: plot_order_distribution(res, theory=(np.ones(N),) * 3), ValueError, "theory must be one curve"),
        (lambda: plot_sparsity_curve(-np.ones(5)), ValueError, "curves must be non-empty, finite and ≥ 0"),
        (lambda: plot_sparsity_curve({"a": np.ones(3)}, labels=["x"]), ValueError, "labels come from the mapping"),
        (lambda: plot_sparsity_curve(np.array([1.0, 0.5 + 3j])), TypeError, "curves is complex"),
        (lambda: plot_sparsity_curve("abc"), TypeError, "curves must hold real numbers"),
        (lambda: plot_curves(np.arange(2.0), {"a": [1.0, 1j]}), TypeError, "series 'a' is complex"),
        (lambda: plot_order_distribution(res, theory=np.ones(N) * 1j), TypeError, "theory is complex"),
        (lambda: plot_curves(np.arange(5.0), np.ones(5)), TypeError, "series must be a mapping"),
        (lambda: plot_curves(np.arange(5.0), {"a": np.ones(5)}, phases=2.0), TypeError, "phases must be a sequence"),
        (lambda: plot_curves(np.arange(5.0), {"a": np.ones(5)}, phases={"p": None}), ValueError, "phases entries"),
        (lambda: plot_top_interactions_image(img, mem, recs, ncols=0), ValueError, r"ncols must be an integer in \[1, 3\]"),
        (lambda: plot_top_interactions_image(img, mem, recs, dim=2), ValueError, r"dim must be a finite number in \[0, 1\]"),
        (lambda: plot_top_interactions_image(img, mem * 0.3, recs), ValueError, "players must be a boolean membership"),
        (lambda: plot_top_interactions_image(rng.random((8, 8, 2)), mem, recs), ValueError, "1, 3 or 4 channels"),
        (lambda: plot_top_interactions_tokens(list("abcd"), [{"players": (1,), "type": "xor", "value": 1.0}]),
         ValueError, "record type must be"),
        (lambda: plot_top_interactions_tokens(list("abcd"), [{"players": (1,)}]), ValueError, "needs 'value'"),
        (lambda: plot_top_interactions_tokens(list("abcd"), [{"players": (-1,), "value": 1.0}]), ValueError,
         "record players entries must be an integer ≥ 0"),
        (lambda: plot_top_interactions_tokens(list("abcd"), [{"players": (1,), "mask": 1, "value": 1.0}]), ValueError,
         r"record mask 1 does not match its players \(1,\)"),
        (lambda: plot_top_interactions_tokens(list("abcd"), recs[0]), TypeError, "wrap a single one"),
    ]:
        with pytest.raises(error, match=message):
            call()
    # results draw their sparsity curves, alone or in a mapping
    fig = plot_sparsity_curve({"and_or": res, "one": one})
    assert [line.get_label() for line in fig.axes[0].lines] == ["and_or", "one"]
    np.testing.assert_allclose(np.nan_to_num(fig.axes[0].lines[0].get_ydata()),
                               np.asarray(sparsity_curve(res.I_and, res.I_or)))
