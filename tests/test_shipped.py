"""The pretrained checkpoints shipped in the package evaluate to the metrics recorded with them."""

import pytest

from vaeclust_tutorial import checkpoint, data, evaluate, preset
from vaeclust_tutorial.config import config_label

SHIPPED = [k for k in checkpoint.SHIPPED if checkpoint.shipped_path(*k).exists()]


def test_every_shipped_model_is_in_the_package():
    # the article's model and `beyond`, for both datasets
    missing = [k for k in checkpoint.SHIPPED if k not in SHIPPED]
    assert not missing, f"no shipped checkpoint for {missing}: ship one with `python tools/ship.py`"
    assert {config for _, config in checkpoint.SHIPPED} == {"article-b", "beyond"}


@pytest.mark.parametrize("key", SHIPPED, ids=str)
def test_shipped_checkpoint_reproduces_its_recorded_test_scores(key):
    dataset, config = key
    path = checkpoint.shipped_path(dataset, config)
    assert path.stat().st_size < 4_000_000, "shipped checkpoints stay a few MB at most"
    model, state = checkpoint.model_from_checkpoint(path)
    cfg, recorded = state["config"], state["metrics"]
    assert cfg.dataset == dataset and config_label(cfg) == config and recorded["quick"] is False
    assert cfg.epochs == preset(config).epochs == state["epoch"]       # the preset's full length
    scores = evaluate(model, data.load(dataset, "test"))
    assert scores["n_samples"] == 10000
    assert scores["purity"] == pytest.approx(recorded["test"]["purity"], abs=0.002)
    assert scores["accuracy"] == pytest.approx(recorded["test"]["accuracy"], abs=0.002)


@pytest.mark.parametrize("key", SHIPPED, ids=str)
def test_the_evaluation_batch_does_not_change_a_prediction(key):
    # predict() evaluates in batches of EVAL_BATCH while the metrics of results/ were computed
    # in batches of 2000: every one of the 10k test predictions must be the same.
    from vaeclust_tutorial.inference import predict
    model, _ = checkpoint.model_from_checkpoint(checkpoint.shipped_path(*key))
    images = data.load(key[0], "test").images
    assert (predict(model, images) == predict(model, images, batch_size=2000)).all()


def test_an_unknown_shipped_model_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"valid datasets are \['fashion-mnist', 'mnist'\], valid configs \['article-b', 'beyond'\]"):
        checkpoint.shipped_path("mnist", "article-c")
