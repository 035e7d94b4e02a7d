#!/usr/bin/env python3
"""Store a finished run's model as a small weights-only checkpoint shipped in the package.

    python tools/ship.py --checkpoint RUN/checkpoint.pt --out vaeclust_tutorial/checkpoints/mnist.pt

Drops the optimizer and RNG states (a third of the size); keeps config, epoch, history and
the ``metrics.json`` written beside the run's checkpoint, whose test purity and accuracy
``tests/test_shipped.py`` checks against a fresh evaluation. Refuses unfinished and
quick-mode runs. Prints the shipped file's name, test scores and epoch as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:        # run as `python tools/ship.py`
    sys.path.insert(0, str(ROOT))

from vaeclust_tutorial.checkpoint import CheckpointError, load, save  # noqa: E402


def ship(run_checkpoint: str | Path, out: str | Path) -> dict:
    """Write ``out`` from a finished run's checkpoint and its ``metrics.json``; returns what was shipped."""
    run_checkpoint = Path(run_checkpoint)
    state = load(run_checkpoint)
    metrics_path = run_checkpoint.parent / "metrics.json"
    if not metrics_path.exists():
        raise CheckpointError(f"{metrics_path} is missing: ship only finished runs (train writes it at the end)")
    metrics = json.loads(metrics_path.read_text())
    if metrics.get("quick"):
        raise CheckpointError(f"{run_checkpoint} comes from a quick-mode run; ship only real runs")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save(out, {"package_version": state["package_version"], "config": state["config"].to_dict(),
               "epoch": state["epoch"], "model": state["model"], "history": state["history"],
               "metrics": metrics})
    return {"out": str(out), "test": metrics["test"], "epoch": state["epoch"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/ship.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path, help="a finished run's checkpoint.pt")
    p.add_argument("--out", required=True, type=Path, help="e.g. vaeclust_tutorial/checkpoints/mnist.pt")
    args = p.parse_args(argv)
    try:
        print(json.dumps(ship(args.checkpoint, args.out), indent=2))
    except (ValueError, OSError) as exc:     # CheckpointError is a ValueError; its message says what to do
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
