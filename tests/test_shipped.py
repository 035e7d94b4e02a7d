"""The pretrained checkpoints shipped in the package evaluate to the metrics recorded with them."""

import pytest

from vaeclust_tutorial import checkpoint, data, evaluate

SHIPPED = [d for d in checkpoint.SHIPPED if checkpoint.shipped_path(d).exists()]


def test_at_least_one_pretrained_checkpoint_ships():
    assert SHIPPED, "no checkpoint in vaeclust_tutorial/checkpoints/: ship one with `python tools/ship.py`"


@pytest.mark.parametrize("dataset", SHIPPED)
def test_shipped_checkpoint_reproduces_its_recorded_test_scores(dataset):
    path = checkpoint.shipped_path(dataset)
    assert path.stat().st_size < 4_000_000, "shipped checkpoints stay a few MB at most"
    model, state = checkpoint.model_from_checkpoint(path)
    cfg, recorded = state["config"], state["metrics"]
    assert cfg.dataset == dataset and cfg.epochs == 50 and recorded["quick"] is False
    scores = evaluate(model, data.load(dataset, "test"))
    assert scores["n_samples"] == 10000
    assert scores["purity"] == pytest.approx(recorded["test"]["purity"], abs=0.002)
    assert scores["accuracy"] == pytest.approx(recorded["test"]["accuracy"], abs=0.002)


@pytest.mark.parametrize("dataset", SHIPPED)
def test_the_evaluation_batch_does_not_change_a_prediction(dataset):
    # predict() evaluates in batches of EVAL_BATCH while the metrics of results/ were computed
    # in batches of 2000: every one of the 10k test predictions must be the same.
    from vaeclust_tutorial.inference import predict
    model, _ = checkpoint.model_from_checkpoint(checkpoint.shipped_path(dataset))
    images = data.load(dataset, "test").images
    assert (predict(model, images) == predict(model, images, batch_size=2000)).all()
