"""Checkpoints: written atomically, loaded with ``weights_only=True``, checked before use.

Introduced in notebook 03 (loading the shipped checkpoints). A checkpoint is a
dict of tensors and plain Python values:

``format``, ``format_version``, ``package_version``, ``config`` (a TrainConfig as a
dict), ``epoch`` (epochs completed), ``model``, ``optimizer``, ``history``, ``rng``.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import torch

from .config import TrainConfig
from .io import atomic_write_bytes

FORMAT = "vaeclust-checkpoint"
FORMAT_VERSION = 1
SHIPPED = {"mnist": "mnist.pt", "fashion-mnist": "fashion-mnist.pt"}


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
        raise CheckpointError(f"{str(path)!r}: weights do not fit its config {state['config'].model!r} "
                              f"(K={state['config'].n_clusters}, d={state['config'].latent_dim}): "
                              f"{str(exc).splitlines()[0]}") from None
    return model.to(device).eval(), state


def shipped_path(dataset: str) -> Path:
    """Path of the pretrained checkpoint shipped in the package for ``dataset`` (may not exist yet)."""
    if dataset not in SHIPPED:
        raise ValueError(f"unknown dataset {dataset!r}; valid datasets are {sorted(SHIPPED)}")
    return Path(__file__).resolve().parent / "checkpoints" / SHIPPED[dataset]


def ship(run_checkpoint: str | Path, out: str | Path) -> dict:
    """Store a run's model as a small weights-only checkpoint, with the run's recorded metrics.

    Drops the optimizer and RNG states (a third of the size); keeps config, epoch,
    history and the ``metrics.json`` written beside the run's checkpoint, whose test
    purity and accuracy the test suite checks against a fresh evaluation.
    """
    import json

    run_checkpoint = Path(run_checkpoint)
    state = load(run_checkpoint)
    metrics_path = run_checkpoint.parent / "metrics.json"
    if not metrics_path.exists():
        raise CheckpointError(f"{metrics_path} is missing: ship only finished runs (train writes it at the end)")
    metrics = json.loads(metrics_path.read_text())
    if metrics.get("quick"):
        raise CheckpointError(f"{run_checkpoint} comes from a quick-mode run; ship only real runs")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save(out, {"package_version": state["package_version"], "config": state["config"].to_dict(),
               "epoch": state["epoch"], "model": state["model"], "history": state["history"],
               "metrics": metrics})
    return {"out": str(out), "test": metrics["test"], "epoch": state["epoch"]}
