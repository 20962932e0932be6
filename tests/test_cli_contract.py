"""The command-line contract: every user error of every command is one line on stderr,
``<prog> <command>: error: <what is wrong, naming the file or setting>``, and exit code 2; ``--debug``
shows the traceback instead; a bug keeps its traceback."""

import errno
import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from mer.cli import main as mer_main
from spectraldiff.atomic import atomic_write
from spectraldiff.cli import main as sd_main
from spectraldiff.cli_errors import error_line, run_command

TINY = {
    "model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
    "train": {"epochs": 1, "batch_size": 8, "patience": 0},
}
DATA = ["--synthetic-conversations", "20"]


def one_line_error(capsys, code, prefix, *needles) -> str:
    """Assert exit code 2 and exactly one non-empty stderr line, starting ``prefix: error:`` and
    holding every needle; return the line."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prefix}: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def mer(capsys, *args, needles=()) -> str:
    code = mer_main(list(args))
    return one_line_error(capsys, code, f"mer {args[0]}", *needles)


def generate(capsys, tmp_path, *args, needles=()) -> str:
    code = sd_main(["generate", *args, "--out", str(tmp_path / "gen")])
    return one_line_error(capsys, code, "python -m spectraldiff generate", *needles)


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    return path


def write_config(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ------------------------------------------------------------------------------------- mer
def test_missing_data_file_names_it(tmp_path, capsys):
    missing = str(tmp_path / "nope.pkl")
    for command in (["train", "--out", str(tmp_path / "run")], ["benchmark", "--out", str(tmp_path / "b")]):
        mer(capsys, *command, "--data", missing, needles=("--data", missing))


def test_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, a_file):
    for command in (["train", *DATA], ["benchmark", *DATA]):
        mer(capsys, *command, "--out", str(a_file), needles=("--out", str(a_file), "not a folder"))
    results = tmp_path / "results.json"
    results.write_text("[]")
    mer(capsys, "report", str(results), "--out", str(a_file), needles=(str(a_file),))


@pytest.mark.parametrize("text, needles", [
    ("train: {epochs: [1\n", ("not valid YAML",)),
    ("trian: {epochs: 1}\n", ("unknown RunConfig settings ['trian']", "did you mean 'train'")),
    ("train: {epohcs: 1}\n", ("unknown TrainConfig settings ['epohcs']", "did you mean 'epochs'")),
    ("train: {patience: x}\n", ("train.patience must be an integer", "'x'")),
    ("train: {epochs: 1.5}\n", ("train.epochs must be an integer", "1.5")),
    ("train: {epochs: true}\n", ("train.epochs must be an integer", "True (bool)")),
    ("train: {lr: yes}\n", ("train.lr must be a number", "True (bool)")),
    ("seed: 1.0\n", ("seed must be an integer",)),
    ("train: 5\n", ("train must be a mapping",)),
])
def test_bad_config_file_is_one_line_naming_the_file_and_setting(tmp_path, capsys, text, needles):
    config = write_config(tmp_path, text)
    mer(capsys, "train", "--config", config, "--out", str(tmp_path / "run"), *DATA,
        needles=(config, *needles))
    assert not (tmp_path / "run").exists()


def test_missing_config_file_names_it(tmp_path, capsys):
    missing = str(tmp_path / "nope.yaml")
    mer(capsys, "train", "--config", missing, "--out", str(tmp_path / "run"), needles=(missing,))


def test_report_on_missing_or_corrupt_results_names_the_file(tmp_path, capsys):
    mer(capsys, "report", str(tmp_path / "nonexistent"), "--out", str(tmp_path / "r"),
        needles=(str(tmp_path / "nonexistent"),))
    corrupt = tmp_path / "results.json"
    corrupt.write_text('[{"recoverer": "zero", ')
    mer(capsys, "report", str(corrupt), "--out", str(tmp_path / "r"), needles=(str(corrupt),))


def test_evaluate_on_a_truncated_or_corrupt_checkpoint_names_the_file(tmp_path, capsys):
    whole = tmp_path / "whole.pt"
    torch.save({"model": {"w": torch.zeros(1000)}}, whole)
    truncated = tmp_path / "best.pt"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    mer(capsys, "evaluate", str(truncated), needles=(str(truncated),))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00\x01 not a checkpoint")
    mer(capsys, "evaluate", str(garbage), needles=(str(garbage),))


def test_bad_missing_rate_is_refused_before_any_training(tmp_path, capsys, monkeypatch):
    import mer.benchmark.run as bench_run

    def no_training(*args, **kwargs):
        raise AssertionError("trained before the rates were checked")

    monkeypatch.setattr(bench_run, "train", no_training)
    line = mer(capsys, "benchmark", "--recoverers", "zero", "--missing-rates", "0.1,2", "--seeds", "1",
               "--out", str(tmp_path / "b"), *DATA, needles=("missing_rate 2", "0.667"))
    assert "(M-1)/M" in line
    assert not (tmp_path / "b" / "results.json").exists()
    mer(capsys, "train", "--missing-rate", "2", "--out", str(tmp_path / "run"), *DATA,
        needles=("missing_rate",))
    mer(capsys, "train", "--mixture", "0.1;0.9", "--out", str(tmp_path / "run"), *DATA,
        needles=("mixture[1]", "missing_rate 0.9"))


@pytest.mark.parametrize("command", [
    ["train", "--mixture", "0.1;;0.2"],
    ["train", "--mixture", "0.1;t,,a"],
    ["train", "--mixture", "0.1;"],
    ["benchmark", "--missing-rates", "0.1,,0.2"],
    ["benchmark", "--patterns", "t;;a"],
    ["benchmark", "--recoverers", "zero,,mean"],
])
def test_empty_list_items_are_refused_not_dropped(tmp_path, capsys, command):
    with pytest.raises(SystemExit) as exit_:
        mer_main([*command, "--out", str(tmp_path / "run"), *DATA])
    one_line_error(capsys, exit_.value.code, f"mer {command[0]}", "empty", command[2])


def test_the_printed_two_thirds_label_selects_the_two_thirds_row(tmp_path, capsys, monkeypatch):
    import mer.benchmark as bench

    calls = []

    def fake(dataset, **kwargs):
        from mer.data.protocol import benchmark_conditions

        calls.append(benchmark_conditions(dataset.modalities, "random", kwargs["missing_rates"]))
        (tmp_path / "b" / "table.md").parent.mkdir(exist_ok=True)
        (tmp_path / "b" / "table.md").write_text("| Average |\n")
        return []

    monkeypatch.setattr(bench, "run_benchmark", fake)
    assert mer_main(["benchmark", "--missing-rates", "0.6,0.667", "--out", str(tmp_path / "b"), *DATA]) == 0
    assert [c.missing_rate for c in calls[0]] == [0.6, 2 / 3]
    assert [c.condition for c in calls[0]] == ["0.6", "0.667"]


def test_trust_pickle_reaches_the_loader_and_is_refused_where_no_pickle_is_read(tmp_path, capsys):
    from fractions import Fraction

    data = tmp_path / "features.pkl"
    data.write_bytes(pickle.dumps({"train": Fraction(1, 3)}))
    args = ["train", "--data", str(data), "--out", str(tmp_path / "run")]
    refused = mer(capsys, *args, needles=(str(data), "refused", "--trust-pickle"))
    assert "fractions.Fraction" in refused
    # Trusted, the file unpickles; the loader then refuses its layout, which is not MMSA's.
    trusted = mer(capsys, *args, "--trust-pickle", needles=(str(data),))
    assert "refused" not in trusted
    mer(capsys, "train", "--trust-pickle", "--out", str(tmp_path / "run"), *DATA,
        needles=("--trust-pickle", "'synthetic'"))


def test_debug_shows_the_traceback_and_bugs_keep_theirs(tmp_path, capsys, monkeypatch):
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(FileNotFoundError):
        mer_main(["--debug", "train", "--config", missing, "--out", str(tmp_path / "run")])
    with pytest.raises(FileNotFoundError):
        mer_main(["train", "--config", missing, "--out", str(tmp_path / "run"), "--debug"])
    with pytest.raises(ValueError):
        sd_main(["--debug", "generate", "--graphs", missing, "--out", str(tmp_path / "g")])
    capsys.readouterr()

    def bug():
        raise TypeError("a bug")

    with pytest.raises(TypeError):
        run_command("mer train", bug)


def test_a_full_disk_names_the_file_being_written(tmp_path, capsys):
    target = tmp_path / "metrics.json"

    def disk_full(handle):
        handle.write("{")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as raised:
        atomic_write(target, disk_full, "w")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []  # no temporary file, no half-written target

    def torch_style(handle):  # a writer that reports the failed write under its own exception
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from None

    with pytest.raises(OSError) as raised:
        atomic_write(target, torch_style)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    line = error_line(raised.value)
    assert line.startswith(f"{target}: no space left on device") and "\n" not in line
    assert run_command("mer train", lambda: atomic_write(target, disk_full, "w")) == 2
    one_line_error(capsys, 2, "mer train", str(target), "no space left")


def test_error_line_collapses_newlines_and_names_paths():
    assert error_line(ValueError("line one\n  line two")) == "line one line two"
    assert error_line(FileNotFoundError(errno.ENOENT, "No such file", "/x/y")) == (
        "/x/y: no such file or directory; check the path")
    assert "is a directory" in error_line(IsADirectoryError(errno.EISDIR, "Is a directory", "/x"))


# ---------------------------------------------------------------------------- spectraldiff
def test_generate_input_errors_name_the_file_or_setting(tmp_path, capsys, a_file):
    missing = str(tmp_path / "nope.pkl")
    generate(capsys, tmp_path, "--graphs", missing, needles=(missing,))

    evil = tmp_path / "evil.pkl"
    marker = tmp_path / "ran"
    evil.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    generate(capsys, tmp_path, "--graphs", str(evil), needles=(str(evil), "refused", "--trust-pickle"))
    assert not marker.exists()

    corrupt = tmp_path / "corrupt.pkl"
    corrupt.write_bytes(pickle.dumps([1, 2, 3])[:5])
    generate(capsys, tmp_path, "--graphs", str(corrupt), needles=(str(corrupt), "truncated or corrupt"))

    broken = tmp_path / "graphs.json"
    broken.write_text('[{"num_nodes": 3, ')
    generate(capsys, tmp_path, "--graphs", str(broken), needles=(str(broken),))
    broken.write_text('[{"num_nodes": true, "edges": []}]')
    generate(capsys, tmp_path, "--graphs", str(broken), needles=(str(broken), "num_nodes"))
    unknown = tmp_path / "graphs.txt"
    unknown.write_text("0 1\n")
    generate(capsys, tmp_path, "--graphs", str(unknown), needles=(str(unknown), ".txt"))

    for option, value, needle in [("--epochs", "0", "epochs"), ("--steps", "0", "steps"),
                                  ("--lr", "-1", "learning_rate"), ("--lr", "nan", "learning_rate"),
                                  ("--num-samples", "0", "num_samples"), ("--threads", "0", "--threads"),
                                  ("--batch-size", "0", "batch_size")]:
        generate(capsys, tmp_path, option, value, needles=(needle,))

    code = sd_main(["generate", "--out", str(a_file)])
    one_line_error(capsys, code, "python -m spectraldiff generate", str(a_file), "not a folder")


@pytest.mark.parametrize("args, needle, prog", [
    (["--dataset", "nope"], "invalid choice: 'nope'", "python -m spectraldiff generate"),
    (["--epochs", "x"], "invalid int value: 'x'", "python -m spectraldiff generate"),
    # argparse reports unknown options from the top-level parser
    (["--bogus"], "unrecognized arguments: --bogus", "python -m spectraldiff"),
])
def test_generate_option_errors_are_one_line(tmp_path, capsys, args, needle, prog):
    with pytest.raises(SystemExit) as exit_:
        sd_main(["generate", *args, "--out", str(tmp_path / "gen")])
    one_line_error(capsys, exit_.value.code, prog, needle, "--help")


def test_bench_eigh_and_demo_errors_are_one_line(tmp_path, capsys, a_file):
    prefix = "python -m spectraldiff"
    code = sd_main(["bench-eigh", "--sizes", "4,x", "--out", str(tmp_path / "b")])
    one_line_error(capsys, code, f"{prefix} bench-eigh", "--sizes", "'4,x'")
    code = sd_main(["bench-eigh", "--backends", "nope", "--sizes", "4", "--batches", "1",
                    "--out", str(tmp_path / "b")])
    one_line_error(capsys, code, f"{prefix} bench-eigh", "unknown backend 'nope'")
    code = sd_main(["bench-eigh", "--out", str(a_file)])
    one_line_error(capsys, code, f"{prefix} bench-eigh", str(a_file))
    code = sd_main(["demo", "--num-graphs", "0"])
    one_line_error(capsys, code, f"{prefix} demo", "num_graphs")


# ------------------------------------------------------------------------------ processes
@pytest.mark.parametrize("argv, prefix", [
    ([sys.executable, "-m", "mer", "train", "--data", "{missing}", "--out", "{out}"], "mer train"),
    ([sys.executable, "-m", "spectraldiff", "generate", "--graphs", "{missing}", "--out", "{out}"],
     "python -m spectraldiff generate"),
])
def test_a_real_process_exits_2_with_one_line(tmp_path, argv, prefix):
    missing = str(tmp_path / "missing.pkl")
    argv = [a.format(missing=missing, out=tmp_path / "out") for a in argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith(f"{prefix}: error: ") and missing in lines[0]


# ------------------------------------------------------------------ the library behind them
def test_run_config_refuses_bools_and_fractions_for_numbers():
    from mer.config import RunConfig

    for train, needle in [({"epochs": True}, "train.epochs must be an integer"),
                          ({"epochs": 1.5}, "train.epochs must be an integer"),
                          ({"patience": "x"}, "train.patience must be an integer"),
                          ({"beta": False}, "train.beta must be a number"),
                          ({"progress": "yes"}, "train.progress must be true or false")]:
        config = RunConfig.from_dict({"train": train})
        with pytest.raises(ValueError, match=needle):
            config.validate()
    # An int where a float is expected is fine: YAML writes 1.0 as 1.
    RunConfig.from_dict({"train": {"epochs": 2, "lr": 1}, "model": {"dropout": 0}}).validate()


def test_unknown_data_options_list_the_valid_ones():
    from mer.data.source import DataConfig, load_data

    with pytest.raises(ValueError, match=r"unknown data.options \['pth'\] for source 'mmsa'; valid: .*'path'"):
        load_data(DataConfig("mmsa", {"pth": "x.pkl"}))


def test_atomic_write_json_through_cli_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text(json.dumps({"old": 1}))

    def fail(handle):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, fail, "w")
    assert json.loads(target.read_text()) == {"old": 1}
