"""Results files and the tables generated from them: naming, grouping, and the docs kept in sync.

The package's readers (``vaeclust_tutorial.results``, notebook 05) and the maintainer's writer
(``tools/results_tables.py``).
"""

import json
import re
from pathlib import Path

import pytest

from tools import results_tables as rt
from tools.markers import read_between_markers
from vaeclust_tutorial import results

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path, seed, purity, precision="float32", quick=False, init="zeros", curve=(), epochs=50):
    run = tmp_path / f"run-{seed}-{precision}-{init}-{epochs}"
    run.mkdir()
    scores = {"purity": purity, "accuracy": purity - 0.05, "nmi": 0.7, "ari": 0.6, "n_samples": 10}
    metrics = {"dataset": "mnist", "network": "article-b", "seed": seed, "epochs": epochs, "train": scores,
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
        rt.collect(_run(tmp_path, seed, purity), out)
    for seed, purity in ((0, 0.77), (1, 0.79)):
        rt.collect(_run(tmp_path, seed, purity, precision="bfloat16"), out)
    names = sorted(p.name for p in out.glob("*.json"))
    assert names == ["mnist-article-b-seed0-bf16.json", "mnist-article-b-seed0.json",
                     "mnist-article-b-seed1-bf16.json", "mnist-article-b-seed1.json", "mnist-article-b-seed2.json"]
    records = results.load_results(out)
    rows = {r["precision"]: r for r in rt.summarize(records)}
    assert rows["fp32"]["n"] == 3 and rows["bf16"]["n"] == 2 and rows["bf16"]["seeds"] == [0, 1]
    table = rt.summary_markdown(records)
    assert "| mnist | article-b | bf16 | 50 | 0,1 | 78.0 ± 1.4 % (77.0–79.0)" in table
    assert "| mnist | article-b | fp32 | 50 | 0,1,2 | 77.7 ± 2.5 % (75.0–80.0)" in table


def test_collect_refuses_unfinished_and_quick_runs(tmp_path, capsys):
    with pytest.raises(ValueError, match="not a finished run"):
        rt.collect(tmp_path, tmp_path / "r")
    quick = _run(tmp_path, 0, 0.5, quick=True)
    with pytest.raises(ValueError, match="quick-mode run"):
        rt.collect(quick, tmp_path / "r")
    assert rt.main([str(quick), "--results-dir", str(tmp_path / "r")]) == 2
    assert "quick-mode run" in capsys.readouterr().err
    assert not (tmp_path / "r" / "summary.md").exists()


def test_a_quick_training_run_is_refused(trained_run, tmp_path, capsys):
    # a real run trained under VAECLUST_QUICK records it, and the tables never take it
    assert json.loads((trained_run / "metrics.json").read_text())["quick"] is True
    assert rt.main([str(trained_run), "--results-dir", str(tmp_path / "r")]) == 2
    assert "quick-mode run" in capsys.readouterr().err


def test_load_results_names_the_folder_and_the_fix_when_it_holds_no_results(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no results files .* in {re.escape(repr(str(tmp_path)))}.*"
                                                f"tools/results_tables.py RUN_DIR"):
        results.load_results(tmp_path)
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        results.load_results(tmp_path / "does-not-exist")


def test_the_tool_adds_runs_and_writes_the_summary_with_time_to_purity(tmp_path, capsys):
    out = tmp_path / "results"
    runs = [_run(tmp_path, 0, 0.8, curve=[0.5, 0.72, 0.8]), _run(tmp_path, 1, 0.9, curve=[0.76, 0.85, 0.9])]
    assert rt.main([*map(str, runs), "--results-dir", str(out)]) == 0
    assert "added " in capsys.readouterr().out
    records = results.load_results(out)
    assert [r["seed"] for r in records] == [0, 1] and [len(r["history"]) for r in records] == [3, 3]
    text = (out / "summary.md").read_text()
    assert text.startswith("| dataset | config | precision | epochs | seeds | test purity")
    tail = text.split("\n## First epoch at or above each test purity\n", 1)[1]     # notebook 05 shows it
    assert "| mnist | article-b | fp32 | 50 | 0,1 | 2/2 (ep. 2, 1) | 2/2 (ep. 3, 1) |" in tail
    assert json.loads((out / "summary.json").read_text())[0]["seeds"] == [0, 1]


def test_the_tool_refreshes_the_docs_blocks_and_nothing_else(tmp_path, monkeypatch):
    out = tmp_path / "results"
    for seed, purity in ((0, 0.75), (1, 0.80)):
        rt.collect(_run(tmp_path, seed, purity), out)
    rt.collect(_run(tmp_path, 0, 0.9, precision="bfloat16"), out)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "reproduction.md").write_text(
        "A\n<!-- results:start -->\nold\n<!-- results:end -->\nB\n"
        "<!-- time-to-purity:start -->\nold\n<!-- time-to-purity:end -->\nC\n"
        "<!-- ablation:start -->\nold\n<!-- ablation:end -->\nD\n")
    (tmp_path / "README.md").write_text("R\n<!-- results-headline:start -->\nold\n<!-- results-headline:end -->\nS\n"
                                        "<!-- results-beyond:start -->\nold\n<!-- results-beyond:end -->\nT\n")
    monkeypatch.setattr(rt, "ROOT", tmp_path)
    assert rt.main(["--results-dir", str(out), "--docs"]) == 0
    records = results.load_results(out)
    reproduction = tmp_path / "docs" / "reproduction.md"
    assert read_between_markers(reproduction, "results") == rt.summary_markdown(records).strip()
    assert read_between_markers(reproduction, "time-to-purity") == rt.time_to_purity_markdown(records).strip()
    assert [line for line in reproduction.read_text().splitlines() if "<" not in line and "|" not in line] \
        == ["A", "B", "C", "D"]
    assert read_between_markers(reproduction, "ablation") == rt.ablation_markdown(records).strip()
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("R\n") and "\nS\n" in readme and readme.endswith("\nT\n")
    # the 50-epoch runs read after epoch 10 (their one-entry history has none: left out) -> not run yet
    assert "| mnist | article-b (the article's model) | 0 |" in read_between_markers(tmp_path / "README.md", "results-beyond")
    # the headline: only fp32 runs of 50 epochs, mean ± std of the two seeds (0.75 and 0.80; accuracy 0.05 less)
    assert read_between_markers(tmp_path / "README.md", "results-headline").splitlines() == [
        "| dataset | config | seeds | test purity (mean ± std) | test Hungarian acc. (mean ± std) |",
        "|---|---|---|---|---|",
        "| mnist | article-b | 0,1 | 77.5 ± 3.5 % | 72.5 ± 3.5 % |"]


def test_headline_leaves_out_bf16_runs_and_other_lengths(tmp_path):
    out = tmp_path / "results"
    rt.collect(_run(tmp_path, 0, 0.75), out)
    rt.collect(_run(tmp_path, 0, 0.82, precision="bfloat16", init="kmeans"), out)
    rt.collect(_run(tmp_path, 1, 0.6, init="kmeans", epochs=20), out)
    rt.collect(_run(tmp_path, 2, 0.7, init="kmeans"), out)
    rows = rt.headline_markdown(results.load_results(out)).splitlines()[2:]
    assert rows == ["| mnist | article-b | 0 | 75.0 % (1 run) | 70.0 % (1 run) |",
                    "| mnist | article-b+kmeans-e1 | 2 | 70.0 % (1 run) | 65.0 % (1 run) |"]


def test_committed_tables_are_generated_from_the_committed_runs():
    """results/summary.md and .json, docs/reproduction.md's tables and the README's headline are what
    `python tools/results_tables.py --docs` writes from results/*.json."""
    records = results.load_results(ROOT / "results")
    assert all(not r["quick"] and r["test"]["n_samples"] == 10000 and r["train"]["n_samples"] == 60000
               for r in records), "every results file must be a full run on the whole splits"
    assert (ROOT / "results" / "summary.md").read_text() == rt.summary_text(records)
    assert json.loads((ROOT / "results" / "summary.json").read_text()) == rt.summarize(records)
    reproduction = ROOT / "docs" / "reproduction.md"
    assert read_between_markers(reproduction, "results") == rt.summary_markdown(records).strip()
    assert read_between_markers(reproduction, "time-to-purity") == rt.time_to_purity_markdown(records).strip()
    assert read_between_markers(reproduction, "ablation") == rt.ablation_markdown(records).strip()
    assert read_between_markers(ROOT / "README.md", "results-headline") == rt.headline_markdown(records).strip()
    assert read_between_markers(ROOT / "README.md", "results-beyond") == rt.beyond_markdown(records).strip()


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in (ROOT / "results").glob("*/summary.md")))
def test_each_results_subfolder_has_the_summary_of_its_own_runs(folder):
    """Runs kept apart from results/ (trained longer; run again on one machine) are full runs
    with their own summary, as `tools/results_tables.py RUNS --results-dir results/FOLDER` writes
    it (results/keras holds the Keras port's records, in their own format, and no summary)."""
    records = results.load_results(ROOT / "results" / folder)
    assert all(not r["quick"] and r["test"]["n_samples"] == 10000 and r["train"]["n_samples"] == 60000
               for r in records)
    assert (ROOT / "results" / folder / "summary.md").read_text() == rt.summary_text(records)
    assert json.loads((ROOT / "results" / folder / "summary.json").read_text()) == rt.summarize(records)


def test_kmeans_runs_get_their_own_file_and_row(tmp_path):
    out = tmp_path / "results"
    rt.collect(_run(tmp_path, 0, 0.75), out)
    rt.collect(_run(tmp_path, 0, 0.82, precision="bfloat16", init="kmeans"), out)
    assert sorted(p.name for p in out.glob("*.json")) == ["mnist-article-b+kmeans-e1-seed0-bf16.json",
                                                          "mnist-article-b-seed0.json"]
    rows = rt.summarize(results.load_results(out))
    assert [(r["config"], r["precision"]) for r in rows] == [("article-b", "fp32"), ("article-b+kmeans-e1", "bf16")]
    # records written before cluster_init existed (no such config field) are the article's start
    assert results.config_label({"network": "article-a", "config": {}}) == "article-a"


def test_time_to_purity_counts_the_first_epoch_at_each_level(tmp_path):
    history = [{"epoch": 1, "seconds": 30.0}, {"epoch": 2, "seconds": 30.0, "test_purity": 0.71},
               {"epoch": 3, "seconds": 30.0, "test_purity": 0.69}, {"epoch": 4, "seconds": 30.0, "test_purity": 0.8}]
    assert results.epochs_to(history, 0.7) == 2
    assert results.epochs_to(history, 0.8) == 4
    assert results.epochs_to(history, 0.845) is None
    out = tmp_path / "results"
    rt.collect(_run(tmp_path, 0, 0.8, curve=[None, 0.71, 0.69, 0.8]), out)
    rt.collect(_run(tmp_path, 1, 0.9, curve=[0.2, 0.5, 0.76, 0.9]), out)
    table = rt.time_to_purity_markdown(results.load_results(out), thresholds=(0.7, 0.8, 0.95))
    assert table.splitlines()[0] == "| dataset | config | precision | epochs | seeds | 70 % | 80 % | 95 % | s per epoch (median) |"
    assert table.splitlines()[2] == "| mnist | article-b | fp32 | 50 | 0,1 | 2/2 (ep. 2, 3) | 2/2 (ep. 4, 4) | 0/2 | 30.0 |"


def test_purity_curves_group_by_start_and_read_means_at_epochs():
    def record(seed, init, precision, curve):
        return {"dataset": "mnist", "network": "article-b", "seed": seed, "precision": precision,
                "config": {"cluster_init": init, "cluster_init_epoch": 5},
                "history": [{"epoch": i + 1, "test_purity": p} for i, p in enumerate(curve)]}
    records = [record(0, "zeros", "float32", [0.2, 0.4, 0.6]), record(1, "zeros", "float32", [0.2, 0.6, 0.8]),
               record(0, "kmeans", "float32", [0.5, 0.7]), record(0, "zeros", "bfloat16", [0.9, 0.9, 0.9]),
               {**record(0, "zeros", "float32", [0.1]), "network": "article-a"}]
    curves = results.purity_curves(records, "mnist", "article-b", "fp32")
    assert list(curves) == ["article-b", "article-b+kmeans-e5"] and len(curves["article-b"]) == 2
    only_seed_1 = results.purity_curves(records, "mnist", "article-b", "fp32", seeds=(1,))
    assert list(only_seed_1) == ["article-b"] and [len(h) for h in only_seed_1["article-b"]] == [3]
    text = results.purity_at_epochs(curves, (2, 3))
    assert text.splitlines() == ["article-b (2 runs): ep. 2: 0.500 ± 0.141   ep. 3: 0.700 ± 0.141",
                                 "article-b+kmeans-e5 (1 runs): ep. 2: 0.700 ± 0.000"]


def test_ablation_table_reports_every_seed_and_the_rows_not_run():
    def record(seed, accuracy, precision="float32", **cfg):
        return {"dataset": "mnist", "network": "article-b", "seed": seed, "epochs": 10, "precision": precision,
                "config": cfg, "test": {"accuracy": accuracy, "purity": accuracy, "nmi": 0.5, "ari": 0.4}}

    records = [record(0, 0.90, info_weight=1.0), record(1, 0.80, info_weight=1.0),
               record(0, 0.70), record(0, 0.75, precision="bfloat16")]
    table = results.scores_markdown(records, {"article-b": "article", "article-b+info-weight=1": "info",
                                                "article-b+consistency-weight=10": "cons"}, datasets=("mnist",))
    lines = table.splitlines()
    assert lines[2].startswith("| mnist | article | 1 | 10 | fp32 | 70.0 | 70.0 |")      # fp32 preferred; one run, no ±
    assert lines[3].startswith("| mnist | info | 2 | 10 | fp32 | 85.0 ± 7.1 |") and lines[3].endswith("| 0: 90.0, 1: 80.0 |")
    assert "| cons | 0 |" in lines[4] and "not run yet" in lines[4]
    # rows may depend on the dataset: a function of it
    per_dataset = results.scores_markdown(records, lambda d: {"article-b": d}).splitlines()[2:]
    assert per_dataset[0].startswith("| mnist | mnist | 1 |") and per_dataset[1].startswith("| fashion-mnist | fashion-mnist | 0 |")


def test_ablation_row_takes_one_run_per_seed_and_names_mixed_precisions():
    def record(seed, accuracy, precision):
        return {"dataset": "mnist", "network": "article-b", "seed": seed, "epochs": 10, "precision": precision,
                "config": {}, "test": {"accuracy": accuracy, "purity": accuracy, "nmi": 0.5, "ari": 0.4}}

    records = [record(0, 0.70, "bfloat16"), record(0, 0.60, "float32"), record(1, 0.80, "bfloat16"),
               record(2, 0.90, "float32")]
    row = results.scores_markdown(records, {"article-b": "article"}, datasets=("mnist",)).splitlines()[2]
    # seed 0 counted once (its fp32 run), seed 1 from bf16, seed 2 from fp32
    assert row.startswith("| mnist | article | 3 | 10 | fp32 (0, 2), bf16 (1) | 76.7 ± 15.3 |")
    assert row.endswith("| 0: 60.0, 1: 80.0, 2: 90.0 |")
    assert [r["seed"] for r in results.one_run_per_seed(records)] == [0, 1, 2]


def test_rows_with_different_seeds_are_compared_on_the_seeds_they_share():
    def record(seed, accuracy, dataset="mnist", precision="float32", **cfg):
        return {"dataset": dataset, "network": "article-b", "seed": seed, "epochs": 10, "precision": precision,
                "config": cfg, "test": {"accuracy": accuracy}}

    records = [record(s, 0.5 + s / 10) for s in range(5)] + [record(s, 0.9, info_weight=1.0) for s in (1, 3, 7)]
    records += [record(1, 0.1, precision="bfloat16"), record(3, 0.2, dataset="fashion-mnist", info_weight=1.0)]
    pairs = results.on_common_seeds(records, "mnist", ["article-b", "article-b+info-weight=1"])
    assert [[r["seed"] for r in runs] for runs in pairs.values()] == [[1, 3], [1, 3]]
    assert [r["test"]["accuracy"] for r in pairs["article-b"]] == [0.6, 0.8]     # fp32 run of seed 1, not bf16
    with pytest.raises(ValueError, match="no seed"):
        results.on_common_seeds(records, "fashion-mnist", ["article-b", "article-b+info-weight=1"])


def test_config_labels_name_presets_settings_and_old_records():
    from vaeclust_tutorial.config import config_label, preset

    assert config_label(preset("article-c")) == "article-c"
    assert config_label(preset("article-b", info_weight=1.0, cat_weight=0.0)) == "article-b+cat-weight=0+info-weight=1"
    assert config_label(preset("article-c", lam=5.0)) == "article-c+lam=5"
    # a record without the newer fields takes its network's preset, not the defaults (article-b's)
    assert config_label({"network": "article-c"}) == "article-c"
    assert config_label({"network": "article-b", "cluster_init": "kmeans", "cluster_init_epoch": 5}) == "article-b+kmeans-e5"
    # close values stay apart
    assert config_label(preset("article-b", lr=0.00123456789)) != config_label(preset("article-b", lr=0.00123457))
    with pytest.raises(ValueError, match="unknown config field"):
        config_label({"network": "article-b", "model": "article-b"})


def test_a_run_after_epoch_n_takes_that_epochs_scores_and_history():
    history = [{"epoch": e, "seconds": 10.0, "test_purity": p, "test_accuracy": p - 0.1, "test_nmi": 0.5,
                "test_ari": 0.4} for e, p in ((1, 0.5), (2, 0.7), (3, 0.9))]
    record = {"dataset": "mnist", "network": "article-b", "seed": 4, "epochs": 3, "precision": "float32",
              "config": {}, "test": {"accuracy": 0.8}, "train": {"accuracy": 0.8}, "wall_seconds": 31.0,
              "history": history}
    cut = results.after_epoch(record, 2)
    assert cut["epochs"] == 2 and cut["test"] == {"purity": 0.7, "accuracy": pytest.approx(0.6), "nmi": 0.5, "ari": 0.4}
    assert [h["epoch"] for h in cut["history"]] == [1, 2] and cut["wall_seconds"] == 20.0 and "train" not in cut
    assert record["epochs"] == 3 and len(record["history"]) == 3            # the record itself is left alone
    for bad in (0, 4):
        with pytest.raises(ValueError, match="within 1..3"):
            results.after_epoch(record, bad)
    cosine = {**record, "config": {"lr_schedule": "cosine"}}
    with pytest.raises(ValueError, match="learning-rate schedule"):
        results.after_epoch(cosine, 2)
    assert results.at_epoch([cosine, record], 2) == [cut]                  # left out, not cut
    no_eval = {**record, "history": [{"epoch": 1, "seconds": 10.0}, *history[1:]]}
    with pytest.raises(ValueError, match="no full test evaluation after epoch 1"):
        results.after_epoch(no_eval, 1)
    no_ari = {**record, "history": [{k: v for k, v in history[0].items() if k != "test_ari"}, *history[1:]]}
    with pytest.raises(ValueError, match="no full test evaluation after epoch 1"):
        results.after_epoch(no_ari, 1)
    # a k-means start after epoch 2 is part of a 3-epoch run, not of the 2-epoch run it would be cut to
    kmeans = {**record, "config": {"cluster_init": "kmeans", "cluster_init_epoch": 2, "epochs": 3}}
    with pytest.raises(ValueError, match="k-means after epoch 2"):
        results.after_epoch(kmeans, 2)
    assert results.at_epoch([kmeans], 2) == []
    kmeans_early = {**kmeans, "config": {**kmeans["config"], "cluster_init_epoch": 1}}
    assert results.after_epoch(kmeans_early, 2)["config"]["epochs"] == 2      # the config says the cut length


def test_first_epoch_at_a_level_refuses_unknown_metrics_and_percentages():
    history = [{"epoch": 1, "test_accuracy": 0.5}, {"epoch": 2, "test_accuracy": 0.99}]
    assert results.epochs_to(history, 0.98, "accuracy") == 2
    with pytest.raises(ValueError, match=r"metric must be one of \['purity', 'accuracy', 'nmi', 'ari'\]"):
        results.epochs_to(history, 0.98, "acuracy")
    for bad in (98, 0, -0.1):
        with pytest.raises(ValueError, match="0.98 for 98 %"):
            results.epochs_to(history, bad, "accuracy")
    with pytest.raises(ValueError, match="0.98 for 98 %"):
        results.scores_markdown([], {"article-b": "article"}, reach=98)


def test_scores_table_gives_each_seeds_first_epoch_at_a_level():
    def record(seed, curve):
        h = [{"epoch": e, "test_accuracy": a} for e, a in enumerate(curve, 1)]
        return {"dataset": "mnist", "network": "article-b", "seed": seed, "epochs": len(curve), "precision": "float32",
                "config": {}, "history": h, "test": {"accuracy": curve[-1], "purity": curve[-1], "nmi": 0.5, "ari": 0.4}}

    table = results.scores_markdown([record(0, [0.9, 0.985, 0.99]), record(1, [0.9, 0.95, 0.97])],
                                    {"article-b": "article", "article-c": "c"}, datasets=("mnist",), reach=0.98)
    head, rule, row, missing = table.splitlines()
    assert head.endswith("| first epoch at 98 % Hungarian |") and rule.count("|") == head.count("|")
    assert row.endswith("| 0: 99.0, 1: 97.0 | 2, – |") and missing.count("|") == head.count("|")


def test_ablation_rows_add_one_ingredient_each_end_at_the_preset_then_list_what_was_left_out():
    from vaeclust_tutorial.config import PRESETS, config_label, preset

    rows = results.ablation_rows()
    labels = list(rows)
    assert labels[0] == "article-b" and labels[2] == "beyond" == config_label(preset("beyond"))
    assert "(= beyond)" in rows["beyond"]
    # each row differs from the one before in the settings of one ingredient
    info = preset("article-b", cat_weight=0.0, info_weight=PRESETS["beyond"]["info_weight"])
    assert labels[1] == config_label(info) == "beyond+consistency-weight=0"
    # then one row per change tried on top of the preset
    assert labels[3:] == [config_label(preset("beyond", **changes)) for changes in results.ABLATION_TRIED.values()]
    assert labels[3] == "beyond+no-term2-trains-classifier" and "left out" in rows[labels[3]]
    assert len(set(labels)) == len(labels) == 3 + len(results.ABLATION_TRIED)
    # a change that mirrors images is a row for clothes, not for digits
    flip = config_label(preset("beyond", move_flip=True))
    assert flip in results.ablation_rows("fashion-mnist") and flip not in results.ablation_rows("mnist")
    assert list(results.ablation_rows("mnist")) == [label for label in labels if label != flip]


def test_runs_are_compared_at_one_length():
    def record(seed, epochs, evaluated=True):
        h = [{"epoch": e, "seconds": 1.0, **({"test_accuracy": e / 100, "test_purity": 0.5, "test_nmi": 0.5,
                                               "test_ari": 0.5} if evaluated else {})} for e in range(1, epochs + 1)]
        return {"dataset": "mnist", "network": "article-b", "seed": seed, "epochs": epochs, "config": {},
                "test": {"accuracy": 1.0}, "history": h}

    cut = results.at_epoch([record(0, 10), record(1, 50), record(2, 5), record(3, 50, evaluated=False)], 10)
    assert [(r["seed"], r["epochs"]) for r in cut] == [(0, 10), (1, 10)]
    assert cut[0]["test"] == {"accuracy": 1.0} and cut[1]["test"]["accuracy"] == 0.1
