"""Evaluation: :func:`evaluate_model` scores a model on conversations under given masks, and
:class:`TrainedModel` holds a trained model with the config, history and dataset description that
produced it (saved to and loaded from a checkpoint); :meth:`TrainedModel.predict` returns its
per-utterance predictions, aligned with the conversation and utterance ids.

Evaluation is seeded. A diffusion recoverer samples its fill of the missing entries, so an
unseeded evaluation of one checkpoint gives different metrics every call. Every pass of
:func:`evaluate_model` therefore runs inside :func:`seeded_rng` with the seed
:func:`evaluation_seed` derives from ``(run seed, split, draw)``: the same checkpoint, data and
masks give bit-identical metrics in every call and every process (on one machine and device),
and the caller's RNG streams are left exactly as they were, so validation inside training does not
shift the training stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import random
from typing import Any, Iterator, Sequence

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
from mer.training.checkpoint import Checkpoint, check_dataset_matches
from mer.training.memory import conversations_within, step_budget

__all__ = ["evaluate_model", "evaluation_seed", "seeded_rng", "TrainedModel"]


def evaluation_seed(seed: int, split: str, draw: int = 0) -> int:
    """The seed of draw ``draw`` of an evaluation on ``split`` of a run seeded ``seed``.

    The first 8 bytes (little-endian) of ``sha256(f"mer.evaluate/{seed}/{split}/{draw}")``, keeping
    63 bits: stable across processes, platforms and Python versions (unlike ``hash()``), and
    unrelated for neighbouring seeds, splits and draws.

    >>> evaluation_seed(0, "test") == evaluation_seed(0, "test", 0) != evaluation_seed(0, "valid")
    True
    """
    text = f"mer.evaluate/{int(seed)}/{split}/{int(draw)}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & (2**63 - 1)


@contextlib.contextmanager
def seeded_rng(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block with torch's CPU generator (and ``device``'s, when it is a CUDA device), NumPy's
    global generator and Python's :mod:`random` seeded by ``seed``; restore all of them afterwards.

    Built on :func:`torch.random.fork_rng`, so only the CPU and the one CUDA device the model runs on
    are forked (and seeded): other devices' generators are not touched.
    """
    dev = torch.device(device)
    cuda = []
    if dev.type == "cuda":
        cuda = [dev.index if dev.index is not None else torch.cuda.current_device()]
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=cuda):
            torch.default_generator.manual_seed(seed)
            for index in cuda:
                with torch.cuda.device(index):
                    torch.cuda.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def evaluate_model(
    model: MERModel,
    conversations: Sequence,
    masks: Sequence[np.ndarray],
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    regression_loss: str = "l1",
    seed: int = 0,
    split: str = "test",
    samples: int = 1,
) -> dict[str, float]:
    """Metrics of ``model`` on ``conversations`` seeing only ``masks``, with seeded sampling noise.

    Parameters
    ----------
    seed, split : int, str
        Draw ``k`` runs under :func:`seeded_rng` with :func:`evaluation_seed` ``(seed, split, k)``
        (the trainer passes the run's seed and ``"valid"``; :meth:`TrainedModel.evaluate` the run's
        seed and the split it scores). The caller's RNG streams are unchanged afterwards.
    samples : int
        ``K ≥ 1`` draws ``k = 0 … K−1``, each a full pass over the conversations, whose metrics are
        averaged (the mean of each key). Only a recoverer whose ``stochastic`` attribute is true
        samples; any other gives the same numbers every draw, so it runs once and records 1.

    Returns
    -------
    dict
        The :func:`~mer.metrics.regression_metrics` keys (or the classification ones), plus
        ``recovery_mse`` (per-feature MSE of the dropped entries in standardised units; NaN when
        nothing is dropped), ``loss`` (the mean task loss), ``eval_samples`` (the number of draws
        averaged) and ``eval_seed`` (``seed``). The numbers depend on ``batch_size`` as well: the
        noise of a draw is one stream over the batches in order.
    """
    draws = draw_count(model, samples)
    runs = []
    for k in range(draws):
        with seeded_rng(evaluation_seed(seed, split, k), device):
            runs.append(_evaluate_once(model, conversations, masks, batch_size, device, regression_loss))
    metrics = runs[0] if draws == 1 else {key: sum(r[key] for r in runs) / draws for key in runs[0]}
    metrics["eval_samples"] = draws
    metrics["eval_seed"] = int(seed)
    return metrics


def draw_count(model: MERModel, samples) -> int:
    """Seeded draws to run for ``samples`` requested: ``samples``, or 1 for a recoverer that does not
    sample (every draw would be the same)."""
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
    return int(samples) if getattr(model.recoverer, "stochastic", False) else 1


def _passes(model: MERModel, conversations: Sequence, masks: Sequence[np.ndarray], batch_size: int,
            device) -> Iterator[tuple]:
    """``(batch, output)`` of each batch of one evaluation pass, conversations in order (so the
    utterances of ``output.prediction[batch.utterance_mask]`` follow the conversations' order)."""
    model.eval()
    loader = DataLoader(
        MaskedConversations(conversations, masks),
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate_conversations,
    )
    for batch in loader:
        batch = batch.to(device)
        yield batch, model(batch)


@torch.no_grad()
def _evaluate_once(model: MERModel, conversations: Sequence, masks: Sequence[np.ndarray],
                   batch_size: int, device, regression_loss: str) -> dict[str, float]:
    """One pass of :func:`evaluate_model` with whatever RNG state the caller set."""
    preds, labels, sse, count, loss_sum, n_utt = [], [], 0.0, 0.0, 0.0, 0
    for batch, out in _passes(model, conversations, masks, batch_size, device):
        mask = batch.utterance_mask
        n = int(mask.sum())
        loss_sum += float(task_loss(out.prediction, batch.labels, mask, model.task, regression_loss)) * n
        n_utt += n
        preds.append(out.prediction[mask].cpu())
        labels.append(batch.labels[mask].cpu())
        s, c = recovery_error(out.batch, out.observed, out.recovery.features)
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


@torch.no_grad()
def _predict_once(model: MERModel, conversations: Sequence, masks: Sequence[np.ndarray],
                  batch_size: int, device) -> np.ndarray:
    """One pass's outputs of the real utterances, in order: ``(n,)`` regression predictions or
    ``(n, C)`` class probabilities (float64)."""
    outputs = []
    for batch, out in _passes(model, conversations, masks, batch_size, device):
        pred = out.prediction[batch.utterance_mask]
        if model.task == "classification":
            pred = torch.softmax(pred.double(), dim=-1)
        outputs.append(pred.double().cpu())
    return torch.cat(outputs).numpy()


def _ids(conversations: Sequence) -> dict[str, np.ndarray]:
    """``conversation_id`` and ``utterance_id`` ``(n,)`` of every utterance, in order."""
    return {
        "conversation_id": np.array([c.conversation_id for c in conversations
                                     for _ in range(c.num_utterances)], dtype=str),
        "utterance_id": np.array([u for c in conversations for u in c.utterance_ids], dtype=str),
    }


def _rows(conversations: Sequence, masks: Sequence[np.ndarray], modalities) -> dict[str, np.ndarray]:
    """``label`` ``(n,)``, ``availability`` ``(n, M)`` and ``modalities`` ``(M,)`` of every utterance."""
    return {
        "label": np.concatenate([np.asarray(c.labels).reshape(-1) for c in conversations]),
        "availability": np.concatenate([np.asarray(m, dtype=bool) for m in masks]),
        "modalities": np.array(list(modalities), dtype=str),
    }


def _recover_once(model: MERModel, conversations: Sequence, masks: Sequence[np.ndarray], batch_size: int,
                  device) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One pass's recovered and real standardised features of the real utterances, in order:
    ``({m: (n, d_m)}, {m: (n, d_m)})`` float64."""
    recovered: dict[str, list] = {}
    real: dict[str, list] = {}
    for batch, out in _passes(model, conversations, masks, batch_size, device):
        keep = batch.utterance_mask
        for m, x in out.batch.features.items():
            recovered.setdefault(m, []).append(out.recovery.features[m][keep].double().cpu())
            real.setdefault(m, []).append(x[keep].double().cpu())
    return ({m: torch.cat(v).numpy() for m, v in recovered.items()},
            {m: torch.cat(v).numpy() for m, v in real.items()})


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
        samples: int | None = None,
        seed: int | None = None,
    ) -> dict[str, float]:
        """Metrics on ``dataset.split(split)``, deterministic: the same in every call and process.

        Parameters
        ----------
        masks : optional
            ``None``: the training protocol, with the run's mask seed (so the test inputs are those
            every method sees); a :class:`~mer.data.protocol.MissingProtocol` (its ``seed``, when set, replaces the
            run's), rate, pattern, dict or ``"none"`` as in :func:`train`; or explicit ``(N_i, M)``
            arrays, one per conversation of the split.
        samples : int, optional
            Seeded draws to average where the recoverer samples (default
            ``config.train.eval_samples``, 1 unless set); see :func:`evaluate_model`.
        seed : int, optional
            Seed of the sampling noise (default: the run's seed, ``config.seed``); the draws use
            :func:`evaluation_seed` ``(seed, split, k)``. Independent of the mask seed.

        Returns
        -------
        dict
            See :func:`evaluate_model` (``eval_samples`` and ``eval_seed`` say how it was drawn).
        """
        part, mask_list = self._split_and_masks(dataset, split, masks)
        return evaluate_model(
            self.model,
            list(part),
            mask_list,
            batch_size=self._batch_size(dataset, batch_size),
            device=self.device,
            regression_loss=self.config.train.regression_loss,
            seed=self.config.seed if seed is None else int(seed),
            split=split,
            samples=self.config.train.eval_samples if samples is None else samples,
        )

    def predict(
        self,
        dataset: ConversationDataset,
        split: str = "test",
        masks: Any = None,
        *,
        batch_size: int | None = None,
        samples: int | None = None,
        seed: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Per-utterance predictions on ``dataset.split(split)``, aligned with their ids.

        The same inputs, masks and seeded noise as :meth:`evaluate` (``masks``, ``batch_size``,
        ``samples`` and ``seed`` mean the same), so with one draw the metrics of these predictions
        are the ones :meth:`evaluate` reports. With ``K > 1`` draws of a sampling recoverer the
        predictions (regression) or probabilities (classification) of the draws are averaged
        (:meth:`evaluate` averages the metrics of the draws instead).

        Returns
        -------
        dict of numpy arrays, one row per utterance of the split (``n``), conversations in split
        order and utterances in speaking order:

        * ``conversation_id``, ``utterance_id`` — ``(n,)`` str;
        * regression: ``prediction`` ``(n,)`` float; classification: ``predicted_class`` ``(n,)``
          int64 and ``probabilities`` ``(n, C)`` (softmax of the logits; rows sum to 1);
        * ``label`` ``(n,)`` — the dataset's label (float, or int64 class);
        * ``availability`` ``(n, M)`` bool — the mask the model saw, columns in ``modalities`` order;
        * ``modalities`` ``(M,)`` str.

        >>> preds = trained.predict(dataset, "test", masks=0.3)            # doctest: +SKIP
        >>> preds["utterance_id"][:2], preds["prediction"][:2]            # doctest: +SKIP
        """
        part, mask_list = self._split_and_masks(dataset, split, masks)
        conversations = list(part)
        if not conversations:
            raise ValueError(f"the {split!r} split of dataset {dataset.name!r} is empty; nothing to predict")
        draws = draw_count(self.model, self.config.train.eval_samples if samples is None else samples)
        run_seed = self.config.seed if seed is None else int(seed)
        size = self._batch_size(dataset, batch_size)
        total = None
        for k in range(draws):
            with seeded_rng(evaluation_seed(run_seed, split, k), self.device):
                out = _predict_once(self.model, conversations, mask_list, size, self.device)
            total = out if total is None else total + out
        output = total / draws
        result = _ids(conversations)
        if self.model.task == "classification":
            result["predicted_class"] = output.argmax(axis=1).astype(np.int64)
            result["probabilities"] = output
        else:
            result["prediction"] = output
        result.update(_rows(conversations, mask_list, dataset.modalities))
        return result

    def recover(
        self,
        dataset: ConversationDataset,
        split: str = "test",
        masks: Any = None,
        *,
        batch_size: int | None = None,
        samples: int = 1,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """The recovered and the real features of every utterance of ``dataset.split(split)``.

        The inputs, masks and seeded noise of :meth:`evaluate` (``masks``, ``batch_size`` and
        ``seed`` mean the same). With ``samples = K > 1`` a sampling recoverer's ``K`` seeded
        recoveries are **averaged** (an estimate of the posterior mean from ``K`` posterior samples:
        its expected squared error is ``(1 + 1/K)`` times the posterior variance for exact samples);
        :meth:`evaluate` averages metrics instead.

        Returns
        -------
        dict, one row per utterance (``n``), conversations in split order:

        * ``recovered``, ``real`` — ``{modality: (n, d_m) float64}`` in the model's standardised units
          (training-split statistics, the units of ``recovery_mse``); observed entries of
          ``recovered`` are the real ones;
        * ``availability`` ``(n, M)`` bool, ``modalities`` ``(M,)``, ``label`` ``(n,)``,
          ``conversation_id`` / ``utterance_id`` ``(n,)``;
        * ``recovery_mse`` — the per-feature MSE over the unobserved entries (NaN when none), as
          :meth:`evaluate` computes it from one draw; ``samples`` — the draws averaged.
        """
        if self.model.uses_sequences:
            raise ValueError("recover() returns utterance vectors; this model (fusion 'mult') recovers "
                             "each missing modality's step sequence, so there is no vector per utterance "
                             "to return: read ModelOutput.recovery of a forward pass instead")
        draws = draw_count(self.model, samples)
        part, mask_list = self._split_and_masks(dataset, split, masks)
        conversations = list(part)
        if not conversations:
            raise ValueError(f"the {split!r} split of dataset {dataset.name!r} is empty; nothing to recover")
        run_seed = self.config.seed if seed is None else int(seed)
        size = self._batch_size(dataset, batch_size)
        modalities = list(dataset.modalities)
        total: dict[str, np.ndarray] | None = None
        for k in range(draws):
            with seeded_rng(evaluation_seed(run_seed, split, k), self.device), torch.no_grad():
                recovered, real = _recover_once(self.model, conversations, mask_list, size, self.device)
            total = recovered if total is None else {m: total[m] + recovered[m] for m in modalities}
        recovered = {m: total[m] / draws for m in modalities}
        result = {"recovered": recovered, "real": real, **_ids(conversations),
                  **_rows(conversations, mask_list, modalities)}
        missing = ~result["availability"]
        sse = sum(float(((recovered[m] - real[m])[missing[:, j]] ** 2).sum()) for j, m in enumerate(modalities))
        count = sum(int(missing[:, j].sum()) * real[m].shape[1] for j, m in enumerate(modalities))
        result["recovery_mse"] = sse / count if count else float("nan")
        result["samples"] = draws
        return result

    def _batch_size(self, dataset: ConversationDataset, batch_size: int | None) -> int:
        """``batch_size`` (default ``train.eval_batch_size``), shrunk to fit ``train.step_memory`` for
        ``dataset``'s longest conversation as in training (:mod:`mer.training.memory`)."""
        wanted = batch_size or self.config.train.eval_batch_size
        return conversations_within(self.model, dataset.max_utterances, wanted,
                                    step_budget(self.config.train))

    def _split_and_masks(self, dataset: ConversationDataset, split: str, masks: Any) -> tuple:
        """``(dataset.split(split), one (N_i, M) mask per conversation)`` for :meth:`evaluate` and
        :meth:`predict`."""
        check_dataset_matches(dataset, self.dataset_info)
        part = dataset.split(split)
        explicit = (
            isinstance(masks, (list, tuple))
            and len(masks) > 0
            and not isinstance(masks[0], str)
        )
        if explicit:
            return part, check_masks(part, masks)
        protocol = (self.config.protocol if masks is None
                    else MissingProtocol.parse(masks, dataset.modalities))
        mask_seed = self.config.mask_seed if protocol.seed is None else int(protocol.seed)
        return part, MaskPlan(dataset, protocol, mask_seed).split(split)

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

        The recoverer is built with the settings the file records (all of them, defaults included,
        which then stand in ``config.recoverer_kwargs``), so a later release's defaults do not change
        a saved model; a file from before they were recorded is built from its config.

        The file is read with ``torch.load(..., weights_only=True)``; anything else raises
        ``ValueError`` naming it."""
        path = pathlib.Path(path)
        if path.is_dir():
            path = path / "best.pt"
        ckpt = Checkpoint.load(path)
        config = RunConfig.from_dict(ckpt.config)
        if ckpt.recoverer_settings is not None:
            # Build it as it was trained, every setting given, whatever this release's defaults are.
            config.recoverer_kwargs = dict(ckpt.recoverer_settings)
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
