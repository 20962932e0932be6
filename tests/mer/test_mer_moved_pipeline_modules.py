"""The pipeline's moved modules: old import paths still work (with a DeprecationWarning), the run's
MaskPlan gives the masks the mask functions give, and checkpoints load with ``weights_only=True``."""

import importlib
import os
import pickle
import sys

import numpy as np
import pytest
import torch

import mer
from mer.data import pattern_masks, random_missing, split_masks, synthetic_conversations
from mer.data.protocol import MaskPlan, MissingProtocol, epoch_seed, mixed_masks, protocol_masks
from mer.training import TrainedModel, load_checkpoint

TINY = {"model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
        "train": {"epochs": 2, "batch_size": 8, "patience": 0}}


@pytest.fixture(scope="module")
def dataset():
    return synthetic_conversations(seed=0, num_conversations=30, max_utterances=8)


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


# ------------------------------------------------------------------------------ old import paths
@pytest.mark.parametrize("old, new, names", [
    ("mer.training.trainer", "mer.training.loop",
     ["train", "train_epoch", "TrainedModel", "evaluate_model", "build_model", "resolve_config"]),
    ("mer.training.masks", "mer.data.protocol",
     ["protocol_masks", "mixed_masks", "epoch_seed", "full_masks"]),
])
def test_an_old_module_path_warns_and_is_the_new_module(old, new, names):
    sys.modules.pop(old, None)
    parent, _, child = old.rpartition(".")
    if hasattr(sys.modules.get(parent), child):
        delattr(sys.modules[parent], child)
    with pytest.warns(DeprecationWarning, match=f"{old} has moved to {new}"):
        module = importlib.import_module(old)
    target = importlib.import_module(new)
    assert module is target
    for name in names:
        assert getattr(module, name) is getattr(target, name)


def test_old_names_are_the_new_objects():
    import mer.cli
    import mer.config
    import mer.data
    import mer.data.source
    import mer.training

    assert mer.Protocol is mer.config.Protocol is mer.data.Protocol is MissingProtocol
    assert mer.MissingProtocol is MissingProtocol
    assert mer.cli.load_data is mer.data.load_data is mer.data.source.load_data
    assert mer.config.DataConfig is mer.data.DataConfig is mer.DataConfig
    assert mer.training.protocol_masks is protocol_masks
    from mer.nn.task_loss import task_loss

    assert mer.training.task_loss is task_loss


def test_benchmark_package_keeps_every_name():
    import mer.benchmark as bench
    from mer.benchmark import report, run

    for name in ("run_benchmark", "default_missing_rates", "DEFAULT_RECOVERERS", "DEFAULT_SEEDS",
                 "BENCHMARK_PROTOCOLS", "TRAINING_MODES", "ROW_KEYS"):
        assert getattr(bench, name) is getattr(run, name)
    for name in ("format_table", "plot_missing_rate", "write_report", "merge_results", "load_results"):
        assert getattr(bench, name) is getattr(report, name)


# ------------------------------------------------------------------------------------ MaskPlan
@pytest.mark.parametrize("protocol", [
    MissingProtocol(kind="random", missing_rate=0.4),
    MissingProtocol(kind="mixed", mixture=(0.0, 0.5, ("t",), ("t", "a"))),
    MissingProtocol(kind="fixed", pattern=("a", "v")),
    MissingProtocol(kind="none"),
])
@pytest.mark.parametrize("train_masks", ["per_epoch", "fixed"])
def test_mask_plan_gives_the_masks_of_the_mask_functions(dataset, protocol, train_masks):
    seed = 5
    plan = MaskPlan(dataset, protocol, seed, train_masks)

    def expected(split, epoch=None):
        part = dataset.split(split)
        redraw = split == "train" and train_masks == "per_epoch" and epoch is not None
        if protocol.kind == "none":
            return [np.ones((c.num_utterances, 3), dtype=bool) for c in part]
        if protocol.kind == "fixed":
            return pattern_masks(part, protocol.pattern)
        if protocol.kind == "mixed":
            return mixed_masks(part, protocol, epoch_seed(seed, epoch) if redraw else seed, split)[0]
        if redraw:
            return random_missing(part, protocol.missing_rate, seed=epoch_seed(seed, epoch))
        return list(split_masks(dataset, split, protocol.missing_rate, seed=seed))

    assert _same(plan.valid, expected("valid"))
    assert _same(plan.test, expected("test"))
    assert plan.valid is plan.valid, "valid masks are built once"
    for epoch in (0, 1, 3):
        assert _same(plan.train(epoch), expected("train", epoch))
        assert _same(plan.train(epoch), protocol_masks(dataset, protocol, "train", seed, epoch, train_masks))
    if protocol.kind in ("random", "mixed"):
        assert _same(plan.train(0), plan.train(1)) == (train_masks == "fixed")


# --------------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def run_dir(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    mer.train(dataset, recoverer="autoencoder", masks=0.3, config=TINY, seed=3, out_dir=out,
              recoverer_kwargs={"hidden": 8, "bottleneck": 4})
    return out


@pytest.mark.parametrize("name", ["best.pt", "last.pt"])
def test_checkpoints_load_with_weights_only(run_dir, name):
    payload = torch.load(run_dir / name, weights_only=True)
    assert payload["format"] == 1 and payload["config"]["seed"] == 3
    assert {"config", "dataset_info", "model", "best_epoch", "history"} <= set(payload)
    if name == "last.pt":
        assert {"optimizer", "rng", "best_state", "epoch", "bad_epochs", "best_loss"} <= set(payload)


class _Payload:
    """Unpickling it would create a file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.makedirs, (self.path,))


def test_a_crafted_checkpoint_is_refused_naming_the_file_and_runs_nothing(run_dir, tmp_path, dataset):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil" / "best.pt"
    evil.parent.mkdir()
    torch.save({"config": {}, "dataset_info": {}, "model": _Payload(marker)}, evil)
    with pytest.raises(ValueError, match="best.pt: not a mer checkpoint or unsafe to load"):
        load_checkpoint(evil)
    with pytest.raises(ValueError, match=str(evil)):
        TrainedModel.load(evil.parent)
    last = evil.parent / "last.pt"
    with open(last, "wb") as handle:
        pickle.dump(_Payload(marker), handle)
    with pytest.raises(ValueError, match="last.pt: not a mer checkpoint or unsafe to load"):
        mer.train(dataset, recoverer="zero", masks=0.3, config=TINY, seed=3, out_dir=evil.parent)
    assert not marker.exists()
