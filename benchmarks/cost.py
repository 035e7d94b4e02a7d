#!/usr/bin/env python3
"""What the terms beyond the article cost per epoch, against the article's model, on one machine.

    python benchmarks/cost.py [CONFIG ...] [--repeats 5] [--steps 30] [--out FILE.json]
                              [--device auto] [--precision auto] [--docs docs/speed.md]

Each CONFIG is written as ``tools/sweep.py`` writes one (a preset and ``+NAME=VALUE`` settings,
``article-b+cat-weight=0+info-weight=1+consistency-weight=10``); the first is the reference
(default: ``article-b`` and the configuration of notebook 06). Every config trains on the
project's path, as ``train`` runs it (tensor batches, channels_last, fused Adam, the precision
``auto`` picks, the fast kernels where they pay), from the same initial weights, on the same
MNIST batches. The configs are timed interleaved (every config once, then again, ...) so that a
slow spell of a noisy machine hits all of them; the report gives each one's training images/s
(median, min, max), its minutes per 60k-image epoch and its ratio of time per epoch to the first.
Issue 17 asks that the configuration beyond the article cost at most twice the article's.

``--docs FILE`` writes the table (:func:`cost_markdown`) between ``<!-- cost:start -->`` and
``<!-- cost:end -->``. No timing is asserted anywhere; compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:        # run as `python benchmarks/cost.py`: import tools.*
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from vaeclust_tutorial import __version__, data  # noqa: E402
from vaeclust_tutorial.cli import build_parser, config_from_args  # noqa: E402
from vaeclust_tutorial.config import PRECISIONS, TrainConfig, config_label, is_quick, quick_banner  # noqa: E402
from vaeclust_tutorial.kernels import fast_kernels_pay, use_fast_kernels  # noqa: E402
from vaeclust_tutorial.models import build_model  # noqa: E402
from vaeclust_tutorial.runtime import cpu_model, resolve_device, resolve_precision  # noqa: E402
from vaeclust_tutorial.training import MEMORY_FORMAT, make_optimizer, make_teacher, train_step  # noqa: E402

BEYOND = "beyond"   # the preset: article-b with the two ingredients of notebook 06
DEFAULT_CONFIGS = ("article-b", BEYOND)
EPOCH_IMAGES = 60000


def parse_config(text: str) -> TrainConfig:
    """``PRESET(+NAME=VALUE|+no-FLAG)*`` -> the config ``train`` would build (as ``tools/sweep.py``)."""
    from tools.sweep import parse_spec

    if ":" in text:
        raise ValueError(f"config {text!r}: write only the CONFIG part of a sweep spec, "
                         f"e.g. article-b+cat-weight=0+info-weight=5")
    spec = parse_spec(f"mnist:{text}:0")[0]
    if any(o.startswith("--cluster-init") for o in spec.options):
        raise ValueError(f"config {text!r}: a k-means start costs one k-means, not a different step; "
                         f"leave +kmeans-eN out")
    return config_from_args(build_parser().parse_args(
        ["train", "--dataset", "mnist", "--out", "-", "--config", spec.config, "--epochs", "1000", *spec.options]), quick=False)


class _Runner:
    """One config's model, optimiser and precision, started from the shared initial weights."""

    def __init__(self, cfg: TrainConfig, device, state, precision: str = "auto"):
        self.cfg, self.device = cfg, device
        self.dtype = resolve_precision(precision, device)
        self.model = build_model(cfg)
        self.model.load_state_dict(state)
        self.model.to(device).to(memory_format=MEMORY_FORMAT)
        if fast_kernels_pay(device, self.dtype):
            use_fast_kernels(self.model)
        self.optimizer = make_optimizer(self.model, cfg, device)
        # the weights' moving average, updated after every step as in training (cfg.teacher_decay)
        self.teacher = make_teacher(self.model, cfg.teacher_decay) if cfg.teacher_decay else None

    def images_per_second(self, batches: list[torch.Tensor]) -> float:
        self.model.train()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t0 = time.perf_counter()
        for xb in batches:
            train_step(self.model, self.optimizer, xb, self.cfg, self.device, self.dtype, teacher=self.teacher)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return sum(len(xb) for xb in batches) / (time.perf_counter() - t0)


def run_cost(configs=DEFAULT_CONFIGS, repeats: int = 5, steps: int = 30, device: str = "auto",
             seed: int = 0, log=None, precision: str = "auto") -> dict:
    """Interleaved timing of one training step per config; returns the report (module docstring)."""
    quick = is_quick()
    if quick:
        repeats, steps = 1, 2
    cfgs = [parse_config(c) for c in configs]
    networks = {c.network for c in cfgs}
    if len(networks) != 1:
        raise ValueError(f"the configs use different networks {sorted(networks)}: compare configs of one network")
    device = resolve_device(device)
    x = data.load("mnist", "train", limit=steps * cfgs[0].batch_size).images.to(device)
    x = x.contiguous(memory_format=MEMORY_FORMAT)
    batches = list(x.split(cfgs[0].batch_size))
    torch.manual_seed(seed)
    state = build_model(cfgs[0]).state_dict()
    runners = [_Runner(c, device, state, precision) for c in cfgs]
    for r in runners:                       # warm-up: allocations and kernel selection, not timed
        r.images_per_second(batches[:2])
    ips = {config_label(c): [] for c in cfgs}
    for i in range(repeats):
        for name, r in zip(ips, runners):
            torch.manual_seed(seed + i)     # the same moves for every config in a repeat
            ips[name].append(r.images_per_second(batches))
        if log is not None:
            log(f"repeat {i + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in ips.items())
                + " training images/s")
    ref = statistics.median(next(iter(ips.values())))
    return {
        "quick": quick, "steps_per_repeat": steps, "repeats": repeats,
        "precision": "bf16" if runners[0].dtype == torch.bfloat16 else "fp32",
        "configs": {name: {"images_per_second": {"median": statistics.median(v), "min": min(v), "max": max(v),
                                                 "n": len(v)},
                           "minutes_per_epoch": EPOCH_IMAGES / statistics.median(v) / 60,
                           "time_ratio_to_first": ref / statistics.median(v)}
                    for name, v in ips.items()},
        "machine": {"device": str(device),
                    "processor": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
                    "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version(), "package": __version__},
    }


def cost_markdown(report: dict, source=None) -> str:
    """The cost table of docs/speed.md for one report (``source``: its file's name)."""
    m = report["machine"]
    machine = m["processor"] if m["device"].startswith("cuda") else f"{m['processor']}, {m['threads']} threads"
    lines = [f"Machine: {machine}, torch {m['torch']}, {report['precision']}; {report['repeats']} interleaved "
             f"repeats of {report['steps_per_repeat']} steps" + (f"; raw report `{source}`" if source else "") + ".",
             "", "| config | training images/s, median (min–max) | minutes per epoch | time per epoch × first |",
             "|---|---|---|---|"]
    for name, c in report["configs"].items():
        s = c["images_per_second"]
        lines.append(f"| `{name}` | {s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f}) "
                     f"| {c['minutes_per_epoch']:.2f} | ×{c['time_ratio_to_first']:.2f} |")
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv=None) -> int:
    from benchmarks.bench import report_name
    from tools.markers import read_between_markers, replace_between_markers
    from vaeclust_tutorial.files import atomic_write_bytes

    p = argparse.ArgumentParser(prog="python benchmarks/cost.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="*", default=list(DEFAULT_CONFIGS),
                   help=f"configs to time, the first is the reference (default: {' '.join(DEFAULT_CONFIGS)})")
    p.add_argument("--repeats", type=_positive_int, default=5, help="interleaved repeats (default 5)")
    p.add_argument("--steps", type=_positive_int, default=30, help="training steps per repeat (default 30)")
    p.add_argument("--out", type=Path, help="JSON report to write (default: print only)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="as train's --precision (default auto: bf16 on a CPU with native bf16, else fp32)")
    p.add_argument("--docs", type=Path, help="also write the table into this file (docs/speed.md) "
                                             "between <!-- cost:start --> and <!-- cost:end -->")
    args = p.parse_args(argv)
    if is_quick():
        print(quick_banner(), file=sys.stderr)
    try:
        # the checks a typo would fail, before minutes of timing
        if len(args.configs) < 2:
            raise ValueError("give at least two configs: the reference first, then what to compare with it")
        for c in args.configs:
            parse_config(c)
        if args.out is not None and not args.out.parent.is_dir():
            raise ValueError(f"--out {args.out}: folder {args.out.parent} does not exist")
        if args.docs is not None:
            read_between_markers(args.docs, "cost")
        report = run_cost(args.configs, repeats=args.repeats, steps=args.steps, device=args.device,
                          log=lambda line: print(line, file=sys.stderr), precision=args.precision)
        text = json.dumps(report, indent=2)
        if args.out is not None:
            atomic_write_bytes(args.out, (text + "\n").encode())
        if args.docs is not None:
            source = report_name(args.out) if args.out is not None else None
            replace_between_markers(args.docs, "cost", cost_markdown(report, source))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
