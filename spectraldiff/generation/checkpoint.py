"""A trained graph generator on disk: written atomically, read without running code, resumable exactly.

``model.pt`` (what ``generate`` writes beside ``metrics.json``) is a plain dict of tensors and plain
values, so it loads with ``torch.load(..., weights_only=True)``:

* ``format``, ``model`` (registry name), ``config`` (:meth:`GenerationConfig.to_dict`);
* ``graphs`` (:func:`graphs_fingerprint` of the training graphs: sampling reads node counts, and the
  eigenvalue-only model eigenvectors, from them, so a model is only loaded beside its own graphs);
* ``network`` and ``ema_network`` (state dicts; ``None`` without EMA);
* what continuing needs: ``optimizer`` (Adam state), ``ema_updates``, ``epochs_trained``,
  ``training_seconds``, ``generator`` (the state of the generator that orders batches and draws the
  training noise) and ``call_epochs`` (``[epochs of the fit call, epochs it had run]``: a file saved
  mid-fit by ``fit(checkpoint_every=...)`` knows what is left; files without it hold finished calls);
* ``decoder_fit`` (``spectral_vectors``, only in a file saved during a new decoder's training by
  ``fit_decoder(checkpoint_every=...)``): that training's ``epochs``, the epochs ``done``, its Adam
  ``optimizer`` state, ``generator`` state and ``ema_updates``.

Training ``a`` epochs, saving, loading and continuing ``b`` epochs gives the weights of one run of
``a + b`` epochs (same seed, same machine, the default constant learning rate: a cosine schedule runs
once per training call, so the continued leg restarts it). A file saved mid-fit is finished exactly
with either schedule: ``fit(resume=True, finish=True)`` runs the rest of the interrupted call. Only
the data-derived tensors (eigenpairs, masks) are not stored: :func:`~.models.load_generator` (which
knows the models by name) rebuilds them from the graphs, which is cheap and keeps files small.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from typing import Sequence

import networkx as nx

from ..atomic import atomic_torch_save
from ..safe_pickle import load_weights_only

__all__ = ["CHECKPOINT_FORMAT", "graphs_fingerprint", "save_generator", "read_checkpoint"]

CHECKPOINT_FORMAT = 1


def graphs_fingerprint(graphs: Sequence[nx.Graph]) -> str:
    """``"sha256:<hex>"`` of a graph list: per graph, in order, its node count and its edges between
    node positions (node labels themselves do not matter, their order does)."""
    h = hashlib.sha256()
    for g in graphs:
        position = {node: i for i, node in enumerate(g.nodes)}
        edges = sorted(tuple(sorted((position[u], position[v]))) for u, v in g.edges)
        h.update(repr((g.number_of_nodes(), edges)).encode("utf8"))
    return "sha256:" + h.hexdigest()


def save_generator(model, path: str | os.PathLike) -> None:
    """Write a fitted :class:`~.generator.GraphGenerator` to ``path`` atomically (schema: module doc)."""
    state = model.training_state()
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": model.name,
        "config": model.config.to_dict(),
        "network": model.network.state_dict(),
        "ema_network": model.ema_network.state_dict() if model.ema_network is not None else None,
        **state,
    }
    atomic_torch_save(payload, path)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The dict a ``model.pt`` holds, loaded with ``weights_only=True``.

    Raises
    ------
    ValueError
        Naming the file: missing, not a generator checkpoint, or holding anything but tensors and
        plain values (a crafted pickle is refused, never run).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        hint = f" (a run folder: give its model, {path / 'model.pt'})" if (path / "model.pt").is_file() else ""
        raise ValueError(f"no saved generator at {path}{hint}")
    payload = load_weights_only(path, "saved generator")
    needed = ("format", "model", "config", "graphs", "network", "optimizer", "epochs_trained")
    if not isinstance(payload, dict) or any(key not in payload for key in needed):
        raise ValueError(f"{path}: not a saved generator (a model.pt written by `generate` holds {list(needed)})")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: saved generator format {payload['format']}, this version reads {CHECKPOINT_FORMAT}")
    return payload
