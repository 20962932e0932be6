"""Sampling time per graph of the spectral generator and the adjacency-space baseline.

The models run at ``generate``'s default widths (on grid the spectral MLP is narrowed to 64, as in
``generation_grid.py``): the eigenvalue models have about the baseline's parameter count, spectral_vectors
at width 64 about 30 % fewer (85k against 117k on community_small). All sample with the same SDE, sampler
and number of steps; what differs is the state: ``n`` eigenvalues per graph versus ``n (n − 1) / 2``
adjacency entries, and the network that reads it (``spectral`` is the default MLP over the padded
spectrum, ``spectral-transformer`` the self-attention eigenvalue network; ``spectral-vectors`` diffuses
``k`` eigenvectors and eigenvalues and decodes edges, in the configurations of docs/generation.md:
``k = 4`` and two decoder blocks on community_small, ``k = 8`` and none on grid). Training quality
does not change the cost of a step, so each model is trained for one epoch only. The figure is wall time per generated graph (reverse
diffusion, reconstruction and thresholding), in ``extra_info["seconds_per_graph"]``. ``runtime``
``compiled`` is what the package does (the adjacency and spectral_vectors networks run as TorchScript
while sampling, :meth:`GraphGenerator.compiled`); ``eager`` runs the same weights as plain modules,
to show what compiling buys.

Run with ``python -m pytest benchmarks/bench_generation_sampling.py --benchmark-columns=mean,stddev,rounds -s``.
Torch runs on ``SPECTRALDIFF_BENCH_THREADS`` threads (default 1: on a shared 2-core machine torch's
intra-op threads make these small per-step workloads erratic; 0 keeps torch's own choice).
Graph sizes: community_small 12–20 nodes, grid 100–361 nodes (package generators, so the benchmark
runs without ``../shared``).
"""

from __future__ import annotations

import os
import platform

import pytest
import torch

from spectraldiff.generation import GenerationConfig, get_model
from spectraldiff.generation.cli import default_hidden_dim
from spectraldiff.generation.datasets import get_generator

CASES = {
    # dataset: (training graphs, graphs per sampling round)
    "community_small": (32, 20),
    "grid": (8, 2),
}

#: (model name, spectral network) of each benchmarked variant.
VARIANTS = {"spectral": ("spectral", "mlp"), "spectral-transformer": ("spectral", "transformer"),
            "spectral-vectors": ("spectral_vectors", "mlp"), "spectral-vectors-32": ("spectral_vectors", "mlp"),
            "adjacency": ("adjacency", "mlp")}

#: The spectral_vectors settings of docs/generation.md (community_small; sbm and enzymes for grid).
VECTOR_SETTINGS = {
    "community_small": dict(num_eigenvectors=4, decoder_dim=32, decoder_layers=2, edge_sampling="bernoulli"),
    "grid": dict(num_eigenvectors=8, decoder_dim=32, decoder_layers=0, edge_sampling="bernoulli"),
}

#: Widths other than ``generate``'s default, to keep parameter counts comparable (see generation_grid.py);
#: ``spectral-vectors-32`` is the spectral_vectors network at half its width (``hidden_dim 32``: a step
#: is mostly its per-node MLPs, ``O(n d²)``; docs/generation.md measures what the width costs in MMD).
WIDTHS = {("grid", "spectral"): 64, ("community_small", "spectral-vectors-32"): 32, ("grid", "spectral-vectors-32"): 32}


@pytest.fixture(scope="module", autouse=True)
def threads():
    requested = int(os.environ.get("SPECTRALDIFF_BENCH_THREADS", "1"))
    previous = torch.get_num_threads()
    if requested > 0:
        torch.set_num_threads(requested)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def trained():
    cache = {}

    def get(dataset: str, variant: str):
        if (dataset, variant) not in cache:
            torch.manual_seed(0)
            graphs = get_generator(dataset)(CASES[dataset][0], 0)
            model, network = VARIANTS[variant]
            width = WIDTHS.get((dataset, variant), default_hidden_dim(model, network))
            extra = VECTOR_SETTINGS[dataset] if model == "spectral_vectors" else {}
            config = GenerationConfig(dataset=dataset, model=model, epochs=1, batch_size=4, hidden_dim=width,
                                      spectral_network=network, **extra)
            generator = get_model(model, config)
            generator.fit(graphs)
            cache[dataset, variant] = generator
        return cache[dataset, variant]

    return get


@pytest.mark.parametrize("runtime", ["compiled", "eager"])
@pytest.mark.parametrize("steps", [50, 100])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dataset", list(CASES))
def test_sampling_seconds_per_graph(benchmark, trained, monkeypatch, dataset, variant, steps, runtime):
    generator = trained(dataset, variant)
    if runtime == "eager":
        monkeypatch.setattr(type(generator), "compiled", lambda self, module: module)
    num_graphs = CASES[dataset][1]

    def sample():
        return generator.sample(num_graphs, steps=steps, generator=torch.Generator().manual_seed(0))

    # One warm-up round: compiling (once per network, 0.1–0.4 s) and TorchScript's first profiling runs
    # are not part of the steady per-graph cost.
    graphs = benchmark.pedantic(sample, rounds=3, iterations=1, warmup_rounds=1)
    assert len(graphs) == num_graphs
    benchmark.extra_info.update({
        "seconds_per_graph": benchmark.stats.stats.mean / num_graphs,
        "graphs_per_round": num_graphs,
        "steps": steps,
        "runtime": runtime,
        "num_parameters": generator.num_parameters(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    })
    print(f"\n{dataset} {variant} {steps} steps {runtime}: "
          f"{benchmark.stats.stats.mean / num_graphs * 1e3:.1f} ms per graph "
          f"({torch.get_num_threads()} threads, {platform.machine()})")


@pytest.mark.parametrize("graphs_per_call", [20, 64, 256])
@pytest.mark.parametrize("variant", ["spectral-vectors", "spectral-vectors-32", "adjacency"])
def test_sampling_seconds_per_graph_by_batch(benchmark, trained, variant, graphs_per_call):
    """community_small at 50 steps, compiled, with 20, 64 (``generate``'s ``sample_batch_size``) and 256
    graphs per sampler call. On 12–20 nodes part of a spectral_vectors step is fixed per-call cost,
    which a larger batch shares (the rest is its per-node MLPs, hence ``spectral-vectors-32``); the
    adjacency model's cost grows with its ``n (n − 1) / 2`` pairs per graph. Compare the variants at
    the same ``graphs_per_call``."""
    generator = trained("community_small", variant)
    previous = generator.config.sample_batch_size
    generator.config.sample_batch_size = graphs_per_call  # one sampler call per round
    try:
        def sample():
            return generator.sample(graphs_per_call, steps=50, generator=torch.Generator().manual_seed(0))

        graphs = benchmark.pedantic(sample, rounds=3, iterations=1, warmup_rounds=1)
    finally:
        generator.config.sample_batch_size = previous
    assert len(graphs) == graphs_per_call
    benchmark.extra_info.update({"seconds_per_graph": benchmark.stats.stats.mean / graphs_per_call,
                                 "graphs_per_call": graphs_per_call, "steps": 50,
                                 "torch_threads": torch.get_num_threads(), "machine": platform.machine()})
    print(f"\ncommunity_small {variant} 50 steps, {graphs_per_call} graphs per call: "
          f"{benchmark.stats.stats.mean / graphs_per_call * 1e3:.2f} ms per graph")
