"""Missing-modality protocols: fixed patterns, exact-rate random masks, the evaluation-mask cache."""

import numpy as np
import pytest

from mer.data import (
    ConversationDataset,
    MaskCache,
    check_masks,
    fixed_patterns,
    missing_rate,
    pattern_masks,
    random_missing,
    split_masks,
    synthetic_conversations,
)


@pytest.fixture(scope="module")
def dataset():
    return synthetic_conversations(seed=0, num_conversations=120)


def _tiny(M=3, sizes=(1, 2, 5)):
    names = ["t", "a", "v", "x", "y"][:M]
    features = {m: [np.ones((n, 2)) for n in sizes] for m in names}
    return ConversationDataset.from_arrays(features, [np.zeros(n) for n in sizes], splits={"test": [0, 1, 2]})


def test_fixed_patterns_lists_all_nonempty_sets_in_stable_order():
    assert fixed_patterns(["t", "a", "v"]) == [
        ("t",), ("a",), ("v",), ("t", "a"), ("t", "v"), ("a", "v"), ("t", "a", "v"),
    ]
    for M in (2, 3, 4, 5):
        pats = fixed_patterns([f"m{k}" for k in range(M)])
        assert len(pats) == 2**M - 1 == len(set(pats))
        assert [len(p) for p in pats] == sorted(len(p) for p in pats)


def test_pattern_masks_make_exactly_the_pattern_available(dataset):
    masks = pattern_masks(dataset, ("t", "v"))
    assert len(masks) == len(dataset)
    for conv, mask in zip(dataset, masks):
        assert mask.shape == (len(conv), 3) and mask.dtype == bool
        assert mask[:, 0].all() and not mask[:, 1].any() and mask[:, 2].all()
    with pytest.raises(ValueError, match=r"unknown modalities \['x'\]"):
        pattern_masks(dataset, ("t", "x"))
    with pytest.raises(ValueError, match="empty"):
        pattern_masks(dataset, ())


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 2 / 3])
def test_random_missing_hits_the_rate_in_every_split_and_keeps_a_modality(dataset, rate):
    masks = random_missing(dataset, rate, seed=0)
    assert len(masks) == len(dataset)
    for split, idx in dataset.splits.items():
        split_masks_ = [masks[i] for i in idx]
        entries = sum(m.size for m in split_masks_)
        assert abs(missing_rate(split_masks_) - rate) <= 0.5 / entries + 1e-12
        assert abs(missing_rate(split_masks_) - rate) <= 0.01
    for conv, mask in zip(dataset, masks):
        assert mask.shape == (len(conv), 3) and mask.dtype == bool
        assert mask.any(axis=1).all()


def test_zero_rate_gives_all_ones(dataset):
    assert all(m.all() for m in random_missing(dataset, 0.0, seed=3))


def test_random_missing_drops_every_modality_about_equally(dataset):
    masks = np.concatenate(random_missing(dataset, 0.4, seed=1))
    per_modality = 1.0 - masks.mean(axis=0)
    np.testing.assert_allclose(per_modality, 0.4, atol=0.03)


def test_rates_above_the_ceiling_are_rejected():
    ds = _tiny(M=3)
    with pytest.raises(ValueError, match=r"missing_rate 0.7 is outside \[0, \(M-1\)/M = 0.6667\] for M = 3"):
        random_missing(ds, 0.7, seed=0)
    with pytest.raises(ValueError, match="outside"):
        random_missing(ds, -0.1, seed=0)
    with pytest.raises(ValueError, match=r"\(M-1\)/M = 0.5\] for M = 2"):
        random_missing(_tiny(M=2), 0.6, seed=0)
    # With four modalities 0.7 is feasible.
    masks = random_missing(_tiny(M=4, sizes=(10, 10, 10)), 0.7, seed=0)
    assert abs(missing_rate(masks) - 0.7) < 0.01 and all(m.any(axis=1).all() for m in masks)


def test_the_printed_label_of_the_ceiling_selects_the_ceiling():
    from mer.data.missing import check_missing_rate
    from mer.data.protocol import MissingProtocol, benchmark_conditions

    assert check_missing_rate(0.667, 3) == check_missing_rate(0.6665, 3) == 2 / 3
    assert check_missing_rate(0.5, 2) == 0.5 and check_missing_rate(0.6, 3) == 0.6
    for bad in (0.668, True, "0.3", float("nan")):
        with pytest.raises(ValueError, match="missing_rate"):
            check_missing_rate(bad, 3)
    ds = _tiny(M=3, sizes=(10, 10, 10))
    assert [m.tolist() for m in random_missing(ds, 0.667, seed=1)] == [
        m.tolist() for m in random_missing(ds, 2 / 3, seed=1)]
    protocol = MissingProtocol.parse(0.667, ["t", "a", "v"])
    assert protocol.missing_rate == 2 / 3 and protocol.condition == "0.667"
    mixed = MissingProtocol.parse({"kind": "mixed", "mixture": [0.1, 0.667]}, ["t", "a", "v"])
    assert mixed.mixture == (0.1, 2 / 3)
    with pytest.raises(ValueError, match=r"mixture\[1\] = .* repeats mixture\[0\]"):
        MissingProtocol.parse({"kind": "mixed", "mixture": [0.6667, 0.667]}, ["t", "a", "v"])
    assert [c.missing_rate for c in benchmark_conditions(["t", "a", "v"], "random", [0.1, 0.667])] == [0.1, 2 / 3]
    # Every rate is checked when the conditions are listed, before anything runs.
    with pytest.raises(ValueError, match="missing_rate 2 is outside"):
        benchmark_conditions(["t", "a", "v"], "random", [0.1, 2])


def test_parse_mixture_refuses_empty_items():
    from mer.data.protocol import parse_mixture

    assert parse_mixture("0.0; 0.3 ;t, a") == [0.0, 0.3, ("t", "a")]
    for text, where in [("0.1;;0.2", "item 1 is empty"), ("0.1;", "item 1 is empty"),
                        ("t,,a", "item 0 .* empty modality name")]:
        with pytest.raises(ValueError, match=where):
            parse_mixture(text)


def test_masks_are_deterministic_per_seed_and_differ_across_seeds(dataset):
    a = random_missing(dataset, 0.3, seed=7)
    b = random_missing(dataset, 0.3, seed=7)
    c = random_missing(dataset, 0.3, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_split_subset_gets_the_same_masks_as_the_full_dataset(dataset):
    full = random_missing(dataset, 0.5, seed=2)
    for split in ("train", "valid", "test"):
        part = random_missing(dataset.split(split), 0.5, seed=2)
        expected = [full[i] for i in dataset.splits[split]]
        assert all(np.array_equal(x, y) for x, y in zip(part, expected))


def test_cache_returns_the_same_read_only_masks_once_per_key(dataset):
    cache = MaskCache()
    a = cache.get(dataset, "test", 0.3, seed=0)
    assert a is cache.get(dataset, "test", 0.3, seed=0)
    assert len(cache) == 1
    b = cache.get(dataset, "test", 0.3, seed=1)
    assert len(cache) == 2 and not all(np.array_equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError):
        a[0][0, 0] = not a[0][0, 0]
    expected = random_missing(dataset.split("test"), 0.3, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(a, expected))
    assert split_masks(dataset, "valid", 0.2, 0) is split_masks(dataset, "valid", 0.2, 0)


def test_one_utterance_conversations_get_valid_masks():
    ds = _tiny(M=3, sizes=(1, 1, 1))
    for rate in (0.0, 1 / 3, 2 / 3):
        masks = random_missing(ds, rate, seed=0)
        assert all(m.shape == (1, 3) and m.any() for m in masks)
        assert abs(missing_rate(masks) - rate) < 1e-9


def test_check_masks_rejects_utterance_without_modality_and_bad_shapes():
    ds = _tiny(M=3)
    masks = [np.ones((1, 3)), np.ones((2, 3), dtype=np.uint8), np.ones((5, 3), dtype=bool)]
    checked = check_masks(ds, masks)
    assert all(m.dtype == bool for m in checked)
    masks[2] = np.ones((5, 3), dtype=bool)
    masks[2][4] = False
    with pytest.raises(ValueError, match=r"conversation 2 \('conv2'\): utterance 4 has no available modality"):
        check_masks(ds, masks)
    masks[2] = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"conversation 2 .*shape \(4, 3\), expected \(5, 3\)"):
        check_masks(ds, masks)
    masks[2] = np.full((5, 3), 2)
    with pytest.raises(ValueError, match="0/1"):
        check_masks(ds, masks)
