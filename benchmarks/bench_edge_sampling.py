"""Cost of turning decoded edge probabilities into edges, per rule of ``edge_sampling``.

``degree`` visits every pair of every graph in a Python loop (Gumbel-sorted, then accepted while both
nodes have budget left), so its cost grows with ``N²`` per sample; ``degree+triangles``
(``triangle_bonus 6``) keeps the pairs in a heap and re-keys a pair for each two-path an accepted edge
opens, so it also grows with the squared degrees; ``bernoulli`` is one vectorised comparison. All run
once per sample, after the reverse diffusion. The probabilities here are
SBM-like (blocks of 30 nodes, 0.3 inside, 0.05 between) on ENZYMES-sized (up to 125 nodes) and
SBM-sized (up to 200 nodes) graphs, 64 per call (``generate``'s ``sample_batch_size``); the figure
is ``extra_info["seconds_per_graph"]``.

Run with ``python -m pytest benchmarks/bench_edge_sampling.py --benchmark-columns=mean,stddev,rounds -s``.
"""

from __future__ import annotations

import platform

import pytest
import torch

from spectraldiff.generation.edge_sampling import sample_edges

GRAPHS_PER_CALL = 64
BLOCK = 30


def block_probabilities(num_graphs: int, nodes: int) -> torch.Tensor:
    """``(num_graphs, nodes, nodes)`` edge probabilities of a planted-block graph, zero diagonal."""
    block = torch.arange(nodes) // BLOCK
    p = torch.where(block[:, None] == block[None, :], torch.tensor(0.3), torch.tensor(0.05))
    return (p * (1 - torch.eye(nodes))).expand(num_graphs, nodes, nodes).clone()


@pytest.mark.parametrize("nodes", [125, 200])
@pytest.mark.parametrize("rule", ["bernoulli", "degree", "degree+triangles"])
def test_edge_sampling_seconds_per_graph(benchmark, rule, nodes):
    probabilities = block_probabilities(GRAPHS_PER_CALL, nodes)
    how, bonus = ("degree", 6.0) if rule == "degree+triangles" else (rule, 0.0)

    def draw():
        return sample_edges(probabilities, how, generator=torch.Generator().manual_seed(0), triangle_bonus=bonus)

    adjacency = benchmark.pedantic(draw, rounds=3, iterations=1, warmup_rounds=1)
    assert torch.equal(adjacency, adjacency.mT)
    benchmark.extra_info.update({"seconds_per_graph": benchmark.stats.stats.mean / GRAPHS_PER_CALL,
                                 "nodes": nodes, "graphs_per_call": GRAPHS_PER_CALL,
                                 "torch_threads": torch.get_num_threads(), "machine": platform.machine()})
    print(f"\n{rule}, {nodes} nodes: {benchmark.stats.stats.mean / GRAPHS_PER_CALL * 1e3:.2f} ms per graph")
