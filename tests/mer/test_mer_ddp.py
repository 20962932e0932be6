"""Data-parallel training: `mer train` under torchrun (two CPU processes, gloo) against one process.

Deterministic set-up: the `zero` recoverer (no recoverer parameters or noise), dropout 0, one torch
thread per process. The 21 training conversations in global batches of 4 leave a last batch of one,
so rank 1 also runs its zero-weight stand-in there. Losses agree to about 1e-7 relative (float32
sums in another order; the test allows rtol 1e-5); after 12 Adam steps the weights differ by at most
about 3e-6 (Adam rescales tiny gradients; the test allows atol 1e-5).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed

from mer.training.distributed import DataParallel

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason="torch.distributed is not available in this torch build")

CONFIG = """\
model: {dim: 16, head_hidden: 16, gcn_layers: 2, dropout: 0.0}
train: {epochs: 2, batch_size: 4, patience: 0}
"""
RTOL = 1e-5
ARGS = ["train", "--recoverer", "zero", "--synthetic-conversations", "30", "--protocol", "random",
        "--missing-rate", "0.3"]


def _run(command, out, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    done = subprocess.run([*command, *ARGS, "--config", str(out.parent / "run.yaml"), "--out", str(out),
                           *extra], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def _single(out, *extra):
    return _run([sys.executable, "-m", "mer"], out, *extra)


def _two_ranks(out, *extra):
    # --standalone: torchrun picks a free port itself.
    return _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                 "-m", "mer"], out, *extra)


def _losses(metrics):
    keys = ("train_loss", "train_task_loss", "valid_loss")
    return np.array([[record[k] for k in keys] for record in metrics["history"]])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    (root / "run.yaml").write_text(CONFIG)
    return root, _single(root / "single"), _two_ranks(root / "ddp")


def test_two_ranks_match_one_process_on_the_same_global_batch(runs):
    root, single, ddp = runs
    assert len(single["history"]) == len(ddp["history"]) == 2
    np.testing.assert_allclose(_losses(ddp), _losses(single), rtol=RTOL)
    np.testing.assert_allclose(ddp["test"]["loss"], single["test"]["loss"], rtol=RTOL)
    one = torch.load(root / "single" / "best.pt", weights_only=True)["model"]
    two = torch.load(root / "ddp" / "best.pt", weights_only=True)["model"]
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=RTOL, atol=1e-5, msg=name)


def test_only_rank_0_writes_the_run_folder(runs):
    root, _, _ = runs
    single, ddp = root / "single", root / "ddp"
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in single.iterdir())
    log = (ddp / "train.log").read_text().splitlines()
    # One writer: the start line and each epoch's line once (a second rank would rewrite or repeat).
    assert sum("train zero for 2 epochs" in line for line in log) == 1, log
    assert sum("epoch 1/2" in line for line in log) == 1, log
    assert len((ddp / "history.csv").read_text().splitlines()) == 1 + 2


def test_a_resumed_two_rank_run_continues_where_it_stopped(runs, tmp_path):
    root, single, _ = runs
    (tmp_path / "run.yaml").write_text(CONFIG)
    first = _two_ranks(tmp_path / "resumed", "--epochs", "1")
    assert first["epochs_run"] == 1
    resumed = _two_ranks(tmp_path / "resumed")
    assert resumed["epochs_run"] == 2
    np.testing.assert_allclose(_losses(resumed), _losses(single), rtol=RTOL)


def test_the_batch_must_split_evenly_across_ranks():
    DataParallel(rank=0, world_size=2, local_rank=0).check_batch_size(4)
    with pytest.raises(ValueError, match="multiple of the 2 data-parallel processes"):
        DataParallel(rank=0, world_size=2, local_rank=0).check_batch_size(5)


def test_without_torchrun_training_stays_single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert DataParallel.from_env() is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert DataParallel.from_env() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert DataParallel.from_env() == DataParallel(rank=1, world_size=2, local_rank=1)
