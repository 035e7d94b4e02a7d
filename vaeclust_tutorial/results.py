"""Results of finished runs: one JSON file per run under ``results/``, and a summary table.

The table in the README is produced by ``python -m vaeclust_tutorial results``,
never typed by hand. Notebook 05 reads these files.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .config import run_label
from .io import atomic_write_bytes, atomic_write_json

METRICS = ("purity", "accuracy", "nmi", "ari")


def precision_tag(metrics: dict) -> str:
    """"fp32" or "bf16": the precision a run trained in (records before bf16 existed are fp32)."""
    return {"float32": "fp32", "bfloat16": "bf16"}.get(metrics.get("precision", "float32"), metrics["precision"])


def config_label(metrics: dict) -> str:
    """The config a run used: ``article-b``, or ``article-b+kmeans-e1`` when its clusters started from
    k-means after epoch 1 (``cluster_init="kmeans"``, not the article's start)."""
    cfg = metrics.get("config", {})
    return run_label(metrics["model"], cfg.get("cluster_init", "zeros"), cfg.get("cluster_init_epoch", 1))


def run_name(metrics: dict) -> str:
    """``<dataset>-<config>-seed<N>``, with ``-bf16`` for a bf16 run (same seed, other file)."""
    tag = precision_tag(metrics)
    return f"{metrics['dataset']}-{config_label(metrics)}-seed{metrics['seed']}" + ("" if tag == "fp32" else f"-{tag}")


def collect(run_dir: str | Path, results_dir: str | Path = "results") -> Path:
    """Write ``results/<dataset>-<config>-seed<N>.json`` from a finished run folder."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        raise ValueError(f"{metrics_path} does not exist: {run_dir} is not a finished run "
                         f"(`train --resume --out {run_dir}` finishes it)")
    metrics = json.loads(metrics_path.read_text())
    if metrics.get("quick"):
        raise ValueError(f"{run_dir} is a quick-mode run; its numbers are not results")
    history_path = run_dir / "history.json"
    record = {**metrics, "history": json.loads(history_path.read_text()) if history_path.exists() else []}
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{run_name(metrics)}.json"
    atomic_write_json(out, record)
    return out


def load_results(results_dir: str | Path = "results") -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("*-seed*.json"))]


def summarize(records: list[dict]) -> list[dict]:
    """One row per (dataset, config, epochs, precision): n runs, and mean, std, min, max of each metric."""
    groups: dict = {}
    for r in records:
        groups.setdefault((r["dataset"], config_label(r), r["epochs"], precision_tag(r)), []).append(r)
    rows = []
    for (dataset, model, epochs, precision), runs in sorted(groups.items()):
        row = {"dataset": dataset, "config": model, "epochs": epochs, "precision": precision, "n": len(runs),
               "seeds": sorted(r["seed"] for r in runs),
               "devices": {d: sum(r["device"] == d for r in runs) for d in sorted({r["device"] for r in runs})},
               "minutes": statistics.mean(r["wall_seconds"] for r in runs) / 60,
               "minutes_min": min(r["wall_seconds"] for r in runs) / 60,
               "minutes_max": max(r["wall_seconds"] for r in runs) / 60}
        for split in ("test", "train"):
            for m in METRICS:
                values = [r[split][m] for r in runs]
                row[f"{split}_{m}"] = {"mean": statistics.mean(values),
                                       "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                                       "min": min(values), "max": max(values)}
        rows.append(row)
    return rows


def _fmt(stat: dict, pct: bool, n: int) -> str:
    scale, unit = (100, " %") if pct else (1, "")
    if n == 1:   # one run has no spread to report
        return f"{stat['mean'] * scale:.{1 if pct else 3}f}{unit} (1 run)"
    if pct:
        return (f"{stat['mean'] * scale:.1f} ± {stat['std'] * scale:.1f}{unit} "
                f"({stat['min'] * scale:.1f}–{stat['max'] * scale:.1f})")
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def summary_markdown(results_dir: str | Path = "results") -> str:
    rows = summarize(load_results(results_dir))
    lines = ["| dataset | config | precision | epochs | seeds | test purity (min–max) "
             "| test Hungarian acc. (min–max) | test NMI | test ARI | train purity | minutes/run (min–max) "
             "| device (runs) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        n = r["n"]
        lines.append(f"| {r['dataset']} | {r['config']} | {r['precision']} | {r['epochs']} "
                     f"| {','.join(map(str, r['seeds']))} "
                     f"| {_fmt(r['test_purity'], True, n)} | {_fmt(r['test_accuracy'], True, n)} "
                     f"| {_fmt(r['test_nmi'], False, n)} | {_fmt(r['test_ari'], False, n)} "
                     f"| {_fmt(r['train_purity'], True, n)} | {_minutes(r)} "
                     f"| {'; '.join(f'{d} ({k})' for d, k in r['devices'].items())} |")
    return "\n".join(lines) + "\n"


def _minutes(row: dict) -> str:
    lo, hi = round(row["minutes_min"]), round(row["minutes_max"])
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def runs_markdown(results_dir: str | Path = "results") -> str:
    """One line per run: the seeds behind each mean, with the device each ran on."""
    lines = ["| dataset | config | precision | seed | test purity | test Hungarian acc. | test NMI | minutes "
             "| device |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(load_results(results_dir), key=lambda r: (r["dataset"], config_label(r), precision_tag(r), r["seed"])):
        t = r["test"]
        lines.append(f"| {r['dataset']} | {config_label(r)} | {precision_tag(r)} | {r['seed']} | {100 * t['purity']:.1f} % "
                     f"| {100 * t['accuracy']:.1f} % | {t['nmi']:.3f} | {r['wall_seconds'] / 60:.0f} | {r['device']} |")
    return "\n".join(lines) + "\n"


def epochs_to_purity(history: list, threshold: float) -> int | None:
    """The first epoch whose test evaluation reached ``threshold`` test purity, or None."""
    return next((h["epoch"] for h in history if h.get("test_purity", -1.0) >= threshold), None)


def time_to_purity_markdown(records: list[dict], thresholds=(0.70, 0.75, 0.80, 0.845)) -> str:
    """How soon each run's test purity first reached each threshold: one row per
    (dataset, config, precision), each cell "m/n seeds" and the epochs at which they did, and
    the median seconds per epoch (test evaluation included) to turn epochs into minutes on the
    machine that trained them. Notebook 05 and the README compare the article's start with the
    k-means start."""
    groups: dict = {}
    for r in records:
        groups.setdefault((r["dataset"], config_label(r), precision_tag(r)), []).append(r)
    head = " | ".join(f"{100 * t:g} %" for t in thresholds)
    lines = [f"| dataset | config | precision | epochs | seeds | {head} | s per epoch (median) |",
             "|---|---|---|---|---|" + "---|" * (len(thresholds) + 1)]
    for (dataset, label, precision), runs in sorted(groups.items()):
        runs = sorted(runs, key=lambda r: r["seed"])
        cells = []
        for t in thresholds:
            hits = [e for r in runs if (e := epochs_to_purity(r["history"], t)) is not None]
            cells.append(f"{len(hits)}/{len(runs)}" + (f" (ep. {', '.join(map(str, hits))})" if hits else ""))
        seconds = statistics.median(h["seconds"] for r in runs for h in r["history"])
        epochs = "/".join(map(str, sorted({r["epochs"] for r in runs})))
        lines.append(f"| {dataset} | {label} | {precision} | {epochs} | {','.join(str(r['seed']) for r in runs)} | "
                     + " | ".join(cells) + f" | {seconds:.1f} |")
    return "\n".join(lines) + "\n"


def purity_curves(records: list[dict], dataset: str, model: str, precision: str,
                  seeds=None) -> dict[str, list]:
    """The histories of ``dataset``/``model`` runs in one precision ("fp32" or "bf16"), grouped by
    config label (the article's start, ``+kmeans-eN``), optionally only of ``seeds``: what
    ``plots.purity_curves_figure`` draws. Notebook 05."""
    groups: dict[str, list] = {}
    for r in records:
        if r["dataset"] == dataset and r["model"] == model and precision_tag(r) == precision \
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


def write_summary(results_dir: str | Path = "results") -> None:
    """``results/summary.md`` and ``results/summary.json`` from the per-run files."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(results_dir / "summary.json", summarize(load_results(results_dir)))
    text = (summary_markdown(results_dir) + "\nEach run (`results/<dataset>-<config>-seed<N>[-bf16].json`):\n\n"
            + runs_markdown(results_dir))
    atomic_write_bytes(results_dir / "summary.md", text.encode())
