"""Seconds per MNIST training epoch: this package against the Keras 3 reference, interleaved.

Each repeat trains 4 epochs with each contender in turn (Keras first, then this package once per
``--precisions`` entry: fp32, and bf16 autocast where the CPU has it), each in a fresh process
with the same thread count, and keeps the faster of epochs 2 and 3: the first includes graph
tracing and warm-up, the last a test evaluation, and Keras run this way has one-off slow epochs
(article-a: 22.5, 40.3, 20.5 s for epochs 1-3 in one run), which the faster of two skips.
Prints and writes a JSON report with the median and range per contender and the ratio
Keras/contender (above 1: faster than Keras).

    .venv/bin/python benchmarks/vs_keras.py --keras-python .venv-keras/bin/python \\
        --config article-b --threads 2 --repeats 2 --precisions bf16 --out results/vs_keras.json

Needs the data prepared (``python -m vaeclust_tutorial prepare``) and the Keras environment of
``benchmarks/keras_reference.py``. Timing is a benchmark, never a test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


EPOCHS = 4


def steady_epoch(history: list) -> float:
    """The faster of epochs 2 and 3 (see the module docstring)."""
    return min(h["seconds"] for h in history[1:3])


def keras_epoch(python: str, config: str, threads: int, tmp: Path) -> float:
    out = tmp / "keras.json"
    subprocess.run([python, str(HERE / "keras_reference.py"), "--config", config, "--epochs", str(EPOCHS),
                    "--eval-every", "1000", "--threads", str(threads), "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return steady_epoch(json.loads(out.read_text())["history"])


def torch_epoch(config: str, threads: int, tmp: Path, precision: str) -> float:
    out = tmp / f"torch-{precision}"
    subprocess.run([sys.executable, "-m", "vaeclust_tutorial", "train", "--dataset", "mnist", "--config", config,
                    "--epochs", str(EPOCHS), "--eval-every", "1000", "--device", "cpu", "--no-progress",
                    "--precision", precision, "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    return steady_epoch(json.loads((out / "history.json").read_text()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keras-python", required=True, help="python of the environment with TensorFlow")
    p.add_argument("--config", default="article-b", choices=("article-a", "article-b", "article-c"))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--precisions", default="fp32,bf16",
                   help="this package's precisions to time, comma-separated (default fp32,bf16)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.repeats < 1 or args.threads < 1:
        sys.exit("error: --repeats and --threads must be >= 1")
    precisions = [x for x in args.precisions.split(",") if x]
    if not precisions or set(precisions) - {"fp32", "bf16", "auto"}:
        sys.exit(f"error: --precisions {args.precisions!r}: use fp32, bf16 or auto, comma-separated")

    times: dict[str, list[float]] = {"keras": [], **{f"this package {x}": [] for x in precisions}}
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            times["keras"].append(keras_epoch(args.keras_python, args.config, args.threads, Path(tmp)))
            for x in precisions:
                times[f"this package {x}"].append(torch_epoch(args.config, args.threads, Path(tmp), x))
        print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items())
              + " per epoch", file=sys.stderr)
    report = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "threads": args.threads,
              "config": args.config, "repeats": args.repeats, "seconds_per_epoch": {
                  k: {"median": statistics.median(v), "min": min(v), "max": max(v), "all": v}
                  for k, v in times.items()}}
    report["ratio_keras_over"] = {k: statistics.median(times["keras"]) / statistics.median(v)
                                  for k, v in times.items() if k != "keras"}
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
