"""MulT fusion: crossmodal transformers between every ordered pair of modalities (Tsai et al., 2019)."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mer.nn.positions import sinusoidal_positions

__all__ = ["MulTFusion"]

_POOLS = ("last", "mean")


class AttentionBlock(nn.Module):
    """One pre-LN transformer block: ``x ← x + Drop(MHA(LN x, LN s)); x ← x + Drop(FFN(LN x))``.

    ``FFN(h) = W_2 Drop(ReLU(W_1 h))`` with hidden width ``4C``. With ``cross=False`` the keys and
    values are the queries' own normalised sequence (``source`` is ignored).

    Shapes: ``x`` ``(B, T, C)``, ``source`` ``(B, S, C)``, ``key_mask`` ``(B, S)`` bool (``True`` on
    real keys; every row needs one) → ``(B, T, C)``. Keys where ``key_mask`` is ``False`` get weight
    exactly zero.
    """

    def __init__(self, width: int, heads: int, *, cross: bool, attn_dropout: float,
                 relu_dropout: float, res_dropout: float) -> None:
        super().__init__()
        self.width, self.heads, self.cross = width, heads, cross
        self.attn_dropout, self.relu_dropout, self.res_dropout = attn_dropout, relu_dropout, res_dropout
        self.norm_q = nn.LayerNorm(width)
        # Target and source are different modalities, so they get their own normalisation statistics.
        self.norm_kv = nn.LayerNorm(width) if cross else None
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.o = nn.Linear(width, width)
        self.norm_ff = nn.LayerNorm(width)
        self.ff1 = nn.Linear(width, 4 * width)
        self.ff2 = nn.Linear(4 * width, width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.q, self.kv, self.o):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        for layer in (self.ff1, self.ff2):
            layer.reset_parameters()
        for norm in (self.norm_q, self.norm_kv, self.norm_ff):
            if norm is not None:
                norm.reset_parameters()

    def forward(self, x: Tensor, source: Tensor, key_mask: Tensor) -> Tensor:
        B, T, C = x.shape
        H = self.heads
        h = self.norm_q(x)
        s = self.norm_kv(source) if self.norm_kv is not None else h
        q = self.q(h).view(B, T, H, C // H).transpose(1, 2)
        k, v = self.kv(s).view(B, s.shape[1], 2, H, C // H).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask[:, None, None, :],
            dropout_p=self.attn_dropout if self.training else 0.0,
        )
        x = x + F.dropout(self.o(a.transpose(1, 2).reshape(B, T, C)), self.res_dropout, self.training)
        h = F.dropout(F.relu(self.ff1(self.norm_ff(x))), self.relu_dropout, self.training)
        return x + F.dropout(self.ff2(h), self.res_dropout, self.training)


class TransformerStack(nn.Module):
    """``layers`` :class:`AttentionBlock` s and a closing LayerNorm (pre-LN blocks leave the residual
    stream unnormalised).

    Shapes: ``x`` ``(B, T, C)``, ``source`` ``(B, S, C)`` (ignored unless ``cross``), ``key_mask``
    ``(B, S)`` bool → ``(B, T, C)``.
    """

    def __init__(self, width: int, heads: int, layers: int, *, cross: bool, attn_dropout: float,
                 relu_dropout: float, res_dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            AttentionBlock(width, heads, cross=cross, attn_dropout=attn_dropout,
                           relu_dropout=relu_dropout, res_dropout=res_dropout)
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(width)

    def forward(self, x: Tensor, source: Tensor, key_mask: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x, source, key_mask)
        return self.norm(x)


class MulTFusion(nn.Module):
    r"""MulT fusion backbone: every modality attends to every other, then to itself, then is pooled.

    For modalities ``m = 1 … M`` on a shared time axis with mask ``μ`` (``μ_t = 1`` on real steps):

    .. math::

        Z_m &= μ ⊙ \mathrm{Drop}\big(\sqrt{d}\,\mathrm{Conv1d}_{l_m}(μ ⊙ X_m) + PE\big)
              &&\in ℝ^{T×d} \\
        Z_{n→m} &= \mathrm{CM}^{[L]}_{n→m}(Z_m, Z_n) \quad (n ≠ m)
              &&\in ℝ^{T×d} \\
        S_m &= \mathrm{SA}^{[L_s]}_m\big([Z_{n→m}]_{n ≠ m}\big)
              &&\in ℝ^{T×(M-1)d} \\
        y &= \big[\mathrm{pool}_μ(S_1), …, \mathrm{pool}_μ(S_M)\big]
              &&\in ℝ^{M(M-1)d}

    ``CM^{[L]}_{n→m}`` is ``L`` pre-LN blocks whose queries come from the target ``m`` and keys and
    values from the source ``n`` (padded source steps get weight exactly zero), each followed by a
    ReLU feed-forward of width ``4d``; ``SA^{[L_s]}_m`` is the same block with queries, keys and values
    from one sequence. Each stack ends with a LayerNorm. ``pool`` is the last real step of each row
    (``"last"``, MulT's choice; with right padding that is step ``length − 1``) or the masked mean
    (``"mean"``). Padded inputs are zeroed before the convolution and its output is zeroed after it,
    so padding never reaches a real step and the output does not depend on how far a batch is
    padded.

    Parameters
    ----------
    modalities : sequence of str
        The ``M ≥ 2`` modality names, in output order.
    feature_dims : mapping of str to int
        Modality → input width ``d_m`` (must cover ``modalities``; other keys are ignored).
    dim : int
        Common width ``d``.
    kernel_sizes : int or mapping of str to int
        Odd temporal kernel ``l_m`` per modality (one value for all). Default 1.
    heads : int
        Attention heads; must divide ``d`` and ``(M−1)d``. Default 4.
    layers : int
        Crossmodal blocks ``L`` per ordered pair. Default 4.
    self_layers : int
        Self-attention blocks ``L_s`` per target. Default 3.
    attn_dropout, relu_dropout, res_dropout, embed_dropout : float
        Dropout on attention weights, on the feed-forward hidden layer, on each residual branch and
        on the embedded inputs. Defaults 0.1, 0.1, 0.1, 0.25.
    pool : {"last", "mean"}
        Temporal pooling of each target stream. Default ``"last"``.

    Attributes
    ----------
    out_dim : int
        ``M (M − 1) d``; the output is ``M`` blocks of width ``(M − 1) d``, one per target modality in
        ``modalities`` order.

    Shapes: ``sequences`` ``{m: (B, T, d_m)}`` (one ``T`` for all), ``step_mask`` ``(B, T)`` bool
    (``True`` on real steps, at least one per row; padded steps may hold anything) →
    ``(B, out_dim)``.

    Example
    -------
    >>> fusion = MulTFusion(["text", "audio"], {"text": 8, "audio": 5}, dim=16, layers=1, self_layers=1)
    >>> x = {"text": torch.randn(2, 7, 8), "audio": torch.randn(2, 7, 5)}
    >>> fusion(x, torch.ones(2, 7, dtype=torch.bool)).shape
    torch.Size([2, 32])
    """

    def __init__(
        self,
        modalities: Sequence[str],
        feature_dims: Mapping[str, int],
        dim: int,
        kernel_sizes: int | Mapping[str, int] = 1,
        *,
        heads: int = 4,
        layers: int = 4,
        self_layers: int = 3,
        attn_dropout: float = 0.1,
        relu_dropout: float = 0.1,
        res_dropout: float = 0.1,
        embed_dropout: float = 0.25,
        pool: str = "last",
    ) -> None:
        super().__init__()
        self.modalities: tuple[str, ...] = tuple(modalities)
        M = len(self.modalities)
        if M < 2:
            raise ValueError(f"MulTFusion needs at least 2 modalities, got {list(self.modalities)}")
        if len(set(self.modalities)) != M:
            raise ValueError(f"modalities must be distinct, got {list(self.modalities)}")
        missing = [m for m in self.modalities if m not in feature_dims]
        if missing:
            raise ValueError(f"feature_dims lacks modalities {missing}; give a width for each of "
                             f"{list(self.modalities)}")
        if isinstance(kernel_sizes, Mapping):
            missing = [m for m in self.modalities if m not in kernel_sizes]
            if missing:
                raise ValueError(f"kernel_sizes lacks modalities {missing}; give one per modality of "
                                 f"{list(self.modalities)} or a single int")
            kernels = {m: int(kernel_sizes[m]) for m in self.modalities}
        else:
            kernels = {m: int(kernel_sizes) for m in self.modalities}
        for m, l in kernels.items():
            if l < 1 or l % 2 == 0:
                raise ValueError(f"kernel size of modality {m!r} must be an odd integer >= 1 (so the "
                                 f"convolution keeps T steps), got {l}")
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        for m in self.modalities:
            if int(feature_dims[m]) < 1:
                raise ValueError(f"feature_dims[{m!r}] must be >= 1, got {feature_dims[m]}")
        stream = (M - 1) * dim
        if heads < 1 or dim % heads or stream % heads:
            raise ValueError(f"heads {heads} must divide both the crossmodal width dim={dim} and the "
                             f"self-attention width (M-1)*dim={stream} (M={M})")
        if layers < 1 or self_layers < 0:
            raise ValueError(f"need layers >= 1 and self_layers >= 0, got layers={layers}, "
                             f"self_layers={self_layers}")
        if pool not in _POOLS:
            raise ValueError(f"unknown pool {pool!r}; choose one of {list(_POOLS)}")

        self.feature_dims = {m: int(feature_dims[m]) for m in self.modalities}
        self.kernel_sizes = kernels
        self.dim, self.heads, self.layers, self.self_layers = dim, heads, layers, self_layers
        self.embed_dropout, self.pool = embed_dropout, pool
        self.out_dim = M * stream
        dropouts = dict(attn_dropout=attn_dropout, relu_dropout=relu_dropout, res_dropout=res_dropout)

        # Lists indexed by modality position, not ModuleDicts keyed by name: any string is a valid
        # modality name, while a ModuleDict key may not contain ".".
        self.convs = nn.ModuleList(
            nn.Conv1d(self.feature_dims[m], dim, kernels[m], padding=kernels[m] // 2, bias=False)
            for m in self.modalities
        )
        # crossmodal[i][j]: target modalities[i] attends to the j-th other modality (in order).
        self.crossmodal = nn.ModuleList(
            nn.ModuleList(TransformerStack(dim, heads, layers, cross=True, **dropouts)
                          for _ in range(M - 1))
            for _ in range(M)
        )
        self.self_attention = nn.ModuleList(
            TransformerStack(stream, heads, self_layers, cross=False, **dropouts) for _ in range(M)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def _check(self, sequences: Mapping[str, Tensor], step_mask: Tensor) -> None:
        missing = [m for m in self.modalities if m not in sequences]
        extra = sorted(set(sequences) - set(self.modalities))
        if missing or extra:
            raise ValueError(f"sequences must have exactly the modalities {list(self.modalities)}; "
                             f"missing {missing}, unexpected {extra}")
        if step_mask.dim() != 2 or step_mask.dtype != torch.bool:
            raise ValueError(f"step_mask must be a (B, T) bool tensor, got shape "
                             f"{tuple(step_mask.shape)} and dtype {step_mask.dtype}")
        B, T = step_mask.shape
        for m in self.modalities:
            x = sequences[m]
            if x.dim() != 3:
                raise ValueError(f"sequences[{m!r}] must be (B, T, d_m), got shape {tuple(x.shape)}")
            if x.shape[2] != self.feature_dims[m]:
                raise ValueError(f"sequences[{m!r}] has width {x.shape[2]}, expected "
                                 f"feature_dims[{m!r}] = {self.feature_dims[m]}")
            if x.shape[:2] != (B, T):
                raise ValueError(f"sequences[{m!r}] has (B, T) = {tuple(x.shape[:2])} but step_mask "
                                 f"has {(B, T)}; align every modality to the same T steps")
        empty = (~step_mask.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"rows {empty} of step_mask have no real step; every row needs at least "
                             f"one True")

    def project(self, sequences: Mapping[str, Tensor], step_mask: Tensor) -> dict[str, Tensor]:
        """The temporal convolutions alone: ``{m: (B, T, d_m)}`` → ``{m: (B, T, d)}``, zero on padded
        steps — the sequence representation IMDer recovers a missing modality in."""
        self._check(sequences, step_mask)
        keep = step_mask[:, :, None]
        out = {}
        for i, m in enumerate(self.modalities):
            # masked_fill, not a product: garbage at padded steps may be inf or NaN.
            x = sequences[m].masked_fill(~keep, 0.0)
            out[m] = self.convs[i](x.transpose(1, 2)).transpose(1, 2).masked_fill(~keep, 0.0)
        return out

    def _embed(self, h: Tensor, keep: Tensor) -> Tensor:
        h = h * math.sqrt(self.dim) + sinusoidal_positions(h.shape[1], self.dim, h.device, h.dtype)
        h = F.dropout(h, self.embed_dropout, self.training)
        # The key mask alone keeps padding out of real steps; zeroing here also makes the padded
        # steps themselves the same however far a batch is padded (no stray positions or conv leak).
        return h.masked_fill(~keep, 0.0)

    def _pool(self, h: Tensor, step_mask: Tensor) -> Tensor:
        if self.pool == "mean":
            w = step_mask.to(h.dtype)[:, :, None]
            return (h * w).sum(dim=1) / w.sum(dim=1)
        steps = torch.arange(step_mask.shape[1], device=step_mask.device)
        last = torch.where(step_mask, steps, -1).amax(dim=1)
        return h[torch.arange(h.shape[0], device=h.device), last]

    def forward(self, sequences: Mapping[str, Tensor], step_mask: Tensor) -> Tensor:
        return self.fuse(self.project(sequences, step_mask), step_mask)

    def fuse(self, projected: Mapping[str, Tensor], step_mask: Tensor) -> Tensor:
        """Everything after :meth:`project`: ``{m: (B, T, d)}`` → ``(B, out_dim)``."""
        keep = step_mask[:, :, None]
        z = [self._embed(projected[m], keep) for m in self.modalities]
        pooled = []
        for i in range(len(self.modalities)):
            sources = [z[j] for j in range(len(self.modalities)) if j != i]
            h = torch.cat([cm(z[i], s, step_mask) for cm, s in zip(self.crossmodal[i], sources)], dim=-1)
            h = self.self_attention[i](h, h, step_mask)
            pooled.append(self._pool(h, step_mask))
        return torch.cat(pooled, dim=-1)
