"""Optional CuPy backend for ``batched_eigh(..., backend="cupy")`` (CUDA tensors only).

CuPy is never required: it is imported on the first call, and its absence produces an
``ImportError`` that says how to install it. The batch is handed to CuPy and back through DLPack
(no copy) on the current torch CUDA stream.

For ``n ≤ 32`` a batch goes to cuSOLVER's ``syevjBatched`` (what ``cupy.linalg.eigh`` calls for a
stacked input). cuSOLVER documents ``syevjBatched`` for ``n ≤ 32`` only, so larger matrices are
solved one at a time with ``cupy.linalg.eigh`` (``syevd``) — correct, but without batching; use
``"jacobi"`` there on a GPU. This module has not been run on a GPU in this repository's CI.
"""

from __future__ import annotations

import importlib
import importlib.util

import torch
from torch import Tensor

__all__ = ["cupy_eigh", "cupy_available", "CUPY_INSTALL_HINT", "SYEVJ_BATCHED_MAX_N"]

CUPY_INSTALL_HINT = "pip install cupy-cuda12x (CUDA 12; cupy-cuda11x for CUDA 11)"

#: Largest ``n`` cuSOLVER's ``syevjBatched`` accepts.
SYEVJ_BATCHED_MAX_N = 32


def cupy_available() -> bool:
    """Whether CuPy can be imported (checked without importing it)."""
    return importlib.util.find_spec("cupy") is not None


def cupy_eigh(A: Tensor) -> tuple[Tensor, Tensor]:
    """Eigendecomposition of a CUDA batch with CuPy/cuSOLVER.

    Parameters
    ----------
    A : Tensor
        ``(b, n, n)`` symmetric, float32 or float64, on a CUDA device.

    Returns
    -------
    eigenvalues : Tensor
        ``(b, n)`` ascending, on ``A``'s device.
    eigenvectors : Tensor
        ``(b, n, n)``; column ``k`` belongs to ``eigenvalues[:, k]``.

    Raises
    ------
    ValueError
        If ``A`` is not on a CUDA device.
    ImportError
        If CuPy is not installed (the message gives the ``pip install`` line).
    """
    if A.device.type != "cuda":
        raise ValueError(
            f"eigh backend 'cupy' needs CUDA tensors, got one on {A.device}; "
            "use backend='torch' or 'jacobi' for CPU tensors"
        )
    cp = _import_cupy()
    b, n, _ = A.shape
    stream = torch.cuda.current_stream(A.device)
    with cp.cuda.Device(A.device.index), cp.cuda.ExternalStream(stream.cuda_stream):
        x = cp.from_dlpack(A.contiguous())
        if n <= SYEVJ_BATCHED_MAX_N:
            w, v = cp.linalg.eigh(x)
        else:
            w = cp.empty((b, n), dtype=x.dtype)
            v = cp.empty((b, n, n), dtype=x.dtype)
            for i in range(b):
                w[i], v[i] = cp.linalg.eigh(x[i])
    return torch.from_dlpack(w), torch.from_dlpack(v)


def _import_cupy():
    try:
        return importlib.import_module("cupy")
    except ImportError as error:
        raise ImportError(
            f"eigh backend 'cupy' needs CuPy, which is not installed: {CUPY_INSTALL_HINT}"
        ) from error
