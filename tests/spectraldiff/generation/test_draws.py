"""`generate --draws D`: D independent sample sets, each score's mean and spread over them."""

import json
import pickle
import statistics

import networkx as nx
import pytest

from spectraldiff.generation import GenerationConfig
from spectraldiff.generation.cli import summary_line
from spectraldiff.generation.datasets import load_json_graphs, split_graphs
from spectraldiff.generation.evaluation import evaluate_samples
from spectraldiff.generation.pipeline import mean_over_draws, std_over_draws
from tests.spectraldiff.generation.generate_runs import run_generate

SCORES = ("degree", "clustering", "orbit", "spectral", "average", "unique", "novel", "vun")


def test_mean_and_std_over_draws_keep_undefined_scores_undefined():
    draws = [{"degree": 0.1, "valid": None, "vun": 0.5}, {"degree": 0.3, "valid": None, "vun": 0.25},
             {"degree": 0.2, "valid": None, "vun": 0.0}]
    mean, std = mean_over_draws(draws), std_over_draws(draws)
    assert mean["degree"] == pytest.approx(0.2) and mean["vun"] == pytest.approx(0.25)
    assert std["degree"] == pytest.approx(statistics.stdev([0.1, 0.3, 0.2]))  # sample std (n − 1)
    assert std["vun"] == pytest.approx(0.25)
    assert mean["valid"] is None and std["valid"] is None


def test_draws_must_be_positive():
    with pytest.raises(ValueError, match="draws must be ≥ 1, got 0"):
        GenerationConfig(draws=0)


@pytest.fixture
def saved_planar_run(tmp_path):
    """A 2-epoch eigenvalue-model run on 12 small planar graphs (a family with a validity rule)."""
    from spectraldiff.generation.datasets import planar, save_json_graphs

    path = tmp_path / "planar_graphs.json"
    save_json_graphs(planar(12, seed=0, num_nodes=12), path)
    assert run_generate("--graphs", str(path), "--dataset", "planar", "--model", "spectral", "--epochs", "2",
                        "--hidden-dim", "16", "--num-layers", "1", "--num-samples", "6",
                        "--out", str(tmp_path / "run")) == 0
    return path, tmp_path / "run" / "model.pt"


def test_draws_score_independent_sets_and_the_first_is_the_single_draw_run(tmp_path, saved_planar_run, capsys):
    graphs, model = saved_planar_run
    single, several = tmp_path / "one", tmp_path / "three"
    common = ["--graphs", str(graphs), "--resume-from", str(model)]
    assert run_generate(*common, "--out", str(single)) == 0
    capsys.readouterr()
    assert run_generate(*common, "--draws", "3", "--out", str(several)) == 0
    printed = capsys.readouterr().out
    one = json.loads((single / "metrics.json").read_text())
    three = json.loads((several / "metrics.json").read_text())

    assert one["draws"] == 1 and "per_draw" not in one and "std" not in one
    assert three["draws"] == 3 and len(three["per_draw"]) == 3
    # draw 1 is sampled with the single-draw run's seed; the others with seeds of their own
    for key in SCORES + ("valid",):
        assert three["per_draw"][0][key] == one[key], key
    assert len({json.dumps(d["degree"]) for d in three["per_draw"]}) == 3
    for key in SCORES + ("valid", "sampling_seconds_per_graph"):
        values = [d[key] for d in three["per_draw"]]
        assert three[key] == pytest.approx(statistics.fmean(values)), key
        assert three["std"][key] == pytest.approx(statistics.stdev(values)), key
    assert json.loads((several / "config.json").read_text())["draws"] == 3
    # the saved graphs are the first draw's, the same as the single-draw run's
    first = pickle.loads((several / "samples.pkl").read_bytes())
    same = pickle.loads((single / "samples.pkl").read_bytes())
    assert len(first) == 6 and all(nx.utils.graphs_equal(a, b) for a, b in zip(first, same))
    # every draw's graphs are kept, and they are the graphs its scores were computed on
    assert not (single / "samples_per_draw.pkl").exists()
    per_draw = pickle.loads((several / "samples_per_draw.pkl").read_bytes())
    assert [len(draw) for draw in per_draw] == [6, 6, 6]
    assert all(nx.utils.graphs_equal(a, b) for a, b in zip(per_draw[0], first))
    train, test = split_graphs(load_json_graphs(graphs))
    for draw, scores in zip(per_draw, three["per_draw"]):
        again = evaluate_samples(draw, train, test, family="planar")
        assert [again[key] for key in SCORES] == [scores[key] for key in SCORES]
    assert f"over 3 draws: degree {three['degree']:.4g} ± {three['std']['degree']:.2g}" in printed
    assert f"vun {three['vun']:.4g} ± {three['std']['vun']:.2g}" in printed


def test_summary_line_names_vun_only_where_validity_is_defined():
    scores = {"degree": 0.5, "clustering": 0.25, "orbit": 0.125, "spectral": 0.0625, "average": 0.3, "vun": 0.4}
    assert summary_line({**scores, "valid": None, "draws": 1}) == (
        '{"degree": 0.5, "clustering": 0.25, "orbit": 0.125, "spectral": 0.0625, "average": 0.3}')
    assert summary_line({**scores, "valid": 0.4, "draws": 1}).endswith('"average": 0.3, "vun": 0.4}')
    spread = {k: 0.01 for k in scores}
    assert summary_line({**scores, "valid": None, "draws": 2, "std": spread}) == (
        "over 2 draws: degree 0.5 ± 0.01, clustering 0.25 ± 0.01, orbit 0.125 ± 0.01, "
        "spectral 0.0625 ± 0.01, average 0.3 ± 0.01")
