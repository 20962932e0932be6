"""Dense padded batches from anyone's graphs: networkx graphs and ``edge_index`` + ``batch`` tensors.

``spectraldiff`` works on a zero-padded adjacency batch ``A (B, N, N)`` with per-graph sizes
``num_nodes (B,)`` (graph ``b`` fills the leading ``n_b × n_b`` block; ``spectraldiff.eigh.node_mask``
turns the sizes into the ``(B, N)`` node mask). These functions build that form:

* :func:`from_networkx` — a list of ``networkx`` graphs (rows in ``graph.nodes`` order);
* :func:`from_edge_index` — the PyTorch Geometric layout: ``edge_index (2, E)`` over all nodes of a
  batch and ``batch (V,)`` naming each node's graph;
* DGL graphs: :func:`spectraldiff.dgl_adapter.dense_from_dgl` (and ``SpectralGraph.from_dgl``), and
  back to one batched DGL graph with ``SpectralGraph.to_dgl(batched=True)``.

All three read an edge ``u → v`` with weight ``w`` as ``A[u, v] += w`` and return
``(A + Aᵀ) / 2``: an undirected graph stored with both directions (PyG, DGL) or as an undirected
networkx graph gives ``A_uv = w``; an edge stored in one direction only counts half. Self loops stay on
the diagonal. Neither networkx nor DGL is imported here.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["from_networkx", "from_edge_index"]


def padded_size(largest: int, max_nodes: int | None) -> int:
    """The padded size ``N`` of a batch whose largest graph has ``largest`` nodes: ``max_nodes`` where
    given (``ValueError`` if a graph does not fit), else ``largest``. Shared by every adapter."""
    if max_nodes is None:
        return largest
    if largest > max_nodes:
        raise ValueError(f"a graph has {largest} nodes, more than max_nodes={max_nodes}")
    return int(max_nodes)


def from_networkx(graphs, *, weight: str | None = None, max_nodes: int | None = None,
                  dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Padded adjacency ``(B, N, N)`` and sizes ``(B,)`` from networkx graphs.

    Parameters
    ----------
    graphs : networkx.Graph or sequence of them
        Undirected or directed (a directed edge counts half each way, see the module docstring);
        nodes may have any labels, rows follow ``graph.nodes`` order.
    weight : str, optional
        Edge attribute holding the weight (missing on an edge: 1); None gives 0/1 entries.
    max_nodes : int, optional
        Padded size ``N`` (default: the largest graph).

    Examples
    --------
    >>> import networkx as nx
    >>> A, num_nodes = from_networkx([nx.path_graph(3), nx.complete_graph(2)])
    >>> A.shape, num_nodes.tolist()
    (torch.Size([2, 3, 3]), [3, 2])
    >>> A[1]
    tensor([[0., 1., 0.],
            [1., 0., 0.],
            [0., 0., 0.]])
    """
    if hasattr(graphs, "nodes") and hasattr(graphs, "edges"):
        graphs = [graphs]
    graphs = list(graphs)
    if not graphs:
        raise ValueError("expected at least one graph")
    for b, g in enumerate(graphs):
        if not (hasattr(g, "nodes") and hasattr(g, "edges") and hasattr(g, "is_directed")):
            raise ValueError(f"graph {b} is not a networkx graph but {type(g).__name__}")
    sizes = [g.number_of_nodes() for g in graphs]
    for b, n in enumerate(sizes):
        if n == 0:
            raise ValueError(f"graph {b}: has no nodes")
    size = padded_size(max(sizes), max_nodes)
    A = torch.zeros(len(graphs), size, size, dtype=dtype)
    for b, g in enumerate(graphs):
        index = {v: i for i, v in enumerate(g.nodes)}
        block = torch.zeros(sizes[b], sizes[b], dtype=torch.float64)
        for u, v, data in g.edges(data=True):
            w = 1.0 if weight is None else float(data.get(weight, 1.0))
            block[index[u], index[v]] += w
            if not g.is_directed() and u != v:
                block[index[v], index[u]] += w
        A[b, : sizes[b], : sizes[b]] = (0.5 * (block + block.T) if g.is_directed() else block).to(dtype)
    return A, torch.tensor(sizes)


def from_edge_index(edge_index: Tensor, batch: Tensor | None = None, num_nodes: int | None = None, *,
                    edge_weight: Tensor | None = None, max_nodes: int | None = None,
                    dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Padded adjacency ``(B, N, N)`` and sizes ``(B,)`` from the PyTorch Geometric layout.

    Parameters
    ----------
    edge_index : Tensor
        ``(2, E)`` integer node indices into all ``V`` nodes of the batch; an undirected edge is
        stored in both directions (as PyG and DGL store it).
    batch : Tensor, optional
        ``(V,)`` graph index of each node, non-decreasing (nodes of one graph are contiguous, as in a
        PyG ``Batch``). None: all nodes form one graph.
    num_nodes : int, optional
        ``V``, the number of nodes (default ``len(batch)``, or the largest index in ``edge_index`` + 1
        without ``batch``); a value that disagrees with ``batch`` is an error.
    edge_weight : Tensor, optional
        ``(E,)`` weights (default 1).
    max_nodes : int, optional
        Padded size ``N`` (default: the largest graph).

    Examples
    --------
    >>> edge_index = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])  # a path, then an edge
    >>> A, num_nodes = from_edge_index(edge_index, torch.tensor([0, 0, 0, 1, 1]))
    >>> num_nodes.tolist(), A[1, :2, :2].tolist()
    ([3, 2], [[0.0, 1.0], [1.0, 0.0]])
    """
    edge_index = torch.as_tensor(edge_index)
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    edge_index = edge_index.long()
    largest = int(edge_index.max()) + 1 if edge_index.numel() else 0
    if batch is None:
        total = largest if num_nodes is None else int(num_nodes)
        batch = torch.zeros(total, dtype=torch.long, device=edge_index.device)
    else:
        batch = torch.as_tensor(batch, device=edge_index.device).long()
        if batch.dim() != 1:
            raise ValueError(f"batch must have shape (V,), got {tuple(batch.shape)}")
        if num_nodes is not None and int(num_nodes) != batch.shape[0]:
            raise ValueError(f"num_nodes={num_nodes} but batch names {batch.shape[0]} nodes")
        if batch.numel() and bool((batch[1:] < batch[:-1]).any()):
            raise ValueError("batch must be non-decreasing (the nodes of each graph contiguous, as in a PyG Batch); "
                             "sort the nodes by graph first")
    total = batch.shape[0]
    if total == 0:
        raise ValueError("expected at least one node")
    if largest > total:
        raise ValueError(f"edge_index names node {largest - 1} but there are only {total} nodes")
    if edge_index.numel() and int(edge_index.min()) < 0:
        raise ValueError("edge_index holds a negative node index")
    sizes = torch.bincount(batch, minlength=int(batch.max()) + 1)
    if bool((sizes == 0).any()):
        raise ValueError(f"graph {int((sizes == 0).nonzero()[0])} has no nodes (batch skips that index)")
    src, dst = edge_index
    if bool((batch[src] != batch[dst]).any()):
        e = int((batch[src] != batch[dst]).nonzero()[0])
        raise ValueError(f"edge {e} ({int(src[e])} → {int(dst[e])}) joins two different graphs")
    size = padded_size(int(sizes.max()), max_nodes)
    first = torch.cumsum(sizes, 0) - sizes  # (B,) global index of each graph's node 0
    graph = batch[src]
    w = torch.ones(src.shape[0], dtype=dtype, device=src.device) if edge_weight is None else \
        torch.as_tensor(edge_weight, device=src.device).to(dtype).reshape(-1)
    if w.shape[0] != src.shape[0]:
        raise ValueError(f"edge_weight has {w.shape[0]} entries for {src.shape[0]} edges")
    A = torch.zeros(sizes.shape[0], size, size, dtype=dtype, device=src.device)
    A.index_put_((graph, src - first[graph], dst - first[graph]), w, accumulate=True)
    return 0.5 * (A + A.mT), sizes
