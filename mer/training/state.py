"""The state a training run carries from epoch to epoch: :class:`EarlyStopper` (best validation loss,
epochs without improvement) and :class:`TrainState` (epoch, history, best weights), both saved in
``last.pt`` and restored on resume."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["EarlyStopper", "TrainState"]


@dataclass
class EarlyStopper:
    """Keeps the lowest validation loss and stops after ``patience`` epochs without a lower one.

    Parameters
    ----------
    patience : int
        ``0``: never stop early.
    best_loss : float
    best_epoch : int
        1-based epoch of ``best_loss`` (``0``: none yet).
    bad_epochs : int
        Epochs since the last improvement.
    """

    patience: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, loss: float, epoch: int) -> bool:
        """Record the validation ``loss`` of 1-based ``epoch``; ``True`` when it is a new best."""
        if loss < self.best_loss:
            self.best_loss, self.best_epoch, self.bad_epochs = loss, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience


@dataclass
class TrainState:
    """Where a run stands after ``epoch`` epochs.

    Parameters
    ----------
    stopper : EarlyStopper
    epoch : int
        Epochs completed.
    history : list of dict
        One record per completed epoch.
    best_state : dict
        CPU copy of the model's state dict at ``stopper.best_epoch``.
    """

    stopper: EarlyStopper
    epoch: int = 0
    history: list = field(default_factory=list)
    best_state: dict = field(default_factory=dict)

    def finished(self, epochs: int) -> bool:
        """All ``epochs`` run, or stopped early."""
        return self.epoch >= epochs or self.stopper.should_stop

    def resume_fields(self) -> dict:
        """The ``last.pt`` entries of this state (see :class:`~mer.training.checkpoint.Checkpoint`)."""
        return {"epoch": self.epoch, "best_state": self.best_state, "best_loss": self.stopper.best_loss,
                "bad_epochs": self.stopper.bad_epochs}

    @classmethod
    def from_resume_fields(cls, resume: dict, best_epoch: int, history: list, patience: int) -> "TrainState":
        stopper = EarlyStopper(patience, float(resume["best_loss"]), int(best_epoch), int(resume["bad_epochs"]))
        return cls(stopper, int(resume["epoch"]), list(history), resume["best_state"])
