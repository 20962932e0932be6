"""Stochastic differential equations for score-based diffusion.

Each SDE is an object that knows its own mathematics (after Song et al., *Score-Based Generative
Modeling through Stochastic Differential Equations*, ICLR 2021): the forward process
``dx = f(x, t) dt + g(t) dw`` on ``t ∈ [0, T]``, its Gaussian transition kernel
``p_t(x | x_0) = N(mean(t) x_0, std(t)² I)``, the prior at ``T``, a discretisation for ancestral
samplers and the reverse-time process.

Time ``t`` is a tensor of shape ``(B,)``; every per-sample coefficient is broadcast against a state
``x`` of shape ``(B, ...)`` through its batch axis, whatever the rank of ``x``.

SDEs are registered by name (``get_sde("vpsde")``) so configs can name them.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol

import torch
from torch import Tensor

from .registry import Registry

__all__ = [
    "SDE",
    "VPSDE",
    "subVPSDE",
    "VESDE",
    "PowerVESDE",
    "ReverseSDE",
    "ScoreFn",
    "SDES",
    "register_sde",
    "get_sde",
    "available_sdes",
    "batch_broadcast",
]


class ScoreFn(Protocol):
    """``score_fn(x, t, condition)`` → ``∇_x log p_t(x | condition)``, same shape as ``x``."""

    def __call__(self, x: Tensor, t: Tensor, condition=None) -> Tensor: ...


def batch_broadcast(coefficient: Tensor, x: Tensor) -> Tensor:
    """View a ``(B,)`` coefficient as ``(B, 1, ..., 1)`` so it broadcasts against ``x`` of any rank."""
    return coefficient.reshape(coefficient.shape[0], *([1] * (x.dim() - 1)))


def _masked_sum(values: Tensor, mask: Tensor | None) -> Tensor:
    """Sum over every axis but the batch axis, counting only entries where ``mask`` is true."""
    if mask is not None:
        values = values * mask.to(values.dtype).expand_as(values)
    return values.flatten(1).sum(dim=1)


class SDE:
    """Base class: a forward SDE on ``[0, T]`` with Gaussian transition kernels.

    Parameters
    ----------
    num_scales : int
        Number of discretisation steps used by :meth:`discretize` (and the default of samplers).
    """

    #: Terminal time.
    T: float = 1.0
    #: Smallest time used in training and sampling; the kernel is degenerate at ``t = 0``.
    eps: float = 1e-5

    def __init__(self, num_scales: int = 1000):
        if num_scales < 1:
            raise ValueError(f"num_scales must be ≥ 1, got {num_scales}")
        self.N = num_scales

    # -- the process ---------------------------------------------------------------------------
    def sde(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Drift ``f(x, t)`` (shape of ``x``) and diffusion ``g(t)`` ``(B,)``."""
        raise NotImplementedError

    def marginal_prob(self, x0: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean ``(shape of x0)`` and std ``(B,)`` of ``p_t(x | x_0)``."""
        raise NotImplementedError

    def prior_std(self) -> float:
        """Standard deviation of the (zero-mean Gaussian) prior at ``T``."""
        raise NotImplementedError

    # -- derived quantities --------------------------------------------------------------------
    def prior_sampling(self, shape, *, generator: torch.Generator | None = None, device=None,
                       dtype=torch.float32) -> Tensor:
        """A sample of the prior ``N(0, prior_std² I)`` with the given shape."""
        z = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        return z * self.prior_std()

    def prior_logp(self, z: Tensor, mask: Tensor | None = None) -> Tensor:
        """Log density ``(B,)`` of the prior at ``z``, summed over the entries selected by ``mask``."""
        var = self.prior_std() ** 2
        per_entry = -0.5 * z**2 / var - 0.5 * math.log(2 * math.pi * var)
        return _masked_sum(per_entry, mask)

    def perturb(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Sample of ``p_t(x | x_0)`` given standard normal ``noise``: ``mean(t) x_0 + std(t) noise``."""
        mean, std = self.marginal_prob(x0, t)
        return mean + batch_broadcast(std, x0) * noise

    def score_from_noise(self, predicted_noise: Tensor, t: Tensor) -> Tensor:
        """Score of the kernel implied by a noise prediction ``ε̂``: ``−ε̂ / std(t)``.

        This method, :meth:`score_from_data`, :meth:`data_from_score` and :meth:`data_from_noise` are the
        one place where network outputs, scores and denoised estimates are converted into each other,
        so a new SDE only has to provide :meth:`marginal_prob`.
        """
        _, std = self.marginal_prob(torch.zeros_like(predicted_noise), t)
        return -predicted_noise / batch_broadcast(std, predicted_noise)

    def score_from_data(self, predicted_data: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Score implied by a clean-data prediction ``x̂_0`` at ``x_t``: ``(mean(t) x̂_0 − x_t) / std(t)²``."""
        mean, std = self.marginal_prob(torch.ones_like(t), t)
        return (batch_broadcast(mean, x_t) * predicted_data - x_t) / batch_broadcast(std**2, x_t)

    def data_from_score(self, score: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Tweedie's denoised estimate ``x̂_0 = (x_t + std(t)² s) / mean(t)``, the inverse of
        :meth:`score_from_data`."""
        mean, std = self.marginal_prob(torch.ones_like(t), t)
        return (x_t + batch_broadcast(std**2, x_t) * score) / batch_broadcast(mean, x_t)

    def data_from_noise(self, predicted_noise: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Denoised estimate from a noise prediction ``ε̂``: ``(x_t − std(t) ε̂) / mean(t)``."""
        mean, std = self.marginal_prob(torch.ones_like(t), t)
        return (x_t - batch_broadcast(std, x_t) * predicted_noise) / batch_broadcast(mean, x_t)

    def transition(self, t: Tensor, dt: float) -> tuple[Tensor, Tensor]:
        """Exact one-step kernel from ``s = t − dt`` to ``t``: ``x_t = a x_s + √b z``.

        Every SDE here is linear with a Gaussian kernel, so ``a = mean(t) / mean(s)`` and
        ``b = std(t)² − a² std(s)²`` follow from :meth:`marginal_prob`. Returns ``a``, ``b`` ``(B,)``.
        """
        s = (t - dt).clamp_min(0.0)
        ones = torch.ones_like(t)
        mean_t, std_t = self.marginal_prob(ones, t)
        mean_s, std_s = self.marginal_prob(ones, s)
        a = mean_t / mean_s
        b = (std_t**2 - a**2 * std_s**2).clamp_min(0.0)
        return a, b

    def discretize(self, x: Tensor, t: Tensor, dt: float | None = None) -> tuple[Tensor, Tensor]:
        """One step of the discretised forward process ``x_t = x_{t−dt} + f + G z``.

        Uses the exact kernel of :meth:`transition` (``f = (a − 1) x``, ``G = √b``), which for the VP
        SDE is DDPM's ancestral step and for the VE SDE the SMLD/NCSN step. ``dt`` defaults to ``T / N``.
        Returns ``f`` (shape of ``x``) and ``G`` ``(B,)``.
        """
        a, b = self.transition(t, self.T / self.N if dt is None else dt)
        return batch_broadcast(a - 1.0, x) * x, torch.sqrt(b)

    def reverse(self, score_fn: ScoreFn, probability_flow: bool = False) -> "ReverseSDE":
        """The reverse-time SDE (or, with ``probability_flow``, the probability-flow ODE)."""
        return ReverseSDE(self, score_fn, probability_flow)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class ReverseSDE:
    """Reverse-time process of a forward SDE given a score function.

    ``dx = [f(x, t) − c g(t)² ∇_x log p_t(x)] dt + (1 − c) g(t) dw̄`` with ``c = 1`` for the SDE and
    ``c = ½`` with no noise for the probability-flow ODE. Time runs from ``T`` down to ``eps``, so
    samplers step with a negative ``dt``.
    """

    def __init__(self, forward: SDE, score_fn: ScoreFn | None, probability_flow: bool = False):
        self.forward = forward
        self.score_fn = score_fn
        self.probability_flow = probability_flow
        self.N = forward.N
        self.T = forward.T

    def sde(self, x: Tensor, t: Tensor, condition=None) -> tuple[Tensor, Tensor]:
        """Reverse drift (shape of ``x``) and diffusion ``(B,)``; diffusion is zero for the ODE."""
        return self.sde_given_score(x, t, self.score_fn(x, t, condition))

    def sde_given_score(self, x: Tensor, t: Tensor, score: Tensor) -> tuple[Tensor, Tensor]:
        """As :meth:`sde` with the score already evaluated (joint models score several states at once)."""
        drift, diffusion = self.forward.sde(x, t)
        weight = 0.5 if self.probability_flow else 1.0
        drift = drift - weight * batch_broadcast(diffusion**2, x) * score
        diffusion = torch.zeros_like(diffusion) if self.probability_flow else diffusion
        return drift, diffusion

    def discretize(self, x: Tensor, t: Tensor, condition=None, dt: float | None = None):
        """Reverse ancestral step ``x_{t−dt} = x_t − f + G² s + G z``; returns ``f_rev``, ``G_rev``."""
        return self.discretize_given_score(x, t, self.score_fn(x, t, condition), dt)

    def discretize_given_score(self, x: Tensor, t: Tensor, score: Tensor, dt: float | None = None):
        """As :meth:`discretize` with the score already evaluated."""
        f, G = self.forward.discretize(x, t, dt)
        weight = 0.5 if self.probability_flow else 1.0
        rev_f = f - weight * batch_broadcast(G**2, x) * score
        rev_G = torch.zeros_like(G) if self.probability_flow else G
        return rev_f, rev_G


class VPSDE(SDE):
    """Variance-preserving SDE ``dx = −½ β(t) x dt + √β(t) dw`` with linear ``β(t)``.

    Its exact one-step kernel (:meth:`SDE.discretize`) is DDPM's ancestral step.
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, num_scales: int = 1000):
        super().__init__(num_scales)
        self.beta_min = beta_min
        self.beta_max = beta_max

    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def log_mean_coeff(self, t: Tensor) -> Tensor:
        """``log mean(t) = −¼ t² (β_max − β_min) − ½ t β_min``."""
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def sde(self, x, t):
        beta = self.beta(t)
        return -0.5 * batch_broadcast(beta, x) * x, torch.sqrt(beta)

    def marginal_prob(self, x0, t):
        log_mean = self.log_mean_coeff(t)
        mean = batch_broadcast(torch.exp(log_mean), x0) * x0
        std = torch.sqrt(-torch.expm1(2.0 * log_mean))
        return mean, std

    def prior_std(self) -> float:
        return 1.0


class subVPSDE(VPSDE):
    """Sub-variance-preserving SDE ``dx = −½ β(t) x dt + √(β(t)(1 − e^{−2∫β})) dw``.

    Same drift and ``β(t)`` as :class:`VPSDE`; its marginal variance ``(1 − e^{−∫β})²`` stays below
    the VP one, which tends to give better likelihoods.
    """

    def sde(self, x, t):
        beta = self.beta(t)
        discount = -torch.expm1(4.0 * self.log_mean_coeff(t))  # 1 − e^{−2∫β}
        return -0.5 * batch_broadcast(beta, x) * x, torch.sqrt(beta * discount)

    def marginal_prob(self, x0, t):
        log_mean = self.log_mean_coeff(t)
        mean = batch_broadcast(torch.exp(log_mean), x0) * x0
        std = -torch.expm1(2.0 * log_mean)  # 1 − e^{−∫β}
        return mean, std


class VESDE(SDE):
    """Variance-exploding SDE ``dx = √(d σ²(t)/dt) dw`` with geometric ``σ(t) = σ_min (σ_max/σ_min)^t``.

    Its exact one-step kernel is SMLD/NCSN's ``x_i = x_{i-1} + √(σ_i² − σ_{i−1}²) z``.
    See :meth:`power` for the ``dx = σ^t dw`` form used by IMDer and Song's tutorial.
    """

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, num_scales: int = 1000):
        super().__init__(num_scales)
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max

    @staticmethod
    def power(sigma: float = 25.0, num_scales: int = 1000) -> "PowerVESDE":
        """The ``dx = σ^t dw`` variance-exploding SDE (σ = 25 by default)."""
        return PowerVESDE(sigma=sigma, num_scales=num_scales)

    def sigma(self, t: Tensor) -> Tensor:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def sde(self, x, t):
        log_ratio = math.log(self.sigma_max / self.sigma_min)
        diffusion = self.sigma(t) * math.sqrt(2.0 * log_ratio)
        return torch.zeros_like(x), diffusion

    def marginal_prob(self, x0, t):
        return x0, self.sigma(t)

    def prior_std(self) -> float:
        return self.sigma_max



class PowerVESDE(SDE):
    """Variance-exploding SDE ``dx = σ^t dw`` (Song's tutorial form; IMDer uses σ = 25).

    ``std(t)² = (σ^{2t} − 1) / (2 ln σ)``, so the kernel is ``N(x_0, std(t)² I)`` and the prior at
    ``T = 1`` is ``N(0, (σ² − 1)/(2 ln σ) I)``.
    """

    def __init__(self, sigma: float = 25.0, num_scales: int = 1000):
        super().__init__(num_scales)
        if sigma <= 1.0:
            raise ValueError(f"sigma must be > 1, got {sigma}")
        self.sigma = sigma

    def _variance(self, t: Tensor) -> Tensor:
        log_sigma = math.log(self.sigma)
        return torch.expm1(2.0 * t * log_sigma) / (2.0 * log_sigma)

    def sde(self, x, t):
        return torch.zeros_like(x), self.sigma**t

    def marginal_prob(self, x0, t):
        return x0, torch.sqrt(self._variance(t))

    def prior_std(self) -> float:
        return math.sqrt((self.sigma**2 - 1.0) / (2.0 * math.log(self.sigma)))



SDES: Registry[Callable[..., SDE]] = Registry("SDE")


def register_sde(name: str, factory: Callable[..., SDE]) -> None:
    """Register an SDE class or factory under ``name``; a duplicate name is an error."""
    SDES.register(name, factory)


def available_sdes() -> list[str]:
    return SDES.names()


def get_sde(name: str, **kwargs) -> SDE:
    """Build a registered SDE by name, e.g. ``get_sde("vesde_power", sigma=25)``."""
    return SDES.get(name)(**kwargs)


register_sde("vpsde", VPSDE)
register_sde("subvpsde", subVPSDE)
register_sde("vesde", VESDE)
register_sde("vesde_power", PowerVESDE)
