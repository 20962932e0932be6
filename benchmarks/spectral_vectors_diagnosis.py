"""Where the ``spectral_vectors`` generator loses SBM validity: eigenvectors, sampler or decoder.

An SBM graph's smallest normalised-Laplacian eigenvectors are nearly constant on each block, so the
rows of the ``c`` eigenvectors with small eigenvalue sit in ``c`` tight clusters. This script measures
how tight, on training graphs and on generated eigenpairs, and what the model's own edge decoder
makes of each:

* ``separation``: k-means (``c`` = eigenvalues below 0.2, at least 2; best of 5 starts) on the rows
  of those eigenvectors (rows scaled by ``√n``); the within-cluster RMS distance divided by the
  smallest distance between cluster centres, median over graphs. Small is clean blocks.
* ``tweedie t``: the same for the score network's one-step estimate ``x̂_0`` from training
  eigenpairs noised to time ``t`` (and for the noised input itself): how much of the noise the
  network removes where blocks form.
* ``decoder``: Bernoulli graphs from the decoder fed clean training eigenpairs, and fed generated
  ones: fraction passing the SBM test, connected fraction, mean edges; and, on the generated graphs,
  the median within- and between-block edge density of the recovered blocks (the test wants 0.3 and
  0.005).

Usage (trains like ``generate --config CFG --dataset sbm --seed S`` and saves the model, or reads a
saved one: the ``model.pt`` of any ``generate`` run or of ``--save``, read without running code; its
training graphs are its config's dataset, or ``--data FILE`` for user graphs)::

    python benchmarks/spectral_vectors_diagnosis.py --config sbm.yaml --seed 0 --save runs/sbm_s0.pt
    python benchmarks/spectral_vectors_diagnosis.py --model runs/sbm_s0.pt
    python benchmarks/spectral_vectors_diagnosis.py --model runs/sbm_1600/model.pt
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spectraldiff.generation import GenerationConfig, load_generator  # noqa: E402
from spectraldiff.generation.checkpoint import read_checkpoint  # noqa: E402
from spectraldiff.generation.cli import load_dataset  # noqa: E402
from spectraldiff.generation.datasets import split_graphs  # noqa: E402
from spectraldiff.generation.edge_sampling import sample_edges  # noqa: E402
from spectraldiff.generation.pipeline import train_model  # noqa: E402
from spectraldiff.generation.validity import _block_counts, _labels, fraction_valid, recover_blocks  # noqa: E402
from spectraldiff.noising import perturb  # noqa: E402

#: Eigenvalues below this belong to the block eigenvectors (SBM: p_out / p_in ≈ 0.02 per block).
BLOCK_EIGENVALUE = 0.2


def block_separation(rows: np.ndarray, eigenvalues: np.ndarray) -> float:
    """Within-cluster RMS / smallest centre distance of the k-means clusters of the block eigenvectors'
    rows. ``rows`` ``(n, k)``, ``eigenvalues`` ``(k,)``."""
    from scipy.cluster.vq import kmeans2

    c = max(2, int((eigenvalues < BLOCK_EIGENVALUE).sum()))
    X = rows[:, :c].astype(np.float64)
    best = np.inf
    for seed in range(5):
        centres, labels = kmeans2(X, c, seed=seed, minit="++")
        within = np.sqrt(((X - centres[labels]) ** 2).sum(axis=1).mean())
        apart = min(np.linalg.norm(centres[a] - centres[b]) for a in range(c) for b in range(a + 1, c))
        if apart > 0:
            best = min(best, within / apart)
    return float(best)


def median_separation(U, eigenvalues, sizes) -> float:
    return statistics.median(block_separation(U[i, :int(sizes[i])].numpy(), eigenvalues[i].numpy())
                             for i in range(len(sizes)))


def block_densities(graph: nx.Graph) -> tuple[float, float]:
    """Edge density inside and between the recovered blocks (the counts the SBM test uses)."""
    blocks = recover_blocks(graph)
    _, edges, pairs = _block_counts(*_labels(graph, blocks), len(blocks))
    inside, between = np.diag_indices(len(blocks)), np.triu_indices(len(blocks), 1)
    return (float(edges[inside].sum() / max(1.0, pairs[inside].sum())),
            float(edges[between].sum() / max(1.0, pairs[between].sum())))


def describe(graphs: list[nx.Graph]) -> str:
    connected = np.mean([nx.is_connected(g) for g in graphs])
    edges = np.mean([g.number_of_edges() for g in graphs])
    return f"valid {fraction_valid(graphs, 'sbm'):.3f}, connected {connected:.2f}, edges {edges:.0f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a saved model: a generate run's model.pt, or --save's")
    parser.add_argument("--data", help="the --model's training graphs when they are user graphs (the file given "
                                       "to generate --graphs); default: its config's dataset")
    parser.add_argument("--config", help="GenerationConfig YAML/JSON to train with (dataset sbm)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="where to save the trained model")
    parser.add_argument("--graphs", type=int, default=32, help="training graphs and samples measured")
    parser.add_argument("--times", type=float, nargs="*", default=[0.05, 0.1, 0.2, 0.3])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.model:
        dataset = read_checkpoint(args.model)["config"]["dataset"]
        train, _ = split_graphs(load_dataset(dataset, args.data)[0])
        model = load_generator(args.model, train)
    else:
        train, _ = split_graphs(load_dataset("sbm")[0])
        settings = yaml.safe_load(Path(args.config).read_text()) if args.config else {"model": "spectral_vectors"}
        config = GenerationConfig.from_dict({**settings, "dataset": "sbm", "seed": args.seed})
        model, record = train_model(config, train)
        print(f"trained in {record['training_seconds']:.0f} s")
        if args.save:
            model.save(args.save)
    B = min(args.graphs, model._num_train())
    clean = model.training_batch(torch.arange(B), torch.Generator().manual_seed(0))
    values = model.eigenvalues[:B]
    print(f"separation: training {median_separation(clean['eigenvectors'], values, model.sizes[:B]):.3f}", end="")
    sampled = model.sample_weighted(B, generator=torch.Generator().manual_seed(args.seed + 1))
    scaled = sampled["eigenvectors"] * model._row_scale(sampled["sizes"])
    print(f", generated {median_separation(scaled, sampled['eigenvalues'], sampled['sizes']):.3f}")

    network, sde = model.sampling_network()["score"], model.sde
    nodes, slots = clean["node_mask"], clean["slot_mask"]
    masks = model._state_masks(nodes, slots)
    for time in args.times:
        t = torch.full((B,), time)
        draw = torch.Generator().manual_seed(1)
        noisy = {key: perturb(clean[key], t, sde, masks[key], generator=draw)[0]
                 for key in ("eigenvectors", "eigenvalues")}
        with torch.no_grad():
            noise, _ = network(noisy["eigenvectors"], noisy["eigenvalues"], t, nodes, slots)
        estimate = sde.data_from_noise(noise, noisy["eigenvectors"], t)
        mean, std = sde.marginal_prob(torch.ones(1), t[:1])
        print(f"tweedie t={time} (noise/signal {float(std / mean):.2f}): noised "
              f"{median_separation(noisy['eigenvectors'] / mean, values, model.sizes[:B]):.3f}, "
              f"estimate {median_separation(estimate, values, model.sizes[:B]):.3f}")

    with torch.no_grad():
        probabilities = model.decode(clean["eigenvectors"], clean["eigenvalues"], nodes, slots)
    adjacency = sample_edges(probabilities, model.config.edge_sampling, generator=torch.Generator().manual_seed(2))
    rebuilt = model.to_graphs({"adjacency": adjacency,
                               "sizes": model.sizes[:B]})
    generated = model.to_graphs(sampled)
    densities = [block_densities(g) for g in generated]
    print(f"decoder on clean training eigenpairs: {describe(rebuilt)}")
    print(f"decoder on generated eigenpairs: {describe(generated)}; block densities inside "
          f"{statistics.median(d[0] for d in densities):.3f}, between {statistics.median(d[1] for d in densities):.4f}")


if __name__ == "__main__":
    main()
