"""RoHyDR: robust hybrid diffusion recovery (Jin et al., 2025, arXiv:2505.17501).

Per modality a DDPM generator (:class:`ConditionalDenoiser`, learned variance, cosine
:class:`~mer.nn.ddpm.DDPMSchedule`) samples the missing features ``(B, N, d_m)`` conditioned on the
observed modalities, a residual unimodal reconstructor refines the sample, and a residual multimodal
reconstructor corrects it against a discriminator on fused representations. Training runs three
stages per step (``stages="multi"``, two of them with internal optimisers whose state travels in the
state dict), two (``"two"``, the paper's Table 5) or one combined loss (``"one"``); each stage updates
its own modules (``optimisation="disjoint"``) or every module upstream of its loss, as the paper's
Algorithm 1 (``"paper"``). ``hddm``, ``ur``, ``disc`` and ``mr`` switch the four components of the
paper's Tables 3–4 off; ``extractor="bilstm"`` adds the paper's Conv + BiLSTM feature extractor.

Contract: :class:`~mer.recoverers.base.Recoverer`; ``training_step`` returns ``{"generator", "fusion",
"classifier"}``.

The method, what is faithful to the paper and every deviation: ``docs/rohydr.md``.
"""

from __future__ import annotations

import io
from contextlib import contextmanager, nullcontext
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mer.data.collate import ConversationBatch
from mer.nn.attention import CrossAttention, SelfAttention
from mer.nn.ddpm import DDPMSchedule, gaussian_nll, normal_kl
from mer.nn.positions import sinusoidal_positions
from mer.nn.sequence_conv import SequenceConv
from mer.nn.task_loss import task_loss
from mer.recoverers.base import (
    Recoverer,
    Recovery,
    dropped_mse,
    merge_observed,
    observed_only,
    register_recoverer,
)

__all__ = ["RoHyDR", "ConditionalDenoiser", "FeatureExtractor", "STAGES", "OPTIMISATIONS", "EXTRACTORS"]

#: Values of RoHyDR's ``stages`` setting.
STAGES = ("multi", "two", "one")
#: Values of RoHyDR's ``optimisation`` setting: which modules a stage's loss updates.
OPTIMISATIONS = ("disjoint", "paper")
#: Values of RoHyDR's ``extractor`` setting: how the generators read the available modalities.
EXTRACTORS = ("linear", "bilstm")

# The trainer's default global-norm clip, so the internal stages step like the common one.
_GRAD_CLIP = 1.0


# ------------------------------------------------------------------------------ the networks
class ConditionalDenoiser(nn.Module):
    """``(x̂_0, v) = f_θ(x_t, t | c)`` for one modality: a transformer over its utterance sequence.

    ``h = W_in x_t + PE(i) + MLP(PE(t))``, then ``layers`` blocks of
    ``h ← h + SelfAttn(LN h)`` (utterances of the conversation), ``h ← h + CrossAttn(h, tokens)``
    (observed entries of the other modalities, token ``(j, m') = W_{m'} c_{j,m'} + PE(j) + e_{m'}``, a
    learned null token always attendable) and ``h ← h + FFN(LN h)``; ``[x̂_0, v'] = W_out LN(h)`` (``W_out``
    starts at zero, so an untrained network predicts the training mean) and ``v = (v' + 1)/2`` the
    variance interpolation.

    Parameters
    ----------
    dim : int
        Target width ``d``.
    condition_dims : dict
        Other modality → its width.
    timesteps : int
        ``T`` (the time embedding's table size).
    width, layers, heads : int

    Shapes: ``x`` ``(B, N, d)``, ``t`` ``(B,)`` long, ``mask`` ``(B, N)`` bool, ``tokens`` from
    :meth:`tokens` → ``x̂_0, v`` each ``(B, N, d)``, zero on padding.

    Example
    -------
    >>> net = ConditionalDenoiser(4, {"t": 3}, timesteps=10)
    >>> m = torch.ones(2, 5, dtype=torch.bool)
    >>> tok = net.tokens({"t": torch.randn(2, 5, 3)}, torch.ones(2, 5, 1, dtype=torch.bool))
    >>> [y.shape for y in net(torch.randn(2, 5, 4), torch.tensor([0, 9]), m, tok)]
    [torch.Size([2, 5, 4]), torch.Size([2, 5, 4])]
    """

    def __init__(self, dim: int, condition_dims: dict[str, int], timesteps: int, width: int = 32,
                 layers: int = 2, heads: int = 2) -> None:
        super().__init__()
        self.condition_names = tuple(condition_dims)
        self.width = width
        self.register_buffer("time_table", sinusoidal_positions(timesteps, width), persistent=False)
        self.time_mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.inp = nn.Linear(dim, width)
        self.token_proj = nn.ModuleDict({m: nn.Linear(d, width) for m, d in condition_dims.items()})
        self.token_modality = nn.Parameter(torch.randn(len(condition_dims), width) * 0.02)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({
                "self": SelfAttention(width, heads),
                "cross": CrossAttention(width, width, heads),
                "ffn": nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.SiLU(),
                                     nn.Linear(2 * width, width)),
            })
            for _ in range(layers)
        )
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * dim))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def tokens(self, condition: dict[str, Tensor], condition_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Condition tokens ``(B, N·M', width)`` and their mask ``(B, N·M')`` from ``condition``
        ``{m': (B, N, d_{m'})}`` (zero where unobserved) and ``condition_mask`` ``(B, N, M')``."""
        N = condition_mask.shape[1]
        pe = sinusoidal_positions(N, self.width, condition_mask.device, self.token_modality.dtype)
        parts = [self.token_proj[m](condition[m]) + pe + self.token_modality[k]
                 for k, m in enumerate(self.condition_names)]
        return torch.cat(parts, dim=1), condition_mask.transpose(1, 2).reshape(condition_mask.shape[0], -1)

    def forward(self, x: Tensor, t: Tensor, mask: Tensor, tokens: tuple[Tensor, Tensor]):
        B, N, _ = x.shape
        pe = sinusoidal_positions(N, self.width, x.device, x.dtype)
        h = self.inp(x) + pe + self.time_mlp(self.time_table[t])[:, None, :]
        keep = mask[:, :, None].to(x.dtype)
        for block in self.blocks:
            h = block["self"](h, mask)
            h = block["cross"](h, pe, *tokens)
            h = (h + block["ffn"](h)) * keep
        x0, v = self.out(h).chunk(2, dim=-1)
        return x0 * keep, (v + 1.0) / 2.0 * keep


class FeatureExtractor(nn.Module):
    """The paper's per-modality feature extractor ``FE``: a kernel-3 convolution, then a bidirectional
    LSTM, over one modality's utterance sequence.

    ``h = BiLSTM(Conv3([x ⊙ o, o]))`` with ``o`` the entry's availability bit, so unobserved entries
    enter as zeros the network can tell from observed ones; each conversation runs packed to its own
    length, so padding never reaches a real utterance.

    Shapes: ``x`` ``(B, N, d)`` (zero where unobserved), ``observed`` ``(B, N)`` bool, ``mask``
    ``(B, N)`` bool → ``(B, N, width)``, zero on padding. ``width`` must be even (two directions).
    """

    def __init__(self, dim: int, width: int) -> None:
        super().__init__()
        if width % 2:
            raise ValueError(f"the BiLSTM extractor needs an even width, got {width}")
        self.conv = nn.Conv1d(dim + 1, width, 3, padding=1)
        self.lstm = nn.LSTM(width, width // 2, batch_first=True, bidirectional=True)

    def forward(self, x: Tensor, observed: Tensor, mask: Tensor) -> Tensor:
        keep = mask[:, :, None].to(x.dtype)
        inp = torch.cat([x, observed[:, :, None].to(x.dtype)], dim=-1) * keep
        h = self.conv(inp.transpose(1, 2)).transpose(1, 2) * keep
        lengths = mask.sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out * keep


class _UnimodalReconstructor(nn.Module):
    """``x̃ = x̂ + Conv3(SiLU(Conv3(x̂)))`` along the utterances; the last layer starts at zero, so the
    reconstructor starts as the identity. Shapes: ``(B, N, d)``, mask ``(B, N)`` → ``(B, N, d)``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(SequenceConv(dim, hidden, 3), nn.SiLU(), SequenceConv(hidden, dim, 3))
        nn.init.zeros_(self.body[-1].linear.weight)
        nn.init.zeros_(self.body[-1].linear.bias)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return (x + self.body(x)) * mask[:, :, None].to(x.dtype)


class _MultimodalReconstructor(nn.Module):
    """Per utterance ``[x̃_1, …, x̃_M] ← [x̃_1, …, x̃_M] + MLP([x̃_1, …, x̃_M, α])`` (``α`` the ``M``
    availability bits); the last layer starts at zero. Shapes: ``(B, N, Σ d_m)``, ``(B, N, M)`` → same
    as the first."""

    def __init__(self, total: int, num_modalities: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(total + num_modalities, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, total))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor, alpha: Tensor) -> Tensor:
        return x + self.net(torch.cat([x, alpha], dim=-1))


@contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Build graphs through ``module`` without making its parameters leaves of them."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


# ------------------------------------------------------------------------------ the recoverer
@register_recoverer("rohydr")
class RoHyDR(Recoverer):
    """Hybrid diffusion + adversarial fusion recovery with staged optimisation (``docs/rohydr.md``).

    Parameters
    ----------
    stages : {"multi", "two", "one"}
        ``"multi"``: the three-stage optimisation per step; ``"two"``: Table 5's two-stage strategy
        (stage 1 as in ``"multi"``, then ``L_D + L_MR + L_S3`` as one loss); ``"one"``: one combined
        loss.
    optimisation : {"disjoint", "paper"}
        ``"disjoint"`` (default): every parameter belongs to one stage; stage 2 freezes the fusion
        network, a stage's input from the stage before is detached. ``"paper"`` (Algorithm 1): each
        stage recomputes its forward pass and updates every module upstream of its loss with one
        internal Adam (the discriminator keeps its own); the last stage's loss goes to the trainer
        undetached. ``stages="one"`` is the same under both.
    extractor : {"linear", "bilstm"}
        How a generator reads the available modalities: ``"linear"`` (default) a linear token per
        observed entry; ``"bilstm"`` the paper's Conv + BiLSTM :class:`FeatureExtractor` per modality
        over the conversation first (shared by the generators; even ``width``).
    hddm, ur, disc, mr : bool
        ``False`` removes a component with its parameters and loss term (Tables 3–4): the diffusion
        generator (the sample becomes mean fill, zero in standardised space), the unimodal
        reconstructor (the sample is the unimodal recovery), the discriminator (no ``L_D``, no
        ``L_adv``) or the multimodal reconstructor (the unimodal recovery is the recovery). The stage
        weights stay as they are; a removed term is zero.
    timesteps : int
        ``T`` of the training diffusion (≥ 2; 50).
    sample_steps : int
        Respaced sampling steps at inference (1 … ``timesteps``; 10).
    train_sample_steps : int
        Steps of the sampler that feeds the reconstructors during training (4).
    width, layers, heads : int
        Denoiser transformer width, blocks and attention heads (``heads`` divides ``width``).
    fusion_dim, hidden : int
        Width of the fused representation; hidden width of the reconstructors, fusion network,
        discriminator and classifier.
    vlb_weight : float
        ``λ_vlb`` of the hybrid loss (0.001).
    lambda_g, lambda_al, lambda_c : float
        Stage weights (1, 0.5, 0.5); ``lambda_g ≥ 0``, the others in ``[0, 1]``.
    lr : float
        Learning rate of the internal Adam optimisers (discriminator; stages 1 and 2 in ``"multi"``).
    max_classes : int
        Classifier logits for classification data (labels must be smaller).

    Shapes: ``batch.features[m]`` ``(B, N, d_m)``, ``observed`` ``(B, N, M)`` → :class:`Recovery` with
    ``(B, N, d_m)`` features and ``extras["sample_<m>"]`` (the generator's sample before the
    reconstructors). ``training_step`` returns ``{"generator", "fusion", "classifier"}`` (the stage
    losses; a loss already minimised inside the step — stage 1 in ``"multi"`` and ``"two"``, stage 2
    in ``"multi"`` — is detached) and puts the single terms (``hddm, ur, disc, adv, rec, c1, c2``,
    0-d, detached) in ``extras``.
    """

    stochastic = True  # ancestral DDPM sampling

    def __init__(self, modalities, feature_dims, *, graph_config=None, stages: str = "multi",
                 optimisation: str = "disjoint", extractor: str = "linear", hddm: bool = True,
                 ur: bool = True, disc: bool = True, mr: bool = True, timesteps: int = 50, sample_steps: int = 10, train_sample_steps: int = 4,
                 width: int = 32, layers: int = 2, heads: int = 2, fusion_dim: int = 32,
                 hidden: int = 64, vlb_weight: float = 1e-3, lambda_g: float = 1.0,
                 lambda_al: float = 0.5, lambda_c: float = 0.5, lr: float = 1e-3,
                 max_classes: int = 16) -> None:
        super().__init__(modalities, feature_dims, graph_config=graph_config)
        if stages not in STAGES:
            raise ValueError(f"stages must be one of {list(STAGES)}, got {stages!r}")
        if optimisation not in OPTIMISATIONS:
            raise ValueError(f"optimisation must be one of {list(OPTIMISATIONS)}, got {optimisation!r}")
        if extractor not in EXTRACTORS:
            raise ValueError(f"extractor must be one of {list(EXTRACTORS)}, got {extractor!r}")
        switches = {"hddm": hddm, "ur": ur, "disc": disc, "mr": mr}
        bad = {k: v for k, v in switches.items() if not isinstance(v, bool)}
        if bad:
            raise ValueError(f"these RoHyDR switches must be true or false: {bad}")
        if extractor == "bilstm" and int(width) % 2:
            raise ValueError(f"extractor='bilstm' needs an even width, got {width}")
        if int(timesteps) < 2:
            raise ValueError(f"timesteps must be >= 2, got {timesteps}")
        for name, steps in (("sample_steps", sample_steps), ("train_sample_steps", train_sample_steps)):
            if not 1 <= int(steps) <= int(timesteps):
                raise ValueError(f"{name} must be in [1, timesteps={timesteps}], got {steps}")
        sizes = {"width": width, "layers": layers, "heads": heads, "fusion_dim": fusion_dim, "hidden": hidden}
        bad = {k: v for k, v in sizes.items() if int(v) < 1}
        if bad:
            raise ValueError(f"sizes must be >= 1, got {bad}")
        if width % heads:
            raise ValueError(f"width {width} must be divisible by heads {heads}")
        if vlb_weight < 0 or lambda_g < 0:
            raise ValueError(f"vlb_weight and lambda_g must be >= 0, got {vlb_weight}, {lambda_g}")
        for name, value in (("lambda_al", lambda_al), ("lambda_c", lambda_c)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if int(max_classes) < 2:
            raise ValueError(f"max_classes must be >= 2, got {max_classes}")
        self.stages, self.optimisation, self.extractor = stages, optimisation, extractor
        self.use_hddm, self.use_ur, self.use_disc, self.use_mr = hddm, ur, disc, mr
        # Without the diffusion generator nothing samples.
        self.stochastic = hddm
        self.schedule = DDPMSchedule.cosine(int(timesteps))
        self.sample_steps, self.train_sample_steps = int(sample_steps), int(train_sample_steps)
        self.vlb_weight, self.lambda_g = float(vlb_weight), float(lambda_g)
        self.lambda_al, self.lambda_c, self.lr = float(lambda_al), float(lambda_c), float(lr)
        self.max_classes = int(max_classes)
        dims = self.feature_dims
        bilstm = hddm and extractor == "bilstm"
        self.extractors = nn.ModuleDict(
            {m: FeatureExtractor(d, width) for m, d in dims.items()} if bilstm else {})
        read = {m: (width if bilstm else d) for m, d in dims.items()}
        self.generators = nn.ModuleDict({
            m: ConditionalDenoiser(d, {o: read[o] for o in self.modalities if o != m}, int(timesteps),
                                   width, layers, heads)
            for m, d in dims.items()
        } if hddm else {})
        self.unimodal = nn.ModuleDict(
            {m: _UnimodalReconstructor(d, hidden) for m, d in dims.items()} if ur else {})
        total = sum(dims.values())
        self.multimodal = _MultimodalReconstructor(total, len(self.modalities), hidden) if mr else None
        # LayerNorm without affine fixes the fused scale: L_rec cannot fall by shrinking it.
        self.fusion = nn.Sequential(nn.Linear(total, hidden), nn.ReLU(), nn.Linear(hidden, fusion_dim),
                                    nn.LayerNorm(fusion_dim, elementwise_affine=False))
        self.discriminator = (nn.Sequential(nn.Linear(fusion_dim, hidden), nn.LeakyReLU(0.2),
                                            nn.Linear(hidden, 1)) if disc else None)
        self.classifier = nn.Sequential(nn.Linear(fusion_dim, hidden), nn.ReLU(),
                                        nn.Linear(hidden, self.max_classes))
        self._optimisers: dict[str, torch.optim.Adam] | None = None
        self._pending_state: Tensor | None = None
        self._respaced: dict[int, DDPMSchedule] = {}

    # ------------------------------------------------------------------------ optimiser state
    def stage_parameters(self) -> dict[str, list[nn.Parameter]]:
        """The parameters each internal optimiser owns. ``discriminator`` always (with ``disc``). With
        ``optimisation="disjoint"``: ``generator`` (extractors, generators, unimodal reconstructors)
        in ``"multi"`` and ``"two"``, ``fusion`` (multimodal reconstructor) in ``"multi"``; with
        ``"paper"`` one ``model`` optimiser over every other parameter of the recoverer (Algorithm 1's
        ``O``; a stage's backward reaches only the modules upstream of its loss). Everything else is the
        trainer's. Groups without parameters (a removed component) are left out."""
        groups = {"discriminator": list(self.discriminator.parameters()) if self.discriminator else []}
        if self.stages != "one":
            if self.optimisation == "paper":
                groups["model"] = [p for n, p in self.named_parameters() if not n.startswith("discriminator.")]
            else:
                groups["generator"] = [*self.extractors.parameters(), *self.generators.parameters(),
                                       *self.unimodal.parameters()]
                if self.stages == "multi":
                    groups["fusion"] = list(self.multimodal.parameters()) if self.multimodal else []
        return {k: v for k, v in groups.items() if v}

    def optimisers(self) -> dict[str, torch.optim.Adam]:
        """The internal Adam optimisers, created on first use (after the model has been moved to its
        device) with any state restored by :meth:`set_extra_state`."""
        if self._optimisers is None:
            opts = {k: torch.optim.Adam(p, lr=self.lr) for k, p in self.stage_parameters().items()}
            if self._pending_state is not None:
                state = torch.load(io.BytesIO(self._pending_state.numpy().tobytes()), map_location="cpu",
                                   weights_only=True)
                if set(state) != set(opts):
                    raise ValueError(f"saved RoHyDR optimiser state has {sorted(state)}, this "
                                     f"stages={self.stages!r} recoverer needs {sorted(opts)}")
                for k, opt in opts.items():
                    opt.load_state_dict(state[k])
            self._optimisers, self._pending_state = opts, None
        return self._optimisers

    def get_extra_state(self) -> Tensor:
        """The internal optimisers' state, serialised into a ``(n_bytes,)`` uint8 tensor (the trainer
        snapshots state dicts tensor by tensor); empty before the first training step."""
        if self._optimisers is None:
            return torch.zeros(0, dtype=torch.uint8) if self._pending_state is None else self._pending_state.clone()
        buf = io.BytesIO()
        torch.save({k: opt.state_dict() for k, opt in self._optimisers.items()}, buf)
        return torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8).clone()

    def set_extra_state(self, state: Tensor) -> None:
        # The optimisers are rebuilt lazily around this state at the next training step.
        self._optimisers = None
        self._pending_state = state.detach().cpu().clone() if state.numel() else None

    def _update(self, name: str, loss: Tensor) -> None:
        """One step of internal optimiser ``name`` on ``loss``; nothing when the group does not exist
        (a removed component) or the loss reaches no parameter."""
        opts = self.optimisers()
        if name not in opts or not loss.requires_grad:
            return
        opt = opts[name]
        params = [p for group in opt.param_groups for p in group["params"]]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, _GRAD_CLIP)
        opt.step()
        # No stale gradients left for the trainer's backward to add to.
        opt.zero_grad(set_to_none=True)

    # ------------------------------------------------------------------------ unimodal recovery
    def _readings(self, batch: ConversationBatch, observed: Tensor) -> dict[str, Tensor]:
        """What the generators read of each modality: its observed entries ``(B, N, d_m)`` zero
        elsewhere, or with ``extractor="bilstm"`` their :class:`FeatureExtractor` features
        ``(B, N, width)``."""
        seen = observed_only(batch, observed)
        if not len(self.extractors):
            return seen
        return {m: self.extractors[m](seen[m], observed[:, :, k], batch.utterance_mask)
                for k, m in enumerate(self.modalities)}

    def _tokens(self, read: dict[str, Tensor], observed: Tensor, m: str) -> tuple[Tensor, Tensor]:
        net = self.generators[m]
        cmask = observed[:, :, [self.modality_index(o) for o in net.condition_names]]
        return net.tokens({o: read[o] for o in net.condition_names}, cmask)

    def hddm_loss(self, batch: ConversationBatch, observed: Tensor, targets: list[str]) -> Tensor:
        """``Σ_m ‖x̂_0 − x_0‖² + λ_vlb T · L_t`` over the real utterances of the target modalities, one
        ``t ~ U{0 … T−1}`` per conversation; the mean inside ``L_t`` is detached (improved DDPM)."""
        read = self._readings(batch, observed)
        mask = batch.utterance_mask
        sched, T = self.schedule, len(self.schedule)
        total = batch.features[self.modalities[0]].new_zeros(())
        for m in targets:
            x0 = batch.features[m]
            t = torch.randint(0, T, (x0.shape[0],), device=x0.device)
            noise = torch.randn_like(x0)
            x_t = sched.q_sample(x0, t, noise)
            x0_hat, frac = self.generators[m](x_t, t, mask, self._tokens(read, observed, m))
            simple = (x0_hat - x0).pow(2).mean(-1)[mask].mean()
            mean, _ = sched.posterior(x0_hat.detach(), x_t, t)
            logvar = sched.model_log_variance(frac, t)
            true_mean, true_logvar = sched.posterior(x0, x_t, t)
            kl = normal_kl(true_mean, true_logvar, mean, logvar).mean(-1)
            nll = gaussian_nll(x0, mean, logvar).mean(-1)
            vlb = torch.where((t == 0)[:, None], nll, kl)[mask].mean()
            total = total + simple + self.vlb_weight * T * vlb
        return total

    @torch.no_grad()
    def sample(self, batch: ConversationBatch, observed: Tensor, targets: list[str],
               steps: int) -> dict[str, Tensor]:
        """Ancestral samples ``{m: (B, N, d_m)}`` of the target modalities over ``steps`` respaced
        steps, observed entries imposed at every noise level and exactly at the end. Without the
        generator (``hddm=False``): the observed entries, the training mean (zero) elsewhere."""
        seen = observed_only(batch, observed)
        if not self.use_hddm:
            return {m: seen[m] for m in targets}
        if steps not in self._respaced:
            self._respaced[steps] = self.schedule.respaced(steps)
        sched = self._respaced[steps]
        read = self._readings(batch, observed)
        mask = batch.utterance_mask
        B = mask.shape[0]
        out = {}
        for m in targets:
            net, tokens = self.generators[m], self._tokens(read, observed, m)
            known = observed[:, :, self.modality_index(m), None]
            x = torch.randn_like(seen[m])
            for i in range(len(sched) - 1, -1, -1):
                t = torch.full((B,), i, dtype=torch.long, device=x.device)
                x0_hat, frac = net(x, sched.timesteps.to(x.device)[t], mask, tokens)
                mean, _ = sched.posterior(x0_hat, x, t)
                if i == 0:
                    x = mean
                    break
                logvar = sched.model_log_variance(frac, t)
                x = mean + torch.exp(0.5 * logvar) * torch.randn_like(x)
                x = torch.where(known, sched.q_sample(seen[m], t - 1, torch.randn_like(x)), x)
            out[m] = torch.where(known, seen[m], x) * mask[:, :, None].to(x.dtype)
        return out

    def _unimodal(self, batch: ConversationBatch, samples: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.use_ur:
            return dict(samples)
        return {m: self.unimodal[m](s, batch.utterance_mask) for m, s in samples.items()}

    # ------------------------------------------------------------------------ multimodal recovery
    def _multimodal(self, batch: ConversationBatch, observed: Tensor,
                    features: dict[str, Tensor]) -> dict[str, Tensor]:
        """Merged features after the multimodal reconstructor (only unobserved entries change)."""
        if self.multimodal is None:
            return merge_observed(batch, observed, features)
        x = torch.cat([features[m] for m in self.modalities], dim=-1)
        y = self.multimodal(x, batch.observed_entries(observed).to(x.dtype))
        split = torch.split(y, [self.feature_dims[m] for m in self.modalities], dim=-1)
        return merge_observed(batch, observed, dict(zip(self.modalities, split)))

    def fuse(self, features: dict[str, Tensor]) -> Tensor:
        """RoHyDR's fused representation ``(B, N, fusion_dim)`` of ``{m: (B, N, d_m)}``."""
        return self.fusion(torch.cat([features[m] for m in self.modalities], dim=-1))

    def discriminator_step(self, real: Tensor, fake: Tensor) -> Tensor:
        """One update of the discriminator alone (its own optimiser) on fused representations
        ``(K, fusion_dim)`` of complete (real) and recovered (fake) utterances; returns its loss."""
        logits = self.discriminator(torch.cat([real, fake]).detach())
        labels = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))]).to(logits)[:, None]
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        self._update("discriminator", loss)
        return loss.detach()

    def classifier_loss(self, fused: Tensor, batch: ConversationBatch) -> Tensor:
        """Task loss of the classifier on ``fused`` ``(B, N, fusion_dim)``: L1 (regression, first
        logit) or cross-entropy over ``max_classes`` logits."""
        out = self.classifier(fused)
        if batch.task == "classification":
            labels = batch.labels
            top = int(labels[batch.utterance_mask].max()) if bool(batch.utterance_mask.any()) else 0
            if top >= self.max_classes:
                raise ValueError(f"label {top} needs max_classes > {top}; got max_classes={self.max_classes}")
            return task_loss(out, labels, batch.utterance_mask, "classification")
        return task_loss(out[..., 0], batch.labels, batch.utterance_mask, "regression", "l1")

    # ------------------------------------------------------------------------ the interface
    def recover(self, batch: ConversationBatch, observed: Tensor) -> Recovery:
        targets = self.modalities_to_recover(batch, observed)
        if not targets:
            return Recovery(merge_observed(batch, observed, batch.features))
        steps = self.train_sample_steps if self.training else self.sample_steps
        samples = self.sample(batch, observed, targets, steps)
        unimodal = merge_observed(batch, observed, self._unimodal(batch, samples))
        return Recovery(self._multimodal(batch, observed, unimodal),
                        extras={f"sample_{m}": s for m, s in samples.items()})

    def training_step(self, batch: ConversationBatch, observed: Tensor):
        """The stages on one batch (``docs/rohydr.md``, "Optimisation", says who updates what)."""
        staged = self.stages != "one"
        paper = staged and self.optimisation == "paper"
        own = "model" if paper else None
        targets = self.modalities_to_recover(batch, observed)
        zero = batch.features[self.modalities[0]].new_zeros(())
        partial = batch.missing_entries(observed).any(-1)
        complete = self.fuse(batch.features)  # stage 3's L_C2 path; detached it is stage 2's target
        samples = self.sample(batch, observed, targets, self.train_sample_steps) if targets else {}

        # Stage 1: extractors, generators + unimodal reconstructors.
        refined = self._unimodal(batch, samples)
        hddm = self.hddm_loss(batch, observed, targets) if targets and self.use_hddm else zero
        ur = dropped_mse(batch, observed, refined) if self.use_ur else zero
        generator = (hddm + self.lambda_g * ur) / (1.0 + self.lambda_g)
        if staged and targets:
            self._update(own or "generator", generator)
            if paper:  # Algorithm 1 passes the input again through the updated modules
                refined = self._unimodal(batch, samples)
        unimodal = merge_observed(batch, observed, refined)
        if staged and not paper:
            unimodal = {m: x.detach() for m, x in unimodal.items()}

        # Stage 2: the discriminator, then the multimodal reconstructor against it.
        recovered = self._multimodal(batch, observed, unimodal)
        disc = adv = rec = zero
        if bool(partial.any()):
            freeze = self.stages == "multi" and not paper
            with _frozen(self.fusion) if freeze else nullcontext():
                fake = self.fuse(recovered)[partial]
            real = complete.detach()[partial]
            if self.use_disc:
                disc = self.discriminator_step(real, fake)
                with _frozen(self.discriminator):
                    logits = self.discriminator(fake)
                adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            rec = (fake - real).pow(2).mean(-1).mean() + dropped_mse(batch, observed, recovered)
        fusion = self.lambda_al * adv + (1.0 - self.lambda_al) * rec
        if self.stages == "multi":
            if bool(partial.any()):
                self._update(own or "fusion", fusion)
            if paper:
                unimodal = merge_observed(batch, observed, self._unimodal(batch, samples))
                recovered = self._multimodal(batch, observed, unimodal)
                complete = self.fuse(batch.features)
            else:
                recovered = {m: x.detach() for m, x in recovered.items()}

        # Stage 3: the classifier on recovered (L_C1) and complete (L_C2) fused representations.
        c1 = self.classifier_loss(self.fuse(recovered), batch)
        c2 = self.classifier_loss(complete, batch)
        classifier = self.lambda_c * c1 + (1.0 - self.lambda_c) * c2

        losses = {"generator": generator, "fusion": fusion, "classifier": classifier}
        if staged:
            losses["generator"] = generator.detach()
        if self.stages == "multi":
            losses["fusion"] = fusion.detach()
        terms = {"hddm": hddm, "ur": ur, "disc": disc, "adv": adv, "rec": rec, "c1": c1, "c2": c2}
        extras = {k: v.detach() for k, v in terms.items()}
        extras.update({f"sample_{m}": s for m, s in samples.items()})
        return Recovery(recovered, extras=extras), losses

    def training_losses(self, batch: ConversationBatch, observed: Tensor) -> dict[str, Tensor]:
        return self.training_step(batch, observed)[1]
