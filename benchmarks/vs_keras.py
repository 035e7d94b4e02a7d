"""Seconds per MNIST training epoch: this package against the Keras 3 reference, interleaved.

Each repeat trains 4 epochs with each contender in turn (Keras first, then this package once per
``--precisions`` entry: fp32, and bf16 autocast where the CPU has it), each in a fresh process
with the same thread count, and keeps the faster of epochs 2 and 3: the first includes graph
tracing and warm-up, the last a test evaluation.

Keras is timed two ways. "keras" is its whole epoch, as a user waits for it. "keras, training
only" leaves out the wait before an epoch's first batch: Keras often sits idle there for 5-25 s
with the CPU unused (``keras_reference.py`` records it as ``startup_seconds``), which made its
epochs bimodal (article-a: 20-23 s or 39-43 s), so the faster of two epochs did not always skip
it. The training-only time is the rest of the epoch scaled to all its batches; it is the fair
measure of the two frameworks' compute, and the one docs/speed.md compares against.
Prints and writes a JSON report with the median and range per contender and the ratios
Keras/contender (above 1: faster than Keras).

    .venv/bin/python benchmarks/vs_keras.py --keras-python .venv-keras/bin/python \\
        --config article-b --threads 2 --repeats 3 --out results/vs_keras.json --docs docs/speed.md

``--docs`` rewrites the ``vs-keras`` table of docs/speed.md from every ``vs_keras*.json`` in the
folder of ``--out`` (one row per version).

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
ROOT = HERE.parent
if str(ROOT) not in sys.path:        # run as `python benchmarks/vs_keras.py`: import tools.*
    sys.path.insert(0, str(ROOT))


EPOCHS = 4


def steady_epoch(history: list) -> float:
    """The faster of epochs 2 and 3 (see the module docstring)."""
    return min(h["seconds"] for h in history[1:3])


def training_epoch(history: list) -> float:
    """The faster of epochs 2 and 3 without the wait before their first batch.

    The time from the end of the first batch to the end of the epoch covers all batches but one,
    so it is scaled by ``batches / (batches - 1)``.
    """
    return min(h["seconds_after_first_batch"] * h["batches"] / (h["batches"] - 1) for h in history[1:3])


def keras_epoch(python: str, config: str, threads: int, tmp: Path) -> tuple[float, float]:
    out = tmp / "keras.json"
    subprocess.run([python, str(HERE / "keras_reference.py"), "--config", config, "--epochs", str(EPOCHS),
                    "--eval-every", "1000", "--threads", str(threads), "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    history = json.loads(out.read_text())["history"]
    return steady_epoch(history), training_epoch(history)


def torch_epoch(config: str, threads: int, tmp: Path, precision: str) -> float:
    out = tmp / f"torch-{precision}"
    subprocess.run([sys.executable, "-m", "vaeclust_tutorial", "train", "--dataset", "mnist", "--config", config,
                    "--epochs", str(EPOCHS), "--eval-every", "1000", "--device", "cpu", "--no-progress",
                    "--precision", precision, "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    return steady_epoch(json.loads((out / "history.json").read_text()))


VERSIONS = {"article-a": "A", "article-b": "B", "article-c": "C"}


def _cell(stat: dict) -> str:
    return f"{stat['median']:.1f} ({stat['min']:.1f}–{stat['max']:.1f})"


def markdown(reports: dict[str, dict]) -> str:
    """The docs' table: one row per report (name -> report), seconds per epoch and the ratios."""
    ours = ("this package bf16", "this package fp32")
    lines = ["| version | Keras 3 / TF, whole epoch | Keras, training only | this package, bf16 | "
             "this package, fp32 | Keras (training only) ÷ this package |", "|---|---|---|---|---|---|"]
    for name, r in sorted(reports.items(), key=lambda kv: kv[1]["config"]):
        sec = r["seconds_per_epoch"]
        ratios = ", ".join(f"×{r['ratio_keras_over'][k]['keras, training only']:.2f} {k.split()[-1]}"
                           for k in ours if k in sec)
        lines.append(f"| {VERSIONS[r['config']]} (`{name}`) | {_cell(sec['keras'])} | "
                     f"{_cell(sec['keras, training only'])} | "
                     + " | ".join(_cell(sec[k]) if k in sec else "–" for k in ours) + f" | {ratios} |")
    first = min(reports.values(), key=lambda r: r["config"])
    return (f"Seconds per epoch, median (min–max) of {first['repeats']} repeats, {first['threads']} threads, "
            f"{first['machine']}:\n\n" + "\n".join(lines))


def report_name(path: Path) -> str:
    """How the docs name a report file: relative to the repository root, wherever the script runs from."""
    path = path.resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def write_docs(docs: Path, folder: Path) -> None:
    from tools.markers import replace_between_markers

    reports = {report_name(f): json.loads(f.read_text()) for f in sorted(folder.resolve().glob("vs_keras*.json"))}
    replace_between_markers(docs, "vs-keras", markdown(reports))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keras-python", required=True, help="python of the environment with TensorFlow")
    p.add_argument("--config", default="article-b", choices=("article-a", "article-b", "article-c"))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--precisions", default="fp32,bf16",
                   help="this package's precisions to time, comma-separated (default fp32,bf16)")
    p.add_argument("--out", type=Path)
    p.add_argument("--docs", type=Path, help="rewrite the vs-keras table of this file, docs/speed.md (needs --out)")
    args = p.parse_args()
    if args.docs and not args.out:
        sys.exit("error: --docs needs --out: the table is made from the vs_keras*.json files beside it")
    if args.repeats < 1 or args.threads < 1:
        sys.exit("error: --repeats and --threads must be >= 1")
    precisions = [x for x in args.precisions.split(",") if x]
    if not precisions or set(precisions) - {"fp32", "bf16", "auto"}:
        sys.exit(f"error: --precisions {args.precisions!r}: use fp32, bf16 or auto, comma-separated")

    keras_names = ("keras", "keras, training only")
    times: dict[str, list[float]] = {**{k: [] for k in keras_names}, **{f"this package {x}": [] for x in precisions}}
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            for k, t in zip(keras_names, keras_epoch(args.keras_python, args.config, args.threads, Path(tmp))):
                times[k].append(t)
            for x in precisions:
                times[f"this package {x}"].append(torch_epoch(args.config, args.threads, Path(tmp), x))
        print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items())
              + " per epoch", file=sys.stderr)
    report = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "threads": args.threads,
              "config": args.config, "repeats": args.repeats, "seconds_per_epoch": {
                  k: {"median": statistics.median(v), "min": min(v), "max": max(v), "all": v}
                  for k, v in times.items()}}
    report["ratio_keras_over"] = {k: {kk: statistics.median(times[kk]) / statistics.median(v) for kk in keras_names}
                                  for k, v in times.items() if k not in keras_names}
    text = json.dumps(report, indent=2)
    if args.out:
        from vaeclust_tutorial.files import atomic_write_bytes   # a kill never leaves half a report
        atomic_write_bytes(args.out, (text + "\n").encode())
    print(text)
    if args.docs:
        write_docs(args.docs, args.out.parent)


if __name__ == "__main__":
    main()
