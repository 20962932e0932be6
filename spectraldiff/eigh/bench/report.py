"""Writing a benchmark report: ``eigh_bench.json``, the Markdown tables and the plot."""

from __future__ import annotations

import json
from pathlib import Path

from ...atomic import atomic_write_text
from .plot import plot_report


def write_report(report: dict, out_dir: Path | str) -> dict[str, str]:
    """Write ``eigh_bench.json``, ``eigh_bench.md`` and (with matplotlib) ``eigh_bench.png``.

    Returns the paths written, by kind (``"json"``, ``"md"``, ``"png"``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    json_path = out_dir / "eigh_bench.json"
    atomic_write_text(json.dumps(report, indent=2) + "\n", json_path)
    files["json"] = str(json_path)
    md_path = out_dir / "eigh_bench.md"
    atomic_write_text(render_markdown(report), md_path)
    files["md"] = str(md_path)
    png_path = out_dir / "eigh_bench.png"
    if plot_report(report, png_path):
        files["png"] = str(png_path)
    return files


def render_markdown(report: dict) -> str:
    """The tables of ``eigh_bench.md``."""
    device = report["device"]
    config = report["config"]
    lines = [
        "# Eigendecomposition backends: benchmark",
        "",
        f"- device: `{device['key']}` ({device['type']}), torch {report['environment']['torch']}, "
        f"{report['created']}; 1-min load average before/after: {_loads(report['environment'])}; "
        f"thread settings: {_thread_env(report['environment'])}",
        f"- command: `{report['command']}`" if report.get("command") else "- command: (Python API)",
        f"- peak: {device['peak_source']}",
        f"- timing: {config['timing']}; warm-up {config['warmup']}, ≥ {config['repeats']} repeats and "
        f"≥ {config['min_time']:g} s timed per point (≤ 2000 calls, ≤ --max-seconds), seed {config['seed']}",
        f"- FLOPs: {config['flop_model']}; graphs: {config['graphs']}",
        f"- memory budget per call: {config['memory_budget_bytes'] / 2**30:.2f} GiB "
        f"(working set ≈ {config['workspace_factor']}·B·n²·bytes); points over it run in chunks",
        "",
    ]
    for dtype in config["dtypes"]:
        lines += [
            f"## {dtype}",
            "",
            "| backend | n | B | time [ms] | matrices/s | GFLOP/s | % of peak | note |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        rows = [r for r in report["results"] if r["dtype"] == dtype]
        rows.sort(key=lambda r: (r["n"], r["batch"], config["backends"].index(r["backend"])))
        for r in rows:
            note = r["note"] or ""
            if r["status"] != "ok":
                lines.append(f"| {r['backend']} | {r['n']} | {r['batch']} | – | – | – | – | {r['status']}: {note} |")
                continue
            if r["backend"] == "auto":
                extra = f"chose {r.get('choice')}"
                if r.get("ratio_to_best") is not None:
                    extra += f"; {r['ratio_to_best']:.2f}× best ({r['best_backend']})"
                note = f"{extra}; {note}" if note else extra
            lines.append(
                f"| {r['backend']} | {r['n']} | {r['batch']} | {r['seconds'] * 1e3:.3f} | "
                f"{r['matrices_per_s']:.4g} | {r['gflops']:.3g} | {_percent(r['peak_fraction'])} | {note} |"
            )
        lines.append("")

    auto = [r for r in report["auto"] if r["status"] == "ok" and r.get("ratio_to_best") is not None]
    if auto:
        worst = max(auto, key=lambda r: r["ratio_to_best"])
        within = sum(r["ratio_to_best"] <= 1.05 for r in auto)
        overheads = [r["dispatch_fraction"] for r in auto if r.get("dispatch_fraction") is not None]
        agree = sum(r["choice"] == r["best_backend"] for r in auto)
        lines += [
            "## auto against the best backend",
            "",
            f"Timed alternately with the fastest backend of the first pass: {within} of {len(auto)} points "
            f"within 5%; worst {worst['ratio_to_best']:.3f}× at {worst['dtype']} n={worst['n']} "
            f"B={worst['batch']} (chose {worst['choice']}, best {worst['best_backend']}).",
            f"auto chose the first pass's fastest backend at {agree} of {len(auto)} points.",
        ]
        if overheads:
            lines.append(
                f"Dispatch overhead of auto (resolving the name, measured separately): at most "
                f"{100 * max(overheads):.2f}% of the best backend's time at any point."
            )
        lines.append("")

    entries = report["crossover"]["entries"]
    if entries:
        lines += ["## Crossover (backend for auto per point: the fastest, default kept within 5%)", ""]
        saved = report["crossover"]["saved_to"]
        lines += [f"saved to `{saved}`" if saved else "not saved (run with --save-crossover)", ""]
        for dtype in config["dtypes"]:
            batches = config["batches"]
            lines += [f"{dtype}:", "", "| n \\ B | " + " | ".join(map(str, batches)) + " |",
                      "|---:|" + "---|" * len(batches)]
            table = {(e["n"], e["batch"]): e["backend"] for e in entries if e["dtype"] == dtype}
            for n in config["sizes"]:
                lines.append(f"| {n} | " + " | ".join(table.get((n, b), "–") for b in batches) + " |")
            lines.append("")
    return "\n".join(lines)


def _loads(environment: dict) -> str:
    values = environment.get("load_average") or []
    return " / ".join("n/a" if v is None else f"{v:.2f}" for v in values) or "n/a"


def _thread_env(environment: dict) -> str:
    settings = {k: v for k, v in (environment.get("threads_env") or {}).items() if v is not None}
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.2f}%"
