"""Peak throughput of a device, and the figures of a timed row measured against it."""

from __future__ import annotations

import torch

from ..dispatch import device_key


#: Known peak throughput of CUDA devices in TFLOP/s (fp32, fp64; non-tensor-core), matched in order
#: against ``torch.cuda.get_device_name``. Vendor data-sheet figures.
CUDA_PEAK_TFLOPS = [
    ("H100 PCIe", 51.2, 25.6),
    ("H100", 67.0, 34.0),  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    ("H200", 67.0, 34.0),
    ("A100", 19.5, 9.7),
    ("V100", 15.7, 7.8),
    ("L4", 30.3, 0.49),
    ("T4", 8.1, 0.25),
]


def device_peak_gflops(device: torch.device | str) -> tuple[dict[str, float | None], str]:
    """Peak GFLOP/s of ``device`` for float32 and float64, and a sentence saying where it comes from.

    CPU: ``threads × clock × FLOPs/cycle/core`` with the clock from ``/proc/cpuinfo`` (``cpu MHz``)
    and FLOPs/cycle from its flags, assuming two fused multiply-add pipes of the widest vector width:
    AVX-512+FMA 64 (fp32) / 32 (fp64), AVX2+FMA 32 / 16, AVX 16 / 8, otherwise SSE2 8 / 4. Cores with
    a single FMA pipe (e.g. AMD Zen 1) have half that peak, so fractions are then understated.
    CUDA: the table :data:`CUDA_PEAK_TFLOPS` by device name; unknown devices give ``None`` ("n/a").
    """
    device = torch.device(device)
    if device.type == "cuda":
        name = _device_name(device)
        for pattern, fp32, fp64 in CUDA_PEAK_TFLOPS:
            if pattern.lower() in name.lower():
                return (
                    {"float32": fp32 * 1e3, "float64": fp64 * 1e3},
                    f"data-sheet peak for {pattern} (matched {name!r}): fp32 {fp32} TFLOP/s, fp64 {fp64} TFLOP/s",
                )
        return {"float32": None, "float64": None}, f"no known peak for {name!r}"

    flags, mhz = _cpu_flags_and_mhz()
    threads = torch.get_num_threads()
    if "avx512f" in flags and "fma" in flags:
        per_cycle, isa = (64, 32), "AVX-512+FMA"
    elif "avx2" in flags and "fma" in flags:
        per_cycle, isa = (32, 16), "AVX2+FMA"
    elif "avx" in flags:
        per_cycle, isa = (16, 8), "AVX"
    else:
        per_cycle, isa = (8, 4), "SSE2"
    if not mhz:
        return {"float32": None, "float64": None}, "CPU clock unknown (no 'cpu MHz' in /proc/cpuinfo)"
    peaks = {"float32": threads * mhz * 1e-3 * per_cycle[0], "float64": threads * mhz * 1e-3 * per_cycle[1]}
    source = (
        f"{threads} threads × {mhz:.0f} MHz × {per_cycle[0]}/{per_cycle[1]} fp32/fp64 FLOPs per cycle "
        f"({isa}, assuming two FMA pipes per core)"
    )
    return peaks, source


def _cpu_flags_and_mhz() -> tuple[set[str], float | None]:
    flags: set[str] = set()
    mhz = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "flags" and not flags:
                    flags = set(value.split())
                elif key == "cpu mhz" and mhz is None:
                    try:
                        mhz = float(value)
                    except ValueError:
                        pass
    except OSError:
        pass
    return flags, mhz


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    key = device_key(device)
    return key.split(":", 1)[1].rsplit(":", 1)[0]


def _derive(row: dict, peaks: dict) -> None:
    if row["status"] != "ok" or not row["seconds"]:
        return
    row["matrices_per_s"] = row["batch"] / row["seconds"]
    row["gflops"] = 9 * row["n"] ** 3 * row["batch"] / row["seconds"] / 1e9
    peak = peaks.get(row["dtype"])
    row["peak_fraction"] = row["gflops"] / peak if peak else None
