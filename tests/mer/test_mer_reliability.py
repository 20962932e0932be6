"""Runs and results are never lost or mixed: benchmark reruns merge, a run holds its folder
exclusively (tested with real processes), killed saves leave nothing behind, resume is tied to its
dataset."""

import json
import logging
import os
import pathlib
import subprocess
import sys
import time

import pytest

import mer
from mer.benchmark import load_results
from mer.config import RunConfig
from mer.data import ConversationDataset, synthetic_conversations
from mer.training import RunLock, RunLockedError, dataset_fingerprint

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = {
    "model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
    "train": {"epochs": 1, "batch_size": 8, "patience": 0},
}
BENCH = dict(protocol="random", missing_rates=[0.5], seeds=[1], config=TINY)


@pytest.fixture(scope="module")
def tiny():
    return synthetic_conversations(seed=0, num_conversations=12, max_utterances=10)


def _rows(folder):
    return json.loads((folder / "results.json").read_text())


# --------------------------------------------------------------------------- benchmark reruns
def test_a_benchmark_rerun_with_another_recoverer_keeps_the_first_rows_and_adds_the_new(
        tiny, tmp_path, count_train):
    first = mer.run_benchmark(tiny, recoverers=["zero"], out_dir=tmp_path, **BENCH)
    second = mer.run_benchmark(tiny, recoverers=["mean"], out_dir=tmp_path, **BENCH)
    assert [c.recoverer for c in count_train] == ["zero", "mean"]
    assert [r["recoverer"] for r in second] == ["mean"]  # the call returns its own rows
    assert _rows(tmp_path) == first + second  # the folder keeps them all
    header = next(line for line in (tmp_path / "table.md").read_text().splitlines()
                  if line.startswith("| Condition |"))
    assert header == "| Condition | zero | mean |"


def test_an_identical_rerun_trains_nothing_and_changes_no_row(tiny, tmp_path, count_train):
    first = mer.run_benchmark(tiny, recoverers=["zero", "mean"], out_dir=tmp_path, **BENCH)
    count_train.clear()
    # Device and progress bars do not change what a row means.
    again = mer.run_benchmark(tiny, recoverers=["mean", "zero"], out_dir=tmp_path, progress=True,
                              **BENCH)
    assert count_train == []
    assert sorted(again, key=lambda r: r["recoverer"]) == sorted(first, key=lambda r: r["recoverer"])
    assert _rows(tmp_path) == first


def test_a_rerun_with_other_settings_for_an_existing_row_is_refused_before_training(
        tiny, tmp_path, count_train):
    mer.run_benchmark(tiny, recoverers=["zero"], out_dir=tmp_path, **BENCH)
    before = (tmp_path / "results.json").read_bytes()
    count_train.clear()
    expected = (f"{tmp_path / 'results.json'} already holds the row zero / random 0.5 / seed 1 / "
                "per_condition with other settings (train.epochs is 1 there, 2 now); nothing was run: "
                "write this run to another --out (out_dir), or delete that row from results.json (or "
                "rerun with --no-resume / resume=False) to recompute it")
    with pytest.raises(ValueError) as err:
        # "mean" first: the conflict on "zero" is found before anything trains.
        mer.run_benchmark(tiny, recoverers=["mean", "zero"], out_dir=tmp_path, epochs=2, **BENCH)
    assert str(err.value) == expected
    assert count_train == []
    assert (tmp_path / "results.json").read_bytes() == before
    # Another dataset is another setting too.
    other = synthetic_conversations(seed=1, num_conversations=12, max_utterances=10)
    with pytest.raises(ValueError, match=f"dataset_fingerprint is '{dataset_fingerprint(tiny)}' there"):
        mer.run_benchmark(other, recoverers=["zero"], out_dir=tmp_path, **BENCH)


def test_a_row_is_refused_when_a_default_it_was_built_with_has_changed_since(tiny, tmp_path, count_train):
    width = {"autoencoder": {"hidden": 8}}
    mer.run_benchmark(tiny, recoverers=["autoencoder"], recoverer_kwargs=width, out_dir=tmp_path, **BENCH)
    rows = _rows(tmp_path)
    # Every setting is recorded, the defaults too, not only the given one.
    assert rows[0]["recoverer_settings"] == {"hidden": 8, "bottleneck": 64, "num_blocks": 3, "dropout": 0.1}
    # As if a release whose default bottleneck was 32 had written the row: the same given settings,
    # another model. The rerun is refused before anything trains.
    rows[0]["recoverer_settings"]["bottleneck"] = 32
    (tmp_path / "results.json").write_text(json.dumps(rows))
    count_train.clear()
    with pytest.raises(ValueError, match=r"with other settings \(recoverer_settings.bottleneck is 32 there, "
                                         r"64 now\); nothing was run"):
        mer.run_benchmark(tiny, recoverers=["autoencoder"], recoverer_kwargs=width, out_dir=tmp_path, **BENCH)
    assert count_train == []
    # A row written before the field existed is judged by its config alone, as it always was.
    del rows[0]["recoverer_settings"]
    (tmp_path / "results.json").write_text(json.dumps(rows))
    again = mer.run_benchmark(tiny, recoverers=["autoencoder"], recoverer_kwargs=width, out_dir=tmp_path,
                              **BENCH)
    assert count_train == [] and again == rows


def test_one_folder_and_one_report_never_mix_datasets(tiny, tmp_path, count_train):
    from mer.benchmark import merge_results

    mer.run_benchmark(tiny, recoverers=["zero"], out_dir=tmp_path, **BENCH)
    before = (tmp_path / "results.json").read_bytes()
    other = synthetic_conversations(seed=1, num_conversations=12, max_utterances=10)
    count_train.clear()
    # A new method on other data would share the table with zero on the first data: refused, untrained.
    with pytest.raises(ValueError, match=r"holds rows on another dataset \(fingerprint sha256:.*\): zero / random "
                                         r"0\.5 / seed 1 / per_condition; one table must not mix datasets"):
        mer.run_benchmark(other, recoverers=["mean"], out_dir=tmp_path, **BENCH)
    assert count_train == [] and (tmp_path / "results.json").read_bytes() == before
    # Recomputing every row the folder holds on the new data leaves nothing mixed: allowed.
    mer.run_benchmark(other, recoverers=["zero"], out_dir=tmp_path, resume=False, **BENCH)
    assert {r["dataset_fingerprint"] for r in _rows(tmp_path)} == {dataset_fingerprint(other)}
    # Two folders on different data do not make one report.
    mer.run_benchmark(tiny, recoverers=["mean"], out_dir=tmp_path / "first", **BENCH)
    with pytest.raises(ValueError, match=r"the results come from 2 datasets \(synthetic.*: zero; synthetic.*: mean\)"):
        merge_results([tmp_path, tmp_path / "first"])


def test_no_resume_replaces_the_recomputed_rows_and_keeps_the_others(tiny, tmp_path, count_train):
    first = mer.run_benchmark(tiny, recoverers=["zero", "mean"], out_dir=tmp_path, **BENCH)
    count_train.clear()
    again = mer.run_benchmark(tiny, recoverers=["mean"], out_dir=tmp_path, epochs=2, resume=False,
                              **BENCH)
    assert [c.recoverer for c in count_train] == ["mean"]
    rows = _rows(tmp_path)
    assert [r["recoverer"] for r in rows] == ["zero", "mean"]  # replaced in place
    assert rows[0] == first[0] and rows[1] == again[0] and rows[1]["epochs_run"] == 2


@pytest.mark.parametrize("text, reason", [
    ('[{"recoverer": "zero", "protocol": "ran', "not a readable benchmark results file"),
    ('{"rows": []}', "not a benchmark results file: holds a JSON dict"),
    ('[{"recoverer": "zero"}]', "not a benchmark results file: row 0 has no protocol / condition / seed"),
])
def test_a_corrupt_or_truncated_results_file_is_named_and_never_overwritten(tiny, tmp_path, text, reason):
    path = tmp_path / "results.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"^{path} is {reason}"):
        load_results(path)
    with pytest.raises(ValueError, match=f"^{path} is {reason}"):
        mer.run_benchmark(tiny, recoverers=["zero"], out_dir=tmp_path, **BENCH)
    assert path.read_text() == text


def test_the_benchmark_removes_temporaries_a_killed_save_left_in_its_folder(tiny, tmp_path):
    (tmp_path / ".results.json.k3x9.tmp").write_text("[")
    mer.run_benchmark(tiny, recoverers=["zero"], out_dir=tmp_path, **BENCH)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


# ------------------------------------------------------------------------------------ run lock
# run_lock.py imports nothing of mer: the helper processes load it alone, in a blink.
LOAD_RUN_LOCK = (
    "import importlib.util, sys, time\n"
    f"spec = importlib.util.spec_from_file_location('run_lock', {str(ROOT / 'mer/training/run_lock.py')!r})\n"
    "run_lock = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(run_lock)\n"
)
HOLDER = LOAD_RUN_LOCK + (
    "with run_lock.RunLock(sys.argv[1], what='holder test'):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(600)\n"
)
PROBE = LOAD_RUN_LOCK + (
    "try:\n"
    "    run_lock.RunLock(sys.argv[1]).__enter__()\n"
    "except ValueError as err:\n"
    "    print(err)\n"
)


def _hold_in_another_process(folder):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_folder_held_by_another_process_is_refused_at_once_naming_the_holder(tmp_path, caplog):
    proc = _hold_in_another_process(tmp_path)
    try:
        started = time.perf_counter()
        with pytest.raises(RunLockedError) as err:
            with RunLock(tmp_path, what="mer train"):
                pass
        assert time.perf_counter() - started < 1.0  # no waiting
        message = str(err.value)
        assert message.startswith(f"{tmp_path} is in use by pid {proc.pid} on ")
        assert "(holder test, started " in message
        assert message.endswith("; wait for it or choose another --out")
        assert isinstance(err.value, ValueError) and isinstance(err.value, RuntimeError)
    finally:
        proc.kill()
        proc.wait()
    # The kernel released the killed holder's lock: the next run takes the folder over.
    with caplog.at_level(logging.INFO, logger="mer.training.run_lock"):
        with RunLock(tmp_path, what="mer train"):
            holder = json.loads((tmp_path / ".lock").read_text())
            assert holder["pid"] == os.getpid() and holder["command"] == "mer train"
    assert f"taking over the lock of pid {proc.pid}" in caplog.text


def test_the_same_process_may_hold_a_folder_twice_and_releases_it_with_the_outer_hold(tmp_path):
    with RunLock(tmp_path, what="mer benchmark"):
        with RunLock(tmp_path, what="mer train"):
            pass
        # Still held after the inner release: another process is refused.
        probe = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True,
                               text=True, timeout=60)
        assert f"in use by pid {os.getpid()}" in probe.stdout
    proc = _hold_in_another_process(tmp_path)  # released: another process gets it
    proc.kill()
    proc.wait()


def test_two_mer_train_processes_on_one_folder_the_second_exits_2_with_one_line(tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "long.json"  # runs until killed: no early stop
    config.write_text(json.dumps({**TINY, "train": {"epochs": 10**6, "patience": 0}}))
    command = [sys.executable, "-m", "mer", "train", "--out", str(out), "--recoverer", "zero",
               "--synthetic-conversations", "12", "--config", str(config)]
    # Started together: whichever locks the folder first holds it; the other must fail at once.
    procs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = [p for p in procs if p.poll() is not None]
        assert len(refused) == 1, "exactly one run must stop"
        refused = refused[0]
        holder = procs[1 - procs.index(refused)]
        stderr = refused.stderr.read()
        assert refused.returncode == 2, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr
        assert lines[0].startswith(f"mer train: error: {out} is in use by pid {holder.pid} on ")
        assert "(mer train, started " in lines[0]
        assert lines[0].endswith("; wait for it or choose another --out")
        assert holder.poll() is None  # the holder runs on, untouched
        assert json.loads((out / ".lock").read_text())["pid"] == holder.pid
    finally:
        for p in procs:
            p.kill()
            p.wait()


# ------------------------------------------------------------------------- training runs
def _config(epochs=1):
    cfg = RunConfig.from_dict(TINY)
    cfg.train.epochs = epochs
    return cfg


def test_resume_removes_temporaries_a_killed_save_left_and_keeps_other_files(tiny, tmp_path):
    mer.train(tiny, recoverer="zero", masks=0.5, config=_config(1), out_dir=tmp_path)
    stale = [tmp_path / ".last.pt.abc.tmp", tmp_path / ".best.pt.x1y2.tmp",
             tmp_path / ".metrics.json.q.tmp"]
    for path in stale:
        path.write_bytes(b"half a save")
    (tmp_path / "notes.txt").write_text("mine")
    mer.train(tiny, recoverer="zero", masks=0.5, config=_config(2), out_dir=tmp_path)
    assert not any(path.exists() for path in stale)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs_run"] == 2


def test_api_resume_refuses_another_dataset_naming_the_folder_and_both_fingerprints(tiny, tmp_path):
    mer.train(tiny, recoverer="zero", masks=0.5, config=_config(1), out_dir=tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())["dataset"]["fingerprint"]
    assert saved == dataset_fingerprint(tiny)
    # Same modalities, widths and splits, other values: only the fingerprint tells them apart.
    other = synthetic_conversations(seed=1, num_conversations=12, max_utterances=10)
    assert other.feature_dims == tiny.feature_dims and dataset_fingerprint(other) != saved
    with pytest.raises(ValueError) as err:
        mer.train(other, recoverer="zero", masks=0.5, config=_config(2), out_dir=tmp_path)
    message = str(err.value)
    assert message.startswith(f"cannot resume {tmp_path}: it was trained on another dataset")
    assert saved in message and dataset_fingerprint(other) in message
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs_run"] == 1  # untouched
    # Evaluating on any dataset of the same shape stays allowed; starting over is allowed.
    mer.TrainedModel.load(tmp_path).evaluate(other, "test")
    mer.train(other, recoverer="zero", masks=0.5, config=_config(1), out_dir=tmp_path, resume=False)


def test_the_fingerprint_is_stable_and_sees_a_single_changed_value(tiny):
    again = synthetic_conversations(seed=0, num_conversations=12, max_utterances=10)
    assert dataset_fingerprint(again) == dataset_fingerprint(tiny)
    assert dataset_fingerprint(tiny.as_classification()) != dataset_fingerprint(tiny)
    arrays = {m: [c.features[m].copy() for c in tiny] for m in tiny.modalities}
    labels = [c.labels.copy() for c in tiny]
    same = ConversationDataset.from_arrays(arrays, labels=labels, splits=tiny.splits)
    arrays["t"] = [x.copy() for x in arrays["t"]]
    arrays["t"][3][0, 0] += 1e-3
    changed = ConversationDataset.from_arrays(arrays, labels=labels, splits=tiny.splits)
    assert dataset_fingerprint(changed) != dataset_fingerprint(same)


@pytest.mark.parametrize("changes, message", [
    ({"seeds": [1, 1]}, "seed 1 given twice"),
    ({"missing_rates": [0.5, 0.5]}, "condition random 0.5 given twice"),
])
def test_a_seed_or_condition_given_twice_is_refused_before_training(tiny, tmp_path, count_train, changes, message):
    with pytest.raises(ValueError, match=message):
        mer.run_benchmark(tiny, recoverers=["zero"], out_dir=tmp_path, **{**BENCH, **changes})
    assert count_train == [] and not (tmp_path / "results.json").exists()
