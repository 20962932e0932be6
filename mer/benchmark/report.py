"""Reporting benchmark rows: :func:`format_table` (the Markdown of ``table.md``),
:func:`plot_missing_rate` (``missing_rate.png``), :func:`write_report` (both plus ``results.json``,
each written atomically), :func:`load_results` and :func:`merge_results` (rows of several runs as one
table)."""

from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Any, Iterable, Sequence

import numpy as np

from spectraldiff.atomic import atomic_write, atomic_write_json, atomic_write_text

__all__ = ["format_table", "plot_missing_rate", "write_report", "merge_results", "load_results",
           "ROW_ID_FIELDS"]


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


def _labelled(rows: list[dict]) -> list[dict]:
    """The rows with ``recoverer`` labelled ``name (training mode)`` when they hold both training
    modes, so a per-condition and a shared model never share a cell."""
    if len({r.get("training", "per_condition") for r in rows}) < 2:
        return rows
    return [{**r, "recoverer": f"{r['recoverer']} ({r.get('training', 'per_condition')})"} for r in rows]


def format_table(rows: list[dict], task: str = "regression") -> str:
    """The Markdown tables of ``table.md`` (see :mod:`mer.benchmark`): per protocol (a ``##`` section
    each when the rows hold more than one) the metric table and the recovery-MSE table, each with its
    ``Average`` row over that protocol's conditions."""
    if not rows:
        raise ValueError("no benchmark rows to tabulate")
    keys, label = _columns(task)
    rows = _labelled(rows)
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
    rows = _labelled(rows)
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
    try:
        atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120), "wb")
    finally:
        plt.close(fig)


def write_report(rows: list[dict], out_dir: str | os.PathLike, task: str = "regression") -> None:
    """Write ``results.json``, ``table.md`` and ``missing_rate.png`` into ``out_dir``."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(rows, out / "results.json")
    atomic_write_text(format_table(rows, task), out / "table.md")
    plot_missing_rate(rows, out / "missing_rate.png", task)


#: The fields that identify a row; :func:`load_results` requires them.
ROW_ID_FIELDS = ("recoverer", "protocol", "condition", "seed")


def load_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a ``results.json``.

    Raises
    ------
    ValueError
        Naming the file, when it is missing, truncated or not JSON, or not a list of rows with
        ``recoverer``, ``protocol``, ``condition`` and ``seed``.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"no benchmark results file at {path}")
    try:
        rows = json.loads(path.read_text(encoding="utf8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable benchmark results file ({err}); restore it from a "
                         "copy, or move it away to start a new one, or choose another --out") from None
    bad = None
    if not isinstance(rows, list):
        bad = f"holds a JSON {type(rows).__name__}, not a list of rows"
    else:
        for i, row in enumerate(rows):
            missing = [k for k in ROW_ID_FIELDS if not isinstance(row, dict) or k not in row]
            if missing:
                bad = f"row {i} has no {' / '.join(missing)}"
                break
    if bad:
        raise ValueError(f"{path} is not a benchmark results file: {bad}")
    return rows


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
        training = row.get("training", "per_condition")
        key = (label, row["protocol"], row["condition"], row["seed"], training)
        if key in seen:
            raise ValueError(f"two results for {label} / {row['protocol']} {row['condition']} / seed "
                             f"{row['seed']} / {training}: the merged runs overlap")
        seen[key] = True
        merged.append({**row, "recoverer": label})
    return merged
