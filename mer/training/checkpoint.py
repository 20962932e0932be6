"""The one checkpoint schema of ``mer``: what ``best.pt`` and ``last.pt`` hold, how they are written
(atomically) and read (``torch.load(..., weights_only=True)``: a checkpoint never runs code).

A checkpoint is a plain dict of tensors and plain containers:

* every checkpoint (``best.pt``, :meth:`TrainedModel.save`): ``format``, ``config`` (the
  :class:`~mer.config.RunConfig` as a dict), ``dataset_info``, ``model`` (state dict), ``best_epoch``,
  ``history``;
* ``last.pt`` adds what resuming needs: ``seed``, ``epoch``, ``optimizer``, ``best_state``,
  ``best_loss``, ``bad_epochs`` and ``rng`` (Python, NumPy and torch generator states, stored as
  tensors and ints by :func:`rng_state`).

:class:`Checkpoint` builds and reads that dict; nothing else does.
"""

from __future__ import annotations

import os
import pathlib
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from spectraldiff.atomic import atomic_write, atomic_write_json, jsonable

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "atomic_save",
    "atomic_write_json",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "jsonable",
]

CHECKPOINT_FORMAT = 1


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (see :func:`spectraldiff.atomic.atomic_write`)."""
    atomic_write(path, lambda handle: torch.save(obj, handle), "wb")


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
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means: not a checkpoint we can trust
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ValueError(f"{path}: not a mer checkpoint or unsafe to load: {reason}") from err
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
        ``modalities``, ``feature_dims``, ``task``, ``num_classes``, ``name``.
    model : dict
        The model's state dict.
    best_epoch : int
        1-based epoch of the best validation loss.
    history : list of dict
        The per-epoch records.
    resume : dict, optional
        ``last.pt`` only: ``seed``, ``epoch``, ``optimizer``, ``best_state``, ``best_loss``,
        ``bad_epochs``, ``rng``.
    """

    config: dict
    dataset_info: dict
    model: dict
    best_epoch: int = 0
    history: list = field(default_factory=list)
    resume: dict | None = None

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
                   payload.get("best_epoch", 0), payload.get("history") or [], resume)


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
