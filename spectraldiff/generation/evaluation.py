"""The score card of a set of generated graphs, and what copying training graphs scores on it.

:func:`evaluate_samples` is the one evaluation every generator goes through (the ``generate``
pipeline, the benchmarks, a user's own model): the four MMDs against the test set
(:mod:`.metrics`), uniqueness and novelty by isomorphism (:mod:`.novelty`), validity where the family
defines it (:mod:`.validity`) and V.U.N.

:func:`copy_floor` draws training graphs as "samples" (same count as a generator's sample set) and
scores them the same way: a memorising generator's row. MMDs over few samples cannot tell a
generator from a copier (issue 17: 40 copies scored 0.017–0.046), so every table shows this row
beside the generators, over at least :data:`MIN_SAMPLES` samples.

Example
-------
>>> from spectraldiff.generation.datasets import planar, split_graphs
>>> train, test = split_graphs(planar(20, seed=0))
>>> floor = copy_floor(train, test, num_samples=8, seed=0, family="planar", metrics=("degree",))
>>> floor["valid"], floor["novel"]
(1.0, 0.0)
"""

from __future__ import annotations

from typing import Sequence

import networkx as nx
import torch

from .metrics import METRICS, evaluate_graphs
from .novelty import novel_flags, unique_flags
from .validity import valid_flags

__all__ = ["evaluate_samples", "copy_floor", "draw_copies", "MIN_SAMPLES", "SCORE_KEYS"]

#: The sample count issue 17 asks for: fewer samples leave MMDs too noisy to rank generators.
MIN_SAMPLES = 256

#: Keys of :func:`evaluate_samples` that hold scores (None where undefined).
SCORE_KEYS = ("degree", "clustering", "orbit", "spectral", "average", "valid", "unique", "novel", "vun")


def evaluate_samples(samples: Sequence[nx.Graph], train_graphs: Sequence[nx.Graph],
                     test_graphs: Sequence[nx.Graph], *, family: str | None = None,
                     metrics: Sequence[str] = tuple(METRICS)) -> dict:
    """Score generated graphs.

    Parameters
    ----------
    samples, train_graphs, test_graphs : lists of networkx.Graph
        The generated graphs, the graphs the generator was trained on (for novelty) and the
        reference set of the MMDs.
    family : str, optional
        Dataset family (``"planar"``, ``"sbm"``, ...); its validity rule
        (:func:`spectraldiff.generation.validity.get_validity`) applies where it has one.
    metrics : sequence of str
        MMDs to compute (default all four; ``"average"`` needs degree, clustering and orbit).

    Returns
    -------
    dict
        The MMDs and ``average``; ``valid`` (fraction, None without a rule), ``unique``, ``novel``,
        ``vun`` (valid and unique and novel; unique and novel without a rule); ``num_samples``,
        ``family``.
    """
    samples = list(samples)
    if not samples:
        raise ValueError("samples is empty")
    valid = valid_flags(samples, family)
    unique, novel = unique_flags(samples), novel_flags(samples, list(train_graphs))
    return {
        **evaluate_graphs(list(test_graphs), samples, metrics),
        "valid": None if valid is None else sum(valid) / len(samples),
        "unique": sum(unique) / len(samples),
        "novel": sum(novel) / len(samples),
        "vun": sum(all(f) for f in zip(valid or unique, unique, novel)) / len(samples),  # as fraction_vun
        "num_samples": len(samples),
        "family": family,
    }


def draw_copies(train_graphs: Sequence[nx.Graph], num_samples: int, seed: int) -> list[nx.Graph]:
    """``num_samples`` training graphs drawn uniformly with replacement (``torch.randint`` under
    ``torch.Generator().manual_seed(seed)``: the draw of ``NodeCountSampler.sample``, so a copier
    with the generators' node-count sampler returns exactly these)."""
    if not train_graphs:
        raise ValueError("train_graphs is empty")
    if num_samples < 1:
        raise ValueError(f"num_samples must be ≥ 1, got {num_samples}")
    indices = torch.randint(0, len(train_graphs), (num_samples,), generator=torch.Generator().manual_seed(seed))
    return [train_graphs[i] for i in indices.tolist()]


def copy_floor(train_graphs: Sequence[nx.Graph], test_graphs: Sequence[nx.Graph], num_samples: int = MIN_SAMPLES,
               seed: int = 0, *, family: str | None = None, metrics: Sequence[str] = tuple(METRICS)) -> dict:
    """What memorising scores: :func:`draw_copies` scored by :func:`evaluate_samples` (same keys).

    Its ``novel`` and ``vun`` are 0 by construction and its ``unique`` is at most
    ``len(train_graphs) / num_samples``; its MMDs are the level below which a generator's MMDs say
    nothing about new graphs.
    """
    train_graphs = list(train_graphs)
    copies = draw_copies(train_graphs, num_samples, seed)
    return {**evaluate_samples(copies, train_graphs, test_graphs, family=family, metrics=metrics), "seed": seed}
