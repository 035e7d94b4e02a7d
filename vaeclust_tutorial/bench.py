"""Speed benchmark: this project's training path against a naive tutorial-style reference.

``python -m vaeclust_tutorial bench --out bench.json``. Both paths train the same
model with the same loss; they differ only in how data and memory are handled:

* **reference**: ``torchvision.datasets.MNIST`` + ``ToTensor`` + ``DataLoader``
  (batch 100, shuffled), fp32, NCHW tensors, evaluation in batches of 100 under
  ``no_grad`` - the way most tutorials write it;
* **project**: the whole split as one tensor on the device, a seeded permutation
  sliced into batches, channels_last memory format, evaluation in batches of 2000
  under ``inference_mode`` (what :func:`~vaeclust_tutorial.train.train` does).

Measurements are interleaved (reference, project, reference, ...) and repeated;
the report gives medians with min and max, their ratio, and the achieved
GFLOP/s beside a measured matrix-multiply peak of the same machine. No timing
is asserted anywhere: the machines are noisy; compare the ratios of one run.
"""

from __future__ import annotations

import platform
import statistics
import time

import torch

from . import __version__, data
from .config import is_quick, preset
from .losses import cluster_vae_loss
from .models import build_model, multiply_adds
from .train import MEMORY_FORMAT, predict, resolve_device


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_steps(model, batches, device, steps: int, lam: float) -> float:
    """Seconds for ``steps`` optimiser steps over the iterator ``batches``."""
    opt = torch.optim.Adam(model.parameters(), eps=1e-7)
    model.train()
    _sync(device)
    t0 = time.perf_counter()
    for _, xb in zip(range(steps), batches):
        out = model(xb)
        loss = cluster_vae_loss(xb, out, model.means, lam=lam).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - t0


def _reference_batches(root, device):
    import torchvision
    from torch.utils.data import DataLoader
    ds = torchvision.datasets.MNIST(root, train=True, download=False,
                                    transform=torchvision.transforms.ToTensor())
    while True:
        for xb, _ in DataLoader(ds, batch_size=100, shuffle=True):
            yield xb.to(device)


def _project_batches(x, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(len(x), generator=g).to(device)
        for i in range(0, len(x) - 99, 100):
            yield x[perm[i:i + 100]]


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
    return time.perf_counter() - t0


def _project_eval(model, x, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    predict(model, x)
    _sync(device)
    return time.perf_counter() - t0


def matmul_peak_gflops(device, n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of an n x n matrix multiply: the practical peak of this machine."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def _stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def run_benchmark(config: str = "article-b", repeats: int = 3, steps: int = 30, device: str = "auto",
                  seed: int = 0) -> dict:
    """Interleaved timing of both paths; returns the report (see module docstring)."""
    if is_quick():
        repeats, steps = 1, 3
    device = resolve_device(device)
    root = data.prepare("mnist", log=lambda *_: None).parent.parent
    eval_n = 1000 if is_quick() else 10000
    train_split = data.load("mnist", "train", limit=2000 if is_quick() else None)
    test_split = data.load("mnist", "test", limit=eval_n)
    cfg = preset(config)
    torch.manual_seed(seed)
    ref_model = build_model(cfg).to(device)
    proj_model = build_model(cfg).to(device, memory_format=MEMORY_FORMAT)
    x_train = train_split.images.to(device, memory_format=MEMORY_FORMAT)
    x_test = test_split.images.to(device, memory_format=MEMORY_FORMAT)
    ref_batches, proj_batches = _reference_batches(root, device), _project_batches(x_train, device)
    # warm-up: one-time allocations and kernel selection, not timed
    _train_steps(ref_model, ref_batches, device, 2, cfg.lam)
    _train_steps(proj_model, proj_batches, device, 2, cfg.lam)
    timings = {k: [] for k in ("reference_train", "project_train", "reference_eval", "project_eval")}
    for _ in range(repeats):
        timings["reference_train"].append(steps * 100 / _train_steps(ref_model, ref_batches, device, steps, cfg.lam))
        timings["project_train"].append(steps * 100 / _train_steps(proj_model, proj_batches, device, steps, cfg.lam))
        timings["reference_eval"].append(eval_n / _reference_eval(ref_model, root, device, eval_n))
        timings["project_eval"].append(eval_n / _project_eval(proj_model, x_test, device))
    macs = multiply_adds(proj_model)
    train_flop = 3 * 2 * macs   # forward + backward (about twice the forward)
    peak = matmul_peak_gflops(device)
    report = {
        "config": config, "quick": is_quick(), "steps_per_repeat": steps, "repeats": repeats,
        "images_per_second": {k: _stats(v) for k, v in timings.items()},
        "train_speedup": statistics.median(timings["project_train"]) / statistics.median(timings["reference_train"]),
        "eval_speedup": statistics.median(timings["project_eval"]) / statistics.median(timings["reference_eval"]),
        "forward_mflop_per_image": 2 * macs / 1e6,
        "train_gflops": {k: statistics.median(timings[f"{k}_train"]) * train_flop / 1e9
                         for k in ("reference", "project")},
        "matmul_peak_gflops_fp32": peak,
        "minutes_per_50_epochs": {k: 50 * 60000 / statistics.median(timings[f"{k}_train"]) / 60
                                  for k in ("reference", "project")},
        "eval_seconds_10k": 10000 / statistics.median(timings["project_eval"]),
        "machine": {"device": str(device), "processor": platform.processor() or platform.machine(),
                    "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                    "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "package": __version__},
    }
    return report


def speed_markdown(report: dict, source=None) -> str:
    """The README's speed table for one benchmark report."""
    ips, m = report["images_per_second"], report["machine"]
    machine = m["cuda"] or f"{m['processor']} CPU, {m['threads']} threads"
    row = lambda k: f"{ips[k]['median']:,.0f} ({ips[k]['min']:,.0f}–{ips[k]['max']:,.0f})"
    lines = [
        f"Machine: {machine}, torch {m['torch']}; config `{report['config']}`; "
        f"{report['repeats']} interleaved repeats of {report['steps_per_repeat']} steps"
        + (f"; raw report `{source}`" if source else "") + ".",
        "",
        "| path | training images/s, median (min–max) | evaluation images/s | minutes per 50 epochs | GFLOP/s (training) |",
        "|---|---|---|---|---|",
        f"| naive reference (DataLoader, NCHW, fp32) | {row('reference_train')} | {row('reference_eval')} "
        f"| {report['minutes_per_50_epochs']['reference']:.0f} | {report['train_gflops']['reference']:.0f} |",
        f"| this project | {row('project_train')} | {row('project_eval')} "
        f"| {report['minutes_per_50_epochs']['project']:.0f} | {report['train_gflops']['project']:.0f} |",
        "",
        f"Ratio project/reference: training ×{report['train_speedup']:.2f}, evaluation "
        f"×{report['eval_speedup']:.2f}. Evaluation of the 10k test images: "
        f"{report['eval_seconds_10k']:.2f} s. Matrix-multiply peak of the same machine (fp32): "
        f"{report['matmul_peak_gflops_fp32']:.0f} GFLOP/s.",
    ]
    return "\n".join(lines)
