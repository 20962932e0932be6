"""Training curves of one or several runs: ``mer plot curves RUN [RUN...] --out FIG.png``.

A run folder (``mer train --out DIR``, ``mer.train(..., out_dir=DIR)``) holds its per-epoch history
in ``history.csv`` and in ``metrics.json``; :func:`read_history` reads the first it finds.
:func:`plot_curves` draws two panels: the task loss on the training split (solid) and the
validation split (dashed) per epoch, and one validation metric per epoch; one colour per run,
labelled by the run folder's name. The task loss, not the training objective ``L_task + β Σ
L_recoverer``, so that runs of different recoverers compare on one scale (``history.csv`` has the
objective and each recoverer term).
"""

from __future__ import annotations

import csv
import json
import math
import os
import pathlib
from typing import Sequence

from spectraldiff.atomic import atomic_write

__all__ = ["read_history", "plot_curves", "DEFAULT_METRICS"]

#: The validation metric drawn when none is named: the first of these a run's history has.
DEFAULT_METRICS = ("acc2_non0", "acc")


def read_history(run: str | os.PathLike) -> list[dict[str, float]]:
    """The per-epoch records of the run folder ``run``: ``history.csv`` (empty cells are NaN), or
    the ``history`` of ``metrics.json`` when there is no CSV.

    Raises
    ------
    ValueError
        When ``run`` is not a folder, or holds neither file, or its history has no epoch.
    """
    folder = pathlib.Path(run)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a run folder (it does not exist or is a file)")
    table, record = folder / "history.csv", folder / "metrics.json"
    if table.is_file():
        with open(table, newline="", encoding="utf8") as handle:
            history = [{k: _float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    elif record.is_file():
        try:
            history = json.loads(record.read_text(encoding="utf8")).get("history") or []
        except (json.JSONDecodeError, AttributeError) as err:
            raise ValueError(f"{record} is not a metrics.json of a run: {err}") from None
        history = [{k: _float(v) for k, v in h.items()} for h in history]
    else:
        raise ValueError(f"{folder} holds no history.csv or metrics.json; give the folder of a run "
                         "(mer train --out DIR)")
    if not history:
        raise ValueError(f"{folder} has no finished epoch in its history")
    return history


def plot_curves(runs: Sequence[str | os.PathLike], path: str | os.PathLike,
                metric: str | None = None) -> str:
    """Draw the loss and validation-metric curves of ``runs`` into the PNG ``path``.

    Parameters
    ----------
    runs : paths of run folders
        Each is one line per panel, labelled by the folder's name (its path when two names clash).
    path : path
        The PNG to write (atomically); its folder is created.
    metric : str, optional
        The validation metric of the right panel, with or without ``valid_`` (``acc7``,
        ``valid_mae``); default the first of :data:`DEFAULT_METRICS` the runs have.

    Returns
    -------
    str
        The metric drawn (without ``valid_``).

    Raises
    ------
    ValueError
        For a folder that is not a run (see :func:`read_history`), or a ``metric`` that no run has
        (the error lists those they have).
    """
    if not runs:
        raise ValueError("give at least one run folder")
    histories = [read_history(r) for r in runs]
    names = [pathlib.Path(r).name or str(r) for r in runs]
    if len(set(names)) < len(names):
        names = [str(r) for r in runs]
    available = sorted({k[len("valid_"):] for h in histories for rec in h for k in rec
                        if k.startswith("valid_") and k not in ("valid_loss", "valid_eval_samples",
                                                                 "valid_eval_seed")})
    if metric is None:
        metric = next((m for m in DEFAULT_METRICS if m in available), available[0] if available else None)
    else:
        metric = metric[len("valid_"):] if metric.startswith("valid_") else metric
        if metric not in available:
            raise ValueError(f"no run has the validation metric {metric!r}; they have {available}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(11.0, 4.0))
    for i, (name, history) in enumerate(zip(names, histories)):
        color = f"C{i % 10}"
        epochs = [rec.get("epoch", k + 1) for k, rec in enumerate(history)]
        loss_ax.plot(epochs, _column(history, "train_task_loss"), color=color, marker=".", label=f"{name} train")
        loss_ax.plot(epochs, _column(history, "valid_loss"), color=color, marker=".", linestyle="--",
                     label=f"{name} valid")
        if metric is not None:
            metric_ax.plot(epochs, _column(history, f"valid_{metric}"), color=color, marker=".", label=name)
    loss_ax.set_ylabel("task loss (train: solid, valid: dashed)")
    metric_ax.set_ylabel(f"valid {metric}" if metric else "no validation metric")
    for ax in (loss_ax, metric_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    out = pathlib.Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(out, lambda handle: fig.savefig(handle, format="png", dpi=120), "wb")
    finally:
        plt.close(fig)
    return metric


def _column(history: list[dict[str, float]], key: str) -> list[float]:
    return [rec.get(key, math.nan) for rec in history]


def _float(value) -> float:
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
