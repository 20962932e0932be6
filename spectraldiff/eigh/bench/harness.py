"""The benchmark run: every backend over the grid, the crossover table, ``auto`` against the best."""

from __future__ import annotations

import os
import platform
import sys

import torch

from ..backends import available_eigh_backends, backend_usable
from ..cupy import CUPY_INSTALL_HINT, cupy_available
from ..dispatch import CrossoverTable, backend_for, device_key, save_crossover
from .crossover import crossover_table
from .peak import _derive, _device_name, device_peak_gflops
from ...provenance import commit_info, machine_info, now
from .spread import NOISE_RULE, noise_verdict, spread
from .timing import _DTYPES, REFERENCE, WORKSPACE_FACTOR, _dispatch_overhead, _Inputs, _measure, _row, _Timing


#: Version 2 added the spread of every cell, ``machine_info``/``commit_info`` and the noise verdict
#: of ``auto`` (whose ``ratio_to_best`` became a ratio of medians).
FORMAT = "spectraldiff.eigh_bench/2"


#: Environment variables that set the threads of BLAS/LAPACK and OpenMP, recorded with the results.
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def benchmark_eigh(
    *,
    sizes: list[int],
    batches: list[int],
    backends: list[str],
    device: str | torch.device = "cpu",
    dtypes: list[str] = ("float32",),
    repeats: int = 5,
    min_time: float = 0.25,
    warmup: int = 1,
    seed: int = 0,
    memory_budget_bytes: int | None = None,
    max_seconds: float = 10.0,
    save_crossover_table: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Time every backend over the grid and return the report (the content of ``eigh_bench.json``).

    Parameters
    ----------
    sizes, batches : list of int
        Grid of matrix sizes ``n`` and batch sizes ``B`` (positive).
    backends : list of str
        ``batched_eigh`` backends (``"auto"`` allowed; it is timed last, after the crossover table
        of this run is saved when ``save_crossover_table``). Raw ``torch.linalg.eigh`` is always
        timed as the reference.
    device : str or torch.device
        ``"cpu"`` or ``"cuda"`` (``"cuda:1"``…).
    dtypes : list of str
        ``"float32"`` and/or ``"float64"``.
    repeats, warmup : int
        Timed (≥ 1) and untimed warm-up (≥ 1) calls per point.
    min_time : float
        Cheap points repeat beyond ``repeats`` until this many seconds were timed (≤ 2000 calls).
    seed : int
        Seed of the random graphs; grid point ``(n, B)`` draws from ``seed + 7919 n + B``.
    memory_budget_bytes : int, optional
        Working-memory budget of one call; default from the device (see ``--memory-budget-gb``).
    max_seconds : float
        Points predicted to take longer per call are skipped.
    save_crossover_table : bool
        Save the fastest backend per point for ``backend="auto"`` on this device.

    Returns
    -------
    dict
        Keys ``format, command, created, machine_info, commit_info, environment, device, config,
        results, auto, crossover``.

    Raises
    ------
    ValueError
        On an unknown backend or dtype, a non-positive size/batch/repeat count, or an unavailable
        device.
    """
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but torch.cuda.is_available() is False")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {device}")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    known = available_eigh_backends()
    for name in backends:
        if name not in known:
            raise ValueError(f"unknown backend {name!r}; choose from {known}")
    for name in dtypes:
        if name not in _DTYPES:
            raise ValueError(f"unknown dtype {name!r}; choose from {sorted(_DTYPES)}")
    for label, values in (("sizes", sizes), ("batches", batches)):
        if not values or any(v < 1 for v in values):
            raise ValueError(f"{label} must be a non-empty list of positive integers, got {values}")
    if repeats < 1 or warmup < 1 or min_time < 0:
        raise ValueError(f"need repeats ≥ 1, warmup ≥ 1 and min_time ≥ 0, got {repeats}, {warmup}, {min_time}")

    sizes, batches = sorted(set(sizes)), sorted(set(batches))
    explicit = [b for b in dict.fromkeys(backends) if b != "auto"]
    budget = memory_budget_bytes if memory_budget_bytes is not None else _default_budget(device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    timing = _Timing(sync=sync, repeats=repeats, min_time=min_time, warmup=warmup, max_seconds=max_seconds)
    unusable = {name: _why_unusable(name, device) for name in explicit}

    load_before = _load_average()
    points = [(d, n, b) for d in dtypes for n in sizes for b in batches]
    total = len(points) * (len(explicit) + 1 + ("auto" in backends))
    bar = _progress(total, progress)
    results: list[dict] = []
    timings: dict[tuple[str, str, int, int], float] = {}

    for dtype_name, n, batch in points:
        inputs = _Inputs(dtype_name, n, batch, device, seed, budget)
        for name in [REFERENCE, *explicit]:
            bar.set_postfix_str(f"{dtype_name} n={n} B={batch} {name}")
            if unusable.get(name):
                results.append(_row(name, dtype_name, n, batch, status="unavailable", note=unusable[name]))
            else:
                results.append(_measure([name], inputs, timing, timings)[0])
            bar.update(1)
        del inputs

    table = crossover_table(results, explicit, device.type)
    crossover = {
        "key": device_key(device),
        "entries": [
            {"dtype": d, "n": n, "batch": b, "backend": backend} for (d, n, b), backend in sorted(table.items())
        ],
        "saved_to": None,
    }
    if save_crossover_table and table:
        meta = {
            "torch": torch.__version__,
            "created": now(),
            "source": "python -m spectraldiff bench-eigh",
            "seconds": {
                f"{d}/{n}/{b}": {name: t for (name, dn, nn, bb), t in timings.items() if (dn, nn, bb) == (d, n, b)}
                for (d, n, b) in table
            },
        }
        path = save_crossover(crossover["key"], CrossoverTable(entries=table, meta=meta))
        crossover["saved_to"] = str(path)

    auto_rows: list[dict] = []
    if "auto" in backends:
        for dtype_name, n, batch in points:
            bar.set_postfix_str(f"{dtype_name} n={n} B={batch} auto")
            measured = [
                (timings[(name, dtype_name, n, batch)], name)
                for name in explicit
                if (name, dtype_name, n, batch) in timings
            ]
            best_name = min(measured)[1] if measured else None
            inputs = _Inputs(dtype_name, n, batch, device, seed, budget)
            # auto and the best backend of the first pass are timed again, alternately, so that
            # their ratio is not skewed by load that changed between the passes.
            names = ["auto"] if best_name is None else ["auto", best_name]
            row, samples = _measure(names, inputs, timing, timings)
            best = spread(samples[best_name]) if samples.get(best_name) else None
            del inputs
            choice = backend_for(device, _DTYPES[dtype_name], n, batch)
            overhead = _dispatch_overhead(device, _DTYPES[dtype_name], n, batch, choice)
            compared = row["status"] == "ok" and best is not None
            row.update(
                choice=choice,
                best_backend=best_name,
                best_seconds=best["seconds"] if best else None,
                best_median_seconds=best["median_seconds"] if best else None,
                best_iqr_seconds=best["iqr_seconds"] if best else None,
                ratio_to_best=row["median_seconds"] / best["median_seconds"] if compared else None,
                vs_best=noise_verdict(row["median_seconds"], row["iqr_seconds"], best["median_seconds"],
                                      best["iqr_seconds"]) if compared else None,
                dispatch_overhead_s=overhead,
                dispatch_fraction=(overhead / best["median_seconds"]) if best else None,
            )
            results.append(row)
            auto_rows.append(row)
            bar.update(1)
    bar.close()

    peaks, peak_source = device_peak_gflops(device)
    for row in results:
        _derive(row, peaks)

    return {
        "format": FORMAT,
        "command": command,
        "created": now(),
        "machine_info": machine_info(device),
        "commit_info": commit_info(),
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            # Other processes on the machine distort CPU timings: 1-minute load before and after.
            "load_average": [load_before, _load_average()],
            "threads_env": {k: os.environ.get(k) for k in _THREAD_ENV},
        },
        "device": {
            "type": device.type,
            "key": device_key(device),
            "name": _device_name(device),
            "threads": torch.get_num_threads() if device.type == "cpu" else None,
            "peak_gflops": peaks,
            "peak_source": peak_source,
        },
        "config": {
            "sizes": sizes,
            "batches": batches,
            "backends": [REFERENCE, *explicit] + (["auto"] if "auto" in backends else []),
            "dtypes": list(dtypes),
            "repeats": repeats,
            "min_time": min_time,
            "warmup": warmup,
            "seed": seed,
            "memory_budget_bytes": budget,
            "workspace_factor": WORKSPACE_FACTOR,
            "max_seconds": max_seconds,
            "timing": "min, median, IQR and std of the timed repeats after warm-up, synchronised on CUDA; "
            "auto is timed alternately with the first pass's fastest backend",
            "noise_rule": NOISE_RULE,
            "flop_model": "9 n^3 per matrix",
            "graphs": "Erdos-Renyi p=0.5, weights U[0,1), full size n, num_nodes passed",
        },
        "results": results,
        "auto": auto_rows,
        "crossover": crossover,
    }


def _why_unusable(name: str, device: torch.device) -> str:
    if backend_usable(name, device):
        return ""
    if name == "cupy":
        if device.type != "cuda":
            return "cupy runs on CUDA tensors only"
        if not cupy_available():
            return f"CuPy not installed: {CUPY_INSTALL_HINT}"
    return "not usable on this device"


def _default_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free // 2)
    available = _meminfo_available()
    return int(min(available // 4, 8 * 2**30)) if available else 2 * 2**30


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _progress(total: int, enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but a bar is not worth failing a benchmark for
        enabled = False
    if not enabled:
        return _NoBar()
    return tqdm(total=total, desc="bench-eigh", unit="point", file=sys.stderr)


class _NoBar:
    def set_postfix_str(self, text: str) -> None:
        pass

    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
