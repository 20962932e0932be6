"""Choice of the eigendecomposition backend behind ``batched_eigh(..., backend="auto")``.

The rule, for a batch ``A`` of shape ``(B, N, N)`` on some device:

1. **Measured table.** ``python -m spectraldiff bench-eigh ... --save-crossover`` times every backend
   over a grid of ``(dtype, n, B)`` and saves, per device, which one was fastest at each grid point
   (a :class:`CrossoverTable`) in ``<cache>/eigh_crossover.json``. If that file has a table for this
   device (:func:`device_key`) with entries for ``A``'s dtype, ``auto`` uses the backend of the
   nearest grid point: the smallest ``(2·Δlog₂ n)² + (Δlog₂ B)²`` (cost grows as ``n³`` but only
   linearly in ``B``, so ``n`` counts double); ties go to the smaller ``n``, then the smaller ``B``.
   Outside the measured range the nearest edge of the grid decides.
2. **Built-in default** (no table for the device, the measured backend unusable here — e.g.
   ``"cupy"`` without CuPy — or an unreadable file, which ``auto`` reports once as a warning):
   :func:`default_backend` — ``"torch"`` on CPU; on CUDA ``"jacobi"`` for ``32 < N ≤ 256`` with
   ``B ≥ 256`` and ``"torch"`` otherwise. The CUDA rule is **not measured**:
   it follows from ``torch.linalg.eigh`` using cuSOLVER's batched Jacobi only for ``N ≤ 32`` and one
   matrix at a time above that; run the benchmark on your GPU to replace it.

The cache directory is ``$SPECTRALDIFF_CACHE_DIR`` if set, else ``~/.cache/spectraldiff``. The file
is read once per process and each choice is remembered, so ``auto`` costs one dictionary lookup per
call (about a microsecond). :func:`save_crossover` forgets what was read and chosen; after changing
``$SPECTRALDIFF_CACHE_DIR`` or editing the file in a running process, call :func:`clear_cache`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..atomic import atomic_write_text
from .backends import backend_usable

__all__ = [
    "choose_backend",
    "backend_for",
    "default_backend",
    "device_key",
    "cache_dir",
    "crossover_path",
    "CrossoverTable",
    "load_crossover",
    "save_crossover",
    "clear_cache",
    "backend_usable",
    "CACHE_ENV",
]

CACHE_ENV = "SPECTRALDIFF_CACHE_DIR"
CROSSOVER_FILE = "eigh_crossover.json"
CROSSOVER_FORMAT = "spectraldiff.eigh_crossover/1"

#: Unmeasured CUDA default: use "jacobi" for N in this closed range (torch's batched cuSOLVER path
#: covers N ≤ 32) when the batch has at least ``CUDA_JACOBI_MIN_BATCH`` matrices.
CUDA_JACOBI_SIZES = (33, 256)
CUDA_JACOBI_MIN_BATCH = 256

_DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64"}


@dataclass
class CrossoverTable:
    """Fastest backend per measured grid point ``(dtype, n, batch)`` for one device.

    Parameters
    ----------
    entries : dict
        ``{(dtype_name, n, batch): backend}``, e.g. ``{("float32", 64, 1024): "jacobi"}``.
    meta : dict
        Free-form provenance (torch version, date, per-backend seconds), saved alongside.
    """

    entries: dict[tuple[str, int, int], str]
    meta: dict = field(default_factory=dict)

    def lookup(self, dtype: str, n: int, batch: int) -> str | None:
        """Backend at the grid point nearest to ``(n, batch)`` for ``dtype``; ``None`` if no entry."""
        points = [(gn, gb) for (gd, gn, gb) in self.entries if gd == dtype]
        if not points:
            return None
        ln, lb = math.log2(max(n, 1)), math.log2(max(batch, 1))
        nearest = min(
            points,
            key=lambda p: ((2 * (math.log2(p[0]) - ln)) ** 2 + (math.log2(p[1]) - lb) ** 2, p),
        )
        return self.entries[(dtype, *nearest)]

    def to_json(self) -> dict:
        return {
            "entries": [
                {"dtype": d, "n": n, "batch": b, "backend": backend}
                for (d, n, b), backend in sorted(self.entries.items())
            ],
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict) -> "CrossoverTable":
        entries = {}
        for i, row in enumerate(data.get("entries", [])):
            try:
                key = (str(row["dtype"]), int(row["n"]), int(row["batch"]))
                backend = str(row["backend"])
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"crossover entry {i} is malformed ({error!r}): {row!r}") from error
            if key[1] < 1 or key[2] < 1:
                raise ValueError(f"crossover entry {i}: n and batch must be positive, got {row!r}")
            entries[key] = backend
        return cls(entries=entries, meta=dict(data.get("meta", {})))


def cache_dir() -> Path:
    """``$SPECTRALDIFF_CACHE_DIR`` if set, else ``~/.cache/spectraldiff``."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path.home() / ".cache" / "spectraldiff"


def crossover_path() -> Path:
    """The crossover file: ``cache_dir() / "eigh_crossover.json"``."""
    return cache_dir() / CROSSOVER_FILE


def device_key(device: torch.device | str) -> str:
    """Name of a device in the crossover file.

    ``"cpu:<model name>:<torch threads>"`` on CPU (thread count matters as much as the model), and
    ``"cuda:<device name>"`` on CUDA, e.g. ``"cuda:NVIDIA H100 80GB HBM3"``.
    """
    device = torch.device(device)
    if device.type == "cpu":
        return f"cpu:{_cpu_model()}:{torch.get_num_threads()}"
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{_cuda_name(index)}"
    return device.type


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@functools.lru_cache(maxsize=None)
def _cuda_name(index: int) -> str:
    return torch.cuda.get_device_name(index)


_LOADED: dict[Path, dict[str, CrossoverTable]] = {}
# choose_backend's answers by (device, threads, dtype, B, N): one dict lookup per call.
_CHOICES: dict[tuple, str] = {}
_MAX_CHOICES = 4096


def load_crossover(path: Path | str | None = None) -> dict[str, CrossoverTable]:
    """All tables in the crossover file, by device key; ``{}`` if the file does not exist.

    Raises
    ------
    ValueError
        If the file exists but is not a crossover file of the expected format.
    """
    path = Path(path) if path is not None else crossover_path()
    if path in _LOADED:
        return _LOADED[path]
    if not path.exists():
        tables: dict[str, CrossoverTable] = {}
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error}); delete it or re-run bench-eigh") from error
        if not isinstance(data, dict) or data.get("format") != CROSSOVER_FORMAT:
            raise ValueError(f"{path}: expected format {CROSSOVER_FORMAT!r}; delete it or re-run bench-eigh")
        tables = {key: CrossoverTable.from_json(value) for key, value in data.get("devices", {}).items()}
    _LOADED[path] = tables
    return tables


def save_crossover(key: str, table: CrossoverTable, path: Path | str | None = None) -> Path:
    """Merge ``table`` into the crossover file under device ``key`` and return the file's path.

    Entries of an existing table for the same device are kept unless ``table`` measured the same
    grid point again; other devices are left as they are.
    """
    path = Path(path) if path is not None else crossover_path()
    _LOADED.pop(path, None)
    tables = dict(load_crossover(path))
    if key in tables:
        merged = {**tables[key].entries, **table.entries}
        table = CrossoverTable(entries=merged, meta={**tables[key].meta, **table.meta})
    tables[key] = table
    data = {"format": CROSSOVER_FORMAT, "devices": {k: t.to_json() for k, t in sorted(tables.items())}}
    atomic_write_text(json.dumps(data, indent=2) + "\n", path)
    clear_cache()
    return path


def clear_cache() -> None:
    """Forget crossover files read and choices made so far (the next ``auto`` call reads again)."""
    _LOADED.clear()
    _CHOICES.clear()


def default_backend(device_type: str, n: int, batch: int) -> str:
    """The built-in rule used without a measured table (see the module docstring)."""
    if device_type == "cuda" and CUDA_JACOBI_SIZES[0] <= n <= CUDA_JACOBI_SIZES[1] and batch >= CUDA_JACOBI_MIN_BATCH:
        return "jacobi"
    return "torch"


def choose_backend(A: Tensor) -> str:
    """Name of the backend ``"auto"`` uses for the batch ``A`` ``(B, N, N)``.

    Parameters
    ----------
    A : Tensor
        ``(B, N, N)`` float32/float64 on any device; only its shape, dtype and device matter.

    Returns
    -------
    str
        A registered backend name (never ``"auto"``).
    """
    shape = A.shape
    memo = (A.device, torch.get_num_threads(), A.dtype, shape[0], shape[-1])
    choice = _CHOICES.get(memo)
    if choice is None:
        if len(_CHOICES) >= _MAX_CHOICES:
            _CHOICES.clear()
        choice = _CHOICES[memo] = backend_for(A.device, A.dtype, shape[-1], shape[0])
    return choice


def backend_for(device: torch.device | str, dtype: torch.dtype, n: int, batch: int) -> str:
    """The rule of :func:`choose_backend` for a ``(batch, n, n)`` batch of ``dtype`` on ``device``."""
    device = torch.device(device)
    try:
        tables = load_crossover()
    except ValueError as error:
        # A broken cache file must not break every eigendecomposition: say so once, use the default.
        warnings.warn(f"backend='auto' ignores the crossover file: {error}", RuntimeWarning, stacklevel=2)
        tables = _LOADED[crossover_path()] = {}
    table = tables.get(device_key(device))
    if table is not None and dtype in _DTYPE_NAMES:
        choice = table.lookup(_DTYPE_NAMES[dtype], n, batch)
        if choice is not None and backend_usable(choice, device):
            return choice
    return default_backend(device.type, n, batch)
