"""Atomic file writes: a crash or a full disk mid-write never leaves a truncated file behind.

Every writer in both packages (checkpoints, JSON records, tables, plots, crossover tables) goes through
:func:`atomic_write`: the bytes go to a temporary file beside the target, are flushed to disk, and
``os.replace`` swaps it in, so readers see the old file or the new one, never half of one. The
temporary file is named ``.<name>.<random>.tmp``; :func:`remove_stale_temporaries` clears the ones a
killed process left behind.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import tempfile
from typing import IO, Any, Callable

import numpy as np
import torch

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_torch_save", "json_text", "jsonable",
           "remove_stale_temporaries"]


def _umask_mode() -> int:
    # mkstemp creates 0600 files; give the final file the mode a plain open() would.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], mode: str = "wb") -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, fsync, then ``os.replace`` it onto
    ``path``. The temporary file is removed if anything fails.

    Raises
    ------
    OSError
        When the disk is full, a folder is missing or not writable, or ``path`` is a folder: the same
        ``errno`` and subclass, with ``path`` as its ``filename`` (a writer such as ``torch.save`` may
        report a failed write without naming the file, or wrap it in its own ``RuntimeError``). Any
        other error of ``write`` propagates unchanged.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # its errors name the folder already
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise _naming(error, path) from error
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException as error:
        if os.path.exists(tmp):
            os.unlink(tmp)
        cause = _os_error_in(error)
        if cause is not None:
            raise _naming(cause, path) from error
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda handle: torch.save(obj, handle), "wb")


def _os_error_in(error: BaseException) -> OSError | None:
    """``error`` itself or the first error it was raised from or while handling that is an
    ``OSError`` with an errno (how a failed ``write`` shows up under a library's own exception)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno is not None:
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _naming(error: OSError, path: pathlib.Path) -> OSError:
    """A copy of ``error`` (same subclass and errno) whose filename is ``path``, the file being
    written, rather than its temporary file or none."""
    if error.errno is None:
        return error
    return type(error)(error.errno, error.strerror or os.strerror(error.errno), os.fspath(path))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda handle: handle.write(text), "w")


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON (NaN/Inf become ``null``) atomically."""
    atomic_write_text(json_text(obj) + "\n", path)


def json_text(obj: Any, *, indent: int | None = 2, default=None) -> str:
    """``obj`` as strict JSON, the one rule for every file written and every record printed: plain
    types (:func:`jsonable`), NaN and infinity as ``null``; ``default`` as in ``json.dumps``."""
    return json.dumps(jsonable(obj), indent=indent, allow_nan=False, default=default)


def jsonable(obj: Any) -> Any:
    """Plain JSON types: tuples → lists, numpy/torch scalars → Python, NaN/Inf → ``None``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        obj = obj.item()
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def remove_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[pathlib.Path]:
    """Delete temporary files that :func:`atomic_write` left in ``folder`` when its process was
    killed mid-write (only for target ``name`` when given). Call it only while holding the folder
    (e.g. under a run lock), since a live writer's temporary file looks the same. Returns the paths
    removed."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return []
    pattern = f".{name}.*.tmp" if name is not None else ".*.tmp"
    removed = []
    for tmp in folder.glob(pattern):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
