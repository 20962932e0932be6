"""The benchmark: recoverers × missing-modality conditions × seeds, as in the papers' tables.

:func:`run_benchmark` evaluates every recoverer on the test split under every condition (random
missing rates, fixed availability sets, or both), with the same masks for every method of a seed, and
returns one row per (condition, seed, recoverer). Two training modes:

* ``training="per_condition"`` (default): one model per (condition, seed, recoverer), trained and
  validated under that condition — a specialist, as in the papers.
* ``training="shared"``: one model per (seed, recoverer), trained and early-stopped on the uniform
  mixture of all the benchmark's conditions (``MissingProtocol(kind="mixed")``), then evaluated under
  each condition with the same test masks as per-condition mode. The papers' full table (8 rates + 7 sets)
  takes 15× fewer trainings.

With ``out_dir`` it writes

* ``results.json`` — the list of rows (rewritten atomically after every training, so an interrupted
  benchmark resumes where it stopped); a rerun on the same folder merges its rows in and never drops
  one (see :func:`run_benchmark`);
* ``table.md`` — per protocol (random, then fixed) a row per condition, a column per method,
  ``ACC2 / F1 / ACC7`` (regression) or ``ACC / F1`` (classification) as mean ± std over seeds, in
  percent, with an ``Average`` row; then the recovery MSE of the dropped features in the same layout;
* ``missing_rate.png`` — ACC2 (or ACC) against the missing rate, one line per method (the fixed
  conditions are plotted only when there is no random one).

Row keys: ``recoverer``, ``protocol`` (``"random"``/``"fixed"``), ``condition`` (``"0.3"``,
``"{t,a}"``), ``missing_rate`` or ``pattern``, ``seed``, ``training`` (``"per_condition"`` /
``"shared"``), ``metrics`` (the :func:`~mer.metrics.regression_metrics` or
:func:`~mer.metrics.classification_metrics` keys, ``recovery_mse`` and ``loss``), ``epochs_run``,
``best_epoch``, ``train_seconds`` (of the model evaluated: with shared training, the shared run's),
``eval_seconds``, ``config`` (the resolved config the model was trained with),
``dataset_fingerprint`` (:func:`mer.training.dataset_fingerprint`).

A dataset with an oracle (the Gaussian yardstick, ``--data gaussian``) adds, under each row's own test
masks, the recovery floors and ``recovery_mse / floor`` ratios to every row's ``metrics``, and a
``"bayes"`` reference row (``reference: "oracle"``) per condition and seed with the Bayes-optimal task
metrics; ``table.md`` and the figure show them (see :mod:`mer.benchmark.run` and
:mod:`mer.benchmark.report`).

``executor="ray"`` runs the trainings as Ray tasks instead of one after another here
(:mod:`mer.benchmark.executors`); rows, files and resume are the same.
"""

from mer.benchmark.executors import EXECUTORS, BenchmarkTaskError, MissingExtraError
from mer.benchmark.report import format_table, load_results, merge_results, plot_missing_rate, write_report
from mer.benchmark.run import (
    BENCHMARK_PROTOCOLS,
    DEFAULT_RECOVERERS,
    DEFAULT_SEEDS,
    ROW_KEYS,
    TRAINING_MODES,
    default_missing_rates,
    run_benchmark,
)

__all__ = [
    "run_benchmark",
    "default_missing_rates",
    "DEFAULT_RECOVERERS",
    "DEFAULT_SEEDS",
    "BENCHMARK_PROTOCOLS",
    "TRAINING_MODES",
    "format_table",
    "plot_missing_rate",
    "write_report",
    "merge_results",
    "load_results",
    "ROW_KEYS",
    "EXECUTORS",
    "BenchmarkTaskError",
    "MissingExtraError",
]
