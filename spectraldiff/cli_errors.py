"""User errors on the command line: one line on stderr and exit code 2; a traceback only for a bug.

Both command lines (``python -m spectraldiff`` and ``mer``) run their commands through
:func:`run_command`. It turns the errors a user can fix into one line,
``<prog> <command>: error: <what is wrong>``, and exit code 2:

- ``ValueError`` (bad settings, unknown registry names, corrupt JSON, refused or corrupt pickles:
  :class:`~spectraldiff.safe_pickle.UnsafePickleError` and ``CorruptPickleError`` are ``ValueError``
  too), ``pickle.UnpicklingError`` and ``EOFError`` (truncated files);
- ``OSError``: a missing file, a directory where a file was expected, a file where a directory was
  expected, no permission, a full disk; the line names the path and the fix;
- whatever else the caller lists in ``user_errors`` (``mer`` adds YAML errors).

Anything else (``TypeError``, ``KeyError``, ...) is a bug and keeps its traceback. ``debug=True`` (the
``--debug`` flag) re-raises user errors too, to show where they came from.

:class:`ArgumentParser` holds the option errors argparse finds (an unknown option, a bad number) to
the same one line and exit code 2, pointing at ``--help`` instead of printing the usage.
"""

from __future__ import annotations

import argparse
import errno
import os
import pickle
import sys
from typing import Callable

__all__ = ["run_command", "error_line", "USER_ERRORS", "check_output_dir", "ArgumentParser"]

#: Exceptions that mean "the input is wrong", not "the code is wrong".
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, EOFError, pickle.UnpicklingError)

# What to do about an OSError that carries a path, by errno.
_OS_FIXES = {
    errno.ENOENT: "no such file or directory; check the path",
    errno.EISDIR: "is a directory, expected a file; give a file path",
    errno.ENOTDIR: "a part of this path is a file, not a directory; give a path inside a directory",
    errno.EEXIST: "already exists and is not a directory; give a new path or a directory",
    errno.EACCES: "permission denied; choose a path you can read and write",
    errno.EPERM: "operation not permitted; choose a path you can read and write",
    errno.ENOSPC: "no space left on device; free some space or write somewhere else",
    errno.EROFS: "read-only file system; write somewhere else",
}


def error_line(error: BaseException) -> str:
    """The message of ``error`` on one line (newlines and runs of spaces collapsed); an ``OSError``
    that carries a path reads ``<path>: <what is wrong>; <the fix>``."""
    text = str(error)
    if isinstance(error, OSError) and error.filename is not None and text.startswith("[Errno"):
        what = _OS_FIXES.get(error.errno, (error.strerror or "").lower() or type(error).__name__)
        path = os.fspath(error.filename)
        if error.filename2 is not None:
            path = f"{path} -> {os.fspath(error.filename2)}"
        text = f"{path}: {what}"
    return " ".join(text.split()) or type(error).__name__


def run_command(prefix: str, run: Callable[[], int | None], *, debug: bool = False,
                user_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Call ``run()`` and return its exit code (``None`` counts as 0). A user error (:data:`USER_ERRORS`
    or ``user_errors``) prints ``<prefix>: error: <one line>`` on stderr and returns 2, unless
    ``debug``, which re-raises it."""
    try:
        return int(run() or 0)
    except (*USER_ERRORS, *user_errors) as error:
        if debug:
            raise
        print(f"{prefix}: error: {error_line(error)}", file=sys.stderr)
        return 2


def check_output_dir(path: str | os.PathLike, option: str = "--out") -> None:
    """Refuse an output folder that exists as something other than a folder, before any work."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{option} {os.fspath(path)} is an existing file, not a folder; "
                         "give a new or existing folder")


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line, ``<prog>: error: <message> (see <prog>
    --help)``, with exit code 2; its sub-parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")
