"""GSDNet: missing-modality recovery by diffusion of features and of graph spectra.

Per conversation, the **structure graph** (temporal window + speaker edges + self loops, from
:func:`mer.graph.structure_adjacency`) is decomposed once, ``A = U diag(λ_s) Uᵀ``, and ``U`` is kept
fixed. Each modality's cosine-similarity graph ``S_m`` is projected on that basis,
``λ_m = diag(Uᵀ S_m U) / n`` (divided by the conversation size so that it lies in ``[0, 1]``), and
``A_m = U diag(n λ_m) Uᵀ`` is that modality's graph in the structure basis. Two conditional score
models recover what is missing, both with the VP SDE of :mod:`spectraldiff`:

* ``s_θ(X(t), X_obs, t)`` — over the concatenated standardised features ``X (B, N, Σ d_m)``: only the
  missing entries are diffused; the observed entries and the availability flags are the condition,
  and the network passes messages on the structure graph
  (:class:`spectraldiff.score_networks.FeatureScoreNet`).
* ``s_φ(λ(t), λ_obs, t)`` — over the per-modality spectra ``λ (B, N, M)`` of the *complete* similarity
  graphs, conditioned on the spectra of the graphs built from the observed utterances only, on the
  structure eigenvalues and on the modality
  (:class:`spectraldiff.score_networks.EigenvalueScoreNet`, one set of ``N`` slots per modality).

A reconstruction head ``D`` refines the sampled features and spectra (residual MLPs), and fusion runs on
the graphs ``A_m`` rebuilt from the recovered spectra (:attr:`Recovery.adjacency`).

Loss: ``L_total = β (L_rec + L_s^θ + L_s^φ) + L_pred`` (the trainer adds ``β · Σ`` of the terms returned
here to the task loss), with denoising score matching ``L_s`` (``‖σ_t s + z‖²``) and
``L_rec = mean‖X̂ − X‖²`` over missing entries ``+ mean‖λ̂ − λ‖²``.

**Training-time estimate.** Running the reverse process for every training batch would multiply the
cost of a step by the number of sampling steps. By default (``rec_estimate="tweedie"``) training
builds ``X̂`` and ``λ̂`` for ``L_rec`` and for the task loss from the one-step denoiser of the same
noisy sample the score loss uses, ``x̂_0 = (x_t + std(t)² s_θ(x_t)) / mean(t)`` (Tweedie), at a time
``t ~ U(denoise_time, rec_t_max)``; ``rec_estimate="sampler"`` runs the configured reverse sampler
instead.
Either estimate is detached: the score networks learn from score matching alone (a task-loss gradient
through the one-step denoiser would bend them away from a score, and the sampler would then drift),
while ``L_rec`` and the task loss train the head ``D`` and the fusion. Inference runs the reverse sampler
(``sampler``: ``"ode"`` — the probability-flow ODE with Heun steps, default 10 steps — or
``"euler_maruyama"`` / ``"reverse_diffusion"`` predictor–corrector) from ``t = 1`` down to
``denoise_time`` and applies the same one-step denoiser there, so the head sees at inference what it
was trained on.

**Why not a plain sample.** A sample from the posterior ``p(x_miss | x_obs)`` has twice the posterior
variance as its squared error, the posterior mean only once; where the observed modalities explain
little of the missing one, a sample is worse than mean fill in MSE and feeds the classifier noise.
Stopping at ``denoise_time = 0.5`` and denoising returns ``E[x_0 | x_t]``, close to the posterior mean
(``denoise_time → 0`` recovers a sample). docs/mer_training.md reports the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

import spectraldiff as sd
from mer.data.collate import ConversationBatch
from mer.graph import GraphConfig, similarity_adjacency, structure_adjacency
from mer.recoverers.base import Recoverer, Recovery, merge_observed, observed_only, register_recoverer

__all__ = ["GSDNet"]

SAMPLERS = ("ode", "euler_maruyama", "reverse_diffusion")
REC_ESTIMATES = ("tweedie", "sampler")
GRAPH_CHANNELS = ("spectral", "none")


@dataclass
class _Context:
    """Everything the score networks condition on, computed once per batch from observed data only."""

    observed_x: Tensor  # (B, N, D) standardised features, zero where unobserved
    entry_flags: Tensor  # (B, N, M) float availability
    missing_entries: Tensor  # (B, N, D) bool: real utterance and unobserved modality
    utterance_mask: Tensor  # (B, N) bool
    eigenvectors: Tensor  # (B, N, N) structure basis U
    structure_eigenvalues: Tensor  # (B, N) λ_s
    observed_spectra: Tensor | None  # (B, N, M) λ of the observed-only similarity graphs, / n
    sizes: Tensor  # (B,) conversation lengths
    feature_condition: Tensor  # (B, N, D + M) observed features and availability flags
    spectrum_condition: Tensor | None  # (B·M, N, 2M + 3) per-slot condition of the spectrum network


@register_recoverer("gsdnet")
class GSDNet(Recoverer):
    """Graph spectral diffusion recoverer (see the module docstring for the method).

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
        Steps of that sampler (default 10; the ODE uses 2 network calls per step).
    rec_estimate : {"tweedie", "sampler"}
        How training builds ``X̂, λ̂`` for ``L_rec`` and the task loss (see the module docstring).
    rec_t_max : float
        Largest diffusion time of the Tweedie estimate in training (default 0.5).
    denoise_time : float
        Inference stops the reverse process at this time and returns the one-step (Tweedie) denoised
        estimate ``E[x_0 | x_t]`` there (default 0.5; ``1e-3`` returns a plain sample). A larger time
        returns an estimate closer to the posterior mean (see the module docstring).
    beta_min, beta_max : float
        VP SDE schedule.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        feature_dims: Mapping[str, int],
        *,
        graph_config: GraphConfig | None = None,
        hidden_dim: int = 64,
        num_layers: int = 2,
        sampler: str = "ode",
        sampling_steps: int = 10,
        rec_estimate: str = "tweedie",
        rec_t_max: float = 0.5,
        denoise_time: float = 0.5,
        graph: str = "spectral",
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
        if not 0.0 < denoise_time < 1.0:
            raise ValueError(f"denoise_time must lie in (0, 1), got {denoise_time}")
        self.sampler, self.sampling_steps = sampler, int(sampling_steps)
        self.denoise_time = float(denoise_time)
        self.graph, self.use_spectra = graph, graph == "spectral"
        self.rec_estimate, self.rec_t_max = rec_estimate, float(rec_t_max)
        self.sde = sd.VPSDE(beta_min=beta_min, beta_max=beta_max)

        M = len(self.modalities)
        self.total_dim = sum(self.feature_dims.values())
        # Column slice of each modality in the concatenated feature matrix.
        offsets = torch.tensor([0, *self.feature_dims.values()]).cumsum(0)
        self.slices = {m: slice(int(offsets[k]), int(offsets[k + 1])) for k, m in enumerate(self.modalities)}
        self.register_buffer("entry_modality", torch.repeat_interleave(
            torch.arange(M), torch.tensor(list(self.feature_dims.values()))), persistent=False)

        self.feature_score = sd.FeatureScoreNet(self.total_dim, hidden_dim, num_layers,
                                                condition_dim=self.total_dim + M)
        self.feature_head = nn.Sequential(nn.Linear(2 * self.total_dim + M, hidden_dim), nn.SiLU(),
                                          nn.Linear(hidden_dim, self.total_dim))
        if self.use_spectra:
            # Per slot: λ_obs of this modality, λ_obs of every modality, λ_s, modality one-hot, observed share.
            self.spectrum_score = sd.EigenvalueScoreNet(hidden_dim, num_layers, condition_dim=2 * M + 3)
            self.spectrum_head = nn.Sequential(nn.Linear(2, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, 1))

    # ------------------------------------------------------------------------------ context
    def _context(self, batch: ConversationBatch, observed: Tensor) -> _Context:
        mask = batch.utterance_mask
        visible = observed_only(batch, observed)
        observed_x = torch.cat(list(visible.values()), dim=-1)
        flags = (observed & mask[:, :, None]).to(observed_x.dtype)
        missing = (mask[:, :, None] & ~observed)[:, :, self.entry_modality]
        with torch.no_grad():
            A, sizes = structure_adjacency(batch.speakers, batch.lengths, self.graph_config,
                                           dtype=torch.float64)
            lam_s, U = sd.batched_eigh(A, sizes)
            U, lam_s = U.to(observed_x.dtype), lam_s.to(observed_x.dtype)
            spectra = spectrum_condition = None
            if self.use_spectra:
                spectra = torch.stack([
                    self._project(similarity_adjacency(x, batch.lengths, available=observed[:, :, k])[0],
                                  U, sizes)
                    for k, x in enumerate(visible.values())
                ], dim=-1)
        # The conditions depend only on what is observed: built once, reused by every sampler step.
        feature_condition = torch.cat([observed_x, flags], dim=-1)
        if self.use_spectra:
            spectrum_condition = self._spectrum_condition(spectra, lam_s, flags, sizes)
        return _Context(observed_x, flags, missing, mask, U, lam_s, spectra, sizes, feature_condition,
                        spectrum_condition)

    @staticmethod
    def _project(S: Tensor, U: Tensor, sizes: Tensor) -> Tensor:
        """``diag(Uᵀ S U) / n`` ``(B, N)``: a similarity graph's spectrum in the structure basis."""
        return torch.einsum("bik,bij,bjk->bk", U, S.to(U.dtype), U) / sizes[:, None].to(U.dtype)

    def _true_spectra(self, batch: ConversationBatch, ctx: _Context) -> Tensor:
        """``λ (B, N, M)`` of the complete similarity graphs (training only: reads dropped entries)."""
        with torch.no_grad():
            return torch.stack([
                self._project(similarity_adjacency(x, batch.lengths)[0], ctx.eigenvectors, ctx.sizes)
                for x in batch.features.values()
            ], dim=-1)

    # ------------------------------------------------------------------------------ scores
    @staticmethod
    def _spectrum_condition(spectra: Tensor, structure_eigenvalues: Tensor, flags: Tensor,
                            sizes: Tensor) -> Tensor:
        """``(B·M, N, 2M + 3)`` per-slot condition of the spectrum network: λ_obs of the slot's modality,
        λ_obs of every modality, λ_s, the modality one-hot and the modality's observed share."""
        B, N, M = spectra.shape
        share = flags.sum(dim=1) / sizes[:, None].to(flags.dtype)  # (B, M)
        per_modality = []
        for k in range(M):
            one_hot = torch.zeros(B, N, M, dtype=share.dtype, device=share.device)
            one_hot[:, :, k] = 1.0
            per_modality.append(torch.cat([
                spectra[:, :, k:k + 1], spectra, structure_eigenvalues[..., None],
                one_hot, share[:, None, k:k + 1].expand(B, N, 1)], dim=-1))
        return torch.stack(per_modality, dim=1).reshape(B * M, N, -1)

    def _score(self, state: dict[str, Tensor], t: Tensor, ctx: _Context) -> dict[str, Tensor]:
        """Joint score of ``{"features": (B, N, D), "spectra": (B, N, M)}`` at times ``t (B,)``."""
        eps_x = self.feature_score(state["features"], ctx.structure_eigenvalues, ctx.eigenvectors, t,
                                   ctx.utterance_mask, ctx.feature_condition)
        if not self.use_spectra:
            return {"features": self.sde.score_from_noise(eps_x, t)}
        B, N, M = state["spectra"].shape
        flat = state["spectra"].permute(0, 2, 1).reshape(B * M, N)
        eps_l = self.spectrum_score(flat, t.repeat_interleave(M), ctx.utterance_mask.repeat_interleave(M, 0),
                                    ctx.spectrum_condition)
        eps_l = eps_l.reshape(B, M, N).permute(0, 2, 1)
        return {"features": self.sde.score_from_noise(eps_x, t), "spectra": self.sde.score_from_noise(eps_l, t)}

    def _masks(self, ctx: _Context) -> dict[str, Tensor]:
        masks = {"features": ctx.missing_entries}
        if self.use_spectra:
            masks["spectra"] = ctx.utterance_mask[:, :, None]
        return masks

    # ------------------------------------------------------------------------------ recovery
    def _sample(self, ctx: _Context) -> dict[str, Tensor]:
        """Run the reverse process from the prior down to ``denoise_time``, then denoise in one step."""
        B, N, M = ctx.entry_flags.shape
        gen_shape = {"features": ctx.observed_x.shape}
        if self.use_spectra:
            gen_shape["spectra"] = (B, N, M)
        x_T = {k: self.sde.prior_sampling(s, device=ctx.observed_x.device, dtype=ctx.observed_x.dtype)
               for k, s in gen_shape.items()}
        score_fn = lambda state, t, c: self._score(state, t, ctx)  # noqa: E731
        masks = self._masks(ctx)
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
        scores = self._score(noisy, t, ctx)
        coef, std = self.sde.marginal_prob(torch.ones_like(t), t)
        masks = self._masks(ctx)
        return {k: (v + sd.sde.batch_broadcast(std**2, v) * scores[k]) / sd.sde.batch_broadcast(coef, v)
                * masks[k] for k, v in noisy.items()}

    def _refine(self, batch: ConversationBatch, observed: Tensor, ctx: _Context,
                estimate: dict[str, Tensor]) -> tuple[Recovery, Tensor, Tensor | None]:
        """Reconstruction head ``D`` on a sample or estimate; returns the recovery, ``X̂`` and ``λ̂``."""
        x_hat = estimate["features"] + self.feature_head(
            torch.cat([estimate["features"], ctx.observed_x, ctx.entry_flags], dim=-1))
        x_hat = x_hat * ctx.missing_entries.to(x_hat.dtype)
        filled = {m: x_hat[:, :, self.slices[m]] for m in self.modalities}
        features = merge_observed(batch, observed, filled)
        if not self.use_spectra:
            return Recovery(features), x_hat, None

        lam_hat = estimate["spectra"] + self.spectrum_head(
            torch.stack([estimate["spectra"], ctx.observed_spectra], dim=-1)).squeeze(-1)
        lam_hat = lam_hat * ctx.utterance_mask[:, :, None].to(lam_hat.dtype)
        U, n = ctx.eigenvectors, ctx.sizes[:, None, None].to(lam_hat.dtype)
        adjacency = {m: (U * (n[:, :, 0, None] * lam_hat[:, None, :, k])) @ U.mT
                     for k, m in enumerate(self.modalities)}
        return Recovery(features, adjacency, extras={"spectra": lam_hat}), x_hat, lam_hat

    def recover(self, batch: ConversationBatch, observed: Tensor) -> Recovery:
        ctx = self._context(batch, observed)
        recovery, _, _ = self._refine(batch, observed, ctx, self._sample(ctx))
        return recovery

    # ------------------------------------------------------------------------------ training
    def training_step(self, batch: ConversationBatch, observed: Tensor) -> tuple[Recovery, dict[str, Tensor]]:
        ctx = self._context(batch, observed)
        clean = {"features": torch.cat(list(batch.features.values()), dim=-1) * ctx.missing_entries}
        if self.use_spectra:
            clean["spectra"] = self._true_spectra(batch, ctx)
        masks = self._masks(ctx)
        score_fn = lambda state, t, c: self._score(state, t, ctx)  # noqa: E731
        losses = sd.dsm_loss(score_fn, self.sde, clean, mask=masks)

        if self.rec_estimate == "tweedie":
            B = clean["features"].shape[0]
            # Times from denoise_time up: the head then sees estimates like those inference hands it.
            low = min(max(self.sde.eps, self.denoise_time), self.rec_t_max)
            t = low + (self.rec_t_max - low) * torch.rand(B, device=clean["features"].device)
            noisy = {k: sd.noising.perturb(v, t, self.sde, masks[k])[0] for k, v in clean.items()}
            # Detached: the score networks learn only from score matching, so what the sampler integrates
            # at inference stays a score; L_rec and the task loss train the head and the fusion.
            estimate = {k: v.detach() for k, v in self._tweedie(noisy, t, ctx).items()}
        else:
            with torch.no_grad():
                estimate = self._sample(ctx)
        recovery, x_hat, lam_hat = self._refine(batch, observed, ctx, estimate)

        missing = ctx.missing_entries.to(x_hat.dtype)
        rec = ((x_hat - clean["features"]) ** 2 * missing).sum() / missing.sum().clamp_min(1.0)
        terms = {"score_features": losses["features"]}
        if self.use_spectra:
            slots = ctx.utterance_mask[:, :, None].to(lam_hat.dtype).expand_as(lam_hat)
            rec = rec + ((lam_hat - clean["spectra"]) ** 2 * slots).sum() / slots.sum().clamp_min(1.0)
            terms["score_spectra"] = losses["spectra"]
        return recovery, {"rec": rec, **terms}

    def training_losses(self, batch: ConversationBatch, observed: Tensor) -> dict[str, Tensor]:
        return self.training_step(batch, observed)[1]
