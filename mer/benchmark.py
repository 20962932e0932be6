"""The benchmark: recoverers × missing-modality conditions × seeds, as in the papers' tables.

:func:`run_benchmark` evaluates every recoverer on the test split under every condition (random
missing rates, fixed availability sets, or both), with the same masks for every method of a seed, and
returns one row per (condition, seed, recoverer). Two training modes:

* ``training="per_condition"`` (default): one model per (condition, seed, recoverer), trained and
  validated under that condition — a specialist, as in the papers.
* ``training="shared"``: one model per (seed, recoverer), trained and early-stopped on the uniform
  mixture of all the benchmark's conditions (``Protocol(kind="mixed")``), then evaluated under each
  condition with the same test masks as per-condition mode. The papers' full table (8 rates + 7 sets)
  takes 15× fewer trainings.

With ``out_dir`` it writes

* ``results.json`` — the list of rows (rewritten atomically after every training, so an interrupted
  benchmark resumes where it stopped);
* ``table.md`` — per protocol (random, then fixed) a row per condition, a column per method,
  ``ACC2 / F1 / ACC7`` (regression) or ``ACC / F1`` (classification) as mean ± std over seeds, in
  percent, with an ``Average`` row; then the recovery MSE of the dropped features in the same layout;
* ``missing_rate.png`` — ACC2 (or ACC) against the missing rate, one line per method (the fixed
  conditions are plotted only when there is no random one).

Row keys: ``recoverer``, ``protocol`` (``"random"``/``"fixed"``), ``condition`` (``"0.3"``,
``"{t,a}"``), ``missing_rate`` or ``pattern``, ``seed``, ``training`` (``"per_condition"`` /
``"shared"``), ``metrics`` (the :func:`~mer.metrics.regression_metrics` or
:func:`~mer.metrics.classification_metrics` keys, ``recovery_mse`` and ``loss``), ``epochs_run``,
``best_epoch``, ``train_seconds`` (of the model evaluated: with shared training, the shared run's),
``eval_seconds``, ``config`` (the resolved config the model was trained with).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import time
from typing import Any, Iterable, Sequence

import numpy as np

from mer.config import Protocol, RunConfig
from mer.data import ConversationDataset, fixed_patterns, max_missing_rate, synthetic_conversations
from mer.recoverers import recoverer_class
from mer.training.checkpoint import atomic_write_json, jsonable
from mer.training.trainer import resolve_config, train

__all__ = [
    "run_benchmark",
    "default_missing_rates",
    "DEFAULT_RECOVERERS",
    "DEFAULT_SEEDS",
    "BENCHMARK_PROTOCOLS",
    "TRAINING_MODES",
    "format_table",
    "plot_missing_rate",
    "write_report",
    "merge_results",
    "load_results",
    "ROW_KEYS",
]

DEFAULT_RECOVERERS = ("zero", "mean", "autoencoder", "imder", "gsdnet")
DEFAULT_SEEDS = (1111, 1112, 1113)
BENCHMARK_PROTOCOLS = ("random", "fixed", "both")
TRAINING_MODES = ("per_condition", "shared")
ROW_KEYS = ("recoverer", "protocol", "condition", "seed", "training", "metrics", "epochs_run",
            "best_epoch", "train_seconds", "eval_seconds", "config")


def default_missing_rates(num_modalities: int = 3) -> list[float]:
    """``0.0, 0.1, …`` up to the ceiling ``(M − 1)/M``, plus the ceiling itself.

    With ``M = 3`` the literature's grid ``0.0 … 0.7`` cannot keep one modality per utterance above
    ``2/3``, so the grid is ``0.0 … 0.6`` and ``2/3`` (labelled ``0.667``).
    """
    ceiling = max_missing_rate(num_modalities)
    rates = [round(0.1 * k, 1) for k in range(int(math.floor(ceiling * 10 + 1e-9)) + 1)]
    if ceiling - rates[-1] > 1e-9:
        rates.append(ceiling)
    return rates


def _conditions(dataset: ConversationDataset, protocol: str, missing_rates, patterns) -> list[Protocol]:
    if protocol not in BENCHMARK_PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(BENCHMARK_PROTOCOLS)}, got {protocol!r}")
    conditions = []
    if protocol in ("random", "both"):
        rates = default_missing_rates(len(dataset.modalities)) if missing_rates is None else missing_rates
        conditions += [Protocol.parse(float(r), dataset.modalities) for r in rates]
    if protocol in ("fixed", "both"):
        chosen = fixed_patterns(dataset.modalities) if patterns is None else patterns
        conditions += [Protocol.parse(tuple(p), dataset.modalities) for p in chosen]
    if not conditions:
        raise ValueError("give at least one missing rate or pattern")
    return conditions


def _mixture(conditions: Sequence[Protocol]) -> Protocol:
    """The shared-training protocol: the uniform mixture of the benchmark's conditions."""
    items = [float(c.missing_rate) if c.kind == "random" else tuple(c.pattern) for c in conditions]
    return Protocol(kind="mixed", mixture=tuple(items))


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
        ``"shared"``: a model per (seed, recoverer), trained under ``Protocol(kind="mixed")`` over all
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
    conditions = _conditions(dataset, protocol, missing_rates, patterns)
    base = resolve_config(config, device=device, epochs=epochs)
    if progress:
        base.train.progress = True
    kwargs_by_name = dict(recoverer_kwargs or {})
    if base.recoverer_kwargs and base.recoverer not in kwargs_by_name:
        kwargs_by_name[base.recoverer] = dict(base.recoverer_kwargs)

    def run_config(name: str, seed: int, protocol_: Protocol) -> RunConfig:
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

    def finished(name: str, seed: int, condition: Protocol, row_config: dict) -> dict | None:
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
        mixture = _mixture(conditions)
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


def _row(trained, dataset: ConversationDataset, condition: Protocol, training: str,
         train_seconds: float, row_config: dict, masks: Protocol | None) -> dict:
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


# ------------------------------------------------------------------------------- reporting
def _columns(task: str) -> tuple[tuple[str, ...], str]:
    if task == "classification":
        return ("acc", "f1_weighted"), "ACC / F1"
    return ("acc2_non0", "f1_non0", "acc7"), "ACC2 / F1 / ACC7"


def _ordered(values: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def _mean_std(values: list[float], scale: float, digits: int) -> str:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "–"
    arr = np.asarray(vals, dtype=np.float64) * scale
    if arr.size == 1:
        return f"{arr[0]:.{digits}f}"  # one seed: no spread to report (a "±0.0" would claim one)
    return f"{arr.mean():.{digits}f}±{float(arr.std(ddof=1)):.{digits}f}"


def _cell(rows: list[dict], keys: Sequence[str], scale: float = 100.0, digits: int = 1) -> str:
    return " / ".join(_mean_std([r["metrics"].get(k) for r in rows], scale, digits) for k in keys)


def _average_cell(rows: list[dict], keys: Sequence[str], scale: float = 100.0, digits: int = 1) -> str:
    """Per seed the mean over conditions, then mean ± std over seeds."""
    parts = []
    for k in keys:
        per_seed = []
        for seed in _ordered(str(r["seed"]) for r in rows):
            vals = [r["metrics"].get(k) for r in rows if str(r["seed"]) == seed]
            vals = [v for v in vals if v is not None and math.isfinite(v)]
            if vals:
                per_seed.append(float(np.mean(vals)))
        parts.append(_mean_std(per_seed, scale, digits))
    return " / ".join(parts)


def _over_seeds(seeds: list[str]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]} (one seed: no spread)"
    return f"mean ± std over seeds {', '.join(seeds)}"


_SECTION_TITLES = {
    "random": "Random missing (rows: missing rate)",
    "fixed": "Fixed missing (rows: available modalities)",
}
_TRAINING_NOTES = {
    "per_condition": "one model per condition, seed and method (`per_condition`)",
    "shared": "one model per seed and method, trained on the uniform mixture of all conditions "
              "(`shared`)",
}


def format_table(rows: list[dict], task: str = "regression") -> str:
    """The Markdown tables of ``table.md`` (see the module docstring): per protocol (a ``##`` section
    each when the rows hold more than one) the metric table and the recovery-MSE table, each with its
    ``Average`` row over that protocol's conditions."""
    if not rows:
        raise ValueError("no benchmark rows to tabulate")
    keys, label = _columns(task)
    methods = _ordered(r["recoverer"] for r in rows)
    seeds = _ordered(str(r["seed"]) for r in rows)
    protocols = _ordered(r["protocol"] for r in rows)
    trainings = _ordered(r["training"] for r in rows if r.get("training"))
    convention = ""
    if task != "classification":
        convention = " (ACC2 and F1: non-zero convention, `acc2_non0` / `f1_non0`)"
    training = ""
    if trainings:
        training = " Training: " + "; ".join(_TRAINING_NOTES.get(t, t) for t in trainings) + "."
    lines = [
        f"Protocol: {', '.join(protocols)}.{training} Cells: {label} in %, {_over_seeds(seeds)}"
        f"{convention}.",
    ]
    for protocol in protocols:
        if len(protocols) > 1:
            lines += ["", f"## {_SECTION_TITLES.get(protocol, protocol)}"]
        lines += _protocol_tables([r for r in rows if r["protocol"] == protocol], methods, keys)
    return "\n".join(lines) + "\n"


def _protocol_tables(rows: list[dict], methods: list[str], keys: Sequence[str]) -> list[str]:
    conditions = _ordered(r["condition"] for r in rows)

    def select(method, condition=None):
        return [
            r for r in rows
            if r["recoverer"] == method and (condition is None or r["condition"] == condition)
        ]

    def table(cell_keys, scale, digits):
        out = ["", "| Condition | " + " | ".join(methods) + " |",
               "| --- | " + " | ".join("---" for _ in methods) + " |"]
        for c in conditions:
            out.append(
                f"| {c} | " + " | ".join(_cell(select(m, c), cell_keys, scale, digits) for m in methods)
                + " |"
            )
        out.append(
            "| Average | "
            + " | ".join(_average_cell(select(m), cell_keys, scale, digits) for m in methods)
            + " |"
        )
        return out

    return [
        *table(keys, 100.0, 1),
        "",
        "Recovery MSE of the dropped features (standardised units, seeds as above; – where nothing "
        "is dropped):",
        *table(["recovery_mse"], 1.0, 3),
    ]


def plot_missing_rate(rows: list[dict], path: str | os.PathLike, task: str = "regression") -> None:
    """ACC2 (regression, non-zero convention) or ACC against the missing rate, one line per method,
    mean ± std over seeds as error bars; written with matplotlib's Agg backend.

    Only the random-protocol rows are plotted when there are any (with ``protocol="both"`` the fixed
    sets are in the table only); otherwise the availability sets are the x axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = "acc" if task == "classification" else "acc2_non0"
    rows = [r for r in rows if r["protocol"] == "random"] or rows
    methods = _ordered(r["recoverer"] for r in rows)
    conditions = _ordered(r["condition"] for r in rows)
    numeric = all(r["protocol"] == "random" for r in rows)
    xs = [float(c) for c in conditions] if numeric else list(range(len(conditions)))
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for m in methods:
        means, stds, used = [], [], []
        for x, c in zip(xs, conditions):
            vals = [r["metrics"].get(key) for r in rows if r["recoverer"] == m and r["condition"] == c]
            vals = [100.0 * v for v in vals if v is not None and math.isfinite(v)]
            if vals:
                used.append(x)
                means.append(float(np.mean(vals)))
                stds.append(float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)
        ax.errorbar(used, means, yerr=stds, marker="o", capsize=3, label=m)
    if numeric:
        ax.set_xlabel("missing rate")
    else:
        ax.set_xticks(xs)
        ax.set_xticklabels(conditions, rotation=30)
        ax.set_xlabel("available modalities")
    ax.set_ylabel(("ACC" if task == "classification" else "ACC2 (non-zero)") + " (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def write_report(rows: list[dict], out_dir: str | os.PathLike, task: str = "regression") -> None:
    """Write ``results.json``, ``table.md`` and ``missing_rate.png`` into ``out_dir``."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(rows, out / "results.json")
    table = format_table(rows, task)
    tmp = out / ".table.md.tmp"
    tmp.write_text(table, encoding="utf8")
    os.replace(tmp, out / "table.md")
    plot_missing_rate(rows, out / "missing_rate.png", task)


def load_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a ``results.json``."""
    return json.loads(pathlib.Path(path).read_text(encoding="utf8"))


def merge_results(sources: Sequence[str | os.PathLike | list[dict]]) -> list[dict]:
    """Rows of several benchmark runs as one table.

    ``sources`` are ``results.json`` paths (or a run directory holding one, or row lists). A recoverer
    run with different hyperparameters in different rows is labelled ``name[key=value,...]`` by the
    settings that differ from its first occurrence (so ``rohydr`` and ``rohydr[stages=one]`` get a
    column each). Two rows for the same (label, protocol, condition, seed) are an error: the runs
    overlap and one of them would silently win.
    """
    rows: list[dict] = []
    for source in sources:
        if isinstance(source, list):
            rows.extend(source)
            continue
        path = pathlib.Path(source)
        rows.extend(load_results(path / "results.json" if path.is_dir() else path))
    first_kwargs: dict[str, dict] = {}
    merged, seen = [], {}
    for row in rows:
        name = row["recoverer"]
        kwargs = dict((row.get("config") or {}).get("recoverer_kwargs") or {})
        base = first_kwargs.setdefault(name, kwargs)
        differing = sorted(k for k in set(kwargs) | set(base) if kwargs.get(k) != base.get(k))
        label = name
        if differing:
            label += "[" + ",".join(f"{k}={kwargs.get(k)}" for k in differing) + "]"
        key = (label, row["protocol"], row["condition"], row["seed"])
        if key in seen:
            raise ValueError(f"two results for {label} / {row['protocol']} {row['condition']} / seed "
                             f"{row['seed']}: the merged runs overlap")
        seen[key] = True
        merged.append({**row, "recoverer": label})
    return merged
