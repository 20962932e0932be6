"""backend="auto": built-in default, choice from a saved crossover table, the table file itself."""

import json
import warnings
from pathlib import Path

import pytest
import torch

import spectraldiff.eigh.dispatch as dispatch
from spectraldiff.eigh import EIGH_BACKENDS, batched_eigh
from spectraldiff.eigh.dispatch import (
    CACHE_ENV,
    CrossoverTable,
    choose_backend,
    crossover_path,
    default_backend,
    device_key,
    load_crossover,
    save_crossover,
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Never read or write the user's cache: every test gets an empty cache directory."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    dispatch.clear_cache()
    yield tmp_path / "cache"
    dispatch.clear_cache()


def write_table(cache: Path, key: str, entries: list[tuple[str, int, int, str]]) -> Path:
    """Write a crossover file by hand, in the documented format."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / "eigh_crossover.json"
    data = {
        "format": "spectraldiff.eigh_crossover/1",
        "devices": {
            key: {"entries": [{"dtype": d, "n": n, "batch": b, "backend": be} for d, n, b, be in entries]}
        },
    }
    path.write_text(json.dumps(data))
    return path


def test_cache_location_follows_env_var_and_defaults_to_home(private_cache, monkeypatch):
    assert crossover_path() == private_cache / "eigh_crossover.json"
    monkeypatch.delenv(CACHE_ENV)
    assert crossover_path() == Path.home() / ".cache" / "spectraldiff" / "eigh_crossover.json"


def test_device_key_names_cpu_model_and_threads():
    key = device_key("cpu")
    assert key.startswith("cpu:") and key.endswith(f":{torch.get_num_threads()}")


def test_without_a_table_auto_uses_the_builtin_default():
    assert choose_backend(torch.zeros(1024, 64, 64)) == "torch"
    assert default_backend("cpu", 64, 4096) == "torch"
    # CUDA default (not measured): jacobi only above torch's batched-syevj range, for large batches.
    assert default_backend("cuda", 64, 4096) == "jacobi"
    assert default_backend("cuda", 32, 4096) == "torch"
    assert default_backend("cuda", 64, 1) == "torch"
    assert default_backend("cuda", 512, 4096) == "torch"


def test_auto_picks_the_backend_of_the_saved_table(private_cache):
    write_table(
        private_cache,
        device_key("cpu"),
        [("float32", 8, 1024, "jacobi"), ("float32", 8, 1, "torch"), ("float32", 64, 1024, "torch")],
    )
    assert choose_backend(torch.zeros(1024, 8, 8)) == "jacobi"
    assert choose_backend(torch.zeros(1, 8, 8)) == "torch"
    # Nearest grid point: n = 9, B = 700 is closest to (8, 1024); n = 48 to (64, 1024).
    assert choose_backend(torch.zeros(700, 9, 9)) == "jacobi"
    assert choose_backend(torch.zeros(1024, 48, 48)) == "torch"
    # No float64 entries: the built-in default applies.
    assert choose_backend(torch.zeros(1024, 8, 8, dtype=torch.float64)) == "torch"


def test_batched_eigh_auto_runs_the_chosen_backend(private_cache, monkeypatch):
    write_table(private_cache, device_key("cpu"), [("float64", 6, 4, "jacobi")])
    calls = []

    def spy(A):
        calls.append(A.shape)
        return dispatch_target(A)

    dispatch_target = EIGH_BACKENDS.get("jacobi")
    monkeypatch.setitem(EIGH_BACKENDS._entries, "jacobi", spy)
    A = torch.eye(6, dtype=torch.float64).expand(4, 6, 6).clone()
    lam, _ = batched_eigh(A, backend="auto")
    assert calls and torch.allclose(lam, torch.ones(4, 6, dtype=torch.float64))


def test_another_devices_table_is_ignored(private_cache):
    write_table(private_cache, "cpu:Some Other CPU:64", [("float32", 8, 1024, "jacobi")])
    assert choose_backend(torch.zeros(1024, 8, 8)) == "torch"


def test_measured_backend_unusable_here_falls_back_to_default(private_cache):
    write_table(private_cache, device_key("cpu"), [("float32", 8, 1024, "cupy"), ("float32", 16, 1024, "gone")])
    assert choose_backend(torch.zeros(1024, 8, 8)) == "torch"
    assert choose_backend(torch.zeros(1024, 16, 16)) == "torch"


def test_nearest_lookup_weights_size_over_batch_and_breaks_ties_low():
    table = CrossoverTable(entries={("float32", 16, 1): "a", ("float32", 32, 1024): "b", ("float32", 16, 1024): "c"})
    assert table.lookup("float32", 16, 1000) == "c"
    assert table.lookup("float32", 22, 1024) == "c"  # log2 22 = 4.46: nearer 16 than 32
    assert table.lookup("float32", 23, 1024) == "b"  # log2 23 = 4.52: nearer 32
    assert table.lookup("float32", 16, 32) == "a"  # tie between B = 1 and B = 1024 goes low
    assert table.lookup("float64", 16, 32) is None


def test_save_crossover_merges_with_existing_devices_and_points(private_cache):
    save_crossover("dev-a", CrossoverTable(entries={("float32", 8, 1): "torch", ("float32", 16, 1): "torch"}))
    save_crossover("dev-b", CrossoverTable(entries={("float64", 8, 1): "jacobi"}))
    save_crossover("dev-a", CrossoverTable(entries={("float32", 16, 1): "jacobi"}, meta={"torch": "x"}))
    tables = load_crossover()
    assert tables["dev-a"].entries == {("float32", 8, 1): "torch", ("float32", 16, 1): "jacobi"}
    assert tables["dev-a"].meta == {"torch": "x"}
    assert tables["dev-b"].entries == {("float64", 8, 1): "jacobi"}
    data = json.loads((private_cache / "eigh_crossover.json").read_text())
    assert data["format"] == "spectraldiff.eigh_crossover/1"


def test_saving_a_table_takes_effect_for_auto_immediately(private_cache):
    A = torch.zeros(64, 8, 8)
    assert choose_backend(A) == "torch"
    save_crossover(device_key("cpu"), CrossoverTable(entries={("float32", 8, 64): "jacobi"}))
    assert choose_backend(A) == "jacobi"


def test_malformed_crossover_file_is_a_clear_error(private_cache):
    private_cache.mkdir(parents=True)
    (private_cache / "eigh_crossover.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_crossover()
    (private_cache / "eigh_crossover.json").write_text(json.dumps({"format": "other"}))
    dispatch.clear_cache()
    with pytest.raises(ValueError, match="expected format"):
        load_crossover()


def test_auto_survives_a_broken_crossover_file_with_one_warning(private_cache):
    private_cache.mkdir(parents=True)
    (private_cache / "eigh_crossover.json").write_text("{not json")
    with pytest.warns(RuntimeWarning, match="ignores the crossover file"):
        assert choose_backend(torch.zeros(4, 8, 8)) == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert choose_backend(torch.zeros(5, 8, 8)) == "torch"
