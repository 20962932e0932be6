"""GSDNet: missing-modality recovery by diffusion of features and of graph spectra.

Per conversation the structure graph ``A = U diag(λ_s) Uᵀ`` (:func:`mer.graph.structure_adjacency`)
fixes a basis ``U``; each modality's similarity graph is carried as its spectrum in that basis,
``λ_m = diag(Uᵀ S_m U) / n``. Two conditional score networks (VP SDE of :mod:`spectraldiff`) recover
the missing features ``X (B, N, Σ d_m)`` and spectra ``λ (B, N, M)`` from the observed ones; a
reconstruction head refines them, and fusion runs on ``A_m = U diag(n λ̂_m) Uᵀ``
(:attr:`~mer.recoverers.base.Recovery.adjacency`, ``(B, N, N)`` per modality).

Contract: :class:`~mer.recoverers.base.Recoverer`. ``training_step`` returns ``{"rec",
"score_features", "score_<graph>"}`` (``<graph>`` = ``spectra`` or ``adjacency``; none for
``gsdnet_nograph``), built from a detached one-step (Tweedie) estimate by default; ``recover`` runs the
reverse sampler down to ``denoise_time`` and denoises there.

The method, its loss, the training-time estimate and why inference stops at ``denoise_time``:
``docs/gsdnet.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

import spectraldiff as sd
from mer.data.collate import ConversationBatch
from mer.graph import GraphConfig, similarity_adjacency, structure_adjacency
from mer.recoverers.base import Recoverer, Recovery, merge_observed, observed_only, register_recoverer

__all__ = ["GSDNet", "GSDNetAdjacency", "GSDNetNoGraph"]

SAMPLERS = ("ode", "euler_maruyama", "reverse_diffusion")
REC_ESTIMATES = ("tweedie", "sampler")
GRAPH_CHANNELS = ("spectral", "adjacency", "none")
PREDICTIONS = ("noise", "data")
SLOT_NETWORKS = ("attention", "edge")
BASES = ("structure", "observed")
INFERENCES = ("denoise", "reverse_sde")
#: Decay per speaker turn of the nearer of the two same-speaker context means (``speaker_context``).
TURN_DECAY = 0.5
#: Euler–Maruyama steps of ``inference="reverse_sde"`` (the paper gives none; 100 is the usual order
#: of magnitude of score-SDE samplers, and more changed nothing measurable, ``docs/gsdnet.md``).
REVERSE_SDE_STEPS = 100
#: Where ``inference="reverse_sde"`` stops: ``t ≈ 0``, the paper's sample of Eq. 16.
REVERSE_SDE_END = 1e-3
#: Most attention scores one chunk of the slot attention holds (64 MiB of float32): the spectral
#: channel's ``N`` slots stay under it at any batch this package trains on, so only the adjacency
#: channel under ``slot_network="attention"`` is chunked.
ATTENTION_BUDGET = 2**24


@dataclass
class _Context:
    """Everything the score networks condition on, computed once per batch from observed data only.

    The graph channel works on ``T`` *slots* per modality: the ``N`` eigenvalue slots of the structure
    basis (``graph="spectral"``) or the ``N(N+1)/2`` upper-triangle entries of the similarity graph
    (``graph="adjacency"``).
    """

    observed_x: Tensor  # (B, N, D) standardised features, zero where unobserved
    entry_flags: Tensor  # (B, N, M) float availability
    missing_entries: Tensor  # (B, N, D) bool: real utterance and unobserved modality
    utterance_mask: Tensor  # (B, N) bool
    eigenvectors: Tensor  # (B, N, N) structure basis U (feature network: only U diag(λ_s) Uᵀ matters)
    structure_eigenvalues: Tensor  # (B, N) λ_s
    sizes: Tensor  # (B,) conversation lengths
    feature_condition: Tensor  # (B, N, D + M) observed features and availability flags
    graph_basis: Tensor | None = None  # (B, N, N) the spectral channel's basis (canonical, see `basis`)
    basis_eigenvalues: Tensor | None = None  # (B, N) eigenvalues of the matrix that basis diagonalises
    slot_mask: Tensor | None = None  # (B, T) bool: slots of real utterances
    observed_graph: Tensor | None = None  # (B, T, M) slots of the observed-only similarity graphs
    graph_condition: Tensor | None = None  # (B·M, T, 2M + 3) per-slot condition of the graph network


@register_recoverer("gsdnet")
class GSDNet(Recoverer):
    """Graph spectral diffusion recoverer (the method: ``docs/gsdnet.md``).

    Parameters
    ----------
    modalities, feature_dims, graph_config
        See :class:`~mer.recoverers.base.Recoverer`.
    hidden_dim : int
        Width of both score networks (default 64).
    num_layers : int
        Layers of both score networks (default 2).
    sampler : {"ode", "euler_maruyama", "reverse_diffusion"}
        Reverse process used by :meth:`recover` (default the probability-flow ODE).
    sampling_steps : int
        Steps of that sampler (default 2; the ODE uses 2 network calls per step). From ``t = 1`` to
        the default ``denoise_time = 0.8`` 1, 2, 4 and 10 steps gave the same metrics to three decimals.
    rec_estimate : {"tweedie", "sampler"}
        How training builds ``X̂, λ̂`` for ``L_rec`` and the task loss (``docs/gsdnet.md``).
    rec_t_max : float
        Largest diffusion time of the Tweedie estimate in training (default 0.8).
    denoise_time : float
        Inference stops the reverse process at this time and returns the one-step (Tweedie) denoised
        estimate ``E[x_0 | x_t]`` there (default 0.8; ``1e-3`` returns a plain sample). A larger time
        returns an estimate closer to the posterior mean (``docs/gsdnet.md``).
    graph : {"spectral", "adjacency", "none"}
        What the graph channel diffuses: the per-modality spectra in the structure basis (GSDNet), the
        similarity graphs' entries themselves (the ``gsdnet_adjacency`` ablation), or nothing (features
        only, fusion on the unweighted graph: ``gsdnet_nograph``).
    slot_network : {"attention", "edge"}
        The graph channel's score network. ``"attention"`` (default for ``gsdnet``):
        :class:`~spectraldiff.score_networks.EigenvalueScoreNet`, self-attention over the slots, chunked
        so that memory stays linear in the number of slots (time is quadratic in slots: ``O(N²)`` for
        spectra, ``O(N⁴)`` for adjacency entries). ``"edge"`` (default for ``gsdnet_adjacency``, adjacency
        only): :class:`~spectraldiff.score_networks.EdgeScoreNet`, which pools the entries at their two
        utterances and is linear in slots, ``O(N²)``. ``docs/long_conversations.md`` has the costs.
    basis : {"structure", "observed"}
        The spectral channel's basis (``graph="spectral"``). ``"structure"`` (default): the eigenvectors
        of the structure graph, which every modality shares and no missing entry changes.
        ``"observed"``: the eigenvectors of the mean of the observed modalities' similarity graphs, the
        closest reading of the paper's ``A_m = U_m Λ_m U_mᵀ`` that exists when ``A_m`` itself is
        missing. Either basis is made unique inside repeated eigenspaces
        (:func:`spectraldiff.eigh.canonical_eigenvectors`, temporal path tie-breaker): with one speaker the
        structure graph is all ones and its eigenvalue 0 repeats ``N − 1`` times.
    inference : {"denoise", "reverse_sde"}
        How :meth:`recover` reads the networks. ``"denoise"`` (default): ``sampler`` from ``t = 1`` down
        to ``denoise_time``, then the one-step denoised estimate (close to the posterior mean).
        ``"reverse_sde"``: the paper's Eq. 16, Euler–Maruyama on the reverse SDE for
        :data:`REVERSE_SDE_STEPS` steps down to ``t ≈ 0`` (:data:`REVERSE_SDE_END`): a posterior sample;
        ``sampler``, ``sampling_steps`` and ``denoise_time`` are then not used. Training is the same.
    speaker_context : bool
        Condition the feature network, per utterance, on what the same speaker's *other* utterances
        show: the flag-weighted mean of their observed entries over the whole conversation, the same
        with weights ``0.5^|Δturn|`` (their nearer turns), and the observed share behind each
        (default ``True``). ``False`` is the paper's conditioning: the network then sees the speaker's
        turns only through structure-graph messages, which do not tell a same-speaker edge from a
        temporal one (``docs/gsdnet.md`` has the measurements).
    prediction : {"data", "noise"}
        What both networks output (default ``"data"``): the noise ``ε̂`` (score ``−ε̂/std``, loss ``‖ε̂ − z‖²``) or the clean
        value ``x̂_0`` (score ``(mean·x̂_0 − x_t)/std²``, loss ``‖x̂_0 − x_0‖²``). The one-step denoised
        estimate is ``x̂_0`` itself under ``"data"``; under ``"noise"`` it divides ``std·ε̂`` by
        ``mean(t)``, which amplifies the network's error at large ``t``.
    beta_min, beta_max : float
        VP SDE schedule.
    """

    stochastic = True  # the reverse process starts from the prior

    def __init__(
        self,
        modalities: Sequence[str],
        feature_dims: Mapping[str, int],
        *,
        graph_config: GraphConfig | None = None,
        hidden_dim: int = 64,
        num_layers: int = 2,
        sampler: str = "ode",
        sampling_steps: int = 2,
        rec_estimate: str = "tweedie",
        rec_t_max: float = 0.8,
        denoise_time: float = 0.8,
        graph: str = "spectral",
        slot_network: str = "attention",
        prediction: str = "data",
        basis: str = "structure",
        inference: str = "denoise",
        speaker_context: bool = True,
        beta_min: float = 0.1,
        beta_max: float = 20.0,
    ) -> None:
        super().__init__(modalities, feature_dims, graph_config=graph_config)
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {list(SAMPLERS)}")
        if rec_estimate not in REC_ESTIMATES:
            raise ValueError(f"unknown rec_estimate {rec_estimate!r}; choose one of {list(REC_ESTIMATES)}")
        if sampling_steps < 1:
            raise ValueError(f"sampling_steps must be >= 1, got {sampling_steps}")
        if not 0.0 < rec_t_max <= 1.0:
            raise ValueError(f"rec_t_max must lie in (0, 1], got {rec_t_max}")
        if graph not in GRAPH_CHANNELS:
            raise ValueError(f"unknown graph channel {graph!r}; choose one of {list(GRAPH_CHANNELS)}")
        if slot_network not in SLOT_NETWORKS:
            raise ValueError(f"unknown slot_network {slot_network!r}; choose one of {list(SLOT_NETWORKS)}")
        if slot_network == "edge" and graph != "adjacency":
            raise ValueError(f"slot_network='edge' needs graph='adjacency' (its slots are matrix entries), "
                             f"got graph={graph!r}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; choose one of {list(PREDICTIONS)}")
        if not 0.0 < denoise_time < 1.0:
            raise ValueError(f"denoise_time must lie in (0, 1), got {denoise_time}")
        if basis not in BASES:
            raise ValueError(f"unknown basis {basis!r}; choose one of {list(BASES)}")
        if basis != "structure" and graph != "spectral":
            raise ValueError(f"basis={basis!r} needs graph='spectral' (only spectra have a basis), got graph={graph!r}")
        if inference not in INFERENCES:
            raise ValueError(f"unknown inference {inference!r}; choose one of {list(INFERENCES)}")
        self.basis, self.inference = basis, inference
        self.speaker_context = bool(speaker_context)
        self.sampler, self.sampling_steps = sampler, int(sampling_steps)
        self.denoise_time = float(denoise_time)
        self.rec_estimate, self.rec_t_max = rec_estimate, float(rec_t_max)
        self.graph, self.prediction, self.slot_network = graph, prediction, slot_network
        self.hidden_dim, self.num_layers = int(hidden_dim), int(num_layers)
        if graph == "adjacency" and slot_network == "attention":
            self.memory_advice = ("use slot_network='edge' (linear in the N(N+1)/2 slots), a smaller "
                                  "train.batch_size or hidden_dim, or split the longest conversations")
        else:
            self.memory_advice = ("use a smaller train.batch_size or hidden_dim, or split the longest "
                                  "conversations")
        # State key of the graph channel (also names its loss term and its extras entry).
        self.graph_key = {"spectral": "spectra", "adjacency": "adjacency", "none": None}[graph]
        self.sde = sd.VPSDE(beta_min=beta_min, beta_max=beta_max)

        M = len(self.modalities)
        self.total_dim = sum(self.feature_dims.values())
        # Column slice of each modality in the concatenated feature matrix.
        offsets = torch.tensor([0, *self.feature_dims.values()]).cumsum(0)
        self.slices = {m: slice(int(offsets[k]), int(offsets[k + 1])) for k, m in enumerate(self.modalities)}
        self.register_buffer("entry_modality", torch.repeat_interleave(
            torch.arange(M), torch.tensor(list(self.feature_dims.values()))), persistent=False)

        condition_dim = (self.total_dim + M) * (3 if self.speaker_context else 1)
        self.feature_score = sd.FeatureScoreNet(self.total_dim, hidden_dim, num_layers,
                                                condition_dim=condition_dim)
        self.feature_head = nn.Sequential(nn.Linear(2 * self.total_dim + M, hidden_dim), nn.SiLU(),
                                          nn.Linear(hidden_dim, self.total_dim))
        if self.graph_key is not None:
            # The same set network and head for either kind of slot. Per slot: the observed value of this
            # modality, of every modality, the structure value (λ_s or A_s entry), the modality one-hot
            # and the modality's observed share.
            if slot_network == "edge":
                self.graph_score = sd.score_networks.EdgeScoreNet(hidden_dim, num_layers, condition_dim=2 * M + 3)
            else:
                self.graph_score = sd.EigenvalueScoreNet(hidden_dim, num_layers, condition_dim=2 * M + 3,
                                                         attention_budget=ATTENTION_BUDGET)
            self.graph_head = nn.Sequential(nn.Linear(2, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, 1))

    # ------------------------------------------------------------------------------ context
    def _context(self, batch: ConversationBatch, observed: Tensor) -> _Context:
        mask = batch.utterance_mask
        visible = observed_only(batch, observed)
        observed_x = torch.cat(list(visible.values()), dim=-1)
        flags = batch.observed_entries(observed).to(observed_x.dtype)
        missing = batch.missing_entries(observed)[:, :, self.entry_modality]
        with torch.no_grad():
            A, sizes = structure_adjacency(batch.speakers, batch.lengths, self.graph_config,
                                           dtype=torch.float64)
            lam_s, U = sd.batched_eigh(A, sizes)
            if self.graph == "spectral" and self.basis == "structure":
                U = _canonical(lam_s, U, sizes)
            U, lam_s = U.to(observed_x.dtype), lam_s.to(observed_x.dtype)
        # The conditions depend only on what is observed: built once, reused by every sampler step.
        condition = [observed_x, flags]
        if self.speaker_context:
            entry_flags = flags[:, :, self.entry_modality]
            for weights in _speaker_weights(batch.speakers, mask):
                condition += _weighted_mean(weights, observed_x, entry_flags, flags)
        ctx = _Context(observed_x, flags, missing, mask, U, lam_s, sizes, torch.cat(condition, dim=-1))
        if self.graph_key is None:
            return ctx
        with torch.no_grad():
            observed_graphs = [similarity_adjacency(x, batch.lengths, available=observed[:, :, k])[0]
                               for k, x in enumerate(visible.values())]
            ctx.graph_basis, ctx.basis_eigenvalues = U, lam_s
            if self.graph == "spectral" and self.basis == "observed":
                mean_graph = torch.stack(observed_graphs).mean(0).to(torch.float64)
                lam_o, U_o = sd.batched_eigh(mean_graph, sizes)
                ctx.graph_basis = _canonical(lam_o, U_o, sizes).to(observed_x.dtype)
                ctx.basis_eigenvalues = lam_o.to(observed_x.dtype) / sizes[:, None].to(observed_x.dtype)
            ctx.slot_mask = self._to_slots(mask[:, :, None] & mask[:, None, :], ctx)[..., 0] > 0 \
                if self.graph == "adjacency" else mask
            ctx.observed_graph = torch.stack([self._to_slots(S, ctx)[..., 0] for S in observed_graphs], dim=-1)
            structure = ctx.basis_eigenvalues if self.graph == "spectral" \
                else self._to_slots(A.to(lam_s.dtype), ctx)[..., 0]
        ctx.graph_condition = self._graph_condition(ctx.observed_graph, structure, flags, sizes)
        return ctx

    def _to_slots(self, S: Tensor, ctx: _Context) -> Tensor:
        """A graph ``(B, N, N)`` as slot values ``(B, T, 1)``.

        Spectral: ``diag(Uᵀ S U) / n``, the graph's spectrum in the structure basis (in ``[0, 1]`` for a
        similarity graph). Adjacency: the upper-triangle entries (diagonal included), row-major.
        """
        S = S.to(ctx.eigenvectors.dtype)
        if self.graph == "spectral":
            U, n = ctx.graph_basis, ctx.sizes[:, None].to(S.dtype)
            return (torch.einsum("bik,bij,bjk->bk", U, S, U) / n)[..., None]
        rows, cols = torch.triu_indices(S.shape[-1], S.shape[-1], device=S.device)
        return S[:, rows, cols][..., None]

    def _from_slots(self, values: Tensor, ctx: _Context) -> Tensor:
        """Inverse of :meth:`_to_slots` for ``(B, T)`` values: the graph ``(B, N, N)``.

        Spectral: ``U diag(n λ) Uᵀ`` (it keeps the structure eigenvectors). Adjacency: the entries
        mirrored into a symmetric matrix.
        """
        if self.graph == "spectral":
            U, n = ctx.graph_basis, ctx.sizes[:, None].to(values.dtype)
            return (U * (n * values)[:, None, :]) @ U.mT
        B, N = ctx.utterance_mask.shape
        rows, cols = torch.triu_indices(N, N, device=values.device)
        upper = values.new_zeros(B, N, N)
        upper[:, rows, cols] = values
        return upper + upper.mT - torch.diag_embed(torch.diagonal(upper, dim1=-2, dim2=-1))

    def _true_graph(self, batch: ConversationBatch, ctx: _Context) -> Tensor:
        """Slots ``(B, T, M)`` of the complete similarity graphs (training only: reads dropped entries)."""
        with torch.no_grad():
            return torch.stack([self._to_slots(similarity_adjacency(x, batch.lengths)[0], ctx)[..., 0]
                                for x in batch.features.values()], dim=-1)

    # ------------------------------------------------------------------------------ scores
    @staticmethod
    def _graph_condition(observed_graph: Tensor, structure: Tensor, flags: Tensor, sizes: Tensor) -> Tensor:
        """``(B·M, T, 2M + 3)`` per-slot condition of the graph network: the slot's observed value for its
        modality and for every modality, the structure value, the modality one-hot and the modality's
        observed share."""
        B, T, M = observed_graph.shape
        share = flags.sum(dim=1) / sizes[:, None].to(flags.dtype)  # (B, M)
        per_modality = []
        for k in range(M):
            one_hot = torch.zeros(B, T, M, dtype=share.dtype, device=share.device)
            one_hot[:, :, k] = 1.0
            per_modality.append(torch.cat([
                observed_graph[:, :, k:k + 1], observed_graph, structure[..., None],
                one_hot, share[:, None, k:k + 1].expand(B, T, 1)], dim=-1))
        return torch.stack(per_modality, dim=1).reshape(B * M, T, -1)

    def _network(self, state: dict[str, Tensor], t: Tensor, ctx: _Context) -> dict[str, Tensor]:
        """Raw outputs (``ε̂`` or ``x̂_0``, see ``prediction``) for ``{"features": (B, N, D),
        graph_key: (B, T, M)}`` at times ``t (B,)``."""
        out = {"features": self.feature_score(state["features"], ctx.structure_eigenvalues, ctx.eigenvectors,
                                              t, ctx.utterance_mask, ctx.feature_condition)}
        if self.graph_key is not None:
            B, T, M = state[self.graph_key].shape
            flat = state[self.graph_key].permute(0, 2, 1).reshape(B * M, T)
            g = self.graph_score(flat, t.repeat_interleave(M), ctx.slot_mask.repeat_interleave(M, 0),
                                 ctx.graph_condition)
            out[self.graph_key] = g.reshape(B, M, T).permute(0, 2, 1)
        return out

    def _score(self, state: dict[str, Tensor], t: Tensor, ctx: _Context) -> dict[str, Tensor]:
        """Score of every state key at times ``t (B,)``."""
        out = self._network(state, t, ctx)
        if self.prediction == "noise":
            return {k: self.sde.score_from_noise(v, t) for k, v in out.items()}
        return {k: self.sde.score_from_data(v, state[k], t) for k, v in out.items()}

    def _masks(self, ctx: _Context) -> dict[str, Tensor]:
        masks = {"features": ctx.missing_entries}
        if self.graph_key is not None:
            masks[self.graph_key] = ctx.slot_mask[:, :, None]
        return masks

    # ------------------------------------------------------------------------------ recovery
    def _sample(self, ctx: _Context) -> dict[str, Tensor]:
        """Run the reverse process from the prior down to ``denoise_time``, then denoise in one step."""
        B = ctx.observed_x.shape[0]
        gen_shape = {"features": ctx.observed_x.shape}
        if self.graph_key is not None:
            gen_shape[self.graph_key] = ctx.observed_graph.shape
        x_T = {k: self.sde.prior_sampling(s, device=ctx.observed_x.device, dtype=ctx.observed_x.dtype)
               for k, s in gen_shape.items()}
        score_fn = lambda state, t, c: self._score(state, t, ctx)  # noqa: E731
        masks = self._masks(ctx)
        if self.inference == "reverse_sde":  # Eq. 16 down to t ≈ 0: a sample, returned as it is
            sample = sd.pc_sampler(self.sde, score_fn, x_T, steps=REVERSE_SDE_STEPS, predictor="euler_maruyama",
                                   corrector="none", eps=REVERSE_SDE_END, denoise=False, mask=masks)
            return {k: v * masks[k] for k, v in sample.items()}
        if self.sampler == "ode":
            x_t = sd.ode_sampler(self.sde, score_fn, x_T, steps=self.sampling_steps, method="heun",
                                 eps=self.denoise_time, mask=masks)
        else:
            x_t = sd.pc_sampler(self.sde, score_fn, x_T, steps=self.sampling_steps, predictor=self.sampler,
                                eps=self.denoise_time, denoise=False, mask=masks)
        t = torch.full((B,), self.denoise_time, device=ctx.observed_x.device, dtype=ctx.observed_x.dtype)
        return self._tweedie(x_t, t, ctx)

    def _tweedie(self, noisy: dict[str, Tensor], t: Tensor, ctx: _Context) -> dict[str, Tensor]:
        """One-step denoiser ``x̂_0 = (x_t + std(t)² s(x_t, t)) / mean(t)`` on the masked entries."""
        masks = self._masks(ctx)
        out = self._network(noisy, t, ctx)
        if self.prediction == "data":
            return {k: v * masks[k] for k, v in out.items()}
        return {k: self.sde.data_from_noise(v, noisy[k], t) * masks[k] for k, v in out.items()}

    def _refine(self, batch: ConversationBatch, observed: Tensor, ctx: _Context,
                estimate: dict[str, Tensor]) -> tuple[Recovery, Tensor, Tensor | None]:
        """Reconstruction head ``D`` on a sample or estimate; returns the recovery, ``X̂`` and the graph
        slots ``Ĝ (B, T, M)`` (``None`` without a graph channel)."""
        x_hat = estimate["features"] + self.feature_head(
            torch.cat([estimate["features"], ctx.observed_x, ctx.entry_flags], dim=-1))
        x_hat = x_hat * ctx.missing_entries.to(x_hat.dtype)
        filled = {m: x_hat[:, :, self.slices[m]] for m in self.modalities}
        features = merge_observed(batch, observed, filled)
        if self.graph_key is None:
            return Recovery(features), x_hat, None

        g = estimate[self.graph_key]
        pairs = torch.stack([g, ctx.observed_graph], dim=-1)
        # Recomputed in backward: its (B, T, M, hidden) activations would rival the slot network's.
        hidden = checkpoint(self.graph_head, pairs, use_reentrant=False) if torch.is_grad_enabled() \
            else self.graph_head(pairs)
        g_hat = g + hidden.squeeze(-1)
        g_hat = g_hat * ctx.slot_mask[:, :, None].to(g_hat.dtype)
        adjacency = {m: self._from_slots(g_hat[:, :, k], ctx) for k, m in enumerate(self.modalities)}
        return Recovery(features, adjacency, extras={self.graph_key: g_hat}), x_hat, g_hat

    def recover(self, batch: ConversationBatch, observed: Tensor) -> Recovery:
        ctx = self._context(batch, observed)
        recovery, _, _ = self._refine(batch, observed, ctx, self._sample(ctx))
        return recovery

    # ------------------------------------------------------------------------------ training
    def training_step(self, batch: ConversationBatch, observed: Tensor) -> tuple[Recovery, dict[str, Tensor]]:
        ctx = self._context(batch, observed)
        clean = {"features": torch.cat(list(batch.features.values()), dim=-1) * ctx.missing_entries}
        if self.graph_key is not None:
            clean[self.graph_key] = self._true_graph(batch, ctx)
        masks = self._masks(ctx)
        score_fn = lambda state, t, c: self._score(state, t, ctx)  # noqa: E731
        losses = sd.dsm_loss(score_fn, self.sde, clean, mask=masks,
                             weighting="data" if self.prediction == "data" else "sigma2")

        if self.rec_estimate == "tweedie":
            B = clean["features"].shape[0]
            # Times from denoise_time up: the head then sees estimates like those inference hands it.
            low = min(max(self.sde.eps, self.denoise_time), self.rec_t_max)
            t = low + (self.rec_t_max - low) * torch.rand(B, device=clean["features"].device)
            noisy = {k: sd.noising.perturb(v, t, self.sde, masks[k])[0] for k, v in clean.items()}
            # Detached: the score networks learn only from score matching, so what the sampler integrates
            # at inference stays a score; L_rec and the task loss train the head and the fusion. (No
            # graph is recorded for it: with N(N+1)/2 slots that graph would double the step's memory.)
            with torch.no_grad():
                estimate = self._tweedie(noisy, t, ctx)
        else:
            with torch.no_grad():
                estimate = self._sample(ctx)
        recovery, x_hat, g_hat = self._refine(batch, observed, ctx, estimate)

        missing = ctx.missing_entries.to(x_hat.dtype)
        rec = ((x_hat - clean["features"]) ** 2 * missing).sum() / missing.sum().clamp_min(1.0)
        terms = {"score_features": losses["features"]}
        if self.graph_key is not None:
            slots = ctx.slot_mask[:, :, None].to(g_hat.dtype).expand_as(g_hat)
            rec = rec + ((g_hat - clean[self.graph_key]) ** 2 * slots).sum() / slots.sum().clamp_min(1.0)
            terms[f"score_{self.graph_key}"] = losses[self.graph_key]
        return recovery, {"rec": rec, **terms}

    def training_losses(self, batch: ConversationBatch, observed: Tensor) -> dict[str, Tensor]:
        return self.training_step(batch, observed)[1]

    # ------------------------------------------------------------------------------ memory
    def estimate_memory(self, max_utterances: int, batch_size: int) -> int:
        """Peak bytes of one training step (float32), from what it keeps for the backward pass.

        Per conversation: ``~(24 + 3M) N²`` numbers of dense ``(N, N)`` matrices (structure basis and
        graphs, similarity graphs, the feature network's messages) and ``~(8 L + 6) H`` per utterance
        for the feature network; per graph slot and modality (``N`` spectra or ``N(N+1)/2`` entries):
        ``(12 L + 6) H + 2 (2M + 3) + 16`` for the edge network, twice that for attention plus three
        chunks of attention scores (:data:`ATTENTION_BUDGET`). The edge network keeps only ``(L + 2) H``
        per slot for the backward pass; the rest is the growth of the process's resident memory that
        glibc's allocator does not hand back, measured at 100 utterances, batch 8
        (``docs/long_conversations.md``).
        """
        B, N, M = int(batch_size), int(max_utterances), len(self.modalities)
        H, L = self.hidden_dim, self.num_layers
        numbers = B * ((24 + 3 * M) * N * N + (8 * L + 6) * H * N + 4 * self.total_dim * N)
        if self.graph_key is not None:
            slots = B * M * (N * (N + 1) // 2 if self.graph == "adjacency" else N)
            per_slot = 2 * (2 * M + 3) + 16
            if self.slot_network == "edge":
                numbers += slots * ((12 * L + 6) * H + per_slot)
            else:
                numbers += slots * ((24 * L + 12) * H + per_slot) + 3 * ATTENTION_BUDGET
        return 4 * numbers


@register_recoverer("gsdnet_adjacency")
class GSDNetAdjacency(GSDNet):
    """Ablation: GSDNet diffusing the similarity graphs' entries instead of their spectra.

    The approach GSDNet argues against: ``N(N+1)/2`` noisy slots per modality instead of ``N``, with
    the same feature network, widths, sampler and training budget as :class:`GSDNet`. Its slot network
    defaults to ``slot_network="edge"`` (linear in slots, so ``O(N²)`` per conversation): attention over
    the slots (``slot_network="attention"``, the network of this ablation before long conversations
    were supported, still selectable) costs ``O(N⁴)`` time, minutes per epoch at IEMOCAP's 110
    utterances (``docs/long_conversations.md``).
    """

    SETTING_DEFAULTS = {"graph": "adjacency", "slot_network": "edge"}

    def __init__(self, modalities, feature_dims, **kwargs) -> None:
        kwargs = {**self.SETTING_DEFAULTS, **kwargs}
        if kwargs["graph"] != "adjacency":
            raise ValueError("gsdnet_adjacency fixes graph='adjacency'; use 'gsdnet' for other channels")
        super().__init__(modalities, feature_dims, **kwargs)


@register_recoverer("gsdnet_nograph")
class GSDNetNoGraph(GSDNet):
    """Ablation: GSDNet with feature diffusion only (no graph channel; fusion on the unweighted graph).

    The feature score network still passes messages on the conversation's structure graph.
    """

    SETTING_DEFAULTS = {"graph": "none"}

    def __init__(self, modalities, feature_dims, **kwargs) -> None:
        kwargs = {**self.SETTING_DEFAULTS, **kwargs}
        if kwargs["graph"] != "none":
            raise ValueError("gsdnet_nograph fixes graph='none'; use 'gsdnet' for other channels")
        super().__init__(modalities, feature_dims, **kwargs)


def _canonical(eigenvalues: Tensor, eigenvectors: Tensor, sizes: Tensor) -> Tensor:
    """``eigenvectors`` made unique inside repeated eigenspaces by the temporal path over the utterances
    (:func:`spectraldiff.eigh.canonical_eigenvectors`)."""
    tie = sd.eigh.path_tie_breaker(sizes, eigenvectors.shape[-1], dtype=eigenvectors.dtype,
                                   device=eigenvectors.device)
    return sd.eigh.canonical_eigenvectors(eigenvalues, eigenvectors, sizes, tie)


def _speaker_weights(speakers: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Two ``(B, N, N)`` weightings of each utterance's same-speaker *other* utterances: uniform, and
    ``TURN_DECAY^|Δturn|`` by how many of the speaker's turns lie between."""
    real = mask[:, :, None] & mask[:, None, :]
    eye = torch.eye(mask.shape[1], dtype=torch.bool, device=mask.device)
    same = (speakers[:, :, None] == speakers[:, None, :]) & real & ~eye
    one_hot = torch.nn.functional.one_hot(speakers.clamp_min(0), int(speakers.max()) + 1) * mask[..., None]
    turn = (one_hot.cumsum(dim=1) * one_hot).sum(-1).to(torch.float32)  # (B, N): k-th turn of its speaker
    decay = TURN_DECAY ** (turn[:, :, None] - turn[:, None, :]).abs()
    return same.to(turn.dtype), same.to(turn.dtype) * decay


def _weighted_mean(weights: Tensor, values: Tensor, entry_flags: Tensor, flags: Tensor) -> list[Tensor]:
    """``[mean of the observed values (B, N, D), observed share per modality (B, N, M)]`` under
    ``weights (B, N, N)``; an entry no weighted utterance observed is 0."""
    weights = weights.to(values.dtype)
    seen = weights @ entry_flags
    mean = (weights @ (values * entry_flags)) / seen.clamp_min(1e-6)
    share = (weights @ flags) / weights.sum(-1, keepdim=True).clamp_min(1e-6)
    return [mean, share]
