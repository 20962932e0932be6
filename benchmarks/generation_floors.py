"""Reference rows for docs/generation.md: what copying training graphs scores.

* ``train vs test``: the 80 training graphs against the 20 test graphs (the floor any generator can
  reach, up to sampling noise);
* ``copy 20``: 20 training graphs drawn uniformly with replacement, with the same draws as the
  generators' node-count sampler for sampling seed ``k + 1`` (``torch.randint(0, 80, (20,))``) — what a
  generator that returns its source training graph unchanged scores;
* ``copy 20 stratified``: the same with ``NodeCountSampler.sample_stratified`` (``--node-counts
  stratified`` of the generators), whose 20 sizes follow the training histogram;
* ``spectrum RMSE, leave one out``: for each training graph, the RMS distance from its adjacency
  spectrum to the nearest other training spectrum of the same size (the natural spread that the
  generators' ``spectrum_rmse`` compares with);
* ``generator train vs test``: the same split of 100 graphs from the package generator, for each of
  ``--data-seeds`` (mean ± std), to compare the published set with the family it was drawn from.

* ``copy floor over N samples`` (issue 17, every dataset): ``--num-samples`` (default 256) training
  graphs drawn with replacement as "samples" with seed ``k + 1`` for each of ``--seeds``
  (:func:`spectraldiff.generation.copy_floor`, the draw of the generators' iid node-count sampler)
  and scored like a generator: the four MMDs against the test set, validity (planar, sbm), unique,
  novel, V.U.N.; mean ± std over the seeds, and a markdown table row per dataset.

Reads ``../shared/data/graphs`` (community_small, grid, enzymes); ``planar`` and ``sbm`` have no
published file and come from the package generators (200 graphs, data seed ``--data-seed``), split
the same way (first 20 % test). ``--copy-floor-only`` skips the older rows; without it a dataset whose
published file is absent is skipped.

Usage::

    python benchmarks/generation_floors.py --seeds 0 1 2 --out runs/generation/floors.json
    python benchmarks/generation_floors.py --copy-floor-only --num-samples 256 --seeds 0 1 2 \
        --dataset community_small grid enzymes planar sbm --out runs/generation/copy_floors.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from spectraldiff import batched_eigh
from spectraldiff.generation import NodeCountSampler, copy_floor, graphs_to_dense, nearest_spectrum_rmse
from spectraldiff.generation.datasets import get_generator, load_graphs, published_graphs_path, split_graphs
from spectraldiff.generation.evaluation import SCORE_KEYS
from spectraldiff.generation.metrics import evaluate_graphs

KEYS = ("degree", "clustering", "orbit", "spectral", "average")
#: Graphs drawn from the package generator for the families without a published file (SPECTRE's count).
GENERATED_NUM_GRAPHS = 200


def mean_std(rows: list[dict], keys) -> dict:
    """``{key: {"mean", "std"}}`` over rows (None where a key is None, e.g. validity without a rule)."""
    out = {}
    for k in keys:
        values = [r[k] for r in rows]
        if any(v is None for v in values):
            out[k] = None
            continue
        out[k] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return out


def copy_floor_rows(dataset: str, train, test, num_samples: int, seeds) -> dict:
    """The copy floor over ``num_samples`` for each seed (draw seed ``k + 1``), and mean ± std."""
    rows = [copy_floor(train, test, num_samples, seed=seed + 1, family=dataset) for seed in seeds]
    return {"per_seed": rows, "summary": mean_std(rows, SCORE_KEYS), "num_samples": num_samples,
            "seeds": list(seeds), "num_train": len(train), "num_test": len(test)}


def markdown_row(dataset: str, floor: dict) -> str:
    def cell(key, digits=4):
        v = floor["summary"][key]
        return "–" if v is None else f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f}"

    return (f"| {dataset} | {floor['num_train']} / {floor['num_test']} | {floor['num_samples']} | "
            + " | ".join(cell(k) for k in KEYS) + " | "
            + " | ".join(cell(k, 3) for k in ("valid", "unique", "novel", "vun")) + " |")


def leave_one_out_spectrum_rmse(graphs) -> float:
    """Mean over graphs with a same-size partner of the RMS distance to the nearest partner's spectrum."""
    A, sizes = graphs_to_dense(graphs, dtype=torch.float64)
    eigenvalues, _ = batched_eigh(A, sizes)
    nearest = nearest_spectrum_rmse(eigenvalues, sizes, eigenvalues, sizes, exclude_self=True)
    return float(nearest[torch.isfinite(nearest)].mean())

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", default=["community_small", "grid"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data-seeds", nargs="+", type=int, default=list(range(8)))
    parser.add_argument("--skip-generator", action="store_true", help="skip the package-generator rows")
    parser.add_argument("--num-samples", type=int, default=256, help="copies per copy-floor draw (default 256)")
    parser.add_argument("--copy-floor-only", action="store_true", help="only the copy floors over --num-samples")
    parser.add_argument("--data-seed", type=int, default=0, help="data seed of planar and sbm (default 0)")
    parser.add_argument("--out", default="runs/generation/floors.json")
    args = parser.parse_args(argv)
    results, table = {}, []
    for dataset in args.dataset:
        path = published_graphs_path(dataset)
        if path is None and (dataset not in ("planar", "sbm") or not args.copy_floor_only):
            print(f"skipping {dataset}: ../shared/data/graphs/{dataset}.json is not present")
            continue
        if path is None:
            graphs, source = get_generator(dataset)(GENERATED_NUM_GRAPHS, args.data_seed), \
                f"package generator, {GENERATED_NUM_GRAPHS} graphs, data seed {args.data_seed}"
        else:
            graphs, source = load_graphs(path), str(path)
        train, test = split_graphs(graphs)
        floor_rows = copy_floor_rows(dataset, train, test, args.num_samples, args.seeds)
        table.append(markdown_row(dataset, floor_rows))
        print(f"{dataset} ({source}): copy floor over {args.num_samples} samples, draw seeds "
              f"{[k + 1 for k in args.seeds]}: " + ", ".join(
                  f"{k} {v['mean']:.4f} ± {v['std']:.4f}" for k, v in floor_rows["summary"].items() if v is not None))
        if args.copy_floor_only:
            results[dataset] = {"copy_floor": floor_rows, "data_source": source}
            continue
        floor = evaluate_graphs(test, train)
        sampler = NodeCountSampler([g.number_of_nodes() for g in train])
        copy_stats = {}
        for scheme, draw in (("iid", sampler.sample), ("stratified", sampler.sample_stratified)):
            copies = []
            for seed in args.seeds:
                indices, _ = draw(len(test), torch.Generator().manual_seed(seed + 1))
                copies.append(evaluate_graphs(test, [train[i] for i in indices.tolist()]))
            copy_stats[scheme] = {k: {"mean": statistics.mean(c[k] for c in copies),
                                      "std": statistics.stdev(c[k] for c in copies) if len(copies) > 1 else 0.0}
                                  for k in KEYS}
        generated = []
        for data_seed in [] if args.skip_generator else args.data_seeds:
            gen_train, gen_test = split_graphs(get_generator(dataset)(100, data_seed))
            generated.append(evaluate_graphs(gen_test, gen_train))
        generated_stats = {k: {"mean": statistics.mean(g[k] for g in generated),
                               "std": statistics.stdev(g[k] for g in generated) if len(generated) > 1 else 0.0}
                           for k in KEYS} if generated else None
        results[dataset] = {"copy_floor": floor_rows, "data_source": source,
                            "train_vs_test": floor, "copy_20": copy_stats["iid"],
                            "copy_20_stratified": copy_stats["stratified"], "copy_20_seeds": args.seeds,
                            "spectrum_rmse_leave_one_out": leave_one_out_spectrum_rmse(train),
                            "generator_train_vs_test": generated_stats, "data_seeds": args.data_seeds}
        print(f"{dataset}: train vs test " + ", ".join(f"{k} {floor[k]:.4f}" for k in KEYS))
        print(f"{dataset}: spectrum RMSE to the nearest other same-size training graph "
              f"{results[dataset]['spectrum_rmse_leave_one_out']:.4f}")
        for scheme, stats in copy_stats.items():
            print(f"{dataset}: copy 20, {scheme} (seeds {args.seeds}) "
                  + ", ".join(f"{k} {stats[k]['mean']:.4f} ± {stats[k]['std']:.4f}" for k in KEYS))
        if generated_stats:
            print(f"{dataset}: package generator train vs test (data seeds {args.data_seeds}) "
                  + ", ".join(f"{k} {generated_stats[k]['mean']:.4f} ± {generated_stats[k]['std']:.4f}" for k in KEYS))
    if table:
        print("\n| dataset | train / test | samples | degree | clustering | orbit | spectral | average | valid | "
              "unique | novel | V.U.N. |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(table))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
