#!/usr/bin/env python3
"""The two-step baseline on images, at the one-step model's budget, over seeds.

    python tools/two_step.py mnist --seeds 0-4 [--epochs 50] [--network article-b] [--lam 5]
                             [--device auto] [--out results/two-step]

For each seed: a plain VAE with the network of the article's script (``models.conv_vae``) trained
on the training split for ``--epochs`` epochs, with the article's batch, lambda and optimiser
(``baselines.train_vae``); then k-means (best of 10 starts) and a full-covariance Gaussian
mixture on the latent means of the test split (``baselines.two_step_scores``), scored like the
one-step runs. Writes ``OUT/<dataset>-<network>-vae<epochs>-lam<lambda>-seed<N>.json`` (scores,
per-epoch losses, device, commit, the command). A seed whose file exists (from a run in the same
mode, quick or not) is skipped, so a stopped sweep carries on. Notebook 05 (section 6) compares these with the one-step runs of ``results/``; the
files live in a subfolder so that ``results.load_results`` does not take them for one-step runs.
In quick mode (``VAECLUST_QUICK=1``) it trains on a subset and marks the files ``quick``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:        # run as `python tools/two_step.py`
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from tools.sweep import parse_seeds  # noqa: E402
from vaeclust_tutorial import data  # noqa: E402
from vaeclust_tutorial.baselines import latent_means, train_vae, two_step_scores  # noqa: E402
from vaeclust_tutorial.config import ARCHITECTURES, DATASETS, PRESETS, QUICK_TEST, QUICK_TRAIN, is_quick  # noqa: E402
from vaeclust_tutorial.files import atomic_write_json  # noqa: E402
from vaeclust_tutorial.models import conv_vae  # noqa: E402
from vaeclust_tutorial.runtime import device_description, git_commit, resolve_device  # noqa: E402


def run_seed(dataset: str, network: str, seed: int, epochs: int, lam: float, device: str, out: Path,
             command: str, log=print) -> Path:
    path = out / f"{dataset}-{network}-vae{epochs}-lam{lam:g}-seed{seed}.json"
    quick = is_quick()
    if path.exists() and json.loads(path.read_text()).get("quick") == quick:
        log(f"{path.name}: done earlier, skipped")
        return path
    dev = resolve_device(device)
    train = data.load(dataset, "train", limit=QUICK_TRAIN if quick else None)
    test = data.load(dataset, "test", limit=QUICK_TEST if quick else None)
    start = time.perf_counter()
    torch.manual_seed(seed)                   # the weights follow the seed, whatever ran before
    model = conv_vae(network).to(dev)
    history = train_vae(model, train.images.to(dev), epochs=epochs, lam=lam, seed=seed)
    mu = latent_means(model, test.images.to(dev))
    scores = {name: s for name, (s, _) in two_step_scores(mu, test.labels, n_clusters=10, seed=seed).items()}
    atomic_write_json(path, {
        "dataset": dataset, "network": network, "seed": seed, "epochs": epochs, "lam": lam,
        "test": scores, "history": history, "wall_seconds": round(time.perf_counter() - start, 1),
        "device": device_description(dev), "git_commit": git_commit(), "quick": quick, "command": command})
    log(f"{path.name}: " + "; ".join(f"{name} Hungarian {s['accuracy']:.3f} purity {s['purity']:.3f}"
                                     for name, s in scores.items()))
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/two_step.py", description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--seeds", default="0-4", help="e.g. 3, 0-4 or 0,2,5 (default 0-4)")
    p.add_argument("--epochs", type=int, default=50, help="the one-step runs' budget (default 50)")
    p.add_argument("--network", default="article-b", choices=tuple(ARCHITECTURES))
    p.add_argument("--lam", type=float, default=None, help="lambda of eq. (1) (default: the network's preset, 5 or 2.5)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(ROOT / "results" / "two-step"))
    args = p.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
        if args.epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lam = PRESETS[args.network]["lam"] if args.lam is None else args.lam
    command = "python tools/two_step.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for seed in seeds:
        run_seed(args.dataset, args.network, seed, args.epochs, lam, args.device, out, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
