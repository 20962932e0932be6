"""The eigenvector-and-eigenvalue generator (issue 17): equivariance, sign and basis invariance,
the decoder, conditioning on a spectrum, and that it makes graphs it was not shown."""

import networkx as nx
import numpy as np
import pytest
import torch

from spectraldiff.generation import GenerationConfig, get_model
from spectraldiff.generation.dense import graphs_to_dense
from spectraldiff.generation.edge_decoder import EigenpairEdgeDecoder
from spectraldiff.generation.eigenpair_score import EigenpairScoreNet
from spectraldiff.generation.eigenpairs import (degenerate_groups, laplacian_eigenpairs, normalized_laplacian,
                                                random_basis_rotation)
from spectraldiff.generation.novelty import fraction_novel
from spectraldiff.generation.spectral_vectors import SpectralVectorGenerator


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**overrides) -> GenerationConfig:
    values = dict(model="spectral_vectors", epochs=2, steps=4, batch_size=8, hidden_dim=16, num_layers=1,
                  num_eigenvectors=4, decoder_dim=8, decoder_layers=1, seed=0)
    return GenerationConfig(**{**values, **overrides})


def toy_graphs() -> list[nx.Graph]:
    """Six small graphs of different shapes and sizes (5–7 nodes)."""
    return [nx.cycle_graph(6), nx.path_graph(5), nx.star_graph(5), nx.complete_graph(5),
            nx.ladder_graph(3), nx.wheel_graph(7)]


def test_laplacian_eigenpairs_match_networkx_and_pad_with_zeros():
    graphs = [nx.path_graph(4), nx.cycle_graph(6)]
    A, sizes = graphs_to_dense(graphs, dtype=torch.float64)
    values, vectors = laplacian_eigenpairs(A, sizes)
    for b, g in enumerate(graphs):
        n = g.number_of_nodes()
        expected = np.sort(np.linalg.eigvalsh(nx.normalized_laplacian_matrix(g).toarray()))
        np.testing.assert_allclose(values[b, :n].numpy(), expected, atol=1e-10)
        assert torch.all(values[b, n:] == 0) and torch.all(vectors[b, n:] == 0)
    L = normalized_laplacian(A, sizes)
    assert torch.allclose(L @ vectors, vectors * values[:, None, :], atol=1e-10)


def test_basis_rotation_stays_in_the_eigenspace_and_changes_the_basis():
    # K5's normalised Laplacian has eigenvalue 5/4 four times: any rotation of that eigenspace is valid.
    A, sizes = graphs_to_dense([nx.complete_graph(5)], dtype=torch.float64)
    values, vectors = laplacian_eigenpairs(A, sizes)
    groups = [degenerate_groups(values[0], 5)]
    assert groups == [[(1, 5)]]
    rotated = random_basis_rotation(vectors, groups, torch.Generator().manual_seed(0))
    L = normalized_laplacian(A, sizes)
    assert torch.allclose(L @ rotated, rotated * values[:, None, :], atol=1e-10)
    assert torch.allclose(rotated[0].mT @ rotated[0], torch.eye(5, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(rotated[:, :, 0], vectors[:, :, 0])  # a simple eigenvalue is left alone
    assert not torch.allclose(rotated, vectors, atol=1e-3)


def test_training_batches_draw_new_signs_of_the_same_eigenvectors():
    model = SpectralVectorGenerator(tiny_config())
    model._prepare(toy_graphs())
    indices = torch.tensor([0, 1])  # cycle (repeated eigenvalues) and path (simple ones)
    first = model.training_batch(indices, torch.Generator().manual_seed(0))["eigenvectors"]
    second = model.training_batch(indices, torch.Generator().manual_seed(1))["eigenvectors"]
    assert not torch.allclose(first, second)
    # The path's eigenvalues are simple, so its columns can only have flipped sign.
    n = 5
    assert torch.allclose(first[1, :n].abs(), second[1, :n].abs(), atol=1e-5)
    # Projections onto each eigenspace of the cycle (1, 2 and 2 dimensions among the first 4) agree.
    for start, stop in [(0, 1), (1, 3)]:
        p1 = first[0, :, start:stop] @ first[0, :, start:stop].mT
        p2 = second[0, :, start:stop] @ second[0, :, start:stop].mT
        assert torch.allclose(p1, p2, atol=1e-4)


def test_score_network_is_permutation_equivariant_with_padding():
    torch.manual_seed(0)
    net = EigenpairScoreNet(num_eigenvectors=3, hidden_dim=16, num_layers=2)
    U, lam, t = torch.randn(2, 7, 3), torch.randn(2, 3), torch.rand(2)
    nodes = torch.tensor([[True] * 7, [True] * 5 + [False] * 2])
    slots = torch.ones(2, 3, dtype=torch.bool)
    eps_u, eps_l = net(U, lam, t, nodes, slots)
    perm = torch.tensor([4, 2, 0, 3, 1, 5, 6])  # moves only real nodes of both graphs
    eps_u_p, eps_l_p = net(U[:, perm], lam, t, nodes[:, perm], slots)
    assert torch.allclose(eps_u_p, eps_u[:, perm], atol=1e-5)
    assert torch.allclose(eps_l_p, eps_l, atol=1e-5)
    assert torch.all(eps_u[1, 5:] == 0)  # padded nodes predict no noise
    # Values in padded rows must not leak into real nodes.
    U_junk = U.clone()
    U_junk[1, 5:] = 100.0
    assert torch.allclose(net(U_junk, lam, t, nodes, slots)[0][1, :5], eps_u[1, :5], atol=1e-5)


def _multiply_adds(network, *inputs) -> float:
    """Multiply-adds of one call (matrix products, as torch's FLOP counter counts them)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(*inputs)
    return counter.get_total_flops() / 2


def test_a_score_network_step_costs_multiply_adds_linear_in_the_node_count():
    """The issue's "linear in the number of nodes": doubling n doubles a step's products, up to the
    per-graph ones (time and Gram embeddings, eigenvalue head), while the adjacency baseline's grow
    faster (its pair head over n (n − 1) / 2 pairs, the n³ of A²); the edge decoder's n³ is paid once
    per sample, not per step. At community_small's 20 nodes the two steps differ by only 1.9×
    (docs/generation.md, the speed goal)."""
    from spectraldiff.generation.adjacency import AdjacencyScoreNet

    score = EigenpairScoreNet(num_eigenvectors=4, hidden_dim=64)
    decoder = EigenpairEdgeDecoder(num_eigenvectors=4, hidden_dim=32, num_layers=2)
    cost = {}
    for n in (20, 40, 160):
        nodes, slots, t = torch.ones(1, n, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool), torch.rand(1)
        U, lam = torch.randn(1, n, 4), torch.rand(1, 4)
        baseline = AdjacencyScoreNet(n, hidden_dim=88)  # generate's widths: about the same parameter count
        cost[n] = (_multiply_adds(score, U, lam, t, nodes, slots),
                   _multiply_adds(baseline, torch.randn(1, n * (n - 1) // 2), t, nodes),
                   _multiply_adds(decoder, U, lam, nodes, slots))
    assert cost[40][0] / cost[20][0] == pytest.approx(2.0, abs=0.02)
    assert cost[160][0] / cost[20][0] == pytest.approx(8.0, abs=0.15)
    assert cost[20][1] / cost[20][0] == pytest.approx(1.94, abs=0.05)
    assert cost[160][1] / cost[20][1] > 14 and cost[160][1] / cost[160][0] > 3.4
    assert cost[160][2] / cost[20][2] > 100  # the decoder's n³


def test_decoder_is_sign_invariant_basis_invariant_and_permutation_equivariant():
    torch.manual_seed(0)
    dec = EigenpairEdgeDecoder(num_eigenvectors=4, hidden_dim=8, num_layers=2)
    U, lam = torch.randn(1, 6, 4), torch.tensor([[0.0, 0.7, 0.7, 1.5]])
    nodes, slots = torch.ones(1, 6, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool)
    logits = dec(U, lam, nodes, slots)
    assert torch.allclose(logits, logits.mT)
    signs = torch.tensor([-1.0, 1.0, -1.0, -1.0])
    assert torch.allclose(dec(U * signs, lam, nodes, slots), logits, atol=1e-5)
    c, s = np.cos(0.3), np.sin(0.3)
    rotation = torch.eye(4)
    rotation[1:3, 1:3] = torch.tensor([[c, -s], [s, c]], dtype=torch.float32)
    assert torch.allclose(dec(U @ rotation, lam, nodes, slots), logits, atol=1e-5)
    perm = torch.tensor([3, 5, 0, 1, 4, 2])
    assert torch.allclose(dec(U[:, perm], lam, nodes, slots), logits[:, perm][:, :, perm], atol=1e-5)


def test_decoder_trained_on_a_tiny_set_recovers_its_adjacencies_from_clean_eigenpairs():
    graphs = toy_graphs()
    model = SpectralVectorGenerator(tiny_config(num_eigenvectors=7, decoder_dim=16, decoder_layers=2,
                                                decoder_noise=0.0, epochs=150, batch_size=6, ema_decay=0.0,
                                                learning_rate=5e-3))
    model.fit(graphs)
    batch = model.training_batch(torch.arange(len(graphs)), torch.Generator().manual_seed(3))  # unseen signs
    with torch.no_grad():
        probabilities = model.decode(batch["eigenvectors"], batch["eigenvalues"], batch["node_mask"],
                                     batch["slot_mask"])
    assert torch.equal((probabilities > 0.5).float(), batch["adjacency"])


def test_conditioning_holds_the_given_eigenvalues_and_sizes():
    model = SpectralVectorGenerator(tiny_config())
    model.fit(toy_graphs())
    target = torch.tensor([0.0, 0.25, 0.9])
    out = model.sample_weighted(3, eigenvalues=target, sizes=[5, 6, 7], generator=torch.Generator().manual_seed(0))
    assert torch.equal(out["eigenvalues"][:, :3], target.double().expand(3, 3))
    assert out["sizes"].tolist() == [5, 6, 7]
    free = model.sample_weighted(3, sizes=[5, 6, 7], generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(free["eigenvalues"][:, :3], target.double().expand(3, 3), atol=1e-2)
    graphs = model.sample(2, eigenvalues=torch.tensor([[0.0, 0.1], [0.0, 0.2]]))
    assert len(graphs) == 2
    with pytest.raises(ValueError, match="k=4"):
        model.sample(2, eigenvalues=torch.zeros(5))
    with pytest.raises(ValueError, match="shape"):
        model.sample(2, eigenvalues=torch.zeros(3, 2))


def test_sampling_is_deterministic_under_a_seed_and_bernoulli_edges_are_symmetric():
    model = SpectralVectorGenerator(tiny_config(edge_sampling="bernoulli"))
    model.fit(toy_graphs())
    a = model.sample_weighted(4, generator=torch.Generator().manual_seed(5))
    b = model.sample_weighted(4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a["adjacency"], b["adjacency"])
    assert set(a["adjacency"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a["adjacency"], a["adjacency"].mT)
    assert set(a["sizes"].tolist()) <= {5, 6, 7}
    assert "orthogonality_error" in model.diagnostics(a)


def test_generated_graphs_differ_from_the_training_graphs():
    graphs = toy_graphs()
    model = get_model("spectral_vectors", tiny_config(epochs=20))
    assert isinstance(model, SpectralVectorGenerator)
    model.fit(graphs)
    samples = model.sample(12, generator=torch.Generator().manual_seed(0))
    assert fraction_novel(samples, graphs) >= 0.5


def test_config_fields_are_backwards_compatible_and_checked():
    old = {k: v for k, v in GenerationConfig().to_dict().items()
           if k not in ("num_eigenvectors", "decoder_dim", "decoder_layers", "decoder_noise", "decoder_inputs",
                        "decoder_graphs", "edge_sampling")}
    assert GenerationConfig.from_dict(old) == GenerationConfig()
    assert GenerationConfig.from_dict(tiny_config().to_dict()) == tiny_config()
    with pytest.raises(ValueError, match="edge_sampling"):
        tiny_config(edge_sampling="sample")
    with pytest.raises(ValueError, match="num_eigenvectors"):
        tiny_config(num_eigenvectors=0)
    with pytest.raises(ValueError, match="decoder_noise"):
        tiny_config(decoder_noise=-0.1)


def test_decoder_inputs_option_is_checked_and_names_the_valid_values():
    assert GenerationConfig().decoder_inputs == "noised"
    with pytest.raises(ValueError, match=r"decoder_inputs must be one of \['noised', 'denoised'\]"):
        tiny_config(decoder_inputs="tweedie")


def test_denoised_decoder_inputs_are_the_score_networks_tweedie_estimate():
    from spectraldiff.noising import perturb

    model = SpectralVectorGenerator(tiny_config(decoder_inputs="denoised"))
    model.fit(toy_graphs())
    batch = model.training_batch(torch.arange(6), torch.Generator().manual_seed(0))
    state = {"eigenvectors": batch["eigenvectors"], "eigenvalues": batch["eigenvalues"]}
    nodes, slots = batch["node_mask"], batch["slot_mask"]
    got = model.decoder_training_input(state, nodes, slots, torch.Generator().manual_seed(1))
    # The same draws by hand: t uniform on [eps, t_eq], then the kernel's noise, then x̂_0 from ε̂.
    g, sde = torch.Generator().manual_seed(1), model.sde
    t_eq = model.equal_noise_time()
    assert 0.2 < t_eq < 0.3  # VP SDE: std(t) = mean(t) near t = 0.26
    t = sde.eps + (t_eq - sde.eps) * torch.rand(6, generator=g)
    masks = {"eigenvectors": nodes[:, :, None] & slots[:, None, :], "eigenvalues": slots}
    noisy = {key: perturb(state[key], t, sde, masks[key], generator=g)[0] for key in state}
    with torch.no_grad():
        eps = dict(zip(state, model.network["score"](noisy["eigenvectors"], noisy["eigenvalues"], t, nodes, slots)))
    for key in state:
        expected = sde.data_from_noise(eps[key], noisy[key], t) * masks[key]
        assert torch.allclose(got[key], expected, atol=1e-6), key
        assert not got[key].requires_grad
        assert not torch.allclose(got[key], state[key], atol=1e-2)  # not the clean eigenpairs
    assert torch.all(got["eigenvectors"][~masks["eigenvectors"]] == 0)
    # Under the default the decoder reads the clean eigenpairs plus decoder_noise, a different input.
    model.config.decoder_inputs = "noised"
    noised = model.decoder_training_input(state, nodes, slots, torch.Generator().manual_seed(1))
    assert not torch.allclose(noised["eigenvectors"], got["eigenvectors"], atol=1e-2)
    residual = (noised["eigenvectors"] - state["eigenvectors"])[masks["eigenvectors"]]
    assert abs(float(residual.std()) - model.config.decoder_noise) < 0.03


def test_training_feeds_the_decoder_its_training_input():
    model = SpectralVectorGenerator(tiny_config(decoder_inputs="denoised", epochs=1))
    model.fit(toy_graphs())
    made, seen = [], []
    original = model.decoder_training_input

    def recording(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    model.decoder_training_input = recording
    model.network["decoder"].register_forward_pre_hook(lambda module, args: seen.append(args))
    model._batch_loss(torch.arange(6), torch.Generator().manual_seed(0))
    vectors, values, nodes, slots = seen[0]
    assert torch.equal(vectors, made[0]["eigenvectors"])
    assert torch.allclose(values, model.unscale_values(made[0]["eigenvalues"], slots.float()))


@pytest.mark.parametrize("decoder_graphs", [1, 4, 8])
def test_the_decoder_trains_on_the_first_decoder_graphs_of_each_batch(decoder_graphs):
    model = SpectralVectorGenerator(tiny_config(epochs=1, decoder_graphs=decoder_graphs))
    model.fit(toy_graphs())
    seen = []
    model.network["decoder"].register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
    model._batch_loss(torch.tensor([3, 0, 5, 1, 2, 4]), torch.Generator().manual_seed(0))
    # At most the batch, padded to the largest of the graphs the decoder sees.
    sizes = [toy_graphs()[i].number_of_nodes() for i in [3, 0, 5, 1, 2, 4][:decoder_graphs]]
    assert seen == [torch.Size([min(decoder_graphs, 6), max(sizes), 4])]
    with pytest.raises(ValueError, match="decoder_graphs must be ≥ 1, got 0"):
        tiny_config(decoder_graphs=0)

