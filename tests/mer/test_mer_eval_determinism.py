"""Seeded evaluation: a checkpoint scores the same in every call and every process, for every
registered recoverer; the noise seed matters where a method samples; evaluation leaves the caller's
RNG streams (and so training's) untouched; ``samples=K`` averages K seeded draws."""

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

import mer
from mer.cli import main
from mer.config import RunConfig
from mer.data.source import DataConfig, load_data
from mer.recoverers import available_recoverers, recoverer_class
from mer.training import evaluation, loop
from mer.training.evaluation import evaluation_seed
from spectraldiff.atomic import jsonable

from fast_settings import FAST
DATA = DataConfig("synthetic", {"seed": 0, "num_conversations": 12, "min_utterances": 3,
                                 "max_utterances": 6})
SEED = 3
NAMES = available_recoverers()
STOCHASTIC = [n for n in NAMES if recoverer_class(n).stochastic]
DETERMINISTIC = [n for n in NAMES if not recoverer_class(n).stochastic]


def _config(name: str, **train) -> RunConfig:
    cfg = RunConfig.from_dict({
        "model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
        "train": {"epochs": 1, "batch_size": 4, "patience": 0, **train},
        "protocol": {"kind": "random", "missing_rate": 0.5},
        "recoverer": name,
        "recoverer_kwargs": FAST.get(name, {}),
        "seed": SEED,
    })
    cfg.data = DataConfig(DATA.source, dict(DATA.options))
    return cfg


def _json(metrics: dict) -> dict:
    """As a JSON file holds it (NaN → null), so in-process and printed metrics compare exactly."""
    return json.loads(json.dumps(jsonable(metrics)))


def _rng_states():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def _same_states(a, b) -> bool:
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


@pytest.fixture(scope="module")
def dataset():
    return load_data(DATA)


@pytest.fixture(scope="module")
def runs(dataset, tmp_path_factory):
    """Every registered recoverer trained once (one epoch), each in its own run directory."""
    root = tmp_path_factory.mktemp("runs")
    trained = {name: mer.train(dataset, config=_config(name), out_dir=root / name) for name in NAMES}
    return root, trained


def test_evaluation_seed_is_a_stable_hash_of_seed_split_and_draw():
    # Fixed values: Python's hash() is salted per process, sha256 is not.
    assert evaluation_seed(0, "test") == evaluation_seed(0, "test", 0) == 2738733969240648909
    assert evaluation_seed(1111, "valid", 2) == 3248189656740892556
    seeds = {evaluation_seed(s, split, k) for s in (0, 1) for split in ("valid", "test") for k in (0, 1)}
    assert len(seeds) == 8 and all(0 <= s < 2**63 for s in seeds)


@pytest.mark.parametrize("name", NAMES)
def test_evaluating_twice_gives_identical_metrics_and_leaves_the_rng_untouched(runs, dataset, name):
    root, trained = runs
    model = trained[name]
    before = _rng_states()
    first = model.evaluate(dataset, "test")
    assert _same_states(before, _rng_states()), "evaluation must restore the caller's RNG streams"
    torch.manual_seed(12345)  # a different caller state must not matter either
    second = model.evaluate(dataset, "test")
    assert _json(first) == _json(second)
    assert first["eval_seed"] == SEED and first["eval_samples"] == 1
    # The test metrics train() wrote are the ones any later evaluation gives.
    assert json.loads((root / name / "metrics.json").read_text())["test"] == _json(first)


def test_a_fresh_process_gives_the_same_metrics_for_every_recoverer_and_the_cli(runs, dataset, capsys):
    root, trained = runs
    expected = {name: _json(trained[name].evaluate(dataset, "test")) for name in NAMES}
    assert main(["evaluate", str(root / "gsdnet")]) == 0
    cli_here = json.loads(capsys.readouterr().out)
    script = (
        "import json, sys\n"
        "from mer.cli import main\n"
        "from mer.data.source import DataConfig, load_data\n"
        "from mer.training import TrainedModel\n"
        "from spectraldiff.atomic import jsonable\n"
        "root, names, data = sys.argv[1], sys.argv[2].split(','), json.loads(sys.argv[3])\n"
        "dataset = load_data(DataConfig(data['source'], data['options']))\n"
        "out = {n: jsonable(TrainedModel.load(f'{root}/{n}/best.pt').evaluate(dataset, 'test'))\n"
        "       for n in names}\n"
        "main(['evaluate', f'{root}/gsdnet', '--out', f'{root}/cli.json'])\n"
        "print('RESULT' + json.dumps(out))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the device the metrics here were computed on
    done = subprocess.run(
        [sys.executable, "-c", script, str(root), ",".join(NAMES),
         json.dumps({"source": DATA.source, "options": DATA.options})],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    assert json.loads(line[len("RESULT"):]) == expected
    assert json.loads((root / "cli.json").read_text()) == cli_here


def test_cli_evaluate_twice_prints_identical_json_and_records_the_draws(runs, capsys):
    root, _ = runs
    outputs = []
    for _ in range(2):
        assert main(["evaluate", str(root / "imder")]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["metrics"]["eval_samples"] == 1
    assert main(["evaluate", str(root / "imder"), "--eval-samples", "2"]) == 0
    two = json.loads(capsys.readouterr().out)["metrics"]
    assert two["eval_samples"] == 2 and two != json.loads(outputs[0])["metrics"]
    assert main(["evaluate", str(root / "zero"), "--eval-samples", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["eval_samples"] == 1
    assert main(["evaluate", str(root / "zero"), "--eval-samples", "0"]) == 2
    assert "samples must be an integer >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("name", STOCHASTIC)
def test_the_noise_seed_matters_and_samples_averages_seeded_draws(runs, dataset, name, monkeypatch):
    model = runs[1][name]
    base = model.evaluate(dataset, "test")
    other = model.evaluate(dataset, "test", seed=SEED + 1)
    assert other["eval_seed"] == SEED + 1
    assert _json(other) != _json(base), "a sampling method must depend on the evaluation seed"
    two = model.evaluate(dataset, "test", samples=2)
    assert two["eval_samples"] == 2 and _json(two) == _json(model.evaluate(dataset, "test", samples=2))
    # K=2 is the mean of draw 0 (the K=1 evaluation) and draw 1, seeded with (seed, split, 1): shift
    # the draw index to get draw 1 on its own.
    monkeypatch.setattr(evaluation, "evaluation_seed",
                        lambda seed, split, k=0: evaluation_seed(seed, split, k + 1))
    draw1 = model.evaluate(dataset, "test")
    assert _json(draw1) != _json(base)
    for key in ("mae", "corr", "loss", "recovery_mse"):
        assert two[key] == (base[key] + draw1[key]) / 2, key


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_methods_run_once_whatever_samples_says(runs, dataset, name):
    model = runs[1][name]
    base = model.evaluate(dataset, "test")
    two = model.evaluate(dataset, "test", samples=3)
    assert two.pop("eval_samples") == 1 and base.pop("eval_samples") == 1
    assert _json(two) == _json(base)
    other = model.evaluate(dataset, "test", seed=SEED + 1)
    assert other.pop("eval_seed") == SEED + 1 and base.pop("eval_seed") == SEED
    other.pop("eval_samples")
    assert _json(other) == _json(base)


def test_validation_does_not_shift_the_training_rng_stream(dataset, monkeypatch):
    """Epoch 2's training draws (GSDNet's diffusion times and noise) are the same whether validation
    samples or does nothing at all: evaluation runs on a forked, seeded RNG."""
    cfg = _config("gsdnet", epochs=2)
    real = mer.train(dataset, config=cfg).history

    def silent_validation(model, conversations, masks, **kw):
        return {"loss": 1.0}

    monkeypatch.setattr(loop, "evaluate_model", silent_validation)
    silent = mer.train(dataset, config=cfg).history
    for key in ("train_loss", "train_rec", "train_score_features"):
        assert real[1][key] == silent[1][key], key


def test_train_eval_samples_setting_reaches_the_test_metrics(dataset, tmp_path):
    trained = mer.train(dataset, config=_config("md2n", eval_samples=2), out_dir=tmp_path)
    test = json.loads((tmp_path / "metrics.json").read_text())["test"]
    assert test["eval_samples"] == 2
    assert test == _json(trained.evaluate(dataset, "test"))
    assert _json(trained.evaluate(dataset, "test", samples=1)) != test
    with pytest.raises(ValueError, match="eval_samples"):
        _config("md2n", eval_samples=0).validate()
