"""Data-parallel training: :class:`DataParallel`, one process's place in a ``torchrun`` job.

``mer train`` launched by ``torchrun --nproc_per_node N`` (which sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) trains one model on N processes:

* every rank builds the same model, draws the same masks (:class:`~mer.data.protocol.MaskPlan`, by
  global conversation index) and the same shuffle as a single process would;
* each global batch of ``B`` conversations (the single-process batch) is split across the ranks,
  rank ``r`` taking positions ``r, r + N, …`` of it (:meth:`DataParallel.batches`), so N ranks × B/N =
  B; ``B % N == 0`` is required;
* the model is wrapped in ``DistributedDataParallel`` (gloo on CPU, NCCL on CUDA, device
  ``cuda:LOCAL_RANK``), which averages gradients over ranks; each rank's loss is weighted by its share
  of the global batch's utterances (:meth:`DataParallel.loss_weight`), so the averaged gradient is the
  gradient of the single-process loss (the task loss is a mean over utterances);
* rank 0 alone holds the run lock, writes ``config.json``, ``last.pt``, ``best.pt``,
  ``metrics.json``, ``train.log`` and the trackers, and evaluates the validation and test splits
  in full; the other ranks wait for it.

Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) :meth:`DataParallel.from_env` is ``None`` and
training is the single-process loop, unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

__all__ = ["DataParallel", "index_batches"]


def index_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[list[int]]:
    """The shuffled batches of positions ``0 … n−1`` of one epoch: exactly those of
    ``DataLoader(data, batch_size, shuffle=True, generator=generator)`` over ``n`` items (a
    ``DataLoader`` draws the permutation from ``generator`` the same way)."""
    return iter(DataLoader(range(n), batch_size=batch_size, shuffle=True, generator=generator,
                           collate_fn=list))


@dataclasses.dataclass(frozen=True)
class DataParallel:
    """This process's rank among ``world_size`` data-parallel training processes.

    Parameters
    ----------
    rank : int
        Global rank (``RANK``); rank 0 is the one that writes.
    world_size : int
        Number of processes (``WORLD_SIZE``), at least 2.
    local_rank : int
        Rank on this machine (``LOCAL_RANK``): the CUDA device index.

    Five conversations, global batches of 4 (shuffled ``[3, 1, 0, 4]``, ``[2]``), two ranks:

    >>> order = lambda: torch.Generator().manual_seed(0)
    >>> list(DataParallel(rank=0, world_size=2, local_rank=0).batches(5, 4, order()))
    [([3, 0], True), ([2], True)]
    >>> list(DataParallel(rank=1, world_size=2, local_rank=1).batches(5, 4, order()))
    [([1, 4], True), ([2], False)]
    """

    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_env(cls) -> "DataParallel | None":
        """The job ``torchrun`` describes in the environment; ``None`` outside one (no
        ``WORLD_SIZE``) or with a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        return cls(rank=int(os.environ.get("RANK", "0")), world_size=world,
                   local_rank=int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that holds the run folder and writes into it."""
        return self.rank == 0

    # ------------------------------------------------------------------------------ set-up
    def check_batch_size(self, batch_size: int) -> None:
        if batch_size % self.world_size:
            raise ValueError(f"train.batch_size {batch_size} must be a multiple of the {self.world_size} "
                             "data-parallel processes (each takes batch_size / processes conversations)")

    def device(self, device: torch.device) -> torch.device:
        """The device of this rank: ``cuda:LOCAL_RANK`` for a CUDA run, else ``device``."""
        if device.type != "cuda":
            return device
        dev = torch.device("cuda", self.local_rank)
        torch.cuda.set_device(dev)
        return dev

    def start(self, device: torch.device) -> None:
        """Join the process group (``env://``; gloo on CPU, NCCL on CUDA) unless already joined; it
        stays up for the life of the process, so later runs in it reuse it."""
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                    rank=self.rank, world_size=self.world_size)

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` in ``DistributedDataParallel`` (parameters shared, rank 0's broadcast).
        ``find_unused_parameters``: a recoverer may leave some parameters out of a step."""
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                                         find_unused_parameters=True)

    # --------------------------------------------------------------------------- batches
    def batches(self, n: int, batch_size: int,
                generator: torch.Generator) -> Iterator[tuple[list[int], bool]]:
        """This rank's part of each global batch, and whether it is real.

        The global batches are those of :func:`index_batches` in a single process; rank ``r`` takes
        positions ``r::world_size`` of each. A rank with nothing in a short last batch gets that batch's first conversation as a
        stand-in (``False``): it must still take part in the gradient all-reduce, with weight 0.
        """
        for batch in index_batches(n, batch_size, generator):
            part = batch[self.rank::self.world_size]
            yield (part, True) if part else (batch[:1], False)

    def loss_weight(self, utterances: int, device: torch.device) -> tuple[float, float]:
        """``(weight, share)`` of this rank's loss: ``share`` = its utterances / the global batch's,
        ``weight`` = ``share × world_size`` (DDP divides the summed gradients by ``world_size``)."""
        total = torch.tensor([float(utterances)], device=device)
        dist.all_reduce(total)
        share = utterances / float(total.item())
        return share * self.world_size, share

    def sum_dicts(self, values: dict[str, float]) -> dict[str, float]:
        """Key-wise sum over ranks of ``values`` (a key missing on a rank counts 0 there)."""
        gathered: list[dict[str, float] | None] = [None] * self.world_size
        dist.all_gather_object(gathered, values)
        total: dict[str, float] = {}
        for part in gathered:
            for k, v in part.items():
                total[k] = total.get(k, 0.0) + v
        return total

    # ---------------------------------------------------------------------- coordination
    def barrier(self) -> None:
        dist.barrier()

    def from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (rank 0 returns its own)."""
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    @contextlib.contextmanager
    def main_holds(self, context):
        """Enter ``context`` (the run lock) on rank 0 only, yielding what it yields there and ``None``
        elsewhere; every rank fails if rank 0 cannot enter it (a held folder), instead of waiting
        for it forever."""
        if not self.is_main:
            failure = self.from_main(None)
            if failure is not None:
                raise ValueError(f"rank 0 could not start the run: {failure}")
            yield
            return
        with contextlib.ExitStack() as stack:
            try:
                value = stack.enter_context(context)
            except BaseException as exc:
                self.from_main(f"{type(exc).__name__}: {exc}")
                raise
            self.from_main(None)
            yield value
