"""Results of finished runs: one JSON file per run under ``results/``. Notebook 05 reads them.

The files, ``results/summary.md`` and the tables in README.md and docs/ are written by the
maintainer's ``python tools/results_tables.py``, never typed by hand.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path

from . import config
from .data import DATASETS


def precision_tag(metrics: dict) -> str:
    """"fp32" or "bf16": the precision a run trained in (records before bf16 existed are fp32)."""
    precision = metrics.get("precision", "float32")
    return {"float32": "fp32", "bfloat16": "bf16"}.get(precision, precision)


def config_label(metrics: dict) -> str:
    """The config a run used, named by :func:`vaeclust_tutorial.config.config_label`: ``article-b``,
    ``article-b+kmeans-e1`` (clusters started from k-means after epoch 1), or a preset and the
    settings that differ from it (``article-b+info-weight=1``)."""
    return config.config_label({"network": metrics["network"], **metrics.get("config", {})})


def run_name(metrics: dict) -> str:
    """``<dataset>-<config>-seed<N>``, with ``-bf16`` for a bf16 run (same seed, other file)."""
    tag = precision_tag(metrics)
    return f"{metrics['dataset']}-{config_label(metrics)}-seed{metrics['seed']}" + ("" if tag == "fp32" else f"-{tag}")


def load_results(results_dir: str | Path = "results") -> list[dict]:
    """Every run's record (metrics and history) in ``results_dir``, sorted by file name.

    Raises ``FileNotFoundError`` when the folder holds no results file: a wrong path is
    far likelier than a project without results.
    """
    results_dir = Path(results_dir)
    paths = sorted(results_dir.glob("*-seed*.json"))
    if not paths:
        raise FileNotFoundError(
            f"no results files (<dataset>-<config>-seed<N>.json) in {str(results_dir)!r}; pass the "
            f"repository's results/ folder (Path(vaeclust_tutorial.__file__).parent.parent / 'results' "
            f"in a clone), or add finished runs with `python tools/results_tables.py RUN_DIR`")
    return [json.loads(p.read_text()) for p in paths]


def read_summary(results_dir: str | Path = "results") -> dict[str, str]:
    """The tables of ``results/summary.md`` as Markdown, by section: ``"summary"`` (mean ± std
    per dataset and config), then one entry per ``## heading`` (e.g. "Each run")."""
    path = Path(results_dir) / "summary.md"
    if not path.exists():
        raise FileNotFoundError(f"{str(path)!r} does not exist; write it with `python tools/results_tables.py`")
    first, *rest = path.read_text().split("\n## ")
    return {"summary": first.strip(), **{part.split("\n", 1)[0].strip(): part.split("\n", 1)[1].strip()
                                         for part in rest}}


# The test scores every results file records, in the order tables show them.
METRICS = ("purity", "accuracy", "nmi", "ari")


def epochs_to(history: list, threshold: float, metric: str = "purity") -> int | None:
    """The first epoch whose test evaluation reached ``threshold`` (a fraction, 0 < t <= 1) of the
    test ``metric`` (one of :data:`METRICS`; accuracy is Hungarian), or None. Notebooks 05 and 06."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold is a fraction in (0, 1] (0.98 for 98 %), got {threshold}")
    return next((h["epoch"] for h in history if h.get(f"test_{metric}", -1.0) >= threshold), None)


def _cut_refusal(record: dict, epoch: int) -> str | None:
    """Why ``record`` cannot be read as a run of ``epoch`` epochs (:func:`after_epoch`), or None."""
    cfg = record.get("config", {})
    if cfg.get("lr_schedule", "constant") != "constant":
        return (f"the run {run_name(record)} follows a learning-rate schedule over its {record['epochs']} "
                f"epochs: its epoch {epoch} is not a shorter run's end")
    if cfg.get("cluster_init") == "kmeans" and epoch <= cfg.get("cluster_init_epoch", 1):
        return (f"the run {run_name(record)} starts its clusters from k-means after epoch "
                f"{cfg.get('cluster_init_epoch', 1)}: a run of {epoch} epochs would not have that start")
    if not 1 <= epoch <= record["epochs"]:
        return f"epoch must be within 1..{record['epochs']} (the run's length), got {epoch}"
    entry = next((h for h in record.get("history", []) if h["epoch"] == epoch), None)
    if entry is None or any(f"test_{m}" not in entry for m in METRICS):
        return f"the run {run_name(record)} has no full test evaluation after epoch {epoch}"
    return None


def after_epoch(record: dict, epoch: int) -> dict:
    """``record`` as its run stood after ``epoch``: test scores from that epoch's evaluation,
    ``epochs`` set to ``epoch``, the history cut there, no train scores. Nothing in training
    depends on the number of epochs asked for (no schedule), so this is the record a run of
    ``epoch`` epochs with the same seed would have written, up to its timing: notebook 06 sets the
    article's 50-epoch runs beside 10-epoch ones this way. Refused (``ValueError``): runs with a
    learning-rate schedule (which depends on the length), runs whose k-means start came at or
    after ``epoch``, and epochs without a full test evaluation."""
    refusal = _cut_refusal(record, epoch)
    if refusal:
        raise ValueError(refusal)
    entry = next(h for h in record["history"] if h["epoch"] == epoch)
    test = {m: entry[f"test_{m}"] for m in METRICS}
    history = [h for h in record["history"] if h["epoch"] <= epoch]
    cut = {k: v for k, v in record.items() if k != "train"}
    if "epochs" in cut.get("config", {}):
        cut["config"] = {**cut["config"], "epochs": epoch}
    return {**cut, "epochs": epoch, "test": test, "history": history,
            "wall_seconds": sum(h.get("seconds", 0.0) for h in history)}


def purity_curves(records: list[dict], dataset: str, network: str, precision: str,
                  seeds=None) -> dict[str, list]:
    """The histories of ``dataset``/``network`` runs in one precision ("fp32" or "bf16"), grouped by
    config label (the article's start, ``+kmeans-eN``), optionally only of ``seeds``: what
    ``plots.purity_curves_figure`` draws. Notebook 05."""
    groups: dict[str, list] = {}
    for r in records:
        if r["dataset"] == dataset and r["network"] == network and precision_tag(r) == precision \
                and (seeds is None or r["seed"] in seeds):
            groups.setdefault(config_label(r), []).append(r["history"])
    return dict(sorted(groups.items()))


def purity_at_epochs(curves: dict[str, list], epochs) -> str:
    """One line per group: mean test purity ± std over its runs at each of ``epochs`` that all
    its runs reached with a test evaluation. Notebook 05."""
    lines = []
    for label, hists in curves.items():
        cells = []
        for epoch in epochs:
            p = [h[epoch - 1]["test_purity"] for h in hists if len(h) >= epoch and "test_purity" in h[epoch - 1]]
            if p and len(p) == len(hists):
                std = statistics.stdev(p) if len(p) > 1 else 0.0
                cells.append(f"ep. {epoch}: {statistics.mean(p):.3f} ± {std:.3f}")
        lines.append(f"{label} ({len(hists)} runs): " + "   ".join(cells))
    return "\n".join(lines)


# Changes to ``beyond`` tried beside it, each a row after it in notebook 06's ablation: {what the
# row is, with its verdict: the settings it changes}. docs/reproduction.md says what each gave.
ABLATION_TRIED = {"beyond, term 2's weights fixed (tried, left out)": dict(term2_trains_classifier=False),
                  "beyond, learning rate falling along a half cosine (tried, left out)": dict(lr_schedule="cosine"),
                  "beyond, half the moved images also mirrored (clothes only; tried, left out)": dict(move_flip=True),
                  "beyond, the moved images' grey levels also bent by a random gamma (tried, left out: step 16)":
                      dict(move_gamma=0.7),
                  "beyond with the grey levels, and balance weighed twice as much (β = 8; tried, left out)":
                      dict(move_gamma=0.7, info_balance=8.0),
                  "beyond with the grey levels, and β falling from 8 to 4 over the epochs (tried, left out)":
                      dict(move_gamma=0.7, info_balance_start=8.0),
                  "beyond with the grey levels, and the weights' moving average read out (tried, left out)":
                      dict(move_gamma=0.7, teacher_decay=0.999)}


def ablation_rows(dataset: str | None = None) -> dict[str, str]:
    """Notebook 06's ablation, from the article's model to the preset ``beyond``, one ingredient
    per row, then the changes tried beside it (:data:`ABLATION_TRIED`): {config label: what
    the row adds}. The settings are ``beyond``'s, so the rows follow the preset if it changes.
    With ``dataset``, only the rows that apply to it: a change that mirrors images
    (``move_flip``) is not one to try where a mirrored image can change class
    (``data.DatasetInfo.mirror_symmetric``)."""
    beyond = config.PRESETS["beyond"]
    steps = [("the article's model", ()),
             ("term 3 replaced by the information term", ("cat_weight", "info_weight")),
             ("+ consistency under small moves (= beyond)", ("consistency_weight",))]
    rows, settings = {}, {}
    for what, fields in steps:
        settings.update({f: beyond[f] for f in fields})
        rows[config.config_label(config.preset("article-b", **settings))] = what
    for what, changes in ABLATION_TRIED.items():
        if dataset is None or not changes.get("move_flip") or DATASETS[dataset].mirror_symmetric:
            rows[config.config_label(config.preset("beyond", **changes))] = what
    return rows


def at_epoch(records: list[dict], epoch: int) -> list[dict]:
    """The runs of ``epoch`` epochs, and the longer ones as they stood after ``epoch``
    (:func:`after_epoch`; the runs it refuses are left out): every run compared at the same
    length. Notebook 06 and the ablation tables."""
    return [r if r["epochs"] == epoch else after_epoch(r, epoch)
            for r in records if r["epochs"] == epoch or (r["epochs"] > epoch and not _cut_refusal(r, epoch))]


def _mean_std(values: list[float]) -> str:
    """In %: "mean ± std" over several runs, the value alone for one (no spread to show)."""
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def scores_markdown(records: list[dict], rows: dict[str, str] | Callable[[str], dict[str, str]],
                    datasets=("mnist", "fashion-mnist"), reach: float | None = None) -> str:
    """A Markdown table, one line per (dataset, config of ``rows``, epochs): the test scores over
    its seeds as mean ± std in %, and every seed's Hungarian accuracy. ``rows`` maps a config label
    (:func:`config_label`) to the name the row shows (what it adds, in an ablation), or is a
    function giving that map for one dataset (:func:`ablation_rows`); for each
    number of epochs, one run per seed: its fp32 run where there is one, else its bf16 one (the
    precision column then names which seeds ran in which). Configs with no runs say so. With
    ``reach`` (a fraction, e.g. 0.98), a last column gives each seed's first epoch at or above that
    Hungarian accuracy ("–": never). Notebooks 05 and 06."""
    if reach is not None and not 0 < reach <= 1:
        raise ValueError(f"reach is a fraction in (0, 1] (0.98 for 98 %), got {reach}")
    extra = f" first epoch at {100 * reach:g} % Hungarian |" if reach is not None else ""
    lines = ["| dataset | config | runs | epochs | precision | Hungarian % | purity % | NMI % | ARI % "
             "| each seed: Hungarian % |" + extra,
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if extra else "")]
    for dataset in datasets:
        for label, what in (rows(dataset) if callable(rows) else rows).items():
            runs = [r for r in records if r["dataset"] == dataset and config_label(r) == label]
            if not runs:
                lines.append(f"| {dataset} | {what} | 0 | | | not run yet | | | | |" + (" |" if extra else ""))
                continue
            for epochs in sorted({r["epochs"] for r in runs}):
                group = one_run_per_seed(r for r in runs if r["epochs"] == epochs)
                test = [r["test"] for r in group]
                seeds = ", ".join(f"{r['seed']}: {100 * r['test']['accuracy']:.1f}" for r in group)
                lines.append(f"| {dataset} | {what} | {len(group)} | {epochs} | {_precisions(group)} | "
                             + " | ".join(_mean_std([t[k] for t in test]) for k in ("accuracy", "purity", "nmi", "ari"))
                             + f" | {seeds} |" + (f" {_epochs_to(group, reach)} |" if extra else ""))
    return "\n".join(lines)


def one_run_per_seed(runs) -> list[dict]:
    """The runs sorted by seed, one per seed: its fp32 run where there is one, else its bf16 run
    (bf16 and fp32 agree within seed noise: docs/reproduction.md). Notebook 06's tables."""
    best = {}
    for r in runs:
        if r["seed"] not in best or (precision_tag(r) == "fp32" and precision_tag(best[r["seed"]]) != "fp32"):
            best[r["seed"]] = r
    return [best[seed] for seed in sorted(best)]


def on_common_seeds(records: list[dict], dataset: str, labels) -> dict[str, list[dict]]:
    """For each config label of ``labels``, its runs on ``dataset`` (one per seed,
    :func:`one_run_per_seed`) on the seeds that every label has run, so that two rows of a table
    with different seeds can be compared seed for seed: {label: runs sorted by seed}. Raises
    ``ValueError`` when the labels share no seed. Notebook 06."""
    labels = list(labels)
    runs = {label: {r["seed"]: r for r in one_run_per_seed(
        r for r in records if r["dataset"] == dataset and config_label(r) == label)} for label in labels}
    common = set.intersection(*(set(by_seed) for by_seed in runs.values())) if labels else set()
    if not common:
        raise ValueError(f"no seed has a run of every one of {labels} on {dataset}")
    return {label: [runs[label][seed] for seed in sorted(common)] for label in labels}


def _precisions(group: list[dict]) -> str:
    """"fp32", "bf16", or, for a mixed group, which seeds ran in which: "fp32 (1, 2), bf16 (0)"."""
    tags = {precision_tag(r) for r in group}
    if len(tags) == 1:
        return tags.pop()
    return ", ".join(f"{tag} ({', '.join(str(r['seed']) for r in group if precision_tag(r) == tag)})"
                     for tag in sorted(tags, key=lambda t: (t != "fp32", t)))


def _epochs_to(group: list[dict], reach: float) -> str:
    """Each run's first epoch at or above ``reach`` test Hungarian accuracy, "–" where it never did."""
    return ", ".join(str(epochs_to(r.get("history", []), reach, "accuracy") or "–") for r in group)
