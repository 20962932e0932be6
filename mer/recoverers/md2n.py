"""MD2N: multi-stage duplex diffusion between an available and a missing modality.

A discrete VP diffusion (``spectraldiff.VPSDE``, ``T`` steps) whose forward process starts at the
missing modality and, during a modality-transfer stage ``(t1, t2]``, drifts to the *available* one
``a`` (a learned projection of the utterance's observed modalities), so from ``t2`` on its marginal is
the VP marginal of ``a``:

``q(x_i | x_0, y_0) = N(√ᾱ_i x_0 + Φ_i (y_0 − x_0), (1 − ᾱ_i) I)``,  ``Φ_i = √ᾱ_i w_i``,
``w_i = clip((i − t1) / (t2 − t1), 0, 1)`` (:class:`TransferSchedule`).

Reversed from the VP-noised ``a`` at ``t2``, the chain ends at the missing modality ``(B, N, d_m)``; a
decoder refines it. Contract: :class:`~mer.recoverers.base.Recoverer`; ``training_step`` returns
``{"diffusion", "rec", "align"}``.

The derivation of ``Φ``, how training and sampling use it, and what is faithful to the paper and
what deviates: ``docs/md2n.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

import spectraldiff as sd
from mer.data.collate import ConversationBatch
from mer.graph import GraphConfig
from mer.recoverers.base import (
    Recoverer,
    Recovery,
    merge_observed,
    observed_only,
    register_recoverer,
)

__all__ = ["MD2N", "TransferSchedule", "OBJECTIVES", "TIME_RANGES"]


def _bcast(coefficient: Tensor, x: Tensor) -> Tensor:
    """A float64 ``(B,)`` coefficient as ``(B, 1, …)`` in ``x``'s dtype."""
    return sd.sde.batch_broadcast(coefficient.to(x.dtype), x)


class TransferSchedule(nn.Module):
    r"""Discrete VP schedule with a modality-transfer stage ``(t1, t2]``.

    The chain starts at ``x_0`` (``i = 0``) and ends at ``y_0``:

    ``q(x_i | x_0, y_0) = N(√ᾱ_i x_0 + Φ_i (y_0 − x_0), (1 − ᾱ_i) I)``,
    ``Φ_i = √ᾱ_i w_i``, ``w_i = clip((i − t1)/(t2 − t1), 0, 1)`` (``w ≡ 0`` without transfer),

    where ``ᾱ_i = mean(i/T)²`` of ``sde``. So for ``i ≤ t1`` it is the VP marginal of ``x_0``, for
    ``i ≥ t2`` exactly the VP marginal of ``y_0``, and its variance is the VP variance throughout.

    Parameters
    ----------
    sde : spectraldiff.VPSDE
    num_steps : int
        ``T``.
    t1, t2 : int
        Stage boundaries, ``0 < t1 < t2 < T``.
    transfer : bool
        ``False``: ``Φ ≡ 0``, the plain VP chain of ``x_0``.

    Step indices ``i`` are int64 ``(B,)``; states ``(B, …)``; coefficients are kept in float64.

    >>> s = TransferSchedule(sd.VPSDE(), 1000, 200, 800)
    >>> float(s.phi[800] - s.sqrt_alpha_bar[800]), float(s.phi[200])
    (0.0, 0.0)
    """

    def __init__(self, sde: sd.VPSDE, num_steps: int, t1: int, t2: int, transfer: bool = True) -> None:
        super().__init__()
        self.num_steps, self.t1, self.t2, self.transfer = int(num_steps), int(t1), int(t2), bool(transfer)
        i = torch.arange(self.num_steps + 1, dtype=torch.float64)
        sqrt_ab, _ = sde.marginal_prob(torch.ones_like(i), i / self.num_steps)
        alpha_bar = sqrt_ab**2
        w = ((i - t1) / (t2 - t1)).clamp(0.0, 1.0) if transfer else torch.zeros_like(i)
        self.register_buffer("alpha_bar", alpha_bar, persistent=False)
        self.register_buffer("sqrt_alpha_bar", sqrt_ab, persistent=False)
        self.register_buffer("weight", w, persistent=False)
        self.register_buffer("phi", sqrt_ab * w, persistent=False)

    def marginal(self, x0: Tensor, y0: Tensor, i: Tensor) -> tuple[Tensor, Tensor]:
        """Mean (shape of ``x0``) and std ``(B,)`` of ``q(x_i | x_0, y_0)``."""
        mean = _bcast(self.sqrt_alpha_bar[i], x0) * x0 + _bcast(self.phi[i], x0) * (y0 - x0)
        return mean, (1.0 - self.alpha_bar[i]).sqrt()

    def step(self, i: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One forward step ``x_i = a x_{i−1} + k (y_0 − x_0) + √b z`` for ``i ≥ 1``.

        Returns ``a = √α_i``, the transfer shift ``k = Φ_i − √α_i Φ_{i−1}`` and ``b = β_i = 1 − α_i``,
        each ``(B,)``. ``k`` is zero outside ``(t1, t2]``.
        """
        alpha = self.alpha_bar[i] / self.alpha_bar[i - 1]
        # √ᾱ_i (w_i − w_{i−1}) equals Φ_i − √α_i Φ_{i−1} and is exactly zero where w is constant.
        shift = self.sqrt_alpha_bar[i] * (self.weight[i] - self.weight[i - 1])
        return alpha.sqrt(), shift, 1.0 - alpha

    def forward_step(self, x_prev: Tensor, x0: Tensor, y0: Tensor, i: Tensor, noise: Tensor) -> Tensor:
        """``x_i`` from ``x_{i−1}`` with standard normal ``noise`` (shape of ``x_prev``)."""
        a, k, b = self.step(i)
        return _bcast(a, x_prev) * x_prev + _bcast(k, x_prev) * (y0 - x0) + _bcast(b.sqrt(), x_prev) * noise

    def posterior(self, x_i: Tensor, x0: Tensor, y0: Tensor, i: Tensor, j: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and std ``(B,)`` of ``q(x_j | x_i, x_0, y_0)`` for ``0 ≤ j < i`` (any stride).

        ``mean = μ_j + √(ᾱ_i/ᾱ_j) (1 − ᾱ_j)/(1 − ᾱ_i) (x_i − μ_i)``,
        ``var = (1 − ᾱ_j)(1 − ᾱ_i/ᾱ_j)/(1 − ᾱ_i)``, with ``μ`` the marginal means; ``j = 0`` gives
        ``x_0`` exactly.
        """
        ab_i, ab_j = self.alpha_bar[i], self.alpha_bar[j]
        mu_i, _ = self.marginal(x0, y0, i)
        mu_j, _ = self.marginal(x0, y0, j)
        ratio = ab_i / ab_j
        gain = ratio.sqrt() * (1.0 - ab_j) / (1.0 - ab_i)
        var = (1.0 - ab_j) * (1.0 - ratio) / (1.0 - ab_i)
        return mu_j + _bcast(gain, x_i) * (x_i - mu_i), var.clamp_min(0.0).sqrt()

    def extra_repr(self) -> str:
        return f"T={self.num_steps}, t1={self.t1}, t2={self.t2}, transfer={self.transfer}"


class _Denoiser(nn.Module):
    """``x̂_0`` of one target modality: ``a + Out(h)`` with
    ``h = In([x_i, a, c]) + τ(i/T)``, then ``h ← h + Conv3(SiLU(h))`` over utterances (masked).

    Shapes: ``x``, ``source`` ``(B, N, d)``, ``t`` ``(B,)`` in ``[0, 1]``, ``condition`` ``(B, N, C)``,
    ``mask`` ``(B, N)`` bool → ``(B, N, d)``, zero on padding.
    """

    def __init__(self, dim: int, condition_dim: int, hidden: int, num_layers: int) -> None:
        super().__init__()
        self.inp = nn.Linear(2 * dim + condition_dim, hidden)
        self.time = sd.score_networks.TimeEmbedding(hidden)
        self.convs = nn.ModuleList(nn.Conv1d(hidden, hidden, 3, padding=1) for _ in range(num_layers))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, t: Tensor, source: Tensor, condition: Tensor, mask: Tensor) -> Tensor:
        m = mask.to(x.dtype)[:, :, None]
        h = (self.inp(torch.cat([x, source, condition], dim=-1)) + self.time(t)[:, None, :]) * m
        for conv in self.convs:
            # Masked before the convolution, so padding never reaches a real neighbour.
            h = h + conv(torch.nn.functional.silu(h).transpose(1, 2)).transpose(1, 2) * m
        return (source + self.out(h)) * m


@dataclass
class _Target:
    """What the chain of one target modality ``m`` conditions on (observed data only)."""

    source: Tensor  # (B, N, d_m) the available modality a, zero where no other modality is observed
    condition: Tensor  # (B, N, d_m + 2) observed entries of m (objective "dropped"), its availability, has-source flag
    mask: Tensor  # (B, N) bool real utterances
    has_source: Tensor  # (B, N) bool: another modality is observed at the utterance


#: Values of MD2N's ``objective`` setting: which entries train the denoisers and the decoder.
OBJECTIVES = ("paper", "dropped")
#: Values of MD2N's ``time_range`` setting: which steps train the denoisers and where sampling ends.
TIME_RANGES = ("paper", "full")


def _entry_mse(batch: ConversationBatch, estimate: dict[str, Tensor], weights: dict[str, Tensor]) -> Tensor:
    """Mean over the weighted (utterance, modality) entries of ``‖x̂ − x‖² / d_m``; ``weights`` ``{m: (B, N)}``
    bool. 0 (and no gradient) when no entry is weighted."""
    total = batch.features[batch.modalities[0]].new_zeros(())
    count = total.new_zeros(())
    for m, x_hat in estimate.items():
        w = weights[m].to(x_hat.dtype)
        total = total + ((x_hat - batch.features[m]).pow(2).mean(-1) * w).sum()
        count = count + w.sum()
    return total / count.clamp_min(1.0)


@register_recoverer("md2n")
class MD2N(Recoverer):
    """Multi-stage duplex diffusion recoverer (``docs/md2n.md``).

    Parameters
    ----------
    modalities, feature_dims, graph_config
        See :class:`~mer.recoverers.base.Recoverer`.
    transfer : bool
        ``True`` (default): the three-stage process with the transfer stage; ``False``: one-stage VP
        diffusion of the missing modality conditioned on the available one.
    objective : {"paper", "dropped"}
        Which entries train the denoisers (``L_diff``) and the decoder (``L_rec``). ``"paper"``
        (default, Eq. 14 and 16): every real entry of every modality that has an observed partner
        modality at its utterance, observed or dropped, so each modality is generated from the others
        (both directions) and complete training data trains; the denoiser then sees no entry of its
        own modality (they would show it what it must generate). ``"dropped"``: only the entries the
        protocol dropped, with the observed entries of the target modality elsewhere in the
        conversation as extra condition (nothing trains on complete data).
    time_range : {"paper", "full"}
        ``"paper"`` (default, Eq. 15): training steps ``i ~ U{t1 + 1 … T}`` and sampling from the
        start down to ``t1``, then ``x̂_0`` from ``x_{t1}`` in one step (the paper's refinement stage).
        ``"full"``: ``i ~ U{1 … start}`` and strided sampling down to 0.
    num_steps, t1, t2 : int
        ``T = 1000``, ``t1 = 200``, ``t2 = 800``; ``0 < t1 < t2 < T``.
    sampling_steps : int
        Denoiser calls of the reverse chain at inference (default 10), evenly strided from ``t2``
        (transfer) or ``T`` down to ``t1`` (``time_range="paper"``) or to 0 (``"full"``).
    train_sampling_steps : int, optional
        Denoiser calls of the training-time sample fed to the decoder and the task loss; default
        (``None``): ``sampling_steps``, so the decoder learns on samples like those it refines at test.
    hidden_dim, num_layers : int
        Width of the projections, denoisers and decoders; convolution layers per denoiser.
    beta_min, beta_max : float
        VP schedule (``spectraldiff.VPSDE``).
    encoders : bool
        ``False``: Table 4's "without ``E_K``": no per-modality encoders; the available modality is
        ``P_m`` of the mean of the observed partners' raw features, zero-padded to a common width.
    decoder : bool
        ``False``: Table 4's "without ``D_K``": no decoders and no ``L_rec``; the sample is the
        recovery.

    Shapes: ``batch.features[m]`` ``(B, N, d_m)``, ``observed`` ``(B, N, M)`` → :class:`Recovery`
    with ``(B, N, d_m)`` features; ``extras["sample_<m>"]`` and ``extras["source_<m>"]`` ``(B, N, d_m)``
    for each recovered modality. ``training_step`` returns ``{"diffusion", "rec", "align"}`` (scalars;
    ``"rec"`` only with the decoder).
    """

    stochastic = True  # the reverse diffusion starts from noise

    def __init__(
        self,
        modalities: Sequence[str],
        feature_dims: Mapping[str, int],
        *,
        graph_config: GraphConfig | None = None,
        transfer: bool = True,
        objective: str = "paper",
        time_range: str = "paper",
        num_steps: int = 1000,
        t1: int = 200,
        t2: int = 800,
        sampling_steps: int = 10,
        train_sampling_steps: int | None = None,
        hidden_dim: int = 64,
        num_layers: int = 2,
        beta_min: float = 0.1,
        beta_max: float = 20.0,
        encoders: bool = True,
        decoder: bool = True,
    ) -> None:
        super().__init__(modalities, feature_dims, graph_config=graph_config)
        if not isinstance(transfer, bool):
            raise ValueError(f"transfer must be True or False, got {transfer!r}")
        for name, value in (("encoders", encoders), ("decoder", decoder)):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {list(OBJECTIVES)}, got {objective!r}")
        if time_range not in TIME_RANGES:
            raise ValueError(f"time_range must be one of {list(TIME_RANGES)}, got {time_range!r}")
        if train_sampling_steps is None:
            train_sampling_steps = sampling_steps
        ints = {"num_steps": num_steps, "t1": t1, "t2": t2, "sampling_steps": sampling_steps,
                "train_sampling_steps": train_sampling_steps, "hidden_dim": hidden_dim,
                "num_layers": num_layers}
        bad = {k: v for k, v in ints.items() if isinstance(v, bool) or not isinstance(v, int)}
        if bad:
            raise ValueError(f"these settings must be integers: {bad}")
        if not 0 < t1 < t2 < num_steps:
            raise ValueError(f"need 0 < t1 < t2 < num_steps, got t1={t1}, t2={t2}, num_steps={num_steps}")
        start = t2 if transfer else num_steps
        most = start - t1 + 1 if time_range == "paper" else start
        for name in ("sampling_steps", "train_sampling_steps"):
            if not 1 <= ints[name] <= most:
                raise ValueError(f"{name} must lie in [1, {most}] (the reverse chain runs from step "
                                 f"{'t2' if transfer else 'num_steps'} = {start} down to "
                                 f"{'t1 = ' + str(t1) if time_range == 'paper' else '0'}), got {ints[name]}")
        if hidden_dim < 1 or num_layers < 1:
            raise ValueError(f"hidden_dim and num_layers must be >= 1, got {hidden_dim}, {num_layers}")
        if not 0.0 < beta_min < beta_max:
            raise ValueError(f"need 0 < beta_min < beta_max, got {beta_min}, {beta_max}")
        self.transfer, self.objective, self.time_range = transfer, objective, time_range
        self.use_encoders, self.use_decoder = encoders, decoder
        self.sampling_steps, self.train_sampling_steps = sampling_steps, train_sampling_steps
        self.schedule = TransferSchedule(sd.VPSDE(beta_min, beta_max), num_steps, t1, t2, transfer)
        widest = max(self.feature_dims.values())
        self.encode = nn.ModuleDict(
            {k: nn.Linear(d, hidden_dim) for k, d in self.feature_dims.items()} if encoders else {})
        code_dim = hidden_dim if encoders else widest
        self.project = nn.ModuleDict({m: nn.Linear(code_dim, d) for m, d in self.feature_dims.items()})
        self.denoisers = nn.ModuleDict({
            m: _Denoiser(d, d + 2, hidden_dim, num_layers) for m, d in self.feature_dims.items()
        })
        self.decoders = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(2 * d, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, d))
            for m, d in self.feature_dims.items()
        } if decoder else {})

    # ------------------------------------------------------------------------------ pieces
    @property
    def start_step(self) -> int:
        """First step of the reverse chain: ``t2`` with transfer, ``T`` without."""
        return self.schedule.t2 if self.transfer else self.schedule.num_steps

    @property
    def lowest_step(self) -> int:
        """Smallest step a denoiser is trained at and evaluated at: ``t1 + 1`` (``time_range="paper"``;
        sampling evaluates it at ``t1`` too, the step it predicts ``x_0`` from) or 1."""
        return self.schedule.t1 + 1 if self.time_range == "paper" else 1

    def training_steps(self, batch_size: int, device=None) -> Tensor:
        """Training step indices ``(batch_size,)`` int64: ``U{t1 + 1 … T}`` (``time_range="paper"``,
        Eq. 15) or ``U{1 … start_step}`` (``"full"``)."""
        high = self.schedule.num_steps if self.time_range == "paper" else self.start_step
        return torch.randint(self.lowest_step, high + 1, (batch_size,), device=device)

    def _codes(self, seen: dict[str, Tensor]) -> Tensor:
        """``(B, N, M, h)`` per-modality codes ``E_k(x_k)``, or (without encoders) the raw features
        zero-padded to the widest modality."""
        if self.use_encoders:
            return torch.stack([self.encode[k](seen[k]) for k in self.modalities], dim=2)
        widest = max(self.feature_dims.values())
        return torch.stack([nn.functional.pad(seen[k], (0, widest - seen[k].shape[-1]))
                            for k in self.modalities], dim=2)

    def _contexts(self, batch: ConversationBatch, observed: Tensor, targets: list[str]) -> dict[str, _Target]:
        """Per target ``m``: the available modality ``a = P_m(mean of E_k(x_k), k ≠ m observed)``."""
        seen = observed_only(batch, observed)
        flags = batch.observed_entries(observed).to(seen[self.modalities[0]].dtype)
        codes = self._codes(seen) * flags[..., None]  # (B, N, M, h)
        own_context = self.objective == "dropped"
        out = {}
        for m in targets:
            k = self.modality_index(m)
            others = torch.ones(len(self.modalities), dtype=flags.dtype, device=flags.device)
            others[k] = 0.0
            count = (flags * others).sum(-1, keepdim=True)  # (B, N, 1)
            mean = (codes * others[:, None]).sum(2) / count.clamp_min(1.0)
            has_source = (count > 0).to(count.dtype)
            source = self.project[m](mean) * has_source
            if own_context:
                own = torch.cat([seen[m], flags[:, :, k:k + 1]], dim=-1)
            else:
                own = seen[m].new_zeros(*seen[m].shape[:-1], seen[m].shape[-1] + 1)
            condition = torch.cat([own, has_source], dim=-1)
            out[m] = _Target(source, condition, batch.utterance_mask,
                             has_source[..., 0].bool() & batch.utterance_mask)
        return out

    def _denoise(self, m: str, x: Tensor, i: Tensor, ctx: _Target) -> Tensor:
        return self.denoisers[m](x, i.to(x.dtype) / self.schedule.num_steps, ctx.source, ctx.condition,
                                 ctx.mask)

    def grid(self, steps: int) -> Tensor:
        """The int64 steps of the reverse chain, ``(steps + 1,)``: ``steps`` evenly strided denoiser
        steps from :attr:`start_step` down to ``t1`` (``time_range="paper"``) or to 0 (``"full"``),
        then 0."""
        end = self.schedule.t1 if self.time_range == "paper" else 0
        if self.time_range == "paper":
            calls = torch.linspace(self.start_step, end, steps, dtype=torch.float64).round().long()
            return torch.cat([calls, calls.new_zeros(1)])
        return torch.linspace(self.start_step, end, steps + 1, dtype=torch.float64).round().long()

    @torch.no_grad()
    def sample(self, contexts: dict[str, _Target], steps: int) -> dict[str, Tensor]:
        """Ancestral samples ``{m: (B, N, d_m)}`` of the reverse chain over :meth:`grid`.

        Starts from the exact marginal ``N(√ᾱ_{t2} a, (1 − ᾱ_{t2}) I)`` (transfer) or ``N(0, I)`` (no
        transfer) and steps with ``q(x_j | x_i, x̂_0, a)``; the last step (``j = 0``) returns ``x̂_0``.
        """
        sched, grid = self.schedule, self.grid(steps).to(self.schedule.alpha_bar.device)
        out = {}
        for m, ctx in contexts.items():
            a = ctx.source
            B, mask = a.shape[0], ctx.mask[:, :, None].to(a.dtype)
            start = grid[:1].expand(B)
            if self.transfer:
                mean, std = sched.marginal(torch.zeros_like(a), a, start)
                x = (mean + _bcast(std, a) * torch.randn_like(a)) * mask
            else:
                x = torch.randn_like(a) * mask
            for i, j in zip(grid[:-1], grid[1:]):
                i, j = i.expand(B), j.expand(B)
                x0_hat = self._denoise(m, x, i, ctx)
                mean, std = sched.posterior(x, x0_hat, a, i, j)
                x = (mean + _bcast(std, a) * torch.randn_like(a)) * mask
            out[m] = x
        return out

    def _decode(self, samples: dict[str, Tensor], contexts: dict[str, _Target]) -> dict[str, Tensor]:
        """The decoder: ``x̂ = s + D_m([s, a])`` (the sample itself without decoders)."""
        if not self.use_decoder:
            return dict(samples)
        return {m: s + self.decoders[m](torch.cat([s, contexts[m].source], dim=-1))
                for m, s in samples.items()}

    def loss_entries(self, batch: ConversationBatch, observed: Tensor,
                     contexts: dict[str, _Target]) -> dict[str, Tensor]:
        """``{m: (B, N)}`` bool: the entries ``L_diff``, ``L_rec`` and ``L_align`` average over — the
        dropped ones (``objective="dropped"``) or every real entry with an observed partner
        (``"paper"``)."""
        if self.objective == "paper":
            return {m: ctx.has_source for m, ctx in contexts.items()}
        missing = batch.missing_entries(observed)
        return {m: missing[:, :, self.modality_index(m)] for m in contexts}

    def diffusion_loss(self, batch: ConversationBatch, observed: Tensor,
                       contexts: dict[str, _Target], entries: dict[str, Tensor] | None = None) -> Tensor:
        """``mean ‖x̂_0(x_i, i | a) − x_0‖² / d_m`` over :meth:`loss_entries`, where
        ``x_i ~ q(x_i | x_0 = x^m, y_0 = a)`` with one ``i`` per conversation from
        :meth:`training_steps` (reads the ground truth of dropped entries)."""
        entries = self.loss_entries(batch, observed, contexts) if entries is None else entries
        estimates = {}
        for m, ctx in contexts.items():
            x0 = batch.features[m]
            i = self.training_steps(x0.shape[0], x0.device)
            # The process is defined given a; the projection learns from L_align, L_rec and the task.
            mean, std = self.schedule.marginal(x0, ctx.source.detach(), i)
            x_i = (mean + _bcast(std, x0) * torch.randn_like(x0)) * ctx.mask[:, :, None].to(x0.dtype)
            estimates[m] = self._denoise(m, x_i, i, ctx)
        return _entry_mse(batch, estimates, entries)

    # ------------------------------------------------------------------------ the interface
    def recover(self, batch: ConversationBatch, observed: Tensor) -> Recovery:
        targets = self.modalities_to_recover(batch, observed)
        if not targets:
            return Recovery(merge_observed(batch, observed, batch.features))
        contexts = self._contexts(batch, observed, targets)
        steps = self.train_sampling_steps if self.training else self.sampling_steps
        samples = self.sample(contexts, steps)
        extras = {f"sample_{m}": s for m, s in samples.items()}
        extras.update({f"source_{m}": c.source for m, c in contexts.items()})
        return Recovery(merge_observed(batch, observed, self._decode(samples, contexts)), extras=extras)

    def training_step(self, batch: ConversationBatch, observed: Tensor):
        # "paper": every modality is a target (duplex), whether or not the protocol dropped any of it.
        targets = (list(self.modalities) if self.objective == "paper"
                   else self.modalities_to_recover(batch, observed))
        zero = batch.features[self.modalities[0]].new_zeros(())
        names = ("diffusion", "rec", "align") if self.use_decoder else ("diffusion", "align")
        if not targets:
            return Recovery(merge_observed(batch, observed, batch.features)), {k: zero for k in names}
        contexts = self._contexts(batch, observed, targets)
        entries = self.loss_entries(batch, observed, contexts)
        refined = self._decode(self.sample(contexts, self.train_sampling_steps), contexts)
        losses = {"diffusion": self.diffusion_loss(batch, observed, contexts, entries)}
        if self.use_decoder:
            losses["rec"] = _entry_mse(batch, refined, entries)
        losses["align"] = _entry_mse(batch, {m: c.source for m, c in contexts.items()}, entries)
        return Recovery(merge_observed(batch, observed, refined)), losses

    def training_losses(self, batch: ConversationBatch, observed: Tensor) -> dict[str, Tensor]:
        return self.training_step(batch, observed)[1]
