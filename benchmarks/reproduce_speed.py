"""What a paper's table costs: one training epoch and one evaluation of a recipe on data of CMU-MOSI's
shape and size (issue 15, ``docs/reproduce.md``).

The data are random per-clip sequences with MOSI's layout — 2,199 clips (1,284 train, 229 valid, 686
test), aligned, 50 steps, text 768, audio 5, vision 20 wide, real lengths drawn in [10, 50] — built in
memory, so the figure says what the recipe's model costs, not what a file's numbers are. The table's
cost follows: ``conditions × seeds × epochs × (epoch + validation)``; the script prints it for the
recipe's epoch cap (an upper bound: early stopping ends most runs sooner).

Usage::

    python benchmarks/reproduce_speed.py --recipe imder_mosi --threads 2
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from mer.data.conversation import Conversation, ConversationDataset
from mer.data.protocol import MaskPlan
from mer.reproduce import load_recipe
from mer.training.build import build_model
from mer.training.evaluation import evaluate_model
from mer.training.loop import train_epoch

#: CMU-MOSI in the MMSA release: clips per split, steps, widths.
MOSI_SPLITS = {"train": 1284, "valid": 229, "test": 686}
STEPS, WIDTHS = 50, {"t": 768, "a": 5, "v": 20}


def mosi_shaped(seed: int = 0) -> ConversationDataset:
    """Random per-clip sequences with MOSI's splits, steps and widths."""
    rng = np.random.default_rng(seed)
    clips, splits, start = [], {}, 0
    for split, n in MOSI_SPLITS.items():
        splits[split] = list(range(start, start + n))
        start += n
        for i in range(n):
            length = int(rng.integers(10, STEPS + 1))
            sequences = {}
            for m, d in WIDTHS.items():
                x = np.zeros((1, STEPS, d), np.float32)
                x[0, :length] = rng.normal(size=(length, d))
                sequences[m] = x
            lengths = {m: np.array([length]) for m in WIDTHS}
            features = {m: s[:, :length].mean(axis=1) for m, s in sequences.items()}
            label = np.array([rng.uniform(-3, 3)], np.float32)
            clips.append(Conversation(f"{split}{i}$_$0", features, label, np.zeros(1, np.int64),
                                      (f"{split}{i}$_$0",), sequences, lengths))
    return ConversationDataset(clips, list(WIDTHS), "regression", splits, name="mosi-shaped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="imder_mosi")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--condition", default="0.3", help="the table row to time (a label of the recipe)")
    parser.add_argument("--recoverer", default=None,
                        help="another recoverer under the same backbone (e.g. zero: the backbone's share)")
    parser.add_argument("--kwargs", type=json.loads, default={},
                        help="recoverer settings to override, as JSON (to see what dominates)")
    parser.add_argument("--batches", type=int, default=None,
                        help="time only this many training batches and scale to the epoch")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe)
    dataset = mosi_shaped()
    cfg = recipe.run_config("mosi-shaped.pkl", recipe.seeds[0], args.condition)
    if args.recoverer is not None:
        cfg.recoverer, cfg.recoverer_kwargs = args.recoverer, {}
    cfg.recoverer_kwargs.update(args.kwargs)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, dataset.modalities, dataset.feature_dims, dataset.task)
    model.fit_statistics(dataset)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    plan = MaskPlan(dataset, cfg.protocol, cfg.seed)
    train = list(dataset.split("train"))
    train_masks = plan.train(0)
    batches = -(-len(train) // cfg.train.batch_size)
    if args.batches is not None:  # a prefix of whole batches, timed, then scaled to the epoch
        keep = min(len(train), args.batches * cfg.train.batch_size)
        train, train_masks = train[:keep], train_masks[:keep]
    started = time.perf_counter()
    train_epoch(model, optimizer, train, train_masks, cfg, 0, torch.device("cpu"))
    epoch = (time.perf_counter() - started) * batches / -(-len(train) // cfg.train.batch_size)
    started = time.perf_counter()
    evaluate_model(model, list(dataset.split("valid")), plan.valid, batch_size=cfg.train.eval_batch_size)
    valid = time.perf_counter() - started
    started = time.perf_counter()
    evaluate_model(model, list(dataset.split("test")), plan.test, batch_size=cfg.train.eval_batch_size)
    test = time.perf_counter() - started
    runs = len(recipe.conditions) * len(recipe.seeds)
    cap = cfg.train.epochs
    table_hours = runs * (cap * (epoch + valid) + test) / 3600
    print(json.dumps({"recipe": recipe.name, "recoverer": cfg.recoverer, "overrides": args.kwargs, "threads": args.threads,
                      "condition": args.condition,
                      "train_clips": MOSI_SPLITS["train"], "epoch_seconds": round(epoch, 1),
                      "timed_batches": args.batches or batches, "valid_seconds": round(valid, 1),
                      "test_seconds": round(test, 1), "trainings": runs, "epoch_cap": cap,
                      "table_hours_at_cap": round(table_hours, 1)}))


if __name__ == "__main__":
    main()
