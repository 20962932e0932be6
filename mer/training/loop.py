"""The training loop: :func:`train` fits a :class:`~mer.model.MERModel` and returns a
:class:`~mer.training.evaluation.TrainedModel`; :func:`train_epoch` is one pass over the training split.

One epoch: the training split under the run's :class:`~mer.data.protocol.MaskPlan` (training masks
per epoch, validation masks built once), Adam on ``L_task + β Σ L_recoverer`` with global-norm
gradient clipping; then the validation split. Early stopping (:class:`~mer.training.state.EarlyStopper`)
keeps the weights of the epoch with the lowest validation task loss.

With ``out_dir`` the run writes, atomically: ``config.json`` (the resolved config, seed included) at
the start; ``last.pt`` (everything needed to resume) and ``metrics.json`` after every epoch;
``best.pt`` (the best weights) and the final ``metrics.json`` (with test metrics) at the end. The
files are described in ``docs/mer_training.md``; the checkpoint schema in
:mod:`mer.training.checkpoint`. Calling :func:`train` again with the same ``out_dir`` resumes from
``last.pt`` exactly (epoch, optimizer, RNG streams, early-stopping counters), on the same dataset only
(by its fingerprint).

Watching a run: each epoch logs one line on the ``mer.training`` logger and, with ``out_dir``, in
``train.log`` (:mod:`mer.training.run_log`), and goes to the run's trackers
(:mod:`mer.training.trackers`): ``history.csv`` always with ``out_dir``, TensorBoard when
``train.trackers`` names it.

For its whole life a run holds ``out_dir`` exclusively (:class:`~mer.training.run_lock.RunLock`): a
second run on it fails at once. Once it holds the folder, it deletes the temporary files a killed
save left there.

Launched by ``torchrun`` with more than one process, :func:`train` trains data-parallel
(:mod:`mer.training.distributed`): the same global batches and masks as one process, split across
ranks; rank 0 holds the folder, writes everything and evaluates.
"""

from __future__ import annotations

import contextlib
import math
import os
import pathlib
import random
import time
from typing import Any, Callable, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

from spectraldiff.atomic import atomic_write_json, remove_stale_temporaries

from mer.config import RunConfig
from mer.data import ConversationDataset, MaskedConversations, collate_conversations
from mer.data.protocol import MaskPlan
from mer.data.source import describe_data
from mer.model import MERModel
from mer.nn.task_loss import task_loss
from mer.recoverers import recoverer_settings
from mer.training.build import (
    RESUMABLE_SETTINGS,
    build_model,
    config_differences,
    device_of,
    resolve_config,
    settings_differences,
)
from mer.training.checkpoint import (
    Checkpoint,
    check_dataset_matches,
    dataset_fingerprint,
    dataset_info,
    rng_state,
    set_rng_state,
)
from mer.training.distributed import DataParallel, index_batches
from mer.training.evaluation import TrainedModel, evaluate_model
from mer.training.memory import StepPlan, plan_steps
from mer.training.run_lock import RunLock
from mer.training.run_log import RunLog, epoch_line, split_line, stopping_note
from mer.training.state import EarlyStopper, TrainState
from mer.training.trackers import ResultTracker, build_trackers

__all__ = ["train", "train_epoch"]

#: What an earlier run in the folder leaves that a fresh start must not be mixed with (the trackers
#: rewind their own files, such as ``history.csv``, to the epoch a run starts from).
STALE_ON_RESTART = ("best.pt", "last.pt", "metrics.json")


def train(
    dataset: ConversationDataset,
    recoverer: str | None = None,
    masks: Any = None,
    config: RunConfig | Mapping | str | os.PathLike | None = None,
    *,
    seed: int | None = None,
    device: str | None = None,
    epochs: int | None = None,
    recoverer_kwargs: Mapping | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = True,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> TrainedModel:
    """Train a model with a named recoverer under a missing-modality protocol.

    Parameters
    ----------
    dataset : ConversationDataset
        Any dataset with non-empty ``train`` and ``valid`` splits (e.g.
        :func:`mer.data.synthetic_conversations` or :meth:`ConversationDataset.from_arrays`).
    recoverer : str, optional
        A name of :func:`mer.recoverers.available_recoverers`; default ``config.recoverer``
        (``"gsdnet"``).
    masks : optional
        The protocol, applied alike to train, valid and test: a
        :class:`~mer.data.protocol.MissingProtocol` (or dict of its fields), a float (random missing
        rate), a tuple of modality names (fixed pattern), or ``"none"`` for full availability.
        Default ``config.protocol``.
    config : RunConfig, dict or path to a JSON/YAML file, optional
    seed, device, epochs, recoverer_kwargs : optional
        Override the corresponding config fields.
    out_dir : path, optional
        Where to write ``config.json``, ``last.pt``, ``best.pt`` and ``metrics.json``, and
        ``train.log``, ``history.csv`` and the files of ``train.trackers``; held exclusively
        (``out_dir/.lock``) while the run lives.
    resume : bool
        If ``out_dir/last.pt`` exists, continue from it (its config must equal this one, except
        ``train.epochs``, ``train.device`` and ``train.progress``, and its dataset fingerprint must
        be this dataset's).
    on_epoch_end : callable, optional
        Called with each epoch's history record after its checkpoint is written (on rank 0 only
        in a data-parallel run).

    Returns
    -------
    TrainedModel
        Holding the weights of the best validation epoch.

    Raises
    ------
    ValueError
        For an empty train or valid split, an unknown recoverer or setting, a protocol the dataset
        cannot satisfy, a CUDA device without CUDA, a resume whose config or dataset differs, or a
        ``last.pt`` that is not a safe checkpoint, or (data-parallel, under ``torchrun``) a
        ``train.batch_size`` that is not a multiple of the number of processes.
    RunLockedError
        (a ``ValueError``) When another live run holds ``out_dir``.
    """
    if not isinstance(dataset, ConversationDataset):
        raise ValueError(f"dataset must be a ConversationDataset, got {type(dataset).__name__}")
    for split in ("train", "valid"):
        if not dataset.splits[split]:
            raise ValueError(
                f"dataset {dataset.name!r} has an empty {split!r} split; train needs train and valid "
                "conversations (give splits= to ConversationDataset.from_arrays)"
            )
    cfg = resolve_config(config, recoverer=recoverer, masks=masks, seed=seed, device=device,
                         epochs=epochs, recoverer_kwargs=recoverer_kwargs,
                         modalities=dataset.modalities)
    # Record the data actually given, not what the config says: the DataConfig load_data built it
    # from, or "in_memory" with its fingerprint (a later `mer evaluate` then asks for --data).
    cfg.data = describe_data(dataset, dataset_fingerprint(dataset))
    plan = MaskPlan(dataset, cfg.protocol, cfg.mask_seed, cfg.train.train_masks)
    if cfg.protocol.kind == "random":
        # Fail before training, with the data layer's message, for a rate M cannot reach.
        plan.split("valid")
    dev = device_of(cfg.train.device)
    out = pathlib.Path(out_dir) if out_dir is not None else None
    parallel = DataParallel.from_env()
    if parallel is None:
        with _holding(out, cfg.train.trackers) as trackers:
            return _fit(dataset, cfg, plan, dev, out, resume, on_epoch_end, trackers)
    parallel.check_batch_size(cfg.train.batch_size)
    dev = parallel.device(dev)
    parallel.start(dev)
    with parallel.main_holds(_holding(out, cfg.train.trackers)) as trackers:
        return _fit(dataset, cfg, plan, dev, out, resume, on_epoch_end, trackers or [], parallel)


@contextlib.contextmanager
def _holding(out: pathlib.Path | None, tracker_names):
    """Hold ``out`` (when given) and clear what a killed save left there; yields the run's trackers."""
    trackers = build_trackers(tracker_names, out)
    with RunLock(out, what="mer train") if out is not None else contextlib.nullcontext():
        if out is not None:
            remove_stale_temporaries(out)
        yield trackers


def _fit(dataset: ConversationDataset, cfg: RunConfig, plan: MaskPlan, dev: torch.device,
         out: pathlib.Path | None, resume: bool, on_epoch_end,
         trackers: list[ResultTracker], parallel: DataParallel | None = None) -> TrainedModel:
    """:func:`train` once its inputs are checked and ``out`` (when given) is held (by rank 0 of a
    data-parallel run, where the others only read ``last.pt`` from it)."""
    main = parallel is None or parallel.is_main
    info = dataset_info(dataset)
    _seed_everything(cfg.seed)
    model = build_model(cfg, dataset.modalities, dataset.feature_dims, dataset.task, dataset.num_classes)
    model.fit_statistics(dataset)
    steps = plan_steps(model, dataset.max_utterances, cfg.train)
    if not model.uses_sequences:  # per-utterance rows of at most sequence_steps steps always fit
        model.recoverer.check_memory(dataset, steps.train, dev)  # refuse before the first epoch
    model.to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)

    state = TrainState(EarlyStopper(cfg.train.patience), best_state=_cpu_state(model))
    if out is not None:
        last = out / "last.pt"
        resuming = resume and last.is_file()
        if parallel is not None:  # every rank resumes from rank 0's last.pt, or none does
            resuming = parallel.from_main(resuming)
        if resuming:
            state = _restore(last, cfg, dataset, model, optimizer, dev)
        if main:
            if not resuming:
                # A fresh start (or resume=False) first removes an earlier run's weights and metrics, so
                # a start cut short never leaves them beside this run's config.json.
                for name in STALE_ON_RESTART:
                    (out / name).unlink(missing_ok=True)
            atomic_write_json(cfg.to_dict(), out / "config.json")
    net = parallel.wrap(model, dev) if parallel is not None else model

    train_part = dataset.split("train")
    valid_part = list(dataset.split("valid"))
    valid_masks = plan.valid
    stopped = state.finished(cfg.train.epochs)
    epochs_bar = tqdm(range(state.epoch, cfg.train.epochs), desc=f"train {cfg.recoverer}",
                      disable=not cfg.train.progress or stopped or not main, leave=False)
    run_log = RunLog(out, append=state.epoch > 0) if main else _Silent()
    with run_log as log, _tracking(trackers, cfg, state.epoch):
        log.info("%s", _start_line(cfg, dataset, dev, out, state.epoch, stopped))
        if model.uses_sequences and not dataset.has_sequences:
            log.warning("model.fusion='mult' on %s, which has no sequences: every utterance is one step "
                        "of its vector (load MMSA files with sequences=True, --sequences)", dataset.name)
        if steps.split(cfg.train.batch_size) or steps.eval < cfg.train.eval_batch_size:
            log.info("%s", _memory_line(steps, cfg))
        for epoch in epochs_bar:
            if stopped:
                break
            started = time.perf_counter()
            record = train_epoch(net, optimizer, train_part, plan.train(epoch), cfg, epoch, dev,
                                 parallel=parallel, micro_batch=steps.train)
            valid = None
            if main:  # data-parallel: rank 0 evaluates the whole split, the others wait for it
                valid = evaluate_model(model, valid_part, valid_masks, batch_size=steps.eval,
                                       device=dev, regression_loss=cfg.train.regression_loss,
                                       seed=cfg.seed, split="valid")
            if parallel is not None:
                valid = parallel.from_main(valid)
            record.update({f"valid_{k}": v for k, v in valid.items()})
            record["epoch"] = epoch + 1
            record["seconds"] = time.perf_counter() - started
            state.history.append(record)
            state.epoch = epoch + 1
            is_best = state.stopper.update(valid["loss"], epoch + 1)
            if is_best:
                state.best_state = _cpu_state(model)
            epochs_bar.set_postfix(valid_loss=f"{valid['loss']:.4f}")
            # Trackers before last.pt: an epoch killed in between is redone on resume, and the
            # trackers drop what they hold beyond the epoch they resume from.
            for tracker in trackers:
                tracker.log_metrics(record, step=epoch + 1)
            if out is not None and main:
                _write_epoch(out, cfg, info, model, optimizer, state)
            stopper = state.stopper
            log.info("%s", epoch_line(record, cfg.train.epochs,
                                      stopping_note(is_best, stopper.bad_epochs, stopper.patience,
                                                    stopper.best_epoch)))
            if on_epoch_end is not None and main:
                on_epoch_end(dict(record))
            stopped = state.finished(cfg.train.epochs)
            if stopped and stopper.should_stop and state.epoch < cfg.train.epochs:
                log.info("early stop after epoch %d/%d: no lower validation loss for %d epochs",
                         state.epoch, cfg.train.epochs, stopper.bad_epochs)

        model.load_state_dict(state.best_state)
        result = TrainedModel(model, cfg, state.history, state.stopper.best_epoch, out, info)
        log.info("best epoch %d (valid loss %s)%s", state.stopper.best_epoch,
                 _loss_text(state.stopper.best_loss), f"; weights in {out / 'best.pt'}" if out else "")
        if out is not None and main:
            result.save(out / "best.pt")
            metrics = _metrics_record(cfg, info, state)
            if dataset.splits["test"]:
                metrics["test"] = result.evaluate(dataset, "test")
                log.info("%s", split_line("test", metrics["test"]))
            atomic_write_json(metrics, out / "metrics.json")
    if parallel is not None:
        parallel.barrier()  # the other ranks return once rank 0 has written everything
    return result


class _Silent:
    """The run log of a data-parallel rank other than 0: nothing."""

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def info(self, msg: str, *args) -> None:
        pass

    def warning(self, msg: str, *args) -> None:
        pass


@contextlib.contextmanager
def _tracking(trackers: list[ResultTracker], cfg: RunConfig, step: int):
    """Start each tracker at ``step`` (the epochs already done) and end them all, even on failure."""
    started = []
    try:
        for tracker in trackers:
            tracker.start_run(cfg.to_dict(), step=step)
            started.append(tracker)
        yield
    finally:
        for tracker in started:
            tracker.end_run()


def _start_line(cfg: RunConfig, dataset: ConversationDataset, dev: torch.device,
                out: pathlib.Path | None, done: int, finished: bool) -> str:
    sizes = ", ".join(f"{len(dataset.splits[s])} {s}" for s in ("train", "valid", "test"))
    where = f" in {out}" if out is not None else ""
    if finished:
        what = f"{cfg.recoverer} already finished after epoch {done}/{cfg.train.epochs}"
        if done > cfg.train.epochs:  # fewer epochs asked than the run holds: say what is returned
            what += (f" (it holds {done} epochs, more than the {cfg.train.epochs} asked: its model is returned "
                     f"as it is; resume=False / --no-resume trains {cfg.train.epochs} from the start)")
    elif done:
        what = f"resume {cfg.recoverer} at epoch {done + 1}/{cfg.train.epochs}"
    else:
        what = f"train {cfg.recoverer} for {cfg.train.epochs} epochs"
    return (f"{what}{where}: {dataset.name} ({sizes} conversations), condition "
            f"{cfg.protocol.condition}, seed {cfg.seed}, {dev}")


def _memory_line(steps: StepPlan, cfg: RunConfig) -> str:
    estimate = f"about {steps.estimate / 10**9:.2f} GB" if steps.estimate is not None else "?"
    return (f"memory: a training batch of {cfg.train.batch_size} conversations of up to "
            f"{steps.max_utterances} utterances needs {estimate}, over train.step_memory="
            f"{cfg.train.step_memory}; training runs micro-batches of {steps.train} (gradients "
            f"accumulated per batch), evaluation batches of {steps.eval}")


def _loss_text(loss: float) -> str:
    return "n/a" if not math.isfinite(loss) else f"{loss:.4f}"


def train_epoch(model: MERModel, optimizer, part, masks, cfg: RunConfig, epoch: int, device, *,
                parallel: DataParallel | None = None, micro_batch: int | None = None) -> dict:
    """One pass over the training conversations ``part`` under ``masks`` (one ``(N_i, M)`` array
    each), shuffled by a generator seeded from ``(cfg.seed, epoch)``; returns the mean of each loss
    term (``train_loss``, ``train_task_loss``, ``train_<recoverer term>``).

    With ``micro_batch`` below ``cfg.train.batch_size`` (:mod:`mer.training.memory`) each batch runs
    as micro-batches of that many conversations, each loss weighted by its share of the batch's
    utterances, their gradients accumulated before the batch's one optimizer step.

    With ``parallel`` (``model`` then wrapped by :meth:`DataParallel.wrap`) this rank takes its part
    of each global batch, its loss weighted by its share of the batch's utterances; the returned
    means are those of the global batches (the task loss exactly, recoverer terms utterance-weighted).
    """
    model.train()
    order = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    data = MaskedConversations(part, masks)
    if parallel is None:
        batches = ((indices, True) for indices in index_batches(len(data), cfg.train.batch_size, order))
    else:
        batches = parallel.batches(len(data), cfg.train.batch_size, order)
    step = micro_batch or cfg.train.batch_size
    module = model.module if parallel is not None else model
    sums: dict[str, float] = {}
    n_batches = 0
    for indices, real in batches:
        pieces = [collate_conversations([data[i] for i in indices[k:k + step]])
                  for k in range(0, len(indices), step)]
        utterances = [int(piece.utterance_mask.sum()) for piece in pieces]
        total = sum(utterances)
        weight, share = 1.0, 1.0
        if parallel is not None:
            weight, share = parallel.loss_weight(total if real else 0, device)
        optimizer.zero_grad(set_to_none=True)
        for k, piece in enumerate(pieces):
            fraction = utterances[k] / total  # 1.0 for an unsplit batch: ×1.0 changes no bit
            # Data-parallel: all-reduce the gradients once, after the batch's last piece.
            syncing = parallel is None or k == len(pieces) - 1
            with contextlib.nullcontext() if syncing else model.no_sync():
                terms = _losses(model, module, piece.to(device), cfg)
                (terms["train_loss"] * (weight * fraction)).backward()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + share * fraction * float(value.detach())
        if cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.train.grad_clip)
        optimizer.step()
        n_batches += 1
    if parallel is not None:
        sums = parallel.sum_dicts(sums)
    return {k: v / max(n_batches, 1) for k, v in sums.items()}


def _losses(model, module: MERModel, batch, cfg: RunConfig) -> dict[str, torch.Tensor]:
    """``train_loss`` (``L_task + β Σ L_recoverer``), ``train_task_loss`` and ``train_<term>`` of one
    forward pass of ``model`` (``module``: the model itself, unwrapped from data-parallel)."""
    out = model(batch, with_losses=True)
    task = task_loss(out.prediction, batch.labels, batch.utterance_mask, module.task,
                     cfg.train.regression_loss)
    loss = task
    if out.recovery_losses:
        loss = loss + cfg.train.beta * sum(out.recovery_losses.values())
    terms = {"train_loss": loss, "train_task_loss": task}
    terms.update({f"train_{k}": v for k, v in out.recovery_losses.items()})
    return terms


# ---------------------------------------------------------------------------- checkpoints
def _write_epoch(out: pathlib.Path, cfg: RunConfig, info: dict, model, optimizer, state: TrainState) -> None:
    resume = {"seed": cfg.seed, "optimizer": optimizer.state_dict(), "rng": rng_state(),
              **state.resume_fields()}
    Checkpoint(cfg.to_dict(), info, model.state_dict(), state.stopper.best_epoch, state.history,
               resume).save(out / "last.pt")
    atomic_write_json(_metrics_record(cfg, info, state), out / "metrics.json")


def _metrics_record(cfg: RunConfig, info: dict, state: TrainState) -> dict:
    return {
        "seed": cfg.seed,
        "dataset": {"name": info["name"], "fingerprint": info["fingerprint"]},
        "recoverer": cfg.recoverer,
        "condition": cfg.protocol.condition,
        "epochs_run": state.epoch,
        "best_epoch": state.stopper.best_epoch,
        "best_valid_loss": state.stopper.best_loss,
        "history": state.history,
    }


def _restore(path: pathlib.Path, cfg: RunConfig, dataset: ConversationDataset, model, optimizer,
             device) -> TrainState:
    ckpt = Checkpoint.load(path, resumable=True)
    check_dataset_matches(dataset, ckpt.dataset_info, resuming=str(path.parent))
    diffs = list(config_differences(ckpt.config, cfg.to_dict(), ignore=RESUMABLE_SETTINGS))
    if ckpt.recoverer_settings is not None:  # a default changed since it was saved is a difference too
        diffs += list(settings_differences(ckpt.recoverer_settings,
                                           recoverer_settings(cfg.recoverer, cfg.recoverer_kwargs)))
    if diffs:
        raise ValueError(
            f"cannot resume from {path}: its config differs in {diffs}; use another out_dir or "
            "resume=False to start over"
        )
    model.load_state_dict(ckpt.model)
    model.to(device)
    optimizer.load_state_dict(ckpt.resume["optimizer"])
    set_rng_state(ckpt.resume["rng"])
    return TrainState.from_resume_fields(ckpt.resume, ckpt.best_epoch, ckpt.history, cfg.train.patience)


def _cpu_state(model) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
