"""Long fits save themselves (`checkpoint_every`, `generate --checkpoint-every`), and a run cut short is
finished exactly: the remaining epochs of the same call, the learning-rate schedule going on where it
stopped, give the weights of the uninterrupted run."""

import warnings

import pytest
import torch

from spectraldiff.generation import GenerationConfig, get_model, load_generator, run_generation
from spectraldiff.generation.datasets import community_small
from spectraldiff.generation.generator import GraphGenerator
from tests.spectraldiff.generation.generate_runs import finish_cut_run, read_metrics
from tests.spectraldiff.generation.generate_runs import run_generate as _generate
from tests.spectraldiff.generation.generate_runs import weights as _weights


def _config(**extra):
    settings = dict(model="spectral_vectors", epochs=5, batch_size=4, hidden_dim=16, num_layers=1, steps=4, seed=3,
                    num_eigenvectors=4, decoder_dim=8, decoder_layers=1, learning_rate=0.01)
    return GenerationConfig(**{**settings, **extra})


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_a_fit_saved_on_the_way_and_finished_equals_the_uninterrupted_fit(tmp_path, schedule):
    graphs = community_small(12, seed=1)
    whole = get_model("spectral_vectors", _config(learning_rate_schedule=schedule))
    whole.fit(graphs)
    saving = get_model("spectral_vectors", _config(learning_rate_schedule=schedule))
    saving.fit(graphs, checkpoint_every=3, checkpoint_path=tmp_path / "model.pt")
    # Saved after epoch 3 only (epoch 6 is past the end; the last epoch is the caller's to save).
    cut = load_generator(tmp_path / "model.pt", graphs)
    assert (cut.epochs_trained, cut.unfinished_epochs()) == (3, 2)
    losses = cut.fit(graphs, resume=True, finish=True)
    assert len(losses) == 2 and (cut.epochs_trained, cut.unfinished_epochs()) == (5, 0)
    for network in ("network", "ema_network"):
        for name, reference in _weights(getattr(whole, network)).items():
            assert torch.equal(getattr(cut, network).state_dict()[name], reference), (network, name)
    # Saving on the way does not change the fit itself.
    for name, reference in _weights(whole.network).items():
        assert torch.equal(saving.network.state_dict()[name], reference), name


@pytest.mark.parametrize("model_name", ["spectral_vectors", "adjacency"])
def test_sampling_a_cut_fit_warns_until_it_is_finished(tmp_path, model_name):
    graphs = community_small(12, seed=1)
    model = get_model(model_name, _config(model=model_name, epochs=3))
    model.fit(graphs, checkpoint_every=2, checkpoint_path=tmp_path / "model.pt")
    cut = load_generator(tmp_path / "model.pt", graphs)
    with pytest.warns(UserWarning, match=r"sampling a model saved mid-training, at epoch 2 of a 3-epoch fit; "
                                         r"finish it with fit\(graphs, resume=True, finish=True\)"):
        assert len(cut.sample(2)) == 2
    cut.fit(graphs, resume=True, finish=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="sampling a model saved mid-training")
        assert len(cut.sample(2)) == 2 and len(model.sample(2)) == 2


def test_a_plain_resume_of_a_cut_fit_starts_a_new_call_and_finishing_is_checked(tmp_path):
    graphs = community_small(12, seed=1)
    model = get_model("spectral_vectors", _config(epochs=4))
    model.fit(graphs, checkpoint_every=2, checkpoint_path=tmp_path / "model.pt")
    with pytest.raises(ValueError, match="nothing to finish, the saved call ran all its 4 epochs"):
        model.fit(graphs, resume=True, finish=True)
    with pytest.raises(ValueError, match="give resume=True"):
        model.fit(graphs, finish=True)
    for every, path in ((-1, None), (2, None)):
        with pytest.raises(ValueError, match="checkpoint_every must be"):
            model.fit(graphs, checkpoint_every=every, checkpoint_path=path)
    with pytest.raises(ValueError, match="give an out_dir"):  # run_generation's saves need a folder
        run_generation(_config(epochs=1), graphs, graphs[:2], checkpoint_every=1)
    cut = load_generator(tmp_path / "model.pt", graphs, _config(epochs=3))
    assert cut.unfinished_epochs() == 2
    assert len(cut.fit(graphs, resume=True)) == 3  # config.epochs more: a new call
    assert (cut.epochs_trained, cut.unfinished_epochs()) == (5, 0)


def _interrupt_after(monkeypatch, epochs_done):
    """Make training raise KeyboardInterrupt, as Ctrl-C does, in the epoch after ``epochs_done``."""
    fit = GraphGenerator.fit

    def interrupted_fit(self, graphs, **kwargs):
        batch_loss = self._batch_loss

        def loss(indices, generator):
            if self.epochs_trained == epochs_done:
                raise KeyboardInterrupt
            return batch_loss(indices, generator)

        self._batch_loss = loss
        try:
            return fit(self, graphs, **kwargs)
        finally:
            del self._batch_loss

    monkeypatch.setattr(GraphGenerator, "fit", interrupted_fit)


def test_generate_cut_short_says_how_to_go_on_and_finishing_gives_the_whole_run(
        tmp_path, capsys, monkeypatch, graphs_file):
    common = ["--graphs", str(graphs_file), "--model", "spectral_vectors", "--hidden-dim", "16", "--num-layers",
              "1", "--seed", "2", "--epochs", "5", "--lr-schedule", "cosine"]
    assert _generate(*common, "--out", str(tmp_path / "whole")) == 0
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 3)
        capsys.readouterr()
        assert _generate(*common, "--checkpoint-every", "2", "--out", str(tmp_path / "cut")) == 130
    saved = tmp_path / "cut" / "model.pt"
    hint = f"interrupted: {saved} holds the last saved model; go on with: python -m spectraldiff generate --resume-from"
    assert hint in capsys.readouterr().err
    assert not (tmp_path / "cut" / "metrics.json").exists()
    assert finish_cut_run(graphs_file, saved, tmp_path / "rest") == 0
    out = capsys.readouterr().out
    assert "was saved at epoch 2 of a 5-epoch run; finishing it: epochs 3–5" in out
    assert f"over 5 epochs (finished from {saved})" in out
    whole, rest = read_metrics(tmp_path / "whole", tmp_path / "rest")
    assert rest["epochs"] == 5
    for key in ("degree", "clustering", "orbit", "spectral", "novel", "unique"):
        assert rest[key] == whole[key], key
    # --epochs on a cut run starts a new call instead, and says so; a new decoder waits for the finish.
    assert _generate("--graphs", str(graphs_file), "--resume-from", str(saved), "--epochs", "1",
                     "--out", str(tmp_path / "new")) == 0
    assert "--epochs starts a new run of 1 epochs from there" in capsys.readouterr().out
    assert read_metrics(tmp_path / "new")[0]["epochs"] == 3
    assert _generate("--graphs", str(graphs_file), "--resume-from", str(saved), "--decoder-epochs", "1",
                     "--out", str(tmp_path / "decoder")) == 2
    assert "finish its diffusion first" in capsys.readouterr().err


def test_generate_cut_before_the_first_save_says_nothing_was_saved(tmp_path, capsys, monkeypatch, graphs_file):
    _interrupt_after(monkeypatch, 1)
    assert _generate("--graphs", str(graphs_file), "--model", "spectral", "--hidden-dim", "16", "--num-layers", "1",
                     "--epochs", "4", "--checkpoint-every", "2", "--out", str(tmp_path / "cut")) == 130
    assert "interrupted before this run saved a model (every 2 epochs" in capsys.readouterr().err
    assert not (tmp_path / "cut" / "model.pt").exists()
    assert _generate("--graphs", str(graphs_file), "--checkpoint-every", "-1", "--out", str(tmp_path / "x")) == 2
    assert "--checkpoint-every must be >= 0" in capsys.readouterr().err
