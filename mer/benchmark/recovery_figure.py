"""Real against recovered features in two dimensions: ``mer plot recovery RUN [RUN...] --out DIR``.

The figure of GSDNet's Fig. 3 and IMDer's Fig. 3 (and, with a conditional and an unconditional run
side by side, IMDer's Fig. 4): per run (a row) and modality (a column), the t-SNE embedding of the
*dropped* entries' real features (circles) and of their recoveries (crosses), coloured by the
utterance's label. Recoveries that land among the real points of the same colour keep what the
classifier needs; a cloud apart from them, or one colour smeared over all, does not.

Input: :meth:`mer.training.TrainedModel.recover` outputs. The embedding is scikit-learn's t-SNE on
real and recovered points together (one embedding per panel, so the two share coordinates); at most
``max_points`` dropped entries per panel, drawn with ``seed``.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np

from spectraldiff.atomic import atomic_write, atomic_write_json

__all__ = ["plot_recovery", "embed_recovery"]


def embed_recovery(real: np.ndarray, recovered: np.ndarray, *, seed: int = 0,
                   perplexity: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """2-D t-SNE coordinates ``((n, 2), (n, 2))`` of ``real`` and ``recovered`` ``(n, d)`` embedded
    together."""
    from sklearn.manifold import TSNE

    points = np.concatenate([real, recovered])
    perplexity = min(perplexity, max(2.0, (len(points) - 1) / 3))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)
    return xy[: len(real)], xy[len(real):]


def plot_recovery(recoveries: Sequence[tuple[str, Mapping[str, Any]]], out_dir: str | os.PathLike, *,
                  max_points: int = 400, seed: int = 0) -> dict:
    """Draw ``out_dir/recovery.png`` and write ``out_dir/recovery.json``.

    Parameters
    ----------
    recoveries : sequence of (label, recover output)
        One row each: ``label`` names the run, the mapping is what
        :meth:`~mer.training.TrainedModel.recover` returns.
    max_points : int
        Dropped entries per panel, at most (drawn without replacement with ``seed``).

    Returns
    -------
    dict
        ``{label: {modality: {"points", "recovery_mse"}}}`` (also in ``recovery.json``): the entries
        drawn and the per-feature MSE of all dropped entries of that modality.

    Raises
    ------
    ValueError
        When no run drops any entry (nothing to draw).
    """
    if not recoveries:
        raise ValueError("give at least one recovery to plot")
    modalities = [str(m) for m in recoveries[0][1]["modalities"]]
    rng = np.random.default_rng(seed)
    panels, summary = [], {}
    for label, out in recoveries:
        summary[label] = {}
        for j, m in enumerate(modalities):
            dropped = np.flatnonzero(~np.asarray(out["availability"])[:, j])
            if len(dropped) == 0:
                panels.append((label, m, None))
                continue
            real, recovered = out["real"][m][dropped], out["recovered"][m][dropped]
            mse = float(((recovered - real) ** 2).mean())
            pick = np.sort(rng.choice(len(dropped), size=min(max_points, len(dropped)), replace=False))
            xy_real, xy_rec = embed_recovery(real[pick], recovered[pick], seed=seed)
            panels.append((label, m, (xy_real, xy_rec, np.asarray(out["label"])[dropped][pick], mse)))
            summary[label][m] = {"points": int(len(pick)), "recovery_mse": mse}
    if all(panel[2] is None for panel in panels):
        raise ValueError("no modality is missing anywhere under these masks: nothing was recovered; "
                         "choose a missing rate or a pattern that drops one")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(recoveries), len(modalities)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    labels = np.concatenate([np.asarray(out["label"]) for _, out in recoveries])
    vmin, vmax = float(np.min(labels)), float(np.max(labels))
    legend_drawn = False
    for ax, (label, m, panel) in zip(axes.flat, panels):
        ax.set_xticks([])
        ax.set_yticks([])
        if panel is None:
            ax.set_title(f"{label}: {m} (never missing)", fontsize="small")
            continue
        xy_real, xy_rec, colour, mse = panel
        ax.scatter(*xy_real.T, c=colour, cmap="coolwarm", vmin=vmin, vmax=vmax, s=9, marker="o",
                   alpha=0.7, label="real")
        ax.scatter(*xy_rec.T, c=colour, cmap="coolwarm", vmin=vmin, vmax=vmax, s=12, marker="x",
                   label="recovered")
        ax.set_title(f"{label}: {m}, MSE {mse:.3f}", fontsize="small")
        if not legend_drawn:  # once, on the first panel with points
            ax.legend(fontsize="x-small", loc="best")
            legend_drawn = True
    fig.suptitle("t-SNE of dropped entries: real (o) and recovered (x), coloured by label", fontsize="small")
    fig.tight_layout()
    folder = pathlib.Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(folder / "recovery.png", lambda handle: fig.savefig(handle, format="png", dpi=110), "wb")
    finally:
        plt.close(fig)
    atomic_write_json(summary, folder / "recovery.json")
    return summary
