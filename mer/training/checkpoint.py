"""The one checkpoint schema of ``mer``: what ``best.pt`` and ``last.pt`` hold, how they are written
(atomically) and read (``torch.load(..., weights_only=True)``: a checkpoint never runs code).

A checkpoint is a plain dict of tensors and plain containers:

* every checkpoint (``best.pt``, :meth:`TrainedModel.save`): ``format``, ``config`` (the
  :class:`~mer.config.RunConfig` as a dict), ``dataset_info`` (:func:`dataset_info`: modalities,
  widths, task, classes, name and the content :func:`dataset_fingerprint`), ``model`` (state dict),
  ``best_epoch``, ``history``, ``recoverer_settings`` (every hyperparameter the recoverer was built
  with, its defaults included: :func:`mer.recoverers.recoverer_settings`; absent from older files);
* ``last.pt`` adds what resuming needs: ``seed``, ``epoch``, ``optimizer``, ``best_state``,
  ``best_loss``, ``bad_epochs`` and ``rng`` (Python, NumPy and torch generator states, stored as
  tensors and ints by :func:`rng_state`).

:class:`Checkpoint` builds and reads that dict; nothing else does. :func:`check_dataset_matches` is
the one check that a dataset fits a checkpoint's ``dataset_info`` (shapes when evaluating; the exact
content, by fingerprint, when resuming).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import random
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch

from spectraldiff.atomic import atomic_torch_save as atomic_save  # re-exported under mer's name
from spectraldiff.atomic import atomic_write_json, jsonable
from spectraldiff.safe_pickle import load_weights_only

from mer.data import ConversationDataset
from mer.recoverers import recoverer_settings

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "atomic_save",
    "atomic_write_json",
    "check_dataset_matches",
    "dataset_fingerprint",
    "dataset_info",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "jsonable",
]

CHECKPOINT_FORMAT = 1


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The dict a checkpoint file holds, loaded with ``weights_only=True``.

    Raises
    ------
    ValueError
        Naming the file, when it is missing, or is not a checkpoint, or holds anything but tensors
        and plain containers (a crafted pickle is refused, never run).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    payload = load_weights_only(path, "mer checkpoint", map_location)
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: not a mer checkpoint (holds a {type(payload).__name__}, not a dict)")
    return payload


@dataclass
class Checkpoint:
    """One checkpoint, ``best.pt`` or ``last.pt``.

    Parameters
    ----------
    config : dict
        The resolved run config, :meth:`RunConfig.to_dict`.
    dataset_info : dict
        :func:`dataset_info`: ``modalities``, ``feature_dims``, ``task``, ``num_classes``, ``name``,
        ``fingerprint``.
    model : dict
        The model's state dict.
    best_epoch : int
        1-based epoch of the best validation loss.
    history : list of dict
        The per-epoch records.
    resume : dict, optional
        ``last.pt`` only: ``seed``, ``epoch``, ``optimizer``, ``best_state``, ``best_loss``,
        ``bad_epochs``, ``rng``.
    recoverer_settings : dict, optional
        As read from a file: every hyperparameter its recoverer was built with (None for a file
        written before they were recorded). Writing always records the ones ``config`` builds now.
    """

    config: dict
    dataset_info: dict
    model: dict
    best_epoch: int = 0
    history: list = field(default_factory=list)
    resume: dict | None = None
    recoverer_settings: dict | None = None

    RESUME_KEYS = ("seed", "epoch", "optimizer", "best_state", "best_loss", "bad_epochs", "rng")

    def payload(self) -> dict:
        """The dict written to disk."""
        out = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config,
            "dataset_info": self.dataset_info,
            "model": self.model,
            "best_epoch": self.best_epoch,
            "history": self.history,
            # What the recoverer is built with now: its defaults may change in a later release.
            "recoverer_settings": recoverer_settings(self.config["recoverer"],
                                                     self.config.get("recoverer_kwargs") or {}),
        }
        if self.resume is not None:
            missing = [k for k in self.RESUME_KEYS if k not in self.resume]
            if missing:
                raise ValueError(f"a resumable checkpoint needs {missing}")
            out.update({k: self.resume[k] for k in self.RESUME_KEYS})
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`payload` to ``path`` atomically."""
        atomic_save(self.payload(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu", *,
             resumable: bool = False) -> "Checkpoint":
        """Read a checkpoint (see :func:`load_checkpoint`); ``resumable=True`` also requires the
        ``last.pt`` keys."""
        path = pathlib.Path(path)
        payload = load_checkpoint(path, map_location)
        needed = ["config", "dataset_info", "model"] + (list(cls.RESUME_KEYS) if resumable else [])
        missing = [k for k in needed if k not in payload]
        if missing:
            raise ValueError(f"{path} is not a mer {'resumable ' if resumable else ''}model checkpoint "
                             f"(no {' / '.join(missing)})")
        resume = {k: payload[k] for k in cls.RESUME_KEYS} if resumable else None
        return cls(payload["config"], payload["dataset_info"], payload["model"],
                   payload.get("best_epoch", 0), payload.get("history") or [], resume,
                   payload.get("recoverer_settings"))


# ------------------------------------------------------------------------------- the dataset
_fingerprints: "weakref.WeakKeyDictionary[ConversationDataset, str]" = weakref.WeakKeyDictionary()


def dataset_fingerprint(dataset: ConversationDataset) -> str:
    """``"sha256:<hex>"`` of a dataset's content: modalities, task, classes, label range, splits and,
    per conversation, its id, utterance ids, feature matrices (dtype, shape, bytes), labels,
    speakers and, when present, sequences and their lengths. The free-form ``name`` is left out. Computed once per dataset object (datasets are
    not modified in place)."""
    cached = _fingerprints.get(dataset)
    if cached is not None:
        return cached
    h = hashlib.sha256()

    def text(value) -> None:
        data = repr(value).encode("utf8")
        h.update(len(data).to_bytes(8, "little") + data)

    def array(a: np.ndarray) -> None:
        a = np.ascontiguousarray(a)
        text((a.dtype.str, a.shape))
        h.update(a.tobytes())

    text((dataset.modalities, dataset.task, dataset.num_classes, dataset.label_range,
          sorted(dataset.splits.items())))
    for conv in dataset:
        text((conv.conversation_id, tuple(conv.utterance_ids)))
        for m in dataset.modalities:
            array(conv.features[m])
        array(conv.labels)
        array(conv.speakers)
        if conv.sequences is not None:  # absent before sequences existed: old fingerprints hold
            for m in dataset.modalities:
                array(conv.sequences[m])
                array(conv.sequence_lengths[m])
    fingerprint = "sha256:" + h.hexdigest()
    _fingerprints[dataset] = fingerprint
    return fingerprint


def dataset_info(dataset: ConversationDataset) -> dict:
    """The ``dataset_info`` a checkpoint stores: ``modalities``, ``feature_dims``, ``task``,
    ``num_classes``, ``name``, ``fingerprint`` (:func:`dataset_fingerprint`)."""
    return {
        "modalities": list(dataset.modalities),
        "feature_dims": dataset.feature_dims,
        "task": dataset.task,
        "num_classes": dataset.num_classes,
        "name": dataset.name,
        "fingerprint": dataset_fingerprint(dataset),
    }


def check_dataset_matches(dataset: ConversationDataset, info: dict, *, resuming: str | None = None) -> None:
    """Raise ``ValueError`` unless ``dataset`` fits a checkpoint's ``dataset_info``: the same
    modalities, widths and task (any such dataset can be evaluated); with ``resuming`` (the run folder)
    also the same content, by :func:`dataset_fingerprint` (checkpoints written before fingerprints
    existed are not checked for it). An empty ``info`` is not checked."""
    if not info:
        return
    if list(dataset.modalities) != list(info["modalities"]):
        raise ValueError(
            f"dataset modalities {dataset.modalities} differ from the model's {info['modalities']}"
        )
    if dataset.feature_dims != dict(info["feature_dims"]):
        raise ValueError(
            f"dataset feature widths {dataset.feature_dims} differ from the model's {info['feature_dims']}"
        )
    if dataset.task != info["task"]:
        raise ValueError(f"dataset task {dataset.task!r} differs from the model's {info['task']!r}")
    saved = info.get("fingerprint")
    if resuming is not None and saved is not None and saved != dataset_fingerprint(dataset):
        raise ValueError(
            f"cannot resume {resuming}: it was trained on another dataset (fingerprint {saved}, "
            f"{info.get('name')!r}) than the one given ({dataset_fingerprint(dataset)}, {dataset.name!r}); "
            "pass the run's dataset, or use another out_dir / --out, or resume=False / --no-resume "
            "to start over"
        )


# --------------------------------------------------------------------------------- RNG states
def rng_state() -> dict:
    """Python, NumPy and torch (CPU and CUDA) generator states, to resume a run exactly; tensors, ints
    and lists only, so the checkpoint loads with ``weights_only=True``."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": gauss},
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    python, numpy = state["python"], state["numpy"]
    random.setstate((python["version"], tuple(int(v) for v in python["state"].tolist()), python["gauss"]))
    np.random.set_state((numpy["name"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
