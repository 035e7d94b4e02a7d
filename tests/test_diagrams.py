"""The diagram of notebook 02: the two stories of eq. (3), each arrow named by its distribution."""

from matplotlib.figure import Figure

from vaeclust_tutorial.diagrams import two_stories_figure


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_two_stories_is_a_figure_with_every_distribution_of_eq_3_on_it():
    fig = two_stories_figure()
    assert isinstance(fig, Figure)
    texts = _texts(fig)
    for label in ("p(z|x)", "p(y|z)", "q(y)", "q(z|y)", "q(x|z)"):
        assert f"${label}$" in texts, f"{label} is not on an arrow: {texts}"
    for node in ("image x", "code z", "cluster y"):
        assert texts.count(node) == 2          # once in each story


def test_each_story_has_its_arrows(tmp_path):
    from matplotlib.patches import FancyArrowPatch

    fig = two_stories_figure()
    arrows = [p for ax in fig.axes for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 5                    # x->z->y, and q(y) -> y -> z -> x
    fig.savefig(tmp_path / "two_stories.png")  # draws without a display (mathtext parses)
    assert (tmp_path / "two_stories.png").stat().st_size > 10_000
