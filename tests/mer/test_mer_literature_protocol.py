"""The literature's missing protocol (``kind="literature"``): exact composition per split, uniform
modalities, seeding and epochs, the parse forms, the papers' Average, the benchmark conditions and a
short training run under the row ``0.7``."""

import math

import numpy as np
import pytest

import mer
from mer.benchmark.report import format_table, missing_rate_figure
from mer.cli import _protocol, build_parser
from mer.config import RunConfig
from mer.data import ConversationDataset, missing_rate, synthetic_conversations
from mer.data.literature import (
    LITERATURE_COMPOSITION,
    LITERATURE_LABELS,
    literature_average,
    literature_counts,
    literature_masks,
    realised_missing_rate,
)
from mer.data.protocol import (
    CONDITION_SETS,
    PROTOCOL_KINDS,
    MaskPlan,
    MissingProtocol,
    benchmark_conditions,
    mixture_of,
    protocol_from_options,
    protocol_masks,
)

ALL_LABELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
#: IMDer's table by label, written out again here so that a typo in the module's table fails.
SHARES = {0.0: (0.0, 0.0), 0.1: (0.1, 0.1), 0.2: (0.2, 0.2), 0.3: (0.3, 0.3), 0.4: (0.5, 0.2),
          0.5: (0.7, 0.1), 0.6: (0.9, 0.0), 0.7: (1.0, 0.0)}
TAV = ["t", "a", "v"]


def _dataset(sizes, modalities=TAV, splits=None):
    features = {m: [np.zeros((n, 2)) for n in sizes] for m in modalities}
    splits = splits or {"test": list(range(len(sizes)))}
    return ConversationDataset.from_arrays(features, [np.zeros(n) for n in sizes], splits=splits)


@pytest.fixture(scope="module")
def clips():
    """3000 one-utterance conversations (the per-clip view), all in the test split."""
    return _dataset([1] * 3000)


@pytest.fixture(scope="module")
def dialogues():
    """Multi-utterance conversations in three splits."""
    sizes = [int(n) for n in np.random.default_rng(4).integers(1, 15, size=150)]
    return _dataset(sizes, splits={"train": list(range(100)), "valid": list(range(100, 120)),
                                   "test": list(range(120, 150))})


def _kept_counts(masks):
    """(utterances keeping one modality, keeping two, keeping three)."""
    kept = np.concatenate(masks).sum(axis=1)
    return int((kept == 1).sum()), int((kept == 2).sum()), int((kept == 3).sum())


def test_the_table_is_imders_and_its_realised_rate_is_the_label_up_to_two_thirds():
    assert dict(LITERATURE_COMPOSITION) == SHARES
    assert LITERATURE_LABELS == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    for label in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
        assert realised_missing_rate(label) == pytest.approx(label, abs=1e-12)
    assert realised_missing_rate(0.7) == pytest.approx(2 / 3, abs=1e-12)


@pytest.mark.parametrize("label", ALL_LABELS)
def test_one_utterance_conversations_get_exactly_the_stated_composition(clips, label):
    n = 3000
    two, one = SHARES[label]
    masks = literature_masks(clips, label, seed=3)
    keep1, keep2, keep3 = _kept_counts(masks)
    assert (keep1, keep2) == (round(two * n), round(one * n)) == literature_counts(label, n)
    assert keep3 == n - keep1 - keep2
    # every entry accounted for: 2 per two-missing utterance, 1 per one-missing one
    assert missing_rate(masks) == pytest.approx((2 * keep1 + keep2) / (3 * n), abs=1e-12)
    assert abs(missing_rate(masks) - (2 * two + one) / 3) <= 1 / n


@pytest.mark.parametrize("label", (0.1, 0.4, 0.5, 0.7))
def test_multi_utterance_splits_each_get_the_exact_composition(dialogues, label):
    masks = literature_masks(dialogues, label, seed=11)
    for split, indices in dialogues.splits.items():
        n = sum(dialogues[i].num_utterances for i in indices)
        keep1, keep2, _ = _kept_counts([masks[i] for i in indices])
        assert (keep1, keep2) == literature_counts(label, n), split
    for conv, mask in zip(dialogues, masks):
        assert mask.shape == (conv.num_utterances, 3) and mask.dtype == bool
        assert mask.any(axis=1).all()


def test_counts_round_halves_up_and_never_exceed_the_utterances():
    # 0.4 → (0.5, 0.2): 2.5 → 3, 1.0 → 1; 0.5 → (0.7, 0.1): 3.5 → 4 (0.7 · 5 is 3.4999… in floats), 0.5 → 1
    assert literature_counts(0.4, 5) == (3, 1)
    assert literature_counts(0.5, 5) == (4, 1)
    assert literature_counts(0.7, 1) == (1, 0)
    assert literature_counts(0.1, 0) == (0, 0)
    for label in ALL_LABELS:
        for n in range(60):
            two, one = literature_counts(label, n)
            assert 0 <= two and 0 <= one and two + one <= n
            assert two == math.floor(SHARES[label][0] * n + 0.5 + 1e-9)


def test_row_0_7_keeps_exactly_one_modality_everywhere(clips, dialogues):
    for data in (clips, dialogues):
        for mask in literature_masks(data, 0.7, seed=0):
            assert (mask.sum(axis=1) == 1).all()


def test_kept_and_dropped_modalities_are_uniform_over_the_three(clips):
    # 0.7: 3000 utterances keep one modality, each kept with p = 1/3: sd = √(3000·2/9) ≈ 25.8.
    kept = np.concatenate(literature_masks(clips, 0.7, seed=5)).sum(axis=0)
    assert kept.sum() == 3000
    assert np.all(np.abs(kept - 1000) < 5 * math.sqrt(3000 * 2 / 9)), kept
    # 0.3: 900 utterances lose one modality, each lost with p = 1/3: sd = √(900·2/9) ≈ 14.1; the 900
    # that lose two keep one each, same tolerance.
    masks = np.concatenate(literature_masks(clips, 0.3, seed=5))
    two_kept = masks[masks.sum(axis=1) == 2]
    one_kept = masks[masks.sum(axis=1) == 1]
    assert len(two_kept) == len(one_kept) == 900
    for counts in ((~two_kept).sum(axis=0), one_kept.sum(axis=0)):
        assert np.all(np.abs(counts - 300) < 5 * math.sqrt(900 * 2 / 9)), counts


def test_masks_depend_on_the_seed_and_split_only(dialogues):
    a = literature_masks(dialogues, 0.4, seed=1)
    b = literature_masks(dialogues, 0.4, seed=1)
    c = literature_masks(dialogues, 0.4, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    test = literature_masks(dialogues.split("test"), 0.4, seed=1)
    assert all(np.array_equal(x, a[i]) for x, i in zip(test, dialogues.splits["test"]))


def test_valid_and_test_masks_stay_fixed_while_training_masks_follow_train_masks(dialogues):
    protocol = MissingProtocol.parse("literature:0.5", TAV)
    plan = MaskPlan(dialogues, protocol, seed=7)
    again = MaskPlan(dialogues, protocol, seed=7)
    for split in ("valid", "test"):
        fixed = plan.split(split)
        for epoch in (0, 3):
            masks = protocol_masks(dialogues, protocol, split, 7, epoch=epoch)
            assert all(np.array_equal(x, y) for x, y in zip(fixed, masks))
        assert all(np.array_equal(x, y) for x, y in zip(fixed, again.split(split)))
    n_train = sum(c.num_utterances for c in dialogues.split("train"))
    e0, e1 = plan.train(0), plan.train(1)
    assert not all(np.array_equal(x, y) for x, y in zip(e0, e1))
    assert _kept_counts(e0)[:2] == _kept_counts(e1)[:2] == literature_counts(0.5, n_train)
    assert all(np.array_equal(x, y) for x, y in zip(e0, again.train(0)))
    once = MaskPlan(dialogues, protocol, seed=7, train_masks="fixed")
    assert all(np.array_equal(x, y) for x, y in zip(once.train(0), once.train(4)))
    complete = MaskPlan(dialogues, protocol, seed=7, train_masks="complete")
    assert all(m.all() for m in complete.train(2))
    assert _kept_counts(complete.test)[:2] == _kept_counts(plan.test)[:2]


def test_parse_accepts_the_string_dict_and_command_line_forms_and_round_trips():
    assert "literature" in PROTOCOL_KINDS and "literature" in CONDITION_SETS
    p = MissingProtocol.parse("literature:0.7", TAV)
    assert (p.kind, p.missing_rate, p.condition) == ("literature", 0.7, "lit0.7")
    assert MissingProtocol.parse("lit0.7") == p
    assert MissingProtocol.parse({"kind": "literature", "missing_rate": 0.7}) == p
    assert MissingProtocol.parse(p.condition) == p
    assert MissingProtocol.parse({"kind": "literature", "missing_rate": 0.1 + 0.2}).missing_rate == 0.3
    # a literature row and the random rate of the same number are different conditions
    assert MissingProtocol.parse("literature:0.6").condition != MissingProtocol.parse(0.6).condition == "0.6"
    for form in ("literature:0.7", {"kind": "literature", "missing_rate": 0.7}):
        cfg = RunConfig.from_dict({"protocol": form, "seed": 3})
        assert cfg.protocol == p
        assert RunConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
        assert cfg.to_dict()["protocol"]["kind"] == "literature"
    assert RunConfig().with_settings(["protocol=literature:0.4"]).protocol.condition == "lit0.4"
    assert protocol_from_options(MissingProtocol(), "literature", 0.4) == MissingProtocol("literature", 0.4)
    assert protocol_from_options(p, "literature").missing_rate == 0.7
    with pytest.raises(ValueError, match="needs --missing-rate"):
        protocol_from_options(MissingProtocol(), "literature")
    args = build_parser().parse_args(["train", "--out", "run", "--protocol", "literature",
                                      "--missing-rate", "0.7"])
    assert _protocol(args, MissingProtocol()) == p


@pytest.mark.parametrize("bad", [0.667, 0.8, 0.15, -0.1, True, "x"])
def test_a_label_that_is_no_row_is_refused_naming_the_rows(bad):
    form = f"literature:{bad}" if isinstance(bad, str) else {"kind": "literature", "missing_rate": bad}
    with pytest.raises(ValueError, match=r"0\.0, 0\.1, .*0\.7"):
        MissingProtocol.parse(form)


@pytest.mark.parametrize("modalities", [["t", "a"], ["t", "a", "v", "x"]])
def test_the_literature_protocol_needs_exactly_three_modalities(modalities):
    with pytest.raises(ValueError, match="exactly 3 modalities"):
        MissingProtocol.parse("literature:0.3", modalities)
    with pytest.raises(ValueError, match="exactly 3 modalities"):
        literature_masks(_dataset([2, 3], modalities), 0.3)
    with pytest.raises(ValueError, match="exactly 3 modalities"):
        benchmark_conditions(modalities, "literature")


def test_literature_average_is_the_mean_over_0_1_to_0_7_and_refuses_a_missing_row():
    values = {0.1: 80.0, 0.2: 78.0, 0.3: 76.5, 0.4: 74.0, 0.5: 71.0, 0.6: 69.5, 0.7: 60.0}
    assert literature_average(values) == pytest.approx(509.0 / 7)
    # label 0.0 is not part of the Average; labels compare as rows (0.1 + 0.2 is 0.3)
    assert literature_average({**values, 0.0: 99.0}) == pytest.approx(509.0 / 7)
    assert literature_average({l: 10 * k for k, l in enumerate((0.1, 0.1 + 0.1, 0.1 + 0.2, 0.4, 0.5,
                                                                 0.6, 0.7), 1)}) == 40.0
    assert literature_average(values, labels=(0.6, 0.7)) == 64.75
    partial = {k: v for k, v in values.items() if k not in (0.4, 0.7)}
    with pytest.raises(ValueError, match=r"missing: \['0\.4', '0\.7'\]"):
        literature_average(partial)


def test_benchmark_conditions_list_the_rows_and_mixtures_refuse_them():
    conditions = benchmark_conditions(TAV, "literature")
    assert [c.condition for c in conditions] == ["lit0.1", "lit0.2", "lit0.3", "lit0.4", "lit0.5",
                                                 "lit0.6", "lit0.7"]
    assert all(c.kind == "literature" for c in conditions)
    assert [c.missing_rate for c in benchmark_conditions(TAV, "literature", [0.0, 0.7])] == [0.0, 0.7]
    with pytest.raises(ValueError, match="random and fixed conditions only"):
        mixture_of(conditions)


def _report_row(protocol, condition, seed, acc2):
    extra = ({"missing_rate": float(condition)} if protocol == "random"
             else {"literature_label": float(condition[3:])})
    return {"recoverer": "zero", "protocol": protocol, "condition": condition, "seed": seed,
            "training": "per_condition", **extra,
            "metrics": {"acc2_non0": acc2, "f1_non0": acc2, "acc7": 0.4, "recovery_mse": 1.0},
            "config": {"train": {"epochs": 1, "eval_samples": 1}}, "dataset_fingerprint": "sha256:0"}


def test_the_report_keeps_literature_rows_apart_from_random_rates_of_the_same_number():
    rows = [_report_row("random", "0.6", 1, 0.70), _report_row("literature", "lit0.6", 1, 0.60),
            _report_row("literature", "lit0.7", 1, 0.50)]
    table = format_table(rows)
    assert "## Literature missing" in table
    assert "| 0.6 | 70.0 / 70.0 / 40.0 |" in table and "| lit0.6 | 60.0 / 60.0 / 40.0 |" in table
    # the literature section's Average is over its own rows only: (60 + 50) / 2
    averages = [line for line in table.splitlines() if line.startswith("| Average")]
    assert "| Average | 55.0 / 55.0 / 40.0 |" in averages
    fig = missing_rate_figure([r for r in rows if r["protocol"] == "literature"])
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("MR label (literature protocol)")
    assert sorted(ax.lines[0].get_xdata()) == pytest.approx([0.6, 0.7])


def test_a_short_training_run_under_row_0_7_tests_with_one_modality_per_utterance():
    dataset = synthetic_conversations(seed=0, num_conversations=24, min_utterances=2, max_utterances=6)
    config = RunConfig.from_dict({"model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
                                  "train": {"epochs": 1, "batch_size": 8, "patience": 0}})
    trained = mer.train(dataset, recoverer="zero", masks="literature:0.7", config=config, seed=2)
    assert trained.config.protocol.condition == "lit0.7"
    availability = np.asarray(trained.predict(dataset, "test")["availability"])
    assert len(availability) == sum(c.num_utterances for c in dataset.split("test"))
    assert (availability.sum(axis=1) == 1).all()
    # the same masks the plan of the run gives (seeded by the run's seed)
    expected = np.concatenate(MaskPlan(dataset, trained.config.protocol, 2).test)
    assert np.array_equal(availability, expected)


def test_a_literature_benchmark_labels_its_rows_and_scores_them_on_the_rows_masks(tmp_path):
    dataset = synthetic_conversations(seed=0, num_conversations=20, min_utterances=2, max_utterances=6)
    config = {"model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
              "train": {"epochs": 1, "batch_size": 8, "patience": 0}}
    rows = mer.run_benchmark(dataset, recoverers=["zero"], protocol="literature",
                             missing_rates=[0.3, 0.7], seeds=[1], config=config, out_dir=tmp_path)
    rows = [r for r in rows if not r.get("reference")]
    assert [(r["protocol"], r["condition"], r["literature_label"]) for r in rows] == [
        ("literature", "lit0.3", 0.3), ("literature", "lit0.7", 0.7)]
    assert rows[1]["realised_missing_rate"] == pytest.approx(2 / 3)
    assert "missing_rate" not in rows[1]
    table = (tmp_path / "table.md").read_text(encoding="utf8")
    assert "| lit0.3 |" in table and "| lit0.7 |" in table and "| Average |" in table
    with pytest.raises(ValueError, match="random and fixed conditions only"):
        mer.run_benchmark(dataset, recoverers=["zero"], protocol="literature", seeds=[1],
                          config=config, training="shared")
