"""benchmarks/spectral_vectors_diagnosis.py: its block-separation measure orders clean and noisy block
eigenvectors correctly, and a whole run on a tiny model prints every figure the docs quote."""

import importlib.util
import pathlib

import numpy as np
import pytest
import torch

from spectraldiff.generation import GenerationConfig
from spectraldiff.generation.datasets import save_json_graphs, sbm, split_graphs
from spectraldiff.generation.eigenpairs import laplacian_eigenpairs
from spectraldiff.generation.dense import graphs_to_dense
from spectraldiff.generation.spectral_vectors import SpectralVectorGenerator

SCRIPT = pathlib.Path(__file__).resolve().parents[3] / "benchmarks" / "spectral_vectors_diagnosis.py"


def _script():
    spec = importlib.util.spec_from_file_location("spectral_vectors_diagnosis", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_block_separation_is_small_for_sbm_eigenvectors_and_grows_with_noise():
    diagnosis = _script()
    graph = sbm(1, seed=3)[0]
    A, sizes = graphs_to_dense([graph], dtype=torch.float64)
    values, vectors = laplacian_eigenpairs(A, sizes)
    rows = vectors[0].numpy() * np.sqrt(len(graph))
    blocks = int((values[0] < diagnosis.BLOCK_EIGENVALUE).sum())
    assert 2 <= blocks <= 5  # one small eigenvalue per planted block
    clean = diagnosis.block_separation(rows[:, :8], values[0, :8].numpy())
    noisy = diagnosis.block_separation(rows[:, :8] + np.random.default_rng(0).normal(0, 0.5, (len(graph), 8)),
                                       values[0, :8].numpy())
    assert clean < 0.2 < noisy
    # Density inside the recovered blocks is near p_in = 0.3, between them near p_out = 0.005.
    inside, between = diagnosis.block_densities(graph)
    assert 0.2 < inside < 0.4 and between < 0.02


def test_a_run_on_a_saved_tiny_model_reads_it_safely_and_prints_each_figure(tmp_path, capsys):
    torch.manual_seed(0)
    graphs = sbm(12, seed=0, min_communities=2, max_communities=2)
    data = tmp_path / "blocks.json"
    save_json_graphs(graphs, data)
    config = GenerationConfig(model="spectral_vectors", dataset="blocks", epochs=1, steps=3, batch_size=4,
                              hidden_dim=16, num_layers=1, num_eigenvectors=4, decoder_dim=8, decoder_layers=0,
                              edge_sampling="bernoulli")
    model = SpectralVectorGenerator(config)
    model.fit(split_graphs(graphs)[0])
    path = tmp_path / "model.pt"
    model.save(path)
    threads = torch.get_num_threads()
    save_json_graphs(graphs[::-1], tmp_path / "other.json")
    try:
        with pytest.raises(ValueError, match="trained on other graphs"):  # the data must be its own
            _script().main(["--model", str(path), "--data", str(tmp_path / "other.json")])
        _script().main(["--model", str(path), "--data", str(data), "--graphs", "4", "--times", "0.1"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert out.count("tweedie t=0.1") == 1
    for line in ("separation: training", "decoder on clean training eigenpairs: valid",
                 "decoder on generated eigenpairs: valid", "block densities inside"):
        assert line in out
