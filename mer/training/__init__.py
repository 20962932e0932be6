"""Training, evaluation and checkpoints of ``mer`` models (see ``docs/mer_training.md``).

* :mod:`~mer.training.build` — :func:`resolve_config` (config + overrides), :func:`build_model`;
* :mod:`~mer.training.loop` — :func:`train`, :func:`train_epoch`, resume;
* :mod:`~mer.training.state` — :class:`TrainState`, :class:`EarlyStopper`;
* :mod:`~mer.training.evaluation` — :func:`evaluate_model`, :class:`TrainedModel`;
* :mod:`~mer.training.checkpoint` — the one checkpoint schema (:class:`Checkpoint`), loaded with
  ``weights_only=True``, and the dataset fingerprint a run is tied to;
* :mod:`~mer.training.run_lock` — :class:`RunLock`, a run's exclusive hold on its output folder;
* :mod:`~mer.training.distributed` — data-parallel training under ``torchrun`` (rank 0 writes);
* :mod:`~mer.training.run_log` — the per-epoch log lines (logger ``mer.training``, ``train.log``);
* :mod:`~mer.training.trackers` — result trackers (``history.csv``, TensorBoard), by name in
  :data:`~mer.training.trackers.TRACKERS`.

The masks a run sees come from :class:`mer.data.protocol.MaskPlan`.
"""

from spectraldiff.atomic import jsonable

from mer.data.protocol import protocol_masks
from mer.nn.task_loss import task_loss
from mer.training.build import build_model, resolve_config
from mer.training.checkpoint import (
    Checkpoint,
    atomic_save,
    atomic_write_json,
    dataset_fingerprint,
    load_checkpoint,
)
from mer.training.evaluation import TrainedModel, evaluate_model
from mer.training.loop import train, train_epoch
from mer.training.run_lock import RunLock, RunLockedError
from mer.training.state import EarlyStopper, TrainState

__all__ = [
    "Checkpoint",
    "EarlyStopper",
    "RunLock",
    "RunLockedError",
    "TrainState",
    "TrainedModel",
    "atomic_save",
    "atomic_write_json",
    "build_model",
    "dataset_fingerprint",
    "evaluate_model",
    "jsonable",
    "load_checkpoint",
    "protocol_masks",
    "resolve_config",
    "task_loss",
    "train",
    "train_epoch",
]
