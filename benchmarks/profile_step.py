"""Where a training step's time goes: torch.profiler over the project's training path.

    .venv/bin/python benchmarks/profile_step.py --config article-b --steps 20

Trains ``--warmup`` steps, then profiles ``--steps`` more on the CPU with the project's path
(channels_last, the fast kernels where training uses them, fused Adam, ``--precision``, default auto) and prints the share of
each operator, then the top operators split by input shape. MNIST must be prepared
(``python -m vaeclust_tutorial prepare --dataset mnist``). Shares, not timings, are the point:
they move little from run to run, while the absolute times move with the machine's noise.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from vaeclust_tutorial import data, preset
from vaeclust_tutorial.kernels import fast_kernels_pay, use_fast_kernels
from vaeclust_tutorial.models import build_model
from vaeclust_tutorial.runtime import resolve_precision
from vaeclust_tutorial.training import MEMORY_FORMAT, make_optimizer, train_step


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="article-b", choices=("article-a", "article-b", "article-c"))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    p.add_argument("--rows", type=int, default=20)
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = preset(args.config, device="cpu", precision=args.precision)
    device = torch.device("cpu")
    dtype = resolve_precision(cfg.precision, device)
    model = build_model(cfg)
    if fast_kernels_pay(device, dtype):     # as training does
        use_fast_kernels(model)
    model.to(memory_format=MEMORY_FORMAT)
    optimizer = make_optimizer(model, cfg, device)
    bs = cfg.batch_size
    n = (args.warmup + args.steps) * bs
    x = data.load("mnist", "train", limit=n).images.contiguous(memory_format=MEMORY_FORMAT)

    def steps(first: int, count: int) -> None:
        for i in range(first, first + count):
            train_step(model, optimizer, x[i * bs:(i + 1) * bs], cfg, device, dtype)

    steps(0, args.warmup)
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        steps(args.warmup, args.steps)
    seconds = time.perf_counter() - t0
    print(f"{args.config}, {str(dtype).replace('torch.', '')}, {args.threads} threads, batch {bs}: "
          f"{args.steps} profiled steps in {seconds:.2f} s ({args.steps * bs / seconds:,.0f} images/s "
          f"under the profiler, which slows them)\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    print(prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=30, max_shapes_column_width=80))


if __name__ == "__main__":
    main()
