"""Conversation graphs: the utterance–modality DGL graph and the dense utterance-level adjacencies.

Three builders, one configuration (:class:`GraphConfig`):

* :func:`utterance_modality_graph` / :func:`batch_graph`: a DGL graph per conversation whose nodes are
  (utterance, modality) pairs; a batch is the ``dgl.batch`` of them (built in one call). Edges, each
  kept with a type id in ``edata["etype"]`` (see :data:`EDGE_TYPES`):

  - ``cross_modal``: between the ``M`` modalities of one utterance (both directions);
  - ``temporal``: within one modality, from utterance ``j`` to utterance ``i`` when
    ``i − past ≤ j ≤ i + future``, ``j ≠ i``;
  - ``speaker``: within one modality, between utterances of the same speaker that are not already
    temporal neighbours (all of the conversation, or ``|i − j| ≤ speaker_window``);
  - ``self_loop``: each node to itself (``self_loops=True``).

  The graph is simple: a node pair has at most one edge, and the type follows the priority above.
  ``edata["same_speaker"]`` tells, for every edge, whether both utterances have the same speaker, so
  the speaker relation inside the temporal window is not lost. Missing (unavailable) nodes are kept,
  with every edge, and flagged in ``ndata["missing"]`` so a recoverer can fill them.

* :func:`structure_adjacency`: the dense symmetric utterance graph ``(B, N_max, N_max)``
  (temporal window ``|i − j| ≤ max(past, future)``, same-speaker pairs, self loops), zero outside each conversation's
  block: the fixed structure whose eigenvectors GSDNet keeps.

* :func:`similarity_adjacency` / :func:`modality_similarities`: per-modality cosine-similarity graphs
  ``S_ij = (1 + cos(x_i, x_j)) / 2 ∈ [0, 1]``, also ``(B, N_max, N_max)`` and zero-padded.

The dense ones are exactly the input of ``spectraldiff.batched_eigh(A, num_nodes)``: exactly
symmetric, zero outside each graph's block, with sizes ``(B,)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import dgl
import numpy as np
import torch
from torch import Tensor

from mer.data.collate import ConversationBatch

__all__ = [
    "EDGE_TYPES",
    "CROSS_MODAL",
    "TEMPORAL",
    "SPEAKER",
    "SELF_LOOP",
    "GraphConfig",
    "utterance_modality_graph",
    "batch_graph",
    "gather_nodes",
    "scatter_nodes",
    "structure_adjacency",
    "similarity_adjacency",
    "modality_similarities",
]

#: Edge type names; ``edata["etype"]`` holds the index into this tuple.
EDGE_TYPES = ("cross_modal", "temporal", "speaker", "self_loop")
CROSS_MODAL, TEMPORAL, SPEAKER, SELF_LOOP = range(len(EDGE_TYPES))


@dataclass
class GraphConfig:
    """How conversation graphs connect utterances.

    Parameters
    ----------
    past, future : int
        Temporal window: utterance ``i`` is linked to ``i − past … i + future`` (``≥ 0`` each).
    speaker_edges : bool
        Link utterances of the same speaker (within one modality in the DGL graph).
    speaker_window : int, optional
        Only same-speaker pairs with ``|i − j| ≤ speaker_window``; ``None``: the whole conversation.
    self_loops : bool
        Add self loops (the DESIGN's structure graph has them; ``GraphConv`` needs no zero in-degree).
    """

    past: int = 2
    future: int = 2
    speaker_edges: bool = True
    speaker_window: int | None = None
    self_loops: bool = True

    def __post_init__(self) -> None:
        if self.past < 0 or self.future < 0:
            raise ValueError(
                f"past and future must be >= 0, got past={self.past}, future={self.future}"
            )
        if self.speaker_window is not None and self.speaker_window < 1:
            raise ValueError(f"speaker_window must be >= 1 or None, got {self.speaker_window}")


# --------------------------------------------------------------------------------- DGL graphs
def utterance_modality_graph(
    speakers,
    availability=None,
    num_modalities: int | None = None,
    config: GraphConfig | None = None,
) -> dgl.DGLGraph:
    """The utterance–modality graph of one conversation.

    Parameters
    ----------
    speakers : array-like
        ``(N,)`` integer speaker ids; ``N ≥ 1``.
    availability : array-like, optional
        ``(N, M)`` 0/1 or bool; ``None``: all available (then ``num_modalities`` gives ``M``).
    num_modalities : int, optional
        ``M ≥ 2``, needed only without ``availability``.
    config : GraphConfig, optional

    Returns
    -------
    dgl.DGLGraph
        ``N · M`` nodes, node ``m · N + i`` being utterance ``i`` in modality ``m`` (modality-major).
        ``ndata``: ``"utterance"``, ``"modality"``, ``"speaker"`` (int64 ``(N·M,)``), ``"missing"``
        (bool ``(N·M,)``). ``edata``: ``"etype"`` (int64, index into :data:`EDGE_TYPES`),
        ``"same_speaker"`` (bool).

    Raises
    ------
    ValueError
        For an empty conversation, shapes that disagree, fewer than two modalities, or an utterance
        with no available modality.
    """
    config = config or GraphConfig()
    spk = np.asarray(speakers).reshape(-1)
    N = spk.shape[0]
    if N == 0:
        raise ValueError("empty conversation (0 utterances); expected at least 1")
    if availability is None:
        if num_modalities is None:
            raise ValueError("give availability (N, M) or num_modalities")
        avail = np.ones((N, int(num_modalities)), dtype=bool)
    else:
        avail = np.asarray(availability)
        if avail.ndim != 2 or avail.shape[0] != N:
            raise ValueError(f"availability must have shape ({N}, M), got {avail.shape}")
        if num_modalities is not None and avail.shape[1] != num_modalities:
            raise ValueError(f"availability has {avail.shape[1]} modalities, expected {num_modalities}")
        avail = avail.astype(bool)
        empty = ~avail.any(axis=1)
        if empty.any():
            raise ValueError(
                f"utterance {int(np.flatnonzero(empty)[0])} has no available modality; "
                "expected at least one"
            )
    M = avail.shape[1]
    if M < 2:
        raise ValueError(f"need at least 2 modalities, got {M}")
    return _build_graph(spk.astype(np.int64), avail, config)


def batch_graph(batch: ConversationBatch, config: GraphConfig | None = None) -> dgl.DGLGraph:
    """The batched utterance–modality graph of a :class:`~mer.data.ConversationBatch`.

    Identical to ``dgl.batch`` of :func:`utterance_modality_graph` for each conversation (same node
    and edge order, same ``batch_num_nodes`` / ``batch_num_edges``, so ``dgl.unbatch`` recovers them),
    but built with one ``dgl.graph`` call. Adds ``ndata["conversation"]`` (position ``b`` in the batch),
    so that ``(conversation, utterance, modality)`` index the batch's padded tensors (see
    :func:`gather_nodes`). Availability comes from ``batch.availability``; the graph is built on CPU and
    moved to the batch's device.
    """
    config = config or GraphConfig()
    lengths = batch.lengths.cpu().numpy()
    speakers = batch.speakers.cpu().numpy()
    avail = batch.availability.cpu().numpy()
    M = avail.shape[2]
    parts = [_edge_arrays(speakers[b, :n], M, config) for b, n in enumerate(lengths)]
    offsets = np.cumsum([0, *(lengths * M)])
    src = np.concatenate([p[0] + offsets[b] for b, p in enumerate(parts)])
    dst = np.concatenate([p[1] + offsets[b] for b, p in enumerate(parts)])
    etype = np.concatenate([p[2] for p in parts])
    node_conv = np.repeat(np.arange(len(lengths)), lengths * M)
    node_utt = np.concatenate([np.tile(np.arange(n), M) for n in lengths])
    node_mod = np.concatenate([np.repeat(np.arange(M), n) for n in lengths])
    node_spk = speakers[node_conv, node_utt]
    missing = ~avail[node_conv, node_utt, node_mod]
    g = _graph(src, dst, etype, node_utt, node_mod, node_spk, missing)
    g.ndata["conversation"] = torch.from_numpy(node_conv)
    g.set_batch_num_nodes(torch.from_numpy((lengths * M).astype(np.int64)))
    g.set_batch_num_edges(torch.tensor([p[0].shape[0] for p in parts], dtype=torch.long))
    return g.to(batch.lengths.device)


def gather_nodes(graph: dgl.DGLGraph, stacked: Tensor) -> Tensor:
    """Node features ``(num_nodes, d)`` from a padded ``(B, N_max, M, d)`` tensor.

    Uses ``ndata["conversation"]``, ``["utterance"]``, ``["modality"]`` set by :func:`batch_graph`.
    """
    return stacked[graph.ndata["conversation"], graph.ndata["utterance"], graph.ndata["modality"]]


def scatter_nodes(graph: dgl.DGLGraph, h: Tensor, batch_size: int, max_utterances: int) -> Tensor:
    """Inverse of :func:`gather_nodes`: ``(num_nodes, d)`` → ``(B, N_max, M, d)``, zero elsewhere."""
    M = int(graph.ndata["modality"].max()) + 1
    out = h.new_zeros((batch_size, max_utterances, M, *h.shape[1:]))
    out[graph.ndata["conversation"], graph.ndata["utterance"], graph.ndata["modality"]] = h
    return out


def _build_graph(spk: np.ndarray, avail: np.ndarray, config: GraphConfig) -> dgl.DGLGraph:
    N, M = avail.shape
    src, dst, etype = _edge_arrays(spk, M, config)
    node_utt = np.tile(np.arange(N), M)
    node_mod = np.repeat(np.arange(M), N)
    return _graph(src, dst, etype, node_utt, node_mod, spk[node_utt], ~avail.T.reshape(-1))


def _graph(src, dst, etype, node_utt, node_mod, node_spk, missing) -> dgl.DGLGraph:
    # Copies: the cached edge arrays are read-only and must not back a tensor.
    g = dgl.graph((torch.tensor(src), torch.tensor(dst)), num_nodes=node_utt.shape[0])
    g.ndata["utterance"] = torch.from_numpy(node_utt.astype(np.int64))
    g.ndata["modality"] = torch.from_numpy(node_mod.astype(np.int64))
    g.ndata["speaker"] = torch.from_numpy(node_spk.astype(np.int64))
    g.ndata["missing"] = torch.from_numpy(np.ascontiguousarray(missing, dtype=bool))
    g.edata["etype"] = torch.tensor(etype)
    g.edata["same_speaker"] = torch.from_numpy(node_spk[src] == node_spk[dst])
    return g


def _edge_arrays(spk: np.ndarray, M: int, config: GraphConfig) -> tuple[np.ndarray, ...]:
    """``(src, dst, etype)`` int64 arrays of one conversation; memoised on (speakers, M, config)."""
    key = (spk.astype(np.int64).tobytes(), M, dataclasses.astuple(config))
    cached = _EDGE_CACHE.get(key)
    if cached is None:
        if len(_EDGE_CACHE) >= _EDGE_CACHE_SIZE:
            _EDGE_CACHE.clear()
        cached = _EDGE_CACHE[key] = _compute_edges(spk, M, config)
    return cached


# Conversations repeat every epoch; their edge lists depend only on speakers, M and the config.
_EDGE_CACHE: dict[tuple, tuple[np.ndarray, ...]] = {}
_EDGE_CACHE_SIZE = 100_000


def _compute_edges(spk: np.ndarray, M: int, config: GraphConfig) -> tuple[np.ndarray, ...]:
    N = spk.shape[0]
    i, j = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")  # i: destination, j: source
    off = i != j
    temporal = off & (j >= i - config.past) & (j <= i + config.future)
    speaker = np.zeros_like(temporal)
    if config.speaker_edges:
        speaker = off & (spk[:, None] == spk[None, :]) & ~temporal
        if config.speaker_window is not None:
            speaker &= np.abs(i - j) <= config.speaker_window

    src, dst, etype = [], [], []
    for mask, code in ((temporal, TEMPORAL), (speaker, SPEAKER)):
        d_utt, s_utt = np.nonzero(mask)
        for m in range(M):
            src.append(m * N + s_utt)
            dst.append(m * N + d_utt)
            etype.append(np.full(s_utt.shape[0], code))
    utt = np.arange(N)
    for m in range(M):
        for m2 in range(M):
            if m != m2:
                src.append(m * N + utt)
                dst.append(m2 * N + utt)
                etype.append(np.full(N, CROSS_MODAL))
    if config.self_loops:
        src.append(np.arange(N * M))
        dst.append(np.arange(N * M))
        etype.append(np.full(N * M, SELF_LOOP))
    arrays = tuple(np.concatenate(a).astype(np.int64) for a in (src, dst, etype))
    for a in arrays:
        a.setflags(write=False)
    return arrays


# --------------------------------------------------------------------------- dense adjacencies
def structure_adjacency(
    speakers: Tensor,
    lengths: Tensor,
    config: GraphConfig | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Dense utterance structure graphs of a batch.

    ``A[b, i, j] = 1`` for ``i, j < n_b`` when ``|i − j| ≤ max(past, future)`` (the temporal window,
    symmetrised), or the two utterances share a speaker (``speaker_edges``, within
    ``speaker_window``), or ``i = j`` (``self_loops``); 0 otherwise, including all padding.

    Parameters
    ----------
    speakers : Tensor
        ``(B, N_max)`` int speaker ids (padding ignored).
    lengths : Tensor
        ``(B,)`` sizes ``1 ≤ n_b ≤ N_max``.

    Returns
    -------
    A : Tensor
        ``(B, N_max, N_max)`` of ``dtype``, exactly symmetric, zero outside each ``n_b × n_b`` block.
    num_nodes : Tensor
        ``(B,)`` int64, the sizes (``batched_eigh(A, num_nodes)`` input).
    """
    config = config or GraphConfig()
    sizes, valid = _check_sizes(speakers, lengths)
    N = speakers.shape[1]
    idx = torch.arange(N, device=speakers.device)
    dist = (idx[:, None] - idx[None, :]).abs()
    adj = (dist <= max(config.past, config.future)) & (dist > 0)
    adj = adj.unsqueeze(0).expand(speakers.shape[0], N, N)
    if config.speaker_edges:
        same = speakers[:, :, None] == speakers[:, None, :]
        if config.speaker_window is not None:
            same = same & (dist <= config.speaker_window)
        adj = adj | same
    eye = torch.eye(N, dtype=torch.bool, device=speakers.device)
    adj = (adj & ~eye) | (eye if config.self_loops else torch.zeros_like(eye))
    adj = adj & valid[:, :, None] & valid[:, None, :]
    return adj.to(dtype), sizes


def similarity_adjacency(
    features: Tensor,
    lengths: Tensor,
    available: Tensor | None = None,
    eps: float = 1e-8,
) -> tuple[Tensor, Tensor]:
    """Cosine-similarity graphs ``S_ij = (1 + cos(x_i, x_j)) / 2`` of one modality.

    Parameters
    ----------
    features : Tensor
        ``(B, N_max, d)``.
    lengths : Tensor
        ``(B,)`` sizes.
    available : Tensor, optional
        ``(B, N_max)`` bool; rows and columns of unavailable utterances are set to 0 (their similarity
        is unknown). ``None``: every real utterance.
    eps : float
        Norm floor: an all-zero vector has cosine 0 with everything (``S = 0.5``).

    Returns
    -------
    S : Tensor
        ``(B, N_max, N_max)`` in ``[0, 1]``, same dtype as ``features``, exactly symmetric, zero outside
        each block and on unavailable rows/columns.
    num_nodes : Tensor
        ``(B,)`` int64.
    """
    if features.dim() != 3:
        raise ValueError(f"features must be (B, N_max, d), got shape {tuple(features.shape)}")
    sizes, valid = _check_sizes(features[..., 0], lengths)
    if available is not None:
        if available.shape != valid.shape:
            raise ValueError(
                f"available must have shape {tuple(valid.shape)}, got {tuple(available.shape)}"
            )
        valid = valid & available.bool()
    unit = features / features.norm(dim=-1, keepdim=True).clamp_min(eps)
    cos = unit @ unit.transpose(1, 2)
    S = ((1.0 + cos) / 2.0).clamp(0.0, 1.0)
    S = (S + S.transpose(1, 2)) / 2.0  # exact symmetry: a + b == b + a in floating point
    pair = valid[:, :, None] & valid[:, None, :]
    return S * pair.to(S.dtype), sizes


def modality_similarities(
    batch: ConversationBatch, observed: bool = True
) -> tuple[dict[str, Tensor], Tensor]:
    """:func:`similarity_adjacency` for every modality of a batch.

    ``observed=True`` uses only available entries (unavailable rows/columns are 0): what a model may
    see. ``observed=False`` uses the ground truth of every real utterance (training targets).
    Returns ``({modality: (B, N_max, N_max)}, num_nodes (B,))``.
    """
    out = {}
    for k, (m, x) in enumerate(batch.features.items()):
        avail = batch.availability[:, :, k] if observed else None
        out[m], sizes = similarity_adjacency(x, batch.lengths, avail)
    return out, sizes


def _check_sizes(per_node: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    if per_node.dim() != 2:
        raise ValueError(f"expected (B, N_max) per-utterance input, got shape {tuple(per_node.shape)}")
    B, N = per_node.shape
    sizes = torch.as_tensor(lengths, device=per_node.device).long().reshape(-1)
    if sizes.shape[0] != B:
        raise ValueError(f"lengths must have shape ({B},), got {tuple(sizes.shape)}")
    bad = (sizes < 1) | (sizes > N)
    if bool(bad.any()):
        b = int(bad.nonzero()[0])
        raise ValueError(f"conversation {b}: length {int(sizes[b])} is outside [1, N_max = {N}]")
    valid = torch.arange(N, device=per_node.device)[None, :] < sizes[:, None]
    return sizes, valid
