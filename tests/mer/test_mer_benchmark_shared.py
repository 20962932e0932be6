"""The mixed protocol and the benchmark's shared training mode and "both" protocol."""

import collections
import json

import matplotlib.axes
import numpy as np
import pytest

import mer
import mer.benchmark as bench
import mer.training.evaluation as evaluation
from mer.config import RunConfig
from mer.data import pattern_masks, synthetic_conversations
from mer.data.protocol import MissingProtocol
from mer.data.protocol import mixed_masks, protocol_masks

TINY = {
    "model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
    "train": {"epochs": 1, "batch_size": 8, "patience": 0},
}
MIXTURE = (0.0, 0.5, ("t",), ("t", "a"))


@pytest.fixture(scope="module")
def tiny():
    return synthetic_conversations(seed=0, num_conversations=20, max_utterances=10)


@pytest.fixture(scope="module")
def large():
    return synthetic_conversations(seed=0, num_conversations=300, max_utterances=8)


def _mixed():
    return MissingProtocol(kind="mixed", mixture=MIXTURE)


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


# ------------------------------------------------------------------------------ the protocol
def test_mixed_protocol_round_trips_through_json_and_yaml_and_parses_from_a_dict(tmp_path):
    cfg = RunConfig(protocol=MissingProtocol.parse({"kind": "mixed", "mixture": [0.3, ["t", "a"]]}), seed=4)
    assert cfg.protocol.mixture == (0.3, ("t", "a")) and cfg.protocol.condition == "mixed"
    cfg.to_json(tmp_path / "c.json")
    cfg.to_yaml(tmp_path / "c.yaml")
    assert RunConfig.from_file(tmp_path / "c.json") == cfg
    assert RunConfig.from_file(tmp_path / "c.yaml") == cfg
    assert json.loads(cfg.to_json())["protocol"]["mixture"] == [0.3, ["t", "a"]]


@pytest.mark.parametrize("mixture, message", [
    (None, "non-empty mixture"),
    ([], "non-empty mixture"),
    ([0.3, "t"], r"mixture\[1\] = 't' must be a missing rate"),
    ([0.3, ["x"]], r"mixture\[1\] names unknown modalities \['x'\]"),
    ([0.2, 0.9], r"mixture\[1\]: missing.rate 0.9 is outside"),
    ([("t",), ["t"]], r"mixture\[1\] = \('t',\) repeats mixture\[0\]"),
])
def test_a_bad_mixture_is_rejected_naming_the_offending_entry(mixture, message):
    with pytest.raises(ValueError, match=message):
        MissingProtocol.parse({"kind": "mixed", "mixture": mixture}, ["t", "a", "v"])


# --------------------------------------------------------------------------------- the masks
def test_mixed_masks_are_deterministic_per_seed_and_differ_between_seeds(large):
    for split in ("valid", "test"):
        first = protocol_masks(large, _mixed(), split, seed=3)
        assert _same(first, protocol_masks(large, _mixed(), split, seed=3))
        # Valid/test masks do not depend on the epoch.
        assert _same(first, protocol_masks(large, _mixed(), split, seed=3, epoch=5))
        assert not _same(first, protocol_masks(large, _mixed(), split, seed=4))


def test_every_mixed_mask_is_one_of_the_mixture_conditions_drawn_about_uniformly(large):
    part = large.split("train")
    masks, drawn = mixed_masks(part, _mixed(), seed=0, split="train")
    assert _same(masks, protocol_masks(large, _mixed(), "train", seed=0, train_masks="fixed"))
    M = len(large.modalities)
    for conv, mask, k in zip(part, masks, drawn):
        item = MIXTURE[k]
        assert mask.shape == (conv.num_utterances, M)
        if isinstance(item, tuple):
            assert np.array_equal(mask, pattern_masks([conv], item)[0])
        else:
            assert mask.any(axis=1).all(), "every utterance keeps a modality"
            assert int((~mask).sum()) == round(item * conv.num_utterances * M)
    counts = collections.Counter(drawn)
    expected = len(part) / len(MIXTURE)
    assert sorted(counts) == list(range(len(MIXTURE)))
    assert all(0.6 * expected < n < 1.4 * expected for n in counts.values()), counts


def test_per_epoch_training_draws_differ_between_epochs_and_repeat_for_the_same_epoch(large):
    epoch0 = protocol_masks(large, _mixed(), "train", seed=1, epoch=0)
    epoch1 = protocol_masks(large, _mixed(), "train", seed=1, epoch=1)
    assert not _same(epoch0, epoch1)
    assert _same(epoch0, protocol_masks(large, _mixed(), "train", seed=1, epoch=0))
    fixed = [protocol_masks(large, _mixed(), "train", seed=1, epoch=e, train_masks="fixed")
             for e in (0, 1)]
    assert _same(*fixed)


# ----------------------------------------------------------------------------- the benchmark
def test_shared_training_trains_once_per_seed_and_recoverer_and_tests_on_per_condition_masks(
    tiny, monkeypatch, count_train
):
    """Both training modes of a "both" benchmark see the same test masks for every condition."""
    seen = {}  # (mode, seed, recoverer, condition) → the test masks handed to evaluate_model
    current = {}
    real_evaluate, real_evaluate_model = evaluation.TrainedModel.evaluate, evaluation.evaluate_model

    def evaluate(self, dataset, split="test", masks=None, **kw):
        condition = (self.config.protocol if masks is None else masks).condition
        current["label"] = (self.config.protocol.kind, self.config.seed, self.config.recoverer, condition)
        try:
            return real_evaluate(self, dataset, split, masks, **kw)
        finally:
            current.clear()

    def evaluate_model(model, conversations, masks, **kw):
        if current:  # not the validation pass inside train()
            mode, *rest = current["label"]
            seen["shared" if mode == "mixed" else "per_condition", *rest] = [np.array(m) for m in masks]
        return real_evaluate_model(model, conversations, masks, **kw)

    monkeypatch.setattr(evaluation.TrainedModel, "evaluate", evaluate)
    monkeypatch.setattr(evaluation, "evaluate_model", evaluate_model)
    kwargs = dict(recoverers=["zero", "mean"], protocol="both", missing_rates=[0.5],
                  patterns=[("t",), ("t", "a")], seeds=[7], config=TINY)
    rows = {}
    for mode in ("per_condition", "shared"):
        count_train.clear()
        rows[mode] = mer.run_benchmark(tiny, training=mode, **kwargs)
        assert len(count_train) == (3 * 2 if mode == "per_condition" else 2)
    assert [c.protocol.kind for c in count_train] == ["mixed", "mixed"]
    assert count_train[0].protocol.mixture == (0.5, ("t",), ("t", "a"))

    for mode, got in rows.items():
        assert [(r["protocol"], r["condition"], r["recoverer"]) for r in got] == [
            ("random", "0.5", "zero"), ("random", "0.5", "mean"), ("fixed", "{t}", "zero"),
            ("fixed", "{t}", "mean"), ("fixed", "{t,a}", "zero"), ("fixed", "{t,a}", "mean")]
        assert {r["training"] for r in got} == {mode}
        assert all(set(bench.ROW_KEYS) <= set(r) for r in got)
    shared = rows["shared"]
    for name in ("zero", "mean"):
        own = [r for r in shared if r["recoverer"] == name]
        assert len({r["train_seconds"] for r in own}) == 1, "one shared training per recoverer"
        assert all(r["config"]["protocol"]["kind"] == "mixed" for r in own)

    per_condition = {k[1:]: v for k, v in seen.items() if k[0] == "per_condition"}
    shared_masks = {k[1:]: v for k, v in seen.items() if k[0] == "shared"}
    assert len(per_condition) == 6 and per_condition.keys() == shared_masks.keys()
    for key, masks in per_condition.items():
        assert _same(masks, shared_masks[key]), key
    test_part = tiny.split("test")
    assert _same(shared_masks[7, "zero", "{t}"], pattern_masks(test_part, ("t",)))
    assert _same(shared_masks[7, "zero", "0.5"], protocol_masks(tiny, MissingProtocol(missing_rate=0.5), "test", 7))


def test_both_protocols_write_a_table_section_each_and_plot_only_the_rates(tiny, tmp_path, monkeypatch):
    plotted = []
    real = matplotlib.axes.Axes.errorbar

    def errorbar(self, x, y, *args, **kwargs):
        plotted.append(list(x))
        return real(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", errorbar)
    rows = mer.run_benchmark(tiny, recoverers=["zero"], protocol="both", missing_rates=[0.0, 0.5],
                             patterns=[("t",), ("a", "v")], seeds=[1, 2], config=TINY,
                             training="shared", out_dir=tmp_path)
    assert [r["protocol"] for r in rows] == ["random"] * 4 + ["fixed"] * 4
    assert json.loads((tmp_path / "results.json").read_text()) == rows
    lines = (tmp_path / "table.md").read_text().splitlines()
    assert "`shared`" in lines[0]
    random_at = lines.index("## Random missing (rows: missing rate)")
    fixed_at = lines.index("## Fixed missing (rows: available modalities)")
    assert random_at < fixed_at
    for section in (lines[random_at:fixed_at], lines[fixed_at:]):
        assert sum(line.startswith("| Average |") for line in section) == 2  # metrics and recovery
    assert any(line.startswith("| 0.5 |") for line in lines[random_at:fixed_at])
    assert any(line.startswith("| {a,v} |") for line in lines[fixed_at:])
    assert not any(line.startswith("| {t} |") for line in lines[random_at:fixed_at])
    assert plotted == [[0.0, 0.5]]


def test_shared_resume_skips_finished_pairs_and_retrains_incomplete_ones(tiny, tmp_path, count_train):
    kwargs = dict(recoverers=["zero"], protocol="random", missing_rates=[0.0, 0.5], config=TINY,
                  training="shared", out_dir=tmp_path)
    first = mer.run_benchmark(tiny, seeds=[1], **kwargs)
    assert len(count_train) == 1

    count_train.clear()
    both = mer.run_benchmark(tiny, seeds=[1, 2], **kwargs)
    assert [c.seed for c in count_train] == [2]
    assert [r for r in both if r["seed"] == 1] == first

    # A (seed, recoverer) missing one condition's row is trained again; the complete one is not.
    kept = [r for r in both if not (r["seed"] == 1 and r["condition"] == "0.5")]
    (tmp_path / "results.json").write_text(json.dumps(kept))
    count_train.clear()
    mer.run_benchmark(tiny, seeds=[1, 2], **kwargs)
    assert [c.seed for c in count_train] == [1]

    # Shared rows are no per-condition runs: switching the mode trains every condition.
    count_train.clear()
    mer.run_benchmark(tiny, seeds=[1], **dict(kwargs, training="per_condition"))
    assert [c.protocol.condition for c in count_train] == ["0.0", "0.5"]


def test_run_benchmark_rejects_an_unknown_training_mode_or_protocol(tiny):
    with pytest.raises(ValueError, match=r"training must be one of \['per_condition', 'shared'\]"):
        mer.run_benchmark(tiny, recoverers=["zero"], training="per-condition", config=TINY)
    with pytest.raises(ValueError,
                       match=r"protocol must be one of \['random', 'fixed', 'both', 'literature'\]"):
        mer.run_benchmark(tiny, recoverers=["zero"], protocol="mixed", config=TINY)
