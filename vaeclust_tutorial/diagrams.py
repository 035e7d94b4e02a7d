"""Diagrams of the model (drawings, not results). Notebook 02.

Like :mod:`~vaeclust_tutorial.plots`, each function returns a matplotlib ``Figure`` and needs no
pyplot state.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# The labels of the two stories of eq. (3): (from, to, distribution, what computes it).
# Labels and notes are matplotlib mathtext.
ENCODING = (("x", "z", "p(z|x)", r"encoder: $\mathcal{N}(\mu(x), \sigma^2(x))$"),
            ("z", "y", "p(y|z)", "classifier: softmax"))
GENERATION = (("y", "z", "q(z|y)", r"$\mathcal{N}(\mu_y, I)$, one mean per cluster"),
              ("z", "x", "q(x|z)", r"decoder: $\mathcal{N}(G(z), 1/\lambda)$"))
PRIOR = ("q(y)", r"uniform, $1/K$")

_COLUMN = {"x": 0.0, "z": 1.0, "y": 2.0}                 # the same node sits in the same column
_NAMES = {"x": "image x", "z": "code z", "y": "cluster y"}


def _node(ax, name, row, colour):
    x, y = _COLUMN[name], row
    ax.add_patch(FancyBboxPatch((x - 0.2, y - 0.14), 0.4, 0.28, boxstyle="round,pad=0.02",
                                facecolor=colour, edgecolor="0.2", linewidth=1.2))
    ax.text(x, y, _NAMES[name], ha="center", va="center", fontsize=11)


def _arrow(ax, start, end, label, note, colour, above):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=18, color=colour,
                                 linewidth=1.6, shrinkA=0, shrinkB=0))
    mid_x, mid_y = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
    off = 0.07 if above else -0.07
    ax.text(mid_x, mid_y + off, f"${label}$", ha="center", va="bottom" if above else "top",
            fontsize=12, color=colour)
    ax.text(mid_x, mid_y + 2.6 * off, note, ha="center", va="bottom" if above else "top",
            fontsize=8, color="0.3")


def two_stories_figure() -> Figure:
    """The two readings of eq. (3), one row each, with the distribution on every arrow.

    Top, encoding (the p side, what the loss samples): x -> z ~ p(z|x) -> y ~ p(y|z).
    Bottom, generation (the q side, what the model can sample): y ~ q(y) -> z ~ q(z|y) -> x ~ q(x|z).
    The decoder does not see y: everything about the cluster has to pass through z. Notebook 02.
    """
    fig = Figure(figsize=(8.0, 3.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set(xlim=(-0.55, 2.75), ylim=(-0.52, 1.52))
    ax.axis("off")
    top, bottom = 1.0, 0.0
    enc, gen = "tab:blue", "tab:orange"
    ax.text(-0.5, top + 0.42, r"encoding (clustering an image):  $p(z, y|x) = p(z|x)\,p(y|z)$",
            fontsize=10.5, color=enc, ha="left", va="center", fontweight="bold")
    ax.text(-0.5, bottom - 0.42, r"generation (sampling a cluster):  $q(x, z, y) = q(y)\,q(z|y)\,q(x|z)$",
            fontsize=10.5, color=gen, ha="left", va="center", fontweight="bold")
    for name in _COLUMN:
        _node(ax, name, top, "#dbe8f5")
        _node(ax, name, bottom, "#fbe5cf")
    for src, dst, label, note in ENCODING:
        _arrow(ax, (_COLUMN[src] + 0.22, top), (_COLUMN[dst] - 0.22, top), label, note, enc, above=True)
    for src, dst, label, note in GENERATION:
        _arrow(ax, (_COLUMN[src] - 0.22, bottom), (_COLUMN[dst] + 0.22, bottom), label, note, gen, above=False)
    # the prior enters the generation at y, from the right
    label, note = PRIOR
    ax.add_patch(FancyArrowPatch((2.68, bottom), (2.22, bottom), arrowstyle="-|>", mutation_scale=18,
                                 color=gen, linewidth=1.6, shrinkA=0, shrinkB=0))
    ax.text(2.47, bottom + 0.07, f"${label}$", ha="center", va="bottom", fontsize=12, color=gen)
    ax.text(2.47, bottom - 0.07, note, ha="center", va="top", fontsize=8, color="0.3")
    return fig
