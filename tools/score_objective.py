#!/usr/bin/env python3
"""The training objective of finished runs, scored on the whole training split: could the loss
pick among restarts, as k-means keeps its best start?

    python tools/score_objective.py RUN_DIR [RUN_DIR ...] [--seed 12345]

For each run folder: the trained weights of its checkpoint (for a run that reads out a moving
average of the weights, the trained ones, which are what the loss was minimised for); every
term of its config's loss (``losses.cluster_vae_loss``) averaged over the training split, in
order, in batches of the config's size, with the z samples and the moves drawn from one seed so
that every run is scored on the same draws; and its test Hungarian accuracy. Labels only score;
they never enter the loss. Prints one JSON line per run (docs/reproduction.md, "Could the loss
pick among restarts?").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:        # run as `python tools/score_objective.py`
    sys.path.insert(0, str(ROOT))

from vaeclust_tutorial import checkpoint, inference, losses, metrics, training  # noqa: E402


def trained_model(run_dir: str | Path):
    """(model, state) of a run folder's checkpoint, with the trained weights: for a run that
    reads out an average of the weights, the trained ones it keeps beside it."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.exists():
        raise checkpoint.CheckpointError(f"{path} does not exist: give the folder of a run (train --out)")
    model, state = checkpoint.model_from_checkpoint(path)
    if "student" in state:
        model.load_state_dict(state["student"])
    return model.eval(), state


def score(run_dir: str | Path, seed: int = 12345, splits=None) -> dict:
    """The run's loss terms on its training split and its test scores (``splits``: (train, test)
    to use instead of loading the config's)."""
    model, state = trained_model(run_dir)
    cfg = state["config"]
    train_split, test_split = splits if splits is not None else training.load_splits(cfg)
    torch.manual_seed(seed)
    sums, batches = {}, 0
    with torch.no_grad():
        for xb in train_split.images.split(cfg.batch_size):
            for name, value in losses.cluster_vae_loss(xb, model(xb), model, cfg).items():
                sums[name] = sums.get(name, 0.0) + float(value)
            batches += 1
    terms = {name: total / batches for name, total in sums.items()}
    predicted = inference.predict(model, test_split.images)
    return {"run": str(run_dir), "dataset": cfg.dataset, "seed": cfg.seed, "epoch": state["epoch"],
            "loss": sum(terms.values()), **terms,
            "test_accuracy": metrics.hungarian_accuracy(test_split.labels, predicted)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders, each with a checkpoint.pt")
    parser.add_argument("--seed", type=int, default=12345, help="seeds the z samples and the moves")
    args = parser.parse_args(argv)
    try:
        for run in args.runs:
            print(json.dumps(score(run, args.seed)), flush=True)
    except checkpoint.CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
