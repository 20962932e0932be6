"""Samplers for the reverse-time process: predictor–corrector and the probability-flow ODE.

Predictors and correctors are registered by name, so a config says ``predictor="reverse_diffusion",
corrector="langevin"`` and nothing is imported by hand:

* predictors: ``"euler_maruyama"`` (Euler–Maruyama on the reverse SDE), ``"reverse_diffusion"``
  (the ancestral step built from the SDE's exact one-step kernel), ``"none"``;
* correctors: ``"langevin"`` (annealed Langevin dynamics with a signal-to-noise step rule), ``"none"``.

Every sampler takes

* ``condition`` — passed to ``score_fn(x, t, condition)`` unchanged (class labels, observed modalities…);
* ``mask`` — entries that exist (False = padding); they stay zero throughout, and a score function
  that declares a ``mask`` parameter receives it, ``score_fn(x, t, condition, mask=mask)``
  (:func:`spectraldiff.state.wrap_score_fn`), so it need not capture the batch's mask in a closure;
* ``observed`` — ``(values, observed_mask)`` for inpainting: observed entries are replaced at every
  step by the observed values noised to the current time, and returned exactly at the end.

States, masks, observations and SDEs may be dicts keyed like the state (see :mod:`.state`) for joint
sampling of, e.g., node features and eigenvalues under one time.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .noising import masked_noise
from .registry import Registry
from .sde import SDE, ReverseSDE, batch_broadcast
from .state import State, as_dict, per_key, restore, wrap_score_fn

__all__ = [
    "Predictor",
    "Corrector",
    "PREDICTORS",
    "CORRECTORS",
    "register_predictor",
    "register_corrector",
    "available_predictors",
    "available_correctors",
    "pc_sampler",
    "euler_maruyama_sampler",
    "ode_sampler",
]


# -- predictors and correctors ------------------------------------------------------------------

class Predictor:
    """One reverse step from ``t`` to ``t + dt`` (``dt < 0``) given the score at ``(x, t)``."""

    def update(self, sde: SDE, x: Tensor, t: Tensor, dt: float, score: Tensor,
               noise: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(x_next, x_next_mean)``; the mean is the step without its noise."""
        raise NotImplementedError


class Corrector:
    """One MCMC refinement of ``x`` at fixed time ``t``."""

    def update(self, sde: SDE, x: Tensor, t: Tensor, dt: float, score: Tensor, noise: Tensor,
               mask: Tensor | None, snr: float) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


PREDICTORS: Registry[type[Predictor]] = Registry("predictor")
CORRECTORS: Registry[type[Corrector]] = Registry("corrector")


def register_predictor(name: str):
    """Class decorator registering a predictor class under ``name``; a duplicate name is an error."""
    return PREDICTORS.register(name)


def register_corrector(name: str):
    """Class decorator registering a corrector class under ``name``; a duplicate name is an error."""
    return CORRECTORS.register(name)


def available_predictors() -> list[str]:
    return PREDICTORS.names()


def available_correctors() -> list[str]:
    return CORRECTORS.names()


@register_predictor("euler_maruyama")
class EulerMaruyamaPredictor(Predictor):
    def update(self, sde, x, t, dt, score, noise):
        drift, diffusion = ReverseSDE(sde, None).sde_given_score(x, t, score)
        x_mean = x + drift * dt
        return x_mean + batch_broadcast(diffusion, x) * math.sqrt(-dt) * noise, x_mean


@register_predictor("reverse_diffusion")
class ReverseDiffusionPredictor(Predictor):
    def update(self, sde, x, t, dt, score, noise):
        rev_f, rev_G = ReverseSDE(sde, None).discretize_given_score(x, t, score, dt=-dt)
        x_mean = x - rev_f
        return x_mean + batch_broadcast(rev_G, x) * noise, x_mean


@register_predictor("none")
class NonePredictor(Predictor):
    def update(self, sde, x, t, dt, score, noise):
        return x, x


@register_corrector("langevin")
class LangevinCorrector(Corrector):
    """Langevin step with size ``2 α (snr ‖z‖ / ‖s‖)²`` (``α`` = squared one-step mean ratio; 1 for VE).

    ``‖·‖`` is the per-sample norm averaged over the batch (Song et al. 2021); the rule assumes many
    entries per sample, where ``‖z‖`` concentrates.
    """

    def update(self, sde, x, t, dt, score, noise, mask, snr):
        a, _ = sde.transition(t, -dt)
        # Norms averaged over the batch, so the step size does not fluctuate with each sample's noise draw.
        grad_norm = _masked_norm(score, mask).mean()
        noise_norm = _masked_norm(noise, mask).mean()
        step = 2.0 * a**2 * (snr * noise_norm / grad_norm.clamp_min(1e-12)) ** 2
        x_mean = x + batch_broadcast(step, x) * score
        return x_mean + batch_broadcast(torch.sqrt(2.0 * step), x) * noise, x_mean


@register_corrector("none")
class NoneCorrector(Corrector):
    def update(self, sde, x, t, dt, score, noise, mask, snr):
        return x, x


def _masked_norm(values: Tensor, mask: Tensor | None) -> Tensor:
    """Per-sample L2 norm over the selected entries, ``(B,)``."""
    if mask is not None:
        values = values * mask.to(values.dtype)
    return values.flatten(1).norm(dim=1)


def _lookup(registry: Registry, name: str):
    return registry.get(name)()


# -- inpainting ------------------------------------------------------------------------------------

class _Observations:
    """Observed entries of each state key, re-imposed at every step at the current noise level."""

    def __init__(self, observed, keys, states: dict[str, Tensor]):
        self.values: dict[str, tuple[Tensor, Tensor]] = {}
        if observed is None:
            return
        if isinstance(observed, tuple):
            if len(keys) != 1:
                raise ValueError("for a dict state, give observed as {key: (values, observed_mask)}")
            observed = {keys[0]: observed}
        for k, pair in observed.items():
            if k not in states:
                raise ValueError(f"observed names key {k!r}, which is not in the state {keys}")
            values, obs_mask = pair
            if values.shape != states[k].shape:
                raise ValueError(f"observed values for {k!r} have shape {tuple(values.shape)}, "
                                 f"expected {tuple(states[k].shape)}")
            self.values[k] = (values, obs_mask.to(torch.bool).expand_as(values))

    def impose(self, x: dict[str, Tensor], t: Tensor, sdes: dict[str, SDE],
               noise: dict[str, Tensor] | None = None, generator=None, exact: bool = False):
        """Replace observed entries by the observed values at time ``t`` (exactly if ``exact``)."""
        for k, (values, obs_mask) in self.values.items():
            if exact:
                target = values
            else:
                z = noise[k] if noise is not None else masked_noise(values, generator=generator)
                target = sdes[k].perturb(values, t, z)
            x[k] = torch.where(obs_mask, target, x[k])
        return x


# -- samplers --------------------------------------------------------------------------------------

def pc_sampler(
    sde: SDE | dict[str, SDE],
    score_fn: Callable,
    x_T: State,
    *,
    steps: int | None = None,
    predictor: str = "euler_maruyama",
    corrector: str = "none",
    snr: float = 0.16,
    corrector_steps: int = 1,
    eps: float = 1e-3,
    mask: Tensor | dict | None = None,
    condition=None,
    observed=None,
    denoise: bool = True,
    resample: int = 1,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> State:
    """Predictor–corrector sampling from ``t = T`` down to ``t = eps``.

    Parameters
    ----------
    sde : SDE or dict of SDE
        Forward process (per key for a dict state).
    score_fn : callable
        ``score_fn(x, t, condition)`` → score shaped like ``x`` (dict in, dict out for joint states);
        with a ``mask`` parameter, ``score_fn(x, t, condition, mask=mask)``.
    x_T : Tensor or dict of Tensor
        Start state ``(B, ...)``, usually ``sde.prior_sampling(shape)``; masked entries are zeroed.
    steps : int, optional
        Number of predictor steps (default: the SDE's ``N``).
    denoise : bool
        Return the last step's noise-free mean rather than the noisy sample.
    resample : int
        With ``observed``, repeat each step this many times, re-noising the result back to ``t`` with the
        forward kernel in between (RePaint, Lugmayr et al. 2022), so that the free entries can agree
        with the observed ones; 1 is plain replacement.

    Returns
    -------
    Tensor or dict of Tensor
        The sample, shaped like ``x_T``.
    """
    predict = _lookup(PREDICTORS, predictor)
    correct = _lookup(CORRECTORS, corrector)
    run = _Run(sde, score_fn, x_T, steps, eps, mask, condition, observed, generator)

    if resample < 1:
        raise ValueError(f"resample must be ≥ 1, got {resample}")
    x = run.initial()
    means = x
    for t, dt in run.schedule(progress):
        for attempt in range(resample):
            if attempt > 0:
                x = run.renoise(x, t, dt)
            if corrector != "none":
                for _ in range(corrector_steps):
                    scores = run.score(x, t)
                    for k in run.keys:
                        x[k], _ = correct.update(run.sdes[k], x[k], t, dt, scores[k], run.noise(k), run.masks[k],
                                                 snr)
                    x = run.finish_step(x, t)
            scores = run.score(x, t)
            means = {}
            for k in run.keys:
                x[k], means[k] = predict.update(run.sdes[k], x[k], t, dt, scores[k], run.noise(k))
            x = run.finish_step(x, t + dt)
    return restore(x_T, run.finish_step(means if denoise else x, None, exact=True))


def euler_maruyama_sampler(sde, score_fn, x_T, **kwargs) -> State:
    """Euler–Maruyama on the reverse SDE (a predictor-only :func:`pc_sampler`)."""
    return pc_sampler(sde, score_fn, x_T, predictor="euler_maruyama", corrector="none", **kwargs)


ODE_METHODS = ("euler", "heun", "rk4")


def ode_sampler(
    sde: SDE | dict[str, SDE],
    score_fn: Callable,
    x_T: State,
    *,
    steps: int = 50,
    method: str = "heun",
    eps: float = 1e-3,
    mask: Tensor | dict | None = None,
    condition=None,
    observed=None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> State:
    """Integrate the probability-flow ODE ``dx = [f − ½ g² s] dt`` from ``T`` to ``eps`` with fixed steps.

    ``method`` is ``"euler"`` (1 score evaluation per step), ``"heun"`` (2) or ``"rk4"`` (4). The map
    from ``x_T`` to the sample is deterministic; observed entries follow ``mean(t) y + std(t) z`` with
    one fixed draw ``z``, so inpainting keeps a deterministic trajectory too.
    """
    if method not in ODE_METHODS:
        raise ValueError(f"unknown ODE method {method!r}; choose one of {list(ODE_METHODS)}")
    run = _Run(sde, score_fn, x_T, steps, eps, mask, condition, observed, generator)
    fixed_noise = {k: masked_noise(run.states[k], generator=generator) for k in run.observations.values}

    def velocity(x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        x = run.observations.impose(dict(x), t, run.sdes, fixed_noise)
        scores = run.score(x, t)
        out = {}
        for k in run.keys:
            drift, _ = ReverseSDE(run.sdes[k], None, probability_flow=True).sde_given_score(x[k], t, scores[k])
            out[k] = drift
        return out

    def axpy(x, v, h):
        return {k: x[k] + h * v[k] for k in x}

    x = run.initial(fixed_noise)
    for t, dt in run.schedule(progress):
        k1 = velocity(x, t)
        if method == "euler":
            x = axpy(x, k1, dt)
        elif method == "heun":
            k2 = velocity(axpy(x, k1, dt), t + dt)
            x = {k: x[k] + 0.5 * dt * (k1[k] + k2[k]) for k in x}
        else:
            k2 = velocity(axpy(x, k1, dt / 2), t + dt / 2)
            k3 = velocity(axpy(x, k2, dt / 2), t + dt / 2)
            k4 = velocity(axpy(x, k3, dt), t + dt)
            x = {k: x[k] + dt / 6 * (k1[k] + 2 * k2[k] + 2 * k3[k] + k4[k]) for k in x}
        x = run.finish_step(x, t + dt, fixed_noise)
    return restore(x_T, run.finish_step(x, None, exact=True))


class _Run:
    """Shared bookkeeping of one sampling run: keys, per-key SDEs and masks, time grid, noise, observations."""

    def __init__(self, sde, score_fn, x_T, steps, eps, mask, condition, observed, generator):
        self.states = as_dict(x_T)
        self.keys = list(self.states)
        self.sdes = per_key(sde, self.keys, "sde")
        self.masks = per_key(mask, self.keys, "mask")
        self.mask = mask  # as given: what a mask-taking score function receives
        self.score_fn = wrap_score_fn(score_fn, x_T)
        self.condition = condition
        self.generator = generator
        self.observations = _Observations(observed, self.keys, self.states)
        first = self.states[self.keys[0]]
        self.batch_size, self.device, self.dtype = first.shape[0], first.device, first.dtype
        sde0 = self.sdes[self.keys[0]]
        self.steps = sde0.N if steps is None else int(steps)
        if self.steps < 1:
            raise ValueError(f"steps must be ≥ 1, got {self.steps}")
        if not 0.0 < eps < sde0.T:
            raise ValueError(f"eps must lie in (0, T = {sde0.T}), got {eps}")
        self.T, self.eps = sde0.T, eps

    def schedule(self, progress: bool):
        """Yield ``(t (B,), dt)`` for each step, ``dt < 0``."""
        grid = torch.linspace(self.T, self.eps, self.steps + 1, dtype=torch.float64).tolist()
        for i in tqdm(range(self.steps), desc="sampling", disable=not progress, leave=False):
            t = torch.full((self.batch_size,), grid[i], device=self.device, dtype=self.dtype)
            yield t, grid[i + 1] - grid[i]

    def initial(self, fixed_noise=None) -> dict[str, Tensor]:
        x = {k: self._apply_mask(k, v) for k, v in self.states.items()}
        t = torch.full((self.batch_size,), self.T, device=self.device, dtype=self.dtype)
        return self.observations.impose(x, t, self.sdes, fixed_noise, self.generator)

    def score(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        return self.score_fn(x, t, self.condition, mask=self.mask)

    def noise(self, k: str) -> Tensor:
        return masked_noise(self.states[k], self.masks[k], generator=self.generator)

    def renoise(self, x: dict[str, Tensor], t: Tensor, dt: float) -> dict[str, Tensor]:
        """Move ``x`` from ``t + dt`` back up to ``t`` (``dt < 0``) with the forward kernel."""
        out = {}
        for k, v in x.items():
            a, b = self.sdes[k].transition(t, -dt)
            out[k] = batch_broadcast(a, v) * v + batch_broadcast(torch.sqrt(b), v) * self.noise(k)
        return self.finish_step(out, t)

    def finish_step(self, x: dict[str, Tensor], t: Tensor | None, fixed_noise=None, exact: bool = False):
        """Re-impose observations (at time ``t``) and zero masked entries."""
        x = self.observations.impose(dict(x), t, self.sdes, fixed_noise, self.generator, exact=exact)
        return {k: self._apply_mask(k, v) for k, v in x.items()}

    def _apply_mask(self, k: str, v: Tensor) -> Tensor:
        mask = self.masks[k]
        return v if mask is None else v * mask.to(v.dtype)
