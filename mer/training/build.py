"""From a config to a model: :func:`resolve_config` applies the explicit overrides to a
:class:`~mer.config.RunConfig` and validates it; :func:`build_model` builds the model it describes;
:func:`config_differences` says where two saved configs differ (resume and benchmark-rerun checks)."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import torch

from spectraldiff.atomic import jsonable

from mer.config import RunConfig
from mer.data.protocol import MissingProtocol
from mer.model import MERModel
from mer.recoverers import build_recoverer

__all__ = ["build_model", "resolve_config", "device_of", "config_differences", "settings_differences",
           "RESUMABLE_SETTINGS"]

#: Settings that may change between an interrupted run and its resumption.
# ``train.eval_samples`` only changes how the final metrics are computed, not the training.
# ``train.trackers`` only changes where the per-epoch numbers are also written.
RESUMABLE_SETTINGS = ("train.epochs", "train.device", "train.progress", "train.eval_samples",
                      "train.trackers")


def build_model(
    config: RunConfig,
    modalities: Sequence[str],
    feature_dims: Mapping[str, int],
    task: str,
    num_classes: int | None = None,
) -> MERModel:
    """The model a config describes, for data with these modalities, widths and task."""
    recoverer = build_recoverer(
        config.recoverer,
        list(modalities),
        config.model.recovery_dims(feature_dims),
        graph_config=config.model.graph,
        **config.recoverer_kwargs,
    )
    return MERModel(list(modalities), dict(feature_dims), recoverer, config.model, task, num_classes)


def resolve_config(
    config: RunConfig | Mapping | str | os.PathLike | None = None,
    *,
    recoverer: str | None = None,
    masks: Any = None,
    seed: int | None = None,
    device: str | None = None,
    epochs: int | None = None,
    recoverer_kwargs: Mapping | None = None,
    modalities: Sequence[str] | None = None,
) -> RunConfig:
    """A validated copy of ``config`` (object, dict or file) with the explicit arguments applied."""
    if config is None:
        cfg = RunConfig()
    elif isinstance(config, RunConfig):
        cfg = RunConfig.from_dict(config.to_dict())
    elif isinstance(config, Mapping):
        cfg = RunConfig.from_dict(config)
    elif isinstance(config, (str, os.PathLike)):
        cfg = RunConfig.from_file(config)
    else:
        raise ValueError(f"config must be a RunConfig, a dict or a file path, got {type(config).__name__}")
    if recoverer is not None:
        cfg.recoverer = recoverer
    if recoverer_kwargs is not None:
        cfg.recoverer_kwargs = dict(recoverer_kwargs)
    if masks is not None:
        cfg.protocol = MissingProtocol.parse(masks, list(modalities) if modalities else None)
    if seed is not None:
        cfg.seed = int(seed)
    if device is not None:
        cfg.train.device = str(device)
    if epochs is not None:
        cfg.train.epochs = int(epochs)
    cfg.validate()
    if modalities is not None:
        cfg.protocol.validate(list(modalities))
    return cfg


def device_of(name: str) -> torch.device:
    """``torch.device(name)``, refusing CUDA where there is none."""
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r} is not a torch device name; use 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use device='cpu'")
    return dev


def config_differences(saved: Mapping, now: Mapping, ignore: Sequence[str] = ()) -> dict[str, tuple]:
    """Dotted setting name → ``(saved value, current value)`` for every setting two
    :meth:`RunConfig.to_dict` dicts disagree on, except those in ``ignore``; ``recoverer_kwargs``
    compares as one setting. A setting a saved config lacks (written before it existed) counts as
    its default; tuples and lists compare equal (JSON has only lists)."""
    old, new = _flatten(_normalized(saved)), _flatten(_normalized(now))
    return {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
            if k not in ignore and old.get(k) != new.get(k)}


def settings_differences(saved: Mapping, now: Mapping) -> dict[str, tuple]:
    """``recoverer_settings.<name>`` → ``(saved value, current value)`` for every recoverer setting two
    records of :func:`~mer.recoverers.recoverer_settings` disagree on (compared as JSON values, so a
    tuple equals the list a file stores)."""
    old, new = jsonable(dict(saved)), jsonable(dict(now))
    return {f"recoverer_settings.{k}": (old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)}


def _normalized(config: Mapping) -> dict:
    try:
        config = RunConfig.from_dict(config).to_dict()
    except (TypeError, ValueError):
        pass  # compare it as it is: the differences will say what is wrong
    return jsonable(config)


def _flatten(d: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping) and k != "recoverer_kwargs":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
