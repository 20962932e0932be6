"""`eigenvector_projection: polar`: generated eigenvectors made orthonormal before decoding."""

import networkx as nx
import pytest
import torch

from spectraldiff.generation import GenerationConfig
from spectraldiff.generation.dense import graphs_to_dense
from spectraldiff.generation.eigenpairs import laplacian_eigenpairs, nearest_orthonormal
from spectraldiff.generation.spectral_vectors import SpectralVectorGenerator


pytestmark = pytest.mark.usefixtures("one_thread")


def padded_vectors() -> tuple[torch.Tensor, torch.Tensor]:
    """Two nearly orthonormal `(N=7, k=4)` matrices: 5 nodes and 4 slots, 3 nodes and 3 slots."""
    g = torch.Generator().manual_seed(0)
    U = torch.zeros(2, 7, 4, dtype=torch.float64)
    U[0, :5] = torch.linalg.qr(torch.randn(5, 4, generator=g, dtype=torch.float64)).Q
    U[1, :3, :3] = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64)).Q
    U = U + 0.1 * torch.randn(U.shape, generator=g, dtype=torch.float64) * (U != 0)
    return U, torch.tensor([[True] * 4, [True] * 3 + [False]])


def test_the_projection_is_orthonormal_keeps_the_padding_and_is_the_polar_factor():
    U, slots = padded_vectors()
    Q = nearest_orthonormal(U, slots)
    for b, (n, k) in enumerate([(5, 4), (3, 3)]):
        assert torch.allclose(Q[b, :n, :k].mT @ Q[b, :n, :k], torch.eye(k, dtype=torch.float64), atol=1e-12)
        assert torch.all(Q[b, n:] == 0) and torch.all(Q[b, :, k:] == 0)
        # the polar factor U (UᵀU)^(-1/2): the closest matrix with orthonormal columns
        gram = U[b, :n, :k].mT @ U[b, :n, :k]
        values, vectors = torch.linalg.eigh(gram)
        expected = U[b, :n, :k] @ vectors @ torch.diag(values.rsqrt()) @ vectors.mT
        assert torch.allclose(Q[b, :n, :k], expected, atol=1e-10)
        rotated = torch.linalg.qr(U[b, :n, :k]).Q  # another orthonormal basis of the same columns: farther
        assert torch.linalg.norm(U[b, :n, :k] - Q[b, :n, :k]) < torch.linalg.norm(U[b, :n, :k] - rotated)


def test_true_eigenvectors_come_back_unchanged():
    A, sizes = graphs_to_dense([nx.cycle_graph(6), nx.path_graph(4)], dtype=torch.float64)
    _, vectors = laplacian_eigenpairs(A, sizes)
    U, slots = vectors[:, :, :4], torch.tensor([[True] * 4, [True] * 4])
    assert torch.allclose(nearest_orthonormal(U, slots), U, atol=1e-10)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"U must be \(B, N, k\) and slots \(B, k\)"):
        nearest_orthonormal(torch.zeros(2, 5, 3), torch.ones(2, 4, dtype=torch.bool))


def test_option_is_checked_and_names_the_valid_values():
    assert GenerationConfig().eigenvector_projection == "none"
    with pytest.raises(ValueError, match=r"eigenvector_projection must be one of \['none', 'polar', 'polar_denoised'\]"):
        GenerationConfig(eigenvector_projection="qr")


def test_sampling_decodes_the_projection_of_the_same_draw():
    graphs = [nx.cycle_graph(6), nx.path_graph(5), nx.star_graph(5), nx.complete_graph(5), nx.ladder_graph(3),
              nx.wheel_graph(7)]
    config = GenerationConfig(model="spectral_vectors", epochs=2, steps=4, batch_size=8, hidden_dim=16,
                              num_layers=1, num_eigenvectors=4, decoder_dim=8, decoder_layers=1, seed=0,
                              edge_sampling="bernoulli")
    model = SpectralVectorGenerator(config)
    model.fit(graphs)
    raw = model.sample_weighted(5, generator=torch.Generator().manual_seed(3))
    model.config = GenerationConfig.from_dict({**config.to_dict(), "eigenvector_projection": "polar"})
    projected = model.sample_weighted(5, generator=torch.Generator().manual_seed(3))
    # the projection comes after the reverse diffusion: same sizes and eigenvalues, projected vectors
    assert torch.equal(raw["sizes"], projected["sizes"]) and torch.equal(raw["eigenvalues"], projected["eigenvalues"])
    slots = torch.arange(4)[None, :] < raw["sizes"][:, None]
    assert torch.allclose(projected["eigenvectors"], nearest_orthonormal(raw["eigenvectors"], slots), atol=1e-5)
    assert model.diagnostics(raw)["orthogonality_error"] > 0.05
    assert model.diagnostics(projected)["orthogonality_error"] < 1e-5
    # and they are what the decoder read
    scale = raw["sizes"].float().sqrt()[:, None, None]
    nodes = torch.arange(7)[None, :] < raw["sizes"][:, None]
    values = model.scale_values(projected["eigenvalues"].float(), slots.float())
    expected = model.decode(projected["eigenvectors"] * scale, values, nodes, slots)
    assert torch.allclose(projected["probabilities"], expected, atol=1e-5)
    assert not torch.allclose(raw["probabilities"], expected, atol=1e-3)


def _fitted(**extra) -> SpectralVectorGenerator:
    graphs = [nx.cycle_graph(6), nx.path_graph(5), nx.star_graph(5), nx.complete_graph(5), nx.ladder_graph(3),
              nx.wheel_graph(7)]
    config = GenerationConfig(model="spectral_vectors", epochs=2, steps=6, batch_size=8, hidden_dim=16,
                              num_layers=1, num_eigenvectors=4, decoder_dim=8, decoder_layers=1, seed=0,
                              edge_sampling="bernoulli", **extra)
    model = SpectralVectorGenerator(config)
    model.fit(graphs)
    return model


def test_polar_denoised_scores_point_at_orthonormal_denoised_eigenvectors_late_only():
    """At t ≤ equal_noise_time the eigenvectors' score is the one whose denoised estimate (Tweedie) is
    the nearest orthonormal matrix to the network's; earlier, and for the eigenvalues, it is unchanged."""
    model = _fitted()
    network, sde, cutoff = model.network["score"], model.sde, model.equal_noise_time()
    g = torch.Generator().manual_seed(5)
    sizes = torch.tensor([6, 4, 5])
    nodes, slots = torch.arange(7)[None, :] < sizes[:, None], torch.arange(4)[None, :] < sizes[:, None]
    mask = (nodes[:, :, None] & slots[:, None, :]).float()
    x = {"eigenvectors": torch.randn(3, 7, 4, generator=g) * mask, "eigenvalues": torch.randn(3, 4, generator=g)}
    plain = model._score_fn(network, nodes, slots)
    steered = model._score_fn(network, nodes, slots, project_below=cutoff)
    with torch.no_grad():
        for time, moved in ((cutoff - 0.05, True), (cutoff + 0.05, False)):
            t = torch.full((3,), time)
            a, b = plain(x, t), steered(x, t)
            assert torch.equal(a["eigenvalues"], b["eigenvalues"])
            if not moved:
                assert torch.equal(a["eigenvectors"], b["eigenvectors"])
                continue
            network_estimate = sde.data_from_score(a["eigenvectors"], x["eigenvectors"], t) * mask
            steered_estimate = sde.data_from_score(b["eigenvectors"], x["eigenvectors"], t) * mask
            expected = nearest_orthonormal(network_estimate, slots) * sizes.float().sqrt()[:, None, None]
            assert torch.allclose(steered_estimate, expected, atol=1e-4)
            assert not torch.allclose(steered_estimate, network_estimate, atol=1e-2)
            assert torch.all(b["eigenvectors"] * (1 - mask) == 0)


def test_polar_denoised_sampling_steers_the_draw_and_ends_orthonormal():
    model = _fitted()
    config = model.config
    draws = {}
    for projection in ("polar", "polar_denoised", "polar_denoised"):
        model.config = GenerationConfig.from_dict({**config.to_dict(), "eigenvector_projection": projection})
        draws.setdefault(projection, []).append(model.sample_weighted(5, generator=torch.Generator().manual_seed(3)))
    polar, (steered, again) = draws["polar"][0], draws["polar_denoised"]
    assert torch.equal(steered["eigenvectors"], again["eigenvectors"])  # seeded, deterministic
    assert torch.equal(polar["sizes"], steered["sizes"])
    assert not torch.allclose(polar["eigenvectors"], steered["eigenvectors"], atol=1e-3)  # another trajectory
    assert model.diagnostics(steered)["orthogonality_error"] < 1e-5
