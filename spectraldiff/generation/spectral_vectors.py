"""Spectral generator that generates: diffuse ``k`` eigenvectors and eigenvalues, decode the graph.

After GGSD (Minello et al., ICLR 2025) and SPECTRE (Martinkus et al., ICML 2022). A training graph
is described by the ``k`` smallest eigenpairs of its normalised Laplacian (:mod:`.eigenpairs`):
eigenvectors ``U`` ``(n, k)`` (rows scaled by ``√n``, so entries are of order one) and eigenvalues
``λ`` ``(k,)`` (standardised per slot). Both are diffused together under one time by the same SDE,
loss and sampler as the other models (a dict state, :mod:`spectraldiff.state`), with a
permutation-equivariant network linear in ``n`` (:class:`.EigenpairScoreNet`). Every training batch
draws a random sign per eigenvector and a random rotation inside each repeated eigenvalue, so the
model learns the spectrum, not one arbitrary basis of it.

A learned decoder (:class:`.EigenpairEdgeDecoder`, sign- and basis-invariant) is trained beside it
with binary cross-entropy to predict the training graphs' edges from their clean (slightly noised)
eigenpairs, or from the score network's denoised estimates of them (``decoder_inputs="denoised"``);
at sampling it reads generated ones, as they come or made orthonormal first
(``eigenvector_projection="polar"``, :func:`.eigenpairs.nearest_orthonormal`; ``"polar_denoised"``
also steers the late reverse steps towards orthonormal eigenvectors). Only the node count comes from
the training data.

Conditioning on a target spectrum is one call, ``model.sample(8, eigenvalues=lam)``: the eigenvalues
are held at ``lam`` (noised to the current time at each step, exact at the end, the inpainting of
:func:`spectraldiff.sampling.pc_sampler`) and only the eigenvectors are diffused.
"""

from __future__ import annotations

import copy
import math
import os
import time
from typing import Sequence

import networkx as nx
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..eigh import node_mask
from ..losses import dsm_loss
from ..noising import perturb
from ..sampling import pc_sampler
from .checkpoint import graphs_fingerprint
from .config import GenerationConfig
from .dense import dense_to_graphs, graphs_to_dense
from .edge_decoder import EigenpairEdgeDecoder
from .edge_sampling import ranked_budgets, sample_edges
from .eigenpair_score import EigenpairScoreNet
from .eigenpairs import (degenerate_groups, laplacian_eigenpairs, nearest_orthonormal, random_basis_rotation,
                         random_sign_flip)
from .generator import (GraphGenerator, average_into, check_checkpointing, checkpoint_due, ema_decay,
                        scheduled_learning_rate, set_learning_rate)

__all__ = ["SpectralVectorGenerator"]

VECTORS, VALUES = "eigenvectors", "eigenvalues"

#: GenerationConfig fields that build the score network or set what it diffuses; a new decoder
#: (:meth:`SpectralVectorGenerator.fit_decoder`) may change anything else.
SCORE_FIELDS = ("model", "num_eigenvectors", "hidden_dim", "num_layers", "sde")


class SpectralVectorGenerator(GraphGenerator):
    """Joint diffusion of the ``k`` smallest normalised-Laplacian eigenpairs, decoded to a graph.

    Parameters
    ----------
    config : GenerationConfig
        Uses ``num_eigenvectors`` (``k``), ``hidden_dim`` and ``num_layers`` (score network),
        ``decoder_dim``, ``decoder_layers``, ``decoder_noise``, ``decoder_inputs``, ``decoder_graphs``,
        ``edge_sampling``, ``triangle_bonus``, ``degree_budgets``, ``eigenvector_projection``,
        ``threshold``, the SDE and sampler settings and ``node_counts``.

    Shapes
    ------
    After :meth:`fit`, for ``M`` training graphs padded to ``N`` nodes: ``eigenvalues`` ``(M, k)``
    (data scale, padding zero), ``full_eigenvectors`` ``(M, N, max(N, k))`` (unit columns),
    ``mask`` ``(M, N)``, ``slot_mask`` ``(M, k)``, ``adjacency`` ``(M, N, N)``.

    Example
    -------
    >>> from spectraldiff.generation.datasets import community_small
    >>> cfg = GenerationConfig(model="spectral_vectors", epochs=2, steps=5, hidden_dim=16, num_layers=1,
    ...                        num_eigenvectors=4, decoder_dim=8, decoder_layers=1)
    >>> model = SpectralVectorGenerator(cfg)
    >>> _ = model.fit(community_small(8, seed=0))
    >>> len(model.sample(3))
    3
    >>> lam = torch.tensor([0.0, 0.1, 1.0, 1.2])
    >>> model.sample_weighted(2, eigenvalues=lam)["eigenvalues"][:, :4].allclose(lam.double().expand(2, 4))
    True
    """

    name = "spectral_vectors"
    #: An interrupted :meth:`fit_decoder`'s progress (set while it saves, and by :meth:`restore`).
    _decoder_fit: dict | None = None

    def __init__(self, config: GenerationConfig):
        super().__init__(config)
        self.k = config.num_eigenvectors

    # -- data -----------------------------------------------------------------------------------
    def _prepare(self, graphs: list[nx.Graph]) -> None:
        cfg, k = self.config, self.k
        A, sizes = graphs_to_dense(graphs, dtype=torch.float64)
        M, N = A.shape[0], A.shape[-1]
        values, vectors = laplacian_eigenpairs(A, sizes)
        width = max(N, k)  # graphs smaller than k get zero (masked) slots
        self.full_eigenvectors = F.pad(vectors, (0, width - N)).float()
        self.eigenvalues = F.pad(values, (0, max(0, k - N)))[:, :k].float()
        self.sizes, self.max_nodes = sizes, N
        self.mask = node_mask(sizes, N)
        self.slot_mask = node_mask(sizes, k)
        # Only groups that reach into the first k slots change what the model sees.
        self.groups = [[g for g in degenerate_groups(values[b], int(sizes[b])) if g[0] < k] for b in range(M)]
        valid = self.slot_mask.float()
        count = valid.sum(dim=0).clamp_min(1.0)
        self.value_mean = (self.eigenvalues * valid).sum(dim=0) / count
        spread = (((self.eigenvalues - self.value_mean) * valid) ** 2).sum(dim=0) / count
        self.value_std = spread.sqrt().clamp_min(1e-2)
        self.adjacency = A.float()
        if self.network is None:
            self.network = nn.ModuleDict({
                "score": EigenpairScoreNet(k, hidden_dim=cfg.hidden_dim, num_layers=cfg.num_layers),
                "decoder": EigenpairEdgeDecoder(k, hidden_dim=cfg.decoder_dim, num_layers=cfg.decoder_layers),
            })

    def _num_train(self) -> int:
        return self.eigenvalues.shape[0]

    def scale_values(self, values: Tensor, slot: Tensor) -> Tensor:
        """Data-scale eigenvalues ``(B, k)`` → the diffused, per-slot standardised scale (padding zero)."""
        return (values - self.value_mean) / self.value_std * slot

    def unscale_values(self, values: Tensor, slot: Tensor) -> Tensor:
        """Inverse of :meth:`scale_values`."""
        return (values * self.value_std + self.value_mean) * slot

    @staticmethod
    def _row_scale(sizes: Tensor) -> Tensor:
        """``√n`` per graph ``(B, 1, 1)``: unit eigenvectors have entries of order ``1/√n``."""
        return sizes.to(torch.float32).sqrt()[:, None, None]

    def training_batch(self, indices: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The diffused state of training graphs ``indices`` under a fresh random basis.

        Returns ``eigenvectors`` ``(B, N, k)`` (random signs and rotations inside repeated eigenvalues,
        rows times ``√n``), ``eigenvalues`` ``(B, k)`` (standardised), ``node_mask`` ``(B, N)``,
        ``slot_mask`` ``(B, k)``, ``adjacency`` ``(B, N, N)``.
        """
        U = random_basis_rotation(self.full_eigenvectors[indices], [self.groups[i] for i in indices.tolist()],
                                  generator)
        U = random_sign_flip(U[:, :, :self.k], generator) * self._row_scale(self.sizes[indices])
        slot = self.slot_mask[indices]
        return {VECTORS: U, VALUES: self.scale_values(self.eigenvalues[indices], slot),
                "node_mask": self.mask[indices], "slot_mask": slot, "adjacency": self.adjacency[indices]}

    # -- networks -------------------------------------------------------------------------------
    def _score_fn(self, score_network: nn.Module, nodes: Tensor, slots: Tensor, project_below: float | None = None):
        """The score of the diffused state; with ``project_below``, at times up to it the eigenvectors'
        score is that of the nearest orthonormal matrix to the network's denoised estimate
        (``eigenvector_projection="polar_denoised"``)."""
        sde = self.sde
        if project_below is not None:  # sampling only: training's hot path builds neither
            sizes = nodes.sum(dim=1)
            vector_mask = self._state_masks(nodes, slots)[VECTORS].to(torch.float32)

        def score(x: dict[str, Tensor], t: Tensor, condition=None) -> dict[str, Tensor]:
            eps_vectors, eps_values = score_network(x[VECTORS], x[VALUES], t, nodes, slots)
            if project_below is not None and float(t.max()) <= project_below:
                denoised = sde.data_from_noise(eps_vectors, x[VECTORS], t) * vector_mask
                projected = self.project_eigenvectors(denoised, slots, sizes)
                vectors = sde.score_from_data(projected, x[VECTORS], t) * vector_mask
            else:
                vectors = sde.score_from_noise(eps_vectors, t)
            return {VECTORS: vectors, VALUES: sde.score_from_noise(eps_values, t)}

        return score

    def project_eigenvectors(self, eigenvectors: Tensor, slots: Tensor, sizes: Tensor) -> Tensor:
        """The nearest orthonormal columns to ``eigenvectors`` ``(B, N, k)`` in the diffused scale (rows
        times ``√n``), returned in that scale (:func:`.eigenpairs.nearest_orthonormal`); ``slots``
        ``(B, k)`` bool, ``sizes`` ``(B,)``."""
        return nearest_orthonormal(eigenvectors, slots) * self._row_scale(sizes)

    @staticmethod
    def _state_masks(nodes: Tensor, slots: Tensor) -> dict[str, Tensor]:
        return {VECTORS: nodes[:, :, None] & slots[:, None, :], VALUES: slots}

    def decode(self, eigenvectors: Tensor, eigenvalues: Tensor, nodes: Tensor, slots: Tensor,
               network: nn.Module | None = None) -> Tensor:
        """Edge probabilities ``(B, N, N)`` (zero diagonal and padding) from eigenpairs in the diffused
        scale (``eigenvectors`` rows times ``√n``, ``eigenvalues`` standardised). The decoder runs
        compiled (:meth:`compiled`: same outputs, about a fifth faster on 20-node graphs)."""
        network = network if network is not None else self.sampling_network()
        values = self.unscale_values(eigenvalues, slots.to(eigenvalues.dtype))
        logits = self.compiled(network["decoder"])(eigenvectors, values, nodes, slots)
        return torch.sigmoid(logits) * _pair_mask(nodes).to(logits.dtype)

    def _batch_loss(self, indices: Tensor, generator: torch.Generator) -> Tensor:
        batch = self.training_batch(indices, generator)
        nodes, slots = batch["node_mask"], batch["slot_mask"]
        masks = self._state_masks(nodes, slots)
        state = {VECTORS: batch[VECTORS], VALUES: batch[VALUES]}
        losses = dsm_loss(self._score_fn(self.network["score"], nodes, slots), self.sde, state, mask=masks,
                          generator=generator)
        return losses[VECTORS] + losses[VALUES] + self._decoder_loss(batch, generator)

    def _decoder_loss(self, batch: dict[str, Tensor], generator: torch.Generator) -> Tensor:
        """Binary cross-entropy of ``network["decoder"]`` on a :meth:`training_batch`'s edges."""
        # The decoder's N² pairs dominate the cost on large graphs, and it needs far fewer graph visits
        # than the diffusion, so it sees only the first config.decoder_graphs graphs of the (random)
        # batch, trimmed to their largest size.
        part = slice(0, self.config.decoder_graphs)
        n = int(batch["node_mask"][part].sum(dim=1).max())
        nodes, slots = batch["node_mask"][part, :n], batch["slot_mask"][part]
        inputs = self.decoder_training_input({VECTORS: batch[VECTORS][part, :n], VALUES: batch[VALUES][part]},
                                             nodes, slots, generator)
        logits = self.network["decoder"](inputs[VECTORS], self.unscale_values(inputs[VALUES], slots.float()),
                                         nodes, slots)
        pairs = torch.triu(_pair_mask(nodes), diagonal=1)
        return F.binary_cross_entropy_with_logits(logits[pairs], batch["adjacency"][part, :n, :n][pairs])

    def fit(self, graphs: Sequence[nx.Graph], **kwargs) -> list[float]:
        """:meth:`GraphGenerator.fit`; continuing (``resume=True``) a file saved during a new decoder's
        training is refused until that training is finished (:meth:`fit_decoder` with ``finish=True``)
        or replaced, since the joint fit would move the half-trained decoder under its saved Adam state."""
        if kwargs.get("resume") and self.unfinished_decoder_epochs():
            epochs, done = self.decoder_progress()
            raise ValueError(f"this model was saved at epoch {done} of a {epochs}-epoch decoder training: finish it "
                             "(fit_decoder(graphs, finish=True)) or train a new decoder before fit(resume=True)")
        self._decoder_fit = None
        return super().fit(graphs, **kwargs)

    def fit_decoder(self, graphs: Sequence[nx.Graph], epochs: int | None = None, *,
                    config: GenerationConfig | None = None, progress: bool = False, finish: bool = False,
                    checkpoint_every: int = 0, checkpoint_path: str | os.PathLike | None = None) -> list[float]:
        """Train a new edge decoder, built from ``config.decoder_*``, on a fitted model's training graphs;
        the score network and its optimiser state stay as they are. Returns each epoch's mean loss.

        The decoder's loss never reaches the score network (it reads noised clean eigenpairs, or the
        score network's estimates without gradient; only the joint gradient clipping couples the
        two), so a decoder trained alone on a finished diffusion learns what the joint fit teaches it,
        and ``decoder_layers`` can change after thousands of diffusion epochs without repeating them.
        Batches follow :meth:`fit` (``config.batch_size`` graphs, the decoder reads the first
        ``config.decoder_graphs``) with a generator of their own seeded ``config.seed``, so the
        retraining is reproducible and leaves the diffusion's saved generator, weights, EMA and Adam
        state for a later ``fit(resume=True)``. With EMA on, the new decoder gets its own average
        (same warm-up). ``training_seconds`` adds the decoder's time; ``epochs_trained`` stays the
        diffusion's.

        With ``checkpoint_every = c`` and ``checkpoint_path`` the model is saved there after every
        ``c``-th epoch but the last, with the decoder's own Adam state, generator and EMA count; a
        model loaded from such a file finishes that training with ``fit_decoder(graphs, finish=True)``
        (the weights of the uninterrupted run; :meth:`unfinished_decoder_epochs` says how many remain).

        Parameters
        ----------
        graphs : list of networkx.Graph
            The training graphs, in the order the model was fitted on.
        epochs : int
            Passes over them (not with ``finish``: the interrupted run's count stands).
        config : GenerationConfig, optional
            Replaces the model's config: new ``decoder_*`` settings (and learning rate, batch size,
            sampling settings); what builds the score network must stay (:data:`SCORE_FIELDS`).
            Default: the model's own (a fresh decoder of the same kind).

        Raises
        ------
        ValueError
            The model was never fitted or loaded, ``graphs`` are not its training graphs,
            ``epochs < 1``, ``config`` changes the score network, ``finish`` without an interrupted
            decoder training (or with ``epochs`` or ``config``), or ``checkpoint_every`` negative or
            without a path.
        """
        graphs = list(graphs)
        if self._optimizer is None:
            raise ValueError("fit_decoder needs a fitted or loaded model (its score network is kept)")
        check_checkpointing(checkpoint_every, checkpoint_path)
        if finish:
            if not self.unfinished_decoder_epochs():
                raise ValueError("fit_decoder(finish=True) finishes an interrupted decoder training; this model "
                                 "has none")
            if epochs is not None or config is not None:
                raise ValueError("fit_decoder(finish=True) runs the rest of the interrupted training with its own "
                                 "epochs and settings: give neither epochs nor config")
            epochs = self._decoder_fit["epochs"]
        config = config if config is not None else self.config
        changed = [f for f in SCORE_FIELDS if getattr(config, f) != getattr(self.config, f)]
        if changed:
            raise ValueError("fit_decoder keeps the score network, so its settings must stay; "
                             + ", ".join(f"{f} {getattr(self.config, f)!r} → {getattr(config, f)!r}" for f in changed))
        if graphs_fingerprint(graphs) != self.train_fingerprint:
            raise ValueError("fit_decoder needs the graphs the model was trained on, in the same order")
        if epochs is None or epochs < 1:
            raise ValueError(f"epochs must be ≥ 1, got {epochs}")
        clock, seconds_before = time.perf_counter(), self.training_seconds
        self.config = cfg = config  # the training tensors are already there: same graphs
        generator = torch.Generator().manual_seed(cfg.seed)
        if finish:  # the loaded network holds the cut decoder, its EMA and (below) its Adam state
            decoder = self.network["decoder"]
            optimizer = torch.optim.Adam(decoder.parameters(), lr=cfg.learning_rate)
            optimizer.load_state_dict(self._decoder_fit["optimizer"])
            generator.set_state(self._decoder_fit["generator"])
            done, updates = self._decoder_fit["done"], self._decoder_fit["ema_updates"]
        else:
            with torch.random.fork_rng(devices=[]):  # seeded initial weights; the caller's generator untouched
                torch.manual_seed(cfg.seed)
                decoder = EigenpairEdgeDecoder(self.k, hidden_dim=cfg.decoder_dim, num_layers=cfg.decoder_layers)
            self._replace_decoder(decoder)
            optimizer = torch.optim.Adam(decoder.parameters(), lr=cfg.learning_rate)
            done, updates = 0, 0
        averaged = self.ema_network["decoder"] if self.ema_network is not None else None
        epoch_losses = []
        bar = tqdm(range(done, epochs), desc="training the edge decoder", disable=not progress, initial=done,
                   total=epochs)
        decoder.train()
        steps_per_epoch = math.ceil(self._num_train() / cfg.batch_size)
        step = done * steps_per_epoch
        for epoch in bar:
            order = torch.randperm(self._num_train(), generator=generator)
            total, batches = 0.0, 0
            for start in range(0, len(order), cfg.batch_size):
                set_learning_rate(optimizer, scheduled_learning_rate(
                    cfg.learning_rate, cfg.learning_rate_schedule, step, epochs * steps_per_epoch))
                step += 1
                loss = self._decoder_loss(self.training_batch(order[start:start + cfg.batch_size], generator),
                                          generator)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
                optimizer.step()
                if averaged is not None:
                    updates += 1
                    average_into(averaged, decoder, ema_decay(cfg.ema_decay, updates))
                total, batches = total + float(loss), batches + 1
            epoch_losses.append(total / batches)
            bar.set_postfix(loss=f"{epoch_losses[-1]:.4f}")
            self.training_seconds = seconds_before + time.perf_counter() - clock
            if checkpoint_due(checkpoint_every, epoch + 1, epochs):
                self._decoder_fit = {"epochs": epochs, "done": epoch + 1, "optimizer": optimizer.state_dict(),
                                     "generator": generator.get_state(), "ema_updates": updates}
                self.save(checkpoint_path)
        decoder.eval()
        self._decoder_fit = None
        self.training_seconds = seconds_before + time.perf_counter() - clock
        return epoch_losses

    def decoder_progress(self) -> tuple[int, int] | None:
        """``(epochs, done)`` of the interrupted :meth:`fit_decoder` a loaded file (saved by its
        ``checkpoint_every``) holds; None when there is none."""
        return (self._decoder_fit["epochs"], self._decoder_fit["done"]) if self._decoder_fit else None

    def unfinished_decoder_epochs(self) -> int:
        """Epochs the interrupted :meth:`fit_decoder` of a loaded file still had to run (0: none)."""
        progress = self.decoder_progress()
        return progress[0] - progress[1] if progress else 0

    def unfinished_training(self) -> str | None:
        """:meth:`GraphGenerator.unfinished_training`, or an interrupted :meth:`fit_decoder`'s progress."""
        if not self.unfinished_decoder_epochs():
            return super().unfinished_training()
        epochs, done = self.decoder_progress()
        return (f"epoch {done} of a {epochs}-epoch decoder training; finish it with "
                "fit_decoder(graphs, finish=True)")

    def training_state(self) -> dict:
        """:meth:`GraphGenerator.training_state`, plus ``decoder_fit`` in a file saved during
        :meth:`fit_decoder` (its epochs, how many ran, its Adam state, generator and EMA count)."""
        state = super().training_state()
        if self._decoder_fit:
            state["decoder_fit"] = dict(self._decoder_fit)
        return state

    def restore(self, graphs: Sequence[nx.Graph], payload: dict, source: str = "the saved model") -> None:
        super().restore(graphs, payload, source)
        fit = payload.get("decoder_fit")
        self._decoder_fit = None if fit is None else {
            "epochs": int(fit["epochs"]), "done": int(fit["done"]), "optimizer": fit["optimizer"],
            "generator": fit["generator"], "ema_updates": int(fit["ema_updates"])}

    def _replace_decoder(self, decoder: EigenpairEdgeDecoder) -> None:
        """Put ``decoder`` in the network (and a copy in the EMA network); the joint optimiser keeps the
        score network's Adam state and starts the new decoder's afresh."""
        old = self._optimizer
        self.network["decoder"] = decoder
        if self.ema_network is not None:
            self.ema_network["decoder"] = copy.deepcopy(decoder).requires_grad_(False)
        self._optimizer = torch.optim.Adam(self.network.parameters(), lr=self.config.learning_rate)
        for p in self.network["score"].parameters():
            if p in old.state:
                self._optimizer.state[p] = old.state[p]
        self.__dict__.pop("_compiled", None)

    def decoder_training_input(self, state: dict[str, Tensor], nodes: Tensor, slots: Tensor,
                               generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The eigenpairs the edge decoder is trained on, made from clean ones.

        Generated eigenpairs are not exact (not orthonormal, blurred spectra), so the decoder is not
        trained on the clean ones. With ``config.decoder_inputs="noised"`` it reads them plus Gaussian
        noise of std ``decoder_noise`` (draws: the eigenvectors' noise, then the eigenvalues'). With
        ``"denoised"`` it reads the errors of the diffusion itself: the training network's one-step
        (Tweedie) estimate ``x̂_0 = (x_t − std(t) ε̂(x_t, t)) / mean(t)`` (:meth:`SDE.data_from_noise`)
        from a draw ``x_t`` of the forward kernel at ``t`` uniform on ``[eps, t_eq]``, without gradient
        (draws: ``t``, then the eigenvectors' and the eigenvalues' noise). ``t_eq`` (:meth:`equal_noise_time`)
        is where the kernel's noise std equals its signal scale ``mean(t)``: beyond it ``x̂_0`` multiplies
        the network's error by ``std(t) / mean(t)`` (about 150 at ``T`` for the VP SDE).

        Parameters
        ----------
        state : dict
            ``eigenvectors`` ``(B, N, k)`` and ``eigenvalues`` ``(B, k)`` in the diffused scale (as
            :meth:`training_batch` returns them).
        nodes, slots : Tensor
            ``(B, N)`` and ``(B, k)`` bool masks.

        Returns
        -------
        dict
            The same keys and shapes, in the diffused scale; padded nodes and slots zero.
        """
        masks = self._state_masks(nodes, slots)
        if self.config.decoder_inputs == "noised":
            sigma = self.config.decoder_noise
            return {key: state[key] + sigma * torch.randn(state[key].shape, generator=generator) * masks[key]
                    for key in (VECTORS, VALUES)}
        sde, B = self.sde, state[VALUES].shape[0]
        t = sde.eps + (self.equal_noise_time() - sde.eps) * torch.rand(B, generator=generator)
        noisy = {key: perturb(state[key], t, sde, masks[key], generator=generator)[0] for key in (VECTORS, VALUES)}
        with torch.no_grad():
            eps_vectors, eps_values = self.network["score"](noisy[VECTORS], noisy[VALUES], t, nodes, slots)
        noise = {VECTORS: eps_vectors, VALUES: eps_values}
        return {key: sde.data_from_noise(noise[key], noisy[key], t) * masks[key] for key in (VECTORS, VALUES)}

    def equal_noise_time(self) -> float:
        """The largest time (on a grid of 1001 over ``[eps, T]``) where the forward kernel's std is at
        most its mean coefficient, ``std(t) ≤ mean(t)`` (0.26 for the default VP SDE, 0.54 for the VE)."""
        sde = self.sde
        t = torch.linspace(sde.eps, sde.T, 1001, dtype=torch.float64)
        mean, std = sde.marginal_prob(torch.ones_like(t), t)
        return float(t[std <= mean].max()) if bool((std <= mean).any()) else sde.eps

    # -- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_weighted(self, num_graphs: int, *, steps: int | None = None, generator: torch.Generator | None = None,
                        progress: bool = False, eigenvalues: Tensor | None = None,
                        sizes: Tensor | list[int] | None = None) -> dict[str, Tensor]:
        """Sample eigenpairs and decode them.

        Parameters
        ----------
        eigenvalues : Tensor, optional
            ``(m,)`` or ``(num_graphs, m)``, ``m ≤ k``: hold the ``m`` smallest normalised-Laplacian
            eigenvalues at these values (data scale) and generate the rest; slots beyond a graph's node
            count are ignored.
        sizes : Tensor or list of int, optional
            ``(num_graphs,)`` node counts; drawn from the training graphs (``config.node_counts``) if
            omitted.

        Returns
        -------
        dict
            ``"adjacency"`` ``(B, N, N)`` (edge probabilities with ``edge_sampling="threshold"``, a 0/1
            draw with ``"bernoulli"`` or ``"degree"``), ``"probabilities"`` ``(B, N, N)``, ``"eigenvalues"`` ``(B, k)``
            (data scale), ``"eigenvectors"`` ``(B, N, k)`` (unit scale; the ones decoded, so orthonormal
            with ``eigenvector_projection`` ``"polar"`` or ``"polar_denoised"``), ``"sizes"`` ``(B,)``,
            ``"sources"`` ``(B,)`` (the training graph whose node count was drawn, −1 for given sizes).
        """
        self._check_fitted()
        network = self.sampling_network()
        network.eval()
        score_network = self.compiled(network["score"])
        chunks = list(self._given_chunks(num_graphs, sizes) if sizes is not None else self._chunks(num_graphs, generator))
        N = max([self.max_nodes] + [int(s.max()) for _, s in chunks])
        target = self._check_eigenvalues(eigenvalues, num_graphs)
        cfg = self.config
        project_below = self.equal_noise_time() if cfg.eigenvector_projection == "polar_denoised" else None
        parts, done = [], 0
        for sources, chunk_sizes in chunks:
            B = len(chunk_sizes)
            nodes, slots = node_mask(chunk_sizes, N), node_mask(chunk_sizes, self.k)
            masks = self._state_masks(nodes, slots)
            x_T = {VECTORS: self.sde.prior_sampling((B, N, self.k), generator=generator),
                   VALUES: self.sde.prior_sampling((B, self.k), generator=generator)}
            observed = None
            if target is not None:
                values, held = target[0][done:done + B], target[1][:B] & slots
                observed = {VALUES: (self.scale_values(values, slots.float()), held)}
            x = pc_sampler(self.sde, self._score_fn(score_network, nodes, slots, project_below), x_T,
                           steps=steps or cfg.steps, predictor=cfg.predictor, corrector=cfg.corrector, snr=cfg.snr,
                           mask=masks, observed=observed, generator=generator, progress=progress)
            if cfg.eigenvector_projection != "none":
                x[VECTORS] = self.project_eigenvectors(x[VECTORS], slots, chunk_sizes)
            probabilities = self.decode(x[VECTORS], x[VALUES], nodes, slots, network)
            values = self.unscale_values(x[VALUES], slots.float()).double()
            if target is not None:  # exact, not through the float32 round trip of the standardisation
                values = torch.where(held, target[0][done:done + B].double(), values)
            edges = sample_edges(probabilities, cfg.edge_sampling, generator=generator,
                                 triangle_bonus=cfg.triangle_bonus, budgets=self._budgets(probabilities, sources))
            parts.append({"adjacency": edges, "probabilities": probabilities,
                          VALUES: values, VECTORS: x[VECTORS] / self._row_scale(chunk_sizes),
                          "sizes": chunk_sizes, "sources": sources})
            done += B
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}

    def sample(self, num_graphs: int, *, steps: int | None = None, generator: torch.Generator | None = None,
               progress: bool = False, eigenvalues: Tensor | None = None,
               sizes: Tensor | list[int] | None = None) -> list[nx.Graph]:
        """``num_graphs`` networkx graphs; ``eigenvalues`` and ``sizes`` as in :meth:`sample_weighted`."""
        return self.to_graphs(self.sample_weighted(num_graphs, steps=steps, generator=generator, progress=progress,
                                                   eigenvalues=eigenvalues, sizes=sizes))

    def _budgets(self, probabilities: Tensor, sources: Tensor) -> Tensor | None:
        """``config.degree_budgets="training"``: each sample's budgets ``(B, N)``, the degree sequence of
        its source training graph (:func:`.edge_sampling.ranked_budgets`); else None (the default
        budgets, or a rule without budgets)."""
        if self.config.edge_sampling != "degree" or self.config.degree_budgets != "training":
            return None
        if bool((sources < 0).any()):
            raise ValueError("degree_budgets='training' takes each sample's degrees from the training graph "
                             "whose node count was drawn; with given sizes use degree_budgets='expected'")
        degrees = self.adjacency[sources].sum(dim=-1)  # (B, max_nodes): drawn sizes fit the training padding
        return ranked_budgets(probabilities, degrees)

    def to_graphs(self, sampled: dict[str, Tensor]) -> list[nx.Graph]:
        """Networkx graphs from :meth:`sample_weighted`. ``config.threshold`` applies to the
        ``"threshold"`` rule only: the other rules already drew 0/1 edges, which are kept as drawn
        whatever the threshold (a threshold of 1 or more would otherwise drop them all)."""
        threshold = self.config.threshold if self.config.edge_sampling == "threshold" else 0.5
        return dense_to_graphs(sampled["adjacency"], sampled["sizes"], threshold=threshold)

    def _given_chunks(self, num_graphs: int, sizes):
        sizes = torch.as_tensor(sizes, dtype=torch.long).reshape(-1)
        if len(sizes) != num_graphs:
            raise ValueError(f"sizes has {len(sizes)} entries, expected num_graphs={num_graphs}")
        if int(sizes.min()) < 1:
            raise ValueError(f"every size must be ≥ 1, got {int(sizes.min())} at index {int(sizes.argmin())}")
        step = self.config.sample_batch_size
        for start in range(0, num_graphs, step):
            part = sizes[start:start + step]
            yield torch.full_like(part, -1), part

    def _check_eigenvalues(self, eigenvalues, num_graphs: int) -> tuple[Tensor, Tensor] | None:
        """``(values (num_graphs, k), held (1, k))`` from the user's target spectrum, or None."""
        if eigenvalues is None:
            return None
        values = torch.as_tensor(eigenvalues, dtype=torch.float32)
        if values.dim() == 1:
            values = values.expand(num_graphs, -1)
        if values.dim() != 2 or values.shape[0] != num_graphs:
            raise ValueError(f"eigenvalues must have shape (m,) or (num_graphs={num_graphs}, m), "
                             f"got {tuple(torch.as_tensor(eigenvalues).shape)}")
        m = values.shape[1]
        if not 1 <= m <= self.k:
            raise ValueError(f"eigenvalues holds {m} values per graph; the model diffuses k={self.k} "
                             f"(config.num_eigenvectors), give 1 to {self.k}")
        held = torch.arange(self.k) < m
        return F.pad(values, (0, self.k - m)), held[None, :]

    def diagnostics(self, sampled: dict[str, Tensor]) -> dict[str, float]:
        """``orthogonality_error``: mean over samples of ``‖UᵀU − I‖_F / √k`` on the real slots of the
        generated eigenvectors (0 for true eigenvectors; a measure of the vector model itself)."""
        U, sizes = sampled[VECTORS].double(), sampled["sizes"]
        slots = node_mask(sizes, self.k).double()
        gram = U.mT @ U
        eye = torch.diag_embed(slots)
        error = (((gram - eye) * slots[:, :, None] * slots[:, None, :]) ** 2).sum(dim=(1, 2)).sqrt()
        return {"orthogonality_error": float((error / slots.sum(dim=1).sqrt()).mean())}


def _pair_mask(nodes: Tensor) -> Tensor:
    """``(B, N, N)`` bool: both nodes real and ``i ≠ j``."""
    pairs = nodes[:, :, None] & nodes[:, None, :]
    return pairs & ~torch.eye(nodes.shape[1], dtype=torch.bool, device=nodes.device)
