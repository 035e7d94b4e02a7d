"""Speed benchmark: this project's training path against a naive tutorial-style reference.

``python -m vaeclust_tutorial bench --out bench.json``. Every path trains the same
model (same parameters, same function) with the same loss; they differ only in how
the work is done. The **levers** are added one at a time, so each gets its own number:

====================  =====================================================================
path                  adds
====================  =====================================================================
reference             torchvision ``MNIST`` + ``ToTensor`` + ``DataLoader`` (batch 100,
                      shuffled), NCHW, fp32, ``nn.ConvTranspose2d`` decoder
                      (``kernels="plain"``), Adam's default per-tensor loop; evaluation
                      in batches of 100 under ``no_grad`` - the way most tutorials write it
+ tensor batches      the split held as one tensor, a seeded permutation sliced into batches
+ channels_last       NHWC memory format for the images and the conv weights
+ fast kernels        sub-pixel transposed convs, shifted-sum last conv (models.py)
+ fused Adam          one optimiser kernel for all parameters
+ bf16                bf16 autocast (fp32 weights and loss) where the CPU has AVX512-BF16
                      or AMX, or on a GPU with bf16; left out elsewhere
====================  =====================================================================

The last row is the project's path, :func:`~vaeclust_tutorial.train.train_step` with
``--precision auto``. Where bf16 is used, one more path runs beside the levers for contrast
(:data:`CONTRAST`): bf16 with the plain kernels, which shows what the fast kernels are for.
Evaluation: the reference's loop against :func:`~vaeclust_tutorial.train.predict` (batches
of ``EVAL_BATCH`` under ``inference_mode``, fp32).

Measurements are interleaved (every path once, then again, ...) and repeated; the
report gives medians with min and max, ratios to the reference, and the achieved
GFLOP/s beside measured matrix-multiply peaks (fp32 and bf16) of the same machine.

The **convolution ceiling** (:func:`conv_ceiling`) bounds what any rewrite above the
kernels can gain: every convolution call of one training step of the project's path
(forward and backward, as the dispatcher sees them) is replayed on its own, on tensors
of the same shapes, strides and dtypes, each at its best of several rounds; the sum is a
step's time if every other operation were free, so ``batch / sum`` is an upper bound on
images/s with these convolution kernels.

No timing is asserted anywhere: the machines are noisy; compare the ratios of one run.
"""

from __future__ import annotations

import platform
import random
import statistics
import time
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from . import __version__, data
from .config import is_quick, preset
from .models import conv_cluster_vae, multiply_adds, plain_state_dict
from .train import MEMORY_FORMAT, make_optimizer, predict, resolve_device, resolve_precision, train_step


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
        self.model = conv_cluster_vae(cfg.model, kernels="fast" if path.fast_kernels else "plain").to(device)
        # the plain decoder stores its stride-1 kernels transposed; start from the same function
        self.model.load_state_dict(state if path.fast_kernels else plain_state_dict(state, self.model))
        x = x_train
        if path.channels_last:
            self.model.to(memory_format=MEMORY_FORMAT)
            x = x.contiguous(memory_format=MEMORY_FORMAT)
        self.optimizer = make_optimizer(self.model, cfg, device) if path.fused_adam else \
            torch.optim.Adam(self.model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.dtype = resolve_precision("auto", device) if path.bf16 else torch.float32
        self.batches = _tensor_batches(x) if path.tensor_batches else _reference_batches(root, device)

    def images_per_second(self, steps: int) -> float:
        self.model.train()
        _sync(self.device)
        t0 = time.perf_counter()
        for _, xb in zip(range(steps), self.batches):
            train_step(self.model, self.optimizer, xb, self.cfg, self.device, self.dtype)
        _sync(self.device)
        return steps * 100 / (time.perf_counter() - t0)


def _reference_eval(model, root, device, limit) -> float:
    import torchvision
    from torch.utils.data import DataLoader, Subset
    ds = torchvision.datasets.MNIST(root, train=False, download=False,
                                    transform=torchvision.transforms.ToTensor())
    ds = Subset(ds, range(limit))
    model.eval()
    _sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for xb, _ in DataLoader(ds, batch_size=100):
            mu, _ = model.encoder(xb.to(device))
            model.classifier(mu).softmax(-1).argmax(1).cpu()
    _sync(device)
    return limit / (time.perf_counter() - t0)


def _project_eval(model, x, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    predict(model, x)
    _sync(device)
    return len(x) / (time.perf_counter() - t0)


def matmul_peak_gflops(device, dtype=torch.float32, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an n x n matrix multiply in ``dtype``: the practical peak of this machine."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def finite_check_seconds(runner: _Runner, calls: int = 200) -> float:
    """Median seconds of train's per-step NaN/Inf check (one host read of 4 numbers) on a real step's
    terms: on a CPU nearly free, on a GPU a synchronisation per step."""
    from .train import _check_finite
    x = next(runner.batches)
    terms = train_step(runner.model, runner.optimizer, x, runner.cfg, runner.device, runner.dtype)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        _check_finite(terms, 1, 1, None)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


_CONV_OPS = {torch.ops.aten.convolution.default: "forward",
             torch.ops.aten.convolution_backward.default: "backward"}


class _ConvRecorder(TorchDispatchMode):
    """Runs everything as usual and keeps each convolution call (op, args) it sees: the calls
    below autograd, forward and backward, exactly as the kernels receive them."""

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


def _conv_flop(func, args, out) -> float:
    """Multiply-adds x 2 of one recorded convolution call: the forward's, once per gradient computed."""
    if _CONV_OPS[func] == "forward":
        x, w, transposed, grads = args[0], args[1], args[6], 1
        y = out
    else:                    # convolution_backward(grad_out, input, weight, ..., transposed, ..., mask)
        y, x, w, transposed, mask = args[0], args[1], args[2], args[7], args[10]
        grads = int(mask[0]) + int(mask[1])
    taps = w.shape[2] * w.shape[3]
    if transposed:           # weight (C_in, C_out/groups, kh, kw): every input pixel meets every tap
        return 2.0 * x.numel() * w.shape[1] * taps * grads
    return 2.0 * y.numel() * w.shape[1] * taps * grads   # weight (C_out, C_in/groups, kh, kw)


def conv_ceiling(runner: _Runner, repeats: int = 5, calls: int = 10) -> dict:
    """The convolutions of one training step of ``runner``'s path, each replayed alone.

    Each round replays every call ``calls`` times on freshly allocated random tensors, in a
    new (seeded) order: a call's speed moves with its buffers' addresses and its neighbours
    (one stride-2 backward took 1.9 or 3.3 ms in one process), and its time is its best
    round. The sum is the step's time if every other operation took none and every
    convolution ran at its best, hence an upper bound on training images/s with these
    kernels (module docstring).
    """
    xb = next(runner.batches)
    with _ConvRecorder() as rec:
        train_step(runner.model, runner.optimizer, xb, runner.cfg, runner.device, runner.dtype)
    replays = rec.calls
    flop = [_conv_flop(func, args, func(*args, **kwargs)) for func, args, kwargs in replays]
    times = [[] for _ in replays]
    order = list(range(len(replays)))
    rng = random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)                            # a new neighbour each round for every call
        for i in order:
            func, args, kwargs = replays[i]
            args = _like(args)                        # fresh buffers each round: another alignment
            func(*args, **kwargs)                     # warm: kernel selection, caches
            _sync(runner.device)
            t0 = time.perf_counter()
            for _ in range(calls):
                func(*args, **kwargs)
            _sync(runner.device)
            times[i].append((time.perf_counter() - t0) / calls)
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


def _stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def run_benchmark(config: str = "article-b", repeats: int = 3, steps: int = 30, device: str = "auto",
                  seed: int = 0, log=None) -> dict:
    """Interleaved timing of every path of :data:`PATHS`; returns the report (module docstring)."""
    if is_quick():
        repeats, steps = 1, 3
    device = resolve_device(device)
    bf16 = resolve_precision("auto", device) == torch.bfloat16
    paths = [p for p in PATHS if bf16 or not p.bf16]
    root = data.prepare("mnist", log=lambda *_: None).parent.parent
    eval_n = 1000 if is_quick() else 10000
    x_train = data.load("mnist", "train", limit=2000 if is_quick() else None).images.to(device)
    x_test = data.load("mnist", "test", limit=eval_n).images.to(device, memory_format=MEMORY_FORMAT)
    cfg = preset(config)
    torch.manual_seed(seed)
    state = conv_cluster_vae(config).state_dict()
    runners = [_Runner(p, cfg, device, x_train, root, state) for p in paths]
    contrasts = [_Runner(CONTRAST, cfg, device, x_train, root, state)] if bf16 else []
    for r in runners + contrasts:     # warm-up: one-time allocations and kernel selection, not timed
        r.images_per_second(2)
    train = {p.name: [] for p in paths}
    contrast = {r.path.name: [] for r in contrasts}
    evals = {"reference": [], "project": []}
    for i in range(repeats):
        for r in runners:
            train[r.path.name].append(r.images_per_second(steps))
        for r in contrasts:
            contrast[r.path.name].append(r.images_per_second(steps))
        evals["reference"].append(_reference_eval(runners[0].model, root, device, eval_n))
        evals["project"].append(_project_eval(runners[-1].model, x_test, device))
        if log is not None:
            log(f"repeat {i + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in train.items())
                + " training images/s")
    check = finite_check_seconds(runners[-1])
    ceiling = conv_ceiling(runners[-1], repeats=1 if is_quick() else 5, calls=2 if is_quick() else 10)
    macs = multiply_adds(runners[-1].model)
    train_flop = 3 * 2 * macs   # forward + backward (about twice the forward)
    ref, proj = statistics.median(train[paths[0].name]), statistics.median(train[paths[-1].name])
    report = {
        "config": config, "quick": is_quick(), "steps_per_repeat": steps, "repeats": repeats,
        "project_precision": "bf16" if bf16 else "fp32",
        "train_images_per_second": {name: _stats(v) for name, v in train.items()},
        "train_ratio_to_reference": {name: statistics.median(v) / ref for name, v in train.items()},
        "contrast_images_per_second": {name: _stats(v) for name, v in contrast.items()},
        "eval_images_per_second": {k: _stats(v) for k, v in evals.items()},
        "train_speedup": proj / ref,
        "eval_speedup": statistics.median(evals["project"]) / statistics.median(evals["reference"]),
        "forward_mflop_per_image": 2 * macs / 1e6,
        "train_gflops": {name: statistics.median(v) * train_flop / 1e9 for name, v in train.items()},
        "matmul_peak_gflops": {"fp32": matmul_peak_gflops(device),
                               **({"bf16": matmul_peak_gflops(device, torch.bfloat16)} if bf16 else {})},
        "minutes_per_50_epochs": {name: 50 * 60000 / statistics.median(v) / 60 for name, v in train.items()},
        "eval_seconds_10k": 10000 / statistics.median(evals["project"]),
        "finite_check_ms_per_step": check * 1e3,
        "finite_check_share_of_step": check / (100 / proj),
        "conv_ceiling": {**ceiling, "share_of_step": ceiling["ms_per_step"] / 1e3 / (100 / proj)},
        "machine": {"device": str(device), "processor": platform.processor() or platform.machine(),
                    "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                    "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "package": __version__},
    }
    return report


def readme_marker(report: dict) -> str:
    """The README block a report's table goes in: ``speed`` for a CPU, ``speed-gpu`` for a GPU,
    with ``-<config>`` appended for a model other than article-b (``speed-article-a``), so a
    GPU run or another model's run of ``bench --readme`` adds its table instead of replacing one."""
    marker = "speed-gpu" if report["machine"]["device"].startswith("cuda") else "speed"
    return marker if report["config"] == "article-b" else f"{marker}-{report['config']}"


def speed_markdown(report: dict, source=None) -> str:
    """The README's speed table for one benchmark report."""
    ips, m = report["train_images_per_second"], report["machine"]
    machine = m["cuda"] or f"{m['processor']} CPU, {m['threads']} threads"
    rng = lambda s: f"{s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f})"
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
