"""Comparing two benchmark reports cell by cell: ``bench-eigh --compare OLD.json [NEW.json]``.

A cell is one backend at one grid point ``(backend, dtype, n, B)``. For every cell timed (status
``ok``) in both reports the comparison gives the old and new median, their ratio ``new / old`` and
the verdict of :func:`.spread.noise_verdict`: ``faster`` or ``slower`` only when the medians differ
by more than the larger IQR of the two runs, else ``same`` (within noise). Cells timed in only one
report are listed as only-old / only-new.
"""

from __future__ import annotations

import json
from pathlib import Path

from .spread import SAME, noise_verdict

#: Every report this module reads starts its ``format`` with this.
FORMAT_PREFIX = "spectraldiff.eigh_bench/"

#: The verdict of a cell when a report (format 1) has no spread to judge it by.
NO_SPREAD = "no spread recorded"

_CELL_KEYS = ("backend", "dtype", "n", "batch", "status")


def load_report(path: str | Path) -> dict:
    """Read a ``eigh_bench.json``; a missing, unreadable or foreign file is a ``ValueError`` naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"--compare {path}: no such file; give the eigh_bench.json of an earlier run") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"--compare {path}: cannot read it ({' '.join(str(error).split())})") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--compare {path}: not a bench-eigh JSON (invalid JSON: {error})") from None
    fmt = report.get("format") if isinstance(report, dict) else None
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_PREFIX):
        raise ValueError(f"--compare {path}: not a bench-eigh JSON (format is {fmt!r}, expected "
                         f"'{FORMAT_PREFIX}N'); give the eigh_bench.json that bench-eigh wrote")
    results = report.get("results")
    if not isinstance(results, list):
        raise ValueError(f"--compare {path}: not a bench-eigh JSON (no 'results' list)")
    for index, row in enumerate(results):
        if not isinstance(row, dict) or any(key not in row for key in _CELL_KEYS):
            raise ValueError(f"--compare {path}: results[{index}] lacks one of the keys {list(_CELL_KEYS)}")
    return report


def compare_reports(old: dict, new: dict) -> dict:
    """Cell-by-cell comparison of two reports (as :func:`load_report` returns them).

    Returns ``{"cells": [...], "only_old": [...], "only_new": [...], "counts": {...}}``: each cell has
    ``backend, dtype, n, batch, old_median_seconds, new_median_seconds, old_iqr_seconds,
    new_iqr_seconds, ratio`` (new / old) and ``verdict`` (``faster``/``slower``/``same``, or
    :data:`NO_SPREAD` when a report lacks the IQR); ``only_old``/``only_new`` hold the cells timed in
    one report only (``backend, dtype, n, batch`` and the other report's ``status``, ``None`` if
    absent there); ``counts`` counts the verdicts.
    """
    old_rows, new_rows = _rows(old), _rows(new)
    cells, only_old, only_new = [], [], []
    for key in sorted(set(old_rows) | set(new_rows), key=_sort_key):
        a, b = old_rows.get(key), new_rows.get(key)
        a_ok, b_ok = a is not None and a["status"] == "ok", b is not None and b["status"] == "ok"
        label = dict(zip(("backend", "dtype", "n", "batch"), key))
        if a_ok and not b_ok:
            only_old.append({**label, "other_status": None if b is None else b["status"]})
        elif b_ok and not a_ok:
            only_new.append({**label, "other_status": None if a is None else a["status"]})
        elif a_ok and b_ok:
            old_median, new_median = _median(a), _median(b)
            old_iqr, new_iqr = a.get("iqr_seconds"), b.get("iqr_seconds")
            if old_iqr is None or new_iqr is None:
                verdict = NO_SPREAD
            else:
                verdict = noise_verdict(new_median, new_iqr, old_median, old_iqr)
            cells.append({**label, "old_median_seconds": old_median, "new_median_seconds": new_median,
                          "old_iqr_seconds": old_iqr, "new_iqr_seconds": new_iqr,
                          "ratio": new_median / old_median, "verdict": verdict})
    counts = {}
    for cell in cells:
        counts[cell["verdict"]] = counts.get(cell["verdict"], 0) + 1
    return {"cells": cells, "only_old": only_old, "only_new": only_new, "counts": counts}


def render_comparison(comparison: dict, old: dict, new: dict, old_name: str, new_name: str) -> str:
    """The comparison as Markdown: where each report came from, one table row per cell, the rest."""
    lines = [
        f"# bench-eigh: {new_name} against {old_name}",
        "",
        f"- old: {_origin(old)}",
        f"- new: {_origin(new)}",
        "- rule: faster/slower only if |new median − old median| > max(old IQR, new IQR); else same within noise",
    ]
    if old.get("device", {}).get("key") != new.get("device", {}).get("key"):
        lines.append(f"- warning: different devices ({old.get('device', {}).get('key')} → "
                     f"{new.get('device', {}).get('key')}); the ratios compare machines, not code")
    lines += [
        "",
        "| backend | dtype | n | B | old median [ms] | new median [ms] | new/old | change |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in comparison["cells"]:
        change = "same within noise" if c["verdict"] == SAME else c["verdict"]
        lines.append(
            f"| {c['backend']} | {c['dtype']} | {c['n']} | {c['batch']} | "
            f"{_ms(c['old_median_seconds'], c['old_iqr_seconds'])} | "
            f"{_ms(c['new_median_seconds'], c['new_iqr_seconds'])} | {c['ratio']:.3f} | {change} |"
        )
    counts = comparison["counts"]
    lines += ["", "cells in both: " + (", ".join(
        f"{counts[v]} {'same within noise' if v == SAME else v}" for v in sorted(counts)) or "none")]
    for title, cells in (("only in old", comparison["only_old"]), ("only in new", comparison["only_new"])):
        if cells:
            lines.append(f"{title} ({len(cells)}): " + "; ".join(_cell_label(c) for c in cells))
    return "\n".join(lines) + "\n"


def _rows(report: dict) -> dict[tuple, dict]:
    return {(r["backend"], r["dtype"], r["n"], r["batch"]): r for r in report["results"]}


def _sort_key(key: tuple) -> tuple:
    backend, dtype, n, batch = key
    return dtype, n, batch, backend


def _median(row: dict) -> float:
    # Format 1 rows carry a median too; "seconds" (the fastest call) only stands in if it is missing.
    return row.get("median_seconds") if row.get("median_seconds") is not None else row["seconds"]


def _ms(median: float, iqr: float | None) -> str:
    return f"{median * 1e3:.4g}" if iqr is None else f"{median * 1e3:.4g} (IQR {iqr * 1e3:.2g})"


def _cell_label(cell: dict) -> str:
    where = "" if cell["other_status"] is None else f" ({cell['other_status']} in the other)"
    return f"{cell['backend']} {cell['dtype']} n={cell['n']} B={cell['batch']}{where}"


def _origin(report: dict) -> str:
    commit = report.get("commit_info") or {}
    machine = report.get("machine_info") or {}
    revision = "commit unknown"
    if commit.get("id"):
        revision = f"commit {commit['id'][:10]}" + (" (dirty)" if commit.get("dirty") else "")
    host = machine.get("node") or "host unknown"
    return f"{report.get('created', 'date unknown')}, {revision}, {host}, device {report.get('device', {}).get('key')}"
