"""Shared set-up of the `generate` command tests: a user's graph file and a small saved run."""

import pytest
import torch

from spectraldiff.generation.datasets import community_small, save_json_graphs
from tests.spectraldiff.generation.generate_runs import run_generate


@pytest.fixture
def graphs_file(tmp_path):
    """20 community_small graphs (seed 4) in a user's JSON file; its runs are labelled `my_graphs`."""
    path = tmp_path / "my_graphs.json"
    save_json_graphs(community_small(20, seed=4), path)
    return path


@pytest.fixture
def saved_vectors_model(tmp_path, graphs_file):
    """`model.pt` of a small spectral_vectors run on `graphs_file`: 2 epochs, width 16, one layer."""
    assert run_generate("--graphs", str(graphs_file), "--model", "spectral_vectors", "--hidden-dim", "16",
                        "--num-layers", "1", "--epochs", "2", "--out", str(tmp_path / "run")) == 0
    return tmp_path / "run" / "model.pt"


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (timings and float sums as on the 2-core CI box), then as it was."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
