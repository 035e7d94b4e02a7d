"""The command line: every command once, and bad values rejected with what is valid."""

import json
from pathlib import Path

import numpy as np
import pytest

from vaeclust_tutorial import data
from vaeclust_tutorial.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:      # argparse's own errors exit 2
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "svhn", "--out", "x"], "invalid choice: 'svhn' (choose from 'mnist', 'fashion-mnist')"),
    (["train", "--dataset", "mnist", "--out", "x", "--epochs", "0"], "error: epochs=0 is invalid: it must be >= 1"),
    (["train", "--dataset", "mnist", "--out", "x", "--n-clusters", "1"], "n_clusters=1 is invalid: it must be >= 2 (K"),
    (["train", "--dataset", "mnist", "--out", "x", "--lam", "0"], "lam=0.0 is invalid: it must be > 0 (lambda"),
    (["train", "--dataset", "mnist", "--out", "x", "--lam", "-2"], "lam=-2.0 is invalid: it must be > 0"),
    (["train", "--dataset", "mnist", "--out", "x", "--lam", "nan"], "lam=nan is invalid: it must be a finite number"),
    (["train", "--dataset", "mnist", "--out", "x", "--lam", "five"], "argument --lam: invalid float value: 'five'"),
    (["train", "--dataset", "mnist", "--out", "x", "--latent-dim", "0"], "latent_dim=0 is invalid: it must be >= 1"),
    (["train", "--dataset", "mnist", "--out", "x", "--eval-every", "0"], "eval_every=0 is invalid: it must be >= 1"),
    (["train", "--dataset", "mnist", "--out", "x", "--precision", "fp16"], "invalid choice: 'fp16'"),
    (["train", "--dataset", "mnist", "--out", "x", "--config", "beyond", "--overcluster-k", "1"],
     "overcluster_k=1 is invalid: an over-clustering head needs at least 2 clusters (use 0 for no head)"),
    (["train", "--dataset", "mnist", "--out", "x", "--overcluster-k", "50"],
     "overcluster_k=50 needs info_weight > 0 or consistency_weight > 0"),
    (["train", "--dataset", "mnist", "--out", "x", "--config", "vade"], "choose from 'article-a', 'article-b'"),
    (["evaluate", "--checkpoint", "missing.pt", "--dataset", "mnist"], "'missing.pt' does not exist"),
    (["sample", "--checkpoint", "missing.pt", "--out", "s.png"], "does not exist"),
    (["prepare", "--dataset", "cifar"], "invalid choice: 'cifar'"),
])
def test_bad_values_are_rejected_with_what_is_valid(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err


def test_help_explains_every_command(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("prepare", "train", "evaluate", "sample", "figures"):
        assert command in out
    for maintainer in ("bench", "results", "ship", "sweep"):       # scripts in benchmarks/ and tools/
        assert f"    {maintainer} " not in out
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "--resume" in out and "article-b" in out
    import dataclasses

    from vaeclust_tutorial.config import TrainConfig
    for f in dataclasses.fields(TrainConfig):                       # every field is an option, with its help
        assert f"--{f.name.replace('_', '-')}" in out
        assert " ".join(f.metadata["help"].split()[:3]) in " ".join(out.split())


def test_train_options_override_the_preset_and_nothing_else():
    from vaeclust_tutorial.cli import build_parser, config_from_args
    from vaeclust_tutorial.config import preset
    args = build_parser().parse_args(["train", "--dataset", "mnist", "--out", "x", "--config", "article-c",
                                      "--seed", "3", "--n-clusters", "12", "--train-limit", "700"])
    cfg = config_from_args(args)
    assert (cfg.seed, cfg.n_clusters, cfg.train_limit) == (3, 12, 700)
    assert (cfg.network, cfg.lam, cfg.estimator) == (preset("article-c").network, 2.5, "sample")
    args = build_parser().parse_args(["train", "--dataset", "fashion-mnist", "--out", "x", "--config", "beyond",
                                      "--move-flip"])
    cfg, beyond = config_from_args(args), preset("beyond")
    assert (cfg.dataset, cfg.move_flip, cfg.info_weight, cfg.consistency_weight, cfg.term2_trains_classifier) == \
        ("fashion-mnist", True, beyond.info_weight, beyond.consistency_weight, True)


def test_prepare_reports_each_dataset(capsys):
    code, out, _ = run(capsys, "prepare")
    assert code == 0 and "mnist: all 4 files present" in out and "fashion-mnist: all 4 files present" in out


def test_train_evaluate_sample_figures(capsys, tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = run(capsys, "train", "--dataset", "fashion-mnist", "--config", "article-a", "--epochs", "1",
                         "--out", str(out_dir), "--no-progress")
    assert code == 0, err
    assert "QUICK MODE" in err                                # quick runs say so
    assert set(json.loads(out)["test"]) == {"purity", "accuracy", "nmi", "ari", "n_samples"}
    code, _, err = run(capsys, "train", "--dataset", "fashion-mnist", "--config", "article-a", "--epochs", "1",
                       "--out", str(out_dir), "--no-progress")
    assert code == 2 and "--resume" in err                  # no silent overwrite
    preds = tmp_path / "pred.npy"
    code, out, err = run(capsys, "evaluate", "--checkpoint", str(out_dir / "checkpoint.pt"),
                         "--dataset", "fashion-mnist", "--save-predictions", str(preds))
    assert code == 0, err
    scores = json.loads(out)
    assert scores["n_samples"] == 10000 and 0 <= scores["purity"] <= 1
    p = np.load(preds)
    assert p.shape == (10000,) and p.max() < 10
    labels = data.load("fashion-mnist", "test").labels.numpy()
    from vaeclust_tutorial.metrics import purity
    assert purity(labels, p) == pytest.approx(scores["purity"])
    code, _, err = run(capsys, "sample", "--checkpoint", str(out_dir / "checkpoint.pt"),
                       "--out", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    code, out, err = run(capsys, "figures", "--checkpoint", str(out_dir / "checkpoint.pt"),
                         "--out", str(tmp_path / "fig"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == [
        "cluster_generations.png", "cluster_samples.png", "contingency_test.png", "training_curves.png"]


def test_train_resume_extends_a_run_then_evaluate(capsys, tmp_path):
    out_dir = tmp_path / "run"
    base = ["train", "--dataset", "mnist", "--config", "article-a", "--out", str(out_dir), "--no-progress"]
    assert run(capsys, *base, "--epochs", "1")[0] == 0
    code, out, err = run(capsys, *base, "--epochs", "2", "--resume")
    assert code == 0, err
    assert "resuming" in err and "after epoch 1/2" in err
    assert [h["epoch"] for h in json.loads((out_dir / "history.json").read_text())] == [1, 2]
    code, _, err = run(capsys, *base, "--epochs", "1", "--resume")
    assert code == 2 and "already trained 2 epochs" in err
    code, _, err = run(capsys, *base, "--epochs", "2", "--resume", "--seed", "3")
    assert code == 2 and "another configuration" in err
    code, out, _ = run(capsys, "evaluate", "--checkpoint", str(out_dir / "checkpoint.pt"), "--dataset", "mnist",
                       "--split", "train")
    assert code == 0 and json.loads(out)["n_samples"] == 60000


def test_bad_checkpoint_file_gives_an_error_not_a_traceback(capsys, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"definitely not a checkpoint")
    code, _, err = run(capsys, "evaluate", "--checkpoint", str(bad), "--dataset", "mnist")
    assert code == 2 and "\nerror: " in err and "not a readable vaeclust checkpoint" in err
    assert "Traceback" not in err


def test_profile_script_names_where_a_step_spends_its_time(capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location("profile_step", ROOT / "benchmarks" / "profile_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--config", "article-a", "--steps", "2", "--warmup", "1", "--rows", "5"])
    out = capsys.readouterr().out
    assert "article-a" in out and "2 profiled steps" in out
    assert "aten::convolution_backward" in out and "Input Shapes" in out
