"""Fixtures shared by the benchmark tests of ``mer``."""

import pytest

import mer.benchmark as bench
import mer.benchmark.run as bench_run


@pytest.fixture
def count_train(monkeypatch):
    """Wraps the benchmark's ``train``; the list holds the config of every call."""
    calls = []
    real = bench_run.train

    def counting(dataset, *args, **kwargs):
        calls.append(kwargs["config"])
        return real(dataset, *args, **kwargs)

    monkeypatch.setattr(bench_run, "train", counting)
    return calls


@pytest.fixture
def recorded_benchmark(tmp_path, monkeypatch):
    """Replaces ``mer.benchmark.run_benchmark`` for the CLI: each call's keyword arguments are
    recorded in the returned list, and a one-line ``table.md`` is written to ``tmp_path`` (the
    ``--out`` the tests give) for the CLI to print."""
    calls = []

    def fake(dataset, **kwargs):
        calls.append(kwargs)
        (tmp_path / "table.md").write_text("| Average |\n")
        return []

    monkeypatch.setattr(bench, "run_benchmark", fake)
    return calls
