"""Denoising score matching: zero at the exact score, masks, weightings, joint states."""

import pytest
import torch

from spectraldiff import VESDE, VPSDE, dsm_loss
from spectraldiff.losses import sample_time


def point_mass_score(sde, value):
    """Exact score of p_t when the data is the point mass at ``value``: −(x − mean(t) value)/std(t)²."""

    def score(x, t, condition=None):
        coef, std = sde.marginal_prob(torch.ones_like(t), t)
        shape = (-1,) + (1,) * (x.dim() - 1)
        return -(x - coef.reshape(shape) * value) / std.reshape(shape) ** 2

    return score


@pytest.mark.parametrize("weighting", ["sigma2", "likelihood", "none", "data"])
@pytest.mark.parametrize("sde", [VPSDE(), VESDE()], ids=["vp", "ve"])
def test_loss_is_zero_at_the_exact_score_and_positive_elsewhere(sde, weighting):
    x0 = torch.full((64, 5), 0.7, dtype=torch.float64)
    exact = dsm_loss(point_mass_score(sde, 0.7), sde, x0, weighting=weighting)
    wrong = dsm_loss(point_mass_score(sde, 0.2), sde, x0, weighting=weighting)
    assert float(exact) < 1e-18
    assert float(wrong) > 1e-3


def test_masked_entries_do_not_count():
    sde = VPSDE()
    mask = torch.tensor([[True, True, False]]).repeat(32, 1)
    x0 = torch.full((32, 3), 0.7, dtype=torch.float64) * mask

    def score_with_garbage_in_padding(x, t, condition=None):
        s = point_mass_score(sde, 0.7)(x, t)
        return torch.where(mask, s, torch.full_like(s, 1e6))

    assert float(dsm_loss(score_with_garbage_in_padding, sde, x0, mask=mask)) < 1e-18


def test_sigma2_weighting_is_the_squared_noise_prediction_error():
    sde = VPSDE()
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(16, 4, dtype=torch.float64)
    t = sample_time(16, sde, generator=gen, dtype=torch.float64)
    predicted_noise = torch.randn(16, 4, dtype=torch.float64, generator=gen)
    score = lambda x, t_, c: sde.score_from_noise(predicted_noise, t_)  # noqa: E731
    loss = dsm_loss(score, sde, x0, t=t, generator=torch.Generator().manual_seed(5))
    z = torch.randn(16, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(loss, ((predicted_noise - z) ** 2).mean())


@pytest.mark.parametrize("sde", [VPSDE(), VESDE()], ids=["vp", "ve"])
def test_data_weighting_is_the_squared_error_of_a_clean_value_prediction(sde):
    # A network predicting x̂_0, turned into the score (mean·x̂_0 − x_t)/std²: the loss is ‖x̂_0 − x_0‖²
    # at every t, large t included.
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(16, 4, dtype=torch.float64, generator=gen)
    predicted = torch.randn(16, 4, dtype=torch.float64, generator=gen)
    t = torch.linspace(0.05, 1.0, 16, dtype=torch.float64)

    def score(x, t_, c):
        mean, std = sde.marginal_prob(torch.ones_like(t_), t_)
        return (mean[:, None] * predicted - x) / std[:, None] ** 2

    loss = dsm_loss(score, sde, x0, t=t, weighting="data")
    assert torch.allclose(loss, ((predicted - x0) ** 2).mean(), rtol=1e-9)


def test_likelihood_weighting_scales_by_g_squared():
    sde = VPSDE()
    x0 = torch.randn(8, 3, dtype=torch.float64)
    t = torch.linspace(0.1, 0.9, 8, dtype=torch.float64)
    score = lambda x, t_, c: torch.ones_like(x)  # noqa: E731
    plain = dsm_loss(score, sde, x0, t=t, weighting="none", generator=torch.Generator().manual_seed(1))
    weighted = dsm_loss(score, sde, x0, t=t, weighting="likelihood", generator=torch.Generator().manual_seed(1))
    z = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _, std = sde.marginal_prob(x0, t)
    _, g = sde.sde(x0, t)
    per = (1 + z / std[:, None]) ** 2
    assert torch.allclose(plain, per.mean()) and torch.allclose(weighted, (g[:, None] ** 2 * per).mean())


def test_joint_state_returns_a_loss_per_key_with_one_shared_time():
    sdes = {"features": VPSDE(), "eigenvalues": VESDE()}
    seen_t = []

    def score(state, t, condition=None):
        seen_t.append(t)
        assert condition == "c"
        return {k: point_mass_score(sdes[k], 0.5)(v, t) for k, v in state.items()}

    x0 = {"features": torch.full((8, 4, 2), 0.5, dtype=torch.float64),
          "eigenvalues": torch.full((8, 4), 0.5, dtype=torch.float64)}
    losses = dsm_loss(score, sdes, x0, condition="c")
    assert set(losses) == {"features", "eigenvalues"} and all(float(v) < 1e-18 for v in losses.values())
    assert len(seen_t) == 1


def test_unknown_weighting_and_missing_sde_key_raise():
    with pytest.raises(ValueError, match="sigma2"):
        dsm_loss(lambda x, t, c: x, VPSDE(), torch.zeros(2, 2), weighting="nope")
    with pytest.raises(ValueError, match="eigenvalues"):
        dsm_loss(lambda s, t, c: s, {"features": VPSDE()}, {"features": torch.zeros(2, 2),
                                                           "eigenvalues": torch.zeros(2, 2)})
