"""Collation into padded batches: shapes, padding, ground truth vs observed, DataLoader use."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mer.data import (
    CLASSIFICATION_PAD_LABEL,
    ConversationDataset,
    MaskedConversations,
    collate_conversations,
    random_missing,
    synthetic_conversations,
)


@pytest.fixture(scope="module")
def dataset():
    return synthetic_conversations(seed=0, num_conversations=20)


def test_shapes_padding_and_values(dataset):
    convs = [dataset[i] for i in range(5)]
    batch = collate_conversations(convs)
    n = [len(c) for c in convs]
    B, N = 5, max(n)
    assert batch.batch_size == B and batch.max_utterances == N
    assert batch.lengths.tolist() == n and batch.lengths.dtype == torch.long
    assert batch.modalities == ("t", "a", "v") and batch.task == "regression"
    for m, d in dataset.feature_dims.items():
        x = batch.features[m]
        assert x.shape == (B, N, d) and x.dtype == torch.float32
        for b, c in enumerate(convs):
            np.testing.assert_array_equal(x[b, : n[b]].numpy(), c.features[m])
            assert not x[b, n[b]:].any()
    assert batch.utterance_mask.dtype == torch.bool
    assert batch.utterance_mask.sum(1).tolist() == n
    assert torch.equal(batch.availability, batch.utterance_mask[:, :, None].expand(B, N, 3))
    assert batch.labels.dtype == torch.float32 and batch.speakers.dtype == torch.long
    for b, c in enumerate(convs):
        np.testing.assert_array_equal(batch.labels[b, : n[b]].numpy(), c.labels)
        np.testing.assert_array_equal(batch.speakers[b, : n[b]].numpy(), c.speakers)
    assert batch.conversation_ids == [c.conversation_id for c in convs]


def test_observed_features_zero_missing_entries_but_ground_truth_is_kept(dataset):
    masks = random_missing(dataset, 0.5, seed=0)
    batch = collate_conversations([dataset[i] for i in range(6)], masks=masks[:6])
    observed = batch.observed_features()
    for k, m in enumerate(batch.modalities):
        avail = batch.availability[:, :, k]
        assert not observed[m][~avail].any()
        assert torch.equal(observed[m][avail], batch.features[m][avail])
        real_missing = batch.missing()[:, :, k]
        assert real_missing.any()
        # The ground truth of a dropped entry is still in `features` (for training recoverers).
        assert batch.features[m][real_missing].abs().sum() > 0
    for b in range(6):
        n = int(batch.lengths[b])
        np.testing.assert_array_equal(batch.availability[b, :n].numpy(), masks[b])
        assert not batch.availability[b, n:].any()


def test_classification_labels_are_long_with_ignore_index_padding():
    ds = synthetic_conversations(seed=0, num_conversations=6, task="classification")
    batch = collate_conversations(list(ds))
    assert batch.labels.dtype == torch.long and batch.task == "classification"
    assert (batch.labels[~batch.utterance_mask] == CLASSIFICATION_PAD_LABEL).all()
    assert ((batch.labels[batch.utterance_mask] >= 0) & (batch.labels[batch.utterance_mask] < 7)).all()


def test_dataloader_with_masked_conversations_and_to_device(dataset):
    masks = random_missing(dataset, 0.3, seed=1)
    loader = DataLoader(MaskedConversations(dataset, masks), batch_size=8, collate_fn=collate_conversations)
    batches = list(loader)
    assert [b.batch_size for b in batches] == [8, 8, 4]
    seen = 0
    for batch in batches:
        moved = batch.to("cpu")
        assert moved.features["t"].device.type == "cpu" and moved.lengths.device.type == "cpu"
        for b in range(batch.batch_size):
            n = int(batch.lengths[b])
            np.testing.assert_array_equal(batch.availability[b, :n].numpy(), masks[seen])
            seen += 1
    plain = next(iter(DataLoader(dataset, batch_size=4, collate_fn=collate_conversations)))
    assert plain.availability[plain.utterance_mask].all()


def test_one_utterance_conversation_batches():
    ds = ConversationDataset.from_arrays(
        {"t": [np.ones((1, 2))], "a": [np.full((1, 3), 2.0)]}, [np.array([1.0])], splits={"test": [0]}
    )
    batch = collate_conversations([ds[0]], masks=[np.array([[0, 1]])])
    assert batch.features["a"].shape == (1, 1, 3) and batch.lengths.tolist() == [1]
    assert batch.observed_features()["t"].abs().sum() == 0
    assert batch.observed_features()["a"].sum() == 6.0


def test_bad_batches_are_rejected(dataset):
    with pytest.raises(ValueError, match="empty"):
        collate_conversations([])
    conv = dataset[0]
    bad = np.ones((len(conv), 3), dtype=bool)
    bad[2] = False
    with pytest.raises(ValueError, match=r"conversation 0 \('syn0_0000'\): utterance 2 has no available modality"):
        collate_conversations([conv], masks=[bad])
    other = synthetic_conversations(seed=0, num_conversations=2, task="classification")[0]
    with pytest.raises(ValueError, match="label type"):
        collate_conversations([conv, other])


def test_observed_entries_read_the_given_mask_and_never_count_padding(dataset):
    convs = [dataset[i] for i in range(4)]
    batch = collate_conversations(convs, random_missing(dataset, 0.4, seed=3)[:4])
    real = batch.utterance_mask[:, :, None]
    # Default: the collated availability, which is False on padding.
    assert torch.equal(batch.observed_entries(), batch.availability)
    assert torch.equal(batch.missing_entries(), real & ~batch.availability)
    assert torch.equal(batch.missing(), batch.missing_entries())
    # Another observation mask, True everywhere (padding included): padding still is neither.
    everything = torch.ones_like(batch.availability)
    assert torch.equal(batch.observed_entries(everything), real.expand_as(everything))
    assert not batch.missing_entries(everything).any()
    seen = batch.observed_features(everything)
    for k, m in enumerate(batch.modalities):
        assert torch.equal(seen[m], batch.features[m])
        hidden = batch.observed_features()[m]
        assert not hidden[~batch.availability[:, :, k]].any()
