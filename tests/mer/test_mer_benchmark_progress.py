"""A sweep says how far it is: one ``run k/N, elapsed, ETA`` line per finished run (``mer benchmark``)."""

import re

import pytest

from mer.benchmark.run import progress_line
from mer.cli import main


@pytest.mark.parametrize("done, total, elapsed, expected", [
    (1, 4, 30.0, "run 1/4, elapsed 0m30s, ETA 1m30s"),
    (3, 12, 65.0, "run 3/12, elapsed 1m05s, ETA 3m15s"),
    (2, 2, 7.4, "run 2/2, elapsed 0m07s, ETA 0m00s"),
    (1, 100, 3600.0, "run 1/100, elapsed 1h00m00s, ETA 99h00m00s"),
    (0, 5, 0.0, "run 0/5, elapsed 0m00s, ETA unknown"),
])
def test_the_progress_line_extrapolates_the_mean_run_time(done, total, elapsed, expected):
    assert progress_line(done, total, elapsed) == expected


def test_mer_benchmark_prints_one_progress_line_per_finished_run_on_stderr(tmp_path, capsys):
    code = main(["benchmark", "--recoverers", "zero,mean", "--missing-rates", "0.0,0.3", "--seeds", "1",
                 "--protocol", "random", "--epochs", "1", "--synthetic-conversations", "12",
                 "--out", str(tmp_path / "bench")])
    assert code == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if " run " in f" {line}"]
    # Per-condition training: 2 methods × 2 rates = 4 runs, in order, each naming what finished.
    counts = [re.search(r"run (\d+)/(\d+), elapsed \d+m\d\ds, ETA \d+m\d\ds: (\w+)", line) for line in lines]
    assert [m.group(1, 2) for m in counts if m] == [("1", "4"), ("2", "4"), ("3", "4"), ("4", "4")]
    assert {m.group(3) for m in counts if m} == {"zero", "mean"}
