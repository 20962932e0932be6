"""The interface every graph generator implements and its training loop (the registry is in :mod:`.models`)."""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from typing import Callable, Sequence

import networkx as nx
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..sampling import pc_sampler
from ..sde import SDE, get_sde
from .checkpoint import graphs_fingerprint, save_generator
from .config import GenerationConfig
from .dense import dense_to_graphs

__all__ = ["NodeCountSampler", "GraphGenerator", "scheduled_learning_rate"]


class NodeCountSampler:
    """The empirical distribution of node counts of the training graphs.

    ``sample(k)`` draws ``k`` training graphs uniformly and returns their indices and sizes, so node
    counts follow the training distribution and each draw names one training graph of that size.
    ``sample_stratified(k)`` draws the same marginal distribution with less spread between sets.
    """

    def __init__(self, sizes: Sequence[int]):
        if len(sizes) == 0:
            raise ValueError("need at least one training graph to draw node counts from")
        self.sizes = torch.as_tensor(list(sizes), dtype=torch.long)

    def sample(self, k: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(indices (k,), sizes (k,))`` of ``k`` training graphs drawn uniformly with replacement."""
        indices = torch.randint(0, len(self.sizes), (k,), generator=generator)
        return indices, self.sizes[indices]

    def sample_stratified(self, k: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(indices (k,), sizes (k,))`` of a systematic sample of the training graphs sorted by size.

        The graphs are shuffled, sorted by size (stable, so ties stay shuffled) and read at the
        positions ``⌊(i + u) M / k⌋`` for one uniform ``u``; the result is returned in random order.
        Each draw is uniform over the ``M`` training graphs, as with :meth:`sample`, but the ``k`` sizes
        follow the training histogram to within one graph per size, which removes most of the
        set-to-set spread that node counts add to set-level statistics such as MMD.
        """
        M = len(self.sizes)
        shuffled = torch.randperm(M, generator=generator)
        by_size = shuffled[torch.sort(self.sizes[shuffled], stable=True).indices]
        offset = torch.rand((), generator=generator, dtype=torch.float64)
        positions = ((torch.arange(k, dtype=torch.float64) + offset) * M / k).long().clamp_max(M - 1)
        indices = by_size[positions][torch.randperm(k, generator=generator)]
        return indices, self.sizes[indices]


def ema_decay(decay: float, updates: int) -> float:
    """The EMA decay at update ``updates`` (from 1): ``decay`` with score_sde's warm-up, so early on the
    average follows the weights closely and a short training is not sampled with weights that are
    mostly the random initialisation."""
    return min(decay, (1 + updates) / (10 + updates))


#: Where the cosine schedule ends, as a fraction of the peak learning rate.
COSINE_FINAL_FRACTION = 0.01


def scheduled_learning_rate(peak: float, schedule: str, step: int, total_steps: int) -> float:
    """The learning rate of optimiser step ``step`` (from 0) of a training call of ``total_steps``:
    ``peak`` throughout (``"constant"``), or half a cosine from ``peak`` at the first step down to
    ``COSINE_FINAL_FRACTION · peak`` at the last (``"cosine"``)."""
    if schedule == "constant":
        return peak
    if schedule != "cosine":
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; known: constant, cosine")
    progress = step / max(total_steps - 1, 1)
    floor = COSINE_FINAL_FRACTION * peak
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_learning_rate(optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


@torch.no_grad()
def average_into(average: nn.Module, module: nn.Module, decay: float) -> None:
    """``average ← decay · average + (1 − decay) · module``, parameter by parameter."""
    for a, p in zip(average.parameters(), module.parameters()):
        a.mul_(decay).add_(p.detach(), alpha=1.0 - decay)


def check_checkpointing(every: int, path) -> None:
    """Refuse a save interval ``every`` that is negative, or positive without a ``path`` to save to."""
    if every < 0 or (every > 0 and path is None):
        raise ValueError(f"checkpoint_every must be ≥ 0 and, when positive, come with a checkpoint_path; got "
                         f"{every} and {path!r}")


def checkpoint_due(every: int, epochs_done: int, epochs: int) -> bool:
    """Whether a training call of ``epochs`` epochs saves after its ``epochs_done``-th: every ``every``-th
    epoch but the last (the caller saves the finished model)."""
    return bool(every) and epochs_done % every == 0 and epochs_done < epochs


class GraphGenerator:
    """Base class: a score-based graph generator trained on a list of graphs.

    Subclasses set ``self.network`` (predicts the noise of the forward kernel) and implement
    :meth:`_prepare` (turn the training graphs into tensors), :meth:`_batch_loss` (DSM loss of a
    minibatch) and :meth:`sample_weighted` (sample weighted adjacency matrices). Training, the EMA of the
    weights, thresholding, parameter counting and the state a saved model continues from
    (:meth:`training_state`, :meth:`restore`; files in :mod:`.checkpoint`) are shared here, so the
    models differ only in what they diffuse.
    """

    name: str = "base"

    def __init__(self, config: GenerationConfig):
        self.config = config
        self.sde: SDE = get_sde(config.sde)
        self.network: nn.Module | None = None
        self.ema_network: nn.Module | None = None
        self.node_counts: NodeCountSampler | None = None
        # What fit(..., resume=True) continues from: set by fit and by restore.
        self.epochs_trained = 0
        self.training_seconds = 0.0
        self.train_fingerprint: str | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._ema_updates = 0
        self._generator: torch.Generator | None = None
        self._call_epochs = (0, 0)  # the last fit call's epochs and how many of them ran

    # -- subclass hooks -------------------------------------------------------------------------
    def _prepare(self, graphs: list[nx.Graph]) -> None:
        raise NotImplementedError

    def _num_train(self) -> int:
        raise NotImplementedError

    def _batch_loss(self, indices: Tensor, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def sample_weighted(self, num_graphs: int, *, steps: int | None = None, generator: torch.Generator | None = None,
                        progress: bool = False) -> dict[str, Tensor]:
        """Sample ``num_graphs`` graphs before thresholding.

        Returns a dict with at least ``"adjacency"`` ``(B, N, N)`` (weighted, on the 0/1 scale of the
        data; padding zero), ``"sizes"`` ``(B,)`` and ``"sources"`` ``(B,)`` (index of the training
        graph whose node count was drawn).
        """
        raise NotImplementedError

    def diagnostics(self, sampled: dict[str, Tensor]) -> dict[str, float]:
        """Model-specific measurements of a :meth:`sample_weighted` result (none by default)."""
        return {}

    # -- shared ---------------------------------------------------------------------------------
    def num_parameters(self) -> int:
        if self.network is None:
            raise ValueError(f"the {self.name} network is built by fit(), which fixes the padded size N")
        return sum(p.numel() for p in self.network.parameters())

    def sampling_network(self) -> nn.Module:
        """The weights used for sampling: the EMA copy when enabled, else the trained network."""
        return self.ema_network if self.ema_network is not None else self.network

    def _load_data(self, graphs: list[nx.Graph]) -> None:
        """The training tensors (:meth:`_prepare`, which also builds the network the first time) and the
        node-count distribution of ``graphs``."""
        self._prepare(graphs)
        self.node_counts = NodeCountSampler([g.number_of_nodes() for g in graphs])

    def fit(self, graphs: Sequence[nx.Graph], *, generator: torch.Generator | None = None,
            progress: bool = False, resume: bool = False, finish: bool = False,
            checkpoint_every: int = 0, checkpoint_path: str | os.PathLike | None = None) -> list[float]:
        """Train for ``config.epochs`` passes over ``graphs``; returns the mean loss of each epoch.

        A fresh fit starts a new Adam optimiser and EMA (on the current weights, so fitting twice
        warm-starts from the first fit). ``resume=True`` continues the previous fit, or the saved model
        :func:`~.models.load_generator` read, exactly: the same optimiser state, EMA, and the
        generator that orders the batches and draws the noise (``generator`` must then be ``None``),
        so ``a`` epochs, then ``b`` resumed, give the weights of one ``a + b``-epoch fit (with the constant
        learning rate; ``learning_rate_schedule="cosine"`` runs its schedule once per call). A network
        built by the fit takes its initial weights from ``config.seed``; the global torch generator
        is neither read nor advanced, so two fits of one config give the same model in any process.

        Long fits can save themselves on the way: with ``checkpoint_every = c`` and ``checkpoint_path``,
        the model is written there (atomically, as :meth:`save`) after every ``c``-th epoch of the call
        but the last. Such a file knows how far its call got, and ``fit(resume=True, finish=True)`` on
        it runs the remaining epochs of that call, not ``config.epochs`` more: the learning-rate
        schedule goes on from where it stopped, so an interrupted fit finished this way gives the
        weights of the uninterrupted one, with either schedule.

        Raises
        ------
        ValueError
            No graphs; ``resume=True`` on a model never fitted or loaded, with other graphs than it
            was trained on, or with a ``generator``; ``finish=True`` without ``resume=True`` or on a
            call that ran all its epochs; ``checkpoint_every`` negative, or positive without a path.
        """
        graphs = list(graphs)
        if not graphs:
            raise ValueError("fit needs at least one training graph")
        check_checkpointing(checkpoint_every, checkpoint_path)
        if finish and not resume:
            raise ValueError("fit(finish=True) finishes an interrupted fit of a loaded model: give resume=True")
        fingerprint = graphs_fingerprint(graphs)
        if resume:
            if self._optimizer is None:
                raise ValueError("fit(resume=True) continues an earlier fit or a loaded model; this one has neither")
            if fingerprint != self.train_fingerprint:
                raise ValueError("fit(resume=True) needs the graphs the model was trained on, in the same order")
            if generator is not None:
                raise ValueError("fit(resume=True) continues the saved generator; do not pass one")
            if finish and not self.unfinished_epochs():
                raise ValueError(f"fit(finish=True): nothing to finish, the saved call ran all its "
                                 f"{self._call_epochs[0]} epochs")
            generator = self._generator
        generator = generator if generator is not None else torch.Generator().manual_seed(self.config.seed)
        clock = time.perf_counter()
        # Networks built here take their initial weights from config.seed, not from the caller's
        # global generator (left as it was), so fit gives the same model in any process.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self._load_data(graphs)
        cfg = self.config
        if not resume:
            self.__dict__.pop("_compiled", None)  # the networks are about to be replaced
            self._optimizer = torch.optim.Adam(self.network.parameters(), lr=cfg.learning_rate)
            self.ema_network = copy.deepcopy(self.network).requires_grad_(False) if cfg.ema_decay > 0 else None
            self._ema_updates, self.epochs_trained, self.training_seconds = 0, 0, 0.0
        self._generator, self.train_fingerprint = generator, fingerprint
        # This call's length and how far it has got: finishing a cut call goes on where it stopped.
        call_epochs, done = self._call_epochs if finish else (cfg.epochs, 0)
        epoch_losses, seconds_before = [], self.training_seconds
        bar = tqdm(range(done, call_epochs), desc=f"training {self.name}", disable=not progress,
                   initial=done, total=call_epochs)
        self.network.train()
        steps_per_epoch = math.ceil(self._num_train() / cfg.batch_size)
        step = done * steps_per_epoch
        for epoch in bar:
            order = torch.randperm(self._num_train(), generator=generator)
            total, batches = 0.0, 0
            for start in range(0, len(order), cfg.batch_size):
                set_learning_rate(self._optimizer, scheduled_learning_rate(
                    cfg.learning_rate, cfg.learning_rate_schedule, step, call_epochs * steps_per_epoch))
                step += 1
                loss = self._batch_loss(order[start:start + cfg.batch_size], generator)
                self._optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.network.parameters(), 1.0)
                self._optimizer.step()
                self._update_ema()
                total, batches = total + float(loss), batches + 1
            epoch_losses.append(total / batches)
            self.epochs_trained += 1
            self._call_epochs = (call_epochs, epoch + 1)
            self.training_seconds = seconds_before + time.perf_counter() - clock
            bar.set_postfix(loss=f"{epoch_losses[-1]:.4f}")
            if checkpoint_due(checkpoint_every, epoch + 1, call_epochs):
                self.save(checkpoint_path)
        self.network.eval()
        self._call_epochs = (call_epochs, call_epochs)
        self.training_seconds = seconds_before + time.perf_counter() - clock
        return epoch_losses

    def unfinished_epochs(self) -> int:
        """Epochs the last :meth:`fit` call (or the saved one :func:`~.models.load_generator` read) still
        had to run when it was saved: 0 for a finished call, more for a ``checkpoint_every`` file of
        an interrupted one (``fit(resume=True, finish=True)`` runs them)."""
        call_epochs, done = self._call_epochs
        return call_epochs - done

    def compiled(self, module: nn.Module) -> nn.Module:
        """``module`` compiled by TorchScript, made once per module and reused (sampling calls this
        on the network it runs at every step).

        On small graphs the Python overhead of a network's many small tensor operations is a large
        part of a sampling step. The compiled module shares the weights (EMA updates and loaded states
        reach it) and gives the same outputs, bit for bit (tested).
        """
        cache = self.__dict__.setdefault("_compiled", {})  # module → compiled (modules hash by identity)
        if module not in cache:
            try:
                cache[module] = torch.jit.script(module)
            except Exception as error:  # noqa: BLE001 - speed only: sample with the module itself
                warnings.warn(f"TorchScript could not compile {type(module).__name__} ({type(error).__name__}); "
                              "sampling runs it uncompiled (same results, slower)", RuntimeWarning, stacklevel=2)
                cache[module] = module
        return cache[module]

    def __getstate__(self) -> dict:
        # torch.Generator does not pickle; its state (a byte tensor) does, so copies and pickles work.
        # Compiled modules do not pickle either; they are made again on demand.
        state = {key: value for key, value in self.__dict__.items() if key != "_compiled"}
        if state.get("_generator") is not None:
            state["_generator"] = state["_generator"].get_state()
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault("_call_epochs", (state.get("epochs_trained", 0),) * 2)  # pickled before mid-fit saves
        if isinstance(state.get("_generator"), Tensor):
            generator = torch.Generator()
            generator.set_state(state["_generator"])
            state = {**state, "_generator": generator}
        self.__dict__.update(state)

    def training_state(self) -> dict:
        """What a saved model needs besides its weights to continue (:mod:`.checkpoint` schema)."""
        if self._optimizer is None:
            raise ValueError(f"{type(self).__name__} must be fitted (call fit(graphs)) before it is saved")
        return {"graphs": self.train_fingerprint, "optimizer": self._optimizer.state_dict(),
                "ema_updates": self._ema_updates, "epochs_trained": self.epochs_trained,
                "training_seconds": self.training_seconds, "generator": self._generator.get_state(),
                "call_epochs": list(self._call_epochs)}

    def save(self, path) -> None:
        """Write the fitted model to ``path`` (a ``model.pt``; read back with
        :func:`~.models.load_generator`, which needs the training graphs)."""
        save_generator(self, path)

    def restore(self, graphs: Sequence[nx.Graph], payload: dict, source: str = "the saved model") -> None:
        """Rebuild the data tensors from ``graphs`` and load a :mod:`.checkpoint` payload into this
        (new, unfitted) model; ``source`` names it in errors."""
        self._load_data(list(graphs))
        try:
            self.network.load_state_dict(payload["network"])
            self._optimizer = torch.optim.Adam(self.network.parameters(), lr=self.config.learning_rate)
            self._optimizer.load_state_dict(payload["optimizer"])
        except (RuntimeError, ValueError) as err:
            reason = " ".join(str(err).split())[:300]
            raise ValueError(f"{source}: the settings build another network than the saved one (model, widths, "
                             f"layers and eigenpair count must be the saved run's): {reason}") from None
        set_learning_rate(self._optimizer, self.config.learning_rate)  # a new learning rate applies from here on
        self.ema_network = None
        self.__dict__.pop("_compiled", None)
        if self.config.ema_decay > 0:
            self.ema_network = copy.deepcopy(self.network).requires_grad_(False)
            if payload.get("ema_network") is not None:
                self.ema_network.load_state_dict(payload["ema_network"])
        self.network.eval()
        self._ema_updates = int(payload.get("ema_updates", 0))
        self.epochs_trained = int(payload["epochs_trained"])
        self.training_seconds = float(payload.get("training_seconds", 0.0))
        self.train_fingerprint = payload["graphs"]
        # Files from before mid-fit saves hold finished calls only.
        self._call_epochs = tuple(int(e) for e in payload.get("call_epochs", (self.epochs_trained,) * 2))
        self._generator = torch.Generator()
        if payload.get("generator") is not None:
            self._generator.set_state(payload["generator"])

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema_network is None:
            return
        self._ema_updates += 1
        average_into(self.ema_network, self.network, ema_decay(self.config.ema_decay, self._ema_updates))

    def _run_sampler(self, score_fn: Callable, x_T: Tensor, mask: Tensor, steps: int | None,
                     generator: torch.Generator | None, progress: bool) -> Tensor:
        cfg = self.config
        return pc_sampler(self.sde, score_fn, x_T, steps=steps or cfg.steps, predictor=cfg.predictor,
                          corrector=cfg.corrector, snr=cfg.snr, mask=mask, generator=generator, progress=progress)

    def _check_fitted(self) -> None:
        """Refuse to sample an unfitted model; warn on one loaded from a file saved mid-training."""
        if self.node_counts is None:
            raise ValueError(f"{type(self).__name__} must be fitted (call fit(graphs)) before sampling")
        cut = self.unfinished_training()
        if cut is not None:
            # A warning, not an error: looking at a half-trained model is legitimate, but never unnoticed.
            warnings.warn(f"sampling a model saved mid-training, at {cut}", UserWarning, stacklevel=3)

    def unfinished_training(self) -> str | None:
        """Where the training a loaded ``checkpoint_every`` file was cut stopped, and how to finish it, in
        words; None for a finished model."""
        if not self.unfinished_epochs():
            return None
        call_epochs, done = self._call_epochs
        return f"epoch {done} of a {call_epochs}-epoch fit; finish it with fit(graphs, resume=True, finish=True)"

    def sample(self, num_graphs: int, *, steps: int | None = None, generator: torch.Generator | None = None,
               progress: bool = False) -> list[nx.Graph]:
        """``num_graphs`` networkx graphs: :meth:`sample_weighted` thresholded at ``config.threshold``,
        symmetrised, without self loops, with the drawn node counts."""
        return self.to_graphs(self.sample_weighted(num_graphs, steps=steps, generator=generator, progress=progress))

    def to_graphs(self, sampled: dict[str, Tensor]) -> list[nx.Graph]:
        """Threshold a :meth:`sample_weighted` result into networkx graphs (see :meth:`sample`)."""
        return dense_to_graphs(sampled["adjacency"], sampled["sizes"], threshold=self.config.threshold)

    def _chunks(self, num_graphs: int, generator: torch.Generator | None):
        """``(sources, sizes)`` of each sampling batch of at most ``config.sample_batch_size`` graphs.

        Independent draws happen batch by batch (between the batches' diffusion noise); a stratified
        sample is drawn for all ``num_graphs`` at once, so that the whole set follows the training sizes.
        """
        if num_graphs < 1:
            raise ValueError(f"num_graphs must be ≥ 1, got {num_graphs}")
        size = self.config.sample_batch_size
        starts = range(0, num_graphs, size)
        if self.config.node_counts == "stratified":
            sources, sizes = self.node_counts.sample_stratified(num_graphs, generator)
            for start in starts:
                yield sources[start:start + size], sizes[start:start + size]
        else:
            for start in starts:
                yield self.node_counts.sample(min(size, num_graphs - start), generator)
