"""The discrete DDPM forward process (Ho et al. 2020; improved DDPM, Nichol & Dhariwal 2021).

:class:`DDPMSchedule` holds ``ᾱ``, the posterior ``q(x_{t−1} | x_t, x_0)`` and the learned-variance
interpolation; :func:`normal_kl` and :func:`gaussian_nll` are the two terms of its variational bound.
Used by the RoHyDR recoverer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["DDPMSchedule", "normal_kl", "gaussian_nll"]


class DDPMSchedule:
    """A discrete DDPM forward process, its posterior and the learned-variance parameterisation.

    ``q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)``, ``β_t = 1 − ᾱ_t / ᾱ_{t−1}`` (``ᾱ_{−1} = 1``);
    ``q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I)`` with ``μ̃_t = β_t √ᾱ_{t−1}/(1 − ᾱ_t) x_0 +
    (1 − ᾱ_{t−1}) √(1 − β_t)/(1 − ᾱ_t) x_t`` and ``β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t)``;
    the model's variance ``log σ²_t = v log β_t + (1 − v) log β̃_t`` (``log β̃_0`` clipped to
    ``log β̃_1``, as in improved DDPM).

    Parameters
    ----------
    alphas_cumprod : Tensor
        ``(K,)`` decreasing ``ᾱ`` in ``(0, 1]``.
    timesteps : Tensor, optional
        ``(K,)`` long: the network's time index of each step (a respaced schedule keeps the original
        indices). Default ``0 … K−1``.

    Shapes: ``t`` ``(B,)`` long step indices into this schedule; ``x`` ``(B, N, d)``.
    """

    def __init__(self, alphas_cumprod: Tensor, timesteps: Tensor | None = None) -> None:
        ac = alphas_cumprod.double()
        prev = torch.cat([ac.new_ones(1), ac[:-1]])
        self.alphas_cumprod, self.alphas_cumprod_prev = ac, prev
        self.betas = 1.0 - ac / prev
        self.timesteps = torch.arange(len(ac)) if timesteps is None else timesteps.long()
        var = self.betas * (1.0 - prev) / (1.0 - ac)
        self.posterior_log_variance = torch.log(torch.cat([var[1:2], var[1:]]) if len(ac) > 1 else self.betas)
        self.coef_x0 = self.betas * prev.sqrt() / (1.0 - ac)
        self.coef_xt = (1.0 - prev) * (1.0 - self.betas).sqrt() / (1.0 - ac)

    @classmethod
    def cosine(cls, steps: int, s: float = 0.008) -> "DDPMSchedule":
        """``ᾱ_t = f(t + 1)/f(0)``, ``f(t) = cos²((t/T + s)/(1 + s) · π/2)``, ``β_t ≤ 0.999``."""
        f = torch.cos((torch.arange(steps + 1, dtype=torch.float64) / steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1.0 - f[1:] / f[:-1]).clamp(max=0.999)
        return cls(torch.cumprod(1.0 - betas, 0))

    def __len__(self) -> int:
        return len(self.alphas_cumprod)

    def respaced(self, steps: int) -> "DDPMSchedule":
        """The schedule over ``steps`` evenly spaced timesteps (the last one always kept)."""
        keep = torch.linspace(len(self) - 1, 0, steps, dtype=torch.float64).round().long().flip(0)
        return DDPMSchedule(self.alphas_cumprod[keep], self.timesteps[keep])

    @staticmethod
    def _at(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
        return values.to(like.device)[t].to(like.dtype)[:, None, None]

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        ac = self._at(self.alphas_cumprod, t, x0)
        return ac.sqrt() * x0 + (1.0 - ac).sqrt() * noise

    def posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(μ̃_t, log β̃_t)``, each broadcastable to ``x_t``."""
        mean = self._at(self.coef_x0, t, x_t) * x0 + self._at(self.coef_xt, t, x_t) * x_t
        return mean, self._at(self.posterior_log_variance, t, x_t)

    def model_log_variance(self, frac: Tensor, t: Tensor) -> Tensor:
        """``frac log β_t + (1 − frac) log β̃_t`` for ``frac`` ``(B, N, d)``."""
        log_beta = self._at(self.betas.log(), t, frac)
        return frac * log_beta + (1.0 - frac) * self._at(self.posterior_log_variance, t, frac)


def normal_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor) -> Tensor:
    """``KL(N(mean1, e^{logvar1}) ‖ N(mean2, e^{logvar2}))`` elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2).pow(2) * torch.exp(-logvar2))


def gaussian_nll(x: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """``−log N(x; mean, e^{logvar})`` elementwise, in nats (the continuous decoder term ``L_0``)."""
    return 0.5 * (math.log(2 * math.pi) + logvar + (x - mean).pow(2) * torch.exp(-logvar))
