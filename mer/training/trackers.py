"""Result trackers: where a run's per-epoch numbers go besides ``metrics.json``.

A tracker is a small object the training loop calls (the model is PyKEEN's ``ResultTracker``):
:meth:`~ResultTracker.start_run` once with the resolved config, :meth:`~ResultTracker.log_metrics`
once per epoch with that epoch's history record, :meth:`~ResultTracker.end_run` once at the end
(also when the run fails). Trackers register by name in :data:`TRACKERS`; a config names them in
``train.trackers`` (CLI: ``--tracker NAME``).

* ``csv`` (:class:`CSVResultTracker`) — ``history.csv``, one row per epoch, one column per key.
  Every run with an output folder keeps one, whether or not it is named.
* ``tensorboard`` (:class:`TensorBoardResultTracker`) — event files under ``tensorboard/``, read
  by ``tensorboard --logdir RUN/tensorboard``; needs the ``tensorboard`` package.

A resumed run starts its trackers at the epoch it resumes from: what they hold beyond it (an epoch
logged just before the run was killed, and not saved in ``last.pt``) is dropped, so no epoch
appears twice.
"""

from __future__ import annotations

import csv
import io
import math
import pathlib
from typing import Any, Iterable, Mapping

from spectraldiff import Registry
from spectraldiff.atomic import atomic_write_text

__all__ = ["ResultTracker", "CSVResultTracker", "TensorBoardResultTracker", "TRACKERS",
           "build_trackers"]

#: Tracker name → class; each class is built as ``cls(out_dir)``.
TRACKERS: Registry[type["ResultTracker"]] = Registry("tracker")


class ResultTracker:
    """What a tracker does; the base class records nothing.

    Parameters
    ----------
    out_dir : path
        The run folder; a tracker writes only inside it.
    """

    def __init__(self, out_dir: str | pathlib.Path) -> None:
        self.out_dir = pathlib.Path(out_dir)

    def start_run(self, config: Mapping[str, Any], *, step: int = 0) -> None:
        """Open the tracker for a run with the resolved ``config`` (a :meth:`RunConfig.to_dict`
        dict); ``step`` is the last step already done (the epoch a resumed run continues from,
        ``0`` for a new run): anything recorded after it is dropped."""

    def log_metrics(self, metrics: Mapping[str, float], step: int, prefix: str = "") -> None:
        """Record ``metrics`` (name → number; ``None`` or NaN for undefined) at ``step`` (the
        1-based epoch), each name preceded by ``prefix``."""

    def end_run(self) -> None:
        """Flush and close; the tracker is not used again."""


@TRACKERS.register("csv")
class CSVResultTracker(ResultTracker):
    """``history.csv`` in the run folder: a header, then one row per step. The ``epoch`` column
    holds the step, the others the metrics in the order first logged; an undefined value (``None``,
    NaN) is an empty cell, a float is written with ``repr`` (it reads back exactly).

    A key first seen after the header was written rewrites the file with the wider header (earlier
    rows leave the new column empty); otherwise each step appends one line.
    """

    name = "history.csv"

    def __init__(self, out_dir: str | pathlib.Path) -> None:
        super().__init__(out_dir)
        self.path = self.out_dir / self.name
        self._columns: list[str] = []
        self._rows: list[dict[str, str]] = []

    def start_run(self, config: Mapping[str, Any], *, step: int = 0) -> None:
        self._columns, self._rows = [], []
        if step > 0 and self.path.is_file():
            with open(self.path, newline="", encoding="utf8") as handle:
                reader = csv.DictReader(handle)
                self._columns = list(reader.fieldnames or [])
                self._rows = [row for row in reader if _int_or_none(row.get("epoch")) is not None
                              and int(row["epoch"]) <= step]
        self._rewrite()

    def log_metrics(self, metrics: Mapping[str, float], step: int, prefix: str = "") -> None:
        row = {"epoch": str(int(step))}
        row.update({f"{prefix}{k}": _cell(v) for k, v in metrics.items() if f"{prefix}{k}" != "epoch"})
        self._rows.append(row)
        new = [k for k in row if k not in self._columns]
        if new:
            self._columns += new
            self._rewrite()
        else:
            with open(self.path, "a", newline="", encoding="utf8") as handle:
                self._writer(handle).writerow(row)

    def _writer(self, handle) -> csv.DictWriter:
        return csv.DictWriter(handle, fieldnames=self._columns, restval="", lineterminator="\n")

    def _rewrite(self) -> None:
        if not self._columns:
            self._columns = ["epoch"]
        buffer = io.StringIO()
        writer = self._writer(buffer)
        writer.writeheader()
        writer.writerows(self._rows)
        atomic_write_text(buffer.getvalue(), self.path)


@TRACKERS.register("tensorboard")
class TensorBoardResultTracker(ResultTracker):
    """TensorBoard event files in ``<out_dir>/tensorboard/`` (``torch.utils.tensorboard``).

    A key ``group_name`` becomes the scalar tag ``group/name`` (``train_loss`` → ``train/loss``,
    ``valid_acc2_non0`` → ``valid/acc2_non0``), so TensorBoard shows the training terms and the
    validation metrics as two sections; a key without ``_`` (``seconds``) stays as it is. The
    config is written once as text (tag ``config``). Undefined values (``None``, NaN) are skipped.

    Raises
    ------
    ValueError
        When the ``tensorboard`` package is not installed.
    """

    folder = "tensorboard"

    def __init__(self, out_dir: str | pathlib.Path) -> None:
        super().__init__(out_dir)
        try:
            import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it; fail before training)
        except ImportError:
            raise ValueError("the tensorboard tracker needs the tensorboard package: "
                             "pip install tensorboard") from None
        self.path = self.out_dir / self.folder
        self._writer = None

    def start_run(self, config: Mapping[str, Any], *, step: int = 0) -> None:
        import json

        from torch.utils.tensorboard import SummaryWriter

        # purge_step hides the events a killed run logged after the epoch it resumes from.
        self._writer = SummaryWriter(str(self.path), purge_step=step + 1 if step > 0 else None)
        if step == 0:
            self._writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def log_metrics(self, metrics: Mapping[str, float], step: int, prefix: str = "") -> None:
        for key, value in metrics.items():
            value = _number(value)
            if value is not None and key != "epoch":
                self._writer.add_scalar(self.tag(f"{prefix}{key}"), value, int(step))
        self._writer.flush()

    def end_run(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @staticmethod
    def tag(key: str) -> str:
        group, sep, name = key.partition("_")
        return f"{group}/{name}" if sep and name else key


def build_trackers(names: Iterable[str], out_dir: str | pathlib.Path | None) -> list[ResultTracker]:
    """The trackers of a run: ``csv`` first whenever there is an ``out_dir``, then each of
    ``names`` (``train.trackers``) once.

    Raises
    ------
    ValueError
        For an unknown name (the error lists the valid ones), trackers named without an
        ``out_dir`` to write into, or a tracker whose package is missing.
    """
    names = list(dict.fromkeys(names))
    for name in names:
        TRACKERS.get(name)
    if out_dir is None:
        if names:
            raise ValueError(f"train.trackers {names} write into the run folder; give out_dir "
                             "(mer train --out DIR)")
        return []
    chosen = ["csv"] + [n for n in names if n != "csv"]
    return [TRACKERS.get(n)(out_dir) for n in chosen]


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    number = _number(value)
    return "" if number is None else repr(number)


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None
