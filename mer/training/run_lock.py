"""An exclusive lock on a run's output folder: :class:`RunLock`.

Two runs writing one folder leave files of both (the config of one, the metrics of the other), so
:func:`mer.train` and :func:`mer.run_benchmark` hold ``<folder>/.lock`` for their whole life. The
lock is an OS file lock (``fcntl.flock`` on Linux and macOS, ``msvcrt.locking`` on Windows) on
that file, kept open while the run lives: the kernel drops it when the process ends, killed or not,
so a dead run never blocks the next one — its ``.lock`` file is simply locked again (taken over).
The file itself stays; after locking, the holder writes who it is (pid, host, command, start time)
into it, which is what a refused run reports.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import pathlib
import socket
import sys
import threading
import time

__all__ = ["RunLock", "RunLockedError", "LOCK_NAME"]

LOCK_NAME = ".lock"

logger = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

# Folders this process holds: resolved path → [open lock file, depth, pid]. A process may lock a folder
# it already holds (a benchmark handing its folder to a helper); only the outermost release unlocks.
_held: dict[str, list] = {}
_held_guard = threading.Lock()


class RunLockedError(RuntimeError, ValueError):
    """The folder is locked by another live run. A ``ValueError`` too, so the CLI reports it as a
    user error: one line, exit code 2."""


class RunLock:
    """Hold ``<folder>/.lock`` exclusively, as a context manager.

    Parameters
    ----------
    folder : path
        The run's output folder; created if missing.
    what : str
        What holds it, written into the lock file (e.g. ``"mer train"``).

    Raises
    ------
    RunLockedError
        On entry, at once, when another process holds the folder: ``"runs/x is in use by pid 1234
        on host (mer train, started 2026-…); wait for it or choose another --out"``.
    ValueError
        When ``folder`` exists and is not a folder.

    Example
    -------
    >>> with RunLock("runs/x", what="mer train"):   # doctest: +SKIP
    ...     ...  # write runs/x/*
    """

    def __init__(self, folder: str | os.PathLike, what: str = "mer train") -> None:
        self.folder = pathlib.Path(folder)
        self.what = what
        self._keys: list[str] = []  # one per __enter__ not yet exited

    def __enter__(self) -> "RunLock":
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"{self.folder} is a file, not a folder; choose another --out")
        self.folder.mkdir(parents=True, exist_ok=True)
        key = str(self.folder.resolve())
        with _held_guard:
            if key in _held and _held[key][2] == os.getpid():
                _held[key][1] += 1
                self._keys.append(key)
                return self
            handle = open(self.folder / LOCK_NAME, "a+", encoding="utf8")
            try:
                _lock(handle)
            except OSError:
                holder = _holder(handle)
                handle.close()
                raise RunLockedError(f"{self.folder} is in use by {_describe(holder)}; wait for it "
                                     "or choose another --out") from None
            previous = _read(handle)
            if previous:
                logger.info("%s: taking over the lock of %s, which ended without releasing it",
                            self.folder, _describe(previous))
            _write(handle, {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "command": self.what,
                "argv": sys.argv,
                "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            })
            _held[key] = [handle, 1, os.getpid()]
            self._keys.append(key)
        return self

    def __exit__(self, *exc) -> None:
        with _held_guard:
            if not self._keys:
                return
            key = self._keys.pop()
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                handle = entry[0]
                _write(handle, None)  # the file stays (see the module docstring); its holder goes
                handle.close()  # closing releases the OS lock


def _lock(handle) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:
        # Lock one byte far past the holder text, so readers can still read it.
        handle.seek(1 << 20)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)


def _holder(handle) -> dict:
    """The live holder's details. A run that has just locked the file writes them a moment later;
    until then the file is empty or still names the dead run it took over from, so wait a little."""
    for _ in range(20):
        holder = _read(handle)
        if holder.get("pid") and _alive(holder):
            break
        time.sleep(0.025)
    return holder


def _alive(holder: dict) -> bool:
    if fcntl is None or holder.get("host") != socket.gethostname():
        return True  # cannot tell (on Windows, os.kill would terminate the process)
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError):
        pass
    return True


def _read(handle) -> dict:
    try:
        handle.seek(0)
        text = handle.read(4096).strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def _write(handle, holder: dict | None) -> None:
    handle.seek(0)
    handle.truncate()
    if holder is not None:
        handle.write(json.dumps(holder) + "\n")
    handle.flush()


def _describe(holder: dict) -> str:
    if not holder.get("pid"):
        return "another process (which has not yet written its details)"
    return (f"pid {holder['pid']} on {holder.get('host', '?')} ({holder.get('command', '?')}, "
            f"started {holder.get('started', '?')})")
