"""Novelty and uniqueness of generated graphs (exact isomorphism, with Weisfeiler–Lehman hashes to
skip pairs that cannot be isomorphic).

A generator that copies its training graphs reaches the train-vs-test MMD floor; these two numbers
say whether it does: ``novel`` is the fraction of generated graphs isomorphic to no training graph,
``unique`` the fraction of generated graphs isomorphic to no earlier generated graph.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import networkx as nx

__all__ = ["fraction_novel", "fraction_unique"]


def _hash(graph: nx.Graph) -> str:
    with warnings.catch_warnings():
        # networkx ≥ 3.5 warns that its hashes changed; only equality within one run matters here.
        warnings.simplefilter("ignore", UserWarning)
        return nx.weisfeiler_lehman_graph_hash(graph, iterations=3)


def _index(graphs: Sequence[nx.Graph]) -> dict[str, list[nx.Graph]]:
    buckets: dict[str, list[nx.Graph]] = {}
    for g in graphs:
        buckets.setdefault(_hash(g), []).append(g)
    return buckets


def _in(graph: nx.Graph, bucket: list[nx.Graph]) -> bool:
    return any(nx.is_isomorphic(graph, other) for other in bucket)


def fraction_novel(generated: Sequence[nx.Graph], train: Sequence[nx.Graph]) -> float:
    """Fraction of ``generated`` graphs not isomorphic to any graph of ``train``."""
    if not generated:
        raise ValueError("generated is empty")
    index = _index(train)
    return sum(not _in(g, index.get(_hash(g), [])) for g in generated) / len(generated)


def fraction_unique(generated: Sequence[nx.Graph]) -> float:
    """Fraction of ``generated`` graphs not isomorphic to an earlier graph of the list."""
    if not generated:
        raise ValueError("generated is empty")
    seen: dict[str, list[nx.Graph]] = {}
    unique = 0
    for g in generated:
        bucket = seen.setdefault(_hash(g), [])
        if not _in(g, bucket):
            unique += 1
            bucket.append(g)
    return unique / len(generated)
