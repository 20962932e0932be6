"""Cost of every recoverer as conversations grow: epoch time, evaluation time, peak memory, growth order.

Run (a few minutes on 2 CPU cores; one torch thread per cell)::

    python benchmarks/long_conversations.py                       # every recoverer at 14, 50, 100, 200
    python benchmarks/long_conversations.py --recoverers gsdnet "gsdnet_adjacency:slot_network=attention" \\
        --lengths 14 50 --conversations 4

Each cell (recoverer × length) runs in a fresh Python process, so its peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``: torch, DGL and the data included) is that cell's
alone. A cell draws synthetic conversations of exactly ``N`` utterances (``--conversations`` for
training and as many for test, 2 for validation), trains one epoch with :func:`mer.train` (defaults:
batch 16, MR = 0.3 random protocol, each recoverer's default settings), then times one more training
epoch (:func:`mer.training.train_epoch`, in the micro-batches ``mer.train`` would use under the
default ``train.step_memory``) and one evaluation of the test split (:meth:`mer.TrainedModel.evaluate`). The growth order is the least-squares slope of log time against
log ``N`` over the lengths ≥ 50 (at 14 utterances fixed per-batch costs dominate). Results:
``docs/long_conversations.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

LENGTHS = (14, 50, 100, 200)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_cell(spec: str, length: int, conversations: int, seed: int) -> dict:
    """One cell in this process: ``{"epoch_s", "eval_s", "peak_rss_bytes", "estimate_bytes"}``."""
    import resource

    import torch

    import mer
    from mer.data import synthetic_conversations
    from mer.data.conversation import ConversationDataset
    from mer.training import train_epoch
    from mer.training.memory import plan_steps
    from mer.data.protocol import protocol_masks

    torch.set_num_threads(1)
    name, kwargs = parse_spec(spec)
    total = 2 * conversations + 2
    drawn = synthetic_conversations(seed=seed, num_conversations=total, min_utterances=length,
                                    max_utterances=length)
    K = conversations
    dataset = ConversationDataset(list(drawn), drawn.modalities, drawn.task, name=f"synthetic-{length}",
                                  splits={"train": range(K), "valid": range(K, K + 2),
                                          "test": range(K + 2, total)})
    trained = mer.train(dataset, recoverer=name, masks=0.3, epochs=1, seed=seed, recoverer_kwargs=kwargs)
    cfg = trained.config
    model = trained.model
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    masks = protocol_masks(dataset, cfg.protocol, "train", cfg.mask_seed, 1)
    steps = plan_steps(model.recoverer, dataset.max_utterances, cfg.train)  # as mer.train splits
    started = time.perf_counter()
    train_epoch(model, optimizer, dataset.split("train"), masks, cfg, 1, torch.device("cpu"),
                micro_batch=steps.train)
    epoch_s = time.perf_counter() - started
    started = time.perf_counter()
    trained.evaluate(dataset, "test")
    eval_s = time.perf_counter() - started
    estimate = model.recoverer.estimate_memory(length, min(steps.train, K))
    return {"recoverer": spec, "length": length, "conversations": K, "micro_batch": min(steps.train, K),
            "epoch_s": epoch_s, "eval_s": eval_s,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "estimate_bytes": estimate}


def parse_spec(spec: str) -> tuple[str, dict]:
    """``"name:key=value,key=value"`` → ``(name, {key: value})`` (values parsed as JSON when they can be)."""
    name, _, rest = spec.partition(":")
    kwargs = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return name, kwargs


def in_subprocess(spec: str, length: int, conversations: int, seed: int, timeout: float) -> dict:
    """:func:`run_cell` in a fresh interpreter (its own peak RSS); ``{"error": ...}`` when it fails."""
    command = [sys.executable, __file__, "--cell", spec, str(length), "--conversations", str(conversations),
               "--seed", str(seed)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **ONE_THREAD})
    except subprocess.TimeoutExpired:
        return {"recoverer": spec, "length": length, "error": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["exit status %d" % done.returncode])[-1]
        return {"recoverer": spec, "length": length, "error": last[:160]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def growth_order(rows: list[dict], key: str) -> float:
    """Least-squares slope of ``log rows[key]`` against ``log length`` over lengths ≥ 50."""
    points = [(math.log(r["length"]), math.log(r[key])) for r in rows
              if "error" not in r and r["length"] >= 50 and r[key] > 0]
    if len(points) < 2:
        return math.nan
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else math.nan


def table(results: list[dict], lengths: list[int]) -> str:
    """A Markdown table: per recoverer the epoch / evaluation seconds and peak RSS at each length, and
    the growth orders."""
    head = ["recoverer"] + [f"epoch {n}" for n in lengths] + [f"eval {n}" for n in lengths] \
        + [f"peak RSS {n}" for n in lengths] + ["order epoch", "order eval"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spec in dict.fromkeys(r["recoverer"] for r in results):
        rows = {r["length"]: r for r in results if r["recoverer"] == spec}

        def cell(n, fmt):
            r = rows.get(n)
            if r is None:
                return "–"
            return f"fails: {r['error']}" if "error" in r else fmt(r)

        line = [spec]
        line += [cell(n, lambda r: f"{r['epoch_s']:.2f} s") for n in lengths]
        line += [cell(n, lambda r: f"{r['eval_s']:.2f} s") for n in lengths]
        line += [cell(n, lambda r: f"{r['peak_rss_bytes'] / 1e9:.2f} GB") for n in lengths]
        ok = list(rows.values())
        line += [f"{growth_order(ok, 'epoch_s'):.1f}", f"{growth_order(ok, 'eval_s'):.1f}"]
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recoverers", nargs="*", default=None,
                        help="names, or name:key=value,... for settings (default: every registered one)")
    parser.add_argument("--lengths", nargs="*", type=int, default=list(LENGTHS))
    parser.add_argument("--conversations", type=int, default=8, help="training (and test) conversations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per cell")
    parser.add_argument("--json", help="also write the cells here")
    parser.add_argument("--cell", nargs=2, metavar=("RECOVERER", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cell:
        print(json.dumps(run_cell(args.cell[0], int(args.cell[1]), args.conversations, args.seed)))
        return

    if args.recoverers is None:
        import mer

        args.recoverers = mer.available_recoverers()
    results = []
    for spec in args.recoverers:
        for n in args.lengths:
            result = in_subprocess(spec, n, args.conversations, args.seed, args.timeout)
            results.append(result)
            shown = result.get("error") or (f"epoch {result['epoch_s']:.2f} s, eval {result['eval_s']:.2f} s, "
                                            f"peak RSS {result['peak_rss_bytes'] / 1e9:.2f} GB")
            print(f"{spec} N={n}: {shown}", file=sys.stderr, flush=True)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, one torch thread per cell; "
          f"{args.conversations} training and test conversations per length, training batch min(16, that), 1 epoch")
    print(table(results, args.lengths))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
