"""Benchmark harness for the eigendecomposition backends: ``python -m spectraldiff bench-eigh``.

For every grid point ``(dtype, n, B)`` and backend, a seeded batch of ``B`` random weighted graphs of
``n`` nodes is decomposed by ``batched_eigh(A, num_nodes, backend=name)`` (the public API, so
validation and padding are included) and, as a reference, by raw ``torch.linalg.eigh``. The fastest
timed call is reported with matrices/s, GFLOP/s (``9 n³ B / t``) and the fraction of the device's
peak, and every cell with the median, IQR and standard deviation of its repeats; two cells differ only
beyond that spread. ``auto`` is timed last, alternating with the best backend of the first pass.
Outputs in ``--out``: ``eigh_bench.json`` (with the machine and commit), ``eigh_bench.md`` and
``eigh_bench.png``; ``--save-crossover`` saves the fastest backend per point for ``backend="auto"``
(:mod:`spectraldiff.eigh.dispatch`); ``--compare OLD.json`` compares cell by cell with an earlier run.

One module per job: :mod:`.timing` (inputs and timed calls), :mod:`.spread` (the spread of a cell
and the noise rule), :mod:`.peak` (device peak and derived figures), :mod:`.provenance` (machine and
commit), :mod:`.crossover` (the table for ``auto``), :mod:`.harness` (the run over the grid),
:mod:`.report` (JSON and Markdown), :mod:`.plot` (the figure), :mod:`.compare` (two runs, cell by
cell), :mod:`.cli` (the command). The methodology and the measured tables are in ``docs/eigh.md``.
"""

from .cli import add_arguments, run
from .compare import compare_reports, load_report, render_comparison
from .crossover import CROSSOVER_MARGIN, crossover_table
from .harness import FORMAT, benchmark_eigh
from .peak import CUDA_PEAK_TFLOPS, device_peak_gflops
from .plot import build_figure, plot_report
from ...provenance import commit_info, machine_info
from .report import render_markdown, write_report
from .spread import NOISE_RULE, noise_verdict, spread
from .timing import MAX_CALLS, REFERENCE, WORKSPACE_FACTOR, random_graphs

__all__ = [
    "add_arguments",
    "run",
    "benchmark_eigh",
    "write_report",
    "render_markdown",
    "plot_report",
    "build_figure",
    "spread",
    "noise_verdict",
    "NOISE_RULE",
    "machine_info",
    "commit_info",
    "compare_reports",
    "load_report",
    "render_comparison",
    "crossover_table",
    "device_peak_gflops",
    "random_graphs",
    "REFERENCE",
    "FORMAT",
    "WORKSPACE_FACTOR",
    "MAX_CALLS",
    "CROSSOVER_MARGIN",
    "CUDA_PEAK_TFLOPS",
]
