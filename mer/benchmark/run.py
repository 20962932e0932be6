"""Running the benchmark: :func:`run_benchmark` trains and tests every recoverer under every condition
and seed and returns one row per (condition, seed, recoverer). The training modes, the files written
and the row keys are described in :mod:`mer.benchmark` and ``docs/mer_training.md``."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from typing import Sequence

from spectraldiff.atomic import atomic_write_json, jsonable

from mer.benchmark.report import load_results, write_report
from mer.config import RunConfig
from mer.data import ConversationDataset, synthetic_conversations
from mer.data.protocol import (
    CONDITION_SETS,
    MissingProtocol,
    benchmark_conditions,
    default_missing_rates,
    mixture_of,
)
from mer.recoverers import recoverer_class
from mer.training import resolve_config, train

__all__ = [
    "run_benchmark",
    "default_missing_rates",
    "DEFAULT_RECOVERERS",
    "DEFAULT_SEEDS",
    "BENCHMARK_PROTOCOLS",
    "TRAINING_MODES",
    "ROW_KEYS",
]

DEFAULT_RECOVERERS = ("zero", "mean", "autoencoder", "imder", "gsdnet")
DEFAULT_SEEDS = (1111, 1112, 1113)
BENCHMARK_PROTOCOLS = CONDITION_SETS
TRAINING_MODES = ("per_condition", "shared")
ROW_KEYS = ("recoverer", "protocol", "condition", "seed", "training", "metrics", "epochs_run",
            "best_epoch", "train_seconds", "eval_seconds", "config")


def run_benchmark(
    dataset: ConversationDataset | None = None,
    recoverers: Sequence[str] = DEFAULT_RECOVERERS,
    protocol: str = "random",
    missing_rates: Sequence[float] | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    epochs: int | None = None,
    *,
    patterns: Sequence[Sequence[str]] | None = None,
    training: str = "per_condition",
    config: RunConfig | dict | str | os.PathLike | None = None,
    recoverer_kwargs: dict[str, dict] | None = None,
    device: str | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = False,
) -> list[dict]:
    """Train and test every recoverer under every condition and seed.

    Parameters
    ----------
    dataset : ConversationDataset, optional
        Default: the synthetic set (``synthetic_conversations(seed=0)``).
    recoverers : sequence of str
        Registered names (default: zero, mean, autoencoder, imder, gsdnet).
    protocol : {"random", "fixed", "both"}
        ``"both"``: the random conditions, then the fixed ones; each row keeps its own protocol.
    missing_rates : sequence of float, optional
        Random protocol; default :func:`default_missing_rates`.
    seeds : sequence of int
        Each seed reseeds training and draws its own valid/test masks, shared by all methods.
    epochs : int, optional
        Overrides ``config.train.epochs``.
    patterns : sequence of sequences of str, optional
        Fixed protocol; default all ``2^M − 1`` availability sets.
    training : {"per_condition", "shared"}
        ``"per_condition"``: a model per (condition, seed, recoverer), trained under that condition.
        ``"shared"``: a model per (seed, recoverer), trained under ``MissingProtocol(kind="mixed")`` over all
        the conditions, evaluated under each with the test masks per-condition mode uses.
    config : RunConfig, dict or path, optional
        Base settings for every run (its recoverer, protocol and seed are replaced).
    recoverer_kwargs : dict, optional
        Recoverer name → its hyperparameters (default: ``config.recoverer_kwargs`` for
        ``config.recoverer``, else none).
    device : str, optional
    out_dir : path, optional
        Where ``results.json``, ``table.md`` and ``missing_rate.png`` go.
    resume : bool
        Skip what ``out_dir/results.json`` already holds with the same config and training mode: a
        run (per-condition), or a (seed, recoverer) with rows for every condition (shared).
    progress : bool
        tqdm bars per run.

    Returns
    -------
    list of dict
        One row per (condition, seed, recoverer), in that order; keys :data:`ROW_KEYS` plus
        ``missing_rate`` or ``pattern``.
    """
    dataset = synthetic_conversations(seed=0) if dataset is None else dataset
    if not isinstance(dataset, ConversationDataset):
        raise ValueError(f"dataset must be a ConversationDataset, got {type(dataset).__name__}")
    if training not in TRAINING_MODES:
        raise ValueError(f"training must be one of {list(TRAINING_MODES)}, got {training!r}")
    recoverers = list(recoverers)
    if not recoverers:
        raise ValueError("give at least one recoverer")
    for name in recoverers:
        recoverer_class(name)  # unknown names fail here, listing the valid ones
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("give at least one seed")
    conditions = benchmark_conditions(dataset.modalities, protocol, missing_rates, patterns)
    base = resolve_config(config, device=device, epochs=epochs)
    if progress:
        base.train.progress = True
    kwargs_by_name = dict(recoverer_kwargs or {})
    if base.recoverer_kwargs and base.recoverer not in kwargs_by_name:
        kwargs_by_name[base.recoverer] = dict(base.recoverer_kwargs)

    def run_config(name: str, seed: int, protocol_: MissingProtocol) -> RunConfig:
        cfg = RunConfig.from_dict(base.to_dict())
        cfg.recoverer = name
        cfg.recoverer_kwargs = dict(kwargs_by_name.get(name, {}))
        cfg.protocol = dataclasses.replace(protocol_, seed=None)
        cfg.seed = seed
        cfg.validate()
        return cfg

    out = pathlib.Path(out_dir) if out_dir is not None else None
    done: dict[tuple, dict] = {}
    if out is not None and resume and (out / "results.json").is_file():
        for row in load_results(out / "results.json"):
            done[_key(row)] = row

    def finished(name: str, seed: int, condition: MissingProtocol, row_config: dict) -> dict | None:
        previous = done.get((name, condition.kind, condition.condition, seed))
        # Rows written before the training key existed were all per-condition.
        if (previous is None or previous.get("config") != jsonable(row_config)
                or previous.get("training", "per_condition") != training):
            return None
        return dict(previous, training=training)

    results: dict[tuple, dict] = {}  # (condition index, seed, recoverer) → row

    def save() -> None:
        if out is not None:
            atomic_write_json(list(results.values()), out / "results.json")

    if training == "per_condition":
        for c, condition in enumerate(conditions):
            for seed in seeds:
                for name in recoverers:
                    cfg = run_config(name, seed, condition)
                    row_config = cfg.to_dict()
                    previous = finished(name, seed, condition, row_config)
                    if previous is not None:
                        results[c, seed, name] = previous
                        continue
                    started = time.perf_counter()
                    trained = train(dataset, config=cfg)
                    train_seconds = time.perf_counter() - started
                    results[c, seed, name] = _row(trained, dataset, condition, training,
                                                  train_seconds, row_config, masks=None)
                    save()
    else:
        mixture = mixture_of(conditions)
        for seed in seeds:
            for name in recoverers:
                cfg = run_config(name, seed, mixture)
                row_config = cfg.to_dict()
                previous = [finished(name, seed, condition, row_config) for condition in conditions]
                if all(p is not None for p in previous):
                    results.update({(c, seed, name): p for c, p in enumerate(previous)})
                    continue
                started = time.perf_counter()
                trained = train(dataset, config=cfg)
                train_seconds = time.perf_counter() - started
                for c, condition in enumerate(conditions):
                    # masks=condition with no seed of its own: the run's seed draws them, exactly
                    # as for the per-condition model of this seed.
                    results[c, seed, name] = _row(trained, dataset, condition, training, train_seconds,
                                                  row_config, masks=dataclasses.replace(condition, seed=None))
                save()

    rows = [results[c, seed, name] for c in range(len(conditions)) for seed in seeds for name in recoverers]
    if out is not None:
        write_report(rows, out, dataset.task)
    return rows


def _row(trained, dataset: ConversationDataset, condition: MissingProtocol, training: str,
         train_seconds: float, row_config: dict, masks: MissingProtocol | None) -> dict:
    """The result row of ``trained`` evaluated on the test split under ``condition`` (``masks=None``:
    the model's own protocol, which is ``condition``)."""
    started = time.perf_counter()
    metrics = trained.evaluate(dataset, "test", masks=masks)
    row = {
        "recoverer": trained.config.recoverer,
        "protocol": condition.kind,
        "condition": condition.condition,
        "seed": trained.config.seed,
        "training": training,
        "metrics": metrics,
        "epochs_run": len(trained.history),
        "best_epoch": trained.best_epoch,
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - started,
        "config": row_config,
    }
    if condition.kind == "random":
        row["missing_rate"] = float(condition.missing_rate)
    else:
        row["pattern"] = list(condition.pattern)
    return jsonable(row)


def _key(row: dict) -> tuple:
    return (row["recoverer"], row["protocol"], row["condition"], int(row["seed"]))
