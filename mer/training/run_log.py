"""A run's log: one line per epoch on the ``mer.training`` logger and in the run folder's ``train.log``.

The library configures no handler: through the Python API the lines reach only the handlers the user
set up (``logging.basicConfig(level=logging.INFO)`` shows them); ``mer train`` shows them on stderr.
``train.log`` gets them whatever the logging configuration, through a file handler that
:class:`RunLog` attaches to ``mer.training`` for the run's life and removes after; it takes only the
records of the thread that opened it, so two runs in one process never write into each other's log.
A resumed run appends to ``train.log``; a run that starts over rewrites it.

An epoch line (:func:`epoch_line`)::

    epoch 2/5 | train loss 1.3750 task 1.3750 | valid loss 0.8803 acc2_non0 0.5000 ... | 0.37 s | no improvement 1/8
"""

from __future__ import annotations

import logging
import math
import pathlib
import threading
from typing import Mapping

__all__ = ["LOGGER", "LOG_FILE", "RunLog", "epoch_line", "split_line", "stopping_note"]

LOGGER = logging.getLogger("mer.training")
LOG_FILE = "train.log"
FILE_FORMAT = "%(asctime)s %(levelname)s %(message)s"

# Validation metrics an epoch line shows, in this order, when the split has them (regression, then
# classification); the rest are in metrics.json and history.csv.
HEADLINE_METRICS = ("acc2_non0", "f1_non0", "acc7", "mae", "corr", "acc", "f1_weighted", "recovery_mse")


def epoch_line(record: Mapping[str, float], epochs: int, note: str) -> str:
    """``epoch k/N | train loss … task … <recoverer terms> | valid loss … <metrics> | S s | note``
    for one history record (the keys :func:`mer.training.loop.train` writes)."""
    train = [("loss", record["train_loss"]), ("task", record["train_task_loss"])]
    train += [(k[len("train_"):], v) for k, v in record.items()
              if k.startswith("train_") and k not in ("train_loss", "train_task_loss")]
    valid = [("loss", record["valid_loss"])]
    valid += [(k, record[f"valid_{k}"]) for k in HEADLINE_METRICS if f"valid_{k}" in record]
    return " | ".join([f"epoch {record['epoch']}/{epochs}", "train " + _pairs(train),
                       "valid " + _pairs(valid), f"{record['seconds']:.2f} s", note])


def split_line(split: str, metrics: Mapping[str, float]) -> str:
    """``<split> loss … <metrics>``: the headline metrics of one evaluated split."""
    pairs = [("loss", metrics["loss"])] if "loss" in metrics else []
    pairs += [(k, metrics[k]) for k in HEADLINE_METRICS if k in metrics]
    return f"{split} " + _pairs(pairs)


def stopping_note(is_best: bool, bad_epochs: int, patience: int, best_epoch: int) -> str:
    """The early-stopping part of an epoch line."""
    if is_best:
        return "new best"
    if patience > 0:
        return f"no improvement {bad_epochs}/{patience} (best epoch {best_epoch})"
    return f"no improvement for {bad_epochs} (best epoch {best_epoch})"


def _pairs(pairs) -> str:
    return " ".join(f"{name} {_number(value)}" for name, value in pairs)


def _number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}"


class _ThisThread(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread


class RunLog:
    """Context manager: the log of one run.

    Parameters
    ----------
    out_dir : path, optional
        The run folder; ``None``: log to ``mer.training`` only, no file.
    append : bool
        Append to an existing ``train.log`` (a resumed run) instead of rewriting it.
    """

    def __init__(self, out_dir: str | pathlib.Path | None, append: bool) -> None:
        self.path = pathlib.Path(out_dir) / LOG_FILE if out_dir is not None else None
        self.append = append
        self._handler: logging.FileHandler | None = None

    def __enter__(self) -> "RunLog":
        if self.path is not None:
            self._handler = logging.FileHandler(self.path, mode="a" if self.append else "w",
                                                encoding="utf8")
            self._handler.setFormatter(logging.Formatter(FILE_FORMAT))
            self._handler.addFilter(_ThisThread())
            LOGGER.addHandler(self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._handler is not None:
            LOGGER.removeHandler(self._handler)
            self._handler.close()
            self._handler = None

    def warning(self, msg: str, *args) -> None:
        """Log ``msg % args`` at WARNING on ``mer.training`` (shown even with nothing configured) and
        into ``train.log``."""
        LOGGER.warning(msg, *args, stacklevel=2)

    def info(self, msg: str, *args) -> None:
        """Log ``msg % args`` at INFO on ``mer.training``, and into ``train.log`` even when the
        logger's level hides INFO (the default: nothing configured)."""
        if LOGGER.isEnabledFor(logging.INFO):
            LOGGER.info(msg, *args, stacklevel=2)
        elif self._handler is not None:
            self._handler.handle(LOGGER.makeRecord(LOGGER.name, logging.INFO, "(run log)", 0, msg,
                                                   args, None))
