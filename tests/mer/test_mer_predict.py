"""`TrainedModel.predict` and `mer predict`: per-utterance predictions aligned with their ids, the same
numbers `evaluate` scores, deterministic, and a CSV with one row per utterance."""

import csv
import json

import numpy as np
import pytest

import mer
from mer.cli import main
from mer.data.source import DataConfig, load_data

from fast_settings import FAST

TINY = {"model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
        "train": {"epochs": 1, "batch_size": 8, "patience": 0}}
OPTIONS = {"seed": 0, "num_conversations": 12, "min_utterances": 3, "max_utterances": 6}
FLAGS = ["--synthetic-conversations", "12", "--set", "data.options.min_utterances=3",
         "data.options.max_utterances=6"]


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    dataset = load_data(DataConfig("synthetic", dict(OPTIONS)))
    run = tmp_path_factory.mktemp("reg")
    return dataset, mer.train(dataset, "zero", masks=0.3, config=TINY, out_dir=run), run


@pytest.fixture(scope="module")
def classification(tmp_path_factory):
    dataset = load_data(DataConfig("synthetic", dict(OPTIONS), "classification"))
    run = tmp_path_factory.mktemp("cls")
    return dataset, mer.train(dataset, "mean", masks=0.3, config=TINY, out_dir=run), run


def test_predictions_align_with_the_ids_of_the_split(regression):
    dataset, trained, _ = regression
    preds = trained.predict(dataset, "test")
    test = dataset.split("test")
    ids = [(c.conversation_id, u) for c in test for u in c.utterance_ids]
    assert list(zip(preds["conversation_id"], preds["utterance_id"])) == ids
    labels = np.concatenate([c.labels for c in test])
    np.testing.assert_array_equal(preds["label"], labels)
    assert preds["prediction"].shape == (test.num_utterances,)
    assert preds["availability"].shape == (test.num_utterances, 3)
    assert list(preds["modalities"]) == dataset.modalities


@pytest.mark.parametrize("masks", [None, 0.5, ("t",), "none"])
def test_regression_predictions_give_the_mae_evaluate_reports_under_the_same_masks(regression, masks):
    dataset, trained, _ = regression
    preds = trained.predict(dataset, "test", masks)
    metrics = trained.evaluate(dataset, "test", masks)
    assert np.abs(preds["prediction"] - preds["label"]).mean() == pytest.approx(metrics["mae"], abs=1e-6)


def test_predict_uses_the_masks_it_reports(regression):
    dataset, trained, _ = regression
    full = trained.predict(dataset, "test", "none")
    assert full["availability"].all()
    fixed = trained.predict(dataset, "test", ("t",))
    assert fixed["availability"][:, 0].all() and not fixed["availability"][:, 1:].any()
    random = trained.predict(dataset, "test", 0.5)
    assert random["availability"].mean() == pytest.approx(0.5, abs=0.1)


def test_classification_gives_probabilities_that_sum_to_one_and_their_argmax(classification):
    dataset, trained, _ = classification
    preds = trained.predict(dataset, "test")
    probs = preds["probabilities"]
    assert probs.shape == (dataset.split("test").num_utterances, dataset.num_classes)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(preds["predicted_class"], probs.argmax(axis=1))
    accuracy = (preds["predicted_class"] == preds["label"]).mean()
    assert accuracy == pytest.approx(trained.evaluate(dataset, "test")["acc"])


def test_a_sampling_recoverer_predicts_the_same_numbers_every_call(tmp_path):
    dataset = load_data(DataConfig("synthetic", dict(OPTIONS)))
    trained = mer.train(dataset, "gsdnet", masks=0.5, config=TINY, recoverer_kwargs=FAST["gsdnet"])
    first = trained.predict(dataset, "test")
    np.testing.assert_array_equal(first["prediction"], trained.predict(dataset, "test")["prediction"])
    metrics = trained.evaluate(dataset, "test")
    assert np.abs(first["prediction"] - first["label"]).mean() == pytest.approx(metrics["mae"], abs=1e-6)


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_mer_predict_writes_one_csv_row_per_test_utterance_ids_first(regression, tmp_path, capsys):
    dataset, trained, run = regression
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run), "--missing-rate", "0.5", "--out", str(out), *FLAGS]) == 0
    assert "predictions (test split, condition 0.5" in capsys.readouterr().out
    header = out.read_text().splitlines()[0].split(",")
    assert header == ["conversation_id", "utterance_id", "label", "prediction",
                      "available_t", "available_a", "available_v"]
    rows = _rows(out)
    assert len(rows) == dataset.split("test").num_utterances
    mae = np.mean([abs(float(r["prediction"]) - float(r["label"])) for r in rows])
    assert main(["evaluate", str(run), "--missing-rate", "0.5", *FLAGS]) == 0
    assert mae == pytest.approx(json.loads(capsys.readouterr().out)["metrics"]["mae"], abs=1e-6)


def test_mer_predict_writes_class_probabilities(classification, tmp_path):
    dataset, _, run = classification
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run), "--out", str(out), *FLAGS]) == 0
    rows = _rows(out)
    probs = [[float(r[f"prob_{c}"]) for c in range(dataset.num_classes)] for r in rows]
    np.testing.assert_allclose(np.sum(probs, axis=1), 1.0, atol=1e-9)
    assert [int(r["predicted_class"]) for r in rows] == list(np.argmax(probs, axis=1))
    assert list(rows[0])[:2] == ["conversation_id", "utterance_id"]


def test_mer_predict_refuses_an_out_folder_and_in_memory_runs_without_data(tmp_path, capsys):
    from mer.data import synthetic_conversations

    run = tmp_path / "run"
    mer.train(synthetic_conversations(**OPTIONS), "zero", masks="none", config=TINY, out_dir=run)
    assert main(["predict", str(run), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "trained on in-memory data" in err and "to predict with it" in err
    assert main(["predict", str(run), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("command, name", [("predict", "best.pt"), ("evaluate", "last.pt"),
                                           ("evaluate", "metrics.json")])
def test_mer_predict_and_evaluate_never_write_over_a_file_of_the_run(regression, capsys, command, name):
    _, _, run = regression
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert main([command, str(run), "--out", str(run / name), *FLAGS]) == 2
    assert f"--out {run / name} is a file of the run in {run}; writing it would destroy the run" in (
        capsys.readouterr().err)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_device_name_torch_does_not_know_is_one_line_for_evaluate_and_predict(regression, tmp_path, capsys):
    _, _, run = regression
    for command in (["evaluate", str(run)], ["predict", str(run), "--out", str(tmp_path / "p.csv")]):
        assert main([*command, "--device", "gpu", *FLAGS]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "device 'gpu' is not a torch device name; use 'cpu', 'cuda' or 'cuda:N'" in err
