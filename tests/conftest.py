"""Shared fixtures. The suite runs in quick mode with a file-only plotting backend, so `pytest`
alone works (the test command prepares the real data first; so does `python -m vaeclust_tutorial prepare`)."""

import os

os.environ.setdefault("VAECLUST_QUICK", "1")   # tiny runs everywhere, notebooks included (nbval's kernels inherit it)
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def mnist_small():
    """(train, test) splits: the first 500 training and 300 test images of the real MNIST."""
    from vaeclust_tutorial import data
    return data.load("mnist", "train", limit=500), data.load("mnist", "test", limit=300)


@pytest.fixture
def tiny_config():
    """A seconds-long configuration of the article's first version."""
    from vaeclust_tutorial import preset
    return preset("article-a", epochs=3, train_limit=500, test_limit=300, device="cpu")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, mnist_small):
    """A finished tiny run folder (checkpoint.pt, history.json, metrics.json), trained once per session."""
    from vaeclust_tutorial import preset, train
    out = tmp_path_factory.mktemp("run")
    train(preset("article-a", epochs=2, train_limit=500, test_limit=300, device="cpu"), out,
          splits=mnist_small, progress=False)
    return out
