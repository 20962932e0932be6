"""The measurement grid of docs/generation.md: datasets × models × seeds × node-count schemes × steps.

Each (dataset, model, seed) is trained once, exactly as ``python -m spectraldiff generate`` trains it
(same config, same seeds), and then sampled under every requested node-count scheme and number of
steps; every cell is written as ``OUT/<dataset>/<model>/seed<k>/<scheme>/steps<S>/metrics.json`` in
the command's format, so a cell equals ``python -m spectraldiff generate --dataset D --model M --seed K
--node-counts C --steps S --epochs E ...``. Cells
already on disk are skipped, so an interrupted grid resumes. ``--summarise OUT`` prints the table
(mean ± std over seeds) and writes ``OUT/summary.md`` and ``OUT/summary.json``; ``--rescore OUT``
recomputes the MMDs of every cell from its saved samples.

The published sets are read from ``../shared/data/graphs`` next to the repository; without them the
grid says so and stops (measured numbers are only reported on the published data).

Usage::

    python benchmarks/generation_grid.py --dataset community_small --model spectral adjacency \\
        --seeds 0 1 2 --node-counts iid stratified --steps 50 100 200 1000 --threads 1 --out runs/generation
    python benchmarks/generation_grid.py --summarise runs/generation
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from spectraldiff.generation import GenerationConfig
from spectraldiff.generation.config import NODE_COUNT_SCHEMES, SPECTRAL_NETWORKS
from spectraldiff.generation.cli import default_hidden_dim
from spectraldiff.generation.pipeline import evaluate_model, train_model
from spectraldiff.generation.datasets import load_graphs, published_graphs_path, split_graphs
from spectraldiff.generation.metrics import evaluate_graphs
from spectraldiff.safe_pickle import load_pickle

#: Training settings per (dataset, model folder) used for docs/generation.md (everything else: the
#: ``generate`` defaults). On grid the spectral MLP is narrowed to 64 so that its 361-slot input and
#: output layers keep it at the adjacency model's size (99 991 against 116 953 parameters).
SETTINGS = {
    ("community_small", "spectral"): dict(epochs=300, batch_size=16),
    ("community_small", "spectral-transformer"): dict(epochs=300, batch_size=16),
    ("community_small", "adjacency"): dict(epochs=2000, batch_size=16),
    ("grid", "spectral"): dict(epochs=400, batch_size=8, sample_batch_size=20, hidden_dim=64),
    ("grid", "spectral-transformer"): dict(epochs=40, batch_size=8, sample_batch_size=20),
    ("grid", "adjacency"): dict(epochs=15, batch_size=4, sample_batch_size=10),
}

SUMMARY_KEYS = ("degree", "clustering", "orbit", "spectral", "average", "sampling_seconds_per_graph",
                "training_seconds", "novel")


def cell_dir(out: Path, dataset: str, model: str, seed: int, scheme: str, steps: int) -> Path:
    """``model`` names the folder: ``spectral`` (MLP), ``spectral-transformer`` or ``adjacency``."""
    return out / dataset / model / f"seed{seed}" / scheme / f"steps{steps}"


def model_folder(model: str, spectral_network: str) -> str:
    return model if model != "spectral" or spectral_network == "mlp" else f"spectral-{spectral_network}"


def run_grid(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    for dataset in args.dataset:
        path = published_graphs_path(dataset)
        if path is None:
            print(f"skipping {dataset}: the published set ../shared/data/graphs/{dataset}.json is not present")
            continue
        train, test = split_graphs(load_graphs(path))
        for model_name in args.model:
            folder = model_folder(model_name, args.spectral_network)
            for seed in args.seeds:
                todo = [(c, s) for c in args.node_counts for s in args.steps
                        if not (cell_dir(out, dataset, folder, seed, c, s) / "metrics.json").exists()]
                if not todo:
                    continue
                settings = {"hidden_dim": default_hidden_dim(model_name, args.spectral_network),
                            **SETTINGS[(dataset, folder)], **({"epochs": args.epochs} if args.epochs else {})}
                if model_name == "spectral":
                    settings["spectral_network"] = args.spectral_network
                config = GenerationConfig(dataset=dataset, model=model_name, seed=seed, steps=todo[0][1], **settings)
                start = time.perf_counter()
                model, training = train_model(config, train, progress=args.progress)
                print(f"{dataset} {model_name} seed {seed}: trained {config.epochs} epochs in "
                      f"{training['training_seconds']:.0f} s", flush=True)
                for scheme, steps in todo:
                    config.node_counts = scheme
                    results = evaluate_model(model, config, train, test, training,
                                             cell_dir(out, dataset, folder, seed, scheme, steps), steps=steps,
                                             data_source=f"published {dataset} set", progress=args.progress,
                                             figure=(steps == max(args.steps)))
                    print(f"  {scheme:10s} {steps:5d} steps: " + ", ".join(f"{k} {results[k]:.4f}" for k in SUMMARY_KEYS)
                          + f" ({time.perf_counter() - start:.0f} s so far)", flush=True)
    return 0


def summarise(out: Path) -> int:
    rows: dict[tuple[str, str, int], list[dict]] = {}
    for metrics_file in sorted(out.glob("*/*/seed*/*/steps*/metrics.json")):
        m = json.loads(metrics_file.read_text())
        label = m["model"] if m["model"] != "spectral" else f"spectral ({m['spectral_network']})"
        rows.setdefault((m["dataset"], label, m["node_counts"], m["steps"]), []).append(m)
    if not rows:
        print(f"no results under {out}")
        return 1

    def fmt(values: list[float], digits: int) -> str:
        """``mean ± std`` over seeds (the value alone for one seed); ``digits`` significant digits for the mean, 2 for the std."""
        if len(values) == 1:
            return f"{values[0]:.{digits}g}"
        return f"{statistics.mean(values):.{digits}g} ± {statistics.stdev(values):.2g}"

    def fmt_seconds(values: list[float]) -> str:
        if len(values) == 1:
            return f"{values[0]:.0f}"
        return f"{statistics.mean(values):.0f} ± {statistics.stdev(values):.0f}"

    header = ("| dataset | model | node counts | steps | seeds | degree | clustering | orbit | spectral "
              "| avg (deg/clu/orb) | novel | spectrum RMSE | s / graph | train s |")
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    summary = []
    for (dataset, model, scheme, steps), ms in sorted(rows.items()):
        seeds = sorted(m["seed"] for m in ms)
        col = {k: [m[k] for m in ms] for k in SUMMARY_KEYS}
        if all("spectrum_rmse" in m for m in ms):
            col["spectrum_rmse"] = [m["spectrum_rmse"] for m in ms]
        rmse = fmt(col["spectrum_rmse"], 3) if "spectrum_rmse" in col else "–"
        lines.append(
            f"| {dataset} | {model} | {scheme} | {steps} | {','.join(map(str, seeds))} | {fmt(col['degree'], 3)} | "
            f"{fmt(col['clustering'], 3)} | {fmt(col['orbit'], 3)} | {fmt(col['spectral'], 3)} | "
            f"**{fmt(col['average'], 3)}** | {fmt(col['novel'], 2)} | {rmse} | "
            f"{fmt(col['sampling_seconds_per_graph'], 3)} | {fmt_seconds(col['training_seconds'])} |"
        )
        summary.append({"dataset": dataset, "model": model, "node_counts": scheme, "steps": steps, "seeds": seeds,
                        **{k: {"mean": statistics.mean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0}
                           for k, v in col.items()}})
    table = "\n".join(lines)
    print(table)
    (out / "summary.md").write_text(table + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def rescore(out: Path) -> int:
    """Recompute the four MMDs of every cell under ``out`` from its ``samples.pkl`` (after a change to
    :mod:`spectraldiff.generation.metrics`); timings, novelty and the rest of ``metrics.json`` are kept."""
    tests = {}
    for metrics_file in sorted(out.glob("*/*/seed*/*/steps*/metrics.json")):
        m = json.loads(metrics_file.read_text())
        if m["dataset"] not in tests:
            tests[m["dataset"]] = split_graphs(load_graphs(published_graphs_path(m["dataset"])))[1]
        samples = load_pickle(metrics_file.parent / "samples.pkl", allow="graphs")
        m.update(evaluate_graphs(tests[m["dataset"]], samples))
        metrics_file.write_text(json.dumps(m, indent=2) + "\n")
        print(f"rescored {metrics_file.parent}: average {m['average']:.4f}, spectral {m['spectral']:.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", default=["community_small", "grid"])
    parser.add_argument("--model", nargs="+", default=["spectral", "adjacency"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", nargs="+", type=int, default=[50, 100, 200, 1000])
    parser.add_argument("--node-counts", nargs="+", choices=NODE_COUNT_SCHEMES, default=list(NODE_COUNT_SCHEMES))
    parser.add_argument("--spectral-network", choices=SPECTRAL_NETWORKS, default="mlp")
    parser.add_argument("--epochs", type=int, default=None, help="override the per-(dataset, model) epochs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier timings on a shared machine)")
    parser.add_argument("--out", default="runs/generation")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--summarise", metavar="OUT", default=None, help="only print the table of results under OUT")
    parser.add_argument("--rescore", metavar="OUT", default=None,
                        help="only recompute the MMDs of the cells under OUT from their samples.pkl")
    args = parser.parse_args(argv)
    if args.summarise:
        return summarise(Path(args.summarise))
    if args.rescore:
        return rescore(Path(args.rescore))
    return run_grid(args)


if __name__ == "__main__":
    sys.exit(main())
