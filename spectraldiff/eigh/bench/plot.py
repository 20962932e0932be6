"""The benchmark's figure: matrices/s against ``n`` per backend and batch size (needs matplotlib)."""

from __future__ import annotations

import sys
from pathlib import Path


def plot_report(report: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench-eigh: matplotlib is not installed; no plot written", file=sys.stderr)
        return False

    dtypes = report["config"]["dtypes"]
    backends = report["config"]["backends"]
    batches = report["config"]["batches"]
    fig, axes = plt.subplots(1, len(dtypes), figsize=(6.5 * len(dtypes), 4.8), squeeze=False)
    colours = plt.get_cmap("tab10")
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v", "P"]
    for ax, dtype in zip(axes[0], dtypes):
        for i, name in enumerate(backends):
            for j, batch in enumerate(batches):
                rows = sorted(
                    (r for r in report["results"]
                     if r["backend"] == name and r["dtype"] == dtype and r["batch"] == batch and r["status"] == "ok"),
                    key=lambda r: r["n"],
                )
                if rows:
                    ax.plot([r["n"] for r in rows], [r["matrices_per_s"] for r in rows],
                            color=colours(i % 10), linestyle=styles[j % len(styles)],
                            marker=markers[j % len(markers)], markersize=4, label=f"{name}, B={batch}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(report["config"]["sizes"], [str(n) for n in report["config"]["sizes"]])
        ax.set_yscale("log")
        ax.set_xlabel("n (matrix size)")
        ax.set_ylabel("matrices / s")
        ax.set_title(f"{dtype} on {report['device']['key']}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
