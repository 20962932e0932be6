"""Per-step sequences of utterances: their checks, statistics and the common time axis.

MMSA files hold each clip's modalities as sequences (aligned files: every modality on the text's
steps; unaligned: audio and vision at their own frame rates). A :class:`~mer.data.Conversation` may
carry them beside its utterance vectors (``sequences`` ``(N, T_m, d_m)``, ``sequence_lengths``
``(N,)``); the MulT-style model (``model.fusion = "mult"``) and the recoverers under it work on them.

Recoverers fill a missing modality step by step from the observed ones, so every modality of an
utterance must sit on one time axis. :func:`common_steps` gives it: when all modalities have the
same length ``L`` (aligned files) the sequences are kept as they are; otherwise each modality's real
steps are resampled to ``L* = min(steps, max_m L_m)`` steps — averaged over equal segments when it
has more, repeated (nearest earlier step) when it has fewer.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["real_steps", "check_sequences", "step_statistics", "standardized_steps", "common_steps", "resampling_weights"]


def real_steps(lengths: np.ndarray, steps: int) -> np.ndarray:
    """``(n, steps)`` bool: step ``t`` of row ``i`` is real, ``t < lengths[i]`` (lengths clipped to
    ``[0, steps]``)."""
    return np.arange(steps)[None, :] < np.clip(np.asarray(lengths), 0, steps)[:, None]


def check_sequences(
    sequences: Mapping[str, np.ndarray] | None,
    lengths: Mapping[str, np.ndarray] | None,
    modalities: Sequence[str],
    dims: Mapping[str, int],
    n: int,
    where: str,
) -> tuple[dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]:
    """Validated copies of one conversation's ``sequences`` ``{m: (n, T_m, d_m)}`` float32 and
    ``lengths`` ``{m: (n,)}`` int64 (steps after a length zeroed); ``(None, None)`` when absent.

    Raises ``ValueError`` naming ``where`` and the modality for: one given without the other, other
    modalities than ``modalities``, a shape other than ``(n, T_m, d_m)``, non-finite values on real
    steps, or lengths outside ``[0, T_m]``.
    """
    if sequences is None and lengths is None:
        return None, None
    if sequences is None or lengths is None:
        raise ValueError(f"{where}: sequences and sequence_lengths go together; got only one of them")
    if set(sequences) != set(modalities) or set(lengths) != set(modalities):
        raise ValueError(f"{where}: sequences have modalities {sorted(sequences)} and lengths "
                         f"{sorted(lengths)}; expected {list(modalities)}")
    out_x, out_len = {}, {}
    for m in modalities:
        x = np.asarray(sequences[m], dtype=np.float32)
        if x.ndim != 3 or x.shape[0] != n or x.shape[2] != dims[m]:
            raise ValueError(f"{where}, modality {m!r}: sequences must have shape ({n}, T, {dims[m]}), "
                             f"got {x.shape}")
        steps = np.asarray(lengths[m]).reshape(-1)
        if steps.shape != (n,) or steps.dtype.kind not in "iu":
            raise ValueError(f"{where}, modality {m!r}: sequence_lengths must be ({n},) integers, "
                             f"got shape {steps.shape} dtype {steps.dtype}")
        if n and (steps.min() < 0 or steps.max() > x.shape[1]):
            raise ValueError(f"{where}, modality {m!r}: sequence_lengths must lie in [0, {x.shape[1]}], "
                             f"got [{int(steps.min())}, {int(steps.max())}]")
        real = real_steps(steps, x.shape[1])
        if not np.isfinite(x[real]).all():
            raise ValueError(f"{where}, modality {m!r}: sequences have NaN or Inf on real steps")
        out_x[m] = np.where(real[:, :, None], x, np.float32(0.0))
        out_len[m] = steps.astype(np.int64)
    return out_x, out_len


def step_statistics(conversations: Sequence, modalities: Sequence[str], eps: float = 1e-6
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Modality → ``(μ_m, σ_m)`` ``(d_m,)`` float64 over every real step of every utterance of
    ``conversations`` (σ floored at ``eps``): the sequence counterpart of the utterance statistics."""
    stats = {}
    for m in modalities:
        total = count = square = 0.0
        for c in conversations:
            x = c.sequences[m].astype(np.float64)
            steps = x[real_steps(c.sequence_lengths[m], x.shape[1])]
            total = total + steps.sum(axis=0)
            square = square + (steps ** 2).sum(axis=0)
            count += steps.shape[0]
        if count == 0:
            raise ValueError(f"modality {m!r} has no real step in the reference conversations")
        mean = total / count
        var = np.maximum(square / count - mean ** 2, 0.0)
        stats[m] = (mean, np.maximum(np.sqrt(var), eps))
    return stats


def standardized_steps(conversation, stats: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """``conversation``'s sequences z-scored with ``stats`` on real steps; padding stays zero."""
    out = {}
    for m, x in conversation.sequences.items():
        real = real_steps(conversation.sequence_lengths[m], x.shape[1])
        z = (x - stats[m][0]) / stats[m][1]
        out[m] = np.where(real[:, :, None], z, 0.0).astype(np.float32)
    return out


def resampling_weights(lengths: Tensor, source_steps: int, target: Tensor, target_steps: int) -> Tensor:
    """``(R, target_steps, source_steps)`` weights that map ``lengths[r]`` real source steps onto
    ``target[r]`` target steps: each target step averages its equal segment of source steps when
    ``lengths ≥ target``, or copies source step ``⌊j·lengths/target⌋`` when ``lengths < target``.
    Rows of steps past ``target`` (and rows with ``lengths = 0``) are zero."""
    j = torch.arange(target_steps, device=lengths.device)[None, :, None]
    t = torch.arange(source_steps, device=lengths.device)[None, None, :]
    L, Ls = lengths[:, None, None], target[:, None, None]
    down = (t < L) & (torch.div(t * Ls, L.clamp_min(1), rounding_mode="floor") == j)
    up = t == torch.div(j * L, Ls.clamp_min(1), rounding_mode="floor")
    w = torch.where(L >= Ls, down, up) & (j < Ls) & (L > 0)
    w = w.to(torch.float32)
    return w / w.sum(dim=2, keepdim=True).clamp_min(1.0)


def common_steps(sequences: Mapping[str, Tensor], lengths: Mapping[str, Tensor], steps: int
                 ) -> tuple[dict[str, Tensor], Tensor]:
    """Every modality of each row on one time axis of at most ``steps`` steps.

    Parameters
    ----------
    sequences : mapping
        Modality → ``(R, T_m, d_m)``, zero after each row's length.
    lengths : mapping
        Modality → ``(R,)`` real steps.
    steps : int
        The most steps a row keeps.

    Returns
    -------
    (dict, Tensor)
        Modality → ``(R, S, d_m)`` and the common length ``(R,)``; ``S = steps`` unless every row is
        shorter. Rows whose modalities share one length ``L ≤ steps`` are unchanged on their first
        ``L`` steps; otherwise each modality is resampled to ``L* = min(steps, max_m L_m)`` steps
        (:func:`resampling_weights`). A row with no real step in any modality keeps length 0.
    """
    names = list(sequences)
    stacked = torch.stack([lengths[m] for m in names], dim=1)  # (R, M)
    target = stacked.max(dim=1).values.clamp_max(steps)
    width = int(target.max()) if target.numel() else 0
    width = max(width, 1)
    out = {}
    for m in names:
        x = sequences[m]
        w = resampling_weights(lengths[m], x.shape[1], target, width).to(x.dtype)
        out[m] = torch.bmm(w, x)
    return out, target
