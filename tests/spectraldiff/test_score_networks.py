"""Reference score networks: masking, padding invariance, equivariance, conditions."""

import pytest
import torch

from spectraldiff import EigenvalueScoreNet, FeatureScoreNet, NoiseToScore, SpectralGraph, SpectrumMLPScoreNet, VPSDE
from spectraldiff.demo import community_adjacency

MASK = torch.tensor([[True] * 6, [True] * 4 + [False] * 2, [True] + [False] * 5])


def test_eigenvalue_net_ignores_padded_slots_and_zeroes_them():
    torch.manual_seed(0)
    net = EigenvalueScoreNet(hidden_dim=16, num_layers=2).eval()
    lam, t = torch.randn(3, 6), torch.rand(3)
    out = net(lam * MASK, t, MASK)
    garbage = lam * MASK + 100.0 * (~MASK)
    out_garbage = net(garbage, t, MASK)
    assert torch.all(out[~MASK] == 0)
    assert torch.allclose(out[MASK], out_garbage[MASK], atol=1e-5)


def test_spectrum_mlp_ignores_padded_slots_and_zeroes_them():
    torch.manual_seed(0)
    net = SpectrumMLPScoreNet(max_nodes=6, hidden_dim=16, num_layers=2).eval()
    lam, t = torch.randn(3, 6), torch.rand(3)
    out = net(lam * MASK, t, MASK)
    out_garbage = net(lam * MASK + 100.0 * (~MASK), t, MASK)
    assert torch.all(out[~MASK] == 0)
    assert torch.allclose(out[MASK], out_garbage[MASK], atol=1e-6)


def test_spectrum_mlp_sees_the_graph_size_and_the_time():
    torch.manual_seed(2)
    net = SpectrumMLPScoreNet(max_nodes=6, hidden_dim=16, num_layers=1).eval()
    lam = torch.randn(1, 6)
    t = torch.full((1,), 0.3)
    five, six = MASK[1:2].clone(), MASK[:1]
    five[0, 4] = True  # 5 real slots
    # The same four leading values read differently when the graph has 5 or 6 nodes, and at another time.
    assert not torch.allclose(net(lam * six, t, six)[0, :4], net(lam * five, t, five)[0, :4])
    assert not torch.allclose(net(lam, t, six), net(lam, torch.full((1,), 0.9), six))


def test_spectrum_mlp_rejects_another_padded_size_and_a_condition():
    net = SpectrumMLPScoreNet(max_nodes=6, hidden_dim=8, num_layers=1)
    with pytest.raises(ValueError, match="built for 6 slots"):
        net(torch.randn(2, 7), torch.rand(2), torch.ones(2, 7, dtype=torch.bool))
    with pytest.raises(ValueError, match="takes no condition"):
        net(torch.randn(3, 6), torch.rand(3), MASK, torch.randn(3, 2))
    with pytest.raises(ValueError, match="max_nodes must be"):
        SpectrumMLPScoreNet(max_nodes=0)


def test_eigenvalue_net_depends_on_time_and_condition():
    torch.manual_seed(1)
    net = EigenvalueScoreNet(hidden_dim=16, num_layers=1, condition_dim=3).eval()
    lam = torch.randn(3, 6) * MASK
    c = torch.randn(3, 3)
    base = net(lam, torch.full((3,), 0.2), MASK, c)
    assert not torch.allclose(base, net(lam, torch.full((3,), 0.8), MASK, c))
    assert not torch.allclose(base, net(lam, torch.full((3,), 0.2), MASK, c + 1))
    with pytest.raises(ValueError, match="expects a condition"):
        net(lam, torch.rand(3), MASK)
    with pytest.raises(ValueError, match="condition_dim=0"):
        EigenvalueScoreNet(hidden_dim=16, num_layers=1)(lam, torch.rand(3), MASK, c)


def test_feature_net_is_permutation_equivariant_and_ignores_padding():
    torch.manual_seed(2)
    A, sizes = community_adjacency(2, min_nodes=8, max_nodes=8, generator=torch.Generator().manual_seed(0))
    g = SpectralGraph.from_dense(A, sizes)
    net = FeatureScoreNet(feature_dim=3, hidden_dim=16, num_layers=2).eval()
    X, t = torch.randn(2, 8, 3), torch.rand(2)
    out = net(X, g.eigenvalues, g.eigenvectors, t, g.mask)
    perm = torch.randperm(8)
    out_perm = net(X[:, perm], g.eigenvalues, g.eigenvectors[:, perm], t, g.mask[:, perm])
    assert torch.allclose(out_perm, out[:, perm], atol=1e-5)

    # One real graph of 5 nodes padded to 8: padded rows are zero and do not influence real nodes.
    A5 = torch.zeros(1, 8, 8)
    A5[0, :5, :5] = A[0, :5, :5]
    g5 = SpectralGraph.from_dense(A5, [5])
    X5 = X[:1].clone()
    ref = net(X5, g5.eigenvalues, g5.eigenvectors, t[:1], g5.mask)
    X5[:, 5:] = 50.0
    out5 = net(X5, g5.eigenvalues, g5.eigenvectors, t[:1], g5.mask)
    assert torch.all(out5[:, 5:] == 0) and torch.allclose(out5[:, :5], ref[:, :5], atol=1e-5)


def test_noise_to_score_divides_by_the_kernel_std():
    sde = VPSDE()
    net = lambda x, t, c: torch.ones_like(x)  # noqa: E731
    score = NoiseToScore(torch.nn.Identity(), sde, call=lambda n, x, t, c: net(x, t, c))
    t = torch.tensor([0.1, 0.9])
    _, std = sde.marginal_prob(torch.zeros(2), t)
    assert torch.allclose(score(torch.zeros(2, 3), t), -1 / std[:, None].expand(2, 3))
