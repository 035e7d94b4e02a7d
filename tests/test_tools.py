"""The maintainer's tools in tools/: generated blocks, shipping a checkpoint, the notebook table."""

import gzip
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import torch

from tools import markers, run_notebooks, score_objective, ship
from vaeclust_tutorial import checkpoint

ROOT = Path(__file__).resolve().parent.parent


def test_replace_between_markers_rewrites_one_block_and_keeps_the_rest(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("head\n<!-- a:start -->\nold a\n<!-- a:end -->\nmiddle\n<!-- b:start -->\nold b\n<!-- b:end -->\ntail\n")
    markers.replace_between_markers(doc, "a", "\n| new |\n\n")
    assert doc.read_text() == ("head\n<!-- a:start -->\n| new |\n<!-- a:end -->\nmiddle\n"
                               "<!-- b:start -->\nold b\n<!-- b:end -->\ntail\n")
    assert markers.read_between_markers(doc, "a") == "| new |"
    with pytest.raises(ValueError, match="lacks the markers <!-- c:start --> ... <!-- c:end -->"):
        markers.replace_between_markers(doc, "c", "x")
    with pytest.raises(ValueError, match="<!-- c:start -->"):
        markers.read_between_markers(doc, "c")


def test_ship_refuses_quick_and_unfinished_runs(trained_run, tmp_path, capsys):
    out = tmp_path / "x.pt"
    assert ship.main(["--checkpoint", str(trained_run / "checkpoint.pt"), "--out", str(out)]) == 2
    assert "quick-mode run" in capsys.readouterr().err and not out.exists()
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(trained_run / "checkpoint.pt", unfinished)
    assert ship.main(["--checkpoint", str(unfinished / "checkpoint.pt"), "--out", str(out)]) == 2
    assert "metrics.json is missing" in capsys.readouterr().err and not out.exists()
    assert ship.main(["--checkpoint", str(tmp_path / "none.pt"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_shipped_file_keeps_the_model_and_the_metrics_and_drops_the_training_state(trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "quick": False}))   # as a full run records it
    out = tmp_path / "checkpoints" / "mnist.pt"
    assert ship.main(["--checkpoint", str(run / "checkpoint.pt"), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["test"] == metrics["test"]
    shipped, original = checkpoint.load(out), checkpoint.load(run / "checkpoint.pt")
    assert "optimizer" not in shipped and "rng" not in shipped and shipped["metrics"]["test"] == metrics["test"]
    assert shipped["epoch"] == original["epoch"] and shipped["config"] == original["config"]
    assert out.stat().st_size < (run / "checkpoint.pt").stat().st_size
    model, _ = checkpoint.model_from_checkpoint(out)
    for k, v in model.state_dict().items():
        assert (v == original["model"][k]).all(), k


def test_readme_notebook_table_is_generated_from_the_committed_notebooks():
    """The README's notebook list is what `python tools/run_notebooks.py --no-execute --readme README.md` writes."""
    assert markers.read_between_markers(ROOT / "README.md", "notebooks") == run_notebooks.timing_table().strip()


def test_notebook_table_reads_titles_and_stamps(tmp_path):
    import nbformat
    for name, stamp in (("01_a.ipynb", {"mode": "full", "seconds": 90.0}), ("02_b.ipynb", {"mode": "quick"})):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# Notebook {name[:2]} · Title {name[3]}\n\ntext")])
        nb.metadata["vaeclust"] = stamp
        nbformat.write(nb, tmp_path / name)
    assert run_notebooks.timing_table(tmp_path).splitlines()[2:] == [
        "| [`01_a.ipynb`](notebooks/01_a.ipynb) | Title a | 1.5 min |",
        "| [`02_b.ipynb`](notebooks/02_b.ipynb) | Title b | not executed |"]


@pytest.mark.slow
def test_two_step_baseline_writes_one_file_per_seed_and_skips_finished_ones(tmp_path, capsys):
    from tools import two_step

    argv = ["mnist", "--seeds", "0", "--epochs", "1", "--network", "article-a", "--device", "cpu",
            "--out", str(tmp_path)]
    assert two_step.main(argv) == 0
    path = tmp_path / "mnist-article-a-vae1-lam5-seed0.json"
    record = json.loads(path.read_text())
    assert record["quick"] is True and record["epochs"] == 1 and len(record["history"]) == 1
    assert set(record["test"]) == {"k-means", "Gaussian mixture"}
    assert 0.0 < record["test"]["k-means"]["accuracy"] <= 1.0 and record["test"]["k-means"]["n_samples"] == 1000
    assert two_step.main(argv) == 0 and "done earlier, skipped" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [(["mnist", "--seeds", "4-2"], "seeds '4-2' are not like"),
                                           (["mnist", "--epochs", "0"], "--epochs must be >= 1")])
def test_two_step_baseline_rejects_bad_options(argv, message, capsys, tmp_path):
    from tools import two_step

    assert two_step.main([*argv, "--out", str(tmp_path)]) == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_two_step_baseline_seeds_its_weights_whatever_ran_before(tmp_path):
    from tools import two_step

    base = ["mnist", "--epochs", "1", "--network", "article-a", "--device", "cpu"]
    assert two_step.main([*base, "--seeds", "0-1", "--out", str(tmp_path / "both")]) == 0
    assert two_step.main([*base, "--seeds", "1", "--out", str(tmp_path / "alone")]) == 0
    name = "mnist-article-a-vae1-lam5-seed1.json"
    after, alone = (json.loads((tmp_path / d / name).read_text()) for d in ("both", "alone"))
    assert after["history"] == alone["history"]


def test_pack_runs_carries_the_data_out_and_back_checked(tmp_path):
    from tools import pack_runs
    from vaeclust_tutorial import data
    packed = pack_runs.pack_data(tmp_path / "packed")
    assert len(packed) == 8 and sum(p.stat().st_size for p in packed) < 50e6     # fits a 64 MB transfer
    back = pack_runs.unpack_data(tmp_path / "packed", tmp_path / "data")
    folders = {info.folder: name for name, info in data.DATASETS.items()}
    assert len(back) == 8
    assert all(p.read_bytes() == (data.raw_dir(folders[p.parent.parent.name]) / p.name).read_bytes() for p in back)
    bad = tmp_path / "packed" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(b"not MNIST"))
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte"):
        pack_runs.unpack_data(tmp_path / "packed", tmp_path / "data2")


def test_pack_runs_brings_records_slim_models_and_resumable_checkpoints_back(trained_run, tmp_path):
    from tools import pack_runs
    runs = tmp_path / "runs"
    finished, unfinished, quick = runs / "mnist-article-a-seed0", runs / "mnist-article-a-seed1", runs / "quick"
    for run in (finished, unfinished, quick):
        shutil.copytree(trained_run, run)
    metrics = json.loads((finished / "metrics.json").read_text())
    (finished / "metrics.json").write_text(json.dumps({**metrics, "quick": False}))   # as a full run's record
    (unfinished / "metrics.json").unlink()
    (runs / "mnist-article-a-seed1.log").write_text("epoch 1 ...\n")
    size = (unfinished / "checkpoint.pt").stat().st_size
    archives = pack_runs.pack_runs(sorted(runs.iterdir()), tmp_path / "out", max_mb=1.2 * size / 1e6)
    names = sorted(a.name for a in archives)
    assert names == ["histories.tar.gz", "resume-1.tar", "shipped-1.tar"]          # the quick run ships no model
    assert all(a.stat().st_size <= 1.2 * size for a in archives)
    back = pack_runs.unpack_runs(archives, tmp_path / "back")
    assert [r.name for r in back] == ["mnist-article-a-seed0", "mnist-article-a-seed1", "quick"]
    assert (tmp_path / "back" / unfinished.name / "checkpoint.pt").read_bytes() == (unfinished / "checkpoint.pt").read_bytes()
    assert (tmp_path / "back" / unfinished.name / "run.log").read_text() == "epoch 1 ...\n"
    assert (tmp_path / "back" / finished.name / "history.json").read_bytes() == (finished / "history.json").read_bytes()
    model, state = checkpoint.model_from_checkpoint(tmp_path / "back" / finished.name / "shipped.pt")
    assert state["metrics"]["quick"] is False and "optimizer" not in state
    with pytest.raises(ValueError, match="more than --max-mb allows"):
        pack_runs.pack_runs([unfinished], tmp_path / "small", max_mb=0.5 * size / 1e6)
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        tar.add(finished / "history.json", arcname="../history.json")
    with pytest.raises(ValueError, match="not a RUN/FILE entry"):
        pack_runs.unpack_runs([evil], tmp_path / "back")


def test_score_objective_sums_the_run_s_own_terms_on_fixed_draws_and_scores_the_test_split(trained_run, mnist_small,
                                                                                              capsys):
    first, again = (score_objective.score(trained_run, seed=3, splits=mnist_small) for _ in range(2))
    assert first == again                                           # the same draws: the same numbers
    history = json.loads((trained_run / "history.json").read_text())
    terms = [k for k in history[-1] if k in ("reconstruction", "cluster_kl", "categorical_kl")]
    assert terms and first["loss"] == pytest.approx(sum(first[k] for k in terms), rel=1e-6)
    other = score_objective.score(trained_run, seed=4, splits=mnist_small)
    assert other["loss"] != first["loss"]                           # another seed: other z samples
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert first["test_accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-9)
    assert score_objective.main([str(trained_run.parent / "no-such-run")]) == 2
    assert "does not exist: give the folder of a run" in capsys.readouterr().err


def test_score_objective_scores_the_trained_weights_of_a_run_that_reads_out_an_average(tmp_path, mnist_small):
    from vaeclust_tutorial import preset, train
    run = tmp_path / "avg"
    train(preset("article-a", epochs=1, train_limit=500, test_limit=300, device="cpu", teacher_decay=0.99),
          run, splits=mnist_small, progress=False)
    model, state = score_objective.trained_model(run)
    weights = model.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in state["student"].items())
    assert not all(torch.equal(weights[k], v) for k, v in state["model"].items())   # not the average
    last = json.loads((run / "history.json").read_text())[-1]
    scored = score_objective.score(run, splits=mnist_small)
    assert scored["test_accuracy"] == pytest.approx(last["trained_test_accuracy"], abs=1e-9)
