"""The benchmark runner and the CLI write the documented files with the documented keys."""

import json

import pytest

import mer
from mer.benchmark import ROW_KEYS, default_missing_rates, format_table
from mer.cli import main
from mer.data import synthetic_conversations

TINY = {
    "model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
    "train": {"epochs": 1, "batch_size": 8, "patience": 0},
}


@pytest.fixture(scope="module")
def tiny():
    return synthetic_conversations(seed=0, num_conversations=20, max_utterances=10)


def test_default_random_grid_stops_at_the_two_thirds_ceiling_for_three_modalities():
    rates = default_missing_rates(3)
    assert rates[:7] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert rates[7] == pytest.approx(2 / 3) and len(rates) == 8
    assert default_missing_rates(2)[-1] == 0.5 and len(default_missing_rates(2)) == 6


def test_benchmark_writes_results_table_and_figure_with_the_documented_keys(tiny, tmp_path):
    rows = mer.run_benchmark(tiny, recoverers=["zero", "mean"], protocol="random",
                             missing_rates=[0.0, 0.5], seeds=[1, 2], config=TINY, out_dir=tmp_path)
    assert len(rows) == 2 * 2 * 2
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == rows
    for row in saved:
        assert set(ROW_KEYS) <= set(row) and "missing_rate" in row
        assert row["training"] == "per_condition"
        assert {"acc2_non0", "f1_non0", "acc7", "mae", "corr", "recovery_mse"} <= set(row["metrics"])
    assert {r["condition"] for r in saved} == {"0.0", "0.5"}
    assert all(r["metrics"]["recovery_mse"] is None for r in saved if r["condition"] == "0.0")
    table = (tmp_path / "table.md").read_text()
    lines = table.splitlines()
    assert "| Condition | zero | mean |" in lines
    assert any(line.startswith("| 0.5 |") for line in lines)
    average = [line for line in lines if line.startswith("| Average |")]
    assert len(average) == 2  # the accuracy table and the recovery-error table
    assert average[0].count("±") == 2 * 3  # ACC2 / F1 / ACC7 for each method
    png = (tmp_path / "missing_rate.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_benchmark_resumes_without_rerunning_finished_runs(tiny, tmp_path, monkeypatch):
    kwargs = dict(recoverers=["zero"], protocol="fixed", patterns=[("t",), ("t", "a", "v")], seeds=[3],
                  config=TINY, out_dir=tmp_path)
    first = mer.run_benchmark(tiny, **kwargs)
    assert [r["condition"] for r in first] == ["{t}", "{t,a,v}"]
    import mer.benchmark.run as bench_run

    def fail(*args, **kw):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(bench_run, "train", fail)
    assert mer.run_benchmark(tiny, **kwargs) == first


def test_table_cells_are_mean_and_std_over_seeds():
    rows = [
        {"recoverer": "zero", "protocol": "random", "condition": "0.1", "seed": s,
         "metrics": {"acc2_non0": a, "f1_non0": a, "acc7": 0.5, "recovery_mse": 1.0}}
        for s, a in ((1, 0.8), (2, 0.9))
    ]
    table = format_table(rows)
    assert "| 0.1 | 85.0±7.1 / 85.0±7.1 / 50.0±0.0 |" in table


def test_cli_train_evaluate_benchmark_and_list(tmp_path, capsys):
    data = ["--synthetic-conversations", "20"]
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    assert main(["train", "--recoverer", "zero", "--missing-rate", "0.3", "--config", str(config),
                 "--out", str(tmp_path / "run"), *data]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "acc2_non0" in out["test"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["options"] == {
        "num_conversations": 20}

    assert main(["evaluate", str(tmp_path / "run"), "--pattern", "t,a"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["condition"] == "{t,a}" and "recovery_mse" in record["metrics"]

    assert main(["benchmark", "--recoverers", "zero", "--missing-rates", "0.2", "--seeds", "1",
                 "--config", str(config), "--out", str(tmp_path / "bench"), *data]) == 0
    printed = capsys.readouterr().out
    assert "| Average |" in printed
    for name in ("results.json", "table.md", "missing_rate.png"):
        assert (tmp_path / "bench" / name).is_file()

    assert main(["list"]) == 0
    assert "autoencoder" in capsys.readouterr().out
    assert main(["benchmark", "--recoverers", "nope", "--out", str(tmp_path / "x"), *data]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown recoverer 'nope'" in err and "'zero'" in err


def test_cli_benchmark_protocol_and_training_flags_reach_run_benchmark(tmp_path, recorded_benchmark,
                                                                      capsys):
    from mer.cli import build_parser

    calls = recorded_benchmark
    data = ["--synthetic-conversations", "20", "--out", str(tmp_path)]
    assert main(["benchmark", "--protocol", "both", "--training", "shared", *data]) == 0
    assert main(["benchmark", *data]) == 0
    assert [(c["protocol"], c["training"]) for c in calls] == [("both", "shared"),
                                                              ("random", "per_condition")]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["benchmark", "--training", "per_condition", *data])
    assert "invalid choice" in capsys.readouterr().err
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["benchmark"]
                         .format_help().split())
    assert "{random,fixed,both,literature}" in help_text and "{per-condition,shared}" in help_text
    assert "uniform mixture of all conditions" in help_text


def test_report_merges_runs_labels_variants_and_refuses_overlaps(tmp_path, capsys):
    def row(recoverer, seed, kwargs, acc):
        return {"recoverer": recoverer, "protocol": "random", "condition": "0.3", "missing_rate": 0.3,
                "seed": seed, "config": {"recoverer_kwargs": kwargs},
                "metrics": {"acc2_non0": acc, "f1_non0": acc, "acc7": 0.5, "recovery_mse": 1.0}}

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps([row("rohydr", 1, {}, 0.8), row("zero", 1, {}, 0.7)]))
    (tmp_path / "b.json").write_text(json.dumps([row("rohydr", 1, {"stages": "one"}, 0.6)]))
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b.json"), "--out", str(tmp_path / "m")]) == 0
    merged = json.loads((tmp_path / "m" / "results.json").read_text())
    assert [r["recoverer"] for r in merged] == ["rohydr", "zero", "rohydr[stages=one]"]
    table = (tmp_path / "m" / "table.md").read_text()
    assert "| Condition | rohydr | zero | rohydr[stages=one] |" in table
    # In the other order the run that left the setting out is the variant: it ran at the default.
    assert main(["report", str(tmp_path / "b.json"), str(tmp_path / "a"), "--out", str(tmp_path / "r")]) == 0
    reversed_rows = json.loads((tmp_path / "r" / "results.json").read_text())
    assert [r["recoverer"] for r in reversed_rows] == ["rohydr", "rohydr[stages=default]", "zero"]
    # One seed per column: plain values, no "±0.0" pretending to be a spread.
    assert "| 0.3 | 80.0 / 80.0 / 50.0 | 70.0 / 70.0 / 50.0 | 60.0 / 60.0 / 50.0 |" in table
    assert "seed 1 (one seed: no spread)" in table
    # The same run twice would double-count a seed: refused, with the offending row named.
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "a"), "--out", str(tmp_path / "x")]) == 2
    assert "two results for rohydr / random 0.3 / seed 1" in capsys.readouterr().err


def test_report_tells_apart_rows_built_under_different_defaults_when_both_record_them():
    from mer.benchmark import merge_results

    def row(seed, every):
        out = {"recoverer": "autoencoder", "protocol": "random", "condition": "0.3", "missing_rate": 0.3,
               "seed": seed, "config": {"recoverer_kwargs": {}},
               "metrics": {"acc2_non0": 0.5, "f1_non0": 0.5, "acc7": 0.5, "recovery_mse": 1.0}}
        return out if every is None else {**out, "recoverer_settings": every}

    old, new = {"hidden": 64, "dropout": 0.1}, {"hidden": 128, "dropout": 0.1}
    labels = [r["recoverer"] for r in merge_results([[row(1, old)], [row(1, new)]])]
    assert labels == ["autoencoder", "autoencoder[hidden=128]"]
    # Where one row does not record them, only the given settings can be compared: the same run.
    with pytest.raises(ValueError, match="two results for autoencoder / random 0.3 / seed 1"):
        merge_results([[row(1, old)], [row(1, None)]])


def test_cli_trains_a_generalist_on_a_mixed_protocol(tmp_path, capsys):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    args = ["train", "--recoverer", "zero", "--mixture", "0.0; 0.5 ;t,a", "--config", str(config),
            "--synthetic-conversations", "20", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    capsys.readouterr()
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["protocol"]
    assert saved["kind"] == "mixed" and saved["mixture"] == [0.0, 0.5, ["t", "a"]]
    # A generalist is then evaluated under any single condition.
    assert main(["evaluate", str(tmp_path / "run"), "--missing-rate", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out)["condition"] == "0.5"
    assert main(["train", "--protocol", "mixed", "--out", str(tmp_path / "x")]) == 2
    assert "needs --mixture" in capsys.readouterr().err
    assert main(["train", "--mixture", "0.3;t,q", "--out", str(tmp_path / "y"),
                 "--synthetic-conversations", "20"]) == 2
    assert "unknown" in capsys.readouterr().err


def test_cli_benchmark_recoverers_carry_their_own_settings_in_brackets(tmp_path, recorded_benchmark, capsys):
    data = ["--synthetic-conversations", "20", "--out", str(tmp_path)]
    assert main(["benchmark", "--recoverers", "zero,rohydr[stages=one, lr=1e-3],gsdnet[steps=20,mask=[t, a]]",
                 *data]) == 0
    call = recorded_benchmark[-1]
    assert call["recoverers"] == ["zero", "rohydr", "gsdnet"]
    assert call["recoverer_kwargs"] == {"rohydr": {"stages": "one", "lr": 0.001},
                                        "gsdnet": {"steps": 20, "mask": ["t", "a"]}}
    assert main(["benchmark", *data]) == 0  # no flag: the defaults, no settings
    assert recorded_benchmark[-1]["recoverer_kwargs"] == {}
    for given, message in (("rohydr,rohydr[stages=one]", "rohydr given twice"),
                           ("rohydr[stages]", "expected key=value inside the brackets"),
                           ("rohydr[stages=one", "unbalanced brackets"),
                           ("rohydr[stages=one,stages=two]", "'stages' is given twice"),
                           ("rohydr stages=one", "expected NAME or NAME[key=value,...]")):
        with pytest.raises(SystemExit):
            main(["benchmark", "--recoverers", given, *data])
        assert message in capsys.readouterr().err, given


def test_benchmark_refuses_an_unknown_recoverer_setting_before_training(tmp_path, capsys, monkeypatch):
    import mer.benchmark.run as bench_run

    def fail(*args, **kw):
        raise AssertionError("a method trained before the bad setting was refused")

    monkeypatch.setattr(bench_run, "train", fail)
    assert main(["benchmark", "--recoverers", "zero,autoencoder[hiden=8]", "--missing-rates", "0.2",
                 "--seeds", "1", "--synthetic-conversations", "20", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "recoverer 'autoencoder' got unknown settings ['hiden']" in err and "'hidden'" in err
    from mer.recoverers import check_recoverer_settings

    for name, settings in (("rohydr", {"hddm": False}), ("gsdnet", {"sampling_steps": 10})):  # --help's example
        check_recoverer_settings(name, settings)


def test_report_never_replaces_a_results_file_it_was_not_given(tmp_path, capsys):
    def rows(recoverer):
        return [{"recoverer": recoverer, "protocol": "random", "condition": "0.3", "missing_rate": 0.3, "seed": 1,
                 "config": {"recoverer_kwargs": {}},
                 "metrics": {"acc2_non0": 0.5, "f1_non0": 0.5, "acc7": 0.5, "recovery_mse": 1.0}}]

    for folder, recoverer in (("a", "zero"), ("b", "mean")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "results.json").write_text(json.dumps(rows(recoverer)))
    before = (tmp_path / "b" / "results.json").read_bytes()
    assert main(["report", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 2
    assert "already holds a results.json that is not among the results reported" in capsys.readouterr().err
    assert (tmp_path / "b" / "results.json").read_bytes() == before
    # Given among the results, it is merged into the table it then holds.
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "b")]) == 0
    assert [r["recoverer"] for r in json.loads((tmp_path / "b" / "results.json").read_text())] == ["zero", "mean"]


def test_report_refuses_mixed_tasks_and_metrics_that_are_not_numbers(tmp_path, capsys):
    def row(recoverer, metrics):
        return {"recoverer": recoverer, "protocol": "random", "condition": "0.3", "missing_rate": 0.3, "seed": 1,
                "config": {"recoverer_kwargs": {}}, "metrics": metrics}

    regression = {"acc2_non0": 0.5, "f1_non0": 0.5, "acc7": 0.5, "recovery_mse": 1.0}
    (tmp_path / "mixed.json").write_text(json.dumps([row("zero", regression),
                                                      row("mean", {"acc": 0.4, "f1": 0.4, "recovery_mse": 1.0})]))
    assert main(["report", str(tmp_path / "mixed.json"), "--out", str(tmp_path / "m")]) == 2
    assert "the results mix regression rows" in capsys.readouterr().err
    (tmp_path / "text.json").write_text(json.dumps([row("zero", {**regression, "acc2_non0": "high"})]))
    assert main(["report", str(tmp_path / "text.json"), "--out", str(tmp_path / "t")]) == 2
    assert "not a benchmark results file: row 0's metrics ['acc2_non0'] are not numbers" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--missing-rate", "0.3", "--pattern", "t"], "--missing-rate and --pattern name different protocols"),
    (["--protocol", "none", "--missing-rate", "0.3"], "--protocol none does not use --missing-rate"),
    (["--protocol", "random", "--pattern", "t,a"], "--protocol random does not use --pattern"),
])
def test_train_refuses_protocol_options_it_would_ignore(tmp_path, capsys, flags, message):
    assert main(["train", "--recoverer", "zero", "--synthetic-conversations", "20", *flags,
                 "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "best.pt").exists()


@pytest.mark.parametrize("flags, message", [
    (["--feature-dirs", "t=gc/t,a=gc/a"], "--feature-dirs describe a --data file, and none is given"),
    (["--data-format", "gcnet"], "--data-format describe a --data file, and none is given"),
    (["--data", "FILE", "--synthetic-conversations", "7"],
     "--synthetic-conversations set the generated data, not a --data file"),
])
def test_train_refuses_data_options_it_would_ignore(tmp_path, capsys, flags, message):
    data = tmp_path / "clips.pkl"
    data.write_bytes(b"")  # never read: the flags are refused first
    flags = [str(data) if f == "FILE" else f for f in flags]
    assert main(["train", "--recoverer", "zero", *flags, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err


def test_a_pattern_given_by_set_is_read_by_comma_and_only_with_the_fixed_protocol(tmp_path, capsys):
    from mer.config import MissingProtocol

    assert MissingProtocol("fixed", 0.0, "t,a").pattern == ("t", "a")  # not ('t', ',', 'a')
    common = ["train", "--recoverer", "zero", "--synthetic-conversations", "20", "--epochs", "1"]
    assert main([*common, "--set", "protocol.pattern=[t, a]", "--out", str(tmp_path / "r")]) == 2
    assert "a pattern (t, a) applies to the fixed protocol, not to kind 'random'" in capsys.readouterr().err
    assert main([*common, "--set", "protocol.kind=fixed", "protocol.pattern=t,a", "--out", str(tmp_path / "f")]) == 0
    assert json.loads((tmp_path / "f" / "config.json").read_text())["protocol"]["pattern"] == ["t", "a"]


def test_ctrl_c_is_one_line_with_exit_code_130_and_says_how_to_go_on(tmp_path, capsys, monkeypatch):
    import mer.cli

    def cut(args):
        raise KeyboardInterrupt

    for name in ("train", "report"):
        monkeypatch.setitem(mer.cli.COMMANDS, name, (*mer.cli.COMMANDS[name][:1], cut, mer.cli.COMMANDS[name][2]))
    assert main(["train", "--out", str(tmp_path / "run")]) == 130
    assert capsys.readouterr().err == ("\nmer train: interrupted; the same command goes on from what was saved "
                                       "(--no-resume starts over)\n")
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 130
    assert capsys.readouterr().err == "\nmer report: interrupted\n"
