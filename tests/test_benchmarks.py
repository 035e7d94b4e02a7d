"""The scripts in benchmarks/: what can be checked without TensorFlow.

``keras_reference.py`` imports Keras only inside its functions, and ``vs_keras.py`` runs both
frameworks in subprocesses, so their pure parts load in the project's environment.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from vaeclust_tutorial import metrics

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_keras_reference_scores_agree_with_the_package():
    # the Keras reference computes its four scores with numpy + scipy only; they must be the package's
    kr = _load("keras_reference")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    pred = np.where(rng.random(2000) < 0.6, (labels + 3) % 10, rng.integers(0, 10, 2000))
    ours = metrics.clustering_scores(labels, pred)
    theirs = kr.clustering_scores(labels, pred, 10)
    for key in ("purity", "accuracy", "nmi", "ari"):
        assert theirs[key] == pytest.approx(ours[key], abs=1e-12), key


def test_vs_keras_training_time_leaves_out_the_wait_before_the_first_batch():
    vk = _load("vs_keras")
    history = [  # epoch 1 warms up; epoch 2 waited 20 s before its first batch; epoch 4 is never read
        {"seconds": 60.0, "batches": 600, "seconds_after_first_batch": 25.0},
        {"seconds": 41.0, "batches": 600, "seconds_after_first_batch": 20.9},
        {"seconds": 22.0, "batches": 600, "seconds_after_first_batch": 21.5},
        {"seconds": 1.0, "batches": 600, "seconds_after_first_batch": 1.0},
    ]
    assert vk.steady_epoch(history) == 22.0                       # whole epochs: the faster of 2 and 3
    assert vk.training_epoch(history) == pytest.approx(20.9 * 600 / 599)   # epoch 2 without its wait


def test_readme_vs_keras_table_is_generated_from_the_committed_reports():
    vk = _load("vs_keras")
    root = BENCHMARKS.parent
    files = sorted((root / "results").glob("vs_keras*.json"))
    assert len(files) >= 2, "results/ should hold the vs_keras reports of versions A and B"
    reports = {f"results/{f.name}": json.loads(f.read_text()) for f in files}
    readme = (root / "README.md").read_text()
    start, end = readme.index("<!-- vs-keras:start -->"), readme.index("<!-- vs-keras:end -->")
    assert readme[start:end].split("\n", 1)[1].strip() == vk.markdown(reports).strip()
