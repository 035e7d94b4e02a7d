#!/usr/bin/env python3
"""Several training runs at once: ``python tools/sweep.py mnist:article-b:0-4 ...``.

    python tools/sweep.py DATASET:CONFIG:SEEDS ... [--jobs N] [--epochs 50] [--runs-dir runs]
                          [--device auto] [--precision auto] [--stop-after SECONDS]

Each run is the ordinary ``python -m vaeclust_tutorial train`` in its own process, writing
``RUNS/<dataset>-<config>-seed<N>/`` (the names ``tools/results_tables.py`` gives results
files; CONFIG is a preset with optional ``+kmeans-eN`` and ``+NAME=VALUE`` settings, see
:func:`parse_spec`) with ``--resume``, so a sweep that is stopped (Ctrl-C, ``--stop-after``, SIGTERM; each
stops the runs it started) loses at most the epoch each run was in, and the same command
carries on. A finished run is skipped. Prints one JSON row per run; exits 1 unless all finished.
On a GPU several small runs share the card far better than one (each process
keeps it busy while the others launch kernels); on a CPU use ``--jobs 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:        # run as `python tools/sweep.py`
    sys.path.insert(0, str(ROOT))

from vaeclust_tutorial.cli import build_parser, config_from_args  # noqa: E402
from vaeclust_tutorial.config import DATASETS, PRECISIONS, PRESETS, RUN_FIELDS, TrainConfig, config_label  # noqa: E402

MODEL_FIELDS = {f.name for f in fields(TrainConfig)} - set(RUN_FIELDS)   # what +NAME=VALUE may set


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    config: str
    seed: int
    options: tuple[str, ...] = ()      # train's options beyond the preset: ("--info-weight", "1", ...)

    @property
    def label(self) -> str:
        """The config as results files name it (``config.config_label``): ``article-b``,
        ``article-b+kmeans-e5``, ``article-b+info-weight=1``."""
        return config_label(config_from_args(build_parser().parse_args(
            ["train", "--dataset", self.dataset, "--out", "-", "--config", self.config, "--epochs", "1000",
             *self.options]), quick=False))

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.label}-seed{self.seed}"


def _part_options(spec: str, part: str) -> list[str]:
    """One ``+PART`` of a spec's CONFIG as train's options: ``kmeans-eN``, ``NAME=VALUE`` or a
    switch (``no-term2-trains-classifier``)."""
    m = re.fullmatch(r"kmeans-e([1-9]\d*)", part)
    if m:
        return ["--cluster-init", "kmeans", "--cluster-init-epoch", m.group(1)]
    if part.startswith("kmeans"):
        raise ValueError(f"run spec {spec!r}: {'+' + part!r} is not a cluster start; "
                         f"write CONFIG+kmeans-eN (k-means after epoch N >= 1), e.g. article-b+kmeans-e5")
    name, eq, value = part.partition("=")
    field = name.removeprefix("no-").replace("-", "_")
    if field not in MODEL_FIELDS:
        raise ValueError(f"run spec {spec!r}: {'+' + part!r} is not a setting of the model; write +kmeans-eN or "
                         f"+NAME=VALUE with NAME one of {sorted(f.replace('_', '-') for f in MODEL_FIELDS)}")
    return [f"--{name}", value] if eq else [f"--{name}"]


def parse_spec(text: str) -> list[RunSpec]:
    """``DATASET:CONFIG:SEEDS`` with SEEDS as ``3``, ``0-4`` or ``0,2,5`` -> one RunSpec per seed.

    CONFIG is a preset, optionally followed by ``+kmeans-eN`` (``train --cluster-init kmeans
    --cluster-init-epoch N``) and by settings as ``train`` spells them, ``+info-weight=1`` or
    ``+no-term2-trains-classifier``: e.g. ``mnist:article-b+kmeans-e5:0-4``,
    ``mnist:article-b+cat-weight=0+info-weight=1:0-2``.
    """
    parts = text.split(":")
    fix = ("write DATASET:CONFIG:SEEDS, e.g. mnist:article-b:0-4, fashion-mnist:article-c:0,2 "
           "or mnist:article-b+kmeans-e5:0-2")
    if len(parts) != 3:
        raise ValueError(f"run spec {text!r} is not DATASET:CONFIG:SEEDS; {fix}")
    dataset, config, seeds = parts
    if dataset not in DATASETS:
        raise ValueError(f"run spec {text!r}: unknown dataset {dataset!r}; valid datasets are {list(DATASETS)}")
    config, *extra = config.split("+")
    if config not in PRESETS:
        raise ValueError(f"run spec {text!r}: unknown config {config!r}; valid configs are {list(PRESETS)}")
    names = [part.split("=")[0].removeprefix("no-") if not part.startswith("kmeans") else "kmeans" for part in extra]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"run spec {text!r}: {', '.join(repeated)} set more than once; give each setting once")
    options = tuple(o for part in extra for o in _part_options(text, part))
    try:             # the values are checked here; the epochs against a k-means start, by train
        config_from_args(build_parser().parse_args(
            ["train", "--dataset", dataset, "--out", "-", "--config", config, "--epochs", "1000", *options]),
            quick=False)
    except SystemExit:      # argparse has printed what is wrong with the value
        raise ValueError(f"run spec {text!r}: a setting's value is invalid (see above)") from None
    except ValueError as exc:
        raise ValueError(f"run spec {text!r}: {exc}") from None
    try:
        values = parse_seeds(seeds)
    except ValueError as exc:
        raise ValueError(f"run spec {text!r}: {exc}; {fix}") from None
    return [RunSpec(dataset, config, s, options) for s in values]


def parse_seeds(text: str) -> list[int]:
    """``3``, ``0-4`` or ``0,2,5`` -> the seeds, in order, without repeats."""
    seeds: list[int] = []
    for chunk in text.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", chunk.strip())
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"seeds {text!r} are not like 3, 0-4 or 0,2,5")
        seeds.extend(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    return list(dict.fromkeys(seeds))


def train_command(spec: RunSpec, out: Path, epochs: int, device: str, precision: str) -> list[str]:
    return [sys.executable, "-m", "vaeclust_tutorial", "train", "--dataset", spec.dataset,
            "--config", spec.config, "--seed", str(spec.seed), "--epochs", str(epochs),
            "--out", str(out), "--resume", "--no-progress", "--device", device, "--precision", precision,
            *spec.options]


def epochs_done(out: Path) -> int:
    """Epochs recorded in the run's history (0 when none): what a stopped run keeps."""
    try:
        return len(json.loads((out / "history.json").read_text()))
    except (OSError, ValueError):
        return 0


def sweep(specs: list[RunSpec], runs_dir: str | Path = "runs", *, jobs: int = 1, epochs: int = 50,
          device: str = "auto", precision: str = "auto", stop_after: float | None = None,
          threads: int | None = None, log=print) -> list[dict]:
    """Run ``specs`` ``jobs`` at a time; returns one row per run (name, status, epochs, test scores).

    ``stop_after`` (seconds) stops the runs still going then (they resume next time);
    ``threads`` sets OMP_NUM_THREADS per run (default: the cores shared among the jobs).
    Each run's output goes to ``RUNS/<name>.log``.
    """
    if jobs < 1:
        raise ValueError(f"jobs={jobs!r} is invalid: it must be >= 1")
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads or max(1, (os.cpu_count() or 1) // jobs)),
               PYTHONUNBUFFERED="1")
    pending = [s for s in specs if not (runs_dir / s.name / "metrics.json").exists()]
    for s in specs:
        if s not in pending:
            log(f"{s.name}: finished earlier, skipped")
    running: dict[RunSpec, tuple[subprocess.Popen, object]] = {}
    returncodes: dict[RunSpec, int | None] = {}
    start = time.monotonic()
    stopped, restore = _stop_on_sigterm()
    try:
        while (pending or running) and not stopped:
            while pending and len(running) < jobs and not stopped:
                spec = pending.pop(0)
                out = runs_dir / spec.name
                logfile = open(runs_dir / f"{spec.name}.log", "ab")
                running[spec] = (subprocess.Popen(train_command(spec, out, epochs, device, precision),
                                                  stdout=logfile, stderr=subprocess.STDOUT, env=env), logfile)
                log(f"{spec.name}: started (log {runs_dir / (spec.name + '.log')})")
            for spec, (proc, logfile) in list(running.items()):
                if proc.poll() is not None:
                    logfile.close()
                    returncodes[spec] = proc.returncode
                    del running[spec]
                    log(f"{spec.name}: {'finished' if proc.returncode == 0 else f'failed (exit {proc.returncode})'}"
                        f" after {time.monotonic() - start:.0f} s")
            if stop_after is not None and time.monotonic() - start > stop_after and running:
                log(f"--stop-after {stop_after:g} s reached: stopping {len(running)} run(s); "
                    f"the same command resumes them")
                break
            time.sleep(1.0)
    finally:
        restore()
        for spec, (proc, logfile) in running.items():
            proc.terminate()
            proc.wait()
            logfile.close()
            returncodes[spec] = None
    if stopped:
        raise SystemExit(128 + stopped[0])
    for spec in pending:            # never started: --stop-after came first
        returncodes[spec] = None
    return [_row(s, runs_dir, epochs, returncodes.get(s, 0)) for s in specs]


def _stop_on_sigterm():
    """Make SIGTERM (``kill``, a job scheduler's stop) end the sweep: the handler only records the
    signal, the loop sees it within a second and leaves through its ``finally``, which stops the
    runs it started, and the sweep exits with 128 + the signal's number. Python's default would
    leave them running unattended, and raising in the handler could land between a run's start
    and its bookkeeping and leave that run behind. Returns the list the signal is recorded in
    and the function that restores the previous handler (both inert off the main thread)."""
    stopped: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        return stopped, lambda: None
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopped.append(signum))
    return stopped, lambda: signal.signal(signal.SIGTERM, previous)


def _row(spec: RunSpec, runs_dir: Path, epochs: int, returncode: int | None) -> dict:
    out = runs_dir / spec.name
    row = {"run": spec.name, "epochs": epochs_done(out)}
    metrics = out / "metrics.json"
    if metrics.exists():
        test = json.loads(metrics.read_text())["test"]
        row.update(status="finished", purity=test["purity"], accuracy=test["accuracy"])
    elif returncode is None:
        row["status"] = f"stopped after epoch {row['epochs']}/{epochs} (resumable)"
    else:
        row["status"] = f"failed (exit {returncode}; see {runs_dir / (spec.name + '.log')})"
    return row


def _at_least_one(what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{what} must be >= 1, got {value}")
        return value
    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--stop-after must be a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"--stop-after must be a finite number > 0, got {text}")
    return value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/sweep.py", description=__doc__.split("\n\n")[0],
                                epilog="Run train for each DATASET:CONFIG:SEEDS, JOBS at a time, into "
                                       "RUNS/<dataset>-<config>-seed<N>/ with --resume; finished runs are skipped.")
    p.add_argument("specs", nargs="+", metavar="DATASET:CONFIG:SEEDS",
                   help="e.g. mnist:article-b:0-4 fashion-mnist:article-c:0,1,2; CONFIG+kmeans-eN for "
                        "the k-means start after epoch N, e.g. mnist:article-b+kmeans-e5:0-2")
    p.add_argument("--jobs", type=_at_least_one("--jobs"), default=1,
                   help="runs at the same time (default 1; on a GPU 8 or more)")
    p.add_argument("--epochs", type=_at_least_one("--epochs"), default=50, help="epochs (default 50)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="default ./runs")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto (default: bf16 on CPUs with native bf16, else fp32), fp32, bf16")
    p.add_argument("--stop-after", type=_seconds, metavar="SECONDS",
                   help="stop the runs still going after this long (they resume next time)")
    args = p.parse_args(argv)
    try:
        specs = [spec for text in args.specs for spec in parse_spec(text)]
        rows = sweep(specs, args.runs_dir, jobs=args.jobs, epochs=args.epochs, device=args.device,
                     precision=args.precision, stop_after=args.stop_after,
                     log=lambda msg: print(msg, file=sys.stderr))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2))
    return 0 if all(r["status"] == "finished" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
