"""`spectraldiff generate --config FILE`: a JSON/YAML file of GenerationConfig fields, flags over the
file, every mistake one line with exit code 2; the printed summary is strict JSON."""

import json
import re

import pytest

from spectraldiff.cli import build_parser, main
from spectraldiff.generation.cli import DEFAULT_HIDDEN_DIM, resolve_config
from spectraldiff.generation.config import GenerationConfig


def _config(tmp_path, text, name="c.yaml", *flags):
    path = tmp_path / name
    path.write_text(text)
    args = build_parser().parse_args(["generate", "--config", str(path), "--out", str(tmp_path / "o"), *flags])
    return resolve_config(args)


def test_the_file_sets_fields_and_the_rest_keep_their_defaults(tmp_path):
    cfg = _config(tmp_path, "model: adjacency\nepochs: 7\nsnr: 0.2\n")
    assert (cfg.model, cfg.epochs, cfg.snr) == ("adjacency", 7, 0.2)
    assert cfg.steps == GenerationConfig.steps
    assert cfg.hidden_dim == DEFAULT_HIDDEN_DIM["adjacency"]  # the model's width, as without a file


def test_json_files_work_too_and_flags_override_the_file(tmp_path):
    cfg = _config(tmp_path, json.dumps({"epochs": 7, "hidden_dim": 16, "seed": 4}), "c.json", "--epochs", "2")
    assert (cfg.epochs, cfg.hidden_dim, cfg.seed) == (2, 16, 4)


def test_without_a_file_the_flags_and_defaults_are_unchanged():
    args = build_parser().parse_args(["generate", "--out", "x", "--model", "spectral", "--steps", "5"])
    cfg = resolve_config(args)
    assert cfg == GenerationConfig(steps=5, hidden_dim=DEFAULT_HIDDEN_DIM["spectral"])


@pytest.mark.parametrize("text, message", [
    ("epoch: 3\n", r"unknown GenerationConfig field\(s\) \['epoch'\] \('epoch': did you mean 'epochs'\?\)"),
    ("epochs: '3'\n", r"epochs must be an integer, got '3'"),
    ("epochs: true\n", r"epochs must be an integer, got True"),
    ("epochs: 0\n", r"epochs must be ≥ 1"),
    ("model: nope\n", r"model must be one of \['adjacency', 'spectral', 'spectral_vectors'\]"),
    ("[1, 2]\n", r"must hold a mapping"),
    ("epochs: [\n", r"is not valid YAML"),
])
def test_a_bad_file_is_one_line_and_exit_code_2(tmp_path, capsys, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert main(["generate", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err
    assert re.search(message, err), err


def test_a_missing_config_file_is_one_line(tmp_path, capsys):
    assert main(["generate", "--config", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_generate_runs_from_a_config_file_and_prints_strict_json(tmp_path, capsys):
    pytest.importorskip("networkx")
    path = tmp_path / "c.yaml"
    path.write_text("model: adjacency\nepochs: 1\nsteps: 2\nnum_samples: 2\nnum_layers: 1\nhidden_dim: 8\n")
    out = tmp_path / "run"
    assert main(["generate", "--config", str(path), "--no-progress", "--out", str(out)]) == 0
    summary = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))
    json.loads(summary, parse_constant=lambda name: pytest.fail(f"not strict JSON: {name}"))
    saved = GenerationConfig.load(out / "config.json")
    assert (saved.model, saved.epochs, saved.steps, saved.hidden_dim) == ("adjacency", 1, 2, 8)


def test_a_bad_value_in_the_file_is_refused_even_where_a_flag_replaces_it(tmp_path):
    with pytest.raises(ValueError, match=r"config file .*c\.yaml: epochs must be an integer, got 'ten'"):
        _config(tmp_path, "epochs: ten\n", "c.yaml", "--epochs", "1")


def test_a_runs_config_reused_on_other_graphs_takes_their_label_and_names_a_family_it_keeps(tmp_path, capsys):
    earlier = "dataset: mine\nmodel: spectral\nepochs: 3\n"  # a run on user graphs from mine.json
    cfg = _config(tmp_path, earlier, "c.yaml", "--graphs", str(tmp_path / "edges"))
    assert (cfg.dataset, cfg.epochs) == ("edges", 3)
    # A family named in the file is the validity rule the user chose: it stays.
    assert _config(tmp_path, "dataset: planar\n", "p.yaml", "--graphs", str(tmp_path / "edges")).dataset == "planar"
    # Without --graphs, a user label cannot be data: the error says what is missing.
    path = tmp_path / "c.yaml"
    assert main(["generate", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "got 'mine' (a label of user graphs? give the graphs with --graphs)" in capsys.readouterr().err


def test_user_graphs_are_labelled_by_their_file_or_folder_even_when_given_as_dot(tmp_path, monkeypatch):
    from spectraldiff.generation.cli import graphs_label

    folder = tmp_path / "proteins"
    folder.mkdir()
    monkeypatch.chdir(folder)
    assert [graphs_label("."), graphs_label(str(folder)), graphs_label("../proteins/")] == ["proteins"] * 3
    assert graphs_label(str(tmp_path / "ego.json")) == "ego"
