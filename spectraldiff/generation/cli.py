"""``python -m spectraldiff generate``: train a graph generator and evaluate it with MMD.

Example::

    python -m spectraldiff generate --dataset community_small --model spectral \\
        --epochs 200 --steps 100 --seed 0 --out runs/cs_spectral

Data: ``--graphs PATH`` (a ``.json`` edge-list file, a ``.pkl`` list of ``networkx.Graph`` — read
by the restricted unpickler, which refuses anything but graphs, containers and NumPy values unless
``--trust-pickle`` is given — or a folder of edge lists); without it, the published
set ``../shared/data/graphs/<dataset>.json`` next to the repository when present, else the package
generator for ``--dataset`` (100 graphs, data seed 0), and the command says which. The published
split is used: the first 20% of the graphs are the test set.

Writes ``DIR/metrics.json`` (``degree``, ``clustering``, ``orbit``, ``spectral``, ``average``,
``sampling_seconds_per_graph``, ``training_seconds`` and a description of the run), ``DIR/config.json``,
``DIR/samples.png`` and ``DIR/samples.pkl``.
"""

from __future__ import annotations

import argparse
import json

import torch

from ..cli_errors import check_output_dir
from ..sampling import available_correctors, available_predictors
from ..sde import available_sdes
from .config import NODE_COUNT_SCHEMES, SPECTRAL_NETWORKS, GenerationConfig

__all__ = ["add_arguments", "run", "load_dataset", "default_hidden_dim", "DEFAULT_HIDDEN_DIM", "DATASETS", "MODELS"]

# Listed here so that building the parser imports no networkx; a test keeps them equal to the registries
# (spectraldiff.generation.datasets.available_generators, spectraldiff.generation.available_models).
DATASETS = ("community_small", "grid")
MODELS = ("adjacency", "spectral")

#: Widths that give the models about the same parameter count with 3 layers on community_small
#: (padded size 20): 117 981 spectral MLP, 113 410 spectral transformer, 116 953 adjacency. The
#: MLP's first and last layers grow with the padded size (``--hidden-dim 64`` gives 99 991 on the published grid set).
DEFAULT_HIDDEN_DIM = {"spectral": 120, "spectral/transformer": 64, "adjacency": 88}


def default_hidden_dim(model: str, spectral_network: str = "mlp") -> int:
    """The ``generate`` default width of ``model`` (for ``spectral``, of its ``spectral_network``)."""
    if model == "spectral" and spectral_network != "mlp":
        return DEFAULT_HIDDEN_DIM[f"spectral/{spectral_network}"]
    return DEFAULT_HIDDEN_DIM.get(model, GenerationConfig.hidden_dim)

#: Graphs drawn from the package generator when the published set is absent.
FALLBACK_NUM_GRAPHS = 100


def load_dataset(dataset: str, graphs_path: str | None = None, *, trust_pickle: bool = False) -> tuple[list, str]:
    """Graphs for a run and a sentence saying where they came from.

    ``trust_pickle`` lets a ``.pkl`` at ``graphs_path`` load with plain ``pickle.load`` (runs code from
    the file); without it the restricted unpickler reads it.
    """
    from .datasets import get_generator, load_graphs, published_graphs_path

    if graphs_path is not None:
        return load_graphs(graphs_path, trust_pickle=trust_pickle), f"user graphs from {graphs_path}"
    published = published_graphs_path(dataset)
    if published is not None:
        return load_graphs(published), f"published {dataset} set from {published}"
    graphs = get_generator(dataset)(FALLBACK_NUM_GRAPHS, 0)
    return graphs, (f"the published {dataset} set was not found (../shared/data/graphs); using the package "
                    f"generator instead: {FALLBACK_NUM_GRAPHS} graphs, data seed 0")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = GenerationConfig()
    parser.add_argument("--dataset", choices=DATASETS, default=defaults.dataset,
                        help="graph family (labels the run; the data when --graphs is not given)")
    parser.add_argument("--graphs", metavar="PATH", default=None,
                        help="graphs to use: .json edge lists, .pkl list of networkx graphs (read by a "
                             "restricted unpickler) or a folder of edge-list files")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="load a --graphs .pkl with plain pickle: only for files you trust, it lets the "
                             "file run code")
    parser.add_argument("--model", choices=MODELS, default=defaults.model)
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the training graphs")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="reverse-diffusion sampling steps")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate, help="Adam learning rate")
    parser.add_argument("--hidden-dim", type=int, default=None,
                        help=f"score network width (default per model: {DEFAULT_HIDDEN_DIM})")
    parser.add_argument("--num-layers", type=int, default=defaults.num_layers)
    parser.add_argument("--spectral-network", choices=SPECTRAL_NETWORKS, default=defaults.spectral_network,
                        help="eigenvalue network of the spectral model")
    parser.add_argument("--node-counts", choices=NODE_COUNT_SCHEMES, default=defaults.node_counts,
                        help="how sampled graphs draw their training graph (node count, and eigenvectors for the "
                             "spectral model): iid (the published protocol) or stratified (same marginal, sizes "
                             "of the sample set follow the training histogram)")
    parser.add_argument("--sde", choices=available_sdes(), default=defaults.sde)
    parser.add_argument("--predictor", choices=available_predictors(), default=defaults.predictor)
    parser.add_argument("--corrector", choices=available_correctors(), default=defaults.corrector)
    parser.add_argument("--num-samples", type=int, default=None, help="graphs to generate (default: test-set size)")
    parser.add_argument("--sample-batch-size", type=int, default=defaults.sample_batch_size)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def run(args: argparse.Namespace) -> int:
    try:
        from .datasets import split_graphs
        from .pipeline import run_generation
    except ImportError as error:
        raise SystemExit(f"the generate command needs networkx, scipy and matplotlib ({error}); "
                         "install them, e.g. pip install networkx scipy matplotlib") from error
    check_output_dir(args.out)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    config = GenerationConfig(
        dataset=args.dataset, model=args.model, epochs=args.epochs, steps=args.steps, seed=args.seed,
        batch_size=args.batch_size, learning_rate=args.lr,
        hidden_dim=args.hidden_dim or default_hidden_dim(args.model, args.spectral_network),
        num_layers=args.num_layers, spectral_network=args.spectral_network, sde=args.sde, predictor=args.predictor,
        corrector=args.corrector, num_samples=args.num_samples, node_counts=args.node_counts,
        sample_batch_size=args.sample_batch_size,
    )
    graphs, source = load_dataset(args.dataset, args.graphs, trust_pickle=args.trust_pickle)
    print(f"data: {source}")
    train, test = split_graphs(graphs)
    print(f"split: {len(train)} training graphs, {len(test)} test graphs (the first {len(test)})")
    results = run_generation(config, train, test, args.out, data_source=source, progress=not args.no_progress)
    summary = {k: round(results[k], 6) for k in ("degree", "clustering", "orbit", "spectral", "average")}
    print(json.dumps(summary))
    print(f"training {results['training_seconds']:.1f} s; sampling {results['sampling_seconds_per_graph'] * 1e3:.1f} ms "
          f"per graph at {config.steps} steps; results in {args.out}")
    return 0
