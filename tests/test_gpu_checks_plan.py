"""benchmarks/gpu_checks.sh: its dry run checks the whole plan on the CPU in seconds, and the full
plan covers the grid of docs/eigh.md within the 8-minute call, with spectraldiff alone."""

import ast
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_checks.sh"
DRIVER = ROOT / "benchmarks" / "gpu_checks.py"


def _driver():
    spec = importlib.util.spec_from_file_location("gpu_checks", DRIVER)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_checks", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_dry_run_exits_0_prints_every_command_and_writes_the_expected_files(tmp_path):
    out = tmp_path / "checks"
    done = subprocess.run([str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True, text=True,
                          timeout=240, env=dict(os.environ, PYTHON=sys.executable))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] is True
    assert [p["part"] for p in summary["parts"]] == ["eigh-key", "sampling", "gsdnet", "eigh-small"]
    assert all(p["status"] == "ok" for p in summary["parts"]), summary["parts"]
    for part in summary["parts"]:
        assert f"[gpu_checks] {part['part']} (budget" in done.stdout and part["command"] in done.stdout
    for name in ("summary.md", "eigh-key/eigh_bench.json", "eigh-key/eigh_bench.md", "eigh-small/eigh_bench.json",
                 "eigh-small/eigh_bench.md", "sampling/sampling.json", "gsdnet/gsdnet.json",
                 "crossover/eigh_crossover.json"):
        assert (out / name).is_file(), name
    # The goal figures are read back from the harness's files (at the dry run's stand-in point).
    speed = summary["goals"]["auto_vs_torch_linalg_eigh"]
    assert (speed["n"], speed["batch"]) == (8, 4) and speed["speedup"] > 0
    assert 0 < summary["goals"]["float32_roofline_fraction_n_le_32"]["best_peak_fraction"] < 1
    assert "dry run on CPU" in (out / "summary.md").read_text()
    rows = json.loads((out / "gsdnet" / "gsdnet.json").read_text())["rows"]
    assert [r["steps"] for r in rows] == [2] and rows[0]["best_seconds"] > 0


def test_the_full_plan_covers_the_eigh_grid_on_cuda_within_eight_minutes(tmp_path):
    driver = _driver()
    parts = driver.plan(tmp_path, dry_run=False)
    assert sum(p.budget_s for p in parts) <= 470 < 8 * 60
    eigh = [p.argv for p in parts if p.name.startswith("eigh")]

    def values(argv, option):
        return set(argv[argv.index(option) + 1].split(","))

    assert all(values(a, "--device") == {"cuda"} and values(a, "--backends") == {"torch", "jacobi", "auto"}
               for a in eigh)
    assert set().union(*(values(a, "--sizes") for a in eigh)) == {"8", "16", "32", "64", "128", "256"}
    assert set().union(*(values(a, "--batches") for a in eigh)) >= {"1", "64", "1024", "4096", "8192"}
    assert set().union(*(values(a, "--dtype") for a in eigh)) == {"float32", "float64"}
    assert parts[0].name == "eigh-key" and values(parts[0].argv, "--sizes") == {"64"}
    assert values(parts[0].argv, "--batches") == {"4096"}
    assert {"sampling", "gsdnet"} <= {p.name for p in parts}


def test_the_driver_imports_spectraldiff_only_never_mer_or_dgl():
    tree = ast.parse(DRIVER.read_text(encoding="utf8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert "spectraldiff" in imported and not imported & {"mer", "dgl"}


def test_the_vectors_check_times_both_models_at_the_same_steps(tmp_path):
    """Issue 17's speed goal on a lent GPU (`gpu_checks.sh vectors`), here on the CPU at tiny sizes:
    one row per model, case and step count, in the same units."""
    out = tmp_path / "vectors"
    done = subprocess.run([str(SCRIPT), "vectors", "--device", "cpu", "--out", str(out), "--cases",
                           "community_small:12:4:4:2;sbm:30:2:8:0", "--steps", "2,3", "--repeats", "1"],
                          capture_output=True, text=True, timeout=240, env=dict(os.environ, PYTHON=sys.executable))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "vectors.json").read_text())
    assert result["part"] == "vectors" and result["skipped"] is None  # networkx is installed here
    keys = [(r["dataset"], r["model"], r["steps"]) for r in result["rows"]]
    assert keys == [(d, m, s) for d in ("community_small", "sbm") for s in (2, 3)
                    for m in ("spectral_vectors", "adjacency")]
    assert all(r["seconds_per_graph"] == r["best_seconds"] / r["graphs"] > 0 for r in result["rows"])
    assert done.stdout.count("adjacency / spectral_vectors") == 4
