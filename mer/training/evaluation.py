"""Evaluation: :func:`evaluate_model` scores a model on conversations under given masks, and
:class:`TrainedModel` holds a trained model with the config, history and dataset description that
produced it (saved to and loaded from a checkpoint)."""

from __future__ import annotations

import os
import pathlib
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from mer.config import RunConfig
from mer.data import ConversationDataset, MaskedConversations, check_masks, collate_conversations
from mer.data.protocol import MaskPlan, MissingProtocol
from mer.metrics import classification_metrics, regression_metrics
from mer.model import MERModel
from mer.nn.task_loss import task_loss
from mer.recoverers import recovery_error
from mer.training.build import build_model, device_of
from mer.training.checkpoint import Checkpoint

__all__ = ["evaluate_model", "TrainedModel"]


@torch.no_grad()
def evaluate_model(
    model: MERModel,
    conversations: Sequence,
    masks: Sequence[np.ndarray],
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    regression_loss: str = "l1",
) -> dict[str, float]:
    """Metrics of ``model`` on ``conversations`` seeing only ``masks``.

    Returns the :func:`~mer.metrics.regression_metrics` keys (or the classification ones), plus
    ``recovery_mse`` (per-feature MSE of the dropped entries in standardised units; NaN when nothing
    is dropped) and ``loss`` (the mean task loss).
    """
    model.eval()
    loader = DataLoader(
        MaskedConversations(conversations, masks),
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate_conversations,
    )
    preds, labels, sse, count, loss_sum, n_utt = [], [], 0.0, 0.0, 0.0, 0
    for batch in loader:
        batch = batch.to(device)
        out = model(batch)
        mask = batch.utterance_mask
        n = int(mask.sum())
        loss_sum += float(task_loss(out.prediction, batch.labels, mask, model.task, regression_loss)) * n
        n_utt += n
        preds.append(out.prediction[mask].cpu())
        labels.append(batch.labels[mask].cpu())
        s, c = recovery_error(out.batch, batch.availability, out.recovery.features)
        sse += float(s)
        count += float(c)
    pred, true = torch.cat(preds), torch.cat(labels)
    if model.task == "classification":
        metrics = classification_metrics(pred, true)
    else:
        metrics = regression_metrics(pred, true)
    metrics["recovery_mse"] = sse / count if count > 0 else float("nan")
    metrics["loss"] = loss_sum / max(n_utt, 1)
    return metrics


class TrainedModel:
    """A trained :class:`MERModel` with the config, seed and history that produced it.

    Attributes
    ----------
    model : MERModel
    config : RunConfig
        Resolved (``config.seed`` is the seed).
    history : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``train_task_loss``, recoverer loss terms, ``valid_loss``,
        validation metrics, ``seconds``.
    best_epoch : int
        1-based epoch whose weights the model holds.
    out_dir : pathlib.Path or None
    """

    def __init__(self, model: MERModel, config: RunConfig, history: list[dict] | None = None,
                 best_epoch: int = 0, out_dir: pathlib.Path | None = None,
                 dataset_info: dict | None = None) -> None:
        self.model = model
        self.config = config
        self.history = list(history or [])
        self.best_epoch = int(best_epoch)
        self.out_dir = out_dir
        self.dataset_info = dict(dataset_info or {})

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def evaluate(
        self,
        dataset: ConversationDataset,
        split: str = "test",
        masks: Any = None,
        *,
        batch_size: int | None = None,
    ) -> dict[str, float]:
        """Metrics on ``dataset.split(split)``.

        Parameters
        ----------
        masks : optional
            ``None``: the training protocol, with the run's mask seed (so the test inputs are those
            every method sees); a :class:`~mer.data.protocol.MissingProtocol` (its ``seed``, when set, replaces the
            run's), rate, pattern, dict or ``"none"`` as in :func:`train`; or explicit ``(N_i, M)``
            arrays, one per conversation of the split.

        Returns
        -------
        dict
            See :func:`evaluate_model`.
        """
        _check_dataset_matches(dataset, self.dataset_info)
        part = dataset.split(split)
        explicit = (
            isinstance(masks, (list, tuple))
            and len(masks) > 0
            and not isinstance(masks[0], str)
        )
        if explicit:
            mask_list = check_masks(part, masks)
        else:
            protocol = (self.config.protocol if masks is None
                        else MissingProtocol.parse(masks, dataset.modalities))
            seed = self.config.mask_seed if protocol.seed is None else int(protocol.seed)
            mask_list = MaskPlan(dataset, protocol, seed).split(split)
        return evaluate_model(
            self.model,
            list(part),
            mask_list,
            batch_size=batch_size or self.config.train.eval_batch_size,
            device=self.device,
            regression_loss=self.config.train.regression_loss,
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write weights, config and dataset description to ``path`` (atomically)."""
        self.checkpoint().save(path)

    def checkpoint(self, model_state: dict | None = None) -> Checkpoint:
        """This model as a :class:`~mer.training.checkpoint.Checkpoint` (``model_state``: other
        weights than the model's current ones)."""
        state = self.model.state_dict() if model_state is None else model_state
        return Checkpoint(self.config.to_dict(), self.dataset_info, state, self.best_epoch, self.history)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> "TrainedModel":
        """Rebuild from a ``best.pt`` / :meth:`save` file, or from a run directory holding one.

        The file is read with ``torch.load(..., weights_only=True)``; anything else raises
        ``ValueError`` naming it."""
        path = pathlib.Path(path)
        if path.is_dir():
            path = path / "best.pt"
        ckpt = Checkpoint.load(path)
        config = RunConfig.from_dict(ckpt.config)
        if device is not None:
            config.train.device = device
        info = ckpt.dataset_info
        model = build_model(config, info["modalities"], info["feature_dims"], info["task"],
                            info.get("num_classes"))
        model.load_state_dict(ckpt.model)
        model.to(device_of(config.train.device))
        return cls(model, config, ckpt.history, ckpt.best_epoch, path.parent, info)

    def __repr__(self) -> str:
        cfg = self.config
        return (f"TrainedModel(recoverer={cfg.recoverer!r}, protocol={cfg.protocol.condition!r}, "
                f"seed={self.config.seed}, best_epoch={self.best_epoch})")



def _check_dataset_matches(dataset: ConversationDataset, info: dict) -> None:
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
