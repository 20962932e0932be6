"""Watching a run: per-epoch log lines, train.log, the CSV and TensorBoard trackers, `mer plot curves`."""

import csv
import json
import logging
import math
import re
import shutil

import pytest

import mer
from mer.cli import main
from mer.data import synthetic_conversations
from mer.training.trackers import TRACKERS, CSVResultTracker, TensorBoardResultTracker

from fast_settings import FAST

TINY = {
    "model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
    "train": {"epochs": 2, "batch_size": 8, "patience": 0},
}
NUMBER = r"-?\d+\.\d{4}|n/a"
EPOCH_LINE = re.compile(
    rf"^epoch (?P<k>\d+)/(?P<n>\d+) \| train loss (?P<loss>{NUMBER}) task (?P<task>{NUMBER})"
    rf"(?P<terms>(?: \w+ (?:{NUMBER}))*) \| valid loss (?P<valid>{NUMBER}) acc2_non0 ({NUMBER}) .*"
    rf"\| (?P<seconds>\d+\.\d\d) s \| (?P<note>new best|no improvement .*)$")


@pytest.fixture(scope="module")
def tiny():
    return synthetic_conversations(seed=0, num_conversations=12, max_utterances=8)


@pytest.fixture(scope="module")
def finished_run(tiny, tmp_path_factory):
    """A 2-epoch run folder of the zero recoverer; copy it before changing it."""
    out = tmp_path_factory.mktemp("runs") / "zero"
    mer.train(tiny, recoverer="zero", masks=0.3, config=TINY, seed=0, out_dir=out)
    return out


def _epoch_lines(text):
    return [line for line in text.splitlines() if re.search(r"\bepoch \d+/\d+ \|", line)]


def _csv_rows(path):
    with open(path, newline="", encoding="utf8") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_each_epoch_logs_its_loss_terms_validation_metrics_and_seconds(tiny, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="mer.training"):
        trained = mer.train(tiny, recoverer="autoencoder", masks=0.3, config=TINY, seed=0,
                            recoverer_kwargs=FAST["autoencoder"], out_dir=tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.name == "mer.training"]
    epochs = [m for m in map(EPOCH_LINE.match, lines) if m]
    assert [(m["k"], m["n"]) for m in epochs] == [("1", "2"), ("2", "2")]
    for m, record in zip(epochs, trained.history):
        assert float(m["loss"]) == pytest.approx(record["train_loss"], abs=1e-4)
        assert float(m["task"]) == pytest.approx(record["train_task_loss"], abs=1e-4)
        assert float(m["valid"]) == pytest.approx(record["valid_loss"], abs=1e-4)
        assert f"rec {record['train_rec']:.4f}" in m["terms"]  # the autoencoder's own term
        assert float(m["seconds"]) == pytest.approx(record["seconds"], abs=0.01)
    assert epochs[0]["note"] == "new best"
    assert lines[0].startswith("train autoencoder for 2 epochs") and "condition 0.3" in lines[0]
    assert any(line.startswith(f"best epoch {trained.best_epoch} (valid loss") for line in lines)
    # With INFO enabled the lines reach train.log through the logger, once each.
    assert len(_epoch_lines((tmp_path / "train.log").read_text())) == 2


def test_early_stopping_is_noted_in_the_log(tiny, caplog):
    config = {**TINY, "train": {**TINY["train"], "epochs": 30, "patience": 1, "lr": 1e-6}}
    with caplog.at_level(logging.INFO, logger="mer.training"):
        trained = mer.train(tiny, recoverer="zero", masks=0.3, config=config, seed=0)
    assert len(trained.history) < 30
    lines = [r.getMessage() for r in caplog.records if r.name == "mer.training"]
    assert f"no improvement 1/1 (best epoch {trained.best_epoch})" in lines[-3]
    assert lines[-2] == f"early stop after epoch {len(trained.history)}/30: no lower validation loss for 1 epochs"


def test_the_python_api_adds_no_handler_and_removes_the_file_handler(tiny, tmp_path):
    logger, root = logging.getLogger("mer.training"), logging.getLogger()
    before = (list(logger.handlers), list(root.handlers), logger.level)
    mer.train(tiny, recoverer="zero", masks=0.3, config=TINY, seed=0, out_dir=tmp_path)
    assert (list(logger.handlers), list(root.handlers), logger.level) == before


def test_train_log_holds_one_line_per_epoch_and_resume_appends(finished_run, tiny, tmp_path):
    run = shutil.copytree(finished_run, tmp_path / "run")
    first = (run / "train.log").read_text()
    # Logging is not configured here (INFO is off): the file still gets every line.
    assert [int(EPOCH_LINE.match(line.split(" INFO ", 1)[1])["k"]) for line in _epoch_lines(first)] == [1, 2]
    mer.train(tiny, recoverer="zero", masks=0.3, config=TINY, seed=0, out_dir=run, epochs=3)
    text = (run / "train.log").read_text()
    assert text.startswith(first)
    assert len(_epoch_lines(text)) == 3 and "resume zero at epoch 3/3" in text[len(first):]
    mer.train(tiny, recoverer="zero", masks=0.3, config=TINY, seed=0, out_dir=run, resume=False)
    assert len(_epoch_lines((run / "train.log").read_text())) == 2  # starting over rewrites it


def test_history_csv_equals_the_metrics_json_history_after_resume(finished_run, tiny, tmp_path):
    run = shutil.copytree(finished_run, tmp_path / "run")
    # A run killed after logging epoch 3 but before saving it: the resumed run redoes epoch 3,
    # and the CSV must not hold it twice.
    columns, rows = _csv_rows(run / "history.csv")
    with open(run / "history.csv", "a", encoding="utf8") as handle:
        handle.write(",".join("3" if c == "epoch" else "9.0" for c in columns) + "\n")
    mer.train(tiny, recoverer="zero", masks=0.3, config=TINY, seed=0, out_dir=run, epochs=3)
    history = json.loads((run / "metrics.json").read_text())["history"]
    columns, rows = _csv_rows(run / "history.csv")
    assert columns[0] == "epoch" and set(columns) == set(history[0])
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for row, record in zip(rows, history):
        for key, value in record.items():
            assert (float(row[key]) if row[key] else None) == value, key


def test_tensorboard_tracker_writes_the_epoch_scalars(tiny, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = {**TINY, "train": {**TINY["train"], "trackers": ["tensorboard"]}}
    trained = mer.train(tiny, recoverer="zero", masks=0.3, config=config, seed=0, out_dir=tmp_path)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/task_loss", "valid/loss", "valid/acc2_non0", "seconds"} <= set(
        events.Tags()["scalars"])
    scalars = events.Scalars("valid/loss")
    assert [s.step for s in scalars] == [1, 2]
    assert scalars[1].value == pytest.approx(trained.history[1]["valid_loss"], rel=1e-6)
    assert json.loads((tmp_path / "config.json").read_text())["train"]["trackers"] == ["tensorboard"]


def test_tracker_names_are_checked_before_training(tiny, tmp_path):
    assert {"csv", "tensorboard"} <= set(TRACKERS.names())
    with pytest.raises(ValueError, match=r"unknown tracker 'wandb'; choose one of \['csv', 'tensorboard'"):
        mer.train(tiny, recoverer="zero", config={"train": {"trackers": ["wandb"]}}, out_dir=tmp_path)
    assert not (tmp_path / "config.json").exists()
    with pytest.raises(ValueError, match="give out_dir"):
        mer.train(tiny, recoverer="zero", config={"train": {"trackers": ["tensorboard"]}})
    with pytest.raises(ValueError, match="train.trackers must be a list"):
        mer.train(tiny, recoverer="zero", config={"train": {"trackers": "tensorboard"}})


def test_csv_tracker_widens_its_header_for_a_new_key(tmp_path):
    tracker = CSVResultTracker(tmp_path)
    tracker.start_run({})
    tracker.log_metrics({"loss": 1.5}, step=1)
    tracker.log_metrics({"loss": 0.5, "mse": math.nan, "extra": 2}, step=2, prefix="valid_")
    tracker.end_run()
    columns, rows = _csv_rows(tmp_path / "history.csv")
    assert columns == ["epoch", "loss", "valid_loss", "valid_mse", "valid_extra"]
    assert rows[0] == {"epoch": "1", "loss": "1.5", "valid_loss": "", "valid_mse": "", "valid_extra": ""}
    assert rows[1]["valid_loss"] == "0.5" and rows[1]["valid_mse"] == "" and rows[1]["valid_extra"] == "2"
    assert TensorBoardResultTracker.tag("valid_acc2_non0") == "valid/acc2_non0"
    assert TensorBoardResultTracker.tag("seconds") == "seconds"


def test_cli_train_shows_epoch_lines_on_stderr_and_keeps_stdout_json(tmp_path, capsys):
    rc = main(["train", "--recoverer", "zero", "--synthetic-conversations", "12", "--epochs", "2",
               "--out", str(tmp_path / "run"), "--tracker", "tensorboard"])
    assert rc == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["best_epoch"] in (1, 2)
    shown = [line.split(" ", 1)[1] for line in _epoch_lines(captured.err)]  # drop the HH:MM:SS
    assert [EPOCH_LINE.match(line)["k"] for line in shown] == ["1", "2"]
    assert any((tmp_path / "run" / "tensorboard").iterdir())
    assert logging.getLogger("mer.training").level == logging.NOTSET  # the CLI undid its setting


def test_plot_curves_draws_two_runs_and_reads_metrics_json_without_csv(finished_run, tmp_path, capsys):
    other = shutil.copytree(finished_run, tmp_path / "other")
    (other / "history.csv").unlink()  # an older run: the history of metrics.json is read instead
    fig = tmp_path / "figs" / "curves.png"
    assert main(["plot", "curves", str(finished_run), str(other), "--out", str(fig), "--metric", "mae"]) == 0
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.strip() == f"loss and valid mae of 2 runs in {fig}"


@pytest.mark.parametrize("case", ["no history", "missing", "unknown metric"])
def test_plot_curves_refuses_with_one_line_and_exit_2(finished_run, tmp_path, capsys, case):
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    runs, extra = {"no history": ([finished_run, empty], []),
                   "missing": ([tmp_path / "nowhere"], []),
                   "unknown metric": ([finished_run], ["--metric", "acc9"])}[case]
    rc = main(["plot", "curves", *map(str, runs), "--out", str(tmp_path / "f.png"), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("mer plot: error: ")
    assert {"no history": str(empty), "missing": "nowhere", "unknown metric": "'acc9'"}[case] in err
    assert not (tmp_path / "f.png").exists()
