"""Loaders: tiny files in exactly the MMSA and GCNet formats, written to tmp_path, round-tripped."""

import pickle

import numpy as np
import pytest

from mer.data import available_datasets, load_dataset, load_gcnet, load_mmsa

L, D_T, D_A, D_V = 50, 768, 5, 20


def _mmsa_split(rng, ids, aligned, text_lengths, audio_lengths=None, vision_lengths=None):
    n = len(ids)
    text = np.zeros((n, L, D_T), dtype=np.float32)
    bert = np.zeros((n, 3, L), dtype=np.float32)
    for i, k in enumerate(text_lengths):
        text[i, :k] = rng.normal(size=(k, D_T))
        bert[i, 0, :k] = rng.integers(100, 2000, size=k)
        bert[i, 1, :k] = 1
    audio = rng.normal(size=(n, L, D_A)).astype(np.float32)
    vision = rng.normal(size=(n, L, D_V)).astype(np.float32)
    valid_a = audio_lengths if audio_lengths is not None else text_lengths
    for i, k in enumerate(valid_a):
        audio[i, k:] = -np.inf if aligned else 0.0  # MMSA pads some audio with -inf
    split = {
        "id": np.array(ids, dtype=object),
        "raw_text": np.array(["words"] * n, dtype=object),
        "text": text,
        "text_bert": bert,
        "audio": audio,
        "vision": vision,
        "regression_labels": rng.uniform(-3, 3, size=n).astype(np.float32),
        "classification_labels": np.zeros(n, dtype=np.float32),
    }
    if not aligned:
        split["audio_lengths"] = list(audio_lengths)
        split["vision_lengths"] = list(vision_lengths)
    return split


def _write(path, data):
    with open(path, "wb") as handle:
        pickle.dump(data, handle, protocol=4)
    return path


@pytest.fixture
def aligned(tmp_path):
    rng = np.random.default_rng(0)
    data = {
        # Clip ids out of order and "10" after "2": the loader must order them numerically.
        "train": _mmsa_split(rng, ["vidA$_$10", "vidA$_$2", "vidB$_$1", "vidA$_$1"], True, [5, 3, 50, 1]),
        "valid": _mmsa_split(rng, ["vidC$_$1"], True, [4]),
        "test": _mmsa_split(rng, ["vidD$_$3", "vidD$_$1"], True, [2, 7]),
    }
    # A -inf inside a valid step counts as 0 in the mean (MMSA replaces -inf by 0).
    data["train"]["audio"][0, 1, 2] = -np.inf
    return _write(tmp_path / "aligned_50.pkl", data), data


def test_mmsa_aligned_pools_by_text_mask_and_groups_by_video(aligned):
    path, data = aligned
    ds = load_mmsa(path)
    assert ds.modalities == ["t", "a", "v"] and ds.feature_dims == {"t": 768, "a": 5, "v": 20}
    assert ds.task == "regression"
    assert [c.conversation_id for c in ds] == ["vidA", "vidB", "vidC", "vidD"]
    assert ds.splits == {"train": [0, 1], "valid": [2], "test": [3]}
    vid_a = ds[0]
    assert vid_a.utterance_ids == ("vidA$_$1", "vidA$_$2", "vidA$_$10")
    tr = data["train"]
    order = [3, 1, 0]  # rows of vidA$_$1, $_$2, $_$10 in the file
    np.testing.assert_allclose(vid_a.labels, tr["regression_labels"][order], rtol=1e-6)
    for row, j in enumerate(order):
        k = int(tr["text_bert"][j, 1].sum())
        np.testing.assert_allclose(vid_a.features["t"][row], tr["text"][j, :k].mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(vid_a.features["v"][row], tr["vision"][j, :k].mean(axis=0), rtol=1e-5, atol=1e-6)
        audio = np.where(np.isneginf(tr["audio"][j, :k]), 0.0, tr["audio"][j, :k])
        np.testing.assert_allclose(vid_a.features["a"][row], audio.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert np.isfinite(vid_a.features["a"]).all()
    assert (vid_a.speakers == 0).all()


def test_mmsa_unaligned_pools_by_lengths(tmp_path):
    rng = np.random.default_rng(1)
    split = lambda ids: _mmsa_split(rng, ids, False, [3] * len(ids), [4, 0][: len(ids)], [6, 2][: len(ids)])
    data = {"train": split(["v1$_$0", "v1$_$1"]), "valid": split(["v2$_$0"]), "test": split(["v3$_$0"])}
    ds = load_mmsa(_write(tmp_path / "unaligned_50.pkl", data), modalities=("a", "v"))
    assert ds.modalities == ["a", "v"]
    tr = data["train"]
    np.testing.assert_allclose(ds[0].features["a"][0], tr["audio"][0, :4].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(ds[0].features["a"][1], 0.0)  # no valid step pools to zeros
    np.testing.assert_allclose(ds[0].features["v"][1], tr["vision"][1, :2].mean(axis=0), rtol=1e-5)


def test_mmsa_with_only_token_ids_asks_for_text_features(tmp_path, aligned):
    _, data = aligned
    for split in data.values():
        del split["text"]
    path = _write(tmp_path / "bert_only.pkl", data)
    with pytest.raises(ValueError, match="text features must be supplied"):
        load_mmsa(path)
    assert load_mmsa(path, modalities=("a", "v")).modalities == ["a", "v"]
    ids = [str(i) for s in data.values() for i in s["id"]]
    ext = {uid: np.full((2, 8), k, dtype=np.float32) for k, uid in enumerate(ids)}
    ds = load_mmsa(path, text_features=ext)
    assert ds.feature_dims["t"] == 8
    assert ds[0].features["t"][0, 0] == ids.index("vidA$_$1")


def test_mmsa_rejects_malformed_ids_and_layout(tmp_path, aligned):
    _, data = aligned
    data["test"]["id"] = np.array(["vidD_3", "vidD_1"], dtype=object)
    with pytest.raises(ValueError, match=r"split 'test': utterance 0 has id 'vidD_3'; expected 'video_id\$_\$clip_id'"):
        load_mmsa(_write(tmp_path / "bad.pkl", data))
    with pytest.raises(ValueError, match="expected an MMSA dict"):
        load_mmsa(_write(tmp_path / "bad2.pkl", {"train": {}}))


def _write_npy_dirs(tmp_path, video_ids, dims, rng, two_d=()):
    dirs, truth = {}, {}
    for m, d in dims.items():
        folder = tmp_path / m
        folder.mkdir()
        dirs[m] = str(folder)
        for uids in video_ids.values():
            for uid in uids:
                if (m, uid) in two_d:
                    arr = rng.normal(size=(4, d)).astype(np.float32)
                    truth[m, uid] = arr.mean(axis=0)
                else:
                    arr = rng.normal(size=(d,)).astype(np.float32)
                    truth[m, uid] = arr
                np.save(folder / f"{uid}.npy", arr)
    return dirs, truth


def test_gcnet_mosi_variant_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    video_ids = {"vb": ["vb_1", "vb_2"], "va": ["va_1", "va_2", "va_3"], "vc": ["vc_1"], "vd": ["vd_1", "vd_2"]}
    labels = {v: list(rng.uniform(-3, 3, size=len(u))) for v, u in video_ids.items()}
    speakers = {v: [0] * len(u) for v, u in video_ids.items()}
    sentences = {v: ["text"] * len(u) for v, u in video_ids.items()}
    content = [video_ids, labels, speakers, sentences, ["vb", "va"], ["vc"], ["vd"]]
    pkl = _write(tmp_path / "mosi_labels.pkl", content)
    dirs, truth = _write_npy_dirs(tmp_path, video_ids, {"t": 6, "a": 3, "v": 4}, rng, two_d={("a", "va_2")})
    ds = load_gcnet(pkl, dirs)
    assert ds.task == "regression"
    assert [c.conversation_id for c in ds] == ["va", "vb", "vc", "vd"]
    assert ds.splits == {"train": [0, 1], "valid": [2], "test": [3]}
    va = ds[0]
    assert va.utterance_ids == ("va_1", "va_2", "va_3")
    np.testing.assert_allclose(va.labels, labels["va"], rtol=1e-6)
    for m in ("t", "a", "v"):
        for row, uid in enumerate(va.utterance_ids):
            np.testing.assert_allclose(va.features[m][row], truth[m, uid], rtol=1e-6)


def test_gcnet_iemocap_variant_speakers_classes_and_carved_valid(tmp_path):
    rng = np.random.default_rng(3)
    video_ids = {f"Ses0{k}": [f"Ses0{k}_{j}" for j in range(k + 1)] for k in range(1, 7)}
    labels = {v: [int(x) for x in rng.integers(0, 6, size=len(u))] for v, u in video_ids.items()}
    labels["Ses01"] = [5, 0]
    speakers = {v: ["M" if j % 2 else "F" for j in range(len(u))] for v, u in video_ids.items()}
    sentences = {v: ["hi"] * len(u) for v, u in video_ids.items()}
    train, test = ["Ses01", "Ses02", "Ses03", "Ses04", "Ses05"], ["Ses06"]
    pkl = _write(tmp_path / "IEMOCAP_features.pkl", [video_ids, labels, speakers, sentences, train, test])
    dirs, _ = _write_npy_dirs(tmp_path, video_ids, {"a": 3, "t": 2}, rng)
    # Faces: a per-utterance directory of frames, averaged (as GCNet reads vision).
    (tmp_path / "v").mkdir()
    frames = {}
    for uids in video_ids.values():
        for uid in uids:
            (tmp_path / "v" / uid).mkdir()
            frames[uid] = rng.normal(size=(3, 5)).astype(np.float32)
            for f, row in enumerate(frames[uid]):
                np.save(tmp_path / "v" / uid / f"face_{f}.npy", row)
    dirs["v"] = str(tmp_path / "v")
    ds = load_gcnet(pkl, dirs, valid_fraction=0.2, seed=0)
    assert ds.modalities == ["a", "t", "v"]
    assert ds.task == "classification" and ds.num_classes == 6
    assert [len(ds.splits[s]) for s in ("train", "valid", "test")] == [4, 1, 1]
    assert ds[ds.splits["test"][0]].conversation_id == "Ses06"
    by_id = {c.conversation_id: c for c in ds}
    assert by_id["Ses03"].speakers.tolist() == [0, 1, 0, 1]  # F -> 0, M -> 1
    assert by_id["Ses03"].labels.dtype == np.int64
    np.testing.assert_allclose(by_id["Ses02"].features["v"][1], frames["Ses02_1"].mean(axis=0), rtol=1e-6)


def test_gcnet_missing_feature_file_names_conversation_modality_and_path(tmp_path):
    rng = np.random.default_rng(4)
    video_ids = {"c1": ["u1", "u2"], "c2": ["u3"]}
    content = [video_ids, {"c1": [0.5, 1.0], "c2": [0.0]}, {"c1": [0, 1], "c2": [0]}, {}, ["c1"], [], ["c2"]]
    pkl = _write(tmp_path / "labels.pkl", content)
    dirs, _ = _write_npy_dirs(tmp_path, video_ids, {"t": 2, "a": 2}, rng)
    (tmp_path / "a" / "u2.npy").unlink()
    with pytest.raises(ValueError, match=r"conversation 0 \('c1'\), modality 'a', utterance 'u2': feature file not found; expected .*u2.npy"):
        load_gcnet(pkl, dirs)
    with pytest.raises(ValueError, match="expected a list"):
        load_gcnet(_write(tmp_path / "bad.pkl", {"a": 1}), dirs)


def test_registry_lists_and_loads_by_name(aligned):
    path, _ = aligned
    assert {"synthetic", "mmsa", "gcnet"} <= set(available_datasets())
    assert len(load_dataset("mmsa", path=path)) == 4
    assert len(load_dataset("synthetic", seed=0, num_conversations=4)) == 4
    with pytest.raises(ValueError, match=r"unknown dataset 'mosi'; registered: \["):
        load_dataset("mosi")


def _gcnet_files(tmp_path, labels):
    rng = np.random.default_rng(5)
    video_ids = {v: [f"{v}_{j}" for j in range(len(y))] for v, y in labels.items()}
    vids = sorted(video_ids)
    speakers = {v: ["M"] * len(u) for v, u in video_ids.items()}
    content = [video_ids, labels, speakers, {}, vids[:-2], [vids[-2]], [vids[-1]]]
    pkl = _write(tmp_path / "labels.pkl", content)
    dirs, _ = _write_npy_dirs(tmp_path, video_ids, {"t": 2, "a": 2}, rng)
    return pkl, dirs


def test_gcnet_infers_classes_only_from_contiguous_labels(tmp_path):
    labels = {"c1": [0, 1, 2], "c2": [9, 1], "c3": [2], "c4": [0]}  # a stray 9 among 0-2
    pkl, dirs = _gcnet_files(tmp_path, labels)
    with pytest.raises(ValueError, match=r"labels.pkl: cannot infer the number of classes: the labels found are "
                                         r"\{0, 1, 2, 9\}.*pass num_classes="):
        load_gcnet(pkl, dirs)
    assert load_gcnet(pkl, dirs, num_classes=10).num_classes == 10


def test_gcnet_contiguous_labels_give_their_count(tmp_path):
    pkl, dirs = _gcnet_files(tmp_path, {"c1": [0, 1, 2], "c2": [3, 1], "c3": [2], "c4": [0]})
    assert load_gcnet(pkl, dirs).num_classes == 4


def test_bool_labels_are_not_regression_scores(tmp_path):
    from mer.data import ConversationDataset

    features = {m: [np.ones((2, 2))] for m in ("t", "a")}
    with pytest.raises(ValueError, match=r"conversation 0 .*labels are booleans \(dtype bool\)"):
        ConversationDataset.from_arrays(features, [np.array([True, False])], task="regression")
    pkl, dirs = _gcnet_files(tmp_path, {v: np.array([True, False]) for v in ("c1", "c2", "c3")})
    with pytest.raises(ValueError, match="labels are booleans"):
        load_gcnet(pkl, dirs)


def test_gcnet_feature_dirs_given_as_one_path_are_refused_with_the_expected_form(tmp_path):
    with pytest.raises(ValueError, match=r"feature_dirs must map each modality to its folder of \.npy files"):
        load_gcnet(tmp_path / "labels.pkl", str(tmp_path))
