"""How many conversations one step may hold: micro-batches that keep a step under a memory budget.

A recoverer that estimates its memory (:meth:`~mer.recoverers.Recoverer.estimate_memory`, e.g. the
adjacency ablation of GSDNet, quadratic in conversation length) could need gigabytes for one batch of
long conversations. Rather than fail or swap, a step is split:

* **training** — a batch of ``B`` conversations whose estimate exceeds ``train.step_memory`` runs as
  micro-batches of ``b < B`` conversations, each loss weighted by its share of the batch's utterances,
  their gradients accumulated before the one optimizer step. The batches, their order and the step
  count are those of the unsplit run; the task loss (a mean over utterances) and its gradient are the
  same up to float rounding. Recoverer loss terms are averaged by utterance share, as in data-parallel
  training, and a sampling recoverer draws its noise per micro-batch, so their values can differ
  slightly from one unsplit batch.
* **evaluation** — batches shrink to the conversations that fit.

The budget is a fixed size from the config, not the machine's free memory, so a config gives the same
batches, and the same numbers, on every machine. :meth:`~mer.recoverers.Recoverer.check_memory` still
refuses, before training, a dataset whose longest conversation does not fit the limit even alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from mer.config import TrainConfig, parse_bytes

__all__ = ["StepPlan", "plan_steps", "step_budget", "conversations_within"]


@dataclass(frozen=True)
class StepPlan:
    """Conversations per forward pass: ``train`` per micro-batch (``== batch_size``: unsplit) and
    ``eval`` per evaluation batch, for conversations of up to ``max_utterances``."""

    train: int
    eval: int
    max_utterances: int
    estimate: int | None  # bytes of one unsplit training batch; None: the recoverer does not say

    def split(self, batch_size: int) -> bool:
        return self.train < batch_size


def conversations_within(recoverer, max_utterances: int, wanted: int, budget: int | None) -> int:
    """``recoverer``: anything with ``estimate_memory(max_utterances, batch_size)`` — a
    :class:`~mer.recoverers.Recoverer`, or a :class:`~mer.model.MERModel` (which knows what its
    recoverer sees under ``fusion = "mult"``). The largest ``b ≤ wanted`` (at least 1) whose :meth:`estimate_memory` ``(max_utterances, b)``
    is within ``budget`` bytes; ``wanted`` when there is no budget or no estimate."""
    wanted = max(1, int(wanted))
    if budget is None or recoverer.estimate_memory(max_utterances, wanted) is None:
        return wanted
    for b in range(wanted, 0, -1):
        if recoverer.estimate_memory(max_utterances, b) <= budget:
            return b
    return 1


def step_budget(train: TrainConfig) -> int | None:
    """``train.step_memory`` in bytes (``None``: no budget)."""
    return None if train.step_memory is None else parse_bytes(train.step_memory, "train.step_memory")


def plan_steps(recoverer, max_utterances: int, train: TrainConfig) -> StepPlan:
    """The :class:`StepPlan` of ``recoverer`` under ``train.step_memory`` for conversations of up to
    ``max_utterances`` utterances."""
    budget = step_budget(train)
    return StepPlan(
        train=conversations_within(recoverer, max_utterances, train.batch_size, budget),
        # Evaluation runs without autograd, so the training estimate over-states it: safe.
        eval=conversations_within(recoverer, max_utterances, train.eval_batch_size, budget),
        max_utterances=int(max_utterances),
        estimate=recoverer.estimate_memory(max_utterances, train.batch_size),
    )
