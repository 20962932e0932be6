"""Where a result was made: the machine and the commit (``eigh_bench.json``, the benchmark figures).

The keys follow pytest-benchmark's ``machine_info`` and ``commit_info`` so that the two kinds of
report read alike; :func:`git` is the one way both packages ask the local ``git``. Nothing here touches the network; the commit comes from the local ``git`` (if
installed and the package sits in a work tree) and is ``None`` otherwise.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import subprocess
from pathlib import Path

import torch

#: Seconds any one ``git`` call may take before the commit is recorded as unknown.
GIT_TIMEOUT = 5.0


def machine_info(device: torch.device) -> dict:
    """Host, CPU, library versions and (on CUDA) the GPU of this run.

    Keys: ``node`` (hostname), ``machine``, ``system``, ``release``, ``python``, ``cpu`` (model name
    from ``/proc/cpuinfo``, else ``platform.processor()``), ``cpu_count`` (logical cores),
    ``torch``, ``numpy``, ``cuda`` (torch's CUDA version or ``None``) and ``cuda_device`` (the GPU's
    name when ``device`` is CUDA, else ``None``).
    """
    try:
        import numpy

        numpy_version = numpy.__version__
    except ImportError:
        numpy_version = None
    return {
        "node": socket.gethostname(),
        "machine": platform.machine(),
        "system": platform.system(),
        "release": platform.release(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "numpy": numpy_version,
        "cuda": torch.version.cuda,
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def commit_info(path: str | Path | None = None) -> dict:
    """The commit of the work tree holding ``path`` (default: this package's source).

    Keys: ``id`` (``git rev-parse HEAD``), ``branch``, ``dirty`` (tracked or untracked changes, per
    ``git status --porcelain``; read with ``--no-optional-locks`` so the index is never rewritten),
    ``project`` (the work tree's folder name) and ``error`` (why the rest is ``None``, else ``None``).
    """
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    info = {"id": None, "branch": None, "dirty": None, "project": None, "error": None}
    try:
        info["id"] = git(where, "rev-parse", "HEAD")
        info["branch"] = git(where, "rev-parse", "--abbrev-ref", "HEAD")
        info["project"] = Path(git(where, "rev-parse", "--show-toplevel")).name
        info["dirty"] = bool(git(where, "status", "--porcelain"))
    except (OSError, subprocess.SubprocessError) as error:
        info["error"] = " ".join(str(error).split()) or type(error).__name__
    return info


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git(where: str | Path, *args: str) -> str:
    """The stripped output of ``git -C where ARGS``, read with ``--no-optional-locks`` (the index is
    never rewritten) and no prompt; raises ``OSError`` (no ``git``) or ``subprocess.SubprocessError``
    (a failure, or more than :data:`GIT_TIMEOUT` seconds)."""
    done = subprocess.run(
        ["git", "--no-optional-locks", "-C", str(where), *args],
        capture_output=True, text=True, timeout=GIT_TIMEOUT, check=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    return done.stdout.strip()


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("model name", "hardware", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None
