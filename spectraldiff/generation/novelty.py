"""Novelty and uniqueness of generated graphs (exact isomorphism, with Weisfeiler–Lehman hashes to
skip pairs that cannot be isomorphic).

A generator that copies its training graphs reaches the train-vs-test MMD floor; these two numbers
say whether it does: ``novel`` is the fraction of generated graphs isomorphic to no training graph,
``unique`` the fraction of generated graphs isomorphic to no earlier generated graph.
:func:`fraction_vun` combines both with a family's validity (V.U.N., as SPECTRE and DiGress report):
the fraction of generated graphs that are valid, unique and novel at once.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import networkx as nx

__all__ = ["fraction_novel", "fraction_unique", "novel_flags", "unique_flags", "fraction_vun"]


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


def _same(graph: nx.Graph, other: nx.Graph) -> bool:
    # The same object or the same labelled graph needs no search: a copier's samples are exactly that,
    # and VF2 on two large symmetric graphs (grids) takes seconds.
    if other is graph:
        return True
    if graph.nodes == other.nodes and set(map(frozenset, graph.edges)) == set(map(frozenset, other.edges)):
        return True
    return nx.is_isomorphic(graph, other)


def _in(graph: nx.Graph, bucket: list[nx.Graph]) -> bool:
    return any(_same(graph, other) for other in bucket)


def novel_flags(generated: Sequence[nx.Graph], train: Sequence[nx.Graph]) -> list[bool]:
    """Per generated graph: True where it is isomorphic to no graph of ``train``."""
    index = _index(train)
    return [not _in(g, index.get(_hash(g), [])) for g in generated]


def unique_flags(generated: Sequence[nx.Graph]) -> list[bool]:
    """Per generated graph: True where it is isomorphic to no earlier graph of the list (the first of
    each isomorphism class counts as unique)."""
    seen: dict[str, list[nx.Graph]] = {}
    flags = []
    for g in generated:
        bucket = seen.setdefault(_hash(g), [])
        flags.append(not _in(g, bucket))
        if flags[-1]:
            bucket.append(g)
    return flags


def fraction_novel(generated: Sequence[nx.Graph], train: Sequence[nx.Graph]) -> float:
    """Fraction of ``generated`` graphs not isomorphic to any graph of ``train``."""
    if not generated:
        raise ValueError("generated is empty")
    return sum(novel_flags(generated, train)) / len(generated)


def fraction_unique(generated: Sequence[nx.Graph]) -> float:
    """Fraction of ``generated`` graphs not isomorphic to an earlier graph of the list."""
    if not generated:
        raise ValueError("generated is empty")
    return sum(unique_flags(generated)) / len(generated)


def fraction_vun(generated: Sequence[nx.Graph], train: Sequence[nx.Graph],
                 valid: Sequence[bool] | None = None) -> float:
    """Fraction of ``generated`` graphs that are valid, unique and novel at once (V.U.N.).

    ``valid`` holds one flag per generated graph (:func:`spectraldiff.generation.validity.valid_flags`);
    None (a family without validity) counts every graph valid, leaving "unique and novel". As in
    SPECTRE's evaluation, a graph is unique when no earlier sample is isomorphic to it, so a class
    drawn twice counts once.
    """
    if not generated:
        raise ValueError("generated is empty")
    valid = [True] * len(generated) if valid is None else list(valid)
    if len(valid) != len(generated):
        raise ValueError(f"valid has {len(valid)} flags for {len(generated)} generated graphs")
    flags = zip(valid, unique_flags(generated), novel_flags(generated, train))
    return sum(all(f) for f in flags) / len(generated)
