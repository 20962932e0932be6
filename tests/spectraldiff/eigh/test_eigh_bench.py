"""The bench-eigh harness: files, documented keys, consistent figures, spread and the noise rule,
provenance, --compare, chunking and skipping."""

import json
import math

import pytest
import torch

import spectraldiff.eigh.dispatch as dispatch
from spectraldiff import cli
from spectraldiff.eigh.bench import (
    REFERENCE, WORKSPACE_FACTOR, benchmark_eigh, build_figure, commit_info, crossover_table, device_peak_gflops,
    noise_verdict, render_markdown, spread,
)

REPORT_KEYS = {
    "format", "command", "created", "machine_info", "commit_info", "environment", "device", "config", "results",
    "auto", "crossover",
}
SPREAD_KEYS = {"seconds", "median_seconds", "q1_seconds", "q3_seconds", "iqr_seconds", "mean_seconds", "std_seconds"}
ROW_KEYS = {
    "backend", "dtype", "n", "batch", "status", "repeats", "chunks", "matrices_per_s", "gflops", "peak_fraction",
    "note",
} | SPREAD_KEYS
MACHINE_KEYS = {"node", "cpu", "cpu_count", "torch", "numpy", "python", "cuda_device"}
COMMIT_KEYS = {"id", "dirty", "branch", "error"}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(dispatch.CACHE_ENV, str(tmp_path / "cache"))
    dispatch.clear_cache()
    yield tmp_path / "cache"
    dispatch.clear_cache()


def tiny(**overrides):
    options = dict(sizes=[4, 5], batches=[1, 3], backends=["torch", "jacobi"], repeats=2, min_time=0.0, progress=False)
    options.update(overrides)
    return benchmark_eigh(**options)


def test_cli_tiny_grid_writes_json_markdown_and_plot(tmp_path, private_cache):
    out = tmp_path / "bench"
    argv = [
        "bench-eigh", "--sizes", "4,7", "--batches", "1,3", "--backends", "torch,jacobi,cupy,auto",
        "--dtype", "float32,float64", "--out", str(out), "--repeats", "2", "--min-time", "0",
        "--save-crossover", "--no-progress",
    ]
    assert cli.main(argv) == 0
    report = json.loads((out / "eigh_bench.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert report["format"] == "spectraldiff.eigh_bench/2"
    assert MACHINE_KEYS <= set(report["machine_info"]) and COMMIT_KEYS <= set(report["commit_info"])
    assert report["machine_info"]["cpu_count"] >= 1 and report["machine_info"]["torch"] == torch.__version__
    assert report["machine_info"]["cuda_device"] is None  # a CPU run names no GPU
    commit = report["commit_info"]
    assert (commit["id"] is None) == (commit["error"] is not None)
    if commit["id"] is not None:
        assert len(commit["id"]) == 40 and isinstance(commit["dirty"], bool)
    assert report["device"]["key"] == dispatch.device_key("cpu")
    assert report["config"]["backends"] == [REFERENCE, "torch", "jacobi", "cupy", "auto"]

    rows = report["results"]
    assert all(ROW_KEYS <= set(r) for r in rows)
    assert len(rows) == 2 * 2 * 2 * 5  # dtypes × sizes × batches × (reference + 3 backends + auto)
    for r in rows:
        if r["backend"] == "cupy" and not torch.cuda.is_available():
            assert r["status"] == "unavailable" and "CUDA" in r["note"]
            continue
        assert r["status"] == "ok", r
        assert r["seconds"] > 0 and r["repeats"] >= 2
        assert r["seconds"] <= r["q1_seconds"] <= r["median_seconds"] <= r["q3_seconds"]
        assert r["iqr_seconds"] == pytest.approx(r["q3_seconds"] - r["q1_seconds"]) and r["iqr_seconds"] >= 0
        assert r["std_seconds"] >= 0 and r["mean_seconds"] >= r["seconds"]
        assert r["matrices_per_s"] == pytest.approx(r["batch"] / r["seconds"])
        assert r["gflops"] == pytest.approx(9 * r["n"] ** 3 * r["batch"] / r["seconds"] / 1e9)
        if r["peak_fraction"] is not None:
            assert 0 < r["peak_fraction"] < 1

    saved = report["crossover"]["saved_to"]
    assert saved == str(private_cache / "eigh_crossover.json")
    table = dispatch.load_crossover()[dispatch.device_key("cpu")]
    assert len(table.entries) == 8 and set(table.entries.values()) <= {"torch", "jacobi"}

    assert len(report["auto"]) == 8
    for r in report["auto"]:
        assert r["choice"] == table.entries[(r["dtype"], r["n"], r["batch"])]  # auto used the saved table
        assert r["best_backend"] in ("torch", "jacobi") and r["ratio_to_best"] > 0
        assert r["ratio_to_best"] == pytest.approx(r["median_seconds"] / r["best_median_seconds"])
        assert r["vs_best"] == noise_verdict(r["median_seconds"], r["iqr_seconds"], r["best_median_seconds"],
                                             r["best_iqr_seconds"])
        assert 0 <= r["dispatch_overhead_s"] < 1e-3

    markdown = (out / "eigh_bench.md").read_text()
    assert ("| backend | n | B | min [ms] | median [ms] | IQR [ms] | std [ms] | matrices/s | GFLOP/s | % of peak "
            "| note |") in markdown
    assert "noise rule:" in markdown
    assert (f"commit `{commit['id'][:10]}`" if commit["id"] else "commit unknown") in markdown
    assert "## auto against the best backend" in markdown and "## Crossover" in markdown
    assert (out / "eigh_bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_crossover_keeps_the_default_unless_another_backend_is_clearly_faster():
    def row(backend, n, seconds):
        return {"backend": backend, "dtype": "float32", "n": n, "batch": 64, "status": "ok", "seconds": seconds}

    results = [row("torch", 8, 1.00), row("jacobi", 8, 0.97), row("torch", 16, 1.00), row("jacobi", 16, 0.90)]
    table = crossover_table(results, ["torch", "jacobi"], "cpu")
    assert table == {("float32", 8, 64): "torch", ("float32", 16, 64): "jacobi"}


def test_points_over_the_memory_budget_run_in_chunks():
    per_matrix = WORKSPACE_FACTOR * 5 * 5 * 4
    report = tiny(sizes=[5], batches=[7], memory_budget_bytes=3 * per_matrix)
    for r in report["results"]:
        assert r["status"] == "ok" and r["chunks"] == 3 and r["note"].startswith("chunked")


def test_point_with_one_matrix_over_budget_is_skipped_and_says_so():
    report = tiny(sizes=[64], batches=[1], memory_budget_bytes=1000)
    assert {r["status"] for r in report["results"]} == {"skipped"}
    assert all("memory budget" in r["note"] for r in report["results"])


def test_slow_points_are_skipped_by_prediction():
    report = tiny(sizes=[4], batches=[1, 1000], max_seconds=1e-9)
    assert all(r["status"] == "skipped" and "max-seconds" in r["note"] for r in report["results"])


def test_cpu_peak_comes_from_flags_and_states_its_assumption():
    peaks, source = device_peak_gflops("cpu")
    if peaks["float32"] is None:
        pytest.skip(f"no CPU clock here: {source}")
    assert peaks["float32"] == pytest.approx(2 * peaks["float64"])
    assert "FMA" in source or "SSE2" in source or "AVX" in source


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown backend 'magma'"):
        tiny(backends=["magma"])
    with pytest.raises(ValueError, match="unknown dtype"):
        tiny(dtypes=["float16"])
    assert cli.main(["bench-eigh", "--sizes", "4,x", "--out", str(tmp_path)]) == 2
    assert "--sizes expects comma-separated integers" in capsys.readouterr().err


def test_spread_of_known_samples_is_the_quartiles_and_sample_std():
    stats = spread([0.005, 0.001, 0.004, 0.002, 0.003])
    assert stats["seconds"] == 0.001 and stats["median_seconds"] == 0.003
    assert stats["q1_seconds"] == pytest.approx(0.002) and stats["q3_seconds"] == pytest.approx(0.004)
    assert stats["iqr_seconds"] == pytest.approx(0.002)
    assert stats["std_seconds"] == pytest.approx(math.sqrt(2.5) * 1e-3)
    single = spread([0.5])
    assert single["iqr_seconds"] == 0 and single["std_seconds"] == 0 and single["median_seconds"] == 0.5


@pytest.mark.parametrize("median,iqr,reference,reference_iqr,expected", [
    (1.22, 0.30, 1.00, 0.05, "same"),    # 0.22 apart, within the larger IQR (0.30): noise
    (1.00, 0.05, 1.22, 0.30, "same"),    # the rule is symmetric
    (1.50, 0.50, 1.00, 0.25, "same"),    # exactly at the bar still counts as the same
    (1.22, 0.05, 1.00, 0.10, "slower"),  # 0.22 apart, beyond both IQRs
    (0.80, 0.05, 1.00, 0.10, "faster"),
    (1.00, 0.00, 1.00, 0.00, "same"),
])
def test_noise_rule_counts_a_difference_only_beyond_the_larger_iqr(median, iqr, reference, reference_iqr, expected):
    assert noise_verdict(median, iqr, reference, reference_iqr) == expected


def test_noise_rule_refuses_a_negative_iqr():
    with pytest.raises(ValueError, match="negative"):
        noise_verdict(1.0, -0.1, 1.0, 0.1)


def test_auto_on_the_best_solver_within_noise_is_reported_as_the_same():
    report = synthetic_report()
    row = report["auto"][0]
    row.update(choice="torch", best_backend="torch", ratio_to_best=1.22, vs_best="same", median_seconds=1.22e-3,
               iqr_seconds=0.3e-3, best_median_seconds=1.0e-3, best_iqr_seconds=0.05e-3)
    markdown = render_markdown(report)
    assert "≈ (1.22×, same within noise)" in markdown and "1.22× best" not in markdown
    assert "same within noise at 1 of 1 points, faster at 0 and slower at 0" in markdown


def test_crossover_keeps_the_default_when_the_difference_is_within_noise():
    def row(backend, seconds, median, iqr):
        return {"backend": backend, "dtype": "float32", "n": 16, "batch": 64, "status": "ok", "seconds": seconds,
                "median_seconds": median, "iqr_seconds": iqr}

    noisy = [row("torch", 1.0, 1.3, 0.4), row("jacobi", 0.8, 1.1, 0.1)]
    assert crossover_table(noisy, ["torch", "jacobi"], "cpu") == {("float32", 16, 64): "torch"}
    clear = [row("torch", 1.0, 1.3, 0.05), row("jacobi", 0.8, 1.1, 0.05)]
    assert crossover_table(clear, ["torch", "jacobi"], "cpu") == {("float32", 16, 64): "jacobi"}


def test_commit_info_outside_a_work_tree_is_null_and_says_why(tmp_path):
    info = commit_info(tmp_path)
    assert info["id"] is None and info["dirty"] is None and info["error"]


def synthetic_report(cells=(), dtypes=("float32",), fmt="spectraldiff.eigh_bench/2", auto=True):
    """A report with the given ``(backend, dtype, n, batch, median, iqr)`` cells (seconds), plus one
    auto row unless ``auto`` is false; enough for rendering, plotting and comparing."""
    results = []
    for backend, dtype, n, batch, median, iqr in cells:
        results.append({"backend": backend, "dtype": dtype, "n": n, "batch": batch, "status": "ok",
                        "seconds": median - iqr, "median_seconds": median, "q1_seconds": median - iqr / 2,
                        "q3_seconds": median + iqr / 2, "iqr_seconds": iqr, "mean_seconds": median,
                        "std_seconds": iqr, "repeats": 5, "chunks": 1, "matrices_per_s": batch / (median - iqr),
                        "gflops": 1.0, "peak_fraction": None, "note": ""})
    auto_rows = []
    if auto:
        auto_rows = [dict(results[0] if results else {
            "backend": "auto", "dtype": dtypes[0], "n": 4, "batch": 1, "status": "ok", "seconds": 1e-3,
            "median_seconds": 1e-3, "q1_seconds": 1e-3, "q3_seconds": 1e-3, "iqr_seconds": 0.0, "mean_seconds": 1e-3,
            "std_seconds": 0.0, "repeats": 5, "chunks": 1, "matrices_per_s": 1e3, "gflops": 1.0, "peak_fraction": None,
            "note": ""}, backend="auto", choice="torch", best_backend="torch", best_seconds=1e-3,
            best_median_seconds=1e-3, best_iqr_seconds=0.0, ratio_to_best=1.0, vs_best="same",
            dispatch_overhead_s=0.0, dispatch_fraction=0.0)]
        results.append(auto_rows[0])
    return {
        "format": fmt, "command": None, "created": "2024-01-01T00:00:00+00:00",
        "machine_info": {"node": "host", "cpu": "cpu", "cpu_count": 2, "torch": "2.2", "numpy": "1.26",
                         "cuda_device": None},
        "commit_info": {"id": "0" * 40, "dirty": False, "branch": "main", "project": "p", "error": None},
        "environment": {"torch": "2.2", "load_average": [None, None], "threads_env": {}},
        "device": {"type": "cpu", "key": "cpu:test:1", "name": "test", "threads": 1,
                   "peak_gflops": {"float32": None, "float64": None}, "peak_source": "unknown"},
        "config": {"sizes": sorted({c[2] for c in cells} | {4}), "batches": sorted({c[3] for c in cells} | {1}),
                   "backends": ["torch", "jacobi", "auto"], "dtypes": list(dtypes), "repeats": 5, "min_time": 0.0,
                   "warmup": 1, "seed": 0, "memory_budget_bytes": 2**30, "workspace_factor": WORKSPACE_FACTOR,
                   "timing": "synthetic", "flop_model": "9 n^3", "graphs": "none"},
        "results": results, "auto": auto_rows, "crossover": {"key": "cpu:test:1", "entries": [], "saved_to": None},
    }


def test_compare_classifies_cells_by_the_noise_rule_and_lists_unmatched_ones(tmp_path, capsys):
    old = synthetic_report([
        ("torch", "float32", 4, 1, 1.00e-3, 0.05e-3),   # new 1.02: same within noise
        ("torch", "float32", 8, 1, 2.00e-3, 0.05e-3),   # new 1.50: faster
        ("jacobi", "float32", 8, 1, 5.00e-3, 0.10e-3),  # new 6.00: slower
        ("jacobi", "float32", 16, 1, 9.00e-3, 0.10e-3),  # only old
    ], auto=False)
    new = synthetic_report([
        ("torch", "float32", 4, 1, 1.02e-3, 0.04e-3),
        ("torch", "float32", 8, 1, 1.50e-3, 0.05e-3),
        ("jacobi", "float32", 8, 1, 6.00e-3, 0.20e-3),
        ("torch", "float32", 16, 1, 3.00e-3, 0.10e-3),  # only new
    ], auto=False)
    old_path, new_path = tmp_path / "old.json", tmp_path / "new.json"
    old_path.write_text(json.dumps(old))
    new_path.write_text(json.dumps(new))
    assert cli.main(["bench-eigh", "--compare", str(old_path), str(new_path)]) == 0
    out = capsys.readouterr().out
    verdicts = {}
    for line in out.splitlines():
        cols = [c.strip() for c in line.strip("|").split("|")]
        if len(cols) == 8 and cols[2].isdigit():
            verdicts[(cols[0], int(cols[2]))] = cols[7]
    assert verdicts == {("torch", 4): "same within noise", ("torch", 8): "faster", ("jacobi", 8): "slower"}
    assert "| torch | float32 | 8 | 1 | 2 (IQR 0.05) | 1.5 (IQR 0.05) | 0.750 | faster |" in out
    assert "only in old (1): jacobi float32 n=16 B=1" in out
    assert "only in new (1): torch float32 n=16 B=1" in out
    assert "cells in both: 1 faster, 1 same within noise, 1 slower" in out


def test_bad_compare_file_is_one_line_exit_2(tmp_path, capsys):
    not_json = tmp_path / "notes.md"
    not_json.write_text("# not JSON\n")
    foreign = tmp_path / "other.json"
    foreign.write_text(json.dumps({"format": "pytest-benchmark", "results": []}))
    cases = [(tmp_path / "missing.json", "no such file"), (not_json, "not a bench-eigh JSON"),
             (foreign, "not a bench-eigh JSON")]
    for path, message in cases:
        assert cli.main(["bench-eigh", "--compare", str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and message in err
    assert not (tmp_path / "out").exists()  # refused before any benchmarking


def test_plot_has_one_panel_per_dtype_with_error_bars():
    pytest.importorskip("matplotlib")
    report = synthetic_report([
        ("torch", dtype, n, 1, 1e-3 * n, 1e-4 * n) for dtype in ("float32", "float64") for n in (4, 8)
    ], dtypes=("float32", "float64"), auto=False)
    fig = build_figure(report)
    assert [ax.get_title() for ax in fig.axes] == ["float32", "float64"]
    assert all(ax.containers for ax in fig.axes)  # errorbar containers: one per line
    assert len(fig.legends) == 2  # backend and batch, outside the panels


def test_compare_with_one_file_runs_then_compares_and_writes_the_comparison(tmp_path, capsys):
    base = ["bench-eigh", "--sizes", "4", "--batches", "1", "--repeats", "3", "--min-time", "0", "--no-progress"]
    assert cli.main([*base, "--backends", "torch,jacobi", "--out", str(tmp_path / "old")]) == 0
    old = tmp_path / "old" / "eigh_bench.json"
    capsys.readouterr()
    assert cli.main([*base, "--backends", "torch", "--out", str(tmp_path / "new"), "--compare", str(old)]) == 0
    out = capsys.readouterr().out
    written = (tmp_path / "new" / "eigh_compare.md").read_text()
    assert "only in old (1): jacobi float32 n=4 B=1" in written and written.strip() in out
    assert sum(written.count(f"| {name} | float32 | 4 | 1 |") for name in ("torch", REFERENCE)) == 2
