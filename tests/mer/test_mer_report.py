"""The benchmark report: Averages never over unequal condition or seed sets without a mark, and the
figure's provenance subtitle and markers (``mer.benchmark.report``). Synthetic rows only, no
training."""

import json
import subprocess

import pytest

from mer.benchmark import report
from mer.benchmark.report import format_table, missing_rate_figure, provenance, unequal_sets
from mer.cli import main

#: ACC2 (non-zero) per (method, condition, seed); F1 is ACC2 − 0.1 and ACC7 0.4 in every row.
ACC2 = {
    ("zero", "0.0", 1): 0.80, ("zero", "0.0", 2): 0.82, ("zero", "0.3", 1): 0.70, ("zero", "0.3", 2): 0.74,
    ("mean", "0.0", 1): 0.80, ("mean", "0.0", 2): 0.82, ("mean", "0.3", 1): 0.76, ("mean", "0.3", 2): 0.78,
}


def _row(method, condition, seed, acc2, epochs=1, recovery=1.0):
    return {
        "recoverer": method, "protocol": "random", "condition": condition, "seed": seed,
        "training": "per_condition", "missing_rate": float(condition),
        "metrics": {"acc2_non0": acc2, "f1_non0": acc2 - 0.1, "acc7": 0.4,
                    "recovery_mse": None if condition == "0.0" else recovery},
        "config": {"train": {"epochs": epochs, "eval_samples": 1},
                   "data": {"source": "synthetic", "options": {"num_conversations": 24}, "task": None}},
        "dataset_fingerprint": "sha256:02c9387beff6a39e6fd7",
    }


def _equal_rows():
    return [_row(m, c, s, v) for (m, c, s), v in ACC2.items()]


def _average_line(table: str, occurrence: int = 0) -> str:
    return [line for line in table.splitlines() if line.startswith("| Average")][occurrence]


def test_equal_sets_average_per_seed_over_conditions_and_carry_no_mark():
    table = format_table(_equal_rows())
    # zero: per seed (0.80 + 0.70) / 2 = 0.75 and (0.82 + 0.74) / 2 = 0.78 → 76.5 ± 0.03/√2 = 2.1;
    # mean: 0.78 and 0.80 → 79.0 ± 1.4; F1 10 points lower; ACC7 constant.
    assert _average_line(table) == ("| Average | 76.5±2.1 / 66.5±2.1 / 40.0±0.0 | "
                                    "79.0±1.4 / 69.0±1.4 / 40.0±0.0 |")
    assert "†" not in table and "not run" not in table and "Unequal" not in table
    assert unequal_sets(_equal_rows()) == []


def test_unequal_conditions_average_over_the_common_conditions_with_a_mark_and_footnote():
    rows = _equal_rows() + [_row("gsdnet", "0.3", 1, 0.90), _row("gsdnet", "0.3", 2, 0.92)]
    table = format_table(rows)
    # Common condition: 0.3 only. zero: 0.70, 0.74 → 72.0 ± 0.04/√2 = 2.8; mean: 0.76, 0.78 → 77.0 ±
    # 1.4 (both marked: their own 0.0 is left out); gsdnet has exactly the common set and both seeds.
    assert _average_line(table) == ("| Average | 72.0±2.8 / 62.0±2.8 / 40.0±0.0† | "
                                    "77.0±1.4 / 67.0±1.4 / 40.0±0.0† | "
                                    "91.0±1.4 / 81.0±1.4 / 40.0±0.0 |")
    assert ("| 0.0 | 81.0±1.4 / 71.0±1.4 / 40.0±0.0 | 81.0±1.4 / 71.0±1.4 / 40.0±0.0 | not run |"
            in table)
    footnote = next(line for line in table.splitlines() if line.startswith("† Unequal sets"))
    assert "over the condition every method has (0.3)" in footnote
    assert "gsdnet: 0.0 not run" in footnote
    assert unequal_sets(rows) == ["random: gsdnet: 0.0 not run"]


def test_unequal_seeds_mark_the_cells_and_average_of_the_method_short_of_seeds():
    rows = _equal_rows() + [_row("gsdnet", "0.0", 1, 0.90), _row("gsdnet", "0.3", 1, 0.88)]
    table = format_table(rows)
    assert ("| 0.3 | 72.0±2.8 / 62.0±2.8 / 40.0±0.0 | 77.0±1.4 / 67.0±1.4 / 40.0±0.0 | "
            "88.0 / 78.0 / 40.0† |") in table
    # Every condition is common, so zero and mean average as with equal sets, unmarked.
    assert _average_line(table) == ("| Average | 76.5±2.1 / 66.5±2.1 / 40.0±0.0 | "
                                    "79.0±1.4 / 69.0±1.4 / 40.0±0.0 | 89.0 / 79.0 / 40.0† |")
    assert "gsdnet: seed 2 missing at 0.0, 0.3" in table
    # the recovery table too
    assert _average_line(table, 1).endswith("| 1.000±0.000 | 1.000±0.000 | 1.000† |")


def test_a_seed_short_of_a_common_condition_is_left_out_of_that_methods_average():
    rows = [r for r in _equal_rows() if not (r["recoverer"] == "mean" and r["condition"] == "0.3"
                                             and r["seed"] == 2)]
    table = format_table(rows)
    # mean keeps seed 1 only (seed 2 has no 0.3): (0.80 + 0.76) / 2 = 0.78, one seed, marked.
    assert _average_line(table) == "| Average | 76.5±2.1 / 66.5±2.1 / 40.0±0.0 | 78.0 / 68.0 / 40.0† |"
    assert "mean: seed 2 missing at 0.3" in table


def test_oracle_column_and_floors_follow_the_common_conditions():
    rows = _equal_rows() + [_row("gsdnet", "0.3", 1, 0.90), _row("gsdnet", "0.3", 2, 0.92)]
    for r in rows:
        r["metrics"].update(floor_utterance=0.5, floor_conversation=0.25,
                            recovery_ratio_utterance=2.0, recovery_ratio_conversation=4.0)
    bayes = {("0.0", 1): 0.95, ("0.0", 2): 0.97, ("0.3", 1): 0.93, ("0.3", 2): 0.91}
    rows += [{"recoverer": "bayes", "reference": "oracle", "protocol": "random", "condition": c,
              "seed": s, "metrics": {"acc2_non0": v, "f1_non0": v - 0.1, "acc7": 0.4,
                                     "floor_utterance": 0.5, "floor_conversation": 0.25}}
             for (c, s), v in bayes.items()]
    table = format_table(rows)
    header = next(line for line in table.splitlines() if line.startswith("| Condition"))
    assert header.endswith("| gsdnet | Bayes (oracle) |")
    # Bayes over 0.3 only: 0.93, 0.91 → 92.0 ± 1.4, marked (its 0.0 is left out).
    assert _average_line(table).endswith("| 92.0±1.4 / 82.0±1.4 / 40.0±0.0† |")
    assert "floor (a) utterance | floor (b) conversation |" in table
    assert _average_line(table, 1).endswith("| 0.500±0.000† | 0.250±0.000† |")


def test_figure_subtitle_names_data_epochs_seeds_protocol_and_commit():
    fig = missing_rate_figure(_equal_rows())
    subtitle = " ".join(fig.get_suptitle().split())
    for part in ("data synthetic(num_conversations=24) 02c9387b", "epochs 1", "seeds 1, 2",
                 "training per_condition", "protocol random (0.0, 0.3)", "drawn at commit "):
        assert part in subtitle
    assert subtitle == " ".join(provenance(_equal_rows()).split())


def test_subtitle_says_mixed_with_the_values_per_method():
    rows = _equal_rows() + [_row("gsdnet", c, 1, 0.9, epochs=5) for c in ("0.0", "0.3")]
    text = provenance(rows)
    assert "epochs mixed: 1 (zero, mean); 5 (gsdnet)" in text
    assert "seeds mixed: 1, 2 (zero, mean); 1 (gsdnet)" in text
    assert "unequal conditions/seeds" in text


def test_figure_builds_with_commit_unknown_when_git_is_missing(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(report.subprocess, "run", no_git)
    assert report.git_commit() == "commit unknown"
    assert "commit unknown" in missing_rate_figure(_equal_rows()).get_suptitle()

    def slow_git(*args, **kwargs):
        raise subprocess.TimeoutExpired("git", 5)

    monkeypatch.setattr(report.subprocess, "run", slow_git)
    assert report.git_commit() == "commit unknown"


def test_coincident_methods_stay_visible_by_offset_and_marker_shape():
    fig = missing_rate_figure(_equal_rows())
    zero, mean = (container.lines[0] for container in fig.axes[0].containers)
    # zero and mean have the same ACC2 at missing rate 0 (0.80, 0.82 → 81.0) ...
    assert zero.get_ydata()[0] == pytest.approx(mean.get_ydata()[0])
    # ... drawn apart, with different hollow markers.
    assert zero.get_xdata()[0] != mean.get_xdata()[0]
    assert zero.get_marker() != mean.get_marker()
    assert zero.get_markerfacecolor() == mean.get_markerfacecolor() == "none"


def test_mer_report_warns_in_one_line_on_unequal_sets(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps(_equal_rows()))
    (tmp_path / "b" / "results.json").write_text(json.dumps([_row("gsdnet", "0.3", 1, 0.9)]))
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mer report: warning:")
    assert "gsdnet: 0.0 not run; seed 2 missing at 0.3" in err[0]
    assert "†" in (tmp_path / "m" / "table.md").read_text()
    assert (tmp_path / "m" / "missing_rate.png").stat().st_size > 0


def test_mer_report_is_silent_on_equal_sets(tmp_path, capsys):
    (tmp_path / "results.json").write_text(json.dumps(_equal_rows()))
    assert main(["report", str(tmp_path / "results.json"), "--out", str(tmp_path / "m")]) == 0
    assert capsys.readouterr().err == ""
