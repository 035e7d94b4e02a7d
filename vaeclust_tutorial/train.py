"""Training and evaluation of the clustering VAE from a :class:`~vaeclust_tutorial.config.TrainConfig`.

Introduced in notebook 03. Nothing here is specific to a dataset: the whole split
is held as one tensor on the device, each epoch draws a seeded permutation, and
batches are slices of it (no per-sample Python work, no DataLoader).

A run with an output folder writes, after every epoch and atomically,
``checkpoint.pt`` (model, optimizer, config, epoch, history, RNG states, package
version) and ``history.json``; at the end ``metrics.json``. ``resume=True``
continues from the last complete epoch and, on the same machine, ends with the
same numbers as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import __version__, checkpoint, data
from .cluster_init import kmeans_init_
from .config import TrainConfig, is_quick, progress_wanted, quick_banner
from .io import atomic_write_json, check_output_dir
from .losses import TERM_NAMES, LossTerms, cluster_vae_loss
from .metrics import clustering_scores
from .models import EVAL_BATCH, ClusterVAE, build_model


# channels_last: x1.09-1.12 training images/s over NCHW for article-b on a 2-core AVX-512 CPU in fp32
# (`python -m vaeclust_tutorial bench`, README "Speed", one row per lever).
MEMORY_FORMAT = torch.channels_last


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the term."""


@dataclass
class TrainResult:
    model: ClusterVAE
    history: list = field(default_factory=list)   # one dict per epoch
    metrics: dict = field(default_factory=dict)   # final train/test scores (see ``final_metrics``)
    out_dir: Path | None = None


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; a clear error for a device that is not there."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; valid values are 'auto', 'cpu', 'cuda', 'cuda:N'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here; use --device cpu or auto")
    return device


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype for ``precision``: "fp32", "bf16", or "auto".

    "auto" is bf16 on a CPU with native bf16 instructions (AVX512-BF16 or AMX), where the
    benchmark measures about twice fp32's training speed with results within seed noise
    (README, "Speed"); fp32 everywhere else, GPUs included (not measured there; the GPU runs
    in ``results/`` are fp32). Weights, optimiser state and the loss stay fp32 in any case.
    """
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_bf16() else torch.float32


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam with the config's learning rate and epsilon; the fused kernel on CPUs and GPUs
    (one call for all parameters: 0.4 ms instead of 1.5 ms per article-b step on 2 cores).
    Same update as the per-tensor loop up to rounding (1 ulp)."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps,
                            fused=device.type in ("cpu", "cuda"))


def autocast(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@torch.inference_mode()
def predict(model: ClusterVAE, images: torch.Tensor, batch_size: int = EVAL_BATCH,
            return_codes: bool = False):
    """Cluster of every image: argmax_y p(y | mu(x)), as the author's script evaluates.

    ``images`` (N, 1, 28, 28) on any device; returns a numpy int64 array (N,), and with
    ``return_codes`` also mu (N, d) and p(y|mu) (N, K) as CPU tensors. Notebook 03.
    """
    model.eval()
    device = next(model.parameters()).device
    preds, mus, qs = [], [], []
    for i in range(0, len(images), batch_size):
        mu, q_y = model.encode(images[i:i + batch_size].to(device, non_blocking=True))
        preds.append(q_y.argmax(1))
        if return_codes:
            mus.append(mu.float().cpu())
            qs.append(q_y.cpu())
    pred = torch.cat(preds).cpu().numpy() if preds else np.zeros(0, dtype=np.int64)
    if return_codes:
        return pred, torch.cat(mus), torch.cat(qs)
    return pred


def evaluate(model: ClusterVAE, split: data.Split, batch_size: int = EVAL_BATCH) -> dict:
    """Purity, Hungarian accuracy, NMI, ARI and n_samples of ``model`` on ``split``. Notebook 03."""
    return clustering_scores(split.labels.numpy(), predict(model, split.images, batch_size))


def _rng_state(generator: torch.Generator, device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state(), "shuffle": generator.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, generator: torch.Generator, device: torch.device) -> None:
    # RNG states are CPU byte tensors; a checkpoint loaded with map_location="cuda" moved them.
    torch.set_rng_state(state["torch"].cpu())
    generator.set_state(state["shuffle"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def _run_dtype(state: dict, saved: TrainConfig, dtype: torch.dtype) -> torch.dtype:
    """The dtype a resumed run goes on in: the one it trained in. ``precision="auto"`` resolves
    per device (bf16 on this CPU, fp32 on a GPU), so a GPU run finished on a CPU would otherwise
    switch precision halfway. Checkpoints record it; for older ones it follows from an explicit
    saved device, and with ``device="auto"`` it is unknown and resolves here as before."""
    if "dtype" in state:
        return getattr(torch, state["dtype"])
    if saved.device != "auto":
        return resolve_precision(saved.precision, torch.device(saved.device))
    return dtype


def _note_device(devices: list, description: str, epoch: int) -> None:
    """Extend ``devices`` ([description, first epoch, last epoch] spans) with one epoch."""
    if devices and devices[-1][0] == description:
        devices[-1][2] = epoch
    else:
        devices.append([description, epoch, epoch])


def _check_finite(terms, epoch: int, step: int, ckpt_path) -> None:
    values = torch.stack([t.detach().float() for t in terms])
    if bool(torch.isfinite(values).all()):
        return
    names = ("total",) + TERM_NAMES
    bad = ", ".join(f"{n}={v:.4g}" for n, v in zip(names, values.tolist()) if not math.isfinite(v))
    kept = (f"the last good checkpoint {ckpt_path} is kept intact"
            if ckpt_path is not None and Path(ckpt_path).exists() else "no checkpoint had been written yet")
    raise NonFiniteLossError(
        f"non-finite loss at epoch {epoch}, step {step}: {bad}; training stopped and {kept}. "
        f"Try a smaller learning rate or lambda, or another seed.")


def train_step(model: ClusterVAE, optimizer, xb: torch.Tensor, cfg: TrainConfig, device: torch.device,
               dtype: torch.dtype, check=None) -> LossTerms:
    """One optimiser step on the batch ``xb``: forward (bf16 autocast when ``dtype`` is bf16; the
    loss is always fp32), ``check(terms)`` before any update, backward, Adam. Returns the terms."""
    with autocast(device, dtype):
        out = model(xb)
    terms = cluster_vae_loss(xb, out, model.means, lam=cfg.lam, estimator=cfg.estimator,
                             cat_weight=cfg.cat_weight)
    if check is not None:
        check(terms)
    optimizer.zero_grad(set_to_none=True)
    terms.total.backward()
    optimizer.step()
    return terms


def load_splits(cfg: TrainConfig, data_dir=None) -> tuple[data.Split, data.Split]:
    """The training and test splits of ``cfg.dataset``, cut to ``cfg.train_limit``/``test_limit``."""
    return (data.load(cfg.dataset, "train", data_dir, limit=cfg.train_limit),
            data.load(cfg.dataset, "test", data_dir, limit=cfg.test_limit))


def train(cfg: TrainConfig, out_dir: str | Path | None = None, *, resume: bool = False,
          progress: bool = True, splits: tuple | None = None, data_dir=None, log=print,
          model: ClusterVAE | None = None, on_epoch_end=None) -> TrainResult:
    """Train a :class:`ClusterVAE` on eq. (4) as the author's script does. Notebook 03.

    ``out_dir``: where checkpoints and metrics go (None keeps everything in memory).
    ``resume``: continue from ``out_dir/checkpoint.pt``; without it an existing
    checkpoint is an error, so two runs never mix in one folder.
    ``splits``: (train, test) :class:`~vaeclust_tutorial.data.Split` to use instead of loading.
    ``model``: a freshly built model to train instead of ``build_model(cfg)`` (the toy of notebook 02).
    ``on_epoch_end(epoch, model, entry)``: called after each epoch (snapshots for figures).
    """
    cfg = TrainConfig.from_dict(cfg.to_dict())  # validates, and decouples from the caller's object
    progress = progress_wanted(progress)
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    ckpt_path = None
    if out_dir is not None:
        out_dir = check_output_dir(out_dir)  # fail before any work if we cannot write
        ckpt_path = out_dir / "checkpoint.pt"
        if ckpt_path.exists() and not resume:
            raise FileExistsError(f"{ckpt_path} already exists: pass resume=True (--resume) to continue "
                                  f"that run, or choose another output folder")
    if is_quick():
        log(quick_banner())

    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    model = (model if model is not None else build_model(cfg)).to(device)
    train_split, test_split = splits if splits is not None else load_splits(cfg, data_dir)
    x_train = train_split.images.to(device)                    # (N, 1, 28, 28)
    if x_train.dim() == 4:                                     # images: channels_last (see MEMORY_FORMAT)
        model.to(memory_format=MEMORY_FORMAT)
        x_train = x_train.contiguous(memory_format=MEMORY_FORMAT)
    optimizer = make_optimizer(model, cfg, device)
    history, start_epoch, started_at, devices = [], 0, git_commit(), []
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = checkpoint.load(ckpt_path, map_location=device)
        saved = state["config"]
        if cfg.precision == "auto" and saved.precision != "auto":
            # a run started in fp32 (the default before "auto") finishes in fp32
            cfg = TrainConfig.from_dict({**cfg.to_dict(), "precision": saved.precision})
            dtype = resolve_precision(cfg.precision, device)
        # Only the number of epochs (to extend a finished run) and the device (to finish a GPU
        # run on a CPU, say) may change on resume; the compute dtype stays the run's.
        diff = {k: (v, getattr(cfg, k)) for k, v in saved.to_dict().items()
                if getattr(cfg, k) != v and k not in ("epochs", "device")}
        if diff:
            raise checkpoint.CheckpointError(
                f"{ckpt_path} was written with another configuration (checkpoint vs now: {diff}); "
                f"resume with the same options or use another output folder")
        if state["epoch"] > cfg.epochs:
            raise ValueError(f"{ckpt_path} has already trained {state['epoch']} epochs, more than "
                             f"epochs={cfg.epochs}; pass --epochs {state['epoch']} or more")
        dtype = _run_dtype(state, saved, dtype)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"], generator, device)
        history, start_epoch = list(state["history"]), int(state["epoch"])
        devices = [list(d) for d in state.get("devices", [])]
        if not devices and start_epoch and saved.device != "auto" and saved.device != cfg.device:
            devices = [[saved.device, 1, start_epoch]]    # a checkpoint from before "devices" existed
        if saved.device != cfg.device:
            log(f"{ckpt_path}: trained on {saved.device!r} so far, resuming on {cfg.device!r} "
                f"in {str(dtype).replace('torch.', '')}")
        started_at = state.get("git_commit_start", started_at)
        done = out_dir / "metrics.json"
        if start_epoch == cfg.epochs and done.exists():
            # A finished run: report its record as written at the end, never rewrite it.
            log(f"{ckpt_path} is a finished run ({start_epoch}/{cfg.epochs} epochs): nothing to train")
            model.eval()
            return TrainResult(model=model, history=history, metrics=json.loads(done.read_text()),
                               out_dir=out_dir)
        log(f"resuming {ckpt_path} after epoch {start_epoch}/{cfg.epochs}")

    n, bs = len(x_train), cfg.batch_size
    steps = math.ceil(n / bs)
    wall_start = time.perf_counter() - sum(h["seconds"] for h in history)

    bar = tqdm(total=(cfg.epochs - start_epoch) * steps, disable=not progress, mininterval=1.0,
               desc=f"{cfg.model} {train_split.name} seed {cfg.seed}", unit="step", dynamic_ncols=True)
    try:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            model.train()
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=generator).to(device)
            sums = torch.zeros(4, device=device)               # running sums of total and the 3 terms
            for step in range(steps):
                xb = x_train[perm[step * bs:(step + 1) * bs]]
                terms = train_step(model, optimizer, xb, cfg, device, dtype,
                                   check=lambda t: _check_finite(t, epoch, step + 1, ckpt_path))
                sums += torch.stack([t.detach() for t in terms])
                bar.update(1)
                if step % 100 == 99 or step == steps - 1:
                    avg = (sums / (step + 1)).tolist()
                    bar.set_postfix(epoch=epoch, loss=f"{avg[0]:.2f}", rec=f"{avg[1]:.2f}",
                                    kl=f"{avg[2]:.2f}", cat=f"{avg[3]:.3f}", refresh=False)
            means = (sums / steps).tolist()
            entry = {"epoch": epoch, "loss": means[0], **dict(zip(TERM_NAMES, means[1:]))}
            if cfg.cluster_init == "kmeans" and epoch == cfg.cluster_init_epoch:
                assigned = kmeans_init_(model, x_train, seed=cfg.seed)
                entry["kmeans_train_purity"] = clustering_scores(train_split.labels.numpy(), assigned)["purity"]
                (bar.write if progress else log)(
                    f"epoch {epoch}: clusters started from k-means on mu(x) "
                    f"(train purity of the k-means start {entry['kmeans_train_purity']:.4f})")
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                scores = evaluate(model, test_split)
                entry.update({f"test_{k}": v for k, v in scores.items() if k != "n_samples"})
            entry["seconds"] = time.perf_counter() - t0
            history.append(entry)
            _note_device(devices, device_description(device), epoch)
            if ckpt_path is not None:
                checkpoint.save(ckpt_path, {
                    "package_version": __version__, "config": cfg.to_dict(), "epoch": epoch,
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "history": history, "rng": _rng_state(generator, device),
                    "git_commit_start": started_at, "dtype": str(dtype).replace("torch.", ""),
                    "devices": devices})
                atomic_write_json(out_dir / "history.json", history)
            if on_epoch_end is not None:
                on_epoch_end(epoch, model, entry)
            if "test_purity" in entry and progress:
                bar.write(f"epoch {epoch:3d}/{cfg.epochs}  loss {entry['loss']:8.3f}  "
                          f"test purity {entry['test_purity']:.4f}  accuracy {entry['test_accuracy']:.4f}  "
                          f"({entry['seconds']:.1f} s)")
    finally:
        bar.close()

    metrics = final_metrics(model, cfg, train_split, test_split, device, dtype,
                            wall_seconds=time.perf_counter() - wall_start)
    metrics["git_commit_start"] = started_at     # the code that began the run (resumes may be later)
    if len(devices) > 1:                         # resumed on another device: say where each epoch ran
        metrics["device"] = "; ".join(f"{d} (epochs {a}-{b})" for d, a, b in devices)
    if out_dir is not None:
        atomic_write_json(out_dir / "metrics.json", metrics)
    return TrainResult(model=model, history=history, metrics=metrics, out_dir=out_dir)


def final_metrics(model, cfg, train_split, test_split, device, dtype, wall_seconds) -> dict:
    """The end-of-run record: train and test scores plus what produced them."""
    return {
        "dataset": train_split.name, "model": cfg.model, "seed": cfg.seed, "epochs": cfg.epochs,
        "train": evaluate(model, train_split), "test": evaluate(model, test_split),
        "wall_seconds": round(wall_seconds, 2), "device": device_description(device),
        "precision": str(dtype).replace("torch.", ""), "torch_version": torch.__version__,
        "package_version": __version__, "git_commit": git_commit(), "quick": is_quick(),
        "config": cfg.to_dict(),
    }


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    import platform
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def notebook_run_dir(name: str) -> Path:
    """``runs/<name>`` at the repository root, or under ``$VAECLUST_RUNS`` (``<name>-quick`` in quick
    mode): each notebook writes to its own folder, so re-running a notebook never mixes two runs,
    and quick runs never mix with real ones. Notebook 03."""
    import os

    root = Path(os.environ["VAECLUST_RUNS"]) if os.environ.get("VAECLUST_RUNS") else \
        data.default_data_dir().parent / "runs"
    return root / (f"{name}-quick" if is_quick() else name)


def load_or_train(cfg: TrainConfig, name: str, log=print):
    """(model, history, metrics): the shipped pretrained model for ``cfg.dataset`` when it exists
    and this is not quick mode; otherwise train (or finish training) in :func:`notebook_run_dir`.
    Notebook 03."""
    shipped = checkpoint.shipped_path(cfg.dataset)
    if shipped.exists() and not is_quick():
        model, state = checkpoint.model_from_checkpoint(shipped)
        log(f"Found the pretrained model {shipped.name} (seed {state['config'].seed}, "
            f"{state['epoch']} epochs), loading it instead of training.")
        return model, state["history"], state["metrics"]
    run_dir = notebook_run_dir(name)
    done = run_dir / "metrics.json"
    if done.exists():
        model, state = checkpoint.model_from_checkpoint(run_dir / "checkpoint.pt")
        log(f"Found a finished run in {run_dir}, loading it.")
        return model, state["history"], json.loads(done.read_text())
    log(f"No pretrained model for {cfg.dataset}: training into {run_dir} (re-running resumes).")
    result = train(cfg, run_dir, resume=True, log=log)
    return result.model.eval(), result.history, result.metrics


def toy_run(*, epochs: int = 40, k: int = 4, n_points: int = 2000, radius: float = 4.0, std: float = 0.7,
            on_epoch_end=None, **overrides) -> TrainResult:
    """Train :func:`~vaeclust_tutorial.models.toy_cluster_vae` on :func:`~vaeclust_tutorial.data.toy_mixture`.

    Seconds on a CPU. Defaults: ``k`` = 4 blobs of std ``std`` on a circle of radius ``radius``,
    K = ``n_clusters`` = 4, lambda 50, batch 20; ``overrides`` change any :class:`TrainConfig`
    field. Notebooks 02 and 05.
    """
    from .models import toy_cluster_vae

    fields = dict(epochs=epochs, batch_size=20, lam=50.0, n_clusters=k, latent_dim=2, device="cpu")
    cfg = TrainConfig(**{**fields, **overrides})
    toy = data.toy_mixture(n=n_points, k=k, seed=0, radius=radius, std=std)
    torch.manual_seed(cfg.seed)
    model = toy_cluster_vae(n_clusters=cfg.n_clusters, latent_dim=cfg.latent_dim)
    return train(cfg, splits=(toy, toy), model=model, progress=False, on_epoch_end=on_epoch_end)
