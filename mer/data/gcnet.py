"""Loader for the conversation format of graph-completion work (GCNet): IEMOCAP, CMU-MOSI, CMU-MOSEI.

File format:

* a label pickle (Python 2 pickles load with ``encoding="latin1"``) holding the list
  ``[videoIDs, videoLabels, videoSpeakers, videoSentences, trainVids, valVids, testVids]``, or, for the
  IEMOCAP variant, ``[videoIDs, videoLabels, videoSpeakers, videoSentences, trainVid, testVid]``, where
  ``videoIDs[vid]`` lists the utterance ids of conversation ``vid`` in order, ``videoLabels[vid]`` and
  ``videoSpeakers[vid]`` hold one label / speaker per utterance (IEMOCAP: speakers ``'M'``/``'F'``, int
  labels; MOSI/MOSEI: float labels in [-3, 3]) and the split entries are collections of ``vid``;
* per modality, a directory with one ``<utterance id>.npy`` per utterance: a vector ``(d,)``, or a 2-D
  array ``(T, d)`` averaged over its first axis. As in GCNet, ``<utterance id>/`` may instead be a
  directory of per-frame ``.npy`` files (e.g. faces), averaged together; an empty one gives zeros.

Speakers are numbered over the whole dataset (names sorted: ``'F' → 0``, ``'M' → 1``).
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from spectraldiff.safe_pickle import load_pickle

from mer.data.conversation import Conversation, ConversationDataset, REGRESSION_RANGE, encode_speakers

__all__ = ["load_gcnet"]


def load_gcnet(
    label_pickle: str | os.PathLike,
    feature_dirs: Mapping[str, str | os.PathLike],
    *,
    task: str | None = None,
    num_classes: int | None = None,
    label_range: tuple[float, float] = REGRESSION_RANGE,
    valid_fraction: float = 0.1,
    seed: int = 0,
    name: str | None = None,
    trust_pickle: bool = False,
) -> ConversationDataset:
    """Load a GCNet-style label pickle and per-modality ``.npy`` directories.

    Parameters
    ----------
    label_pickle : path
    feature_dirs : dict[str, path]
        Modality name → directory (at least two); the dict order is the modality order.
    task : {"regression", "classification"}, optional
        Default: classification if every label is an integer (IEMOCAP), else regression.
    num_classes : int, optional
        Classification only. Default: ``C`` when the labels found are exactly ``0 … C − 1``; otherwise
        (a class absent from the file, or a stray label such as a 9 among 0–5) a ``ValueError`` lists
        the labels found and asks for ``num_classes``, rather than guessing ``max(label) + 1``.
    valid_fraction : float
        For the 6-entry (IEMOCAP) variant, which has no validation list: this fraction of the training
        conversations (``round``, seeded by ``seed``) becomes the valid split.
    trust_pickle : bool
        The label pickle is read with :func:`spectraldiff.safe_pickle.load_pickle`, which rebuilds only
        plain containers, numbers, strings and NumPy arrays and refuses anything else. ``True`` loads it
        with plain ``pickle`` instead, which lets the file run any code: only for files you trust. The
        ``.npy`` files are always read without pickle.

    Returns
    -------
    ConversationDataset
        Conversations ordered train, valid, test (each sorted by id); splits as in the file.

    Raises
    ------
    FileNotFoundError
        If ``label_pickle`` does not exist.
    ValueError
        For a corrupt label pickle or one holding objects other than plain data
        (:class:`~spectraldiff.safe_pickle.UnsafePickleError`, naming the file and the refused global),
        a corrupt ``.npy`` or one holding Python objects (naming the file), a pickle of the wrong
        layout, a split naming an unknown conversation or a conversation in two splits, a missing
        ``.npy`` (naming conversation, modality and the expected path), an array of the wrong rank, or
        features and labels that fail the dataset checks.
    """
    if not isinstance(feature_dirs, Mapping):
        raise ValueError(f"feature_dirs must map each modality to its folder of .npy files, e.g. "
                         f"{{'t': 'feats/t', 'a': 'feats/a'}}, got {type(feature_dirs).__name__} {feature_dirs!r}")
    if len(feature_dirs) < 2:
        raise ValueError(
            f"need feature directories for at least 2 modalities, got {list(feature_dirs)}"
        )
    content = load_pickle(label_pickle, allow="data", trust_pickle=trust_pickle, encoding="latin1")
    if not isinstance(content, (list, tuple)) or len(content) not in (6, 7):
        raise ValueError(
            f"{label_pickle}: expected a list [videoIDs, videoLabels, videoSpeakers, videoSentences, "
            "trainVids, valVids, testVids] (or the 6-entry IEMOCAP variant without valVids), got "
            f"{type(content).__name__} of length {len(content) if hasattr(content, '__len__') else '?'}"
        )
    video_ids, video_labels, video_speakers = content[0], content[1], content[2]
    if len(content) == 7:
        train, valid, test = (sorted(str(v) for v in vids) for vids in content[4:7])
    else:
        train, test = (sorted(str(v) for v in vids) for vids in content[4:6])
        train, valid = _carve_valid(train, valid_fraction, seed)
    video_ids = {str(k): v for k, v in video_ids.items()}
    video_labels = {str(k): v for k, v in video_labels.items()}
    video_speakers = {str(k): v for k, v in video_speakers.items()}

    order = [*train, *valid, *test]
    _check_split_vids(order, video_ids, video_labels, video_speakers, label_pickle)
    speakers, _ = encode_speakers([list(video_speakers[v]) for v in order])
    raw_labels = [np.asarray(video_labels[v]) for v in order]
    if task is None:
        task = "classification" if all(y.dtype.kind in "iu" for y in raw_labels) else "regression"

    if task == "classification" and num_classes is None:
        num_classes = _contiguous_classes(raw_labels, label_pickle)
    features = {m: _load_modality(m, d, order, video_ids) for m, d in feature_dirs.items()}
    conversations = [
        Conversation(
            vid,
            {m: features[m][k] for m in feature_dirs},
            raw_labels[k],
            speakers[k],
            tuple(str(u) for u in video_ids[vid]),
        )
        for k, vid in enumerate(order)
    ]
    bounds = np.cumsum([0, len(train), len(valid), len(test)])
    splits = {
        s: list(range(bounds[k], bounds[k + 1])) for k, s in enumerate(("train", "valid", "test"))
    }
    return ConversationDataset(
        conversations,
        list(feature_dirs),
        task,
        splits,
        num_classes=num_classes,
        label_range=label_range,
        name=name or os.path.splitext(os.path.basename(os.fspath(label_pickle)))[0],
    )


def _contiguous_classes(labels: list[np.ndarray], path) -> int | None:
    """``C`` when the labels present are exactly ``0 … C − 1``; ``None`` for non-numeric labels, which
    the dataset's own checks refuse with their message."""
    values = np.concatenate([np.asarray(y).reshape(-1) for y in labels]) if labels else np.zeros(0)
    if values.dtype.kind not in "biuf":
        return None
    found = sorted({float(v) for v in values})
    if found and found == list(range(len(found))):
        return len(found)
    shown = ", ".join(f"{v:g}" for v in found[:20]) + (", ..." if len(found) > 20 else "")
    raise ValueError(
        f"{path}: cannot infer the number of classes: the labels found are {{{shown}}}, not 0 … C-1; "
        "pass num_classes= (config: data.options.num_classes) if a class is absent, or fix the stray labels"
    )


def _carve_valid(train: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {fraction}")
    n_valid = int(round(fraction * len(train)))
    if n_valid >= len(train):
        n_valid = len(train) - 1
    picked = set(np.random.default_rng(seed).permutation(len(train))[:n_valid].tolist())
    return (
        [v for k, v in enumerate(train) if k not in picked],
        [v for k, v in enumerate(train) if k in picked],
    )


def _check_split_vids(order, video_ids, video_labels, video_speakers, path) -> None:
    seen = set()
    for vid in order:
        if vid in seen:
            raise ValueError(f"{path}: conversation {vid!r} appears in more than one split")
        seen.add(vid)
        for table, label in ((video_ids, "videoIDs"), (video_labels, "videoLabels"),
                             (video_speakers, "videoSpeakers")):
            if vid not in table:
                raise ValueError(f"{path}: conversation {vid!r} is in a split but not in {label}")


def _load_modality(modality: str, directory, order: list[str], video_ids) -> list[np.ndarray]:
    """One ``(N_i, d)`` float32 array per conversation in ``order``."""
    rows: list[list[np.ndarray | None]] = []
    width = None
    for k, vid in enumerate(order):
        conv_rows = []
        for j, uid in enumerate(video_ids[vid]):
            vec = _load_utterance(directory, str(uid), modality, k, vid)
            if vec is not None:
                if width is not None and vec.shape[0] != width:
                    raise ValueError(
                        f"conversation {k} ({vid!r}), modality {modality!r}: utterance {uid!r} has "
                        f"width {vec.shape[0]}, expected {width}"
                    )
                width = vec.shape[0]
            conv_rows.append(vec)
        rows.append(conv_rows)
    if width is None:
        raise ValueError(f"modality {modality!r}: no features found under {directory}")
    zeros = np.zeros(width, dtype=np.float32)
    return [
        np.stack([zeros if r is None else r for r in conv_rows]) if conv_rows
        else np.zeros((0, width), dtype=np.float32)
        for conv_rows in rows
    ]


def _load_utterance(directory, uid: str, modality: str, k: int, vid: str) -> np.ndarray | None:
    """The utterance's vector ``(d,)``; ``None`` for an empty per-frame directory."""
    file = os.path.join(directory, uid + ".npy")
    folder = os.path.join(directory, uid)
    where = f"conversation {k} ({vid!r}), modality {modality!r}, utterance {uid!r}"
    if os.path.isfile(file):
        return _as_vector(_load_npy(file, where), where, file)
    if os.path.isdir(folder):
        frames = [
            _as_vector(_load_npy(os.path.join(folder, f), where), where, os.path.join(folder, f))
            for f in sorted(os.listdir(folder))
            if f.endswith(".npy")
        ]
        return np.mean(np.stack(frames), axis=0).astype(np.float32) if frames else None
    raise ValueError(f"{where}: feature file not found; expected {file}")


def _load_npy(file: str, where: str) -> np.ndarray:
    # allow_pickle=False: an object array in a .npy is a pickle and could run code.
    try:
        return np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(
            f"{where}: {file} is not a readable .npy array of numbers (truncated, corrupt, or holding "
            f"Python objects): {error}"
        ) from error


def _as_vector(arr: np.ndarray, where: str, file: str) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float32)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr.mean(axis=0)
    if arr.ndim != 1:
        raise ValueError(f"{where}: {file} must hold a (d,) or (T, d) array, got shape {arr.shape}")
    return arr
