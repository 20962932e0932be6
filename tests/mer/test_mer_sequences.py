"""Sequence data (issue #15, part 1): MMSA sequences and lengths survive loading, per-clip samples
carry no cross-clip context, the common time axis, and the MulT-style model on them."""

import numpy as np
import pytest
import torch

import mer
from mer.data import load_mmsa
from mer.data.collate import collate_conversations
from mer.data.conversation import Conversation, ConversationDataset
from mer.data.sequences import common_steps, resampling_weights
from mer.data.step_batch import utterance_steps
from mer.graph import batch_graph
from mer.training.checkpoint import dataset_fingerprint

from tests.mer.fast_settings import FAST
from tests.mer.test_mer_loaders import _mmsa_split, _write
from tests.mer.test_mer_loaders import aligned as aligned_file  # noqa: F401 (a fixture)

T_A, T_V = 40, 60  # unaligned frame counts (real files: audio ~375, vision ~500)


def _unaligned_split(rng, ids, text_lengths, audio_lengths, vision_lengths):
    """An ``unaligned_50.pkl`` split: text on 50 BERT steps, audio and vision at their own lengths."""
    split = _mmsa_split(rng, ids, True, text_lengths)
    n = len(ids)
    split["audio"] = np.zeros((n, T_A, 5), dtype=np.float32)
    split["vision"] = np.zeros((n, T_V, 20), dtype=np.float32)
    for i, (ka, kv) in enumerate(zip(audio_lengths, vision_lengths)):
        split["audio"][i, :ka] = rng.normal(size=(ka, 5))
        split["vision"][i, :kv] = rng.normal(size=(kv, 20))
    split["audio_lengths"] = np.array(audio_lengths)
    split["vision_lengths"] = np.array(vision_lengths)
    return split


def test_aligned_sequences_keep_every_valid_step_and_its_length(aligned_file):
    path, data = aligned_file
    ds = load_mmsa(path, sequences=True)
    assert ds.has_sequences
    vid_a, tr = ds[0], data["train"]
    order = [3, 1, 0]  # rows of vidA$_$1, $_$2, $_$10
    for row, j in enumerate(order):
        k = int(tr["text_bert"][j, 1].sum())
        for m, key in (("t", "text"), ("a", "audio"), ("v", "vision")):
            seq, n = vid_a.sequences[m][row], vid_a.sequence_lengths[m][row]
            assert seq.shape == (50, {"t": 768, "a": 5, "v": 20}[m]) and n == k
            raw = np.where(np.isneginf(tr[key][j, :k]), 0.0, tr[key][j, :k])
            np.testing.assert_allclose(seq[:k], raw, rtol=1e-6)
            assert not seq[k:].any()
            # The pooled vector is the mean of the kept steps.
            np.testing.assert_allclose(vid_a.features[m][row], seq[:k].mean(axis=0), rtol=1e-5, atol=1e-6)


def test_unaligned_sequences_keep_their_own_lengths(tmp_path):
    rng = np.random.default_rng(1)
    data = {"train": _unaligned_split(rng, ["v1$_$0", "v1$_$1"], [3, 9], [40, 7], [60, 0]),
            "valid": _unaligned_split(rng, ["v2$_$0"], [5], [12], [30]),
            "test": _unaligned_split(rng, ["v3$_$0"], [2], [3], [4])}
    ds = load_mmsa(_write(tmp_path / "unaligned_50.pkl", data), sequences=True, per_clip=True)
    first = ds[0]
    assert first.sequences["a"].shape == (1, T_A, 5) and first.sequences["v"].shape == (1, T_V, 20)
    lengths = {m: [int(c.sequence_lengths[m][0]) for c in ds] for m in "tav"}
    assert lengths == {"t": [3, 9, 5, 2], "a": [40, 7, 12, 3], "v": [60, 0, 30, 4]}
    np.testing.assert_array_equal(ds[1].sequences["a"][0, :7], data["train"]["audio"][1, :7])
    assert not ds[1].sequences["v"].any()  # no valid step: all zeros, length 0


def test_per_clip_samples_are_one_utterance_each_with_no_cross_clip_edges(aligned_file):
    path, _ = aligned_file
    grouped, clips = load_mmsa(path), load_mmsa(path, per_clip=True)
    assert len(grouped) == 4 and len(clips) == 7
    assert all(c.num_utterances == 1 for c in clips)
    # One sample per clip, in the file's order, named by the MMSA id.
    assert [c.conversation_id for c in clips.split("train")] == ["vidA$_$10", "vidA$_$2", "vidB$_$1", "vidA$_$1"]
    assert {len(v) for v in clips.splits.values()} == {4, 1, 2}
    g = batch_graph(collate_conversations(list(clips)))
    src, dst = g.edges()
    conv = g.ndata["conversation"]
    assert bool((conv[src] == conv[dst]).all())  # every edge stays inside one clip
    g_grouped = batch_graph(collate_conversations(list(grouped)))
    u = g_grouped.ndata["utterance"]
    s, d = g_grouped.edges()
    assert bool((u[s] != u[d]).any())  # the grouped view does link sibling clips (the control)


def test_resampling_averages_longer_and_repeats_shorter_sequences():
    w = resampling_weights(torch.tensor([6, 2, 3, 0]), 6, torch.tensor([3, 3, 3, 3]), 3)
    np.testing.assert_allclose(w[0], [[.5, .5, 0, 0, 0, 0], [0, 0, .5, .5, 0, 0], [0, 0, 0, 0, .5, .5]])
    np.testing.assert_allclose(w[1], [[1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]])
    np.testing.assert_allclose(w[2], np.eye(3, 6))  # equal lengths: unchanged
    assert not w[3].any()  # nothing real: nothing


def test_common_steps_keep_aligned_rows_and_bring_unaligned_ones_to_one_axis():
    rng = torch.Generator().manual_seed(0)
    x = {"t": torch.randn(2, 5, 3, generator=rng), "a": torch.randn(2, 9, 2, generator=rng)}
    n = {"t": torch.tensor([4, 5]), "a": torch.tensor([4, 9])}
    for m in x:
        x[m][0, 4:] = 0
    out, length = common_steps(x, n, steps=6)
    assert length.tolist() == [4, 6]
    torch.testing.assert_close(out["t"][0, :4], x["t"][0, :4])  # aligned row unchanged
    torch.testing.assert_close(out["a"][0, :4], x["a"][0, :4])
    # Row 1: audio's 9 steps average onto 6 (segments of 2 or 1), text's 5 stretch to 6.
    torch.testing.assert_close(out["a"][1, 0], x["a"][1, :2].mean(0))
    torch.testing.assert_close(out["t"][1, 1], x["t"][1, 0])


def _sequence_dataset(n_clips=48, seed=0, classification=False):
    rng = np.random.default_rng(seed)
    convs = []
    for i in range(n_clips):
        L = int(rng.integers(3, 8))
        z = rng.normal(size=(L, 2))
        seq, lengths = {}, {}
        for m, d in (("t", 6), ("a", 3), ("v", 4)):
            seq[m] = np.zeros((1, 8, d), np.float32)
            seq[m][0, :L] = z @ rng.normal(size=(2, d)) + 0.1 * rng.normal(size=(L, d))
            lengths[m] = np.array([L])
        feats = {m: s[:, :L].mean(1) for m, s in seq.items()}
        y = np.array([np.clip(z.mean(), -3, 3)], np.float32)
        if classification:
            y = np.array([int(z.mean() > 0)])
        convs.append(Conversation(f"c{i}", feats, y, np.zeros(1, np.int64), (f"c{i}",), seq, lengths))
    k = n_clips // 6
    return ConversationDataset(convs, ["t", "a", "v"], "classification" if classification else "regression",
                               splits={"train": list(range(4 * k)), "valid": list(range(4 * k, 5 * k)),
                                       "test": list(range(5 * k, n_clips))})


def test_dataset_checks_sequences_all_or_none_and_their_lengths():
    ds = _sequence_dataset(6)
    plain = Conversation("p", ds[0].features, ds[0].labels, ds[0].speakers, ("p",))
    with pytest.raises(ValueError, match="every conversation must have them or none"):
        ConversationDataset([ds[0], plain], ds.modalities)
    bad = Conversation("b", ds[0].features, ds[0].labels, ds[0].speakers, ("b",), ds[0].sequences,
                       {**ds[0].sequence_lengths, "a": np.array([9])})
    with pytest.raises(ValueError, match=r"modality 'a': sequence_lengths must lie in \[0, 8\]"):
        ConversationDataset([bad], ds.modalities)


def test_standardized_sequences_have_unit_statistics_on_real_train_steps():
    ds = _sequence_dataset().standardized()
    steps = np.concatenate([c.sequences["t"][0, : c.sequence_lengths["t"][0]] for c in ds.split("train")])
    np.testing.assert_allclose(steps.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(steps.std(0), 1.0, atol=1e-4)
    assert not any(c.sequences["t"][0, c.sequence_lengths["t"][0]:].any() for c in ds)


def test_fingerprint_sees_the_sequences():
    ds = _sequence_dataset(6)
    changed = [Conversation(c.conversation_id, c.features, c.labels, c.speakers, c.utterance_ids,
                            {**c.sequences, "a": c.sequences["a"] * 2}, c.sequence_lengths) for c in ds]
    other = ConversationDataset(changed, ds.modalities, splits=ds.splits)
    assert dataset_fingerprint(ds) != dataset_fingerprint(other)


def test_step_rows_hold_each_utterance_with_its_observation_on_every_step():
    ds = _sequence_dataset(4)
    masks = [np.array([[True, False, True]]), np.array([[True, True, True]]),
             np.array([[False, True, False]]), np.array([[True, True, False]])]
    batch = collate_conversations(list(ds), masks)
    rows = utterance_steps(batch, batch.availability, steps=50)
    lengths = [int(c.sequence_lengths["t"][0]) for c in ds]
    assert rows.batch.lengths.tolist() == lengths
    for r, (mask, L) in enumerate(zip(masks, lengths)):
        assert rows.observed[r, :L].tolist() == [mask[0].tolist()] * L
        assert not rows.observed[r, L:].any()
        torch.testing.assert_close(rows.batch.features["a"][r, :L], torch.from_numpy(ds[r].sequences["a"][0, :L]))
    assert rows.scatter(torch.arange(4.0), 4, 1)[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


MULT = {"model": {"fusion": "mult", "dim": 8, "mult": {"heads": 2, "layers": 1, "self_layers": 1},
                   "recovery_space": "features"},
        "train": {"epochs": 2, "batch_size": 8}}


def test_mult_mean_fill_recovers_every_missing_step_with_the_step_mean():
    ds = _sequence_dataset()
    run = mer.train(ds, recoverer="mean", masks=("t",), config=MULT, seed=0)
    model = run.model.eval()
    test = ds.split("test")
    batch = collate_conversations(list(test), [np.array([[True, False, False]])] * len(test))
    out = model(batch)
    real = out.batch.utterance_mask
    for m in ("a", "v"):
        # The scaler is fitted on real training steps, so the step mean is the standardised zero.
        torch.testing.assert_close(out.recovery.features[m][real], torch.zeros_like(out.recovery.features[m][real]),
                                   atol=1e-5, rtol=0)
    torch.testing.assert_close(out.recovery.features["t"], out.batch.features["t"])
    metrics = run.evaluate(ds)
    # Mean fill's recovery error: the mean square of the test clips' standardised a and v steps.
    sse = count = 0.0
    for m in ("a", "v"):
        steps = np.concatenate([c.sequences[m][0, : c.sequence_lengths[m][0]] for c in test])
        z = (steps - model.scaler.mean(m).numpy()) / model.scaler.std(m).numpy()
        sse, count = sse + (z ** 2).sum(), count + z.size
    assert metrics["recovery_mse"] == pytest.approx(sse / count, rel=1e-5)


def test_mult_predicts_each_utterance_without_context_from_its_neighbours():
    ds = _sequence_dataset()
    run = mer.train(ds, recoverer="mean", masks=0.0, config=MULT, seed=0)
    model = run.model.eval()
    # Two clips as one two-utterance conversation: changing the second leaves the first's prediction.
    a, b = ds[0], ds[1]

    def pair(second_scale):
        seq = {m: np.concatenate([a.sequences[m], b.sequences[m] * second_scale]) for m in ds.modalities}
        lengths = {m: np.concatenate([a.sequence_lengths[m], b.sequence_lengths[m]]) for m in ds.modalities}
        feats = {m: np.concatenate([a.features[m], b.features[m] * second_scale]) for m in ds.modalities}
        conv = Conversation("ab", feats, np.concatenate([a.labels, b.labels]), np.zeros(2, np.int64),
                            ("a", "b"), seq, lengths)
        with torch.no_grad():
            return model(collate_conversations([conv])).prediction[0]

    p1, p2 = pair(1.0), pair(3.0)
    assert abs(float(p1[0] - p2[0])) < 1e-5 and abs(float(p1[1] - p2[1])) > 1e-4


@pytest.mark.parametrize("recoverer", ["autoencoder", "imder", "gsdnet", "md2n", "rohydr"])
def test_every_recoverer_fills_whole_sequences_under_mult(recoverer):
    ds = _sequence_dataset(24)
    run = mer.train(ds, recoverer=recoverer, masks=0.5, config=MULT, seed=0,
                    recoverer_kwargs=FAST.get(recoverer, {}))
    metrics = run.evaluate(ds)
    assert np.isfinite(metrics["mae"]) and np.isfinite(metrics["recovery_mse"])
    model = run.model.eval()
    batch = collate_conversations(list(ds.split("test")), [np.array([[True, False, True]])] * 4)
    with torch.no_grad():
        out = model(batch)
    real = out.batch.utterance_mask
    filled = out.recovery.features["a"][real]
    assert filled.abs().sum() > 0  # the missing audio got a sequence, not padding
    torch.testing.assert_close(out.recovery.features["t"][real], out.batch.features["t"][real])


def test_mult_on_classification_sequences_and_on_vector_data():
    cls = _sequence_dataset(classification=True)
    metrics = mer.train(cls, recoverer="mean", masks=0.3, config=MULT, seed=0).evaluate(cls)
    assert 0.0 <= metrics["acc"] <= 100.0 and np.isfinite(metrics["recovery_mse"])
    # A dataset without sequences: every utterance is one step of its vector.
    vec = mer.data.synthetic_conversations(seed=0, num_conversations=12)
    assert not vec.has_sequences
    metrics = mer.train(vec, recoverer="mean", masks=0.3, config=MULT, seed=0).evaluate(vec)
    assert np.isfinite(metrics["mae"]) and np.isfinite(metrics["recovery_mse"])


def test_cli_keeps_mmsa_options_and_warns_when_mult_has_no_sequences(aligned_file, tmp_path, caplog):
    import json
    import logging

    from mer.cli import main

    path, _ = aligned_file
    out = tmp_path / "run"
    args = ["train", "--data", str(path), "--recoverer", "mean", "--epochs", "1", "--per-clip", "--set",
            "data.source=mmsa", "data.options.sequences=true", "model.fusion=mult", "model.dim=8",
            "model.mult.heads=2", "model.mult.layers=1", "--out", str(out)]
    assert main(args) == 0
    data = json.loads((out / "config.json").read_text())["data"]
    assert data["options"] == {"sequences": True, "per_clip": True, "path": str(path)}
    with caplog.at_level(logging.WARNING, logger="mer.training"):
        assert main(["train", "--data", str(path), "--recoverer", "mean", "--epochs", "1", "--set",
                     "model.fusion=mult", "model.dim=8", "model.mult.heads=2", "model.mult.layers=1",
                     "--out", str(tmp_path / "plain")]) == 0
    assert "has no sequences" in caplog.text


def test_cli_data_options_given_with_a_data_file_reach_its_loader(aligned_file, tmp_path, capsys):
    import json

    from mer.cli import main

    path, _ = aligned_file
    common = ["train", "--data", str(path), "--recoverer", "zero", "--epochs", "1", "--set", "model.dim=8"]
    # Without data.source=mmsa the option once went nowhere: the run trained on all three modalities.
    assert main([*common, "data.options.modalities=[a,v]", "--out", str(tmp_path / "av")]) == 0
    saved = json.loads((tmp_path / "av" / "config.json").read_text())["data"]
    assert saved["source"] == "mmsa" and saved["options"]["modalities"] == ["a", "v"]
    from mer.training import load_checkpoint

    assert load_checkpoint(tmp_path / "av" / "best.pt")["dataset_info"]["modalities"] == ["a", "v"]
    capsys.readouterr()
    assert main([*common, "data.options.bogus=1", "--out", str(tmp_path / "bad")]) == 2
    assert "bogus" in capsys.readouterr().err


def test_cli_evaluate_warns_when_the_runs_data_file_has_changed_since_training(aligned_file, tmp_path, capsys):
    import pickle

    from mer.cli import main

    path, _ = aligned_file
    run = tmp_path / "run"
    assert main(["train", "--data", str(path), "--recoverer", "zero", "--epochs", "1", "--set", "model.dim=8",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    assert "warning" not in capsys.readouterr().err
    data = pickle.loads(path.read_bytes())
    data["test"]["audio"] = data["test"]["audio"] + 1.0  # someone re-extracted the features
    path.write_bytes(pickle.dumps(data))
    assert main(["evaluate", str(run)]) == 0
    err = capsys.readouterr().err
    assert f"mer: warning: the data of {run}'s config" in err and "are not those it was trained on" in err


def test_cli_evaluate_says_where_the_runs_data_file_was_expected(aligned_file, tmp_path, capsys, monkeypatch):
    from mer.cli import main

    path, _ = aligned_file
    monkeypatch.chdir(path.parent)
    run = tmp_path / "run"
    assert main(["train", "--data", path.name, "--recoverer", "zero", "--epochs", "1", "--set", "model.dim=8",
                 "--out", str(run)]) == 0  # the config records the relative path, as given
    monkeypatch.chdir(tmp_path / "run")
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    assert (f"{path.name}, the data file in {run}'s config, is not found from {run}: run from the folder the run "
            "was trained in, or give --data PATH") in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data", str(path)]) == 0


def test_mult_trains_on_unaligned_clips_on_one_common_axis(tmp_path):
    rng = np.random.default_rng(2)
    split = lambda p, n: _unaligned_split(rng, [f"{p}{i}$_$0" for i in range(n)], list(rng.integers(3, 20, n)),
                                          list(rng.integers(20, T_A + 1, n)), list(rng.integers(1, T_V + 1, n)))
    data = {"train": split("a", 10), "valid": split("b", 3), "test": split("c", 4)}
    ds = load_mmsa(_write(tmp_path / "unaligned_50.pkl", data), sequences=True, per_clip=True)
    config = {**MULT, "model": {**MULT["model"], "sequence_steps": 16}}
    run = mer.train(ds, recoverer="autoencoder", masks=0.3, config=config, seed=0,
                    recoverer_kwargs=FAST["autoencoder"])
    assert np.isfinite(run.evaluate(ds)["recovery_mse"])
    batch = collate_conversations(list(ds.split("test")))
    rows = utterance_steps(batch, batch.availability, steps=16)
    longest = [max(int(c.sequence_lengths[m][0]) for m in "tav") for c in ds.split("test")]
    assert rows.batch.lengths.tolist() == [min(16, n) for n in longest]
