"""Results files and the tables generated from them: naming, grouping, and the README kept in sync."""

import json
import statistics
from pathlib import Path

import pytest

from vaeclust_tutorial import results

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path, seed, purity, precision="float32", quick=False, init="zeros", curve=()):
    run = tmp_path / f"run-{seed}-{precision}-{init}"
    run.mkdir()
    scores = {"purity": purity, "accuracy": purity - 0.05, "nmi": 0.7, "ari": 0.6, "n_samples": 10}
    metrics = {"dataset": "mnist", "model": "article-b", "seed": seed, "epochs": 50, "train": scores,
               "test": scores, "wall_seconds": 600.0 + seed, "device": "cpu: x86_64, 2 threads",
               "precision": precision, "quick": quick, "config": {"cluster_init": init, "cluster_init_epoch": 1}}
    history = [{"epoch": e, "loss": 1.0, "seconds": 30.0, **({"test_purity": p} if p is not None else {})}
               for e, p in enumerate(curve or [purity], 1)]
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "history.json").write_text(json.dumps(history))
    return run


def test_bf16_runs_get_their_own_file_and_row(tmp_path):
    out = tmp_path / "results"
    for seed, purity in ((0, 0.75), (1, 0.80), (2, 0.78)):
        results.collect(_run(tmp_path, seed, purity), out)
    for seed, purity in ((0, 0.77), (1, 0.79)):
        results.collect(_run(tmp_path, seed, purity, precision="bfloat16"), out)
    names = sorted(p.name for p in out.glob("*.json"))
    assert names == ["mnist-article-b-seed0-bf16.json", "mnist-article-b-seed0.json",
                     "mnist-article-b-seed1-bf16.json", "mnist-article-b-seed1.json", "mnist-article-b-seed2.json"]
    rows = {r["precision"]: r for r in results.summarize(results.load_results(out))}
    assert rows["fp32"]["n"] == 3 and rows["bf16"]["n"] == 2 and rows["bf16"]["seeds"] == [0, 1]
    assert rows["fp32"]["test_purity"]["mean"] == pytest.approx(statistics.mean([0.75, 0.80, 0.78]))
    assert rows["fp32"]["test_purity"]["std"] == pytest.approx(statistics.stdev([0.75, 0.80, 0.78]))
    table = results.summary_markdown(out)
    assert "| mnist | article-b | bf16 | 50 | 0,1 | 78.0 ± 1.4 % (77.0–79.0)" in table
    assert "| mnist | article-b | fp32 | 50 | 0,1,2 | 77.7 ± 2.5 % (75.0–80.0)" in table


def test_collect_refuses_unfinished_and_quick_runs(tmp_path):
    with pytest.raises(ValueError, match="not a finished run"):
        results.collect(tmp_path, tmp_path / "r")
    with pytest.raises(ValueError, match="quick-mode run"):
        results.collect(_run(tmp_path, 0, 0.5, quick=True), tmp_path / "r")


def test_committed_tables_are_generated_from_the_committed_runs():
    """results/summary.md and the README's results table are what `results` writes from results/*.json."""
    records = results.load_results(ROOT / "results")
    assert records, "results/ holds no run files"
    assert all(not r["quick"] and r["test"]["n_samples"] == 10000 and r["train"]["n_samples"] == 60000
               for r in records), "every results file must be a full run on the whole splits"
    table = results.summary_markdown(ROOT / "results")
    assert (ROOT / "results" / "summary.md").read_text().startswith(table)
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index("<!-- results:start -->"), readme.index("<!-- results:end -->")
    assert table.strip() in readme[start:end]
    soon = results.time_to_purity_markdown(records)
    start, end = readme.index("<!-- time-to-purity:start -->"), readme.index("<!-- time-to-purity:end -->")
    assert soon.strip() in readme[start:end]


def test_kmeans_runs_get_their_own_file_and_row(tmp_path):
    out = tmp_path / "results"
    results.collect(_run(tmp_path, 0, 0.75), out)
    results.collect(_run(tmp_path, 0, 0.82, precision="bfloat16", init="kmeans"), out)
    assert sorted(p.name for p in out.glob("*.json")) == ["mnist-article-b+kmeans-e1-seed0-bf16.json",
                                                          "mnist-article-b-seed0.json"]
    rows = results.summarize(results.load_results(out))
    assert [(r["config"], r["precision"]) for r in rows] == [("article-b", "fp32"), ("article-b+kmeans-e1", "bf16")]
    # records written before cluster_init existed (no such config field) are the article's start
    assert results.config_label({"model": "article-a", "config": {}}) == "article-a"


def test_time_to_purity_counts_the_first_epoch_at_each_level(tmp_path):
    history = [{"epoch": 1, "seconds": 30.0}, {"epoch": 2, "seconds": 30.0, "test_purity": 0.71},
               {"epoch": 3, "seconds": 30.0, "test_purity": 0.69}, {"epoch": 4, "seconds": 30.0, "test_purity": 0.8}]
    assert results.epochs_to_purity(history, 0.7) == 2
    assert results.epochs_to_purity(history, 0.8) == 4
    assert results.epochs_to_purity(history, 0.845) is None
    out = tmp_path / "results"
    results.collect(_run(tmp_path, 0, 0.8, curve=[None, 0.71, 0.69, 0.8]), out)
    results.collect(_run(tmp_path, 1, 0.9, curve=[0.2, 0.5, 0.76, 0.9]), out)
    table = results.time_to_purity_markdown(results.load_results(out), thresholds=(0.7, 0.8, 0.95))
    assert table.splitlines()[0] == "| dataset | config | precision | epochs | seeds | 70 % | 80 % | 95 % | s per epoch (median) |"
    assert table.splitlines()[2] == "| mnist | article-b | fp32 | 50 | 0,1 | 2/2 (ep. 2, 3) | 2/2 (ep. 4, 4) | 0/2 | 30.0 |"


@pytest.mark.parametrize("name, marker", [("bench.json", "speed"), ("bench-article-a.json", "speed-article-a"),
                                          ("bench-cuda.json", "speed-gpu")])
def test_readme_speed_tables_are_generated_from_the_committed_bench_reports(name, marker):
    """Each committed `bench` report's table sits in the README block its device selects."""
    from vaeclust_tutorial.bench import readme_marker, speed_markdown
    report = json.loads((ROOT / "results" / name).read_text())
    assert readme_marker(report) == marker and not report["quick"]
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(f"<!-- {marker}:start -->"), readme.index(f"<!-- {marker}:end -->")
    assert readme[start:end].strip().endswith(speed_markdown(report, f"results/{name}").strip())


def test_purity_curves_group_by_start_and_read_means_at_epochs():
    def record(seed, init, precision, curve):
        return {"dataset": "mnist", "model": "article-b", "seed": seed, "precision": precision,
                "config": {"cluster_init": init, "cluster_init_epoch": 5},
                "history": [{"epoch": i + 1, "test_purity": p} for i, p in enumerate(curve)]}
    records = [record(0, "zeros", "float32", [0.2, 0.4, 0.6]), record(1, "zeros", "float32", [0.2, 0.6, 0.8]),
               record(0, "kmeans", "float32", [0.5, 0.7]), record(0, "zeros", "bfloat16", [0.9, 0.9, 0.9]),
               {**record(0, "zeros", "float32", [0.1]), "model": "article-a"}]
    curves = results.purity_curves(records, "mnist", "article-b", "fp32")
    assert list(curves) == ["article-b", "article-b+kmeans-e5"] and len(curves["article-b"]) == 2
    only_seed_1 = results.purity_curves(records, "mnist", "article-b", "fp32", seeds=(1,))
    assert list(only_seed_1) == ["article-b"] and [len(h) for h in only_seed_1["article-b"]] == [3]
    text = results.purity_at_epochs(curves, (2, 3))
    assert text.splitlines() == ["article-b (2 runs): ep. 2: 0.500 ± 0.141   ep. 3: 0.700 ± 0.141",
                                 "article-b+kmeans-e5 (1 runs): ep. 2: 0.700 ± 0.000"]
