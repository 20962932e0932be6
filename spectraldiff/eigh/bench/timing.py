"""Timing one grid point of the eigendecomposition benchmark.

A point ``(dtype, n, B)`` gets one seeded batch of random graphs (:func:`random_graphs`), split into
chunks that fit the memory budget (:class:`_Inputs`); :func:`_measure` times one backend (or several,
alternating call by call) with warm-up, a minimum timed duration and ``torch.cuda.synchronize()`` on
CUDA, and skips points predicted to exceed ``max_seconds``; a timed row carries the spread of its
repeats (:func:`.spread.spread`). :func:`_dispatch_overhead` measures what
resolving ``"auto"`` costs on its own.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..solve import _resolve_backend, batched_eigh
from .spread import spread


#: Label of the raw ``torch.linalg.eigh`` reference (not a ``batched_eigh`` backend).
REFERENCE = "torch.linalg.eigh"


#: Bytes of working memory per input byte assumed for one ``batched_eigh`` call (input, symmetrised
#: and shifted copies, validation temporaries, solver workspace, outputs).
WORKSPACE_FACTOR = 16


#: Most timed calls per point and backend (cheap points repeat until ``min_time``).
MAX_CALLS = 2000


_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def random_graphs(batch: int, n: int, dtype: torch.dtype, device: torch.device | str, seed: int) -> Tensor:
    """``(batch, n, n)`` weighted adjacency matrices of Erdős–Rényi graphs (p = 0.5), seeded."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.rand(batch, n, n, generator=generator, dtype=torch.float64)
    edges = torch.rand(batch, n, n, generator=generator, dtype=torch.float64) < 0.5
    upper = torch.triu(weights * edges, diagonal=1)
    return (upper + upper.mT).to(dtype=dtype, device=device)


class _Inputs:
    """The batch of one grid point, generated once for all backends, split into budget-sized chunks."""

    def __init__(self, dtype_name: str, n: int, batch: int, device: torch.device, seed: int, budget: int):
        self.dtype_name, self.n, self.batch = dtype_name, n, batch
        dtype = _DTYPES[dtype_name]
        per_matrix = WORKSPACE_FACTOR * n * n * (torch.finfo(dtype).bits // 8)
        self.too_big = per_matrix > budget
        self.views: list[tuple[Tensor, Tensor]] = []
        self.chunk = max(1, min(batch, budget // per_matrix))
        if self.too_big:
            return
        pieces = [self.chunk] * (batch // self.chunk) + ([batch % self.chunk] if batch % self.chunk else [])
        A = random_graphs(self.chunk, n, dtype, device, seed + 7919 * n + batch)
        sizes = torch.full((self.chunk,), n, dtype=torch.long, device=device)
        self.views = [(A[:p], sizes[:p]) for p in pieces]


@dataclass
class _Timing:
    sync: Callable[[], None]
    repeats: int
    min_time: float
    warmup: int
    max_seconds: float


def _measure(names: list[str], inputs: _Inputs, timing: _Timing, timings: dict) -> tuple[dict, dict]:
    """Time ``names[0]`` (and any further names, alternating call by call) at one grid point.

    Returns the row of ``names[0]`` (its fastest time also goes to ``timings``) and every name's
    samples in seconds.
    """
    name = names[0]
    dtype_name, n, batch = inputs.dtype_name, inputs.n, inputs.batch
    if inputs.too_big:
        return _row(name, dtype_name, n, batch, status="skipped", note="one matrix exceeds the memory budget"), {}

    # Predict from the same backend at the largest smaller batch already measured.
    smaller = [(b, t) for (nm, d, nn, b), t in timings.items() if (nm, d, nn) == (name, dtype_name, n) and b < batch]
    if smaller:
        b0, t0 = max(smaller)
        predicted = t0 * batch / b0
        if predicted > timing.max_seconds:
            note = f"predicted {predicted:.3g} s per call > --max-seconds {timing.max_seconds:g}"
            return _row(name, dtype_name, n, batch, status="skipped", note=note), {}

    calls = {nm: _callable(nm) for nm in names}
    chunks = len(inputs.views)
    samples: dict[str, list[float]] = {nm: [] for nm in names}
    sync = timing.sync
    with torch.no_grad():
        for nm in names:
            for _ in range(timing.warmup):
                sync()
                started = time.perf_counter()
                calls[nm](*inputs.views[0])
                sync()
                first = time.perf_counter() - started
            if first * chunks > timing.max_seconds:
                note = f"warm-up predicts {first * chunks:.3g} s per call > --max-seconds {timing.max_seconds:g}"
                return _row(name, dtype_name, n, batch, status="skipped", note=note), {}
        spent = 0.0
        for r in range(MAX_CALLS):
            for nm in names if r % 2 == 0 else names[::-1]:
                sync()
                started = time.perf_counter()
                for X, sizes in inputs.views:
                    calls[nm](X, sizes)
                sync()
                samples[nm].append(time.perf_counter() - started)
                spent += samples[nm][-1]
            enough = r + 1 >= timing.repeats and spent >= timing.min_time * len(names)
            if enough or spent > timing.max_seconds:
                break
    stats = spread(samples[name])
    timings[(name, dtype_name, n, batch)] = stats["seconds"]
    note = f"chunked: {chunks} calls of ≤{inputs.chunk}" if chunks > 1 else ""
    row = _row(name, dtype_name, n, batch, status="ok", stats=stats, repeats=len(samples[name]), chunks=chunks,
               note=note)
    return row, samples


def _dispatch_overhead(device: torch.device, dtype: torch.dtype, n: int, batch: int, choice: str) -> float:
    """Median extra seconds ``batched_eigh`` spends resolving ``"auto"`` rather than ``choice``.

    Everything else in an ``auto`` call is the chosen backend's call, so this is what ``auto`` costs
    on top of the best backend when it chooses it — measured without the noise of a whole solve.
    """
    # Only shape, dtype and device matter to the dispatch: a broadcast view allocates nothing.
    probe = torch.empty(1, 1, 1, dtype=dtype, device=device).expand(batch, n, n)

    def median_seconds(name: str) -> float:
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(200):
                _resolve_backend(name, probe)
            samples.append((time.perf_counter() - started) / 200)
        return statistics.median(samples)

    median_seconds("auto")  # fills the dispatch memo
    return max(0.0, median_seconds("auto") - median_seconds(choice))


def _callable(name: str) -> Callable[[Tensor, Tensor], object]:
    if name == REFERENCE:
        return lambda X, sizes: torch.linalg.eigh(X)
    return lambda X, sizes: batched_eigh(X, sizes, backend=name)


#: The timing fields of a row, from :func:`.spread.spread` (``None`` when the cell was not timed).
TIMING_FIELDS = ("seconds", "median_seconds", "q1_seconds", "q3_seconds", "iqr_seconds", "mean_seconds", "std_seconds")


def _row(name, dtype_name, n, batch, *, status, stats=None, repeats=0, chunks=0, note="") -> dict:
    return {
        "backend": name,
        "dtype": dtype_name,
        "n": n,
        "batch": batch,
        "status": status,
        **{field: (stats or {}).get(field) for field in TIMING_FIELDS},
        "repeats": repeats,
        "chunks": chunks,
        "matrices_per_s": None,
        "gflops": None,
        "peak_fraction": None,
        "note": note,
    }
