"""The scripts in benchmarks/: what can be checked without TensorFlow and without timing anything.

``keras_reference.py`` imports Keras only inside its functions, and ``vs_keras.py`` runs both
frameworks in subprocesses, so their pure parts load in the project's environment.
``bench.py`` runs in quick mode here: its numbers mean nothing, its report and tables do.
"""

import importlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from tools.markers import read_between_markers
from vaeclust_tutorial import metrics

ROOT = Path(__file__).resolve().parents[1]
SPEED = ROOT / "docs" / "speed.md"
BENCH_REPORTS = ("bench.json", "bench-article-a.json", "bench-cuda.json")


@pytest.fixture
def bench():
    # imported here, not at the top: the vs_keras tests do not need the model code
    return importlib.import_module("benchmarks.bench")


def test_keras_reference_scores_agree_with_the_package():
    # the Keras reference computes its four scores with numpy + scipy only; they must be the package's
    kr = importlib.import_module("benchmarks.keras_reference")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    pred = np.where(rng.random(2000) < 0.6, (labels + 3) % 10, rng.integers(0, 10, 2000))
    ours = metrics.clustering_scores(labels, pred)
    theirs = kr.clustering_scores(labels, pred, 10)
    for key in ("purity", "accuracy", "nmi", "ari"):
        assert theirs[key] == pytest.approx(ours[key], abs=1e-12), key


def test_vs_keras_training_time_leaves_out_the_wait_before_the_first_batch():
    vk = importlib.import_module("benchmarks.vs_keras")
    history = [  # epoch 1 warms up; epoch 2 waited 20 s before its first batch; epoch 4 is never read
        {"seconds": 60.0, "batches": 600, "seconds_after_first_batch": 25.0},
        {"seconds": 41.0, "batches": 600, "seconds_after_first_batch": 20.9},
        {"seconds": 22.0, "batches": 600, "seconds_after_first_batch": 21.5},
        {"seconds": 1.0, "batches": 600, "seconds_after_first_batch": 1.0},
    ]
    assert vk.steady_epoch(history) == 22.0                       # whole epochs: the faster of 2 and 3
    assert vk.training_epoch(history) == pytest.approx(20.9 * 600 / 599)   # epoch 2 without its wait


def test_docs_vs_keras_table_is_generated_from_the_committed_reports():
    vk = importlib.import_module("benchmarks.vs_keras")
    files = sorted((ROOT / "results").glob("vs_keras*.json"))
    assert len(files) >= 2, "results/ should hold the vs_keras reports of versions A and B"
    reports = {f"results/{f.name}": json.loads(f.read_text()) for f in files}
    assert read_between_markers(SPEED, "vs-keras") == vk.markdown(reports).strip()


def test_vs_keras_docs_name_the_reports_the_same_from_any_folder(tmp_path, monkeypatch):
    vk = importlib.import_module("benchmarks.vs_keras")
    docs = tmp_path / "elsewhere" / "speed.md"
    docs.parent.mkdir()
    docs.write_text("intro\n<!-- vs-keras:start -->\nold\n<!-- vs-keras:end -->\noutro\n")
    monkeypatch.chdir(tmp_path)
    vk.write_docs(docs, ROOT / "results")
    assert read_between_markers(docs, "vs-keras") == read_between_markers(SPEED, "vs-keras")
    assert docs.read_text().startswith("intro\n") and docs.read_text().endswith("\noutro\n")


@pytest.mark.parametrize("name", BENCH_REPORTS)
def test_docs_speed_tables_are_generated_from_the_committed_bench_reports(bench, name):
    """Each committed report's table sits in the docs/speed.md block its device and model select."""
    report = json.loads((ROOT / "results" / name).read_text())
    assert not report["quick"]
    table = bench.speed_markdown(report, f"results/{name}")
    assert read_between_markers(SPEED, bench.docs_marker(report)) == table.strip()


def test_docs_marker_gives_each_device_and_model_its_own_block(bench):
    def marker(device, config):
        return bench.docs_marker({"machine": {"device": device}, "config": config})
    assert marker("cpu", "article-b") == "speed" and marker("cuda:0", "article-b") == "speed-gpu"
    assert marker("cpu", "article-a") == "speed-article-a" and marker("cuda", "article-c") == "speed-gpu-article-c"


def test_bench_refuses_a_docs_file_without_its_block_before_timing_anything(bench, tmp_path, capsys):
    docs = tmp_path / "speed.md"
    docs.write_text("<!-- speed-gpu:start -->\n<!-- speed-gpu:end -->\n")
    assert bench.main(["--device", "cpu", "--config", "article-a", "--docs", str(docs)]) == 2
    assert "lacks the markers <!-- speed-article-a:start -->" in capsys.readouterr().err
    assert bench.main(["--device", "cpu", "--out", str(tmp_path / "no" / "b.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_quick_bench_writes_a_report_that_the_docs_table_renders(bench, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VAECLUST_QUICK", "1")
    docs = tmp_path / "speed.md"
    docs.write_text("# Speed\n<!-- speed:start -->\n<!-- speed:end -->\n"
                    "<!-- speed-article-a:start -->\nkept\n<!-- speed-article-a:end -->\n")
    out = tmp_path / "b.json"
    assert bench.main(["--device", "cpu", "--out", str(out), "--docs", str(docs)]) == 0
    captured = capsys.readouterr()
    report = json.loads(out.read_text())
    assert report == json.loads(captured.out) and report["quick"] is True
    assert "repeat 1/1" in captured.err and "QUICK MODE" in captured.err
    bf16 = report["project_precision"] == "bf16"
    assert list(report["train_images_per_second"]) == [p.name for p in bench.PATHS if bf16 or not p.bf16]
    assert list(report["contrast_images_per_second"]) == (["bf16, plain kernels"] if bf16 else [])
    for stats in [*report["train_images_per_second"].values(), *report["eval_images_per_second"].values()]:
        assert 0 < stats["min"] <= stats["median"] <= stats["max"] and stats["n"] >= 1
    assert report["matmul_peak_gflops"]["fp32"] > 0 and 0 < report["finite_check_share_of_step"] < 1
    assert report["conv_ceiling"]["calls"] and report["conv_ceiling"]["rounds"] == 1
    # the table went into the article-b CPU block, named as the docs name reports; the other block is untouched
    table = bench.speed_markdown(report, bench.report_name(out))
    assert read_between_markers(docs, "speed") == table.strip()
    assert read_between_markers(docs, "speed-article-a") == "kept"


def test_every_training_path_starts_from_the_same_weights_and_only_the_lever_changes_the_layers(bench):
    from vaeclust_tutorial import preset
    cfg = preset("article-b")
    x = torch.rand(200, 1, 28, 28)
    state = bench.conv_cluster_vae(cfg.network).state_dict()
    plain = bench._Runner(bench.PATHS[2], cfg, torch.device("cpu"), x, None, state)     # + channels_last
    fast = bench._Runner(bench.PATHS[3], cfg, torch.device("cpu"), x, None, state)      # + fast kernels
    for runner in (plain, fast):
        assert runner.model.state_dict().keys() == state.keys()
        assert all(torch.equal(v, state[k]) for k, v in runner.model.state_dict().items())
    plain_layers = [type(m).__name__ for m in plain.model.decoder.modules()]
    fast_layers = [type(m).__name__ for m in fast.model.decoder.modules()]
    assert plain_layers != fast_layers and len(plain_layers) == len(fast_layers)


def test_conv_ceiling_replays_every_convolution_of_a_step_forward_and_backward(bench):
    from torch import nn

    from vaeclust_tutorial import preset
    cfg = preset("article-b")
    x = torch.rand(300, 1, 28, 28)
    runner = bench._Runner(bench.PATHS[-1], cfg, torch.device("cpu"), x, None,
                           bench.conv_cluster_vae(cfg.network).state_dict())
    convs = [m for m in runner.model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    seen = []
    hook = convs[0].register_forward_hook(lambda m, inp, out: seen.append(out.shape) and None)
    result = bench.conv_ceiling(runner, repeats=1, calls=1)
    hook.remove()
    passes = [c["pass"] for c in result["calls"]]
    assert passes.count("forward") == passes.count("backward") == len(convs)
    assert all(c["ms"] > 0 for c in result["calls"])
    # forward calls see the layers in order: the first conv reads the batch of images
    first, last = result["calls"][0], result["calls"][-1]
    assert first["input"][:2] == [100, 1] and first["weight"] == list(convs[0].weight.shape)
    # 2 x multiply-adds of the first conv, counted by hand: every output value takes C_in x kh x kw
    c_out, c_in, kh, kw = convs[0].weight.shape
    by_hand = 2 * seen[0].numel() * c_in * kh * kw / 1e9
    assert first["gflops"] * first["ms"] / 1e3 == pytest.approx(by_hand)
    # its backward, the last call, computes only the weight gradient (the images need none): as much again
    assert last["pass"] == "backward" and last["input"] == first["input"]
    assert last["gflops"] * last["ms"] / 1e3 == pytest.approx(by_hand)
    forward_flop = sum(c["gflops"] * c["ms"] / 1e3 for c in result["calls"] if c["pass"] == "forward")
    assert result["gflop_per_step"] == pytest.approx(3 * forward_flop, rel=0.02)   # backward ~ 2 x forward


@pytest.fixture
def cost():
    return importlib.import_module("benchmarks.cost")


def test_docs_cost_table_is_generated_from_the_committed_report(cost):
    report = json.loads((ROOT / "results" / "cost.json").read_text())
    assert not report["quick"] and list(report["configs"]) == list(cost.DEFAULT_CONFIGS)
    assert read_between_markers(SPEED, "cost") == cost.cost_markdown(report, "results/cost.json").strip()


def test_cost_configs_are_written_as_sweep_specs_and_bad_ones_say_what_to_write(cost):
    cfg = cost.parse_config(cost.BEYOND)
    assert (cfg.cat_weight, cfg.info_weight, cfg.consistency_weight, cfg.term2_trains_classifier) == (0, 5, 50, True)
    assert cost.config_label(cfg) == "beyond" == cost.config_label(cost.parse_config(
        "article-b+consistency-weight=50+info-weight=5+cat-weight=0"))
    for bad, says in [("mnist:article-b:0", "only the CONFIG part"), ("article-b+kmeans-e2", "leave +kmeans-eN out"),
                      ("article-z", "unknown config"), ("article-b+no-such=1", "not a setting of the model")]:
        with pytest.raises(ValueError, match=re.escape(says)):
            cost.parse_config(bad)


def test_cost_refuses_before_timing_anything(cost, tmp_path, capsys):
    assert cost.main(["article-b"]) == 2
    assert "at least two configs" in capsys.readouterr().err
    assert cost.main(["article-b", "article-a"]) == 2   # checked in run_cost, before any step
    assert "different networks" in capsys.readouterr().err
    docs = tmp_path / "speed.md"
    docs.write_text("no block here\n")
    assert cost.main(["--docs", str(docs)]) == 2
    assert "lacks the markers <!-- cost:start -->" in capsys.readouterr().err


def test_quick_cost_run_writes_a_report_that_the_docs_table_renders(cost, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VAECLUST_QUICK", "1")
    docs = tmp_path / "speed.md"
    docs.write_text("# Speed\n<!-- cost:start -->\nold\n<!-- cost:end -->\n")
    out = tmp_path / "c.json"
    assert cost.main(["--device", "cpu", "--out", str(out), "--docs", str(docs)]) == 0
    captured = capsys.readouterr()
    report = json.loads(out.read_text())
    assert report == json.loads(captured.out) and report["quick"] is True and "repeat 1/1" in captured.err
    assert list(report["configs"]) == list(cost.DEFAULT_CONFIGS)
    first, second = report["configs"].values()
    assert first["time_ratio_to_first"] == 1.0 and second["time_ratio_to_first"] > 0
    for c in report["configs"].values():
        s = c["images_per_second"]
        assert 0 < s["min"] <= s["median"] <= s["max"]
        assert c["minutes_per_epoch"] == pytest.approx(60000 / s["median"] / 60)
    source = importlib.import_module("benchmarks.bench").report_name(out)
    assert read_between_markers(docs, "cost") == cost.cost_markdown(report, source).strip()


def test_cost_runners_start_from_the_same_weights_and_differ_only_in_the_loss(cost):
    cfgs = [cost.parse_config(c) for c in cost.DEFAULT_CONFIGS]
    state = cost.build_model(cfgs[0]).state_dict()
    runners = [cost._Runner(c, torch.device("cpu"), state) for c in cfgs]
    for r in runners:
        assert all(torch.equal(v, state[k]) for k, v in r.model.state_dict().items())
    x = torch.rand(100, 1, 28, 28)
    before = {k: v.clone() for k, v in runners[1].model.state_dict().items()}
    runners[1].images_per_second([x])                   # a step with the consistency term trains
    assert any(not torch.equal(v, before[k]) for k, v in runners[1].model.state_dict().items())


def test_cost_runners_average_the_weights_as_training_does_and_take_a_precision(cost):
    cfgs = [cost.parse_config(c) for c in ("article-b", "beyond+move-gamma=0.7+teacher-decay=0.999", "beyond")]
    state = cost.build_model(cfgs[0]).state_dict()
    runners = [cost._Runner(c, torch.device("cpu"), state, "fp32") for c in cfgs]
    assert [r.teacher is not None for r in runners] == [False, True, False]
    assert {r.dtype for r in runners} == {torch.float32}
    teacher = runners[1].teacher.module
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    runners[1].images_per_second([torch.rand(100, 1, 28, 28)])
    assert any(not torch.equal(v, before[k]) for k, v in teacher.state_dict().items())   # the average moved
    with pytest.raises(SystemExit):
        cost.main(["article-b", "beyond", "--precision", "fp16"])
