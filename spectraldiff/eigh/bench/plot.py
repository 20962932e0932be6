"""The benchmark's figure: median matrices/s against ``n`` with IQR error bars (needs matplotlib).

One panel per dtype (shared y axis, so the dtypes compare at a glance); colour is the backend, marker
and line style the batch size ``B``. The two legends (backend, ``B``) sit to the right of the panels,
outside the data. A point is ``B / median`` and its bar spans ``B / q3`` to ``B / q1``: the
interquartile range of the timed repeats, turned into throughput.
"""

from __future__ import annotations

import sys
from pathlib import Path

_STYLES = ["-", "--", ":", "-."]
_MARKERS = ["o", "s", "^", "D", "v", "P"]


def build_figure(report: dict):
    """The figure of ``report`` (a ``matplotlib.figure.Figure``, not attached to pyplot).

    One data axes per dtype in ``report["config"]["dtypes"]``; raises ``ImportError`` without
    matplotlib.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    config = report["config"]
    dtypes, backends, batches = config["dtypes"], config["backends"], config["batches"]
    colours = colormaps["tab10"]
    fig = Figure(figsize=(5.5 * len(dtypes) + 2.6, 5.0), layout="constrained")
    axes = fig.subplots(1, len(dtypes), squeeze=False, sharey=True)[0]
    for ax, dtype in zip(axes, dtypes):
        for i, name in enumerate(backends):
            for j, batch in enumerate(batches):
                rows = sorted(
                    (r for r in report["results"]
                     if r["backend"] == name and r["dtype"] == dtype and r["batch"] == batch and r["status"] == "ok"),
                    key=lambda r: r["n"],
                )
                if not rows:
                    continue
                rate = [batch / _median(r) for r in rows]
                low = [y - batch / (r.get("q3_seconds") or _median(r)) for y, r in zip(rate, rows)]
                high = [batch / (r.get("q1_seconds") or _median(r)) - y for y, r in zip(rate, rows)]
                ax.errorbar([r["n"] for r in rows], rate, yerr=[low, high], color=colours(i % 10),
                            linestyle=_STYLES[j % len(_STYLES)], marker=_MARKERS[j % len(_MARKERS)],
                            markersize=5, linewidth=1.3, capsize=3, elinewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_xticks(config["sizes"], [str(n) for n in config["sizes"]])
        ax.set_yscale("log")
        ax.set_xlabel("n (matrix size)", fontsize=11)
        ax.set_title(dtype, fontsize=12)
        ax.grid(True, which="both", alpha=0.3)
        ax.tick_params(labelsize=10)
    axes[0].set_ylabel("matrices / s (median; bars: IQR of the repeats)", fontsize=11)

    backend_handles = [Line2D([], [], color=colours(i % 10), linewidth=2.5, label=name)
                       for i, name in enumerate(backends)]
    batch_handles = [Line2D([], [], color="0.3", linestyle=_STYLES[j % len(_STYLES)],
                            marker=_MARKERS[j % len(_MARKERS)], label=f"B = {batch}")
                     for j, batch in enumerate(batches)]
    first = fig.legend(handles=backend_handles, title="backend", loc="upper left", bbox_to_anchor=(1.0, 1.0),
                       fontsize=10, title_fontsize=11, frameon=False)
    fig.add_artist(first)
    fig.legend(handles=batch_handles, title="batch", loc="lower left", bbox_to_anchor=(1.0, 0.0),
               fontsize=10, title_fontsize=11, frameon=False)
    fig.suptitle(_subtitle(report), fontsize=10)
    return fig


def plot_report(report: dict, path: Path) -> bool:
    """Write :func:`build_figure` to ``path``; ``False`` (and a line on stderr) without matplotlib."""
    try:
        fig = build_figure(report)
    except ImportError:
        print("bench-eigh: matplotlib is not installed; no plot written", file=sys.stderr)
        return False
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return True


def _median(row: dict) -> float:
    return row.get("median_seconds") or row["seconds"]


def _subtitle(report: dict) -> str:
    commit = (report.get("commit_info") or {}).get("id")
    dirty = (report.get("commit_info") or {}).get("dirty")
    revision = f"commit {commit[:10]}{' (dirty)' if dirty else ''}" if commit else "commit unknown"
    return f"batched_eigh throughput on {report['device']['key']} — {revision}, {report.get('created', '')}"
