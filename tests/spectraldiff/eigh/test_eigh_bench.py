"""The bench-eigh harness: files, documented keys, consistent figures, chunking and skipping."""

import json

import pytest
import torch

import spectraldiff.eigh.dispatch as dispatch
from spectraldiff import cli
from spectraldiff.eigh.bench import REFERENCE, WORKSPACE_FACTOR, benchmark_eigh, crossover_table, device_peak_gflops

REPORT_KEYS = {"format", "command", "created", "environment", "device", "config", "results", "auto", "crossover"}
ROW_KEYS = {
    "backend", "dtype", "n", "batch", "status", "seconds", "median_seconds", "repeats", "chunks",
    "matrices_per_s", "gflops", "peak_fraction", "note",
}


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
    assert report["format"] == "spectraldiff.eigh_bench/1"
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
        assert r["seconds"] > 0 and r["median_seconds"] >= r["seconds"] and r["repeats"] >= 2
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
        assert 0 <= r["dispatch_overhead_s"] < 1e-3

    markdown = (out / "eigh_bench.md").read_text()
    assert "| backend | n | B | time [ms] | matrices/s | GFLOP/s | % of peak | note |" in markdown
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
