"""The per-paper recipes (mer/reproduce/recipes/*.yaml) and the published numbers (published.csv)."""

import collections
import pathlib

import pytest

from mer.reproduce import (
    available_recipes,
    condition_label,
    load_recipe,
    published_results,
    recipe_table,
    validate_recipe,
)
from mer.reproduce.recipes import DOC_END, DOC_START, recipes_markdown

ROOT = pathlib.Path(__file__).resolve().parents[2]
RECIPES = available_recipes()
# Printed to one decimal: the mean of rounded values and the rounded mean differ by at most 0.05 + 0.05.
AVERAGE_TOLERANCE = 0.1 + 1e-9
# Averages the paper itself prints off its rows (each row checked against the paper's text): GSDNet
# Table 2, CMU-MOSI, ACC7: the rows 46.8 … 35.6 average 42.44, the paper prints 42.3 (as its Table 3).
PAPER_INCONSISTENT_AVERAGES = {("gsdnet", "gsdnet", "Table 2", "mosi", "acc7"): 42.4375}


def test_every_paper_has_its_recipes():
    assert RECIPES == ["gsdnet_mosei", "gsdnet_mosi", "imder_mosei", "imder_mosi", "md2n_mosei",
                       "md2n_mosi", "rohydr_mosei", "rohydr_mosi"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_validates_against_the_code(name):
    validate_recipe(load_recipe(name))


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_literature_conditions_give_literature_protocols(name):
    recipe = load_recipe(name)
    for condition in recipe.conditions:
        if condition["kind"] == "literature":
            config = recipe.run_config("DATA", recipe.seeds[0], condition)
            assert config.protocol.kind == "literature"
            assert config.protocol.missing_rate == pytest.approx(condition["missing_rate"])


def test_unknown_recipe_error_lists_the_available_ones():
    with pytest.raises(ValueError) as err:
        load_recipe("imder", "iemocap")
    assert "imder_iemocap" in str(err.value)
    for name in RECIPES:
        assert name in str(err.value)


def test_run_config_carries_the_recipe_settings():
    recipe = load_recipe("imder", "mosei")
    config = recipe.run_config("/data/MOSEI/aligned_50.pkl", 1113, "0.3")
    assert config.train.lr == 0.002 and config.train.batch_size == 128
    assert config.seed == 1113
    assert (config.protocol.kind, config.protocol.missing_rate) == ("literature", 0.3)
    assert config.data.source == "mmsa"
    assert config.data.options == {"sequences": True, "per_clip": True, "path": "/data/MOSEI/aligned_50.pkl"}
    assert config.model.fusion == "mult" and config.model.mult.layers == 6
    assert config.recoverer == "imder" and config.recoverer_kwargs["steps"] == 100
    fixed = recipe.run_config("x.pkl", 1111, {"kind": "fixed", "pattern": ["a", "t"]})
    assert fixed.protocol.kind == "fixed" and set(fixed.protocol.pattern) == {"t", "a"}


def test_run_config_does_not_change_the_recipe():
    recipe = load_recipe("rohydr_mosi")
    config = recipe.run_config("x.pkl", 1, "0.7")
    config.recoverer_kwargs["lambda_c"] = 0.9
    config.data.options["path"] = "y.pkl"
    assert recipe.config["recoverer_kwargs"]["lambda_c"] == 0.4
    assert "path" not in recipe.data["options"]


def test_run_config_refuses_a_row_the_recipe_lacks():
    with pytest.raises(ValueError, match="no condition"):
        load_recipe("md2n_mosi").run_config("x.pkl", 1, "0.3")


def test_condition_labels_use_modality_order():
    assert condition_label({"kind": "fixed", "pattern": ["v", "a", "t"]}) == "t+a+v"
    assert condition_label({"kind": "literature", "missing_rate": 0.7}) == "0.7"


def _groups(rows):
    groups = collections.defaultdict(dict)
    for row in rows:
        key = (row["paper"], row["method"], row["table"], row["dataset"], row["protocol"], row["metric"])
        groups[key][row["condition"]] = row["value"]
    return groups


def test_every_recipe_row_is_published_and_every_published_row_has_a_recipe():
    rows = published_results(method=None)
    assert rows
    for row in rows:
        name = f"{row['paper']}_{row['dataset']}"
        assert name in RECIPES, row
        recipe = load_recipe(name)
        assert row["table"] in recipe.tables, row
        assert row["metric"] in recipe.metrics, row
        assert row["condition"] == "Average" or row["condition"] in recipe.condition_labels, row
        assert row["source"].startswith(row["table"]), row
    for name in RECIPES:
        recipe = load_recipe(name)
        own = published_results(recipe.paper, recipe.dataset)
        printed = {(r["condition"], r["metric"]) for r in own}
        for label in recipe.condition_labels:
            for metric in recipe.metrics:
                assert (label, metric) in printed, (name, label, metric)
        assert {r["table"] for r in own} == set(recipe.tables)


def test_published_rows_are_unique():
    rows = published_results(method=None)
    keys = [(r["paper"], r["method"], r["table"], r["dataset"], r["condition"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys))


def test_published_average_is_the_mean_of_its_rows():
    """Catches transcription errors: each printed Average equals the mean of the printed rows the
    recipe says it averages, within rounding."""
    checked = 0
    for (paper, method, table, dataset, protocol, metric), values in _groups(published_results(method=None)).items():
        if "Average" not in values:
            continue
        recipe = load_recipe(paper, dataset)
        labels = ([f"{a:.1f}" for a in recipe.average] if protocol == "literature"
                  else list(recipe.average_fixed))
        assert labels, (paper, dataset, protocol)
        mean = sum(values[label] for label in labels) / len(labels)
        known = PAPER_INCONSISTENT_AVERAGES.get((paper, method, table, dataset, metric))
        if known is not None:
            assert mean == pytest.approx(known)
            checked += 1
            continue
        assert abs(mean - values["Average"]) <= AVERAGE_TOLERANCE, (paper, method, table, dataset, metric,
                                                                  mean, values["Average"])
        checked += 1
    # 2 tables x 2 datasets x 3 metrics each: IMDer's own, GSDNet's own, IMDer's as GSDNet prints them
    assert checked == 36


def test_published_results_filters():
    own = published_results("gsdnet", "mosi")
    assert own and {r["method"] for r in own} == {"gsdnet"}
    imder_as_printed = published_results("gsdnet", "mosi", method="imder")
    assert {r["method"] for r in imder_as_printed} == {"imder"}
    row = next(r for r in published_results("imder", "mosi")
               if r["table"] == "Table 2" and r["condition"] == "0.7" and r["metric"] == "acc2_non0")
    assert row["value"] == 71.9 and isinstance(row["value"], float)


def test_imder_rows_printed_by_other_papers_match_imder_own_where_copied():
    """GSDNet and MD2N copy IMDer's numbers; RoHyDR's MOSEI rows differ (it reran IMDer)."""
    imder = {(r["table"], r["dataset"], r["condition"], r["metric"]): r["value"]
             for r in published_results("imder")}
    copied = published_results("gsdnet", method="imder")
    assert copied and all(imder[(r["table"], r["dataset"], r["condition"], r["metric"])] == r["value"]
                          for r in copied)
    md2n = published_results("md2n", method="imder")
    assert md2n and all(imder[("Table 1", r["dataset"], r["condition"], r["metric"])] == r["value"] for r in md2n)


@pytest.mark.parametrize("name", RECIPES)
def test_doc_holds_the_recipe_current_table(name):
    doc = (ROOT / "docs" / "reproduce.md").read_text(encoding="utf8")
    assert recipe_table(load_recipe(name)) in doc


def test_doc_section_is_the_generated_one():
    doc = (ROOT / "docs" / "reproduce.md").read_text(encoding="utf8")
    section = doc.split(DOC_START, 1)[1].split(DOC_END, 1)[0]
    assert section.strip() == recipes_markdown().strip()


def test_packaged_data_is_declared_in_pyproject():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf8")
    assert '"mer.reproduce" = ["recipes/*.yaml", "*.csv"]' in text
