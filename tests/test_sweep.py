"""tools/sweep.py: run specs, several runs at once, skip finished ones, stop and resume.

The tests that train start ``python -m vaeclust_tutorial train`` processes: marked slow."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.sweep import RunSpec, main, parse_spec, sweep, train_command
from vaeclust_tutorial.results import run_name

ROOT = Path(__file__).resolve().parent.parent


def test_specs_expand_seed_ranges_and_lists():
    assert parse_spec("mnist:article-b:0-2") == [RunSpec("mnist", "article-b", s) for s in (0, 1, 2)]
    assert [s.seed for s in parse_spec("fashion-mnist:article-c:4,1-2,4")] == [4, 1, 2]
    assert parse_spec("mnist:article-a:7")[0].name == "mnist-article-a-seed7"


def test_a_kmeans_start_spec_names_the_run_as_results_does_and_passes_the_options(tmp_path):
    spec, = parse_spec("mnist:article-b+kmeans-e5:3")
    assert spec == RunSpec("mnist", "article-b", 3, ("--cluster-init", "kmeans", "--cluster-init-epoch", "5"))
    assert spec.name == "mnist-article-b+kmeans-e5-seed3"
    metrics = {"dataset": "mnist", "network": "article-b", "seed": 3, "precision": "float32",
               "config": {"cluster_init": "kmeans", "cluster_init_epoch": 5}}
    assert run_name(metrics) == spec.name
    cmd = train_command(spec, tmp_path, 20, "cpu", "auto")
    assert cmd[cmd.index("--cluster-init"):cmd.index("--cluster-init") + 4] == \
        ["--cluster-init", "kmeans", "--cluster-init-epoch", "5"]
    assert "--cluster-init" not in train_command(parse_spec("mnist:article-b:3")[0], tmp_path, 20, "cpu", "auto")


def test_settings_in_a_spec_reach_train_and_name_the_run_as_results_does(tmp_path):
    spec, = parse_spec("mnist:article-b+cat-weight=0+info-weight=1+no-term2-trains-classifier:2")
    assert spec.name == "mnist-article-b+cat-weight=0+info-weight=1+no-term2-trains-classifier-seed2"  # nearest preset
    cmd = train_command(spec, tmp_path, 10, "cpu", "auto")
    assert cmd[-5:] == ["--cat-weight", "0", "--info-weight", "1", "--no-term2-trains-classifier"]
    metrics = {"dataset": "mnist", "network": "article-b", "seed": 2, "precision": "float32",
               "config": {"cat_weight": 0.0, "info_weight": 1.0, "term2_trains_classifier": False}}
    assert run_name(metrics) == spec.name
    # the same settings in another order are the same run
    assert parse_spec("mnist:article-b+no-term2-trains-classifier+info-weight=1+cat-weight=0:2")[0].name == spec.name


@pytest.mark.parametrize("text, message", [
    ("mnist:article-b+seed=3:0", "'+seed=3' is not a setting of the model"),
    ("mnist:article-b+info-weight=-1:0", "info_weight=-1.0 is invalid: it must be >= 0"),
    ("mnist:article-b", "is not DATASET:CONFIG:SEEDS"),
    ("svhn:article-b:0", "unknown dataset 'svhn'"),
    ("mnist:vade:0", "unknown config 'vade'"),
    ("mnist:vade+kmeans-e5:0", "unknown config 'vade'"),
    ("mnist:article-b+kmeans:0", "'+kmeans' is not a cluster start; write CONFIG+kmeans-eN"),
    ("mnist:article-b+kmeans-e0:0", "'+kmeans-e0' is not a cluster start"),
    ("mnist:article-b:4-2", "seeds '4-2' are not like"),
    ("mnist:article-b:x", "seeds 'x' are not like"),
])
def test_bad_specs_say_what_is_valid(capsys, text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_spec(text)
    assert main([text]) == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["mnist:article-b:0", "--jobs", "0"], "--jobs must be >= 1, got 0"),
    (["mnist:article-b:0", "--epochs", "x"], "--epochs must be an integer, got 'x'"),
    (["mnist:article-b:0", "--stop-after", "0"], "--stop-after must be a finite number > 0"),
    (["mnist:article-b:0", "--precision", "fp16"], "invalid choice: 'fp16'"),
])
def test_bad_options_are_rejected_with_what_is_valid(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_sweep_runs_in_parallel_skips_finished_runs_and_resumes_stopped_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("VAECLUST_QUICK", "1")
    logs = []
    # Stopped before any epoch can finish: nothing recorded, and the run says it can resume.
    # The second run, waiting for a free job slot, is never started and can start next time.
    rows = sweep(parse_spec("mnist:article-a:0-1"), tmp_path, epochs=2, stop_after=0.1, log=logs.append)
    assert [r["status"] for r in rows] == ["stopped after epoch 0/2 (resumable)"] * 2
    assert rows[0]["epochs"] == 0 and not (tmp_path / "mnist-article-a-seed1").exists()
    assert any("stopping 1 run(s)" in line for line in logs)

    rows = sweep(parse_spec("mnist:article-a:0-1"), tmp_path, jobs=2, epochs=2)
    assert [r["status"] for r in rows] == ["finished", "finished"] and [r["epochs"] for r in rows] == [2, 2]
    for r in rows:
        metrics = json.loads((tmp_path / r["run"] / "metrics.json").read_text())
        assert metrics["test"]["purity"] == r["purity"] and metrics["seed"] == int(r["run"][-1])
        assert (tmp_path / f"{r['run']}.log").exists()

    before = (tmp_path / "mnist-article-a-seed0" / "metrics.json").read_bytes()
    logs.clear()
    rows = sweep(parse_spec("mnist:article-a:0"), tmp_path, epochs=2, log=logs.append)
    assert rows[0]["status"] == "finished" and logs == ["mnist-article-a-seed0: finished earlier, skipped"]
    assert (tmp_path / "mnist-article-a-seed0" / "metrics.json").read_bytes() == before


@pytest.mark.slow
def test_a_failing_run_is_reported_with_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("VAECLUST_QUICK", "1")
    (tmp_path / "mnist-article-a-seed0").write_text("a file where the run folder should be")
    rows = sweep(parse_spec("mnist:article-a:0"), tmp_path, epochs=1)
    assert rows[0]["status"].startswith("failed (exit 2; see ")
    assert "error:" in (tmp_path / "mnist-article-a-seed0.log").read_text()


@pytest.mark.slow
def test_a_kmeans_start_sweep_trains_with_that_start(tmp_path, monkeypatch):
    monkeypatch.setenv("VAECLUST_QUICK", "1")
    rows = sweep(parse_spec("mnist:article-a+kmeans-e1:0"), tmp_path, epochs=2)
    assert rows[0]["status"] == "finished"
    metrics = json.loads((tmp_path / "mnist-article-a+kmeans-e1-seed0" / "metrics.json").read_text())
    assert metrics["config"]["cluster_init"] == "kmeans" and metrics["config"]["cluster_init_epoch"] == 1


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            pass
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc to find the runs")
def test_sigterm_to_a_sweep_stops_the_runs_it_started(tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "VAECLUST_QUICK": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "sweep.py"), "mnist:article-a:0",
                             "--epochs", "2", "--runs-dir", str(runs)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and len(_processes_mentioning(f"{runs}/mnist-article-a-seed0")) == 0:
        time.sleep(0.05)
    assert _processes_mentioning(f"{runs}/mnist-article-a-seed0"), "the sweep never started its run"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    time.sleep(0.2)
    assert _processes_mentioning(f"{runs}/mnist-article-a-seed0") == []


def test_a_sigterm_while_a_run_starts_still_stops_that_run(tmp_path, monkeypatch):
    """The signal lands right after the run's process exists and before the sweep has noted it:
    the sweep must still stop it (raising in the signal handler left such a run behind)."""
    import tools.sweep as sweep_module
    monkeypatch.setenv("VAECLUST_QUICK", "1")
    started = []
    real_popen = subprocess.Popen

    def popen_then_sigterm(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        os.kill(os.getpid(), signal.SIGTERM)
        return started[-1]

    monkeypatch.setattr(sweep_module.subprocess, "Popen", popen_then_sigterm)
    try:
        with pytest.raises(SystemExit) as stop:
            sweep(parse_spec("mnist:article-a:0"), tmp_path, epochs=2)
        assert stop.value.code == 128 + signal.SIGTERM
        assert len(started) == 1 and started[0].poll() is not None, "the run was left running"
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("text, message", [
    ("mnist:article-b+info-weight=1+info-weight=2:0", "info-weight set more than once"),
    ("mnist:article-b+kmeans-e5+kmeans-e7:0", "kmeans set more than once"),
])
def test_a_setting_given_twice_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(text)


def test_a_late_kmeans_start_is_left_to_the_sweeps_epochs():
    spec, = parse_spec("mnist:article-b+kmeans-e60:0")      # the preset's 50 epochs do not decide
    assert spec.name == "mnist-article-b+kmeans-e60-seed0"
