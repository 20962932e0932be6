"""Loader for MMSA feature pickles (CMU-MOSI / CMU-MOSEI ``aligned_50.pkl`` / ``unaligned_50.pkl``).

File format (a pickled dict)::

    {"train": split, "valid": split, "test": split}
    split = {
        "id":                 n strings "video_id$_$clip_id",
        "text":               (n, L, 768) float BERT features            (optional)
        "text_bert":          (n, 3, L) token ids / attention mask / segment ids  (optional)
        "audio":              (n, L_a, d_a) float
        "vision":             (n, L_v, d_v) float
        "audio_lengths":      (n,) valid steps of audio   (unaligned files only)
        "vision_lengths":     (n,) valid steps of vision  (unaligned files only)
        "regression_labels":  (n,) float in [-3, 3]
        ...                   (raw_text, classification_labels, ...: ignored)
    }

Each utterance becomes one vector per modality by a mean over its valid time steps: the first
``*_lengths[i]`` steps when lengths are given; otherwise the text attention mask
(``text_bert[:, 1, :]``) — aligned files put audio and vision on the text tokens — and, without
``text_bert``, the steps whose feature vector is not all zero. ``-inf`` (MMSA's padding of some audio
features) becomes 0 before pooling; an utterance with no valid step pools to zeros. Utterances are
grouped into conversations by video id (one speaker, id 0) and ordered by clip id (numerically when
clip ids are integers).
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from spectraldiff.safe_pickle import load_pickle

from mer.data.conversation import Conversation, ConversationDataset
from mer.data.splits import SPLIT_NAMES

__all__ = ["load_mmsa", "MMSA_MODALITIES", "ID_SEPARATOR"]

#: MMSA key → modality name.
MMSA_MODALITIES = {"text": "t", "audio": "a", "vision": "v"}

#: Separator between video id and clip id in MMSA utterance ids.
ID_SEPARATOR = "$_$"

# Utterances pooled at a time (bounds the float64 working copy).
_CHUNK = 512


def load_mmsa(
    path: str | os.PathLike,
    *,
    modalities: Sequence[str] = ("t", "a", "v"),
    text_features: Mapping[str, np.ndarray] | None = None,
    name: str | None = None,
    trust_pickle: bool = False,
) -> ConversationDataset:
    """Load an MMSA pickle as a regression :class:`ConversationDataset` with its own splits.

    Parameters
    ----------
    path : path
        ``aligned_50.pkl`` or ``unaligned_50.pkl``.
    modalities : sequence of {"t", "a", "v"}
        Which modalities to load (at least two), in this order.
    text_features : mapping, optional
        Utterance id (``"video$_$clip"``) → text vector ``(d,)`` or token matrix ``(L, d)`` (averaged
        over its first axis). Needed when the file holds only ``text_bert`` token ids; takes precedence
        over the file's ``text`` otherwise. Nothing is downloaded: compute them offline.
    trust_pickle : bool
        The file is read with :func:`spectraldiff.safe_pickle.load_pickle`, which rebuilds only plain
        containers, numbers, strings and NumPy arrays and refuses anything else. ``True`` loads it with
        plain ``pickle`` instead, which lets the file run any code: only for files you trust.

    Returns
    -------
    ConversationDataset
        Task ``"regression"``; conversation ids are video ids (suffixed ``@split`` if a video occurs
        in more than one split); utterance ids are the MMSA ids.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is corrupt, holds objects other than plain data
        (:class:`~spectraldiff.safe_pickle.UnsafePickleError`, naming the file and the refused global)
        or is not an MMSA dict, a split lacks a key, ids are malformed, text is only present as token
        ids and no ``text_features`` are given, or the features fail the dataset checks.
    """
    modalities = tuple(modalities)
    unknown = [m for m in modalities if m not in MMSA_MODALITIES.values()]
    if unknown or len(set(modalities)) != len(modalities) or len(modalities) < 2:
        raise ValueError(
            f"modalities must be at least two distinct names of {list(MMSA_MODALITIES.values())}, "
            f"got {list(modalities)}"
        )
    data = load_pickle(path, allow="data", trust_pickle=trust_pickle)
    if not isinstance(data, Mapping) or not all(s in data for s in SPLIT_NAMES):
        found = list(data) if isinstance(data, Mapping) else type(data).__name__
        raise ValueError(f"{path}: expected an MMSA dict with keys {list(SPLIT_NAMES)}, found {found}")

    conversations: list[Conversation] = []
    splits: dict[str, list[int]] = {}
    video_splits: dict[str, set[str]] = {}
    per_split = {s: _load_split(data[s], s, modalities, text_features, path) for s in SPLIT_NAMES}
    for s, groups in per_split.items():
        for video in groups:
            video_splits.setdefault(video, set()).add(s)
    for s, groups in per_split.items():
        splits[s] = []
        for video, (uids, feats, labels) in groups.items():
            cid = video if len(video_splits[video]) == 1 else f"{video}@{s}"
            splits[s].append(len(conversations))
            conversations.append(
                Conversation(cid, feats, labels, np.zeros(len(uids), dtype=np.int64), tuple(uids))
            )
    return ConversationDataset(
        conversations,
        modalities,
        "regression",
        splits,
        name=name or os.path.basename(os.fspath(path)),
    )


def _load_split(split: Mapping, split_name: str, modalities, text_features, path) -> dict:
    """Pool one split and group it by video: ``{video: (utterance ids, features, labels)}``."""
    where = f"{path}, split {split_name!r}"
    for key in ("id", "regression_labels"):
        if key not in split:
            raise ValueError(f"{where}: missing key {key!r}")
    ids = [str(i) for i in np.asarray(split["id"]).reshape(-1)]
    labels = np.asarray(split["regression_labels"], dtype=np.float64).reshape(-1)
    n = len(ids)
    if labels.shape[0] != n:
        raise ValueError(f"{where}: {labels.shape[0]} regression_labels for {n} ids")

    text_mask = None
    if "text_bert" in split:
        bert = np.asarray(split["text_bert"])
        if bert.ndim != 3 or bert.shape[:2] != (n, 3):
            raise ValueError(f"{where}: text_bert must have shape ({n}, 3, L), got {bert.shape}")
        text_mask = bert[:, 1, :] > 0

    pooled = {}
    for key, m in MMSA_MODALITIES.items():
        if m not in modalities:
            continue
        if m == "t" and text_features is not None:
            pooled[m] = _external_text(ids, text_features, where)
            continue
        if key not in split:
            if m == "t" and "text_bert" in split:
                raise ValueError(
                    f"{where}: the file holds text only as BERT token ids ('text_bert'); text features "
                    "must be supplied: pass text_features={utterance id: vector} computed offline, or "
                    "load without text via modalities=('a', 'v'). Token ids are not used as features "
                    "and no model is downloaded."
                )
            raise ValueError(f"{where}: missing key {key!r} for modality {m!r}")
        x = np.asarray(split[key])
        if x.ndim != 3 or x.shape[0] != n:
            raise ValueError(
                f"{where}, modality {m!r}: {key!r} must have shape ({n}, L, d), got {x.shape}"
            )
        lengths = None
        if f"{key}_lengths" in split:
            lengths = np.asarray(split[f"{key}_lengths"]).reshape(-1).astype(np.int64)
            if lengths.shape[0] != n:
                raise ValueError(
                    f"{where}: {key}_lengths has {lengths.shape[0]} entries, expected {n}"
                )
        mask = text_mask if text_mask is not None and text_mask.shape[1] == x.shape[1] else None
        pooled[m] = _pool(x, lengths, mask)

    groups: dict[str, list[tuple]] = {}
    for j, uid in enumerate(ids):
        if ID_SEPARATOR not in uid:
            raise ValueError(
                f"{where}: utterance {j} has id {uid!r}; expected 'video_id{ID_SEPARATOR}clip_id'"
            )
        video, clip = uid.rsplit(ID_SEPARATOR, 1)
        groups.setdefault(video, []).append((_clip_key(clip), j))
    out = {}
    for video, entries in groups.items():
        order = [j for _, j in sorted(entries)]
        out[video] = (
            [ids[j] for j in order],
            {m: pooled[m][order].astype(np.float32) for m in modalities},
            labels[order],
        )
    return out


def _pool(x: np.ndarray, lengths: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray:
    """Mean of ``x (n, L, d)`` over each utterance's valid steps → ``(n, d)`` float64.

    Valid steps: the first ``lengths[i]`` if given, else ``mask[i]`` if given, else the steps whose
    vector is not all zero (after ``-inf → 0``). Zeros where no step is valid. Works in chunks so a
    MOSEI-sized array is never copied whole.
    """
    n, L, d = x.shape
    out = np.zeros((n, d), dtype=np.float64)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        chunk = np.array(x[start:stop], dtype=np.float64)
        chunk[np.isneginf(chunk)] = 0.0
        if lengths is not None:
            valid = np.arange(L)[None, :] < np.clip(lengths[start:stop], 0, L)[:, None]
        elif mask is not None:
            valid = mask[start:stop]
        else:
            valid = np.any(chunk != 0, axis=2)
        counts = valid.sum(axis=1, keepdims=True).astype(np.float64)
        total = np.einsum("nld,nl->nd", chunk, valid.astype(np.float64))
        np.divide(total, counts, out=out[start:stop], where=counts > 0)
    return out


def _external_text(ids: list[str], text_features: Mapping[str, np.ndarray], where: str) -> np.ndarray:
    rows = []
    for uid in ids:
        if uid not in text_features:
            raise ValueError(f"{where}: text_features has no entry for utterance {uid!r}")
        v = np.asarray(text_features[uid], dtype=np.float64)
        if v.ndim == 2:
            v = v.mean(axis=0)
        if v.ndim != 1:
            raise ValueError(f"{where}: text_features[{uid!r}] must be (d,) or (L, d), got {v.shape}")
        rows.append(v)
    widths = {r.shape[0] for r in rows}
    if len(widths) > 1:
        raise ValueError(f"{where}: text_features have different widths {sorted(widths)}")
    return np.stack(rows)


def _clip_key(clip: str) -> tuple:
    """Sort key: integer clip ids numerically (``"2" < "10"``), then other ids as strings."""
    return (0, int(clip), "") if clip.strip().lstrip("-").isdigit() else (1, 0, clip)
