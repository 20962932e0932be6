"""A step under ``train.step_memory``: long conversations run as micro-batches whose accumulated
gradient is the unsplit batch's, and evaluation batches shrink to fit (``mer.training.memory``)."""

import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import mer
from mer.config import RunConfig, TrainConfig
from mer.data import ConversationDataset, MaskedConversations, random_missing
from mer.training import train_epoch
from mer.training.build import build_model
from mer.training.distributed import index_batches
from mer.training.memory import StepPlan, conversations_within, plan_steps

from fast_settings import FAST


def _dataset(lengths, seed=0):
    rng = np.random.default_rng(seed)
    widths = {"t": 4, "a": 5, "v": 6}
    features = {m: [rng.normal(size=(n, w)) for n in lengths] for m, w in widths.items()}
    labels = [rng.uniform(-3, 3, size=n) for n in lengths]
    speakers = [rng.integers(0, 2, size=n) for n in lengths]
    k = len(lengths)
    return ConversationDataset.from_arrays(features, labels, speakers,
                                           splits={"train": list(range(k - 2)), "valid": [k - 2], "test": [k - 1]})


class _Linear:
    """A recoverer stand-in whose estimate is 100 bytes per conversation-utterance."""

    def estimate_memory(self, max_utterances, batch_size):
        return 100 * max_utterances * batch_size


class _Silent:
    def estimate_memory(self, max_utterances, batch_size):
        return None


def test_conversations_within_takes_the_largest_batch_under_the_budget():
    assert conversations_within(_Linear(), 10, 16, budget=5_000) == 5
    assert conversations_within(_Linear(), 10, 16, budget=10**9) == 16
    assert conversations_within(_Linear(), 10, 16, budget=10) == 1  # not even one: one (check_memory decides)
    assert conversations_within(_Linear(), 10, 16, budget=None) == 16
    assert conversations_within(_Silent(), 10, 16, budget=1) == 16


def test_plan_steps_splits_training_and_evaluation_by_the_configured_budget():
    plan = plan_steps(_Linear(), 20, TrainConfig(batch_size=16, eval_batch_size=64, step_memory="10kB"))
    assert plan == StepPlan(train=5, eval=5, max_utterances=20, estimate=32_000)
    assert plan.split(16) and not plan.split(5)
    unsplit = plan_steps(_Linear(), 20, TrainConfig(batch_size=16, step_memory=None))
    assert unsplit.train == 16 and unsplit.eval == 64


def test_step_memory_must_be_a_size():
    with pytest.raises(ValueError, match="train.step_memory='lots' is not a size"):
        RunConfig.from_dict({"train": {"step_memory": "lots"}}).validate()


def test_index_batches_are_the_shuffled_dataloader_batches():
    data = list(range(23))
    expected = [b.tolist() for b in DataLoader(data, batch_size=5, shuffle=True,
                                               generator=torch.Generator().manual_seed(7))]
    assert list(index_batches(23, 5, torch.Generator().manual_seed(7))) == expected


def _epoch_after(cfg, ds, masks, micro_batch):
    torch.manual_seed(0)
    model = build_model(cfg, ds.modalities, ds.feature_dims, ds.task, ds.num_classes)
    model.scaler.fit(ds, "train")
    model.recoverer.fit_statistics(ds.split("train"), model.scaler)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    record = train_epoch(model, optimizer, ds.split("train"), masks, cfg, 0, torch.device("cpu"),
                         micro_batch=micro_batch)
    return record, {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_micro_batches_give_the_unsplit_batch_update():
    # Unequal lengths, so the utterance weighting matters; no dropout and a deterministic recoverer,
    # so the only difference is where the sums are split.
    ds = _dataset([9, 3, 14, 6, 11, 4, 8, 5, 7])
    cfg = RunConfig.from_dict({"recoverer": "mean", "train": {"batch_size": 4}, "model": {"dropout": 0.0}})
    masks = random_missing(ds.split("train"), 0.3, seed=0)
    whole_record, whole = _epoch_after(cfg, ds, masks, micro_batch=None)
    split_record, split = _epoch_after(cfg, ds, masks, micro_batch=1)
    for name, value in whole.items():
        torch.testing.assert_close(split[name], value, rtol=1e-4, atol=1e-5)
    assert split_record["train_task_loss"] == pytest.approx(whole_record["train_task_loss"], rel=1e-5)
    # Not a no-op: one step on a different batch size would move the weights elsewhere.
    cfg_small = RunConfig.from_dict({"recoverer": "mean", "train": {"batch_size": 1}, "model": {"dropout": 0.0}})
    _, other = _epoch_after(cfg_small, ds, masks, micro_batch=None)
    assert any(not torch.allclose(other[k], v, atol=1e-5) for k, v in whole.items() if v.is_floating_point())


def test_training_over_budget_runs_micro_batches_and_says_so(caplog):
    ds = _dataset([40, 35, 30, 38, 6, 5])
    kwargs = dict(FAST["gsdnet_adjacency"], hidden_dim=8)
    one = mer.recoverers.build_recoverer("gsdnet_adjacency", ds.modalities, ds.feature_dims, **kwargs)
    budget = one.estimate_memory(40, 2)  # two conversations of 40 utterances fit, four do not
    config = {"train": {"batch_size": 4, "eval_batch_size": 8, "step_memory": str(budget)}}
    with caplog.at_level(logging.INFO, logger="mer.training"):
        trained = mer.train(ds, recoverer="gsdnet_adjacency", masks=0.3, epochs=1, seed=0,
                            recoverer_kwargs=kwargs, config=config)
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("memory:"))
    assert "micro-batches of 2" in line and "evaluation batches of 2" in line and "40 utterances" in line
    assert trained._batch_size(ds, None) == 2 and trained._batch_size(ds, 1) == 1
    assert np.isfinite(trained.history[0]["train_loss"])
