#!/usr/bin/env python3
"""The results tables: add finished runs to results/, rewrite results/summary.md and summary.json.

    python tools/results_tables.py [RUN_DIR ...] [--results-dir results] [--docs]

Each RUN_DIR (a finished ``train --out`` folder) becomes ``results/<dataset>-<config>-seed<N>[-bf16].json``
(its metrics and history). Then ``results/summary.json`` (one row per dataset, config, epochs and
precision) and ``results/summary.md`` are rewritten from every results file: the summary table,
the first epoch at which each run reached each test purity, and one line per run. Notebook 05
reads the files and shows summary.md.

``--docs`` also refreshes the generated blocks of docs/reproduction.md (``results``,
``time-to-purity``, ``ablation``: notebook 06's rows after 10 epochs) and of README.md
(``results-headline``: mean ± std per dataset and config of the fp32 50-epoch runs;
``results-beyond``: ``beyond`` beside the article's model after 10 epochs). The tables are never
typed by hand.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:        # run as `python tools/results_tables.py`
    sys.path.insert(0, str(ROOT))

from vaeclust_tutorial.config import PRESETS  # noqa: E402
from vaeclust_tutorial.files import atomic_write_bytes, atomic_write_json  # noqa: E402
from vaeclust_tutorial.results import (METRICS, ablation_rows, at_epoch, config_label, epochs_to,  # noqa: E402
                                       load_results, precision_tag, run_name, scores_markdown)

TIME_TO_PURITY_HEADING = "First epoch at or above each test purity"
THRESHOLDS = (0.70, 0.75, 0.80, 0.845)


def collect(run_dir: str | Path, results_dir: str | Path = "results") -> Path:
    """Write ``results/<dataset>-<config>-seed<N>.json`` from a finished run folder."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        raise ValueError(f"{metrics_path} does not exist: {run_dir} is not a finished run "
                         f"(`python -m vaeclust_tutorial train --resume --out {run_dir}` finishes it)")
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


def summarize(records: list[dict]) -> list[dict]:
    """One row per (dataset, config, epochs, precision): n runs, and mean, std, min, max of each metric."""
    groups: dict = {}
    for r in records:
        groups.setdefault((r["dataset"], config_label(r), r["epochs"], precision_tag(r)), []).append(r)
    rows = []
    for (dataset, label, epochs, precision), runs in sorted(groups.items()):
        row = {"dataset": dataset, "config": label, "epochs": epochs, "precision": precision, "n": len(runs),
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


def _minutes(row: dict) -> str:
    lo, hi = round(row["minutes_min"]), round(row["minutes_max"])
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def summary_markdown(records: list[dict]) -> str:
    """The full table: one row per (dataset, config, precision, epochs), every metric with its spread."""
    lines = ["| dataset | config | precision | epochs | seeds | test purity (min–max) "
             "| test Hungarian acc. (min–max) | test NMI | test ARI | train purity | minutes/run (min–max) "
             "| device (runs) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summarize(records):
        n = r["n"]
        lines.append(f"| {r['dataset']} | {r['config']} | {r['precision']} | {r['epochs']} "
                     f"| {','.join(map(str, r['seeds']))} "
                     f"| {_fmt(r['test_purity'], True, n)} | {_fmt(r['test_accuracy'], True, n)} "
                     f"| {_fmt(r['test_nmi'], False, n)} | {_fmt(r['test_ari'], False, n)} "
                     f"| {_fmt(r['train_purity'], True, n)} | {_minutes(r)} "
                     f"| {'; '.join(f'{d} ({k})' for d, k in r['devices'].items())} |")
    return "\n".join(lines) + "\n"


def headline_markdown(records: list[dict], epochs: int = 50) -> str:
    """The README's compact table: test purity and Hungarian accuracy, mean ± std over seeds, per
    dataset and config, of the fp32 runs of ``epochs`` epochs (the article's length)."""
    lines = ["| dataset | config | seeds | test purity (mean ± std) | test Hungarian acc. (mean ± std) |",
             "|---|---|---|---|---|"]
    for r in summarize(records):
        if r["precision"] == "fp32" and r["epochs"] == epochs:
            cells = [f"{100 * s['mean']:.1f} % (1 run)" if r["n"] == 1 else
                     f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f} %" for s in (r["test_purity"], r["test_accuracy"])]
            lines.append(f"| {r['dataset']} | {r['config']} | {','.join(map(str, r['seeds']))} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def runs_markdown(records: list[dict]) -> str:
    """One line per run: the seeds behind each mean, with the device each ran on."""
    lines = ["| dataset | config | precision | seed | test purity | test Hungarian acc. | test NMI | minutes "
             "| device |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (r["dataset"], config_label(r), precision_tag(r), r["seed"])):
        t = r["test"]
        lines.append(f"| {r['dataset']} | {config_label(r)} | {precision_tag(r)} | {r['seed']} "
                     f"| {100 * t['purity']:.1f} % | {100 * t['accuracy']:.1f} % | {t['nmi']:.3f} "
                     f"| {r['wall_seconds'] / 60:.0f} | {r['device']} |")
    return "\n".join(lines) + "\n"


def time_to_purity_markdown(records: list[dict], thresholds=THRESHOLDS) -> str:
    """How soon each run's test purity first reached each threshold: one row per
    (dataset, config, precision), each cell "m/n seeds" and the epochs at which they did, and
    the median seconds per epoch (test evaluation included) to turn epochs into minutes on the
    machine that trained them."""
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
            hits = [e for r in runs if (e := epochs_to(r["history"], t)) is not None]
            cells.append(f"{len(hits)}/{len(runs)}" + (f" (ep. {', '.join(map(str, hits))})" if hits else ""))
        seconds = statistics.median(h["seconds"] for r in runs for h in r["history"])
        epochs = "/".join(map(str, sorted({r["epochs"] for r in runs})))
        lines.append(f"| {dataset} | {label} | {precision} | {epochs} | {','.join(str(r['seed']) for r in runs)} | "
                     + " | ".join(cells) + f" | {seconds:.1f} |")
    return "\n".join(lines) + "\n"


ABLATION_EPOCHS = PRESETS["beyond"]["epochs"]   # a `beyond` run's length; the article's 50-epoch runs are read there
REACH = 0.98               # issue 17: the epochs needed to reach 98 % Hungarian accuracy


def ablation_markdown(records: list[dict]) -> str:
    """Notebook 06's ablation, from the article's model to ``beyond``, one ingredient per row,
    every run read after ``ABLATION_EPOCHS`` epochs: scores over seeds, each seed, and each seed's
    first epoch at ``REACH`` Hungarian accuracy."""
    return scores_markdown(at_epoch(records, ABLATION_EPOCHS), ablation_rows, reach=REACH) + "\n"


def beyond_markdown(records: list[dict]) -> str:
    """The README's second table: ``beyond`` beside the article's model, both after
    ``ABLATION_EPOCHS`` epochs."""
    rows = {"article-b": "article-b (the article's model)", "beyond": "beyond (notebook 06)"}
    return scores_markdown(at_epoch(records, ABLATION_EPOCHS), rows, reach=REACH) + "\n"


def summary_text(records: list[dict]) -> str:
    """What ``results/summary.md`` holds: the summary table, the time-to-purity table, each run."""
    return (summary_markdown(records)
            + f"\n## {TIME_TO_PURITY_HEADING}\n\n" + time_to_purity_markdown(records)
            + "\n## Each run\n\n`results/<dataset>-<config>-seed<N>[-bf16].json`:\n\n" + runs_markdown(records))


def write_summary(results_dir: str | Path = "results") -> list[dict]:
    """``results/summary.md`` and ``results/summary.json`` from the per-run files; returns the records."""
    results_dir = Path(results_dir)
    records = load_results(results_dir)
    atomic_write_json(results_dir / "summary.json", summarize(records))
    atomic_write_bytes(results_dir / "summary.md", summary_text(records).encode())
    return records


def write_docs(records: list[dict], root: str | Path | None = None) -> list[Path]:
    """Refresh the generated blocks: docs/reproduction.md ``results``, ``time-to-purity`` and
    ``ablation``, README.md ``results-headline`` and ``results-beyond``. Returns the files written."""
    from tools.markers import replace_between_markers

    root = Path(root or ROOT)
    reproduction, readme = root / "docs" / "reproduction.md", root / "README.md"
    replace_between_markers(reproduction, "results", summary_markdown(records))
    replace_between_markers(reproduction, "time-to-purity", time_to_purity_markdown(records))
    replace_between_markers(reproduction, "ablation", ablation_markdown(records))
    replace_between_markers(readme, "results-headline", headline_markdown(records))
    replace_between_markers(readme, "results-beyond", beyond_markdown(records))
    return [reproduction, readme]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/results_tables.py", description=__doc__.split("\n\n")[0],
                                epilog="--docs writes README.md and docs/ of the repository this script is in.")
    p.add_argument("runs", nargs="*", type=Path, metavar="RUN_DIR",
                   help="finished run folders to add (each with metrics.json)")
    p.add_argument("--results-dir", type=Path, default=ROOT / "results",
                   help="where the results files are (default: results/ of this repository)")
    p.add_argument("--docs", action="store_true",
                   help="also refresh docs/reproduction.md (results, time-to-purity, ablation) and README.md "
                        "(results-headline, results-beyond)")
    args = p.parse_args(argv)
    try:
        for run in args.runs:
            print(f"added {collect(run, args.results_dir)}")
        records = write_summary(args.results_dir)
        print(f"wrote {args.results_dir / 'summary.md'} and {args.results_dir / 'summary.json'} "
              f"({len(records)} runs)")
        if args.docs:
            for path in write_docs(records):
                print(f"refreshed {path}")
    except (ValueError, OSError) as exc:    # FileNotFoundError included: the messages say what to do
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(headline_markdown(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
