"""The benchmark's executors: a sweep on a local two-worker Ray cluster writes exactly the rows the
local executor writes, a failing training is reported with its traceback after the others landed,
and the folder resumes under either executor. Ray is in the ``test`` extra, so CI runs these."""

import json
import sys

import pytest

import mer
import mer.benchmark as bench
import mer.benchmark.run as bench_run
from mer.benchmark.executors import BenchmarkTaskError, make_executor
from mer.cli import main
from mer.data import synthetic_conversations

TINY = {
    "model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
    "train": {"epochs": 1, "batch_size": 8, "patience": 0},
}
# autoencoder's trainings raise inside the task: a setting's name is checked before anything trains, its
# value only when the model is built (here torch's dropout refuses a probability of 2).
SWEEP = dict(recoverers=["zero", "mean", "autoencoder"], protocol="random", missing_rates=[0.0, 0.5],
             seeds=[3], config=TINY, recoverer_kwargs={"autoencoder": {"dropout": 2.0}})
TIMING = ("train_seconds", "eval_seconds")


@pytest.fixture(scope="module")
def tiny():
    return synthetic_conversations(seed=0, num_conversations=20, max_utterances=10)


def _without_timing(rows):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def _sweep(tiny, out, executor, options):
    with pytest.raises(BenchmarkTaskError) as err:
        mer.run_benchmark(tiny, **SWEEP, out_dir=out, executor=executor, executor_options=options)
    return err.value, json.loads((out / "results.json").read_text())


def test_a_two_worker_ray_sweep_writes_the_local_rows_and_reports_the_failed_task_after_the_others(
        tiny, tmp_path, caplog, monkeypatch):
    ray = pytest.importorskip("ray", reason='Ray is not installed: pip install ".[ray]"')
    local_error, local = _sweep(tiny, tmp_path / "local", "local", {"threads": 1})
    caplog.clear()
    error, rows = _sweep(tiny, tmp_path / "ray", "ray", {"workers": 2})
    assert not ray.is_initialized()  # the cluster it started is stopped

    # zero and mean landed, with metrics (and everything but the clocks) equal to the local run's.
    assert [(r["recoverer"], r["condition"]) for r in rows] == [
        ("zero", "0.0"), ("mean", "0.0"), ("zero", "0.5"), ("mean", "0.5")]
    assert [r["metrics"] for r in rows] == [r["metrics"] for r in local]
    assert _without_timing(rows) == _without_timing(local)
    assert (tmp_path / "ray" / "table.md").read_text() == (tmp_path / "local" / "table.md").read_text()

    # Each failed training is reported once, with the remote traceback, in the log and the error.
    for e in (error, local_error):
        assert sorted(f.label for f in e.failures) == ["autoencoder / 0.0 / seed 3",
                                                       "autoencoder / 0.5 / seed 3"]
        assert e.rows_written == 4
        for f in e.failures:
            assert "dropout probability has to be between 0 and 1" in f.error
            assert "Traceback" in f.traceback or "File " in f.traceback
            assert "\x1b[" not in f.traceback
    assert "build_recoverer" in error.report() and "2 benchmark tasks failed" in str(error)
    logged = [r.getMessage() for r in caplog.records if r.name == "mer.benchmark"]
    assert sum("autoencoder / 0.5 / seed 3 failed" in m for m in logged) == 1

    # The Ray folder resumes like a local one: the same sweep without the failing method trains nothing.
    def fail(*args, **kwargs):
        raise AssertionError("a row already in results.json was trained again")

    monkeypatch.setattr(bench_run, "train", fail)
    again = mer.run_benchmark(tiny, **dict(SWEEP, recoverers=["zero", "mean"]), out_dir=tmp_path / "ray")
    assert _without_timing(again) == _without_timing(rows)


def test_shared_training_on_a_running_ray_session_equals_local_and_leaves_the_session_running(
        tiny, tmp_path):
    ray = pytest.importorskip("ray", reason='Ray is not installed: pip install ".[ray]"')
    kwargs = dict(SWEEP, recoverers=["zero", "mean"], training="shared", recoverer_kwargs=None)
    local = mer.run_benchmark(tiny, **kwargs, executor_options={"threads": 1})
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        remote = mer.run_benchmark(tiny, **kwargs, executor="ray", out_dir=tmp_path)
        assert ray.is_initialized()  # not ours to stop
    finally:
        ray.shutdown()
    assert [r["training"] for r in remote] == ["shared"] * 4
    assert _without_timing(remote) == _without_timing(local)
    assert _without_timing(json.loads((tmp_path / "results.json").read_text())) == _without_timing(local)


def test_without_ray_the_ray_executor_fails_with_one_line_telling_how_to_install(tmp_path, capsys,
                                                                                   monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError

    def no_training(*args, **kwargs):
        raise AssertionError("trained without an executor")

    monkeypatch.setattr(bench_run, "train", no_training)
    code = main(["benchmark", "--recoverers", "zero", "--missing-rates", "0.5", "--seeds", "1",
                 "--executor", "ray", "--synthetic-conversations", "20", "--out", str(tmp_path)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("mer benchmark: error: the ray executor needs Ray")
    assert 'pip install ".[ray]"' in lines[0]
    with pytest.raises(bench.MissingExtraError, match=r'pip install "\.\[ray\]"'):
        mer.run_benchmark(synthetic_conversations(seed=0, num_conversations=20), recoverers=["zero"],
                          missing_rates=[0.5], seeds=[1], executor="ray")


def test_the_cli_passes_executor_options_and_refuses_ray_options_without_ray(tmp_path, recorded_benchmark,
                                                                              capsys):
    calls = recorded_benchmark
    data = ["--synthetic-conversations", "20", "--out", str(tmp_path)]
    assert main(["benchmark", "--executor", "ray", "--address", "auto", "--gpus-per-run", "0.5",
                 "--threads", "2", *data]) == 0
    assert main(["benchmark", *data]) == 0
    assert [(c["executor"], c["executor_options"]) for c in calls] == [
        ("ray", {"threads": 2, "address": "auto", "gpus_per_run": 0.5}), ("local", {})]
    capsys.readouterr()
    assert main(["benchmark", "--workers", "2", *data]) == 2
    assert "--workers need --executor ray" in capsys.readouterr().err


def test_executor_options_are_checked_by_name_and_value():
    with pytest.raises(ValueError, match="unknown option workers for the local executor; valid: threads"):
        make_executor("local", {"workers": 2})
    with pytest.raises(ValueError, match=r"executor must be one of \['local', 'ray'\], got 'dask'"):
        make_executor("dask")
    with pytest.raises(ValueError, match="either an address .* or workers"):
        make_executor("ray", {"address": "auto", "workers": 2})
    with pytest.raises(ValueError, match="gpus_per_run must be a number >= 0"):
        make_executor("ray", {"gpus_per_run": -1})
