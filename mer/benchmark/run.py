"""Running the benchmark: :func:`run_benchmark` trains and tests every recoverer under every condition
and seed and returns one row per (condition, seed, recoverer). The training modes, the files written
and the row keys are described in :mod:`mer.benchmark` and ``docs/mer_training.md``.

A benchmark folder accumulates: a rerun merges its rows into ``results.json`` (see
:func:`run_benchmark`), and never drops one."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import time
from typing import Sequence

from spectraldiff.atomic import atomic_write_json, jsonable, remove_stale_temporaries

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
from mer.training.build import config_differences
from mer.training.checkpoint import dataset_fingerprint
from mer.training.run_lock import RunLock

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
            "best_epoch", "train_seconds", "eval_seconds", "config", "dataset_fingerprint")

# Settings that do not change a row's numbers' meaning: a rerun that differs only in them resumes.
_COSMETIC = ("train.device", "train.progress")


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
        Where ``results.json``, ``table.md`` and ``missing_rate.png`` go; held exclusively
        (``out_dir/.lock``) while the benchmark runs. Rows already in ``out_dir/results.json`` are
        kept: this run's rows are merged in, and the table and figure show them all.
    resume : bool
        ``True``: a row of this run whose key (recoverer, protocol, condition, seed, training mode)
        ``results.json`` already holds with the same settings (config, apart from device and
        progress bars, and dataset fingerprint) is reused, not retrained — a run (per-condition),
        or a (seed, recoverer) with rows for every condition (shared); the same key with other
        settings is refused (``ValueError`` naming the folder, the row and the settings) before
        anything trains. ``False``: every row of this run is recomputed and replaces the row of its
        key; rows of other keys are kept.
    progress : bool
        tqdm bars per run.

    Returns
    -------
    list of dict
        This run's rows, one per (condition, seed, recoverer), in that order; keys :data:`ROW_KEYS`
        plus ``missing_rate`` or ``pattern``.

    Raises
    ------
    ValueError
        For bad arguments, a conflicting row (see ``resume``), or an unreadable ``results.json``.
    RunLockedError
        (a ``ValueError``) When another live run holds ``out_dir``.
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
    fingerprint = dataset_fingerprint(dataset)
    # Every training of this run: (recoverer, seed, its config, its conditions as (index, condition),
    # the masks each condition is tested with; None: the model's own protocol).
    jobs = []
    if training == "per_condition":
        for c, condition in enumerate(conditions):
            for seed in seeds:
                for name in recoverers:
                    jobs.append((name, seed, run_config(name, seed, condition), [(c, condition)], None))
    else:
        mixture = mixture_of(conditions)
        for seed in seeds:
            for name in recoverers:
                # masks=condition with no seed of its own: the run's seed draws them, exactly as for
                # the per-condition model of this seed.
                jobs.append((name, seed, run_config(name, seed, mixture), list(enumerate(conditions)),
                             [dataclasses.replace(condition, seed=None) for condition in conditions]))

    with RunLock(out, what="mer benchmark") if out is not None else contextlib.nullcontext():
        if out is not None:
            remove_stale_temporaries(out)
        kept = _load_rows(out)  # key → row, in file order; replaced in place, never removed
        results: dict[tuple, dict] = {}  # (condition index, seed, recoverer) → row of this run

        def key(name: str, seed: int, condition: MissingProtocol) -> tuple:
            return (name, condition.kind, condition.condition, seed, training)

        order = [(c, seed, name) for c in range(len(conditions)) for seed in seeds for name in recoverers]

        def save() -> None:
            """``results.json``: the kept rows, this run's replacing theirs in place, then this
            run's new rows in (condition, seed, recoverer) order."""
            if out is None:
                return
            merged = dict(kept)
            for c, seed, name in order:
                if (c, seed, name) in results:
                    merged[key(name, seed, conditions[c])] = results[c, seed, name]
            atomic_write_json(list(merged.values()), out / "results.json")

        # First decide, for every job, whether results.json already has it; refuse conflicts before
        # anything trains.
        todo = []
        for name, seed, cfg, parts, masks in jobs:
            row_config = cfg.to_dict()
            previous = []
            for c, condition in parts:
                row = kept.get(key(name, seed, condition)) if resume else None
                if row is not None:
                    differences = _differences(row, row_config, fingerprint)
                    if differences:
                        raise ValueError(_conflict_message(out, row, differences))
                previous.append(row)
            if all(row is not None for row in previous):
                results.update({(c, seed, name): dict(row, training=training)
                                for (c, _), row in zip(parts, previous)})
            else:
                todo.append((name, seed, cfg, parts, masks))

        for name, seed, cfg, parts, masks in todo:
            started = time.perf_counter()
            trained = train(dataset, config=cfg)
            train_seconds = time.perf_counter() - started
            for i, (c, condition) in enumerate(parts):
                results[c, seed, name] = _row(trained, dataset, condition, training, train_seconds,
                                              cfg.to_dict(), None if masks is None else masks[i],
                                              fingerprint)
            save()

        rows = [results[k] for k in order]
        if out is not None:
            save()
            write_report(load_results(out / "results.json"), out, dataset.task)
    return rows


def _load_rows(out: pathlib.Path | None) -> dict[tuple, dict]:
    """The rows of ``out/results.json`` by key (rows written before the training mode was recorded
    were all per-condition)."""
    if out is None or not (out / "results.json").exists():
        return {}
    path = out / "results.json"
    rows: dict[tuple, dict] = {}
    for row in load_results(path):
        k = _key(row)
        if k in rows:
            raise ValueError(f"{path} holds two rows for {_label(row)}; remove one of them")
        rows[k] = row
    return rows


def _differences(row: dict, row_config: dict, fingerprint: str) -> dict[str, tuple]:
    """Setting → (value in the saved row, value now), for the settings that keep ``row`` from
    standing for this run's row of the same key."""
    differences = config_differences(row.get("config") or {}, row_config, ignore=_COSMETIC)
    saved = row.get("dataset_fingerprint")
    if saved is not None and saved != fingerprint:  # rows from before fingerprints: config only
        differences["dataset_fingerprint"] = (saved, fingerprint)
    return differences


def _conflict_message(out: pathlib.Path, row: dict, differences: dict[str, tuple]) -> str:
    what = "; ".join(f"{k} is {old!r} there, {new!r} now" for k, (old, new) in differences.items())
    return (f"{out / 'results.json'} already holds {_label(row)} with other settings ({what}); "
            "nothing was run: write this run to another --out (out_dir), or delete that row from "
            "results.json (or rerun with --no-resume / resume=False) to recompute it")


def _label(row: dict) -> str:
    return (f"the row {row['recoverer']} / {row['protocol']} {row['condition']} / seed {row['seed']} / "
            f"{row.get('training', 'per_condition')}")


def _row(trained, dataset: ConversationDataset, condition: MissingProtocol, training: str,
         train_seconds: float, row_config: dict, masks: MissingProtocol | None,
         fingerprint: str) -> dict:
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
        "dataset_fingerprint": fingerprint,
    }
    if condition.kind == "random":
        row["missing_rate"] = float(condition.missing_rate)
    else:
        row["pattern"] = list(condition.pattern)
    return jsonable(row)


def _key(row: dict) -> tuple:
    return (row["recoverer"], row["protocol"], row["condition"], int(row["seed"]),
            row.get("training", "per_condition"))
