"""Checkpoints: written atomically, loaded with ``weights_only=True``, checked before use.

Introduced in notebook 03 (loading the shipped checkpoints). A checkpoint is a
dict of tensors and plain Python values:

``format``, ``format_version``, ``package_version``, ``config`` (a TrainConfig as a
dict), ``epoch`` (epochs completed), ``model``, ``optimizer``, ``history``, ``rng``,
``start_commit`` (the code that began the run), ``dtype`` (the compute dtype of the run)
and ``devices`` (where each span of epochs ran). ``model`` is always the model to use: in a
run with a Mean Teacher (``teacher_decay``) the teacher's averaged weights, and then the
trained weights are ``student`` and the average's count ``teacher_updates`` (:func:`weights`). :func:`restore` puts a run back where
it stopped.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import torch

from .config import DATASETS, TrainConfig
from .files import atomic_write_bytes

FORMAT = "vaeclust-checkpoint"
FORMAT_VERSION = 2
# The pretrained models shipped in the package, by (dataset, config label): the article's model of
# each dataset (notebooks 03 and 04) and the configuration beyond the article (notebook 06).
SHIPPED = {**{(name, "article-b"): f"{name}.pt" for name in DATASETS},
           **{(name, "beyond"): f"{name}-beyond.pt" for name in DATASETS}}


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint; the message says why and what to do."""


def save(path: str | Path, state: dict) -> None:
    """Write ``state`` (see module docstring) atomically: a kill never leaves half a checkpoint."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **state}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load(path: str | Path, map_location="cpu") -> dict:
    """Read and check a checkpoint. Never executes code from the file (``weights_only=True``).

    Raises :class:`CheckpointError` for a missing, truncated, corrupted or foreign
    file, or one written by an incompatible format version.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; train one with "
                              f"`python -m vaeclust_tutorial train ... --out DIR` (it writes DIR/checkpoint.pt)")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a directory; pass the file, e.g. {path / 'checkpoint.pt'}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{str(path)!r} is not a readable vaeclust checkpoint (truncated, corrupted, "
                                  f"or not a checkpoint at all): not a torch.save archive") from None
        # torch's message suggests weights_only=False: exactly what must not be done with a foreign file
        raise CheckpointError(f"{str(path)!r} is not a readable vaeclust checkpoint: it holds Python objects "
                              f"other than tensors and plain values, which are refused without being run "
                              f"(a checkpoint is never loaded with weights_only=False)") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile,
            AttributeError, KeyError, IndexError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{str(path)!r} is not a readable vaeclust checkpoint (truncated, corrupted, "
                              f"or not a checkpoint at all): {first[:200]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is a torch file but not a vaeclust checkpoint "
                              f"(no format={FORMAT!r} entry)")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format {state.get('format_version')!r} (package version "
            f"{state.get('package_version')!r}), this package reads format {FORMAT_VERSION}; "
            f"install the package version that wrote it or retrain")
    try:
        state["config"] = TrainConfig.from_dict(state["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{str(path)!r} holds an invalid config: {exc}") from None
    return state


def model_from_checkpoint(path: str | Path, device="cpu"):
    """(model, state): a :class:`~vaeclust_tutorial.models.ClusterVAE` with the checkpoint's weights."""
    from .models import build_model

    state = load(path)
    model = build_model(state["config"])
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{str(path)!r}: weights do not fit its config {state['config'].network!r} "
                              f"(K={state['config'].n_clusters}, d={state['config'].latent_dim}): "
                              f"{str(exc).splitlines()[0]}") from None
    return model.to(device).eval(), state


def weights(model, teacher=None) -> dict:
    """A checkpoint's weights: ``model``, the model to use; with a ``teacher``
    (:func:`~vaeclust_tutorial.training.make_teacher`) that is its average, and the trained
    weights and the number of updates averaged are kept to resume from."""
    if teacher is None:
        return {"model": model.state_dict()}
    return {"model": teacher.module.state_dict(), "student": model.state_dict(),
            "teacher_updates": int(teacher.n_averaged)}


def rng_state(generator: torch.Generator, device: torch.device) -> dict:
    """The random streams a run draws from: torch's global one (noise), the shuffling one, CUDA's."""
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


def restore(path: str | Path, cfg: TrainConfig, model, optimizer, generator: torch.Generator,
            device: torch.device, teacher=None) -> dict:
    """Load an interrupted run's checkpoint into ``model``, ``optimizer``, the ``teacher`` of a
    run that has one (:func:`weights`) and the random streams.

    Only ``epochs`` (to extend a finished run, unless its learning rate follows a schedule) and
    ``device`` (to finish a GPU run on a CPU, say) may differ from the run's config; the run goes
    on in the dtype it trained in.
    Returns what the loop needs: ``history``, ``epoch``, ``start_commit``, ``dtype``, ``devices``.
    """
    state = load(path, map_location=device)
    saved = state["config"]
    diff = {k: (v, getattr(cfg, k)) for k, v in saved.to_dict().items()
            if getattr(cfg, k) != v and k not in ("epochs", "device")}
    if diff:
        raise CheckpointError(f"{path} was written with another configuration (checkpoint vs now: {diff}); "
                              f"resume with the same options or use another output folder")
    if saved.lr_schedule != "constant" and saved.epochs != cfg.epochs:
        raise CheckpointError(f"{path} follows the {saved.lr_schedule} learning-rate schedule of a "
                              f"{saved.epochs}-epoch run, which a run of {cfg.epochs} epochs would change; "
                              f"resume with --epochs {saved.epochs}")
    if state["epoch"] > cfg.epochs:
        raise ValueError(f"{path} has already trained {state['epoch']} epochs, more than "
                         f"epochs={cfg.epochs}; pass --epochs {state['epoch']} or more")
    if teacher is None:
        model.load_state_dict(state["model"])
    else:
        model.load_state_dict(state["student"])
        teacher.module.load_state_dict(state["model"])
        teacher.n_averaged.fill_(state["teacher_updates"])
    optimizer.load_state_dict(state["optimizer"])
    _set_rng_state(state["rng"], generator, device)
    return {"history": list(state["history"]), "epoch": int(state["epoch"]),
            "start_commit": state["start_commit"], "dtype": state["dtype"],
            "devices": [list(d) for d in state["devices"]]}


def shipped_path(dataset: str, config: str = "article-b") -> Path:
    """Path of the pretrained checkpoint shipped in the package for ``dataset`` trained with the
    configuration ``config`` (a config label: ``article-b`` or ``beyond``); it may not exist yet."""
    if (dataset, config) not in SHIPPED:
        datasets, configs = sorted({d for d, _ in SHIPPED}), sorted({c for _, c in SHIPPED})
        raise ValueError(f"no shipped model for dataset {dataset!r} and config {config!r}; "
                         f"valid datasets are {datasets}, valid configs {configs}")
    return Path(__file__).resolve().parent / "checkpoints" / SHIPPED[(dataset, config)]
