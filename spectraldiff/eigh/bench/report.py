"""Writing a benchmark report: ``eigh_bench.json``, the Markdown tables and the plot."""

from __future__ import annotations

import json
from pathlib import Path

from ...atomic import atomic_write_text
from .plot import plot_report
from .spread import FASTER, NOISE_RULE, SAME, SLOWER, describe_ratio


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
        f"- {_provenance(report)}",
        f"- peak: {device['peak_source']}",
        f"- timing: {config['timing']}; warm-up {config['warmup']}, ≥ {config['repeats']} repeats and "
        f"≥ {config['min_time']:g} s timed per point (≤ 2000 calls, ≤ --max-seconds), seed {config['seed']}",
        f"- noise rule: {NOISE_RULE}; matrices/s, GFLOP/s and % of peak are for the fastest call",
        f"- FLOPs: {config['flop_model']}; graphs: {config['graphs']}",
        f"- memory budget per call: {config['memory_budget_bytes'] / 2**30:.2f} GiB "
        f"(working set ≈ {config['workspace_factor']}·B·n²·bytes); points over it run in chunks",
        "",
    ]
    for dtype in config["dtypes"]:
        lines += [
            f"## {dtype}",
            "",
            "| backend | n | B | min [ms] | median [ms] | IQR [ms] | std [ms] | matrices/s | GFLOP/s | % of peak "
            "| note |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        rows = [r for r in report["results"] if r["dtype"] == dtype]
        rows.sort(key=lambda r: (r["n"], r["batch"], config["backends"].index(r["backend"])))
        for r in rows:
            note = r["note"] or ""
            if r["status"] != "ok":
                lines.append(f"| {r['backend']} | {r['n']} | {r['batch']} |{' – |' * 7} {r['status']}: {note} |")
                continue
            if r["backend"] == "auto":
                extra = f"chose {r.get('choice')}"
                if r.get("ratio_to_best") is not None:
                    extra += f"; vs best ({r['best_backend']}): {describe_ratio(r['ratio_to_best'], r['vs_best'])}"
                note = f"{extra}; {note}" if note else extra
            lines.append(
                f"| {r['backend']} | {r['n']} | {r['batch']} | {_ms(r['seconds'])} | {_ms(r['median_seconds'])} | "
                f"{_ms(r['iqr_seconds'])} | {_ms(r['std_seconds'])} | "
                f"{r['matrices_per_s']:.4g} | {r['gflops']:.3g} | {_percent(r['peak_fraction'])} | {note} |"
            )
        lines.append("")

    auto = [r for r in report["auto"] if r["status"] == "ok" and r.get("ratio_to_best") is not None]
    if auto:
        verdicts = {v: [r for r in auto if r["vs_best"] == v] for v in (SAME, FASTER, SLOWER)}
        overheads = [r["dispatch_fraction"] for r in auto if r.get("dispatch_fraction") is not None]
        agree = sum(r["choice"] == r["best_backend"] for r in auto)
        lines += [
            "## auto against the best backend",
            "",
            f"Timed alternately with the fastest backend of the first pass and compared by the noise rule, "
            f"auto was the same within noise at {len(verdicts[SAME])} of {len(auto)} points, faster at "
            f"{len(verdicts[FASTER])} and slower at {len(verdicts[SLOWER])}.",
        ]
        for r in sorted(verdicts[SLOWER], key=lambda r: -r["ratio_to_best"]):
            lines.append(
                f"- slower beyond noise: {r['dtype']} n={r['n']} B={r['batch']}: median "
                f"{_ms(r['median_seconds'])} ms (IQR {_ms(r['iqr_seconds'])}) against {r['best_backend']} "
                f"{_ms(r['best_median_seconds'])} ms (IQR {_ms(r['best_iqr_seconds'])}), {r['ratio_to_best']:.3f}×, "
                f"chose {r['choice']}"
            )
        lines.append(f"auto chose the first pass's fastest backend at {agree} of {len(auto)} points.")
        if overheads:
            lines.append(
                f"Dispatch overhead of auto (resolving the name, measured separately): at most "
                f"{100 * max(overheads):.2f}% of the best backend's median time at any point."
            )
        lines.append("")

    entries = report["crossover"]["entries"]
    if entries:
        lines += ["## Crossover (backend for auto per point: the fastest; the default kept within 5% or within "
                  "noise)", ""]
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


def _provenance(report: dict) -> str:
    machine, commit = report.get("machine_info") or {}, report.get("commit_info") or {}
    revision = "commit unknown"
    if commit.get("id"):
        revision = f"commit `{commit['id'][:10]}`" + (" (dirty work tree)" if commit.get("dirty") else "")
    gpu = f", GPU {machine['cuda_device']}" if machine.get("cuda_device") else ""
    return (f"machine: {machine.get('node')}, {machine.get('cpu')} ({machine.get('cpu_count')} logical cores)"
            f"{gpu}; torch {machine.get('torch')}, numpy {machine.get('numpy')}; {revision}")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.2f}%"
