"""Modules that moved keep their old import path for one release: it warns and is the new module."""

import importlib
import sys

import pytest

MOVED = {
    "spectraldiff.linalg": "spectraldiff.eigh.solve",
    "spectraldiff.eigh_dispatch": "spectraldiff.eigh.dispatch",
    "spectraldiff.jacobi": "spectraldiff.eigh.jacobi",
    "spectraldiff.cupy_eigh": "spectraldiff.eigh.cupy",
    "spectraldiff.eigh_bench": "spectraldiff.eigh.bench",
    "spectraldiff.metrics": "spectraldiff.generation.metrics",
    "spectraldiff.orbits": "spectraldiff.generation.orbits",
    "spectraldiff.novelty": "spectraldiff.generation.novelty",
    "spectraldiff.graph_datasets": "spectraldiff.generation.datasets",
}

# Names that callers imported from the old paths; each must be the very same object at the new one.
OLD_NAMES = {
    "spectraldiff.linalg": ["batched_eigh", "node_mask", "available_eigh_backends", "register_eigh_backend",
                            "DEGENERACY_RTOL"],
    "spectraldiff.eigh_dispatch": ["choose_backend", "backend_for", "backend_usable", "CrossoverTable",
                                   "save_crossover", "load_crossover", "clear_cache", "CACHE_ENV"],
    "spectraldiff.jacobi": ["jacobi_eigh", "jacobi_decompose", "default_tolerance"],
    "spectraldiff.cupy_eigh": ["cupy_eigh", "cupy_available", "CUPY_INSTALL_HINT"],
    "spectraldiff.eigh_bench": ["add_arguments", "run", "benchmark_eigh", "write_report", "device_peak_gflops",
                                "random_graphs", "REFERENCE", "FORMAT"],
    "spectraldiff.metrics": ["evaluate_graphs"],
    "spectraldiff.orbits": ["orbit_counts"],
    "spectraldiff.novelty": ["fraction_novel", "fraction_unique"],
    "spectraldiff.graph_datasets": ["community_small", "grid", "get_generator", "available_generators",
                                    "register_generator", "load_graphs", "split_graphs", "published_graphs_path"],
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_warns_and_is_the_new_module(old, monkeypatch):
    new = importlib.import_module(MOVED[old])
    monkeypatch.delitem(sys.modules, old, raising=False)  # import the stub afresh, so it warns again
    with pytest.warns(DeprecationWarning, match=rf"{old} has moved to {MOVED[old]}"):
        module = importlib.import_module(old)
    assert module is new
    for name in OLD_NAMES[old]:
        assert getattr(module, name) is getattr(new, name)


def test_public_eigh_names_are_the_same_objects_everywhere():
    import spectraldiff
    import spectraldiff.eigh as eigh
    import spectraldiff.eigh.solve as solve

    for name in ("batched_eigh", "available_eigh_backends", "register_eigh_backend"):
        assert getattr(spectraldiff, name) is getattr(eigh, name) is getattr(solve, name)
    assert eigh.node_mask is solve.node_mask
