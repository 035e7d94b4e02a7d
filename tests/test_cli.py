"""The command line: every command once, and bad values rejected with what is valid."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

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
    (["train", "--dataset", "mnist", "--out", "x", "--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["train", "--dataset", "mnist", "--out", "x", "--clusters", "1"], "--clusters (K) must be >= 2, got 1"),
    (["train", "--dataset", "mnist", "--out", "x", "--lam", "0"], "--lam must be a finite number > 0, got 0"),
    (["train", "--dataset", "mnist", "--out", "x", "--lam", "-2"], "--lam must be a finite number > 0"),
    (["train", "--dataset", "mnist", "--out", "x", "--latent-dim", "0"], "--latent-dim must be >= 1"),
    (["train", "--dataset", "mnist", "--out", "x", "--eval-every", "0"], "--eval-every must be >= 1, got 0"),
    (["sweep", "mnist:article-b:0", "--jobs", "0"], "--jobs must be >= 1, got 0"),
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
    for command in ("prepare", "train", "sweep", "evaluate", "sample", "figures", "bench", "results", "ship"):
        assert command in out
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "--resume" in out and "article-b" in out and "lambda" in out


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


def test_results_and_ship_refuse_quick_runs(capsys, trained_run, tmp_path):
    code, _, err = run(capsys, "results", str(trained_run), "--results-dir", str(tmp_path / "r"))
    assert code == 2 and "quick-mode run" in err
    code, _, err = run(capsys, "ship", "--checkpoint", str(trained_run / "checkpoint.pt"),
                       "--out", str(tmp_path / "x.pt"))
    assert code == 2 and "quick-mode run" in err


def test_bench_quick_form_reports_both_paths(capsys, tmp_path):
    code, out, err = run(capsys, "bench", "--config", "article-a", "--out", str(tmp_path / "b.json"))
    assert code == 0, err
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["quick"] is True and report == json.loads(out)
    from vaeclust_tutorial.bench import PATHS
    bf16 = report["project_precision"] == "bf16"
    assert list(report["train_images_per_second"]) == [p.name for p in PATHS if bf16 or not p.bf16]
    assert all(s["median"] > 0 for s in report["train_images_per_second"].values())
    assert report["train_ratio_to_reference"]["reference"] == 1.0
    assert list(report["contrast_images_per_second"]) == (["bf16, plain kernels"] if bf16 else [])
    assert all(report["eval_images_per_second"][k]["median"] > 0 for k in ("reference", "project"))
    assert report["train_speedup"] > 0 and report["matmul_peak_gflops"]["fp32"] > 0
    assert 0 < report["finite_check_share_of_step"] < 1
    ceiling = report["conv_ceiling"]
    assert ceiling["ms_per_step"] == pytest.approx(sum(c["ms"] for c in ceiling["calls"]))
    assert ceiling["images_per_second"] == pytest.approx(100 / (ceiling["ms_per_step"] / 1e3))
    assert "repeat 1/1" in err


def test_conv_ceiling_replays_every_convolution_of_a_step_forward_and_backward():
    from torch import nn
    from vaeclust_tutorial import bench, preset
    from vaeclust_tutorial.models import conv_cluster_vae
    cfg = preset("article-b")
    x = torch.rand(300, 1, 28, 28)
    runner = bench._Runner(bench.PATHS[-1], cfg, torch.device("cpu"), x, None,
                           conv_cluster_vae("article-b").state_dict())
    result = bench.conv_ceiling(runner, repeats=1, calls=1)
    convs = [m for m in runner.model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 9   # 4 in the encoder, 4 in the decoder and its last conv
    passes = [c["pass"] for c in result["calls"]]
    assert passes.count("forward") == passes.count("backward") == len(convs)
    # forward calls see the layers in order: the first conv reads the image
    first = result["calls"][0]
    assert first["input"] == [100, 1, 29, 29] and first["weight"] == [32, 1, 3, 3]
    assert all(c["ms"] > 0 for c in result["calls"])
    # 2 x multiply-adds: the first conv's forward (14*14 outputs, 32 channels, 9 taps, 1 input channel);
    # its backward computes only the weight gradient (the image needs none), so the same count again
    assert first["gflops"] * first["ms"] / 1e3 == pytest.approx(2 * 100 * 14 * 14 * 32 * 9 / 1e9)
    last = result["calls"][-1]
    assert last["pass"] == "backward" and last["input"] == [100, 1, 29, 29]
    assert last["gflops"] * last["ms"] / 1e3 == pytest.approx(2 * 100 * 14 * 14 * 32 * 9 / 1e9)
    forward_flop = sum(c["gflops"] * c["ms"] / 1e3 for c in result["calls"] if c["pass"] == "forward")
    assert result["gflop_per_step"] == pytest.approx(3 * forward_flop, rel=0.02)   # backward ~ 2 x forward


def test_readme_marker_gives_each_device_and_model_its_own_block():
    from vaeclust_tutorial.bench import readme_marker
    def marker(device, config):
        return readme_marker({"machine": {"device": device}, "config": config})
    assert marker("cpu", "article-b") == "speed" and marker("cuda:0", "article-b") == "speed-gpu"
    assert marker("cpu", "article-a") == "speed-article-a" and marker("cuda", "article-c") == "speed-gpu-article-c"


def test_profile_script_names_where_a_step_spends_its_time(capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location("profile_step", ROOT / "benchmarks" / "profile_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--config", "article-a", "--steps", "2", "--warmup", "1", "--rows", "5"])
    out = capsys.readouterr().out
    assert "article-a" in out and "2 profiled steps" in out
    assert "aten::convolution_backward" in out and "Input Shapes" in out
