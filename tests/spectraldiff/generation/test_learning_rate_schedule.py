"""`learning_rate_schedule`: constant, or a cosine from the peak down to 1 % of it over each training call
(`fit`, a resumed leg, `fit_decoder`); set from a config file or `--lr-schedule`."""

import dataclasses
import math

import pytest
import torch

from spectraldiff.cli import build_parser
from spectraldiff.generation import GenerationConfig, get_model
from spectraldiff.generation.cli import resolve_config
from spectraldiff.generation.datasets import community_small
from spectraldiff.generation.generator import COSINE_FINAL_FRACTION, scheduled_learning_rate


def test_cosine_falls_from_the_peak_to_one_percent_and_constant_stays():
    rates = [scheduled_learning_rate(0.1, "cosine", step, 11) for step in range(11)]
    assert rates[0] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.1 * COSINE_FINAL_FRACTION)
    assert rates[5] == pytest.approx((0.1 + 0.001) / 2)  # halfway down at the middle step
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert {scheduled_learning_rate(0.1, "constant", step, 11) for step in range(11)} == {0.1}
    assert scheduled_learning_rate(0.1, "cosine", 0, 1) == pytest.approx(0.1)  # one step: the peak
    with pytest.raises(ValueError, match="linear"):
        scheduled_learning_rate(0.1, "linear", 0, 11)


@pytest.fixture
def recorded_rates(monkeypatch):
    """The learning rate of every Adam step taken while the test runs."""
    rates, step = [], torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    return rates


def _config(**extra):
    settings = dict(model="spectral_vectors", epochs=3, batch_size=4, hidden_dim=16, num_layers=1, steps=4, seed=3,
                    num_eigenvectors=4, decoder_dim=8, decoder_layers=0, learning_rate=0.01)
    return GenerationConfig(**{**settings, **extra})


def test_fit_follows_the_cosine_step_by_step_and_a_resumed_leg_restarts_at_the_peak(recorded_rates):
    graphs = community_small(12, seed=1)  # 3 batches of 4 per epoch, 3 epochs: 9 steps
    model = get_model("spectral_vectors", _config(learning_rate_schedule="cosine"))
    model.fit(graphs)
    expected = [scheduled_learning_rate(0.01, "cosine", step, 9) for step in range(9)]
    assert recorded_rates == pytest.approx(expected)
    assert model._optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * COSINE_FINAL_FRACTION)
    recorded_rates.clear()
    model.fit(graphs, resume=True)
    assert recorded_rates == pytest.approx(expected)


def test_the_schedule_changes_the_weights_and_constant_is_unchanged(recorded_rates):
    graphs = community_small(12, seed=1)
    fits = {}
    for schedule in ("constant", "cosine"):
        model = get_model("spectral_vectors", _config(learning_rate_schedule=schedule))
        model.fit(graphs)
        fits[schedule] = torch.cat([p.detach().flatten() for p in model.network.parameters()])
    assert recorded_rates[:9] == [0.01] * 9
    assert not torch.allclose(fits["constant"], fits["cosine"])


def test_a_new_decoder_runs_its_own_cosine_over_its_epochs(recorded_rates):
    graphs = community_small(12, seed=1)
    model = get_model("spectral_vectors", _config())
    model.fit(graphs)
    recorded_rates.clear()
    model.fit_decoder(graphs, 2, config=dataclasses.replace(model.config, learning_rate_schedule="cosine"))
    assert recorded_rates == pytest.approx([scheduled_learning_rate(0.01, "cosine", s, 6) for s in range(6)])


def test_the_schedule_is_checked_and_set_from_a_flag_or_a_file(tmp_path):
    with pytest.raises(ValueError, match="learning_rate_schedule must be one of"):
        GenerationConfig(learning_rate_schedule="linear")
    args = build_parser().parse_args(["generate", "--out", str(tmp_path / "o"), "--lr-schedule", "cosine"])
    assert resolve_config(args).learning_rate_schedule == "cosine"
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate_schedule: cosine\nlearning_rate: 0.001\n")
    args = build_parser().parse_args(["generate", "--config", str(path), "--out", str(tmp_path / "o")])
    config = resolve_config(args)
    assert (config.learning_rate_schedule, config.learning_rate) == ("cosine", 0.001)
    assert GenerationConfig().learning_rate_schedule == "constant"
    assert not math.isnan(scheduled_learning_rate(1.0, "cosine", 0, 0))  # an empty call does not divide by zero
