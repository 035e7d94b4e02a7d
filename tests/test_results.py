"""Results files and the tables generated from them: naming, grouping, and the README kept in sync."""

import json
import statistics
from pathlib import Path

import pytest

from vaeclust_tutorial import results

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path, seed, purity, precision="float32", quick=False):
    run = tmp_path / f"run-{seed}-{precision}"
    run.mkdir()
    scores = {"purity": purity, "accuracy": purity - 0.05, "nmi": 0.7, "ari": 0.6, "n_samples": 10}
    metrics = {"dataset": "mnist", "model": "article-b", "seed": seed, "epochs": 50, "train": scores,
               "test": scores, "wall_seconds": 600.0 + seed, "device": "cpu: x86_64, 2 threads",
               "precision": precision, "quick": quick}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "history.json").write_text(json.dumps([{"epoch": 1, "loss": 1.0}]))
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
    assert all(not r["quick"] and r["epochs"] == 50 for r in records)
    table = results.summary_markdown(ROOT / "results")
    assert (ROOT / "results" / "summary.md").read_text().startswith(table)
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index("<!-- results:start -->"), readme.index("<!-- results:end -->")
    assert table.strip() in readme[start:end]
