"""``mer reproduce`` (issue #15, part 5): the plan without data, a two-epoch run of every recipe on a
small file in the MMSA format, resuming, and the comparison's numbers."""

import json
import math

import numpy as np
import pytest

from mer.cli import main
from mer.reproduce import available_recipes, load_recipe, published_results
from mer.reproduce.run import compare, plan_reproduction, reproduce

from tests.mer.test_mer_loaders import _mmsa_split, _write


@pytest.fixture(scope="module")
def aligned_clips(tmp_path_factory):
    """A small ``aligned_50.pkl``: one clip per video, 8 / 3 / 4 clips."""
    rng = np.random.default_rng(0)
    data = {}
    for split, n in (("train", 8), ("valid", 3), ("test", 4)):
        ids = [f"{split}{i}$_$0" for i in range(n)]
        data[split] = _mmsa_split(rng, ids, True, list(rng.integers(2, 20, size=n)))
    return _write(tmp_path_factory.mktemp("mmsa") / "aligned_50.pkl", data)


def test_dry_run_prints_plan_recipe_and_published_table_without_data(capsys):
    assert main(["reproduce", "imder", "--dry-run"]) == 0
    out = capsys.readouterr().out
    recipe = load_recipe("imder_mosi")
    assert f"{len(recipe.conditions)} conditions × {len(recipe.seeds)} seeds" in out
    assert "| `train.lr` | 0.002 |" in out  # the recipe's settings with their sources
    published = [r for r in published_results("imder", "mosi") if r["condition"] == "0.3"]
    assert published and all(f"{r['value']:.2f}" in out for r in published)
    assert main(["reproduce", "imder", "--dataset", "mosei", "--dry-run", "--seeds", "1", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "CMU-MOSEI" in out and "deviation: seeds [1]" in out and "deviation: 3 epochs" in out


def test_reproduce_refuses_without_data_or_with_unknown_rows(capsys):
    assert main(["reproduce", "imder"]) == 2
    assert "give --data PATH and --out DIR" in capsys.readouterr().err
    assert main(["reproduce", "imder", "--conditions", "0.9", "--dry-run"]) == 2
    assert "has no condition '0.9'" in capsys.readouterr().err
    assert main(["reproduce", "nosuchpaper", "--dry-run"]) == 2
    assert "available:" in capsys.readouterr().err


@pytest.mark.parametrize("name", available_recipes())
def test_a_two_epoch_run_of_every_recipe_completes(name, aligned_clips, tmp_path):
    recipe = load_recipe(name)
    label = recipe.condition_labels[len(recipe.condition_labels) // 2]
    rows = reproduce(name, aligned_clips, out_dir=tmp_path, seeds=[1111], epochs=2, conditions=[label])
    mine = [r for r in rows if r["condition"] == label]
    assert [r["metric"] for r in mine] == list(recipe.metrics)
    assert all(r["seeds"] == 1 and math.isfinite(r["ours"]) for r in mine)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved) == 1 and saved[0]["config"]["train"]["epochs"] == 2
    assert saved[0]["config"]["model"]["fusion"] == recipe.config["model"].get("fusion", "gcn")
    text = (tmp_path / "comparison.md").read_text()
    assert f"| {label} |" in text and "deviation: 2 epochs" in text


def test_a_rerun_resumes_and_another_row_merges(aligned_clips, tmp_path):
    first = reproduce("md2n", aligned_clips, out_dir=tmp_path, seeds=[1111], epochs=1, conditions=["t"])
    stamp = json.loads((tmp_path / "results.json").read_text())[0]["train_seconds"]
    again = reproduce("md2n", aligned_clips, out_dir=tmp_path, seeds=[1111], epochs=1, conditions=["t"])
    assert json.dumps(again) == json.dumps(first)  # NaN std (one seed) compares equal as text
    assert json.loads((tmp_path / "results.json").read_text())[0]["train_seconds"] == stamp  # not retrained
    both = reproduce("md2n", aligned_clips, out_dir=tmp_path, seeds=[1111], epochs=1, conditions=["t", "a"])
    assert len(json.loads((tmp_path / "results.json").read_text())) == 2
    assert json.dumps([r for r in both if r["condition"] == "t"]) == json.dumps(first)
    with pytest.raises(ValueError, match="other settings"):  # a changed recipe setting is refused
        reproduce("md2n", aligned_clips, out_dir=tmp_path, seeds=[1111], epochs=2, conditions=["t"])


def _row(label, seed, acc2, acc7, protocol="literature"):
    row = {"recoverer": "imder", "protocol": protocol, "seed": seed,
           "metrics": {"acc2_non0": acc2, "f1_non0": acc2, "acc7": acc7}}
    if protocol == "literature":
        row["literature_label"] = float(label)
    else:
        row["pattern"] = label
    return row


def test_comparison_scales_averages_and_subtracts_the_published_value():
    recipe = load_recipe("imder_mosi")
    labels = [f"{x:.1f}" for x in recipe.average]
    rows = [_row(label, seed, 0.80 + 0.01 * k + 0.02 * (seed - 1), 0.40)
            for k, label in enumerate(labels) for seed in (1, 2)]
    out = compare(recipe, rows)
    by = {(r["protocol"], r["condition"], r["metric"]): r for r in out}
    cell = by["literature", "0.3", "acc2_non0"]
    published = {(p["protocol"], p["condition"], p["metric"]): p["value"] for p in published_results("imder", "mosi")}
    assert cell["ours"] == pytest.approx(100 * (0.83 + 0.01))  # percent, mean of seeds 0.83 and 0.85
    assert cell["std"] == pytest.approx(100 * 0.02 / math.sqrt(2))
    assert cell["published"] == published["literature", "0.3", "acc2_non0"]
    assert cell["difference"] == pytest.approx(cell["ours"] - cell["published"])
    average = by["literature", "Average", "acc2_non0"]
    assert average["ours"] == pytest.approx(100 * (0.80 + 0.01 * (len(labels) - 1) / 2 + 0.01))
    assert average["seeds"] == 2 and average["published"] == published["literature", "Average", "acc2_non0"]
    # A seed missing one label does not enter the Average; a row without our number shows NaN.
    partial = compare(recipe, [r for r in rows if not (r["seed"] == 2 and r["literature_label"] == 0.7)])
    assert {(r["protocol"], r["condition"], r["metric"]): r for r in partial}["literature", "Average", "acc7"]["seeds"] == 1
    assert math.isnan(by["fixed", "t", "acc7"]["ours"]) and not math.isnan(by["fixed", "t", "acc7"]["published"])


def test_plan_counts_trainings_and_names_its_deviations():
    plan = plan_reproduction("rohydr", "mosei", seeds=[1, 2], conditions=["0.1", "0.7"])
    assert plan.runs == [("0.1", 1), ("0.1", 2), ("0.7", 1), ("0.7", 2)]
    assert any("only the rows 0.1, 0.7" in d for d in plan.deviations())
    assert plan_reproduction("imder").recipe.name == "imder_mosi"
