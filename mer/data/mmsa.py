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
features) becomes 0 before pooling; an utterance with no valid step pools to zeros.

Two views, chosen by the loader's options:

* **Pooled, grouped by video** (default): utterances are grouped into conversations by video id (one
  speaker, id 0), ordered by clip id (numerically when clip ids are integers). A conversation model
  (the GCN fusion) then sees a clip's sibling clips as context — context the MMSA papers' models do
  not have: it is this library's conversation view of MMSA, not the papers' pipeline.
* **The papers' view**: ``sequences=True`` keeps each utterance's per-step sequences (valid steps
  first, then zeros) with their lengths beside the pooled vectors, and ``per_clip=True`` makes every
  clip its own one-utterance sample, with no cross-clip context. ``docs/reproduce.md`` says how the
  MulT-style model uses them.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from spectraldiff.safe_pickle import load_pickle

from mer.data.conversation import Conversation, ConversationDataset
from mer.data.sequences import real_steps
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
    sequences: bool = False,
    per_clip: bool = False,
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
    sequences : bool
        Also keep every utterance's per-step sequences ``(T_m, d_m)`` and lengths
        (:attr:`Conversation.sequences`): a modality's valid steps (as for pooling) moved to the
        front, ``-inf`` as 0, zeros after. External ``text_features`` give one step per vector (a token
        matrix gives its rows).
    per_clip : bool
        Every clip is its own conversation of one utterance (id = the MMSA id), as the papers train
        and test, instead of grouping a video's clips.

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
    per_split = {s: _load_split(data[s], s, modalities, text_features, path, sequences, per_clip)
                 for s in SPLIT_NAMES}
    for s, groups in per_split.items():
        for video in groups:
            video_splits.setdefault(video, set()).add(s)
    for s, groups in per_split.items():
        splits[s] = []
        for video, (uids, feats, labels, seqs, lengths) in groups.items():
            cid = video if len(video_splits[video]) == 1 else f"{video}@{s}"
            splits[s].append(len(conversations))
            conversations.append(Conversation(cid, feats, labels, np.zeros(len(uids), dtype=np.int64),
                                              tuple(uids), seqs, lengths))
    return ConversationDataset(
        conversations,
        modalities,
        "regression",
        splits,
        name=name or os.path.basename(os.fspath(path)),
    )


def _load_split(split: Mapping, split_name: str, modalities, text_features, path, keep_sequences: bool,
                per_clip: bool) -> dict:
    """Pool one split and group it by video (or by clip): ``{group: (utterance ids, features, labels,
    sequences or None, lengths or None)}``."""
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

    pooled, steps = {}, {}
    for key, m in MMSA_MODALITIES.items():
        if m not in modalities:
            continue
        if m == "t" and text_features is not None:
            pooled[m] = _external_text(ids, text_features, where)
            if keep_sequences:
                steps[m] = _external_text_steps(ids, text_features)
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
        if keep_sequences:
            steps[m] = _valid_steps_first(x, lengths, mask)

    groups: dict[str, list[tuple]] = {}
    for j, uid in enumerate(ids):
        if ID_SEPARATOR not in uid:
            raise ValueError(
                f"{where}: utterance {j} has id {uid!r}; expected 'video_id{ID_SEPARATOR}clip_id'"
            )
        video, clip = uid.rsplit(ID_SEPARATOR, 1)
        groups.setdefault(uid if per_clip else video, []).append((_clip_key(clip), j))
    out = {}
    for group, entries in groups.items():
        order = [j for _, j in sorted(entries)]
        seqs = {m: steps[m][0][order] for m in modalities} if keep_sequences else None
        lengths = {m: steps[m][1][order] for m in modalities} if keep_sequences else None
        out[group] = (
            [ids[j] for j in order],
            {m: pooled[m][order].astype(np.float32) for m in modalities},
            labels[order],
            seqs,
            lengths,
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
        valid = _valid_steps(chunk, start, lengths, mask)
        counts = valid.sum(axis=1, keepdims=True).astype(np.float64)
        total = np.einsum("nld,nl->nd", chunk, valid.astype(np.float64))
        np.divide(total, counts, out=out[start:stop], where=counts > 0)
    return out


def _valid_steps(chunk: np.ndarray, start: int, lengths: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray:
    """``(n, L)`` bool valid steps of the utterances ``chunk`` (rows from ``start``): the first
    ``lengths[i]`` steps if given, else ``mask[i]`` if given, else the steps not all zero."""
    n, L = chunk.shape[:2]
    if lengths is not None:
        return real_steps(lengths[start:start + n], L)
    if mask is not None:
        return np.asarray(mask[start:start + n], dtype=bool)
    return np.any(chunk != 0, axis=2)


def _valid_steps_first(x: np.ndarray, lengths: np.ndarray | None, mask: np.ndarray | None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``x (n, L, d)`` as float32 with each utterance's valid steps (as :func:`_pool` picks them)
    moved to the front in order, zeros after and ``-inf → 0``; and the ``(n,)`` int64 counts."""
    n, L, d = x.shape
    out = np.zeros((n, L, d), dtype=np.float32)
    counts = np.zeros(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        chunk = np.array(x[start:stop], dtype=np.float32)
        chunk[np.isneginf(chunk)] = 0.0
        valid = _valid_steps(chunk, start, lengths, mask)
        # A stable sort of "not valid" puts the valid steps first, in their order.
        order = np.argsort(~valid, axis=1, kind="stable")
        moved = np.take_along_axis(chunk, order[:, :, None], axis=1)
        count = valid.sum(axis=1)
        out[start:stop] = np.where(real_steps(count, L)[:, :, None], moved, 0.0)
        counts[start:stop] = count
    return out, counts


def _external_text_steps(ids: list[str], text_features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """External text as sequences: a ``(d,)`` vector is one step, an ``(L, d)`` matrix its rows."""
    rows = [np.asarray(text_features[uid], dtype=np.float32) for uid in ids]
    rows = [r[None, :] if r.ndim == 1 else r for r in rows]
    L = max(r.shape[0] for r in rows)
    out = np.zeros((len(rows), L, rows[0].shape[1]), dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
    return out, np.array([r.shape[0] for r in rows], dtype=np.int64)


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
