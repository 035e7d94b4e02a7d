#!/usr/bin/env python3
"""Speed benchmark: this project's training path against a naive tutorial-style reference.

    python benchmarks/bench.py [--config article-b] [--repeats 3] [--steps 30] [--out FILE.json]
                               [--device auto] [--docs docs/speed.md]

Every path trains the same model (same parameters, same function) with the same loss; they
differ only in how the work is done. The **levers** are added one at a time, so each gets
its own number:

====================  =====================================================================
path                  adds
====================  =====================================================================
reference             torchvision ``MNIST`` + ``ToTensor`` + ``DataLoader`` (batch 100,
                      shuffled), NCHW, fp32, the model as built (plain PyTorch layers),
                      Adam's default per-tensor loop; evaluation in batches of 100 under
                      ``no_grad`` - the way most tutorials write it
+ tensor batches      the split held as one tensor, a seeded permutation sliced into batches
+ channels_last       NHWC memory format for the images and the conv weights
+ fast kernels        :func:`vaeclust_tutorial.kernels.use_fast_kernels` (sub-pixel transposed
                      convs, shifted-sum last conv)
+ fused Adam          one optimiser kernel for all parameters
+ bf16                bf16 autocast (fp32 weights and loss) where the CPU has AVX512-BF16
                      or AMX, or on a GPU with bf16; left out elsewhere
====================  =====================================================================

Where bf16 is used, one more path runs beside the levers for contrast (:data:`CONTRAST`):
bf16 with the plain layers, which shows what the fast kernels are for. The last row is the
project's path where training switches the fast kernels on (bf16 on a CPU,
:func:`~vaeclust_tutorial.kernels.fast_kernels_pay`); elsewhere training runs the plain layers. Training paths are
timed interleaved (every path once, then again, ...) and repeated: on a noisy machine a
slow spell then hits every path, not one. Evaluation (the reference's loop against
:func:`~vaeclust_tutorial.inference.predict`) and the matrix-multiply peaks (fp32 and bf16)
are timed with ``torch.utils.benchmark.Timer``. The report gives medians with min and max,
ratios to the reference, and the achieved GFLOP/s beside the peaks.

The **convolution ceiling** (:func:`conv_ceiling`) bounds what any rewrite above the
kernels can gain: every convolution call of one training step of the last path (forward
and backward, as the dispatcher sees them) is replayed on its own, on tensors of the same
shapes, strides and dtypes, each at its best of several rounds; the sum is a step's time if
every other operation were free, so ``batch / sum`` is an upper bound on images/s with
these convolution kernels.

``--docs FILE`` writes the table (:func:`speed_markdown`) into FILE between
``<!-- speed:start -->`` and ``<!-- speed:end -->``; ``speed-gpu`` for a GPU, with
``-<config>`` appended for a model other than article-b (:func:`docs_marker`).
No timing is asserted anywhere: the machines are noisy; compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:        # run as `python benchmarks/bench.py`: import tools.*
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils.benchmark import Timer  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode, flop_registry  # noqa: E402

from vaeclust_tutorial import __version__, data  # noqa: E402
from vaeclust_tutorial.config import PRESETS, is_quick, preset, quick_banner  # noqa: E402
from vaeclust_tutorial.inference import predict  # noqa: E402
from vaeclust_tutorial.kernels import use_fast_kernels  # noqa: E402
from vaeclust_tutorial.models import conv_cluster_vae  # noqa: E402
from vaeclust_tutorial.runtime import resolve_device, resolve_precision  # noqa: E402
from vaeclust_tutorial.training import MEMORY_FORMAT, make_optimizer, train_step  # noqa: E402


@dataclass(frozen=True)
class BenchPath:
    """One way of running the same training step (see the module docstring)."""
    name: str
    tensor_batches: bool = False
    channels_last: bool = False
    fast_kernels: bool = False
    fused_adam: bool = False
    bf16: bool = False


PATHS = (
    BenchPath("reference"),
    BenchPath("+ tensor batches", tensor_batches=True),
    BenchPath("+ channels_last", tensor_batches=True, channels_last=True),
    BenchPath("+ fast kernels", tensor_batches=True, channels_last=True, fast_kernels=True),
    BenchPath("+ fused Adam", tensor_batches=True, channels_last=True, fast_kernels=True, fused_adam=True),
    BenchPath("+ bf16", tensor_batches=True, channels_last=True, fast_kernels=True, fused_adam=True, bf16=True),
)

# Not a lever on top of the others: the bf16 row without the fast kernels, timed in the same loop.
CONTRAST = BenchPath("bf16, plain kernels", tensor_batches=True, channels_last=True, fused_adam=True, bf16=True)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timer(stmt: str, **names) -> Timer:
    # Timer runs on one thread unless told otherwise; the benchmark measures with all of them
    return Timer(stmt, globals=names, num_threads=torch.get_num_threads())


def _reference_batches(root, device):
    import torchvision
    from torch.utils.data import DataLoader
    ds = torchvision.datasets.MNIST(root, train=True, download=False,
                                    transform=torchvision.transforms.ToTensor())
    while True:
        for xb, _ in DataLoader(ds, batch_size=100, shuffle=True):
            yield xb.to(device)


def _tensor_batches(x, seed=0):
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(len(x), generator=g).to(x.device)
        for i in range(0, len(x) - 99, 100):
            yield x[perm[i:i + 100]]


class _Runner:
    """A model, its optimiser and its batch stream for one :class:`BenchPath`."""

    def __init__(self, path: BenchPath, cfg, device, x_train, root, state):
        self.path, self.cfg, self.device = path, cfg, device
        self.model = conv_cluster_vae(cfg.network)
        self.model.load_state_dict(state)          # every path starts from the same function
        if path.fast_kernels:
            use_fast_kernels(self.model)           # in place: same parameters, same state dict
        self.model.to(device)
        x = x_train
        if path.channels_last:
            self.model.to(memory_format=MEMORY_FORMAT)
            x = x.contiguous(memory_format=MEMORY_FORMAT)
        self.optimizer = make_optimizer(self.model, cfg, device) if path.fused_adam else \
            torch.optim.Adam(self.model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.dtype = resolve_precision("auto", device) if path.bf16 else torch.float32
        self.batches = _tensor_batches(x) if path.tensor_batches else _reference_batches(root, device)

    def step(self, xb=None):
        return train_step(self.model, self.optimizer, next(self.batches) if xb is None else xb,
                          self.cfg, self.device, self.dtype)

    def images_per_second(self, steps: int) -> float:
        self.model.train()
        _sync(self.device)
        t0 = time.perf_counter()
        for _, xb in zip(range(steps), self.batches):
            self.step(xb)
        _sync(self.device)
        return steps * 100 / (time.perf_counter() - t0)


def _stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def images_per_second(fn, images: int, min_run_time: float) -> dict:
    """Median, min and max images/s of ``fn()`` (which handles ``images`` images), over the
    replicates of ``Timer.blocked_autorange``."""
    m = _timer("fn()", fn=fn).blocked_autorange(min_run_time=min_run_time)
    return _stats([images / t for t in m.times])


def reference_eval(model, root, device, limit: int):
    """The tutorial's evaluation loop as a closure: DataLoader batches of 100 under ``no_grad``."""
    import torchvision
    from torch.utils.data import DataLoader, Subset
    ds = Subset(torchvision.datasets.MNIST(root, train=False, download=False,
                                           transform=torchvision.transforms.ToTensor()), range(limit))

    def run():
        model.eval()
        with torch.no_grad():
            for xb, _ in DataLoader(ds, batch_size=100):
                mu, _ = model.encoder(xb.to(device))
                model.classifier(mu).softmax(-1).argmax(1).cpu()
    return run


def matmul_peak_gflops(device, dtype=torch.float32, n: int = 2048, min_run_time: float = 0.5) -> float:
    """Best GFLOP/s of an n x n matrix multiply in ``dtype``: the practical peak of this machine."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    m = _timer("a @ b", a=a, b=b).blocked_autorange(min_run_time=min_run_time)
    return 2 * n ** 3 / min(m.times) / 1e9


def finite_check_seconds(runner: _Runner) -> float:
    """Median seconds of train's per-step NaN/Inf check (one host read of 4 numbers) on a real
    step's terms: on a CPU nearly free, on a GPU a synchronisation per step."""
    from vaeclust_tutorial.training import _check_finite
    terms = runner.step()
    return _timer("check(terms, 1, 1, None)", check=_check_finite, terms=terms).blocked_autorange().median


def forward_flop_per_image(model, device) -> float:
    """FLOPs of one image's forward pass, as ``torch.utils.flop_counter`` counts them."""
    x = torch.rand(2, 1, 28, 28, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    model.train()
    return counter.get_total_flops() / len(x)


_CONV_OPS = {torch.ops.aten.convolution.default: "forward",
             torch.ops.aten.convolution_backward.default: "backward"}


class _ConvRecorder(TorchDispatchMode):
    """Runs everything as usual and keeps each convolution call (op, args, kwargs) it sees: the
    calls below autograd, forward and backward, exactly as the kernels receive them."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _CONV_OPS:
            self.calls.append((func, args, kwargs))
        return func(*args, **kwargs)


def _like(value):
    """A fresh tensor with ``value``'s shape, strides and dtype (random), recursively; others as is."""
    if isinstance(value, torch.Tensor):
        out = torch.empty_strided(value.shape, value.stride(), dtype=value.dtype, device=value.device)
        return out.normal_() if out.is_floating_point() else out.copy_(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_like(v) for v in value)
    return value


def conv_ceiling(runner: _Runner, repeats: int = 5, calls: int = 10) -> dict:
    """The convolutions of one training step of ``runner``'s path, each replayed alone.

    Each round replays every call ``calls`` times (``Timer.timeit``, after its warm-up) on
    freshly allocated random tensors, in a new (seeded) order: a call's speed moves with its
    buffers' addresses and its neighbours (one stride-2 backward took 1.9 or 3.3 ms in one
    process), and its time is its best round. The sum is the step's time if every other
    operation took none and every convolution ran at its best, hence an upper bound on
    training images/s with these kernels (module docstring). FLOPs per call are
    ``torch.utils.flop_counter``'s formulas.
    """
    xb = next(runner.batches)
    with _ConvRecorder() as rec:
        runner.step(xb)
    replays = rec.calls
    flop = [flop_registry[func.overloadpacket](*args, **kwargs, out_val=func(*args, **kwargs))
            for func, args, kwargs in replays]
    times = [[] for _ in replays]
    order = list(range(len(replays)))
    rng = random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)                            # a new neighbour each round for every call
        for i in order:
            func, args, kwargs = replays[i]
            timer = _timer("func(*args, **kwargs)", func=func, args=_like(args), kwargs=kwargs)
            times[i].append(timer.timeit(calls).mean)  # fresh buffers each round: another alignment
    rows = []
    for (func, args, _), t, f in zip(replays, times, flop):
        backward = _CONV_OPS[func] == "backward"   # convolution_backward(grad_out, input, weight, ...)
        x, w = args[1:3] if backward else args[0:2]
        rows.append({"pass": _CONV_OPS[func], "input": list(x.shape), "weight": list(w.shape),
                     "ms": 1e3 * min(t), "gflops": f / min(t) / 1e9})
    step_ms = sum(r["ms"] for r in rows)
    return {"calls": rows, "rounds": repeats, "ms_per_step": step_ms,
            "images_per_second": len(xb) / (step_ms / 1e3),
            "gflop_per_step": sum(flop) / 1e9, "gflops": sum(flop) / 1e9 / (step_ms / 1e3)}


def run_benchmark(config: str = "article-b", repeats: int = 3, steps: int = 30, device: str = "auto",
                  seed: int = 0, log=None) -> dict:
    """Interleaved timing of every path of :data:`PATHS`; returns the report (module docstring)."""
    quick = is_quick()
    if quick:
        repeats, steps = 1, 3
    device = resolve_device(device)
    bf16 = resolve_precision("auto", device) == torch.bfloat16
    paths = [p for p in PATHS if bf16 or not p.bf16]
    root = data.prepare("mnist", log=lambda *_: None).parent.parent
    eval_n = 1000 if quick else 10000
    x_train = data.load("mnist", "train", limit=2000 if quick else None).images.to(device)
    x_test = data.load("mnist", "test", limit=eval_n).images.to(device, memory_format=MEMORY_FORMAT)
    cfg = preset(config)
    torch.manual_seed(seed)
    state = conv_cluster_vae(cfg.network).state_dict()
    runners = [_Runner(p, cfg, device, x_train, root, state) for p in paths]
    contrasts = [_Runner(CONTRAST, cfg, device, x_train, root, state)] if bf16 else []
    for r in runners + contrasts:     # warm-up: one-time allocations and kernel selection, not timed
        r.images_per_second(2)
    train = {p.name: [] for p in paths}
    contrast = {r.path.name: [] for r in contrasts}
    for i in range(repeats):
        for r in runners:
            train[r.path.name].append(r.images_per_second(steps))
        for r in contrasts:
            contrast[r.path.name].append(r.images_per_second(steps))
        if log is not None:
            log(f"repeat {i + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in train.items())
                + " training images/s")
    eval_time = 0.2 if quick else 3.0
    project = runners[-1]
    evals = {"reference": images_per_second(reference_eval(runners[0].model, root, device, eval_n),
                                            eval_n, eval_time),
             "project": images_per_second(lambda: predict(project.model, x_test), eval_n, eval_time)}
    check = finite_check_seconds(project)
    ceiling = conv_ceiling(project, repeats=1 if quick else 5, calls=2 if quick else 10)
    forward_flop = forward_flop_per_image(runners[0].model, device)
    train_flop = 3 * forward_flop   # forward + backward (about twice the forward)
    ref, proj = statistics.median(train[paths[0].name]), statistics.median(train[paths[-1].name])
    peak_time = 0.1 if quick else 1.0
    return {
        "config": config, "quick": quick, "steps_per_repeat": steps, "repeats": repeats,
        "project_precision": "bf16" if bf16 else "fp32",
        "train_images_per_second": {name: _stats(v) for name, v in train.items()},
        "train_ratio_to_reference": {name: statistics.median(v) / ref for name, v in train.items()},
        "contrast_images_per_second": {name: _stats(v) for name, v in contrast.items()},
        "eval_images_per_second": evals,
        "train_speedup": proj / ref,
        "eval_speedup": evals["project"]["median"] / evals["reference"]["median"],
        "forward_mflop_per_image": forward_flop / 1e6,
        "train_gflops": {name: statistics.median(v) * train_flop / 1e9 for name, v in train.items()},
        "matmul_peak_gflops": {"fp32": matmul_peak_gflops(device, min_run_time=peak_time),
                               **({"bf16": matmul_peak_gflops(device, torch.bfloat16, min_run_time=peak_time)}
                                  if bf16 else {})},
        "minutes_per_50_epochs": {name: 50 * 60000 / statistics.median(v) / 60 for name, v in train.items()},
        "eval_seconds_10k": 10000 / evals["project"]["median"],
        "finite_check_ms_per_step": check * 1e3,
        "finite_check_share_of_step": check / (100 / proj),
        "conv_ceiling": {**ceiling, "share_of_step": ceiling["ms_per_step"] / 1e3 / (100 / proj)},
        "machine": {"device": str(device), "processor": platform.processor() or platform.machine(),
                    "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                    "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "package": __version__},
    }


def docs_marker(report: dict) -> str:
    """The docs/speed.md block a report's table goes in: ``speed`` for a CPU, ``speed-gpu`` for a
    GPU, with ``-<config>`` appended for a model other than article-b (``speed-article-a``), so a
    GPU run or another model's run adds its table instead of replacing one."""
    marker = "speed-gpu" if report["machine"]["device"].startswith("cuda") else "speed"
    return marker if report["config"] == "article-b" else f"{marker}-{report['config']}"


def speed_markdown(report: dict, source=None) -> str:
    """The speed table of docs/speed.md for one benchmark report (``source``: its file's name)."""
    ips, m = report["train_images_per_second"], report["machine"]
    machine = m["cuda"] or f"{m['processor']} CPU, {m['threads']} threads"
    rng = lambda s: f"{s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f})"  # noqa: E731
    peaks = ", ".join(f"{k} {v:,.0f}" for k, v in report["matmul_peak_gflops"].items())
    lines = [
        f"Machine: {machine}, torch {m['torch']}; config `{report['config']}`; "
        f"{report['repeats']} interleaved repeats of {report['steps_per_repeat']} steps"
        + (f"; raw report `{source}`" if source else "") + ".",
        "",
        "| path (each row adds one lever) | training images/s, median (min–max) | × reference "
        "| minutes per 50 epochs | GFLOP/s |",
        "|---|---|---|---|---|",
    ]
    for name, stats in ips.items():
        lines.append(f"| {name} | {rng(stats)} | ×{report['train_ratio_to_reference'][name]:.2f} "
                     f"| {report['minutes_per_50_epochs'][name]:.1f} | {report['train_gflops'][name]:.0f} |")
    ev = report["eval_images_per_second"]
    lines += [
        "",
        f"The last row is this project's path (`--precision {'auto' if report['project_precision'] == 'bf16' else 'fp32'}`). "
        f"Evaluation, images/s: reference {rng(ev['reference'])}, project {rng(ev['project'])} "
        f"(×{report['eval_speedup']:.2f}); the 10k test images in {report['eval_seconds_10k']:.2f} s. "
        f"Model: {report['forward_mflop_per_image']:.1f} MFLOP per image forward, about 3× that per "
        f"training image. Matrix-multiply peak of the same machine, GFLOP/s: {peaks}. The per-step "
        f"NaN/Inf check (a host read) costs {report['finite_check_ms_per_step']:.3f} ms, "
        f"{100 * report['finite_check_share_of_step']:.2f} % of a step.",
    ]
    for name, stats in report.get("contrast_images_per_second", {}).items():
        lines += ["", f"For contrast, the `+ bf16` row without the `+ fast kernels` lever (`{name}`), "
                      f"timed in the same loop: {rng(stats)} training images/s, "
                      f"×{stats['median'] / ips[next(reversed(ips))]['median']:.2f} of the project's path."]
    if "conv_ceiling" in report:   # reports before the ceiling was measured have none
        c = report["conv_ceiling"]
        lines += [
            "",
            f"**Convolution ceiling**: the {len(c['calls'])} convolution calls of one training step "
            f"of the project's path (forward and backward), each replayed on its own at its best of "
            f"{c['rounds']} rounds, take "
            f"{c['ms_per_step']:.1f} ms, {100 * c['share_of_step']:.0f} % of the project's step; they do "
            f"{c['gflop_per_step']:.1f} GFLOP, so they run at {c['gflops']:.0f} GFLOP/s. However "
            f"the rest of the step is rewritten, these convolutions cap training at "
            f"**{c['images_per_second']:,.0f} images/s** (the rest taking no time at all).",
        ]
    return "\n".join(lines)


def report_name(path: Path) -> str:
    """How the docs name a report file: relative to the repository root when inside it."""
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv=None) -> int:
    from tools.markers import read_between_markers, replace_between_markers
    from vaeclust_tutorial.files import atomic_write_bytes

    p = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="article-b", choices=tuple(PRESETS), help="model to time")
    p.add_argument("--repeats", type=_positive_int, default=3, help="interleaved repeats (default 3)")
    p.add_argument("--steps", type=_positive_int, default=30, help="training steps per repeat (default 30)")
    p.add_argument("--out", type=Path, help="JSON report to write (default: print only)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--docs", type=Path, help="also write the speed table into this file (docs/speed.md) "
                                             "between <!-- speed:start --> and <!-- speed:end --> "
                                             "(speed-gpu for a GPU; -CONFIG appended for a model other "
                                             "than article-b, e.g. speed-article-a)")
    args = p.parse_args(argv)
    if is_quick():
        print(quick_banner(), file=sys.stderr)
    try:
        # the checks a typo would fail, before minutes of timing
        if args.out is not None and not args.out.parent.is_dir():
            raise ValueError(f"--out {args.out}: folder {args.out.parent} does not exist")
        if args.docs is not None:
            device = resolve_device(args.device)
            read_between_markers(args.docs, docs_marker({"machine": {"device": str(device)},
                                                         "config": args.config}))
        report = run_benchmark(config=args.config, repeats=args.repeats, steps=args.steps,
                               device=args.device, log=lambda line: print(line, file=sys.stderr))
        text = json.dumps(report, indent=2)
        if args.out is not None:
            atomic_write_bytes(args.out, (text + "\n").encode())
        if args.docs is not None:
            source = report_name(args.out) if args.out is not None else None
            replace_between_markers(args.docs, docs_marker(report), speed_markdown(report, source))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
