"""Graph generators (spectral and adjacency-space), their training, and the ``generate`` command."""

from __future__ import annotations

import json
import pickle
from collections import Counter

import networkx as nx
import pytest
import torch

from spectraldiff.cli import main
from spectraldiff.generation import (
    AdjacencyGenerator,
    GenerationConfig,
    NodeCountSampler,
    SpectralGenerator,
    available_models,
    dense_to_graphs,
    get_model,
    graphs_to_dense,
)
from spectraldiff.generation import cli as generate_cli
from spectraldiff.generation.datasets import available_datasets, community_small
from spectraldiff.eigh import batched_eigh

TINY = dict(hidden_dim=16, num_layers=1, batch_size=8, steps=8, ema_decay=0.0)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These tiny models are dominated by per-op overhead; on a shared 2-core machine torch's
    # intra-op threads make them several times slower, so the module runs single-threaded.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def train_graphs():
    return community_small(16, seed=0)


@pytest.fixture(scope="module")
def fitted(train_graphs):
    torch.manual_seed(0)
    models = {}
    for name, network in (("spectral", "mlp"), ("spectral-transformer", "transformer"), ("adjacency", "mlp")):
        model_name = name.split("-")[0]
        model = get_model(model_name, GenerationConfig(model=model_name, epochs=3, spectral_network=network, **TINY))
        model.fit(train_graphs, generator=torch.Generator().manual_seed(0))
        models[name] = model
    return models


@pytest.mark.parametrize("name", ["spectral", "spectral-transformer", "adjacency"])
def test_samples_are_simple_undirected_graphs_with_training_node_counts(fitted, train_graphs, name):
    model = fitted[name]
    out = model.sample_weighted(7, generator=torch.Generator().manual_seed(1))
    W = out["adjacency"]
    assert torch.allclose(W, W.mT, atol=1e-6)
    graphs = model.sample(7, generator=torch.Generator().manual_seed(1))
    train_sizes = {g.number_of_nodes() for g in train_graphs}
    for g, size, source in zip(graphs, out["sizes"].tolist(), out["sources"].tolist()):
        assert not g.is_directed() and nx.number_of_selfloops(g) == 0
        assert g.number_of_nodes() == size == train_graphs[source].number_of_nodes()
        assert size in train_sizes


def test_node_counts_follow_the_training_distribution():
    sampler = NodeCountSampler([12, 20, 20, 20])
    _, sizes = sampler.sample(4000, torch.Generator().manual_seed(0))
    counts = Counter(sizes.tolist())
    assert set(counts) == {12, 20}
    assert abs(counts[12] / 4000 - 0.25) < 0.03


def test_stratified_node_counts_follow_the_training_histogram_in_every_set():
    sizes = [12] * 10 + [16] * 30 + [20] * 40  # 1/8, 3/8, 1/2
    sampler = NodeCountSampler(sizes)
    for seed in range(20):
        indices, drawn = sampler.sample_stratified(16, torch.Generator().manual_seed(seed))
        counts = Counter(drawn.tolist())
        assert abs(counts[12] - 2) <= 1 and abs(counts[16] - 6) <= 1 and abs(counts[20] - 8) <= 1, counts
        assert [sizes[i] for i in indices.tolist()] == drawn.tolist()
    # independent draws of 16 stray far more from the histogram
    spread = [abs(Counter(sampler.sample(16, torch.Generator().manual_seed(s))[1].tolist())[20] - 8) for s in range(20)]
    assert max(spread) >= 3


def test_stratified_draws_are_still_uniform_over_the_training_graphs():
    sampler = NodeCountSampler([12] * 3 + [20] * 5)
    hits = Counter()
    for seed in range(2000):
        hits.update(sampler.sample_stratified(3, torch.Generator().manual_seed(seed))[0].tolist())
    frequencies = torch.tensor([hits[i] for i in range(8)], dtype=torch.float64) / (2000 * 3)
    assert torch.allclose(frequencies, torch.full((8,), 1 / 8, dtype=torch.float64), atol=0.015), frequencies


def test_a_stratified_sample_set_follows_the_training_sizes_across_sampling_batches(train_graphs):
    config = GenerationConfig(model="spectral", epochs=1, node_counts="stratified", sample_batch_size=3, **TINY)
    model = get_model("spectral", config)
    model.fit(train_graphs)
    out = model.sample_weighted(len(train_graphs), generator=torch.Generator().manual_seed(0))
    assert sorted(out["sizes"].tolist()) == sorted(g.number_of_nodes() for g in train_graphs)


@pytest.mark.parametrize("name", ["spectral", "spectral-transformer"])
def test_spectral_samples_keep_the_eigenvectors_of_their_training_graph(fitted, train_graphs, name):
    out = fitted[name].sample_weighted(5, generator=torch.Generator().manual_seed(2))
    for b, source in enumerate(out["sources"].tolist()):
        n = int(out["sizes"][b])
        A, sizes = graphs_to_dense([train_graphs[source]], dtype=torch.float64)
        _, U = batched_eigh(A, sizes)
        U = U[0, :n, :n]
        # Uᵀ Â U is diagonal: Â has exactly the eigenvectors of the source graph ...
        projected = U.mT @ out["adjacency"][b, :n, :n] @ U
        off_diagonal = projected - torch.diag(torch.diagonal(projected))
        assert off_diagonal.abs().max() < 1e-8
        # ... and its eigenvalues are the sampled ones, ascending like U's columns.
        lam = out["eigenvalues"][b, :n]
        assert torch.allclose(torch.diagonal(projected), lam, atol=1e-8)
        assert torch.all(lam[1:] >= lam[:-1])
        assert torch.all(out["eigenvalues"][b, n:] == 0)


@pytest.mark.parametrize("name", ["spectral", "adjacency"])
def test_a_short_training_lowers_the_loss(train_graphs, name):
    torch.manual_seed(0)
    config = GenerationConfig(model=name, epochs=40, learning_rate=3e-3, **TINY)
    losses = get_model(name, config).fit(train_graphs, generator=torch.Generator().manual_seed(0))
    first, last = sum(losses[:3]) / 3, sum(losses[-5:]) / 5
    assert last < 0.7 * first, losses


@pytest.mark.parametrize("name", ["spectral", "adjacency", "spectral_vectors"])
def test_fit_takes_its_initial_weights_from_the_config_seed_and_leaves_the_global_generator(train_graphs, name):
    def fitted_weights(global_seed: int, seed: int = 0) -> list[torch.Tensor]:
        torch.manual_seed(global_seed)
        model = get_model(name, GenerationConfig(model=name, epochs=1, seed=seed, num_eigenvectors=4, **TINY))
        before = torch.random.get_rng_state()
        model.fit(train_graphs[:4])
        assert torch.equal(torch.random.get_rng_state(), before)  # neither read nor advanced
        return [p.detach().clone() for p in model.network.parameters()]

    first, other_global, other_seed = fitted_weights(1), fitted_weights(2), fitted_weights(1, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(first, other_global))
    assert not all(torch.equal(a, b) for a, b in zip(first, other_seed))


def test_models_have_comparable_parameter_counts():
    # The default widths are chosen for community_small, whose padded size is 20.
    graphs = [g for g in community_small(40, seed=0) if g.number_of_nodes() == 20][:2]
    counts = {}
    for name, network in (("adjacency", "mlp"), ("spectral", "mlp"), ("spectral", "transformer")):
        config = GenerationConfig(model=name, epochs=1, spectral_network=network, num_layers=3, batch_size=16,
                                  hidden_dim=generate_cli.default_hidden_dim(name, network))
        model = get_model(name, config)
        model.fit(graphs)
        counts[name, network] = model.num_parameters()
    for network in ("mlp", "transformer"):
        assert 0.8 < counts["adjacency", "mlp"] / counts["spectral", network] < 1.25, counts


def test_spectrum_rmse_is_zero_for_a_training_spectrum_and_grows_with_the_error(fitted):
    model = fitted["spectral"]
    lam = model.eigenvalues[:2].double() * model.scale
    sizes = model.mask[:2].sum(dim=-1)
    assert model.diagnostics({"eigenvalues": lam, "sizes": sizes})["spectrum_rmse"] < 1e-6
    shifted = model.diagnostics({"eigenvalues": (lam + 0.3) * model.mask[:2], "sizes": sizes})["spectrum_rmse"]
    assert 0.0 < shifted <= 0.3 + 1e-6


def test_dense_round_trip_thresholds_and_drops_self_loops():
    graphs = [nx.path_graph(4), nx.cycle_graph(3)]
    A, sizes = graphs_to_dense(graphs)
    assert A.shape == (2, 4, 4) and sizes.tolist() == [4, 3]
    assert [sorted(g.edges()) for g in dense_to_graphs(A, sizes)] == [sorted(g.edges()) for g in graphs]
    noisy = torch.tensor([[[0.9, 0.7, 0.2], [0.4, 0.0, 0.51], [0.2, 0.51, 0.0]]])
    (g,) = dense_to_graphs(noisy, torch.tensor([3]))
    assert sorted(g.edges()) == [(0, 1), (1, 2)] and g.number_of_nodes() == 3  # (0.7+0.4)/2 > 0.5


def test_registries_and_cli_choices_agree():
    assert tuple(available_models()) == generate_cli.MODELS
    assert tuple(available_datasets()) == generate_cli.DATASETS
    with pytest.raises(ValueError, match="choose one of"):
        get_model("graphrnn", GenerationConfig())
    assert isinstance(get_model("spectral", GenerationConfig()), SpectralGenerator)
    assert isinstance(get_model("adjacency", GenerationConfig(model="adjacency")), AdjacencyGenerator)


def test_config_round_trips_and_rejects_unknown_fields(tmp_path):
    config = GenerationConfig(model="adjacency", epochs=7, steps=50, seed=3)
    config.save(tmp_path / "c.json")
    assert GenerationConfig.load(tmp_path / "c.json") == config
    with pytest.raises(ValueError, match="unknown GenerationConfig field"):
        GenerationConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="steps must be"):
        GenerationConfig(steps=0)
    with pytest.raises(ValueError, match=r"spectral_network must be one of \['mlp', 'transformer'\]"):
        GenerationConfig(spectral_network="gru")
    with pytest.raises(ValueError, match=r"node_counts must be one of \['iid', 'stratified'\]"):
        GenerationConfig(node_counts="sorted")


def test_sampling_before_fit_is_an_error():
    with pytest.raises(ValueError, match="must be fitted"):
        SpectralGenerator(GenerationConfig()).sample(2)
    with pytest.raises(ValueError, match="built by fit"):
        SpectralGenerator(GenerationConfig()).num_parameters()


@pytest.mark.parametrize("model", ["spectral", "adjacency"])
def test_generate_command_writes_metrics_samples_and_figure(tmp_path, model, capsys, graphs_file):
    data = graphs_file
    out = tmp_path / "run"
    code = main(["generate", "--dataset", "community_small", "--graphs", str(data), "--model", model,
                 "--epochs", "2", "--steps", "5", "--seed", "1", "--out", str(out), "--hidden-dim", "16",
                 "--num-layers", "1", "--no-progress"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("degree", "clustering", "orbit", "spectral", "average", "sampling_seconds_per_graph",
                "training_seconds", "novel", "unique"):
        assert isinstance(metrics[key], float) and metrics[key] >= 0.0, key
    assert metrics["num_test_graphs"] == 4 and metrics["model"] == model and metrics["steps"] == 5
    assert metrics["node_counts"] == "iid"
    # the spectral model also reports how close its sampled spectra are to training spectra
    assert ("spectrum_rmse" in metrics) == (model == "spectral")
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples = pickle.loads((out / "samples.pkl").read_bytes())
    assert len(samples) == 4 and all(isinstance(g, nx.Graph) for g in samples)
    assert json.loads((out / "config.json").read_text())["seed"] == 1
    assert "user graphs" in capsys.readouterr().out


def test_generate_command_passes_the_node_count_scheme_and_network_to_the_run(tmp_path, graphs_file):
    data = graphs_file
    out = tmp_path / "run"
    assert main(["generate", "--graphs", str(data), "--model", "spectral", "--spectral-network", "transformer",
                 "--node-counts", "stratified", "--epochs", "1", "--steps", "3", "--out", str(out),
                 "--num-layers", "1", "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert config["spectral_network"] == metrics["spectral_network"] == "transformer"
    assert config["node_counts"] == metrics["node_counts"] == "stratified"
    assert config["hidden_dim"] == generate_cli.default_hidden_dim("spectral", "transformer") == 64
    # 16 training graphs, 4 samples: the i-th smallest sample comes from the i-th quarter of the sizes
    train_sizes = sorted(g.number_of_nodes() for g in community_small(20, seed=4)[4:])
    sample_sizes = sorted(g.number_of_nodes() for g in pickle.loads((out / "samples.pkl").read_bytes()))
    assert all(train_sizes[4 * i] <= n <= train_sizes[4 * i + 3] for i, n in enumerate(sample_sizes))


def test_dataset_fallback_uses_the_generator_and_says_so(monkeypatch):
    monkeypatch.setattr("spectraldiff.generation.datasets.published_graphs_path", lambda name: None)
    graphs, source = generate_cli.load_dataset("grid")
    assert len(graphs) == 100  # the published grid set's size
    assert "not found" in source and "package generator" in source


def test_generate_reads_graph_pickles_restricted_unless_trust_pickle_is_given(tmp_path):
    from spectraldiff.cli import build_parser
    from spectraldiff.safe_pickle import UnsafePickleError

    pkl = tmp_path / "graphs.pkl"
    pkl.write_bytes(pickle.dumps([nx.path_graph(4), Counter("code")]))
    with pytest.raises(UnsafePickleError, match="collections.Counter"):
        generate_cli.load_dataset("community_small", str(pkl))
    with pytest.raises(ValueError, match="graph 1"):  # trusted: loaded, then validated as graphs
        generate_cli.load_dataset("community_small", str(pkl), trust_pickle=True)

    parser = build_parser()
    assert parser.parse_args(["generate", "--out", "x"]).trust_pickle is False
    assert parser.parse_args(["generate", "--out", "x", "--trust-pickle"]).trust_pickle is True


COMPILED_MODELS = {"adjacency": {}, "spectral_vectors": dict(num_eigenvectors=4, decoder_dim=8, decoder_layers=1)}
COMPILED_NETWORKS = {"adjacency": 1, "spectral_vectors": 2}  # spectral_vectors: score network and edge decoder


@pytest.mark.parametrize("model", list(COMPILED_MODELS))
def test_sampling_through_the_compiled_network_is_bit_for_bit_the_eager_one(monkeypatch, model):
    graphs = community_small(12, seed=2)
    torch.manual_seed(0)
    generator = get_model(model, GenerationConfig(model=model, epochs=1, **{**TINY, "ema_decay": 0.99},
                                                  **COMPILED_MODELS[model]))
    generator.fit(graphs)
    draw = lambda: generator.sample_weighted(4, generator=torch.Generator().manual_seed(3))["adjacency"]  # noqa: E731
    before = draw()
    made = dict(generator._compiled)
    assert len(made) == COMPILED_NETWORKS[model] and all(isinstance(c, torch.jit.ScriptModule) for c in made.values())
    generator.fit(graphs, resume=True)  # the EMA moves; its compiled copy shares the weights
    after = draw()
    assert generator._compiled == made  # made once, reused
    monkeypatch.setattr(type(generator), "compiled", lambda self, module: module)
    assert torch.equal(draw(), after)
    assert not torch.equal(before, after)  # training changed the samples
    copy = pickle.loads(pickle.dumps(generator))  # compiled modules are left out of pickles
    assert "_compiled" not in copy.__dict__


def test_a_network_torchscript_cannot_compile_samples_uncompiled_with_a_warning(monkeypatch):
    generator = get_model("spectral_vectors", GenerationConfig(model="spectral_vectors", epochs=1, **TINY,
                                                               **COMPILED_MODELS["spectral_vectors"]))
    generator.fit(community_small(8, seed=2))
    expected = generator.sample_weighted(2, generator=torch.Generator().manual_seed(1))["adjacency"]

    def refuse(module):
        raise RuntimeError("unsupported")

    monkeypatch.setattr(torch.jit, "script", refuse)
    generator.__dict__.pop("_compiled")
    with pytest.warns(RuntimeWarning) as caught:
        again = generator.sample_weighted(2, generator=torch.Generator().manual_seed(1))["adjacency"]
    assert sorted(str(w.message).split(" (")[0] for w in caught) == [
        "TorchScript could not compile EigenpairEdgeDecoder", "TorchScript could not compile EigenpairScoreNet"]
    assert all("uncompiled" in str(w.message) for w in caught)
    assert torch.equal(again, expected)
