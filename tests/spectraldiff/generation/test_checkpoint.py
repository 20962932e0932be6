"""Saved generators (`model.pt`): resuming is exact, loading never runs code, and every mismatch
(other graphs, another network, a foreign file) is refused with a line that says what to do."""

import json
import pickle

import pytest
import torch

from spectraldiff.generation import GenerationConfig, get_model, load_generator
from spectraldiff.generation.checkpoint import graphs_fingerprint
from spectraldiff.generation.datasets import community_small
from tests.spectraldiff.generation.generate_runs import run_generate as _generate
from tests.spectraldiff.generation.generate_runs import weights as _weights

SMALL = {
    "spectral_vectors": dict(num_eigenvectors=4, decoder_dim=8, decoder_layers=1),
    "adjacency": {},
    "spectral": {},
}


def _config(model, epochs, **extra):
    settings = dict(model=model, epochs=epochs, batch_size=4, hidden_dim=16, num_layers=1, steps=4, seed=3)
    return GenerationConfig(**{**settings, **SMALL[model], **extra})


def _fit(model, epochs, graphs):
    torch.manual_seed(0)
    generator = get_model(model, _config(model, epochs))
    generator.fit(graphs, generator=torch.Generator().manual_seed(3))
    return generator


@pytest.mark.parametrize("model", list(SMALL))
def test_two_epochs_saved_loaded_and_resumed_two_more_equal_one_four_epoch_fit(tmp_path, model):
    graphs = community_small(12, seed=1)
    whole = _fit(model, 4, graphs)
    _fit(model, 2, graphs).save(tmp_path / "model.pt")
    resumed = load_generator(tmp_path / "model.pt", graphs, _config(model, 2))
    assert resumed.epochs_trained == 2
    losses = resumed.fit(graphs, resume=True)
    assert len(losses) == 2 and resumed.epochs_trained == 4
    for name, reference in _weights(whole.network).items():
        assert torch.equal(resumed.network.state_dict()[name], reference), name
    for name, reference in _weights(whole.ema_network).items():
        assert torch.equal(resumed.ema_network.state_dict()[name], reference), name
    # and the loaded model samples what the original samples
    draw = lambda m: m.sample_weighted(3, generator=torch.Generator().manual_seed(5))["adjacency"]  # noqa: E731
    assert torch.equal(draw(resumed), draw(whole))


def test_a_plain_second_fit_warm_starts_with_a_fresh_optimiser_unlike_resume():
    graphs = community_small(12, seed=1)
    warm = _fit("spectral", 2, graphs)
    after_two = _weights(warm.network)
    warm.fit(graphs, generator=torch.Generator().manual_seed(3))
    resumed = _fit("spectral", 2, graphs)
    resumed.fit(graphs, resume=True)
    assert warm.epochs_trained == 2 and resumed.epochs_trained == 4  # a fresh fit counts from zero
    changed = lambda m: any(not torch.equal(m.network.state_dict()[k], v) for k, v in after_two.items())  # noqa: E731
    assert changed(warm) and changed(resumed)
    assert any(not torch.equal(warm.network.state_dict()[k], v) for k, v in _weights(resumed.network).items())


def test_resume_is_refused_without_a_previous_fit_with_other_graphs_or_with_a_generator():
    graphs = community_small(12, seed=1)
    with pytest.raises(ValueError, match="continues an earlier fit or a loaded model"):
        get_model("spectral", _config("spectral", 1)).fit(graphs, resume=True)
    model = _fit("spectral", 1, graphs)
    with pytest.raises(ValueError, match="the graphs the model was trained on"):
        model.fit(graphs[::-1], resume=True)
    with pytest.raises(ValueError, match="do not pass one"):
        model.fit(graphs, resume=True, generator=torch.Generator())


def test_loading_refuses_other_graphs_another_network_and_files_that_are_not_saved_generators(tmp_path):
    graphs = community_small(12, seed=1)
    _fit("spectral_vectors", 1, graphs).save(tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"trained on other graphs .*dataset 'community_small', seed 3"):
        load_generator(tmp_path / "model.pt", community_small(12, seed=2))
    with pytest.raises(ValueError, match="settings build another network than the saved one"):
        load_generator(tmp_path / "model.pt", graphs, _config("spectral_vectors", 1, hidden_dim=32))
    with pytest.raises(ValueError, match="holds a 'spectral_vectors' model, the settings ask for 'spectral'"):
        load_generator(tmp_path / "model.pt", graphs, _config("spectral", 1))
    with pytest.raises(ValueError, match="no saved generator at"):
        load_generator(tmp_path / "missing.pt", graphs)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a saved generator"):
        load_generator(tmp_path / "other.pt", graphs)


class _RunsCode:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('ran').write_text('yes')",))


def test_a_crafted_pickle_is_refused_and_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open("model.pt", "wb") as f:
        pickle.dump({"format": 1, "payload": _RunsCode()}, f)
    with pytest.raises(ValueError, match="unsafe to load") as err:
        load_generator("model.pt", community_small(4, seed=1))
    assert not (tmp_path / "ran").exists()
    assert "weights_only" not in str(err.value)  # torch's advice to load it unsafely is not passed on
    # A run folder instead of its model.pt: the error points at the file.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no saved generator at run \(a run folder: give its model, run/model\.pt\)"):
        load_generator("run", community_small(4, seed=1))


def test_the_fingerprint_ignores_node_labels_but_not_edges_or_order():
    graphs = community_small(3, seed=1)
    import networkx as nx

    relabelled = [nx.relabel_nodes(g, {v: f"n{v}" for v in g}) for g in graphs]
    assert graphs_fingerprint(relabelled) == graphs_fingerprint(graphs)
    assert graphs_fingerprint(graphs[::-1]) != graphs_fingerprint(graphs)
    edited = [g.copy() for g in graphs]
    edited[0].remove_edge(*next(iter(edited[0].edges)))
    assert graphs_fingerprint(edited) != graphs_fingerprint(graphs)


def test_generate_saves_the_model_and_resume_from_continues_it_exactly(tmp_path, graphs_file):
    data = graphs_file
    common = ["--graphs", str(data), "--model", "spectral_vectors", "--hidden-dim", "16", "--num-layers", "1",
              "--seed", "2"]
    assert _generate(*common, "--epochs", "3", "--out", str(tmp_path / "whole")) == 0
    assert _generate(*common, "--epochs", "1", "--out", str(tmp_path / "first")) == 0
    saved = tmp_path / "first" / "model.pt"
    assert _generate("--graphs", str(data), "--resume-from", str(saved), "--epochs", "2",
                     "--out", str(tmp_path / "more")) == 0
    whole, more = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("whole", "more"))
    assert more["epochs"] == more["epochs_trained"] == 3 and more["resumed_from"] == str(saved)
    assert more["dataset"] == "my_graphs"  # the saved label, not the default family
    for key in ("degree", "clustering", "orbit", "spectral", "novel", "unique"):
        assert more[key] == whole[key], key
    # without --epochs: the saved model is only sampled again, and gives what its own run gave
    assert _generate("--graphs", str(data), "--resume-from", str(saved), "--out", str(tmp_path / "again")) == 0
    first, again = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("first", "again"))
    assert again["epochs"] == 1 and again["loss_last_epoch"] is None
    assert [again[k] for k in ("degree", "orbit", "novel")] == [first[k] for k in ("degree", "orbit", "novel")]


def test_generate_resume_from_refuses_its_own_folder_missing_user_graphs_and_a_new_width(
        tmp_path, capsys, graphs_file, saved_vectors_model):
    data, saved = graphs_file, str(saved_vectors_model)
    capsys.readouterr()
    assert _generate("--graphs", str(data), "--resume-from", saved, "--out", str(tmp_path / "run")) == 2
    assert "is the folder of --resume-from" in capsys.readouterr().err
    assert _generate("--resume-from", saved, "--out", str(tmp_path / "b")) == 2
    assert "trained on user graphs labelled 'my_graphs': give them again with --graphs" in capsys.readouterr().err
    assert _generate("--graphs", str(data), "--resume-from", saved, "--hidden-dim", "32",
                     "--out", str(tmp_path / "c")) == 2
    assert "another network than the saved one" in capsys.readouterr().err
    assert not (tmp_path / "c" / "metrics.json").exists()


def test_a_fitted_model_pickles_and_its_copy_resumes_like_the_original():
    graphs = community_small(12, seed=1)
    original = _fit("spectral", 1, graphs)
    copy = pickle.loads(pickle.dumps(original))  # the batch generator travels as its state
    original.fit(graphs, resume=True)
    copy.fit(graphs, resume=True)
    for name, reference in _weights(original.network).items():
        assert torch.equal(copy.network.state_dict()[name], reference), name


def test_epochs_in_a_config_file_also_continue_a_resumed_run(tmp_path, graphs_file):
    data = graphs_file
    assert _generate("--graphs", str(data), "--model", "spectral", "--hidden-dim", "16", "--num-layers", "1",
                     "--epochs", "2", "--out", str(tmp_path / "run")) == 0
    (tmp_path / "more.yaml").write_text("epochs: 3\nnum_samples: 3\n")
    assert _generate("--graphs", str(data), "--resume-from", str(tmp_path / "run" / "model.pt"),
                     "--config", str(tmp_path / "more.yaml"), "--out", str(tmp_path / "more")) == 0
    metrics = json.loads((tmp_path / "more" / "metrics.json").read_text())
    assert (metrics["epochs"], metrics["num_samples"]) == (5, 3) and metrics["loss_last_epoch"] is not None


def test_generate_never_replaces_a_run_by_accident_and_never_writes_into_the_graphs_folder(
        tmp_path, capsys, graphs_file, saved_vectors_model):
    run = saved_vectors_model.parent
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    # Another model into the same folder: refused, and every file of the first run stays as it was.
    assert _generate("--graphs", str(graphs_file), "--model", "spectral", "--epochs", "1", "--out", str(run)) == 2
    assert capsys.readouterr().err.endswith(
        f"error: --out {run} already holds a run (model.pt, metrics.json, config.json, samples.pkl); give a "
        "new folder, or --overwrite to replace it\n")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # --overwrite says it is meant, and nothing of the old run stays beside the new one's files.
    (run / "samples_per_draw.pkl").write_bytes(b"an earlier --draws run's")
    assert _generate("--graphs", str(graphs_file), "--model", "spectral", "--epochs", "1", "--out", str(run),
                     "--overwrite") == 0
    assert json.loads((run / "metrics.json").read_text())["model"] == "spectral"
    assert not (run / "samples_per_draw.pkl").exists()
    # Results written among the graphs of a folder would be read as graphs next time.
    folder = tmp_path / "edges"
    folder.mkdir()
    for i, g in enumerate(community_small(10, seed=0)):
        (folder / f"g{i}.txt").write_text("".join(f"{u} {v}\n" for u, v in g.edges()))
    assert _generate("--graphs", str(folder), "--epochs", "1", "--out", str(folder)) == 2
    assert "is the --graphs folder" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"g{i}.txt" for i in range(10))
