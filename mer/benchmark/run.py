"""Running the benchmark: :func:`run_benchmark` trains and tests every recoverer under every condition
and seed and returns one row per (condition, seed, recoverer). The training modes, the files written
and the row keys are described in :mod:`mer.benchmark` and ``docs/mer_training.md``.

A dataset that carries an oracle (the Gaussian yardstick, :func:`mer.data.gaussian.has_oracle`) adds
its reference under the very test masks each row was scored on: every row records the recovery
floors and its ``recovery_mse`` as a ratio to them, and every (condition, seed) gets a ``"bayes"``
reference row (``reference: "oracle"``) with the task metrics of the Bayes-optimal label prediction.

A benchmark folder accumulates: a rerun merges its rows into ``results.json`` (see
:func:`run_benchmark`), and never drops one.

Each training is a task for an executor (:mod:`mer.benchmark.executors`): ``"local"`` runs them here
one after another, ``"ray"`` spreads them over a Ray cluster. Either way this process holds the
folder's lock and merges each task's rows into ``results.json`` as it finishes; a task that fails is
logged with its traceback, the others go on, and :class:`~mer.benchmark.executors.BenchmarkTaskError`
lists the failures at the end."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import time
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from spectraldiff.atomic import atomic_write_json, jsonable, remove_stale_temporaries

from mer.benchmark.executors import BenchmarkTaskError, TaskFailure, make_executor
from mer.benchmark.report import load_results, write_report
from mer.config import RunConfig
from mer.data import ConversationDataset, synthetic_conversations
from mer.data.gaussian import has_oracle, oracle_reference
from mer.data.literature import realised_missing_rate
from mer.data.protocol import (
    CONDITION_SETS,
    MaskPlan,
    MissingProtocol,
    benchmark_conditions,
    default_missing_rates,
    mixture_of,
)
from mer.metrics import classification_metrics, regression_metrics
from mer.recoverers import RECOVERERS, check_recoverer_settings, recoverer_class, recoverer_settings
from mer.training import resolve_config, train
from mer.training.build import config_differences, settings_differences
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
    "REFERENCE_NAME",
    "test_masks",
]

DEFAULT_RECOVERERS = ("zero", "mean", "autoencoder", "imder", "gsdnet")
DEFAULT_SEEDS = (1111, 1112, 1113)
BENCHMARK_PROTOCOLS = CONDITION_SETS
TRAINING_MODES = ("per_condition", "shared")
ROW_KEYS = ("recoverer", "protocol", "condition", "seed", "training", "metrics", "epochs_run",
            "best_epoch", "train_seconds", "eval_seconds", "config", "recoverer_settings",
            "dataset_fingerprint")
#: The ``recoverer`` of the Bayes reference rows of a dataset with an oracle (they also carry
#: ``reference: "oracle"``, and no training mode: no model is trained for them).
REFERENCE_NAME = "bayes"

# Settings that do not change a row's numbers' meaning: a rerun that differs only in them resumes.
_COSMETIC = ("train.device", "train.progress")

logger = logging.getLogger("mer.benchmark")


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
    executor: str = "local",
    executor_options: dict | None = None,
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
        ``config.recoverer``, else none); names this run does not train are ignored, so one mapping
        can serve several runs. A setting a recoverer does not take is refused before anything trains.
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
    executor : {"local", "ray"}
        Where the trainings run: one after another in this process, or as Ray tasks (a training per
        (condition, seed, recoverer), or per (seed, recoverer) with shared training). Ray is imported
        only here; without it installed this raises ``MissingExtraError`` (a ``ValueError``) saying
        ``pip install ".[ray]"``.
    executor_options : dict, optional
        Keyword arguments of the executor: local ``threads``; ray ``address``, ``workers``,
        ``gpus_per_run``, ``cpus_per_run``, ``threads`` (see :mod:`mer.benchmark.executors`). Both
        executors give identical rows when their torch ``threads`` are equal (Ray's default is 1).

    Returns
    -------
    list of dict
        This run's rows, one per (condition, seed, recoverer), in that order; keys :data:`ROW_KEYS`
        plus ``missing_rate`` or ``pattern``. For a dataset with an oracle (:func:`has_oracle`) each
        row's ``metrics`` also hold ``floor_prior``, ``floor_utterance`` (floor (a)),
        ``floor_conversation`` (floor (b)) of :func:`mer.data.gaussian.recovery_floor` and
        ``recovery_ratio_utterance`` / ``recovery_ratio_conversation`` (``recovery_mse / floor``),
        all under the row's own test masks (:func:`test_masks`); and after the methods of each
        (condition, seed) comes its reference row: ``recoverer`` :data:`REFERENCE_NAME`,
        ``reference: "oracle"``, ``metrics`` the task metrics of the Bayes label prediction from
        every observed entry of the conversation (info (b)) plus the floors and the expected
        ``label_mse``, ``metrics_utterance`` the same from the utterance alone (info (a)). It is
        computed, not trained; a rerun reuses it like any row (same dataset fingerprint).

    Raises
    ------
    ValueError
        For bad arguments, a conflicting row (see ``resume``), or an unreadable ``results.json``.
    RunLockedError
        (a ``ValueError``) When another live run holds ``out_dir``.
    BenchmarkTaskError
        After every other training finished and its rows were written, when some trainings raised;
        it lists each with its traceback (``.failures``, ``.report()``).
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
        if name == REFERENCE_NAME:
            raise ValueError(f"the recoverer name {REFERENCE_NAME!r} is reserved for the oracle's "
                             "reference rows; register the method under another name")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("give at least one seed")
    runner = make_executor(executor, executor_options)
    conditions = benchmark_conditions(dataset.modalities, protocol, missing_rates, patterns)
    # A repeated seed, rate or pattern would train the same run again and count it twice.
    for what, values in (("recoverer", recoverers), ("seed", seeds),
                         ("condition", [f"{c.kind} {c.condition}" for c in conditions])):
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"{what} {', '.join(repeated)} given twice: each is run once; give it once")
    base = resolve_config(config, device=device, epochs=epochs)
    if progress:
        base.train.progress = True
    kwargs_by_name = dict(recoverer_kwargs or {})
    if base.recoverer_kwargs and base.recoverer not in kwargs_by_name:
        kwargs_by_name[base.recoverer] = dict(base.recoverer_kwargs)
    for name in recoverers:  # a misspelt setting fails now, not after the other methods have trained
        check_recoverer_settings(name, kwargs_by_name.get(name, {}))

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
    # the masks each condition is tested with; None: the model's own protocol). Either way the test
    # masks are test_masks(dataset, condition, seed), the same for every method of a seed.
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
            if name == REFERENCE_NAME:
                return (name, condition.kind, condition.condition, seed, "reference")
            return (name, condition.kind, condition.condition, seed, training)

        oracle = has_oracle(dataset)
        references = [REFERENCE_NAME] if oracle else []
        order = [(c, seed, name) for c in range(len(conditions)) for seed in seeds
                 for name in recoverers + references]
        _refuse_other_datasets(out, kept, {key(name, seed, conditions[c]) for c, seed, name in order}, fingerprint)
        reference_of: dict[tuple, dict | None] = {}  # (condition index, seed) → oracle_reference

        def reference(c: int, seed: int) -> dict | None:
            """The oracle's answer for the test masks of (condition, seed), computed once."""
            if (c, seed) not in reference_of:
                reference_of[c, seed] = oracle_reference(
                    dataset, test_masks(dataset, conditions[c], seed), "test") if oracle else None
            return reference_of[c, seed]

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

        # The reference rows: computed, not trained; kept ones are reused under the same rule.
        for c, seed, name in order:
            if name != REFERENCE_NAME:
                continue
            row = kept.get(key(name, seed, conditions[c])) if resume else None
            if row is not None:
                saved = row.get("dataset_fingerprint")
                if saved is not None and saved != fingerprint:
                    differences = {"dataset_fingerprint": (saved, fingerprint)}
                    raise ValueError(_conflict_message(out, row, differences))
                results[c, seed, name] = row
            else:
                started = time.perf_counter()
                answer = reference(c, seed)
                results[c, seed, name] = _reference_row(dataset, conditions[c], seed, answer, fingerprint,
                                                        time.perf_counter() - started)

        failures: list[TaskFailure] = []
        if todo:
            with runner:
                shared = runner.share(dataset)
                tasks = [(_train_job, (shared, name, recoverer_class(name), cfg, parts, masks, training,
                                       [reference(c, seed) for c, _ in parts], fingerprint))
                         for name, seed, cfg, parts, masks in todo]
                labels = [_job_label(name, seed, parts, training) for name, seed, _, parts, _ in todo]
                sweep_started = time.perf_counter()
                bar = tqdm(total=len(tasks), desc="benchmark runs", unit="run", disable=not progress)
                for done, (i, outcome) in enumerate(runner.run(tasks, labels), start=1):
                    bar.update()
                    status = progress_line(done, len(tasks), time.perf_counter() - sweep_started)
                    if isinstance(outcome, TaskFailure):
                        logger.error("%s: %s failed\n%s", status, outcome.label, outcome.traceback)
                        failures.append(outcome)
                        continue
                    name, seed = todo[i][:2]
                    results.update({(c, seed, name): row for c, row in outcome})
                    logger.info("%s: %s", status, labels[i])
                    save()
                bar.close()

        rows = [results[k] for k in order if k in results]
        if out is not None:
            save()
            saved = load_results(out / "results.json") if (out / "results.json").exists() else []
            if saved:  # when every training failed there is nothing to tabulate: the error says why
                write_report(saved, out, dataset.task)
    if failures:
        raise BenchmarkTaskError(failures, len(rows))
    return rows


def progress_line(done: int, total: int, elapsed: float) -> str:
    """``run 3/12, elapsed 1m05s, ETA 3m15s``: the sweep's state after ``done`` of ``total`` runs
    finished in ``elapsed`` seconds; the ETA assumes the remaining runs take the mean time so far."""
    remaining = elapsed / done * (total - done) if done else float("nan")
    return f"run {done}/{total}, elapsed {_duration(elapsed)}, ETA {_duration(remaining)}"


def _duration(seconds: float) -> str:
    if seconds != seconds:  # NaN: nothing to extrapolate from yet
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _train_job(dataset: ConversationDataset, name: str, cls: type, cfg: RunConfig, parts: list,
               masks: list | None, training: str, references: list, fingerprint: str) -> list[tuple]:
    """One task: train ``cfg`` and score it under each of ``parts`` (``(condition index,
    condition)``); returns ``(condition index, row)`` pairs. ``cls`` is the recoverer's class:
    unpickling it in a Ray worker imports the module that registers it, and a class defined in a
    script (pickled by value) is registered here under ``name``."""
    if name not in RECOVERERS:
        RECOVERERS.register(name, cls)
    started = time.perf_counter()
    trained = train(dataset, config=cfg)
    train_seconds = time.perf_counter() - started
    return [(c, _row(trained, dataset, condition, training, train_seconds, cfg.to_dict(),
                     None if masks is None else masks[i], references[i], fingerprint))
            for i, (c, condition) in enumerate(parts)]


def _job_label(name: str, seed: int, parts: list, training: str) -> str:
    where = parts[0][1].condition if training == "per_condition" else f"{len(parts)} conditions (shared)"
    return f"{name} / {where} / seed {seed}"


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


def _refuse_other_datasets(out: pathlib.Path | None, kept: dict[tuple, dict], keys: set[tuple],
                           fingerprint: str) -> None:
    """Refuse a run whose folder keeps rows on another dataset beside the rows it writes: one table
    would compare methods on different data. (A row of the same key is judged by :func:`_differences`,
    or replaced with ``resume=False``.)"""
    others = [row for k, row in kept.items()
              if k not in keys and row.get("dataset_fingerprint") not in (None, fingerprint)]
    if others:
        shown = ", ".join(_label(row).removeprefix("the row ") for row in others[:3])
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        raise ValueError(f"{out / 'results.json'} holds rows on another dataset (fingerprint "
                         f"{others[0]['dataset_fingerprint']}, this run's is {fingerprint}): {shown}{more}; "
                         "one table must not mix datasets: write this run to another --out (out_dir)")


def _differences(row: dict, row_config: dict, fingerprint: str) -> dict[str, tuple]:
    """Setting → (value in the saved row, value now), for the settings that keep ``row`` from
    standing for this run's row of the same key."""
    differences = config_differences(row.get("config") or {}, row_config, ignore=_COSMETIC)
    if "recoverer_settings" in row:  # rows from before it: the given settings (the config) only
        differences.update(settings_differences(row["recoverer_settings"], _settings_of(row_config)))
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
            f"{_training_of(row)}")


def test_masks(dataset: ConversationDataset, condition: MissingProtocol, seed: int) -> list[np.ndarray]:
    """The test masks ``(N_i, M)`` every method of ``seed`` is scored on under ``condition``, in
    both training modes: the run's seed draws them (the benchmark's configs leave the protocol's own
    seed unset), exactly as :meth:`~mer.training.TrainedModel.evaluate` would for the run."""
    return MaskPlan(dataset, dataclasses.replace(condition, seed=None), seed).test


def _row(trained, dataset: ConversationDataset, condition: MissingProtocol, training: str,
         train_seconds: float, row_config: dict, masks: MissingProtocol | None,
         reference: dict | None, fingerprint: str) -> dict:
    """The result row of ``trained`` evaluated on the test split under ``condition`` (``masks=None``:
    the model's own protocol, which is ``condition``), with the oracle's ``reference`` for the same
    test masks (:func:`test_masks`) when the dataset has one."""
    started = time.perf_counter()
    metrics = trained.evaluate(dataset, "test", masks=masks)
    if reference is not None:
        metrics.update(_floor_metrics(reference))
        for info in ("utterance", "conversation"):
            metrics[f"recovery_ratio_{info}"] = _ratio(metrics["recovery_mse"], metrics[f"floor_{info}"])
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
        "recoverer_settings": _settings_of(row_config),
        "dataset_fingerprint": fingerprint,
    }
    return jsonable({**row, **_condition_fields(condition)})


def _settings_of(row_config: dict) -> dict:
    """Every hyperparameter the row's recoverer was built with, defaults included, as JSON values
    (:func:`~mer.recoverers.recoverer_settings`): a default changed by a later release then keeps a
    saved row from standing for a new one."""
    return jsonable(recoverer_settings(row_config["recoverer"], row_config.get("recoverer_kwargs") or {}))


def _reference_row(dataset: ConversationDataset, condition: MissingProtocol, seed: int,
                   reference: dict, fingerprint: str, seconds: float) -> dict:
    """The Bayes reference row of (``condition``, ``seed``): the metrics of
    :func:`mer.data.gaussian.bayes_labels` on the test split, scored like a model's predictions."""
    started = time.perf_counter()
    true = np.concatenate([c.labels for c in dataset.split("test")])
    score = classification_metrics if dataset.task == "classification" else regression_metrics

    def metrics(info: str) -> dict:
        out = score(reference["labels"][info], true)
        out["label_mse"] = reference["label_mse"][info]
        return {**out, **_floor_metrics(reference)}

    row = {
        "recoverer": REFERENCE_NAME,
        "reference": "oracle",
        "protocol": condition.kind,
        "condition": condition.condition,
        "seed": int(seed),
        "metrics": metrics("conversation"),
        "metrics_utterance": metrics("utterance"),
        "eval_seconds": seconds + time.perf_counter() - started,
        "dataset_fingerprint": fingerprint,
    }
    return jsonable({**row, **_condition_fields(condition)})


def _condition_fields(condition: MissingProtocol) -> dict:
    """A row's description of its condition: the missing rate, the literature's row label and its
    realised per-entry rate, or the available modalities."""
    if condition.kind == "random":
        return {"missing_rate": float(condition.missing_rate)}
    if condition.kind == "literature":
        return {"literature_label": float(condition.missing_rate),
                "realised_missing_rate": realised_missing_rate(condition.missing_rate)}
    return {"pattern": list(condition.pattern)}


def _floor_metrics(reference: dict) -> dict[str, float]:
    return {f"floor_{'prior' if info == 'none' else info}": float(value)
            for info, value in reference["floors"].items()}


def _ratio(value: float, floor: float) -> float:
    if not (np.isfinite(value) and np.isfinite(floor)) or floor <= 0:
        return float("nan")
    return float(value / floor)


def _training_of(row: dict) -> str:
    """The last field of a row's key: its training mode, or ``"reference"`` for a reference row
    (the same in both modes: it trains nothing)."""
    return "reference" if row.get("reference") else row.get("training", "per_condition")


def _key(row: dict) -> tuple:
    return (row["recoverer"], row["protocol"], row["condition"], int(row["seed"]), _training_of(row))
