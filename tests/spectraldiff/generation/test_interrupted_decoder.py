"""A new edge decoder's training saves itself too (`fit_decoder(checkpoint_every=...)`,
`generate --decoder-epochs N --checkpoint-every C`), and a run cut short is finished exactly."""

import dataclasses
import warnings

import pytest
import torch

from spectraldiff.generation import GenerationConfig, get_model, load_generator
from spectraldiff.generation.datasets import community_small
from spectraldiff.generation.spectral_vectors import SpectralVectorGenerator
from tests.spectraldiff.generation.generate_runs import finish_cut_run, read_metrics
from tests.spectraldiff.generation.generate_runs import run_generate as _generate
from tests.spectraldiff.generation.generate_runs import weights as _weights


def _diffusion(graphs, path):
    """A 2-epoch spectral_vectors model with a filter-bank decoder, saved at ``path``."""
    config = GenerationConfig(model="spectral_vectors", epochs=2, batch_size=4, hidden_dim=16, num_layers=1,
                              steps=4, seed=3, num_eigenvectors=4, decoder_dim=8, decoder_layers=0)
    model = get_model("spectral_vectors", config)
    model.fit(graphs)
    model.save(path)
    return model.config


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_a_decoder_training_saved_on_the_way_and_finished_equals_the_uninterrupted_one(tmp_path, schedule):
    graphs = community_small(12, seed=1)
    config = _diffusion(graphs, tmp_path / "diffusion.pt")
    new = dataclasses.replace(config, decoder_layers=1, learning_rate=0.01, learning_rate_schedule=schedule)
    whole = load_generator(tmp_path / "diffusion.pt", graphs)
    whole.fit_decoder(graphs, 5, config=new)
    saving = load_generator(tmp_path / "diffusion.pt", graphs)
    saving.fit_decoder(graphs, 5, config=new, checkpoint_every=2, checkpoint_path=tmp_path / "cut.pt")
    assert saving.decoder_progress() is None and saving.unfinished_decoder_epochs() == 0
    # saved after epochs 2 and 4; the file holds epoch 4 of 5 and the new decoder's settings
    cut = load_generator(tmp_path / "cut.pt", graphs)
    assert isinstance(cut, SpectralVectorGenerator)
    assert cut.decoder_progress() == (5, 4) and cut.unfinished_decoder_epochs() == 1
    assert cut.config.decoder_layers == 1 and cut.unfinished_epochs() == 0  # the diffusion was finished
    losses = cut.fit_decoder(graphs, finish=True)
    assert len(losses) == 1 and cut.decoder_progress() is None
    for network in ("network", "ema_network"):
        for name, reference in _weights(getattr(whole, network)).items():
            assert torch.equal(getattr(cut, network).state_dict()[name], reference), (network, name)
    # saving on the way does not change the training itself
    for name, reference in _weights(whole.network).items():
        assert torch.equal(saving.network.state_dict()[name], reference), name
    # the finished model saves without the progress record, so it is not finished twice
    cut.save(tmp_path / "done.pt")
    assert load_generator(tmp_path / "done.pt", graphs).decoder_progress() is None


def test_finishing_a_decoder_is_checked(tmp_path):
    graphs = community_small(12, seed=1)
    config = _diffusion(graphs, tmp_path / "diffusion.pt")
    model = load_generator(tmp_path / "diffusion.pt", graphs)
    with pytest.raises(ValueError, match="finishes an interrupted decoder training; this model has none"):
        model.fit_decoder(graphs, finish=True)
    with pytest.raises(ValueError, match="checkpoint_every must be"):
        model.fit_decoder(graphs, 2, checkpoint_every=1)
    model.fit_decoder(graphs, 3, config=dataclasses.replace(config, decoder_layers=1), checkpoint_every=1,
                      checkpoint_path=tmp_path / "cut.pt")
    cut = load_generator(tmp_path / "cut.pt", graphs)
    with pytest.raises(ValueError, match="give neither epochs nor config"):
        cut.fit_decoder(graphs, 2, finish=True)
    with pytest.raises(ValueError, match="epochs must be ≥ 1, got None"):
        cut.fit_decoder(graphs)
    with pytest.raises(ValueError, match=r"saved at epoch 2 of a 3-epoch decoder training: finish it"):
        cut.fit(graphs, resume=True)
    with pytest.warns(UserWarning, match=r"saved mid-training, at epoch 2 of a 3-epoch decoder training; "
                                         r"finish it with fit_decoder\(graphs, finish=True\)"):
        assert len(cut.sample(2)) == 2  # from Python a half-trained decoder samples, but never unnoticed
    cut.fit_decoder(graphs, finish=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="sampling a model saved mid-training")
        assert len(cut.sample(2)) == 2
    assert len(cut.fit(graphs, resume=True)) == config.epochs  # finished: the diffusion goes on


def _interrupt_decoder_after(monkeypatch, batches):
    """Make the decoder training raise KeyboardInterrupt, as Ctrl-C does, at its ``batches + 1``-th batch."""
    loss, seen = SpectralVectorGenerator._decoder_loss, []

    def interrupted(self, batch, generator):
        seen.append(1)
        if len(seen) > batches:
            raise KeyboardInterrupt
        return loss(self, batch, generator)

    monkeypatch.setattr(SpectralVectorGenerator, "_decoder_loss", interrupted)


def test_generate_finishes_a_cut_decoder_training_exactly(tmp_path, capsys, monkeypatch, graphs_file,
                                                          saved_vectors_model):
    (tmp_path / "dec.yaml").write_text("decoder_layers: 1\nlearning_rate_schedule: cosine\n")
    common = ["--graphs", str(graphs_file), "--resume-from", str(saved_vectors_model), "--config",
              str(tmp_path / "dec.yaml"), "--decoder-epochs", "5"]
    assert _generate(*common, "--out", str(tmp_path / "whole")) == 0
    with monkeypatch.context() as patch:
        _interrupt_decoder_after(patch, 3)  # 16 training graphs, one batch an epoch: cut in epoch 4
        capsys.readouterr()
        assert _generate(*common, "--checkpoint-every", "3", "--out", str(tmp_path / "cut")) == 130
    saved = tmp_path / "cut" / "model.pt"
    assert f"interrupted: {saved} holds the last saved model" in capsys.readouterr().err
    assert finish_cut_run(graphs_file, saved, tmp_path / "rest") == 0
    out = capsys.readouterr().out
    assert "was saved at epoch 3 of a 5-epoch decoder training; finishing it: epochs 4–5" in out
    assert f"(finished from {saved}), its decoder training finished" in out
    whole, rest = read_metrics(tmp_path / "whole", tmp_path / "rest")
    assert rest["decoder_epochs"] == 5
    for key in ("degree", "clustering", "orbit", "spectral", "novel", "unique", "loss_last_epoch"):
        assert rest[key] == whole[key], key
    # more diffusion epochs on a cut decoder are refused; a new decoder in its place is announced
    assert _generate("--graphs", str(graphs_file), "--resume-from", str(saved), "--epochs", "1",
                     "--out", str(tmp_path / "more")) == 2
    assert "finish it first (--resume-from without --epochs), or train a new decoder" in capsys.readouterr().err
    assert _generate("--graphs", str(graphs_file), "--resume-from", str(saved), "--decoder-epochs", "1",
                     "--out", str(tmp_path / "other")) == 0
    assert "--decoder-epochs trains a new decoder in its place" in capsys.readouterr().out
