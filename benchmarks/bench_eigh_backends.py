"""pytest-benchmark cases for the eigh backends on a CI-friendly grid (n ≤ 64, B ≤ 1024).

Run: ``python -m pytest benchmarks/bench_eigh_backends.py --benchmark-columns=min,mean,rounds``
(``BENCH_DEVICE=cuda`` to time a GPU; the default is CUDA when available, else CPU).
Each case times ``batched_eigh(A, num_nodes, backend=...)`` through the public API, plus raw
``torch.linalg.eigh`` as the reference, and records matrices/s and GFLOP/s (9 n³ flop per matrix)
in the benchmark's ``extra_info``, printed at the end with the machine they ran on. For the full
grid, the fraction of peak, the plot and the ``auto`` crossover table use
``python -m spectraldiff bench-eigh`` instead.
"""

import time

import pytest
import torch

from spectraldiff.eigh import backend_usable, batched_eigh
from spectraldiff.eigh.bench import random_graphs
from spectraldiff.eigh.dispatch import device_key

SIZES = [8, 16, 32, 64]
BATCHES = [1, 64, 1024]
BACKENDS = ["torch.linalg.eigh", "torch", "jacobi", "cupy", "auto"]
MAX_ROUNDS = 50
# Jacobi on a CPU costs ~n³·B element-wise work (seconds at n = 64, B = 64, minutes at B = 1024;
# docs/eigh.md): beyond this it is skipped to keep the grid CI-sized.
CPU_JACOBI_MAX_WORK = 2**23

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", SIZES)
def test_eigh_backend(benchmark, device, synchronised, figures, backend, batch, n):
    if backend not in ("torch.linalg.eigh", "auto") and not backend_usable(backend, device):
        pytest.skip(f"backend {backend!r} cannot run on {device} here")
    if backend == "jacobi" and device.type == "cpu" and n**3 * batch > CPU_JACOBI_MAX_WORK:
        pytest.skip(f"jacobi on CPU at n={n}, B={batch} takes too long for the CI grid")
    A = random_graphs(batch, n, torch.float32, device, seed=n * 7919 + batch)
    sizes = torch.full((batch,), n, device=device)
    if backend == "torch.linalg.eigh":
        fn = synchronised(torch.linalg.eigh, device)
        args = (A,)
    else:
        fn = synchronised(lambda X, s: batched_eigh(X, s, backend=backend), device)
        args = (A, sizes)
    started = time.perf_counter()
    fn(*args)  # warm-up (CUDA context, kernel and schedule caches), and a probe of the cost
    probe = time.perf_counter() - started
    benchmark.group = f"eigh n={n} B={batch}"
    # About a second per case: slow cases (jacobi on CPU at n = 64, B = 1024) get a single round.
    benchmark.pedantic(fn, args=args, rounds=max(1, min(MAX_ROUNDS, int(1.0 / max(probe, 1e-9)))), iterations=1)
    if benchmark.stats is None:  # --benchmark-disable
        return

    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update(
        device=device_key(device),
        matrices_per_s=batch / seconds,
        gflops=9 * n**3 * batch / seconds / 1e9,
    )
    figures(
        "eigh backends (fastest round; 9 n^3 flop per matrix)",
        f"  {device_key(device)}  {backend:>17}  n={n:<3} B={batch:<5} {seconds * 1e3:9.3f} ms  "
        f"{batch / seconds:12.4g} matrices/s  {9 * n**3 * batch / seconds / 1e9:8.3g} GFLOP/s"
    )
