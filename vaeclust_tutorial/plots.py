"""Figures. Each function returns a matplotlib ``Figure``; saving is the caller's choice.

Introduced in notebook 01 (image grids, latent projection) and notebook 03 (the
article's two figures, contingency matrix, training curves). In quick mode every
figure carries a red "QUICK MODE" title so nobody mistakes it for a result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .config import is_quick


def _figure(figsize) -> Figure:
    # matplotlib.figure.Figure needs no pyplot state: safe in scripts, tests and notebooks alike.
    fig = Figure(figsize=figsize, layout="constrained")
    if is_quick():
        fig.suptitle("QUICK MODE: tiny subset, few epochs; not a result", color="red")
    return fig


def class_colour(c: int) -> str:
    """The colour of class ``c`` in every figure: matplotlib's tab10 cycle (C0..C9). Notebook 01."""
    return f"C{c % 10}"


def cluster_colours(labels, clusters, n_clusters: int) -> list:
    """A colour per cluster: that of the class the Hungarian match gives it, so one colour means
    one thing in side-by-side panels; a cluster left without a class (K > C) is drawn in a shade
    of grey."""
    from .metrics import contingency, hungarian_match

    match = hungarian_match(contingency(labels, clusters, n_clusters=n_clusters))
    greys = iter(np.linspace(0.15, 0.35, max(1, int((match < 0).sum()))))   # darker than C7 (0.5 grey)
    return [class_colour(c) if c >= 0 else str(round(float(next(greys)), 2)) for c in match]


def image_grid(images, nrow: int, pad: int = 1) -> np.ndarray:
    """Tile images (N, 1, H, W) or (N, H, W) into one 2-D array, ``nrow`` per row
    (``torchvision.utils.make_grid``; the padding is 0, white in the gray_r colour map)."""
    from torchvision.utils import make_grid

    x = torch.as_tensor(images).detach().float().cpu()
    x = x.reshape(len(x), 1, *x.shape[-2:])
    return make_grid(x, nrow=nrow, padding=pad, pad_value=0.0)[0].numpy()


def _bare(ax) -> None:
    """No ticks and no frame: an axes that only holds an image grid."""
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def _rows_figure(rows, row_labels, title, cell=0.55) -> Figure:
    """One row of images per entry of ``rows`` (each (M, 1, H, W) or None for an empty row)."""
    ncol = max((len(r) for r in rows if r is not None), default=1)
    fig = _figure((cell * ncol + 1.2, cell * len(rows) + 0.8))
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, row, label in zip(axes, rows, row_labels):
        if row is None or len(row) == 0:
            ax.text(0.5, 0.5, "empty cluster", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.imshow(image_grid(row, ncol), cmap="gray_r", vmin=0, vmax=1, aspect="equal")
        _bare(ax)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    axes[0].set_title(title, fontsize=10)
    return fig


def cluster_samples_figure(images, clusters, n_clusters: int, per_cluster: int = 10, labels=None,
                           classes=None, seed: int = 0) -> Figure:
    """The article's first figure: random members of each cluster, one row per cluster.

    ``clusters`` (N,) are predicted clusters; with ``labels`` and ``classes`` each row
    is named after its majority class and its share of it.
    """
    clusters = np.asarray(clusters)
    rng = np.random.default_rng(seed)
    rows, names = [], []
    for k in range(n_clusters):
        idx = np.flatnonzero(clusters == k)
        pick = rng.choice(idx, size=min(per_cluster, len(idx)), replace=False) if len(idx) else []
        rows.append(images[torch.as_tensor(pick, dtype=torch.long)] if len(idx) else None)
        name = f"cluster {k}\n{len(idx)} imgs"
        if labels is not None and len(idx):
            counts = np.bincount(np.asarray(labels)[idx])
            top = int(counts.argmax())
            label = classes[top] if classes is not None else str(top)
            name += f"\n{label} {counts[top] / len(idx):.0%}"
        names.append(name)
    return _rows_figure(rows, names, "Samples of each cluster (training images)")


def generations_figure(model, per_cluster: int = 10, std: float = 1.0, seed: int = 0,
                       row_names=None, clusters=None) -> Figure:
    """The article's second figure: z ~ N(mu_y, std^2 I) decoded, one row per cluster y
    (``clusters``: which, in what order; default all, in order; ``row_names`` follow it)."""
    clusters = list(range(model.n_clusters)) if clusters is None else list(clusters)
    g = torch.Generator().manual_seed(seed)
    rows = [model.generate(k, per_cluster, std=std, generator=g).cpu() for k in clusters]
    names = row_names or [f"cluster {k}" for k in clusters]
    return _rows_figure(rows, names, f"Generated from each cluster's Gaussian q(z|y) (std {std:g})")


def matched_generations_figure(models: dict, images, labels, classes, per_cluster: int = 8, std: float = 1.0,
                               seed: int = 0) -> Figure:
    """Models side by side, one column each (``models``: {title: model}), one row per class: in each
    row, what a model generates from the cluster the Hungarian match of its predictions on
    ``images`` gives that class ("no cluster" where none). A model whose rows each show their
    class is still a generator of that class. Notebook 06."""
    from .inference import predict
    from .metrics import contingency, hungarian_match

    labels = np.asarray(labels)
    if not models:
        raise ValueError("models is empty: pass {title: model} for at least one model")
    if labels.shape != (len(images),):
        raise ValueError(f"labels must hold one class per image: {len(images)} images, labels of shape {labels.shape}")
    if labels.min() < 0 or labels.max() >= len(classes):
        raise ValueError(f"labels must lie in 0..{len(classes) - 1} (one per class name), "
                         f"got {labels.min()}..{labels.max()}")
    fig = _figure((len(models) * (0.5 * per_cluster + 0.3) + 1.0, 0.5 * len(classes) + 0.9))
    axes = fig.subplots(len(classes), len(models), squeeze=False)
    for j, (title, model) in enumerate(models.items()):
        match = hungarian_match(contingency(labels, predict(model, images), n_clusters=model.n_clusters,
                                            n_classes=len(classes)))
        g = torch.Generator().manual_seed(seed)
        for c, name in enumerate(classes):
            ax, k = axes[c, j], np.flatnonzero(match == c)
            if len(k):
                ax.imshow(image_grid(model.generate(int(k[0]), per_cluster, std=std, generator=g).cpu(), per_cluster),
                          cmap="gray_r", vmin=0, vmax=1, aspect="equal")
            else:
                ax.text(0.5, 0.5, "no cluster", ha="center", va="center", transform=ax.transAxes)
            _bare(ax)
            if j == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8, color=class_colour(c))
        axes[0, j].set_title(title, fontsize=9)
    return fig


def reconstructions_figure(x, x_hat, n: int = 10) -> Figure:
    """Originals (top row) above their reconstructions (bottom row). Notebook 01."""
    return _rows_figure([x[:n], x_hat[:n]], ["input", "reconstruction"], "Reconstructions")


def training_curves_figure(history: list) -> Figure:
    """Loss terms and test metrics per epoch from a run's ``history``."""
    fig = _figure((10, 3.4))
    ax_loss, ax_terms, ax_metric = fig.subplots(1, 3)
    epochs = [h["epoch"] for h in history]
    ax_loss.plot(epochs, [h["loss"] for h in history], label="total")
    ax_loss.plot(epochs, [h["reconstruction"] for h in history], label="reconstruction")
    ax_loss.set(title="loss (batch mean)", xlabel="epoch", ylabel="nats per image (up to constants)")
    ax_loss.legend()
    skip = ("epoch", "loss", "reconstruction", "seconds")
    for term in [k for k in history[0] if k not in skip and not k.startswith(("test_", "kmeans_"))]:
        ax_terms.plot(epochs, [h[term] for h in history], label=term.replace("_", " "))
    ax_terms.set(title="the other terms", xlabel="epoch", ylabel="weighted term, batch mean")
    ax_terms.legend()
    for key, label in (("test_purity", "purity"), ("test_accuracy", "Hungarian accuracy"),
                       ("test_nmi", "NMI"), ("test_ari", "ARI")):
        pts = [(h["epoch"], h[key]) for h in history if key in h]
        if pts:
            ax_metric.plot(*zip(*pts), marker=".", label=label)
    ax_metric.set(title="test metrics", xlabel="epoch", ylabel="score on the test split", ylim=(0, 1))
    ax_metric.legend()
    return fig


def purity_curves_figure(groups: dict, target: float | None = None, target_label: str = "",
                         title: str = "test purity by epoch", colours: dict | None = None) -> Figure:
    """Test purity per epoch, one thin line per run and a thick one for each group's mean.

    ``groups`` maps a label to a list of histories (``history`` of a results file). ``colours``
    maps a label to its colour, so a config keeps its colour from figure to figure (default:
    C0, C1, ... in order). ``target`` draws a dashed line (the article's figure). The y-range
    is the band the curves and the target occupy. Notebook 05 (the k-means start).
    """
    fig = _figure((7, 3.8))
    ax = fig.subplots()
    seen = [] if target is None else [target]
    for i, (label, histories) in enumerate(groups.items()):
        colour = (colours or {}).get(label, f"C{i}")
        curves = [[(h["epoch"], h["test_purity"]) for h in hist if "test_purity" in h] for hist in histories]
        for curve in curves:
            ax.plot(*zip(*curve), color=colour, lw=0.8, alpha=0.45)
        seen += [p for c in curves for _, p in c]
        span = min(len(c) for c in curves)
        mean = np.mean([[p for _, p in c[:span]] for c in curves], axis=0)
        ax.plot([e for e, _ in curves[0][:span]], mean, color=colour, lw=2.2,
                label=f"{label} (mean of {len(curves)})")
    if target is not None:
        ax.axhline(target, color="0.3", ls="--", lw=1)
        ax.annotate(target_label or f"{target:.3f}", (1, target), xytext=(2, 3), textcoords="offset points",
                    color="0.3", fontsize=8)
    low, high = (min(seen), max(seen)) if seen else (0.0, 1.0)
    pad = max(0.02, 0.08 * (high - low))
    ax.set(xlabel="epoch", ylabel="test purity", ylim=(max(0.0, low - pad), min(1.0, high + pad)), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def contingency_figure(matrix, classes=None, title="Clusters (rows) against true classes (columns)") -> Figure:
    """Heat map of a (K, C) contingency matrix with counts written in the cells.

    Rows are ordered by the Hungarian match (the cluster matched to the first class on top), so
    a perfect clustering is a diagonal; clusters left without a class come last. Each row keeps
    its cluster number, and its label is drawn in the colour of its matched class."""
    from .metrics import hungarian_match

    m = np.asarray(matrix)
    k, c = m.shape
    match = hungarian_match(m)
    order = sorted(range(k), key=lambda i: (match[i] < 0, match[i], i))
    m = m[order]
    fig = _figure((0.62 * c + 2.6, 0.5 * k + 1.9))
    ax = fig.subplots()
    ax.imshow(m, cmap="Blues")
    for i in range(k):
        for j in range(c):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8 if m[i, j] < 1000 else 7,
                        color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xticks(range(c), classes if classes is not None else range(c), rotation=45, ha="right", fontsize=9)
    ax.set_yticks(range(k), [f"cluster {i}" for i in order], fontsize=9)
    for tick, i in zip(ax.get_yticklabels(), order):
        tick.set_color(class_colour(match[i]) if match[i] >= 0 else "0.4")
    ax.set(xlabel="true class", ylabel="cluster (ordered by the Hungarian match)")
    ax.set_title(title, fontsize=10)
    return fig


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def pca_axes(x) -> tuple[np.ndarray, np.ndarray]:
    """The centre (d,) and first two principal axes (2, d) of the rows of x (N, d) (numpy SVD):
    project any points ``y`` with ``(y - centre) @ axes.T``."""
    x = np.asarray(x, dtype=np.float64)
    centre = x.mean(0)
    _, _, vt = np.linalg.svd(x - centre, full_matrices=False)
    return centre, vt[:2]


def latent_figure(mu, labels, clusters=None, classes=None, means=None, max_points: int = 5000,
                  seed: int = 0) -> Figure:
    """The latent means mu(x) projected on their first 2 principal axes, coloured by true class,
    and (with ``clusters``) by predicted cluster in the colour of the class the Hungarian match
    gives it. ``means`` (K, d), the cluster means mu_y, are drawn as crosses in the same
    projection, in their cluster's colour."""
    mu, labels = _numpy(mu), np.asarray(labels)
    centre, axes = pca_axes(mu)
    keep = np.random.default_rng(seed).permutation(len(mu))[:max_points]
    xy = (mu[keep] - centre) @ axes.T
    n_classes = int(labels.max()) + 1
    names = list(classes) if classes is not None else [str(c) for c in range(n_classes)]
    panels = [("true class", labels[keep], [class_colour(c) for c in range(n_classes)], names)]
    n_clusters = len(means) if means is not None else None
    if clusters is not None:
        clusters = np.asarray(clusters)
        n_clusters = n_clusters or int(clusters.max()) + 1
        colours = cluster_colours(labels, clusters, n_clusters)
        panels.append(("predicted cluster", clusters[keep], colours, [f"cluster {k}" for k in range(n_clusters)]))
    else:
        colours = ["black"] * (n_clusters or 0)
    fig = _figure((5.4 * len(panels), 4.8))
    for ax, (title, values, palette, legend) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels):
        ax.scatter(xy[:, 0], xy[:, 1], c=[palette[v] for v in values], s=2, alpha=0.6, rasterized=True)
        present = np.unique(values)
        handles = [Line2D([], [], ls="", marker="o", ms=4, color=palette[v]) for v in present]
        ax.legend(handles, [legend[v] for v in present], fontsize=7.5, loc="best", ncol=2)
        if means is not None:
            m_xy = (_numpy(means) - centre) @ axes.T
            matched = np.array([c.startswith("C") for c in colours], dtype=bool)
            for keep_ in (~matched, matched):                                      # matched crosses on top
                ax.scatter(m_xy[keep_, 0], m_xy[keep_, 1], marker="X", s=110, c=[c for c, k_ in zip(colours, keep_) if k_],
                           edgecolors="black", linewidths=1.2)
        ax.set(title=f"latent means (PCA), coloured by {title}", xlabel="principal axis 1",
               ylabel="principal axis 2", xticks=[], yticks=[])
    return fig


def write_run_figures(checkpoint_path, out_dir) -> list[Path]:
    """Write the article's two figures, the contingency matrix and training curves for a checkpoint."""
    from . import data
    from .checkpoint import model_from_checkpoint
    from .config import QUICK_TRAIN
    from .files import atomic_save_figure, check_output_dir
    from .metrics import cluster_to_class, contingency
    from .inference import predict

    out_dir = check_output_dir(out_dir)
    model, state = model_from_checkpoint(checkpoint_path)
    cfg = state["config"]
    train = data.load(cfg.dataset, "train", limit=QUICK_TRAIN if is_quick() else None)
    test = data.load(cfg.dataset, "test")
    train_pred = predict(model, train.images)
    test_pred = predict(model, test.images)
    majority = cluster_to_class(train.labels.numpy(), train_pred, model.n_clusters)
    names = [f"cluster {k}" + (f"\n({train.classes[c]})" if c >= 0 else "") for k, c in enumerate(majority)]
    figures = {
        "cluster_samples.png": cluster_samples_figure(train.images, train_pred, model.n_clusters,
                                                      labels=train.labels.numpy(), classes=train.classes),
        "cluster_generations.png": generations_figure(model, row_names=names),
        "contingency_test.png": contingency_figure(
            contingency(test.labels.numpy(), test_pred, n_clusters=model.n_clusters, n_classes=10), test.classes),
    }
    if state.get("history"):
        figures["training_curves.png"] = training_curves_figure(state["history"])
    paths = []
    for name, fig in figures.items():
        atomic_save_figure(fig, out_dir / name, dpi=110)
        paths.append(out_dir / name)
    return paths


@torch.inference_mode()
def toy_snapshot(model, points, epoch: int, lim: float | None = None, n_grid: int = 120) -> dict:
    """What the toy of notebook 02 looks like in latent space at one epoch (for :func:`toy_figure`).

    ``lim``: half-width of the window; by default wide enough for every code and mean."""
    model.eval()
    mu, _ = model.encode(points)
    if lim is None:
        lim = 1.1 * max(float(mu.abs().max()), float(model.means.detach().abs().max()), 1.0)
    axis = torch.linspace(-lim, lim, n_grid)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)   # (n_grid^2, 2)
    regions = model.classifier(grid).argmax(1).reshape(n_grid, n_grid)
    return {"epoch": epoch, "mu": mu.numpy().copy(), "means": model.means.detach().numpy().copy(),
            "regions": regions.numpy(), "clusters": model.classifier(mu).argmax(1).numpy(), "lim": lim}


def toy_figure(snapshots: list, labels) -> Figure:
    """Small multiples of the latent plane: the codes mu(x) coloured by their true blob, the
    regions where the classifier picks each cluster, and the cluster means mu_y (crosses).

    A cluster (region and cross) takes the colour of the blob the Hungarian match gives it at
    that epoch, so a region drawn in a blob's colour is the cluster standing for that blob;
    clusters matched to no blob (K larger than the number of blobs) are grey."""
    from matplotlib.colors import to_rgba

    fig = _figure((3.0 * len(snapshots), 3.3))
    axes = np.atleast_1d(fig.subplots(1, len(snapshots)))
    labels = np.asarray(labels)
    for ax, s in zip(axes, snapshots):
        lim, k = s["lim"], s["means"].shape[0]
        colours = cluster_colours(labels, s["clusters"], k)
        rgba = np.array([to_rgba(c, 0.2) for c in colours])[s["regions"]]
        ax.imshow(rgba, origin="lower", extent=(-lim, lim, -lim, lim))
        ax.scatter(s["mu"][:, 0], s["mu"][:, 1], c=[class_colour(c) for c in labels], s=3)
        for j in sorted(range(k), key=lambda j: colours[j].startswith("C")):   # matched crosses on top
            ax.scatter(*s["means"][j], marker="X", s=90, c=colours[j], edgecolors="black", linewidths=1.2)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), title=f"epoch {s['epoch']}", xlabel="$z_1$")
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("$z_2$")
    return fig
