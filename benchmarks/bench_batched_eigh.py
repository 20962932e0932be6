"""batched_eigh against a per-graph NumPy loop and raw ``torch.linalg.eigh`` on the padded batch (CPU).

Run: ``python -m pytest benchmarks/bench_batched_eigh.py --benchmark-columns=min,mean,rounds``.
Float64, n ∈ {8, 16, 32, 64, 128}, B ∈ {1, 64, 1024}. Cases:

* ``numpy_loop`` — ``numpy.linalg.eigh`` on each graph, one at a time;
* ``torch_raw`` — ``torch.linalg.eigh`` on the whole batch at torch's default thread count (a LAPACK
  loop over the batch; MKL may thread inside each small solve);
* ``torch_raw_1thread`` — the same with ``torch.set_num_threads(1)``: one core's throughput, the
  baseline a per-core split can at best double on 2 cores;
* ``batched_eigh`` — the library function, every graph full size (validation, chunks over threads);
* ``batched_eigh_padded`` — the same batch with every graph declared one node smaller and zero-padded
  (the padding path: masks, diagonal shift, zeroing), which is what padding costs on top.

Matrices/s, GFLOP/s (9 n³ flop per matrix) and the fraction of the machine's peak are printed at the
end with the machine they ran on.
"""

import time

import numpy as np
import pytest
import torch

from spectraldiff import batched_eigh
from spectraldiff.eigh.bench import device_peak_gflops
from spectraldiff.eigh.solve import _one_lapack_thread_per_worker as single_lapack_thread

SIZES = [8, 16, 32, 64, 128]
BATCHES = [1, 64, 1024]
CASES = ["numpy_loop", "torch_raw", "torch_raw_1thread", "batched_eigh", "batched_eigh_padded"]
def symmetric_batch(batch, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(batch, n, n, dtype=torch.float64, generator=gen)
    return A + A.mT


def make_case(case, A):
    B, n, _ = A.shape
    if case == "numpy_loop":
        arrays = A.numpy()
        return lambda: [np.linalg.eigh(a) for a in arrays]
    if case == "torch_raw":
        return lambda: torch.linalg.eigh(A)
    if case == "torch_raw_1thread":
        return lambda: _single_threaded_eigh(A)
    if case == "batched_eigh":
        return lambda: batched_eigh(A)
    padded = A.clone()
    padded[:, -1, :] = 0
    padded[:, :, -1] = 0
    sizes = torch.full((B,), n - 1)
    return lambda: batched_eigh(padded, sizes)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", CASES)
def test_eigh(benchmark, figures, case, n, batch):
    fn = make_case(case, symmetric_batch(batch, n))
    fn()  # warm-up: thread pool, allocator, LAPACK workspace
    rounds = max(3, min(50, int(0.5 / max(_time_once(fn), 1e-6))))
    benchmark.pedantic(fn, rounds=rounds, iterations=1)
    best = benchmark.stats.stats.min
    peaks, _ = device_peak_gflops("cpu")
    gflops = 9 * n**3 * batch / best / 1e9
    fraction = f"{gflops / peaks['float64']:.1%}" if peaks["float64"] else "n/a"
    benchmark.extra_info.update(matrices_per_s=batch / best, gflops=gflops)
    peak = f"{peaks['float64']:.1f} GFLOP/s estimated float64 peak" if peaks["float64"] else "peak unknown"
    figures(f"batched_eigh vs NumPy loop vs torch.linalg.eigh, float64 ({peak})",
            f"{case:>20} n={n:<4} B={batch:<5} {best * 1e3:9.3f} ms  {batch / best:12.0f} matrices/s  "
            f"{gflops:7.3f} GFLOP/s  {fraction} of peak")


def _single_threaded_eigh(A):
    with single_lapack_thread():  # the same switch batched_eigh's pool workers run under
        return torch.linalg.eigh(A)


def _time_once(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
