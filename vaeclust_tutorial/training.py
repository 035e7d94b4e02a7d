"""Training the clustering VAE from a :class:`~vaeclust_tutorial.config.TrainConfig`.

Introduced in notebook 03. Nothing here is specific to a dataset: the whole split
is held as one tensor on the device, each epoch draws a seeded permutation, and
batches are slices of it (no per-sample Python work, no DataLoader).

A run with an output folder writes, after every epoch and atomically,
``checkpoint.pt`` (:mod:`~vaeclust_tutorial.checkpoint`) and ``history.json``; at the
end ``metrics.json``. ``resume=True`` continues from the last complete epoch and, on
the same machine, ends with the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from . import __version__, checkpoint, data
from .cluster_init import kmeans_init_
from .config import TrainConfig, is_quick, progress_wanted, quick_banner
from .files import atomic_write_json, check_output_dir
from .inference import evaluate
from .kernels import fast_kernels_pay, use_fast_kernels
from .losses import cluster_vae_loss, total
from .metrics import clustering_scores
from .models import ClusterVAE, build_model
from .runtime import (autocast, device_description, dtype_name, git_commit, resolve_device,
                      resolve_precision)

# oneDNN's convolutions run faster on NHWC images and weights (docs/speed.md, "+ channels_last").
MEMORY_FORMAT = torch.channels_last


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the term."""


@dataclass
class TrainResult:
    model: ClusterVAE
    history: list = field(default_factory=list)   # one dict per epoch
    metrics: dict = field(default_factory=dict)   # final train/test scores (see ``final_metrics``)
    out_dir: Path | None = None


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam with the config's learning rate and epsilon; the fused kernel (one call for all
    parameters) on CPUs and GPUs, the same update as the per-tensor loop up to rounding."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps,
                            fused=device.type in ("cpu", "cuda"))


def _check_finite(terms: dict, epoch: int, step: int, ckpt_path) -> None:
    values = torch.stack([t.detach().float() for t in terms.values()])
    if bool(torch.isfinite(values).all()):
        return
    bad = ", ".join(f"{n}={v:.4g}" for n, v in zip(terms, values.tolist()) if not math.isfinite(v))
    kept = (f"the last good checkpoint {ckpt_path} is kept intact"
            if ckpt_path is not None and Path(ckpt_path).exists() else "no checkpoint had been written yet")
    raise NonFiniteLossError(
        f"non-finite loss at epoch {epoch}, step {step}: {bad}; training stopped and {kept}. "
        f"Try a smaller learning rate or lambda, or another seed.")


def learning_rate(cfg: TrainConfig, epoch: int, step: int, steps: int) -> float:
    """The learning rate of step ``step`` (0-based) of epoch ``epoch`` (1-based), ``steps`` steps
    per epoch. ``constant``: ``cfg.lr`` (the article's Adam). ``cosine``: ``cfg.lr`` times
    (1 + cos(pi t / T)) / 2 at step t of T = epochs x steps (Loshchilov and Hutter 2017,
    SGDR, arXiv:1608.03983, without restarts): the last epochs settle instead of hopping between
    nearby partitions. A function of the step alone, so a resumed run follows the same curve.
    An option of notebook 06's configuration, not part of the preset ``beyond``."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    t, total_steps = (epoch - 1) * steps + step, cfg.epochs * steps
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * t / total_steps))


def info_balance_at(cfg: TrainConfig, epoch: int) -> float:
    """β of the batch information term (:func:`~vaeclust_tutorial.losses.batch_information`) in
    epoch ``epoch`` (1-based): ``cfg.info_balance`` throughout, or with ``cfg.info_balance_start``
    > 0 that value in the first epoch, falling linearly to ``cfg.info_balance`` in the last. A
    strong pull towards balanced clusters while the partition forms, IMSAT's β once it has
    (notebook 06; docs/reproduction.md, step 11). A function of the epoch alone, so a resumed run
    follows the same schedule. An option of notebook 06's configuration, not part of ``beyond``."""
    if not cfg.info_balance_start:
        return cfg.info_balance
    t = (epoch - 1) / max(cfg.epochs - 1, 1)
    return cfg.info_balance_start + t * (cfg.info_balance - cfg.info_balance_start)


def make_teacher(model: ClusterVAE, decay: float) -> AveragedModel:
    r"""Mean Teacher (Tarvainen and Valpola 2017, arXiv 1703.01780): a copy of ``model`` whose
    weights follow an exponential moving average of the trained ones, updated after every step
    (``teacher.update_parameters(model)``) by torch's :class:`~torch.optim.swa_utils.AveragedModel`:

    .. math:: \theta' \leftarrow d_t\, \theta' + (1 - d_t)\, \theta, \qquad
              d_t = \min\big(d, \tfrac{1 + t}{10 + t}\big)

    after t updates (the first copies the weights): early on it averages over the last tenth or so
    of training, later over about 1 / (1 - d) steps. A slowly moving target for the consistency
    term (:func:`~vaeclust_tutorial.losses.cluster_vae_loss`; ``cfg.teacher_targets``), and a
    model that does not hop between nearby partitions from one epoch to the next (Polyak
    averaging): the one evaluated and saved. Notebook 06; an option of its configuration
    (``cfg.teacher_decay``)."""
    def ema(averaged, current, n_averaged):
        d = torch.clamp((1 + n_averaged) / (10 + n_averaged), max=decay).to(averaged.dtype)
        return averaged + (current - averaged) * (1 - d)

    teacher = AveragedModel(model, avg_fn=ema)
    teacher.requires_grad_(False)
    return teacher


def train_step(model: ClusterVAE, optimizer, xb: torch.Tensor, cfg: TrainConfig, device: torch.device,
               dtype: torch.dtype, check=None, teacher: AveragedModel | None = None) -> dict:
    """One optimiser step on the batch ``xb``: forward (bf16 autocast when ``dtype`` is bf16; the
    loss is always fp32), ``check(terms)`` before any update, backward, Adam, and the
    ``teacher``'s average (:func:`make_teacher`) moved towards the new weights; the consistency
    targets are the teacher's with ``cfg.teacher_targets``. Returns the terms."""
    with autocast(device, dtype):
        out = model(xb)
    targets = teacher.module if teacher is not None and cfg.teacher_targets else None
    terms = cluster_vae_loss(xb, out, model, cfg, teacher=targets)
    if check is not None:
        check(terms)
    optimizer.zero_grad(set_to_none=True)
    total(terms).backward()
    optimizer.step()
    if teacher is not None:
        teacher.update_parameters(model)
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
    if cfg.move_flip and not data.DATASETS[cfg.dataset].mirror_symmetric:
        log(f"warning: move_flip mirrors half the moved images, and a mirrored {cfg.dataset} image need not "
            f"be of its class (a mirrored 2 is no digit): the consistency term then asks for the wrong "
            f"invariance; leave --move-flip to datasets whose classes are mirror symmetric")

    # 1) the model, the data on the device, the optimiser, the seeded streams
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    model = (model if model is not None else build_model(cfg)).to(device)
    train_split, test_split = splits if splits is not None else load_splits(cfg, data_dir)
    x_train = train_split.images.to(device)                    # (N, 1, 28, 28)
    if x_train.dim() == 4:
        model.to(memory_format=MEMORY_FORMAT)
        x_train = x_train.contiguous(memory_format=MEMORY_FORMAT)
    optimizer = make_optimizer(model, cfg, device)
    teacher = make_teacher(model, cfg.teacher_decay) if cfg.teacher_decay else None
    run = {"history": [], "epoch": 0, "start_commit": git_commit(), "devices": []}

    # 2) or where an interrupted run stopped
    if resume and ckpt_path is not None and ckpt_path.exists():
        run = checkpoint.restore(ckpt_path, cfg, model, optimizer, generator, device, teacher)
        dtype = getattr(torch, run["dtype"])                   # a run finishes in the dtype it began in
        done = out_dir / "metrics.json"
        if run["epoch"] == cfg.epochs and done.exists():
            # A finished run: report its record as written at the end, never rewrite it.
            log(f"{ckpt_path} is a finished run ({run['epoch']}/{cfg.epochs} epochs): nothing to train")
            return TrainResult(model=reported(model, teacher).eval(), history=run["history"],
                               metrics=json.loads(done.read_text()), out_dir=out_dir)
        log(f"resuming {ckpt_path} after epoch {run['epoch']}/{cfg.epochs}")
    if fast_kernels_pay(device, dtype):
        use_fast_kernels(model)
        if teacher is not None:
            use_fast_kernels(teacher.module)
    history, devices = run["history"], run["devices"]

    # 3) the epochs
    n, bs = len(x_train), cfg.batch_size
    steps = math.ceil(n / bs)
    wall_start = time.perf_counter() - sum(h["seconds"] for h in history)
    bar = tqdm(total=(cfg.epochs - run["epoch"]) * steps, disable=not progress, mininterval=1.0,
               desc=f"{cfg.network} {train_split.name} seed {cfg.seed}", unit="step", dynamic_ncols=True)
    try:
        for epoch in range(run["epoch"] + 1, cfg.epochs + 1):
            model.train()
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=generator).to(device)
            sums = 0                                           # running sums of the loss and its terms
            epoch_cfg = replace(cfg, info_balance=info_balance_at(cfg, epoch)) if cfg.info_balance_start else cfg
            for step in range(steps):
                xb = x_train[perm[step * bs:(step + 1) * bs]]
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(cfg, epoch, step, steps)
                terms = train_step(model, optimizer, xb, epoch_cfg, device, dtype,
                                   check=lambda t: _check_finite(t, epoch, step + 1, ckpt_path), teacher=teacher)
                sums = sums + torch.stack([total(terms), *terms.values()]).detach()
                bar.update(1)
                if step % 100 == 99 or step == steps - 1:
                    avg = (sums / (step + 1)).tolist()
                    bar.set_postfix(epoch=epoch, loss=f"{avg[0]:.2f}",
                                    **{name: f"{v:.3g}" for name, v in zip(terms, avg[1:])}, refresh=False)
            means = (sums / steps).tolist()
            entry = {"epoch": epoch, "loss": means[0], **dict(zip(terms, means[1:]))}
            if cfg.cluster_init == "kmeans" and epoch == cfg.cluster_init_epoch:
                assigned = kmeans_init_(model, x_train, seed=cfg.seed)
                entry["kmeans_train_purity"] = clustering_scores(train_split.labels.numpy(), assigned)["purity"]
                (bar.write if progress else log)(
                    f"epoch {epoch}: clusters started from k-means on mu(x) "
                    f"(train purity of the k-means start {entry['kmeans_train_purity']:.4f})")
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                scores = evaluate(reported(model, teacher), test_split)
                entry.update({f"test_{k}": v for k, v in scores.items() if k != "n_samples"})
                if teacher is not None:                        # the trained weights too, to compare
                    trained = evaluate(model, test_split)
                    entry.update({f"trained_test_{k}": v for k, v in trained.items() if k != "n_samples"})
            entry["seconds"] = time.perf_counter() - t0
            history.append(entry)
            _note_device(devices, device_description(device), epoch)
            if ckpt_path is not None:
                checkpoint.save(ckpt_path, {
                    "package_version": __version__, "config": cfg.to_dict(), "epoch": epoch,
                    **checkpoint.weights(model, teacher), "optimizer": optimizer.state_dict(),
                    "history": history, "rng": checkpoint.rng_state(generator, device),
                    "start_commit": run["start_commit"], "dtype": dtype_name(dtype), "devices": devices})
                atomic_write_json(out_dir / "history.json", history)
            if on_epoch_end is not None:
                on_epoch_end(epoch, reported(model, teacher), entry)
            if "test_purity" in entry and progress:
                bar.write(f"epoch {epoch:3d}/{cfg.epochs}  loss {entry['loss']:8.3f}  "
                          f"test purity {entry['test_purity']:.4f}  accuracy {entry['test_accuracy']:.4f}  "
                          f"({entry['seconds']:.1f} s)")
    finally:
        bar.close()

    # 4) the record: the teacher's, where there is one
    model = reported(model, teacher)
    metrics = final_metrics(model, cfg, train_split, test_split, device, dtype,
                            wall_seconds=time.perf_counter() - wall_start)
    metrics["start_commit"] = run["start_commit"]  # the code that began the run (resumes may be later)
    if len(devices) > 1:                           # resumed on another device: say where each epoch ran
        metrics["device"] = "; ".join(f"{d} (epochs {a}-{b})" for d, a, b in devices)
    if out_dir is not None:
        atomic_write_json(out_dir / "metrics.json", metrics)
    return TrainResult(model=model, history=history, metrics=metrics, out_dir=out_dir)


def reported(model: ClusterVAE, teacher: AveragedModel | None) -> ClusterVAE:
    """The model a run evaluates, saves and returns: the teacher's average where there is one."""
    return model if teacher is None else teacher.module


def _note_device(devices: list, description: str, epoch: int) -> None:
    """Extend ``devices`` ([description, first epoch, last epoch] spans) with one epoch."""
    if devices and devices[-1][0] == description:
        devices[-1][2] = epoch
    else:
        devices.append([description, epoch, epoch])


def final_metrics(model, cfg, train_split, test_split, device, dtype, wall_seconds) -> dict:
    """The end-of-run record: train and test scores plus what produced them."""
    return {
        "dataset": train_split.name, "network": cfg.network, "seed": cfg.seed, "epochs": cfg.epochs,
        "train": evaluate(model, train_split), "test": evaluate(model, test_split),
        "wall_seconds": round(wall_seconds, 2), "device": device_description(device),
        "precision": dtype_name(dtype), "torch_version": torch.__version__,
        "package_version": __version__, "git_commit": git_commit(), "quick": is_quick(),
        "config": cfg.to_dict(),
    }
