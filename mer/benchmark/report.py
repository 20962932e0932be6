"""Reporting benchmark rows: :func:`format_table` (the Markdown of ``table.md``),
:func:`plot_missing_rate` (``missing_rate.png``), :func:`write_report` (both plus ``results.json``,
each written atomically), :func:`load_results` and :func:`merge_results` (rows of several runs as one
table).

Rows of a dataset with an oracle (see :mod:`mer.benchmark.run`) add, in the table, a "Bayes (oracle)"
column to every task-metric table, each method's recovery MSE with its ratio to floors (a) and (b),
and the two floors as columns; in the figure, the Bayes accuracy and the floors as dashed lines.
Reference rows (``reference`` set) are never a method: not labelled by training mode, not counted
among the methods, and merged only with identical copies of themselves.

When the methods of a protocol do not share their conditions and seeds (merged runs, a slow method
run on fewer of them), every Average of that protocol is over the conditions all methods have, cells
and Averages short of the full sets are marked ``†`` and a footnote names what each method lacks
(:func:`unequal_sets` lists it, for ``mer report``'s warning). The figure's subtitle is the rows'
:func:`provenance` (data, epochs, seeds, training mode, protocol, the commit it is drawn at), and each
method has its own hollow marker and a small sideways offset, so equal values stay visible."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import textwrap
from typing import Any, Iterable, Sequence

import numpy as np

from spectraldiff.atomic import atomic_write, atomic_write_json, atomic_write_text
from spectraldiff.provenance import git

__all__ = ["format_table", "unequal_sets", "missing_rate_figure", "plot_missing_rate", "provenance",
           "git_commit", "write_report", "merge_results", "load_results", "ROW_ID_FIELDS"]


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
    "literature": "Literature missing (rows: the papers' MR labels; realised rate (2·two + one)/3)",
}
_TRAINING_NOTES = {
    "per_condition": "one model per condition, seed and method (`per_condition`)",
    "shared": "one model per seed and method, trained on the uniform mixture of all conditions "
              "(`shared`)",
}


#: Column header of the reference rows in ``table.md``, and their legend entry in the figure.
REFERENCE_LABEL = "Bayes (oracle)"
#: The floors of a dataset with an oracle: metric key → column header.
FLOORS = {"floor_utterance": "floor (a) utterance", "floor_conversation": "floor (b) conversation"}


def _split_reference(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(method rows, reference rows)."""
    return [r for r in rows if not r.get("reference")], [r for r in rows if r.get("reference")]


def _floors(rows: list[dict]) -> dict[tuple, dict[str, float]]:
    """(protocol, condition, seed) → the floors the rows record for it (the same for every row of
    it: they depend only on the test masks)."""
    out: dict[tuple, dict[str, float]] = {}
    for r in rows:
        if all(k in r["metrics"] for k in FLOORS):
            out.setdefault((r["protocol"], r["condition"], str(r["seed"])),
                           {k: r["metrics"][k] for k in FLOORS})
    return out


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
    rows, references = _split_reference(rows)
    if not rows:
        raise ValueError("no benchmark rows to tabulate")
    keys, label = _columns(task)
    rows = _labelled(rows)
    methods = _ordered(r["recoverer"] for r in rows)
    seeds = _ordered(str(r["seed"]) for r in rows)
    protocols = _ordered(r["protocol"] for r in rows)
    trainings = _ordered(r["training"] for r in rows if r.get("training"))
    references = [r for r in references if str(r["seed"]) in seeds]
    floors = _floors(references + rows)
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
    if references:
        lines[0] += (
            f" {REFERENCE_LABEL}: the Bayes-optimal label prediction from every observed entry of the "
            "conversation (the information of floor (b)), under the same test masks as the methods: "
            "the best any method can score there; computed from the dataset's known model, not a "
            "trained method."
        )
    for protocol in protocols:
        if len(protocols) > 1:
            lines += ["", f"## {_SECTION_TITLES.get(protocol, protocol)}"]
        lines += _protocol_tables([r for r in rows if r["protocol"] == protocol], methods, keys,
                                  [r for r in references if r["protocol"] == protocol],
                                  {k[1:]: v for k, v in floors.items() if k[0] == protocol})
    return "\n".join(lines) + "\n"


class _Coverage:
    """Which conditions and seeds the methods of one protocol's tables have, and where one falls short.

    ``conditions`` and ``seeds`` are all those any method has; ``common`` the conditions every method
    has. ``unequal``: some method lacks a condition, or a seed at one of its conditions. Then each
    column's Average is over ``common`` only, and over the column's seeds that have a result at every
    common condition (:meth:`average_rows`), and :meth:`mark` flags the cells and Averages that are
    not over the full sets, so that an Average never silently compares unequal sets.
    """

    def __init__(self, rows: list[dict], methods: list[str]):
        self.methods = methods
        self.conditions = _ordered(r["condition"] for r in rows)
        self.seeds = _ordered(str(r["seed"]) for r in rows)
        self._seeds_at: dict[tuple[str, str], set[str]] = {}
        for r in rows:
            self._seeds_at.setdefault((r["recoverer"], r["condition"]), set()).add(str(r["seed"]))
        self.common = [c for c in self.conditions if all((m, c) in self._seeds_at for m in methods)]
        self.unequal = any(self.gaps(m) for m in methods)

    def gaps(self, method: str) -> str:
        """What ``method`` lacks, e.g. ``"0.6 not run; seed 2 missing at 0.0, 0.3"``; "" when
        nothing."""
        parts = []
        absent = [c for c in self.conditions if (method, c) not in self._seeds_at]
        if absent:
            parts.append(f"{', '.join(absent)} not run")
        short: dict[tuple[str, ...], list[str]] = {}
        for c in self.conditions:
            have = self._seeds_at.get((method, c))
            if have is not None and have != set(self.seeds):
                short.setdefault(tuple(s for s in self.seeds if s not in have), []).append(c)
        for missing, at in short.items():
            parts.append(f"seed{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing at "
                         f"{', '.join(at)}")
        return "; ".join(parts)

    def average_rows(self, rows: list[dict]) -> list[dict]:
        """The rows of one column that enter its Average: all of them when the sets are equal; else
        those at a common condition, of a seed with a row at every common condition."""
        if not self.unequal:
            return rows
        rows = [r for r in rows if r["condition"] in self.common]
        complete = [s for s in self.seeds
                    if {r["condition"] for r in rows if str(r["seed"]) == s} == set(self.common)]
        return [r for r in rows if str(r["seed"]) in complete]

    def mark(self, rows: list[dict], average: bool = False) -> str:
        """"†" when the sets are unequal and the column's rows (at one condition, or ``average``: all
        of its rows) do not cover every seed (and, for an Average, every condition it has is common
        and every seed enters it); else ""."""
        if not self.unequal or not rows:
            return ""
        if average:
            used = self.average_rows(rows)
            if ({r["condition"] for r in rows} != set(self.common)
                    or {str(r["seed"]) for r in used} != set(self.seeds)):
                return _MARK
            return ""
        return _MARK if {str(r["seed"]) for r in rows} != set(self.seeds) else ""

    def footnote(self) -> list[str]:
        """The lines under a table with unequal sets, naming what each method lacks."""
        if not self.unequal:
            return []
        if self.common:
            scope = (f"each Average is over the condition{'s' if len(self.common) > 1 else ''} every "
                     f"method has ({', '.join(self.common)}) and, per column, the seeds with a result "
                     "at each of them")
        else:
            scope = "no condition is common to all methods, so there is no Average"
        lacking = "; ".join(f"{m}: {self.gaps(m)}" for m in self.methods if self.gaps(m))
        return ["", f"{_MARK} Unequal sets: the methods do not all have every condition "
                    f"({', '.join(self.conditions)}) and seed ({', '.join(self.seeds)}); {scope}. "
                    f"{_MARK} marks a cell (here and in the recovery table) not over every seed, and "
                    f"an Average not over every seed or over fewer conditions than its column has. "
                    f"Missing: {lacking}."]


#: The mark of a cell or Average over fewer conditions or seeds than the table's (see ``_Coverage``).
_MARK = "†"


def unequal_sets(rows: list[dict]) -> list[str]:
    """One line per protocol whose methods do not share their conditions and seeds, naming what each
    method lacks (``"random: gsdnet: 0.6 not run; seed 2 missing at 0.0"``); ``[]`` when they share
    them. :func:`format_table` marks such tables; ``mer report`` warns with these lines."""
    rows = _labelled(_split_reference(rows)[0])
    methods = _ordered(r["recoverer"] for r in rows)
    out = []
    for protocol in _ordered(r["protocol"] for r in rows):
        coverage = _Coverage([r for r in rows if r["protocol"] == protocol], methods)
        if coverage.unequal:
            out.append(f"{protocol}: " + "; ".join(f"{m}: {coverage.gaps(m)}" for m in methods
                                                   if coverage.gaps(m)))
    return out


def _protocol_tables(rows: list[dict], methods: list[str], keys: Sequence[str],
                     references: list[dict] | None = None,
                     floors: dict[tuple, dict[str, float]] | None = None) -> list[str]:
    """The metric and recovery tables of one protocol; ``references`` (the Bayes rows) add a column
    to the metric table, ``floors`` ((condition, seed) → floors) the ratios and floor columns to the
    recovery table. When the methods' condition or seed sets differ, cells and Averages not over the
    full sets carry a mark, a footnote names what each method lacks, and every Average is over the
    conditions common to all methods (see ``_Coverage``)."""
    references, floors = references or [], floors or {}
    coverage = _Coverage(rows, methods)
    conditions = coverage.conditions

    def select(method, condition=None, among=rows):
        return [
            r for r in among
            if r["recoverer"] == method and (condition is None or r["condition"] == condition)
        ]

    def column(name, among, cell_keys, scale=100.0, digits=1, render=None):
        """(header, cell(condition), average()) of the column of ``name``'s rows in ``among``."""
        render = render or (lambda rows_, average: (_average_cell if average else _cell)(
            rows_, cell_keys, scale, digits))

        def cell(c):
            chosen = select(name, c, among)
            if not chosen and coverage.unequal:
                return "not run"
            return render(chosen, False) + coverage.mark(chosen)

        def average():
            chosen = select(name, among=among)
            return render(coverage.average_rows(chosen), True) + coverage.mark(chosen, average=True)

        return name, cell, average

    def table(columns):
        out = ["", "| Condition | " + " | ".join(name for name, _, _ in columns) + " |",
               "| --- | " + " | ".join("---" for _ in columns) + " |"]
        for c in conditions:
            out.append(f"| {c} | " + " | ".join(cell(c) for _, cell, _ in columns) + " |")
        out.append("| Average | " + " | ".join(average() for _, _, average in columns) + " |")
        return out

    metric_columns = [column(m, rows, keys) for m in methods]
    if references:
        reference_rows = [{**r, "recoverer": REFERENCE_LABEL} for r in references]
        metric_columns.append(column(REFERENCE_LABEL, reference_rows, keys))
    metric_table = [*table(metric_columns), *coverage.footnote()]
    if not floors:
        return [
            *metric_table,
            "",
            "Recovery MSE of the dropped features (standardised units, seeds as above; – where nothing "
            "is dropped):",
            *table([column(m, rows, ["recovery_mse"], 1.0, 3) for m in methods]),
        ]

    floor_rows = [{"recoverer": name, "condition": c, "seed": seed, "metrics": values}
                  for (c, seed), values in floors.items() for name in FLOORS]

    def recovery(rows_, average: bool) -> str:
        value = (_average_cell if average else _cell)(rows_, ["recovery_mse"], 1.0, 3)
        ratios = [_ratio_mean(rows_, f"recovery_ratio_{info}", average)
                  for info in ("utterance", "conversation")]
        if value == "–" or "–" in ratios:
            return value
        return f"{value} ({ratios[0]}× / {ratios[1]}×)"

    recovery_columns = [column(m, rows, ["recovery_mse"], render=recovery) for m in methods]
    recovery_columns += [(header, *column(k, floor_rows, [k], 1.0, 3)[1:])
                         for k, header in FLOORS.items()]
    return [
        *metric_table,
        "",
        "Recovery MSE of the dropped features (standardised units, seeds as above; – where nothing "
        "is dropped), and in brackets its ratio to floor (a) / floor (b): the expected MSE of the "
        "Bayes recovery from the same utterance's observed modalities (a) and from every observed "
        "entry of the conversation (b), under the same test masks (last two columns; the mean of "
        "the ratios over seeds):",
        *table(recovery_columns),
    ]


def _ratio_mean(rows: list[dict], key: str, average: bool) -> str:
    """The mean of the rows' ``key`` (``average``: per seed the mean over conditions, then the mean
    over seeds), two decimals, no spread; "–" when none is finite."""
    per_seed = {}
    for r in rows:
        v = r["metrics"].get(key)
        if v is not None and math.isfinite(v):
            per_seed.setdefault(str(r["seed"]) if average else id(r), []).append(float(v))
    if not per_seed:
        return "–"
    return f"{np.mean([np.mean(v) for v in per_seed.values()]):.2f}"


#: Marker shapes of the methods in ``missing_rate.png``, in column order (hollow, so that two methods
#: with equal values, e.g. ``zero`` and ``mean`` at missing rate 0, both stay visible).
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
#: Sideways offset between neighbouring methods, as a fraction of the x range (categorical axes: of
#: one category), so that coincident points and error bars do not hide each other.
_DODGE = 0.02


def missing_rate_figure(rows: list[dict], task: str = "regression"):
    """The figure of ``missing_rate.png`` (a :class:`matplotlib.figure.Figure`, not registered with
    pyplot, so nothing needs closing): ACC2 (regression, non-zero convention) or ACC against the
    missing rate, one line per method, mean ± std over seeds as error bars.

    Only the random-protocol rows are plotted when there are any (with ``protocol="both"`` the fixed
    sets are in the table only); otherwise the availability sets are the x axis. Rows of a dataset
    with an oracle add the Bayes accuracy as a dashed line, and a second panel: the recovery MSE of
    every method with floors (a) and (b) as dashed lines.

    Each method has its own hollow marker shape and a small sideways offset (``_DODGE``; the x label
    says how much), so methods with equal values stay visible. The subtitle is the provenance (see
    :func:`provenance`): data and its fingerprint, epochs, seeds, training mode, protocol and
    conditions, and the commit the figure was drawn at.
    """
    from matplotlib.figure import Figure

    key = "acc" if task == "classification" else "acc2_non0"
    all_rows = rows
    rows, references = _split_reference(rows)
    rows = _labelled(rows)
    rows = [r for r in rows if r["protocol"] == "random"] or rows
    shown = rows[0]["protocol"] if rows else None
    references = [{**r, "recoverer": REFERENCE_LABEL} for r in references if r["protocol"] == shown]
    floor_rows = [{"recoverer": header, "condition": c, "metrics": {"value": values[k]}}
                  for (protocol, c, _), values in _floors(references + rows).items()
                  if protocol == shown for k, header in FLOORS.items()]
    methods = _ordered(r["recoverer"] for r in rows)
    conditions = _ordered(r["condition"] for r in rows)
    # The literature's rows sit at their labels ("lit0.7" at 0.7), with their own axis title.
    numeric = shown in ("random", "literature") and all(r["protocol"] == shown for r in rows)
    xs = ([float(c.removeprefix("lit")) for c in conditions] if numeric
          else list(range(len(conditions))))
    span = (max(xs) - min(xs)) if numeric and len(xs) > 1 else 1.0
    step = _DODGE * span if numeric else 5 * _DODGE

    def line(ax, rows_, name, metric, scale, offset=0.0, **style):
        means, stds, used = [], [], []
        for x, c in zip(xs, conditions):
            vals = [r["metrics"].get(metric) for r in rows_ if r["recoverer"] == name and r["condition"] == c]
            vals = [scale * v for v in vals if v is not None and math.isfinite(v)]
            if vals:
                used.append(x + offset)
                means.append(float(np.mean(vals)))
                stds.append(float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)
        ax.errorbar(used, means, yerr=stds, capsize=3, label=name, **style)

    def method_lines(ax, metric, scale):
        for i, m in enumerate(methods):
            line(ax, rows, m, metric, scale, offset=(i - (len(methods) - 1) / 2) * step,
                 marker=_MARKERS[i % len(_MARKERS)], markerfacecolor="none", markeredgewidth=1.5,
                 markersize=9 - 1.5 * (i % 3), alpha=0.85, zorder=2 + i)

    panels = 2 if floor_rows else 1
    fig = Figure(figsize=(6.4 * panels, 4.6), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)
    ax = axes[0, 0]
    method_lines(ax, key, 100.0)
    if references:
        line(ax, references, REFERENCE_LABEL, key, 100.0, linestyle="--", color="black")
    ax.set_ylabel(("ACC" if task == "classification" else "ACC2 (non-zero)") + " (%)")
    if floor_rows:
        ax = axes[0, 1]
        method_lines(ax, "recovery_mse", 1.0)
        for header, color in zip(FLOORS.values(), ("dimgray", "black")):
            line(ax, floor_rows, header, "value", 1.0, linestyle="--", color=color)
        ax.set_ylabel("recovery MSE (standardised)")
    dodge = f" (methods offset by {step:.2g} each, for visibility)" if len(methods) > 1 else ""
    pad = 0.05 * span if numeric else 0.5
    for ax in axes[0]:
        # the same x range in both panels, so that the offsets read alike in each
        ax.set_xlim(min(xs, default=0.0) - pad, max(xs, default=0.0) + pad)
        if numeric:
            ax.set_xlabel(("missing rate" if shown == "random"
                           else "MR label (literature protocol)") + dodge)
        else:
            ax.set_xticks(xs)
            ax.set_xticklabels(conditions, rotation=30)
            ax.set_xlabel("available modalities" + dodge)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(textwrap.fill(provenance(all_rows), width=int(110 * panels)), fontsize=8)
    return fig


def plot_missing_rate(rows: list[dict], path: str | os.PathLike, task: str = "regression") -> None:
    """Write :func:`missing_rate_figure` as a PNG to ``path`` (atomically, 120 dpi)."""
    fig = missing_rate_figure(rows, task)
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120), "wb")


def provenance(rows: list[dict]) -> str:
    """Where the rows come from, in one line (the figure's subtitle): the data (source, options and
    the fingerprint's first 8 hex digits), epochs (the training budget, ``train.epochs``), seeds,
    training mode, protocol and conditions (``plotted`` when several protocols), evaluation samples
    and the commit the figure is drawn at (:func:`git_commit`). A setting that differs between
    methods reads ``mixed: value (methods); ...``. Rows do not record the commit that produced them,
    so for merged older runs the commit is that of the report, not of the runs."""
    rows_, references = _split_reference(rows)
    rows_ = _labelled(rows_)
    protocols = _ordered(r["protocol"] for r in rows_)
    shown = "random" if "random" in protocols else (protocols[0] if protocols else None)
    conditions = _ordered(r["condition"] for r in rows_ if r["protocol"] == shown)
    protocol = f"{shown} ({', '.join(conditions)})"
    if len(protocols) > 1:
        protocol += " plotted; " + ", ".join(
            f"{p} ({len(_ordered(r['condition'] for r in rows_ if r['protocol'] == p))} conditions)"
            for p in protocols if p != shown) + " in table.md"
    seeds = {m: ", ".join(_ordered(str(r["seed"]) for r in rows_ if r["recoverer"] == m))
             for m in _ordered(r["recoverer"] for r in rows_)}
    parts = [
        f"data {_setting(rows_, _data_label)}",
        f"epochs {_setting(rows_, lambda r: _config(r, 'train', 'epochs'))}",
        f"seeds {_setting(rows_, lambda r: seeds[r['recoverer']])}",
        f"training {_setting(rows_, lambda r: r.get('training', 'unknown'))}",
        f"protocol {protocol}",
        f"eval samples {_setting(rows_, lambda r: _config(r, 'train', 'eval_samples'))}",
    ]
    if references:
        parts.append(f"reference {REFERENCE_LABEL}")
    gaps = unequal_sets(rows)
    if gaps:
        parts.append("unequal conditions/seeds across methods (see table.md)")
    return " · ".join(parts) + f" · drawn at {git_commit()}"


def _config(row: dict, *path: str):
    value: Any = row.get("config") or {}
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return "unknown" if value is None else value


def _data_label(row: dict) -> str:
    """``source(option=value, ...) fingerprint8``; a path option by its file name."""
    data = _config(row, "data")
    label = "unknown" if not isinstance(data, dict) else str(data.get("source", "unknown"))
    if isinstance(data, dict):
        options = [f"{k}={pathlib.Path(str(v)).name if k == 'path' else v}"
                   for k, v in (data.get("options") or {}).items() if k != "fingerprint"]
        if options:
            label += f"({', '.join(options)})"
        if data.get("task"):
            label += f" {data['task']}"
    fingerprint = str(row.get("dataset_fingerprint") or "")
    if fingerprint:
        label += " " + fingerprint.split(":")[-1][:8]
    return label


def _setting(rows: list[dict], get) -> str:
    """The one value of ``get(row)`` over the rows, or ``mixed: value (methods); ...``."""
    methods_by_value: dict[str, list[str]] = {}
    for r in rows:
        names = methods_by_value.setdefault(str(get(r)), [])
        if r["recoverer"] not in names:
            names.append(r["recoverer"])
    if len(methods_by_value) <= 1:
        return next(iter(methods_by_value), "unknown")
    return "mixed: " + "; ".join(f"{v} ({', '.join(ms)})" for v, ms in methods_by_value.items())


def git_commit() -> str:
    """``"commit <short hash>"`` of the work tree this module lies in, ``" + uncommitted changes"``
    when tracked files differ from it, or ``"commit unknown"`` when there is no ``git``, no work tree,
    this file is not tracked by it (an installed copy inside some other repository), or ``git`` takes
    too long (:func:`spectraldiff.provenance.git`)."""
    here = pathlib.Path(__file__).resolve()
    try:
        git(here.parent, "ls-files", "--error-unmatch", here.name)
        head = git(here.parent, "rev-parse", "--short", "HEAD")
        dirty = git(here.parent, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "commit unknown"
    return f"commit {head}" + (" + uncommitted changes" if dirty else "")


def write_report(rows: list[dict], out_dir: str | os.PathLike, task: str = "regression") -> None:
    """Write ``results.json``, ``table.md`` and ``missing_rate.png`` into ``out_dir``."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(rows, out / "results.json")
    atomic_write_text(format_table(rows, task), out / "table.md")
    plot_missing_rate(rows, out / "missing_rate.png", task)


#: The fields that identify a row; :func:`load_results` requires them.
ROW_ID_FIELDS = ("recoverer", "protocol", "condition", "seed")


def _is_score(value) -> bool:
    """A metric value a table can show: a number (not a bool), or null for an undefined score."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


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
            metrics = row.get("metrics", {})
            odd = sorted(k for k, v in metrics.items() if not _is_score(v)) if isinstance(metrics, dict) else None
            if odd is None or odd:
                bad = f"row {i}'s metrics {'are not a mapping' if odd is None else f'{odd} are not numbers'}"
                break
    if bad:
        raise ValueError(f"{path} is not a benchmark results file: {bad}")
    return rows


def merge_results(sources: Sequence[str | os.PathLike | list[dict]]) -> list[dict]:
    """Rows of several benchmark runs as one table.

    ``sources`` are ``results.json`` paths (or a run directory holding one, or row lists). A recoverer
    run with different hyperparameters in different rows is labelled ``name[key=value,...]`` by the
    settings that differ from its first occurrence (so ``rohydr`` and ``rohydr[stages=one]`` get a
    column each; a setting a row leaves to the recoverer's default reads ``key=default``). Where both
    rows record every setting (``recoverer_settings``), those are compared, so rows written before and
    after a release changed a default get a column each too. Two rows
    for the same (label, protocol, condition, seed) are an error: the runs overlap and one of them
    would silently win.
    """
    rows: list[dict] = []
    for source in sources:
        if isinstance(source, list):
            rows.extend(source)
            continue
        path = pathlib.Path(source)
        rows.extend(load_results(path / "results.json" if path.is_dir() else path))
    first_settings: dict[str, tuple[dict, dict | None]] = {}  # recoverer → (given, every) settings
    merged, seen = [], {}
    for row in rows:
        if row.get("reference"):
            # The same (condition, seed) of the same dataset gives the same reference row in every
            # run and training mode: keep one copy, refuse two that differ.
            key = (row["recoverer"], row["protocol"], row["condition"], row["seed"], "reference")
            if key in seen:
                if _reference_content(seen[key]) != _reference_content(row):
                    raise ValueError(f"two different {row['recoverer']} reference rows for "
                                     f"{row['protocol']} {row['condition']} / seed {row['seed']}: the "
                                     "merged runs used different datasets")
                continue
            seen[key] = row
            merged.append(row)
            continue
        name = row["recoverer"]
        given = dict((row.get("config") or {}).get("recoverer_kwargs") or {})
        every = row.get("recoverer_settings")
        first_given, first_every = first_settings.setdefault(name, (given, every))
        kwargs, base = (every, first_every) if every is not None and first_every is not None else (given, first_given)
        differing = sorted(k for k in set(kwargs) | set(base) if kwargs.get(k) != base.get(k))
        label = name
        if differing:
            # A setting the row leaves out ran at the recoverer's default: say so, not "None".
            label += "[" + ",".join(f"{k}={kwargs[k] if k in kwargs else 'default'}" for k in differing) + "]"
        training = row.get("training", "per_condition")
        key = (label, row["protocol"], row["condition"], row["seed"], training)
        if key in seen:
            raise ValueError(f"two results for {label} / {row['protocol']} {row['condition']} / seed "
                             f"{row['seed']} / {training}: the merged runs overlap")
        seen[key] = row
        merged.append({**row, "recoverer": label})
    _refuse_mixed_datasets(merged)
    return merged


def _refuse_mixed_datasets(rows: list[dict]) -> None:
    """One table compares methods on one dataset: rows whose ``dataset_fingerprint`` differ (rows
    without one are not judged) raise ``ValueError`` naming each dataset and its methods."""
    by_print: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("dataset_fingerprint"):
            by_print.setdefault(row["dataset_fingerprint"], []).append(row)
    if len(by_print) > 1:
        described = "; ".join(
            f"{_data_label(group[0])}: {', '.join(dict.fromkeys(r['recoverer'] for r in group))}"
            for group in by_print.values())
        raise ValueError(f"the results come from {len(by_print)} datasets ({described}); one table must not "
                         "mix datasets: report each dataset's runs separately")


def _reference_content(row: dict) -> tuple:
    """What two copies of a reference row must share: their dataset and their numbers."""
    return (row.get("dataset_fingerprint"), json.dumps(row.get("metrics"), sort_keys=True))
