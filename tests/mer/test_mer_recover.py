"""TrainedModel.recover: the recovered and real features behind ``recovery_mse``, and K-sample averages."""

import numpy as np
import pytest

import mer
from mer.data import gaussian_conversations

from fast_settings import FAST


@pytest.fixture(scope="module")
def dataset():
    return gaussian_conversations(seed=0, num_conversations=30)


@pytest.fixture(scope="module")
def gsdnet(dataset):
    return mer.train(dataset, recoverer="gsdnet", masks=0.4, epochs=1, seed=0, recoverer_kwargs=FAST["gsdnet"])


def test_one_draw_is_what_evaluate_scores_and_keeps_observed_entries(dataset, gsdnet):
    out = gsdnet.recover(dataset, "test")
    assert out["samples"] == 1
    assert out["recovery_mse"] == pytest.approx(gsdnet.evaluate(dataset, "test", samples=1)["recovery_mse"], rel=1e-6)  # float32 sums in another order
    n = sum(c.num_utterances for c in dataset.split("test"))
    assert out["availability"].shape == (n, 3) and list(out["modalities"]) == list(dataset.modalities)
    for j, m in enumerate(dataset.modalities):
        seen = out["availability"][:, j]
        assert out["recovered"][m].shape == (n, dataset.feature_dims[m])
        np.testing.assert_array_equal(out["recovered"][m][seen], out["real"][m][seen])
        assert not np.allclose(out["recovered"][m][~seen], out["real"][m][~seen])
    # Standardised units: the training split's statistics make the real features about unit scale.
    assert 0.5 < np.concatenate([out["real"][m] for m in dataset.modalities], axis=1).std() < 1.5


def test_k_samples_average_the_seeded_draws(dataset, gsdnet):
    single = gsdnet.recover(dataset, "test", samples=1)
    averaged = gsdnet.recover(dataset, "test", samples=3)
    assert averaged["samples"] == 3
    again = gsdnet.recover(dataset, "test", samples=1)  # seeded: the same draw every call
    for m in dataset.modalities:
        np.testing.assert_array_equal(again["recovered"][m], single["recovered"][m])
        assert not np.allclose(averaged["recovered"][m], single["recovered"][m])
    # The average of K draws lies closer to the truth than a typical draw (here: than draw 0).
    assert averaged["recovery_mse"] < single["recovery_mse"]


def test_a_deterministic_recoverer_runs_once(dataset):
    trained = mer.train(dataset, recoverer="mean", masks=0.4, epochs=1, seed=0)
    out = trained.recover(dataset, "test", samples=5)
    assert out["samples"] == 1
    with pytest.raises(ValueError, match="samples must be an integer"):
        trained.recover(dataset, "test", samples=0)


# ------------------------------------------------------------------------- mer plot recovery
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from mer.data.source import DataConfig, load_data

    data = load_data(DataConfig("gaussian", {"seed": 0, "num_conversations": 30}))
    folder = tmp_path_factory.mktemp("runs")
    config = {"train": {"epochs": 1, "batch_size": 8}}
    mer.train(data, "gsdnet", masks=0.4, config=config, recoverer_kwargs=FAST["gsdnet"], out_dir=folder / "gsdnet")
    mer.train(data, "mean", masks=0.4, config=config, out_dir=folder / "mean")
    return data, folder


def test_mer_plot_recovery_draws_a_row_per_run_and_writes_the_mse_of_each_modality(runs, tmp_path, capsys):
    import json

    from mer.cli import main
    from mer.training import TrainedModel

    data, folder = runs
    out = tmp_path / "fig"
    assert main(["plot", "recovery", str(folder / "gsdnet"), str(folder / "mean"), "--rate", "0.5",
                 "--max-points", "60", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gsdnet: recovery MSE t" in printed and "mean: recovery MSE t" in printed
    png = (out / "recovery.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "recovery.json").read_text())
    assert set(summary) == {"gsdnet", "mean"}
    expected = TrainedModel.load(folder / "mean").recover(data, "test", 0.5)
    for j, m in enumerate(data.modalities):
        dropped = ~expected["availability"][:, j]
        mse = float(((expected["recovered"][m] - expected["real"][m])[dropped] ** 2).mean())
        assert summary["mean"][m]["recovery_mse"] == pytest.approx(mse, rel=1e-9)
        assert summary["mean"][m]["points"] == min(60, int(dropped.sum()))


def test_mer_plot_recovery_refuses_two_mask_choices_and_a_never_missing_pattern(runs, tmp_path, capsys):
    from mer.cli import main

    _, folder = runs
    assert main(["plot", "recovery", str(folder / "mean"), "--rate", "0.5", "--pattern", "t",
                 "--out", str(tmp_path / "f")]) == 2
    assert "give --rate or --pattern, not both" in capsys.readouterr().err
    assert main(["plot", "recovery", str(folder / "mean"), "--pattern", "t,a,v", "--out", str(tmp_path / "g")]) == 2
    assert "nothing was recovered" in capsys.readouterr().err
    assert not (tmp_path / "g" / "recovery.png").exists()
