"""Denoising score matching for single or joint states (e.g. node features and eigenvalues).

For ``x_t = mean(t) x_0 + std(t) z`` the kernel's score is ``−z / std(t)``, so the loss regresses the
model score ``s`` onto it. With ``λ(t)`` the weighting,

``L = E_t E_z [ λ(t) ‖s(x_t, t) + z / std(t)‖² ]``, averaged over the entries selected by the mask.

Weightings (``weighting=``):

* ``"sigma2"`` — ``λ(t) = std(t)²``: ``‖std(t) s + z‖²``, the usual choice (and IMDer's loss).
* ``"likelihood"`` — ``λ(t) = g(t)²``: bounds the negative log-likelihood (Song et al. 2021).
* ``"none"`` — ``λ(t) = 1``.
* ``"data"`` — ``λ(t) = std(t)⁴ / mean(t)²``: ``‖x̂_0 − x_0‖²`` with ``x̂_0 = (x_t + std² s) / mean`` the
  one-step (Tweedie) denoised estimate, the loss of a network that predicts ``x̂_0``. Unlike
  ``"sigma2"`` it does not down-weight large ``t``, where ``mean(t)`` is small.

States and their ``mask``/``sde`` companions are either tensors or dicts of them (see :mod:`.state`);
all keys share one time ``t``, and the loss is returned per key.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .noising import perturb
from .sde import SDE, batch_broadcast
from .state import State, as_dict, per_key, restore, wrap_score_fn

__all__ = ["dsm_loss", "sample_time", "WEIGHTINGS"]

WEIGHTINGS = ("sigma2", "likelihood", "none", "data")


def sample_time(batch_size: int, sde: SDE, *, eps: float | None = None, device=None, dtype=torch.float32,
                generator: torch.Generator | None = None) -> Tensor:
    """Times ``(B,)`` uniform on ``[eps, T]`` (``eps`` defaults to the SDE's)."""
    eps = sde.eps if eps is None else eps
    u = torch.rand(batch_size, generator=generator, device=device, dtype=dtype)
    return eps + (sde.T - eps) * u


def dsm_loss(
    score_fn: Callable,
    sde: SDE | dict[str, SDE],
    x0: State,
    *,
    mask: Tensor | dict[str, Tensor | None] | None = None,
    condition=None,
    weighting: str = "sigma2",
    t: Tensor | None = None,
    eps: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor | dict[str, Tensor]:
    """Denoising score-matching loss.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x_t, t, condition)`` → score with the shape of ``x_t`` (for a dict state, a dict with
        the same keys); one with a ``mask`` parameter is called ``score_fn(x_t, t, condition, mask=mask)``.
    sde : SDE or dict of SDE
        Forward process, one for all keys or one per key.
    x0 : Tensor or dict of Tensor
        Clean data ``(B, ...)``.
    mask : Tensor or dict, optional
        Broadcastable to each state; False entries (padding, or what the loss should ignore) get no noise,
        stay zero and do not count.
    condition : any, optional
        Passed to ``score_fn`` unchanged.
    weighting : {"sigma2", "likelihood", "none", "data"}
    t : Tensor, optional
        ``(B,)`` times; drawn uniformly on ``[eps, T]`` when omitted.

    Returns
    -------
    Tensor or dict of Tensor
        The scalar loss (per key for a dict state): the weighted squared error averaged over the
        selected entries of the whole batch.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; choose one of {list(WEIGHTINGS)}")
    states = as_dict(x0)
    keys = list(states)
    sdes = per_key(sde, keys, "sde")
    masks = per_key(mask, keys, "mask")
    first = states[keys[0]]
    if t is None:
        t = sample_time(first.shape[0], sdes[keys[0]], eps=eps, device=first.device, dtype=first.dtype,
                        generator=generator)

    noisy, noises = {}, {}
    for k in keys:
        noisy[k], noises[k] = perturb(states[k], t, sdes[k], masks[k], generator=generator)
    scores = wrap_score_fn(score_fn, x0)(noisy, t, condition, mask=mask)

    losses = {}
    for k in keys:
        _, std = sdes[k].marginal_prob(torch.ones_like(t), t)
        if weighting == "data":
            error = sdes[k].data_from_score(scores[k], noisy[k], t) - states[k]
        elif weighting == "sigma2":
            error = batch_broadcast(std, scores[k]) * scores[k] + noises[k]
        else:
            error = scores[k] + noises[k] / batch_broadcast(std, noises[k])
            if weighting == "likelihood":
                _, g = sdes[k].sde(torch.zeros_like(noisy[k]), t)
                error = error * batch_broadcast(g, error)
        losses[k] = _masked_mean(error**2, masks[k])
    return restore(x0, losses)


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype).expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)
