"""Benchmark harness for the eigendecomposition backends: ``python -m spectraldiff bench-eigh``.

For every grid point ``(dtype, n, B)`` and backend, a seeded batch of ``B`` random weighted graphs of
``n`` nodes is decomposed by ``batched_eigh(A, num_nodes, backend=name)`` (the public API, so
validation and padding are included) and, as a reference, by raw ``torch.linalg.eigh``. The fastest
timed call is reported with matrices/s, GFLOP/s (``9 n³ B / t``) and the fraction of the device's
peak; ``auto`` is timed last, alternating with the best backend of the first pass. Outputs in
``--out``: ``eigh_bench.json``, ``eigh_bench.md`` and ``eigh_bench.png``; ``--save-crossover``
saves the fastest backend per point for ``backend="auto"`` (:mod:`spectraldiff.eigh.dispatch`).

One module per job: :mod:`.timing` (inputs and timed calls), :mod:`.peak` (device peak and derived
figures), :mod:`.crossover` (the table for ``auto``), :mod:`.harness` (the run over the grid),
:mod:`.report` (JSON and Markdown), :mod:`.plot` (the figure), :mod:`.cli` (the command). The
methodology and the measured tables are in ``docs/eigh.md``.
"""

from .cli import add_arguments, run
from .crossover import CROSSOVER_MARGIN, crossover_table
from .harness import FORMAT, benchmark_eigh
from .peak import CUDA_PEAK_TFLOPS, device_peak_gflops
from .plot import plot_report
from .report import render_markdown, write_report
from .timing import MAX_CALLS, REFERENCE, WORKSPACE_FACTOR, random_graphs

__all__ = [
    "add_arguments",
    "run",
    "benchmark_eigh",
    "write_report",
    "render_markdown",
    "plot_report",
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
