"""A new edge decoder on a saved spectral_vectors diffusion (`fit_decoder`, `generate --decoder-epochs`):
the score network, its EMA and its Adam state stay; the decoder is rebuilt from the new settings,
trained reproducibly, saved, and the run can still be continued; wrong uses are refused."""

import dataclasses
import json

import pytest
import torch

from spectraldiff.generation import GenerationConfig, get_model, load_generator
from spectraldiff.generation.datasets import community_small
from tests.spectraldiff.generation.generate_runs import run_generate as _generate
from tests.spectraldiff.generation.generate_runs import weights as _weights


def _config(**extra):
    settings = dict(model="spectral_vectors", epochs=2, batch_size=4, hidden_dim=16, num_layers=1, steps=4, seed=3,
                    num_eigenvectors=4, decoder_dim=8, decoder_layers=0)
    return GenerationConfig(**{**settings, **extra})


def _fitted(graphs):
    torch.manual_seed(0)
    model = get_model("spectral_vectors", _config())
    model.fit(graphs, generator=torch.Generator().manual_seed(3))
    return model


def test_a_new_decoder_keeps_the_diffusion_and_trains_reproducibly():
    graphs = community_small(12, seed=1)
    model = _fitted(graphs)
    score, ema_score = _weights(model.network["score"]), _weights(model.ema_network["score"])
    adam = [model._optimizer.state[p]["exp_avg"].clone() for p in model.network["score"].parameters()]
    wider = dataclasses.replace(model.config, decoder_layers=1, decoder_noise=0.3)
    global_state = torch.random.get_rng_state()
    losses = model.fit_decoder(graphs, 6, config=wider)
    assert torch.equal(torch.random.get_rng_state(), global_state)  # seeded inside, caller's generator untouched
    assert len(losses) == 6 and losses[-1] < losses[0]  # it learns the edges
    assert len(model.network["decoder"].blocks) == 1 and len(model.ema_network["decoder"].blocks) == 1
    assert model.config.decoder_noise == 0.3 and model.epochs_trained == 2  # diffusion epochs unchanged
    for name, reference in score.items():
        assert torch.equal(model.network["score"].state_dict()[name], reference), name
        assert torch.equal(model.ema_network["score"].state_dict()[name], ema_score[name]), name
    kept = [model._optimizer.state[p]["exp_avg"] for p in model.network["score"].parameters()]
    assert all(torch.equal(a, b) for a, b in zip(kept, adam, strict=True))
    assert not any(model._optimizer.state[p] for p in model.network["decoder"].parameters())  # fresh Adam
    # EMA of the new decoder follows it, not the random initialisation
    gap = sum(float((a - b).abs().max()) for a, b in zip(model.ema_network["decoder"].parameters(),
                                                         model.network["decoder"].parameters()))
    assert gap < 0.5
    # the same retraining of the same model gives the same decoder, bit for bit
    again = _fitted(graphs)
    again.fit_decoder(graphs, 6, config=wider)
    for name, reference in _weights(model.network["decoder"]).items():
        assert torch.equal(again.network["decoder"].state_dict()[name], reference), name


def test_a_model_with_a_new_decoder_saves_loads_and_continues(tmp_path):
    graphs = community_small(12, seed=1)
    model = _fitted(graphs)
    model.fit_decoder(graphs, 2, config=dataclasses.replace(model.config, decoder_layers=1))
    model.save(tmp_path / "model.pt")
    loaded = load_generator(tmp_path / "model.pt", graphs)
    assert loaded.config.decoder_layers == 1
    draw = lambda m: m.sample_weighted(3, generator=torch.Generator().manual_seed(5))["adjacency"]  # noqa: E731
    assert torch.equal(draw(loaded), draw(model))
    model.fit(graphs, resume=True)
    loaded.fit(graphs, resume=True)
    assert loaded.epochs_trained == 4
    for name, reference in _weights(model.network).items():
        assert torch.equal(loaded.network.state_dict()[name], reference), name


def test_a_new_decoder_is_refused_on_an_unfitted_model_other_graphs_a_new_score_network_or_zero_epochs():
    graphs = community_small(12, seed=1)
    with pytest.raises(ValueError, match="needs a fitted or loaded model"):
        get_model("spectral_vectors", _config()).fit_decoder(graphs, 1)
    model = _fitted(graphs)
    with pytest.raises(ValueError, match="the graphs the model was trained on"):
        model.fit_decoder(graphs[::-1], 1, config=dataclasses.replace(model.config, decoder_layers=1))
    with pytest.raises(ValueError, match=r"settings must stay; num_eigenvectors 4 → 3, num_layers 1 → 2"):
        model.fit_decoder(graphs, 1, config=dataclasses.replace(model.config, num_layers=2, num_eigenvectors=3))
    with pytest.raises(ValueError, match="epochs must be ≥ 1"):
        model.fit_decoder(graphs, 0)
    assert (model.config.num_layers, model.config.decoder_layers) == (1, 0)  # nothing changed
    assert len(model.network["decoder"].blocks) == 0


def test_generate_decoder_epochs_builds_the_configured_decoder_and_refuses_misuse(
        tmp_path, capsys, graphs_file, saved_vectors_model):
    data, saved = str(graphs_file), str(saved_vectors_model)
    (tmp_path / "dec.yaml").write_text("decoder_layers: 0\ndecoder_dim: 8\n")
    flags = ["--graphs", data, "--resume-from", saved, "--config", str(tmp_path / "dec.yaml")]
    assert _generate(*flags, "--decoder-epochs", "2", "--out", str(tmp_path / "dec")) == 0
    metrics = json.loads((tmp_path / "dec" / "metrics.json").read_text())
    assert (metrics["epochs"], metrics["decoder_epochs"]) == (2, 2) and metrics["loss_last_epoch"] is not None
    written = torch.load(tmp_path / "dec" / "model.pt", weights_only=True)
    assert (written["config"]["decoder_layers"], written["config"]["decoder_dim"]) == (0, 8)
    assert not any(key.startswith("decoder.blocks") for key in written["network"])
    # The summary names the learning rate and EMA decay the decoder trained with: the saved run's here.
    saved_config = torch.load(saved_vectors_model, weights_only=True)["config"]
    assert (f"a new edge decoder for 2 epochs at learning rate {saved_config['learning_rate']:g} (constant), "
            f"EMA decay {saved_config['ema_decay']:g}") in capsys.readouterr().out
    (tmp_path / "dec_lr.yaml").write_text("decoder_layers: 0\nlearning_rate: 0.0005\nema_decay: 0.9\n"
                                          "learning_rate_schedule: cosine\n")
    assert _generate("--graphs", data, "--resume-from", saved, "--config", str(tmp_path / "dec_lr.yaml"),
                     "--decoder-epochs", "1", "--out", str(tmp_path / "dec_lr")) == 0
    assert "at learning rate 0.0005 (cosine), EMA decay 0.9;" in capsys.readouterr().out
    assert json.loads((tmp_path / "dec_lr" / "config.json").read_text())["learning_rate"] == 0.0005
    assert _generate(*flags, "--decoder-epochs", "2", "--epochs", "1", "--out", str(tmp_path / "both")) == 2
    assert "no --epochs" in capsys.readouterr().err
    assert _generate("--graphs", data, "--decoder-epochs", "2", "--out", str(tmp_path / "fresh")) == 2
    assert "give --resume-from" in capsys.readouterr().err
    assert _generate(*flags, "--decoder-epochs", "0", "--out", str(tmp_path / "zero")) == 2
    assert "--decoder-epochs must be >= 1" in capsys.readouterr().err
