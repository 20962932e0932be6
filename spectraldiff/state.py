"""Diffusion states: one tensor, or several diffused together under one time.

A joint model of node features and eigenvalues diffuses ``{"features": X, "eigenvalues": λ}``
with one shared ``t``; a plain model diffuses a single tensor. Losses and samplers accept either.
Internally everything is a ``dict[str, Tensor]``; a bare tensor travels under the key ``"x"``.
Per-key companions (SDEs, masks, observed values) may be given once for all keys or as a dict.

Score functions are called ``score_fn(x, t, condition)``; one that declares a ``mask`` parameter is
called ``score_fn(x, t, condition, mask=mask)`` with the mask the sampler or loss was given, so a
score function built once serves every minibatch (a mask captured in a closure would not).
"""

from __future__ import annotations

import inspect
from typing import Callable, Mapping, TypeVar

from torch import Tensor
from torch.nn import Module

__all__ = ["State", "as_dict", "per_key", "restore", "accepts_mask", "wrap_score_fn"]

State = Tensor | Mapping[str, Tensor]
T = TypeVar("T")

SINGLE_KEY = "x"


def as_dict(state: State) -> dict[str, Tensor]:
    """``state`` as a dict; a bare tensor becomes ``{"x": tensor}``."""
    if isinstance(state, Tensor):
        return {SINGLE_KEY: state}
    if not state:
        raise ValueError("a diffusion state needs at least one tensor")
    return dict(state)


def restore(template: State, values: Mapping[str, T]) -> T | dict[str, T]:
    """Undo :func:`as_dict`: a bare tensor in ``template`` gives back the single value."""
    if isinstance(template, Tensor):
        return values[SINGLE_KEY]
    return dict(values)


def per_key(value, keys, name: str) -> dict:
    """Spread a companion over the state's keys: a dict must name exactly those keys."""
    if isinstance(value, Mapping):
        missing = set(keys) - set(value)
        if missing:
            raise ValueError(f"{name} has no entry for state keys {sorted(missing)}")
        return {k: value[k] for k in keys}
    return {k: value for k in keys}


def accepts_mask(fn: Callable) -> bool:
    """Whether ``fn`` declares a parameter called ``mask`` that can be given by keyword (for a
    ``torch.nn.Module``, its ``forward``: the module's own ``__call__`` only shows ``*args, **kwargs``)."""
    if isinstance(fn, Module):
        fn = fn.forward
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False
    mask = parameters.get("mask")
    return mask is not None and mask.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def wrap_score_fn(score_fn: Callable, template: State) -> Callable:
    """The internal signature ``(state: dict, t, condition=None, mask=None) -> dict`` for any score function.

    A single-tensor score function gets the tensor under ``"x"`` and its result is put back there;
    ``mask`` (as the caller gave it: a tensor, a dict or None) reaches ``score_fn`` only if it
    declares a ``mask`` parameter (:func:`accepts_mask`), so older three-argument functions are
    called exactly as before.
    """
    single = isinstance(template, Tensor)
    takes_mask = accepts_mask(score_fn)

    def dict_score(state: dict[str, Tensor], t: Tensor, condition=None, mask=None) -> dict[str, Tensor]:
        x = state[SINGLE_KEY] if single else state
        out = score_fn(x, t, condition, mask=mask) if takes_mask else score_fn(x, t, condition)
        return {SINGLE_KEY: out} if single else out

    return dict_score
