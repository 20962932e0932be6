"""The benchmark on a dataset with an oracle (the Gaussian yardstick): floors and ratios in every row
under that row's own test masks, the Bayes reference rows, and how table, figure, merge and rerun
treat them; a dataset without an oracle reports as before."""

import json

import matplotlib.image
import numpy as np
import pytest

import mer.benchmark as bench
import mer.benchmark.run as bench_run
import mer.training.evaluation as evaluation
from mer.cli import build_parser, _data_config, main
from mer.data import (
    bayes_labels,
    gaussian_conversations,
    label_floor,
    pattern_masks,
    recovery_floor,
    split_masks,
    synthetic_conversations,
)
from mer.data.source import DataConfig
from mer.metrics import classification_metrics, regression_metrics

TINY = {
    "model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
    "train": {"epochs": 1, "batch_size": 8, "patience": 0},
}
RATES = [0.0, 0.3, 0.6]
PATTERNS = [("t",), ("a", "v")]
SEEDS = [3, 4]
METHODS = ["zero", "mean"]


@pytest.fixture(scope="module")
def gaussian():
    return gaussian_conversations(seed=0, num_conversations=24)


@pytest.fixture(scope="module")
def run(gaussian, tmp_path_factory):
    """One shared-training benchmark on the tiny Gaussian set; records the masks every test
    evaluation scored with."""
    out = tmp_path_factory.mktemp("oracle")
    seen = []
    real = evaluation.evaluate_model

    def recording(model, conversations, masks, **kwargs):
        if kwargs.get("split") == "test":
            seen.append((kwargs["seed"], [np.array(m) for m in masks]))
        return real(model, conversations, masks, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluation, "evaluate_model", recording)
        rows = bench.run_benchmark(gaussian, METHODS, protocol="both", missing_rates=RATES,
                                   patterns=PATTERNS, seeds=SEEDS, training="shared", config=TINY,
                                   out_dir=out)
    return rows, out, seen


def _independent_masks(dataset, row):
    """The test masks of a row, drawn here without the benchmark's code."""
    if row["protocol"] == "random":
        return list(split_masks(dataset, "test", row["missing_rate"], seed=row["seed"]))
    return pattern_masks(dataset.split("test"), tuple(row["pattern"]))


def _methods(rows):
    return [r for r in rows if not r.get("reference")]


def _references(rows):
    return [r for r in rows if r.get("reference")]


def _mean_fill_mse(dataset, masks):
    """Mean fill's recovery MSE from the definition: standardised by the training split's mean and
    population std, pooled over every dropped scalar."""
    train = [dataset[i] for i in dataset.splits["train"]]
    sse, count = 0.0, 0
    for c, m in enumerate(dataset.modalities):
        stacked = np.concatenate([conv.features[m] for conv in train]).astype(np.float64)
        mu, sd = stacked.mean(0), np.maximum(stacked.std(0), 1e-6)
        for conv, mask in zip(dataset.split("test"), masks):
            dropped = ~mask[:, c]
            sse += float((((conv.features[m][dropped] - mu) / sd) ** 2).sum())
            count += int(dropped.sum()) * conv.features[m].shape[1]
    return sse / count


# --------------------------------------------------------------------------- rows and floors
def test_every_evaluation_gets_the_masks_drawn_independently_for_its_condition_and_seed(gaussian, run):
    rows, _, seen = run
    conditions = len(RATES) + len(PATTERNS)
    assert len(seen) == len(METHODS) * len(SEEDS) * conditions
    by_order = iter(seen)  # shared training: per seed and method, every condition in order
    for seed in SEEDS:
        for name in METHODS:
            for row in [r for r in _methods(rows) if r["seed"] == seed and r["recoverer"] == name]:
                run_seed, masks = next(by_order)
                assert run_seed == seed
                expected = _independent_masks(gaussian, row)
                assert len(masks) == len(expected)
                assert all(np.array_equal(a, b) for a, b in zip(masks, expected))


def test_floors_in_every_row_equal_an_independent_computation_with_the_same_masks(gaussian, run):
    rows, _, _ = run
    for row in rows:
        masks = _independent_masks(gaussian, row)
        for key, info in (("floor_prior", "none"), ("floor_utterance", "utterance"),
                          ("floor_conversation", "conversation")):
            expected = recovery_floor(gaussian, masks, "test", info=info)
            got = row["metrics"][key]
            if np.isnan(expected):
                assert got is None or np.isnan(got)  # nothing dropped (MR 0, all available)
            else:
                assert got == pytest.approx(expected, rel=1e-12)


def test_floor_b_is_never_above_floor_a_nor_floor_a_above_the_prior(run):
    rows, _, _ = run
    dropped = [r for r in rows if r["metrics"]["floor_utterance"] is not None]
    assert len(dropped) == len(rows) * 4 // 5  # every condition but MR 0.0 drops something
    for r in dropped:
        m = r["metrics"]
        assert m["floor_conversation"] <= m["floor_utterance"] + 1e-12 <= m["floor_prior"] + 2e-12


def test_ratios_are_the_recovery_mse_over_each_floor(run):
    rows, _, _ = run
    checked = 0
    for r in _methods(rows):
        m = r["metrics"]
        for info in ("utterance", "conversation"):
            ratio = m[f"recovery_ratio_{info}"]
            if m["recovery_mse"] is None or m[f"floor_{info}"] is None:
                assert ratio is None
                continue
            assert ratio == pytest.approx(m["recovery_mse"] / m[f"floor_{info}"], rel=1e-12)
            checked += 1
        if m["recovery_mse"] is not None:
            # floor (b) is the lower floor, so the ratio to it is the larger one
            assert m["recovery_ratio_conversation"] >= m["recovery_ratio_utterance"] - 1e-12
    assert checked > 0


def test_mean_fill_recovery_matches_its_definition_on_the_masks_the_floors_use(gaussian, run):
    # Mean fill's MSE depends on the masks entry by entry: equal numbers mean equal masks.
    rows, _, _ = run
    for r in _methods(rows):
        if r["recoverer"] == "mean" and r["metrics"]["recovery_mse"] is not None:
            expected = _mean_fill_mse(gaussian, _independent_masks(gaussian, r))
            assert r["metrics"]["recovery_mse"] == pytest.approx(expected, rel=1e-4)
            # and it sits near the prior the oracle states (few test conversations: loosely)
            assert r["metrics"]["recovery_mse"] == pytest.approx(r["metrics"]["floor_prior"], rel=0.3)


# ------------------------------------------------------------------------------ Bayes rows
def test_one_bayes_row_per_condition_and_seed_marked_as_a_reference(run):
    rows, _, _ = run
    references = _references(rows)
    conditions = len(RATES) + len(PATTERNS)
    assert len(references) == conditions * len(SEEDS)
    assert len({(r["protocol"], r["condition"], r["seed"]) for r in references}) == len(references)
    for r in references:
        assert r["recoverer"] == bench_run.REFERENCE_NAME == "bayes"
        assert r["reference"] == "oracle"
        assert "training" not in r and "config" not in r
    assert len(_methods(rows)) == conditions * len(SEEDS) * len(METHODS)


def test_bayes_metrics_score_the_oracle_prediction_with_the_library_metrics(gaussian, run):
    rows, _, _ = run
    true = np.concatenate([c.labels for c in gaussian.split("test")])
    for r in _references(rows):
        masks = _independent_masks(gaussian, r)
        for key, info in (("metrics", "conversation"), ("metrics_utterance", "utterance")):
            expected = regression_metrics(bayes_labels(gaussian, masks, "test", info), true)
            for k, v in expected.items():
                assert r[key][k] == pytest.approx(v, rel=1e-12)
            assert r[key]["label_mse"] == pytest.approx(label_floor(gaussian, masks, "test", info))


def test_classification_view_gets_a_bayes_row_with_classification_metrics(tmp_path):
    data = gaussian_conversations(seed=1, num_conversations=24, task="classification")
    rows = bench.run_benchmark(data, ["zero"], missing_rates=[0.3], seeds=[5], config=TINY,
                               out_dir=tmp_path)
    (reference,) = _references(rows)
    masks = list(split_masks(data, "test", 0.3, seed=5))
    true = np.concatenate([c.labels for c in data.split("test")])
    expected = classification_metrics(bayes_labels(data, masks, "test"), true)
    assert reference["metrics"]["acc"] == pytest.approx(expected["acc"])
    assert "Bayes (oracle)" in (tmp_path / "table.md").read_text()


# ------------------------------------------------------------------------------- the report
def test_table_shows_the_bayes_column_the_ratios_and_both_floors(run):
    rows, out, _ = run
    table = (out / "table.md").read_text()
    assert "Bayes (oracle)" in table and "floor (a) utterance" in table
    assert "floor (b) conversation" in table
    assert table.count("| Condition | zero | mean | Bayes (oracle) |") == 2  # random and fixed
    assert table.count("| Condition | zero | mean | floor (a) utterance | floor (b) conversation |") == 2
    zero_03 = [r for r in _methods(rows) if r["recoverer"] == "zero" and r["condition"] == "0.3"]
    mse = np.mean([r["metrics"]["recovery_mse"] for r in zero_03])
    ratio_a = np.mean([r["metrics"]["recovery_ratio_utterance"] for r in zero_03])
    ratio_b = np.mean([r["metrics"]["recovery_ratio_conversation"] for r in zero_03])
    line = next(l for l in table.splitlines() if l.startswith("| 0.3 |") and "×" in l)
    assert f"{mse:.3f}±" in line and f"({ratio_a:.2f}× / {ratio_b:.2f}×)" in line


def test_the_bayes_rows_only_append_a_column_and_change_no_method_cell(run):
    rows, _, _ = run
    with_reference = bench.format_table(rows).splitlines()
    without = bench.format_table(_methods(rows)).splitlines()
    assert len(with_reference) == len(without)
    assert all(w.startswith(wo) for w, wo in zip(with_reference, without))
    # the caption, and per metric table its header, separator, conditions and Average
    assert sum(w != wo for w, wo in zip(with_reference, without)) == 1 + 2 * 3 + len(RATES) + len(PATTERNS)


def test_figure_has_a_second_panel_for_the_recovery_and_its_floors(run):
    _, out, _ = run
    assert matplotlib.image.imread(out / "missing_rate.png").shape[1] == round(2 * 6.4 * 120)


def test_a_dataset_without_an_oracle_has_no_floors_no_bayes_row_and_the_old_table(tmp_path):
    data = synthetic_conversations(seed=0, num_conversations=20, max_utterances=10)
    rows = bench.run_benchmark(data, ["zero"], missing_rates=[0.3], seeds=[1], config=TINY,
                               out_dir=tmp_path)
    assert len(rows) == 1 and not _references(rows)
    assert not any(k.startswith(("floor_", "recovery_ratio_")) for k in rows[0]["metrics"])
    table = (tmp_path / "table.md").read_text()
    assert "floor" not in table and "Bayes" not in table and "×" not in table
    assert table.splitlines()[-4:-2] == ["| Condition | zero |", "| --- | --- |"]
    width = matplotlib.image.imread(tmp_path / "missing_rate.png").shape[1]
    assert width == round(6.4 * 120)  # one panel


# ------------------------------------------------------------------------ rerun and merge


def test_a_rerun_trains_nothing_and_keeps_the_bayes_rows(gaussian, tmp_path, count_train):
    args = dict(missing_rates=[0.3], patterns=[("t",)], protocol="both", seeds=[3], config=TINY,
                out_dir=tmp_path)
    first = bench.run_benchmark(gaussian, METHODS, training="shared", **args)
    assert len(count_train) == len(METHODS)
    saved = json.loads((tmp_path / "results.json").read_text())
    again = bench.run_benchmark(gaussian, METHODS, training="shared", **args)
    assert len(count_train) == len(METHODS)  # nothing retrained
    assert again == first
    assert json.loads((tmp_path / "results.json").read_text()) == saved
    # Per-condition training in the same folder: new method rows, the same single Bayes row each.
    bench.run_benchmark(gaussian, ["zero"], training="per_condition", **args)
    merged = json.loads((tmp_path / "results.json").read_text())
    assert len(_references(merged)) == 2
    assert _references(merged) == _references(saved)
    table = (tmp_path / "table.md").read_text()
    assert "| Condition | zero (shared) | mean (shared) | zero (per_condition) | Bayes (oracle) |" in table


def test_a_bayes_row_of_another_dataset_is_refused_before_anything_trains(gaussian, tmp_path,
                                                                          count_train):
    args = dict(missing_rates=[0.3], seeds=[3], config=TINY, out_dir=tmp_path)
    bench.run_benchmark(gaussian, ["zero"], **args)
    rows = json.loads((tmp_path / "results.json").read_text())
    (tmp_path / "results.json").write_text(json.dumps(_references(rows)))  # only the Bayes row
    with pytest.raises(ValueError, match="bayes / random 0.3 / seed 3 / reference.*dataset_fingerprint"):
        bench.run_benchmark(gaussian_conversations(seed=1, num_conversations=24), ["zero"], **args)
    assert len(count_train) == 1


def test_merging_keeps_one_copy_of_identical_bayes_rows_and_refuses_different_ones(run):
    rows, out, _ = run
    merged = bench.merge_results([out, _references(rows)])
    assert len(_references(merged)) == len(_references(rows))
    assert bench.format_table(merged) == bench.format_table(rows)
    changed = [dict(r, metrics=dict(r["metrics"], acc7=0.0)) for r in _references(rows)]
    with pytest.raises(ValueError, match="two different bayes reference rows"):
        bench.merge_results([rows, changed])


# ------------------------------------------------------------------------------------- CLI
def test_data_option_takes_a_registered_source_name():
    args = build_parser().parse_args(["benchmark", "--out", "x", "--data", "gaussian",
                                      "--synthetic-conversations", "24", "--data-seed", "5"])
    assert _data_config(args, DataConfig()) == DataConfig("gaussian", {"num_conversations": 24, "seed": 5})
    args = build_parser().parse_args(["train", "--out", "x", "--data", "mmsa"])
    with pytest.raises(ValueError, match="'mmsa' source reads a file"):
        _data_config(args, DataConfig())


def test_cli_benchmark_on_the_gaussian_set_prints_the_floors(tmp_path, capsys):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    code = main(["benchmark", "--data", "gaussian", "--synthetic-conversations", "24", "--recoverers",
                 "mean", "--missing-rates", "0.3", "--seeds", "1", "--config", str(config),
                 "--out", str(tmp_path / "b")])
    printed = capsys.readouterr().out
    assert code == 0
    assert "floor (a) utterance" in printed and "Bayes (oracle)" in printed
    assert "1 result of this run (condition × seed × recoverer) and 1 Bayes reference row in" in printed
    main(["list"])
    assert "gaussian" in capsys.readouterr().out
