"""Posterior samples against the posterior mean on the Gaussian yardstick (issue 14, docs/results.md).

GSDNet is trained once per seed and read two ways with the same weights: its default inference (the
denoised estimate at ``denoise_time``) and the paper's reverse SDE to ``t ≈ 0`` (a sample), the latter
averaged over K recoveries (:meth:`mer.TrainedModel.recover`). With exact posterior samples the
average of K has ``(1 + 1/K)`` times the floor of the information seen; the printed floors (a) and (b)
are the yardstick's. One JSON line per seed.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/posterior_samples.py --rate 0.3 --seeds 1 2 \\
        --kwargs '{"speaker_context": false}'
"""

from __future__ import annotations

import argparse
import json

import torch

import mer
from mer.data import gaussian_conversations, recovery_floor


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 4, 16], metavar="K")
    parser.add_argument("--kwargs", type=json.loads, default={}, help="GSDNet keywords, as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    dataset = gaussian_conversations(seed=0)
    for seed in args.seeds:
        trained = mer.train(dataset, recoverer="gsdnet", masks=args.rate, seed=seed, recoverer_kwargs=args.kwargs,
                            config={"train": {"epochs": args.epochs}})
        denoised = trained.recover(dataset, "test")
        masks = [denoised["availability"][a:b] for a, b in _bounds(dataset)]
        row = {"kwargs": args.kwargs, "seed": seed, "rate": args.rate,
               "floor_a": recovery_floor(dataset, masks, "test", info="utterance"),
               "floor_b": recovery_floor(dataset, masks, "test", info="conversation"),
               "denoised": denoised["recovery_mse"]}
        trained.model.recoverer.inference = "reverse_sde"  # the same weights, read by Eq. 16
        for k in args.samples:
            row[f"sample_mean_K{k}"] = trained.recover(dataset, "test", samples=k)["recovery_mse"]
        print(json.dumps(row), flush=True)


def _bounds(dataset) -> list[tuple[int, int]]:
    """Row ranges of each test conversation in the stacked per-utterance arrays."""
    out, start = [], 0
    for conversation in dataset.split("test"):
        out.append((start, start + conversation.num_utterances))
        start += conversation.num_utterances
    return out


if __name__ == "__main__":
    main()
