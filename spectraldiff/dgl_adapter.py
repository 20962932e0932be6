"""Conversions between DGL graphs and the dense padded batches ``spectraldiff`` works on.

DGL is imported inside the functions, so ``spectraldiff`` loads on machines without DGL.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .adapters import padded_size

__all__ = ["dense_from_dgl", "dgl_from_dense"]


def dense_from_dgl(graphs, *, weight: str | None = None, dtype=torch.float32,
                   max_nodes: int | None = None) -> tuple[Tensor, Tensor]:
    """Padded symmetric adjacency ``(B, N_max, N_max)`` and sizes ``(B,)`` from DGL graphs.

    ``graphs`` is a list of ``DGLGraph`` or one graph; a batched graph, given alone or in the list,
    is split with ``dgl.unbatch`` into its members, in order. Edge weights come from ``edata[weight]``
    (a scalar per edge) or are 1; parallel edges add up; the result is symmetrised as
    ``(A + Aᵀ) / 2`` so directed input gives its undirected average. Heterographs (several node or
    edge types) are refused: convert them with ``dgl.to_homogeneous`` first. ``max_nodes`` pads to that
    size (default: the largest graph). The result lies on the graphs' device.
    """
    import dgl

    members = []
    for i, g in enumerate([graphs] if isinstance(graphs, dgl.DGLGraph) else list(graphs)):
        if not isinstance(g, dgl.DGLGraph):
            raise ValueError(f"entry {i} is not a dgl.DGLGraph but {type(g).__name__}")
        if len(g.ntypes) > 1 or len(g.canonical_etypes) > 1:
            raise ValueError(f"entry {i} is a heterograph (node types {g.ntypes}, edge types "
                             f"{g.canonical_etypes}); convert it with dgl.to_homogeneous first")
        members.extend(dgl.unbatch(g) if g.batch_size > 1 else [g])
    graphs = members
    if not graphs:
        raise ValueError("expected at least one graph")
    sizes = torch.tensor([g.num_nodes() for g in graphs], dtype=torch.long)
    if bool((sizes == 0).any()):
        raise ValueError(f"graph {int((sizes == 0).nonzero()[0])}: has no nodes")
    n_max, device = padded_size(int(sizes.max()), max_nodes), graphs[0].device
    A = torch.zeros(len(graphs), n_max, n_max, dtype=dtype, device=device)
    for b, g in enumerate(graphs):
        src, dst = g.edges()
        if weight is None:
            w = torch.ones(src.shape[0], dtype=dtype, device=device)
        else:
            if weight not in g.edata:
                raise ValueError(f"graph {b}: no edge feature {weight!r}; has {list(g.edata.keys())}")
            w = g.edata[weight].reshape(src.shape[0], -1)
            if w.shape[1] != 1:
                raise ValueError(f"graph {b}: edge weight {weight!r} must be one scalar per edge")
            w = w[:, 0].to(dtype)
        A[b].index_put_((src.long(), dst.long()), w, accumulate=True)
    return 0.5 * (A + A.mT), sizes


def dgl_from_dense(A: Tensor, num_nodes: Tensor, *, threshold: float | None = None, weight: str = "w",
                   self_loops: bool = False, rtol: float = 1e-5, batched: bool = False):
    """DGL graphs from a padded batch ``A (B, N, N)`` with sizes ``(B,)``.

    With ``threshold``, an unweighted edge ``(i, j)`` exists wherever ``A_ij > threshold``. Without it,
    an edge exists wherever ``|A_ij| > rtol · max|A|`` (so round-off of a reconstruction
    ``U diag(λ) Uᵀ`` does not become edges) and its value is stored in ``edata[weight]``. Both
    directions of each undirected edge are included.

    Returns a list of ``B`` graphs, or with ``batched=True`` one batched graph (``dgl.batch``; its
    ``batch_num_nodes()`` are the sizes, and ``dgl.unbatch`` gives the list back).
    """
    import dgl

    graphs = []
    for b in range(A.shape[0]):
        n = int(num_nodes[b])
        block = A[b, :n, :n]
        if threshold is not None:
            present = block > threshold
        else:
            present = block.abs() > rtol * block.abs().max().clamp_min(torch.finfo(block.dtype).tiny)
        if not self_loops:
            present = present & ~torch.eye(n, dtype=torch.bool, device=A.device)
        src, dst = present.nonzero(as_tuple=True)
        g = dgl.graph((src, dst), num_nodes=n)
        if threshold is None:
            g.edata[weight] = block[src, dst]
        graphs.append(g)
    return dgl.batch(graphs) if batched else graphs
