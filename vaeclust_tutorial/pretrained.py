"""The model a notebook shows: the shipped checkpoint, a finished run, or a run trained now.

Introduced in notebook 03. Like phlippe's UvA notebooks: a student sees the real figures in
seconds, and quick mode (the test suite) trains a tiny run instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import checkpoint, data
from .config import TrainConfig, config_label, is_quick


# Fields that change where or how fast a run computes, not what it learns.
RUNTIME_FIELDS = ("device", "precision", "eval_every")


def config_difference(shipped: TrainConfig, cfg: TrainConfig) -> dict:
    """{field: (shipped value, cfg's value)} for the fields that differ, runtime fields aside."""
    a, b = shipped.to_dict(), cfg.to_dict()
    return {k: (a[k], b[k]) for k in a if a[k] != b[k] and k not in RUNTIME_FIELDS}


def notebook_run_dir(name: str) -> Path:
    """``runs/<name>`` at the repository root, or under ``$VAECLUST_RUNS`` (``<name>-quick`` in quick
    mode): each notebook writes to its own folder, so re-running a notebook never mixes two runs,
    and quick runs never mix with real ones. Notebook 03."""
    root = Path(os.environ["VAECLUST_RUNS"]) if os.environ.get("VAECLUST_RUNS") else \
        data.default_data_dir().parent / "runs"
    return root / (f"{name}-quick" if is_quick() else name)


def load_or_train(cfg: TrainConfig, name: str, log=print):
    """(model, history, metrics): the shipped pretrained model for ``cfg.dataset`` and ``cfg``'s
    configuration (:data:`~vaeclust_tutorial.checkpoint.SHIPPED`) when it exists, was trained
    with ``cfg`` (up to where and how fast: :data:`RUNTIME_FIELDS`) and this is not quick mode;
    otherwise train (or finish training) in :func:`notebook_run_dir`. Notebooks 03, 04 and 06."""
    from .training import train

    label = config_label(cfg)
    shipped = checkpoint.shipped_path(cfg.dataset, label) if (cfg.dataset, label) in checkpoint.SHIPPED else None
    if shipped is not None and shipped.exists() and not is_quick():
        model, state = checkpoint.model_from_checkpoint(shipped)
        differ = config_difference(state["config"], cfg)
        if not differ:
            log(f"Found the pretrained model {shipped.name} (seed {state['config'].seed}, "
                f"{state['epoch']} epochs), loading it instead of training.")
            return model, state["history"], state["metrics"]
        log(f"The pretrained model {shipped.name} was trained with another configuration "
            f"(shipped vs yours: {differ}), so it is not used.")
    run_dir = notebook_run_dir(name)
    done = run_dir / "metrics.json"
    if done.exists():
        model, state = checkpoint.model_from_checkpoint(run_dir / "checkpoint.pt")
        log(f"Found a finished run in {run_dir}, loading it.")
        return model, state["history"], json.loads(done.read_text())
    log(f"No pretrained model for {cfg.dataset} with {label}: training into {run_dir} (re-running resumes).")
    result = train(cfg, run_dir, resume=True, log=log)
    return result.model.eval(), result.history, result.metrics
