"""Restricted unpickling: read data and graph pickles without letting the file run code.

``pickle.load`` calls whatever functions the file names, so a crafted feature or graph file runs
arbitrary code on load. :func:`load_pickle` instead resolves every global the file names against an
allow-list of what the real formats hold, and refuses anything else with :class:`UnsafePickleError`
(naming the file and the refused ``module.name``) before any of it is called:

- ``allow="data"`` (MMSA / GCNet feature and label pickles): the builtin containers and scalars
  (``dict``, ``list``, ``tuple``, ``set``, ``frozenset``, ``str``, ``bytes``, ``bytearray``, ``int``,
  ``float``, ``complex``, ``bool``, ``slice``), ``collections.OrderedDict`` and
  ``collections.defaultdict``, ``_codecs.encode`` (how protocol 0–2 pickles written by Python 3 spell
  ``bytes``), and NumPy arrays, scalars and dtypes (``numpy.ndarray``, ``numpy.dtype`` and the
  reconstructors ``_reconstruct``, ``scalar``, ``_frombuffer`` under both the NumPy 1 ``numpy.core``
  and the NumPy 2 ``numpy._core`` spellings);
- ``allow="graphs"`` (lists of ``networkx`` graphs): all of the above, the four graph classes
  ``Graph``, ``DiGraph``, ``MultiGraph``, ``MultiDiGraph``, the cached view classes their pickles
  carry once ``G.nodes`` / ``G.edges`` / ``G.adj`` / ``G.degree`` were used (every ``*View`` class of
  ``networkx.classes.reportviews`` and ``networkx.classes.coreviews`` but the unpicklable
  ``*DataView``), ``networkx.classes.function.frozen`` (what a frozen graph's mutators are: it only
  raises), and ``copyreg._reconstructor`` with ``object`` (how protocol 0–1 pickles rebuild an
  instance).

Every allowed global only builds a value from the data handed to it; none opens files, imports
modules or evaluates text. Python 2 names (``__builtin__.set``, ``copy_reg._reconstructor``) are
mapped to their Python 3 names first, as ``pickle`` itself does.

``trust_pickle=True`` is the explicit opt-in to plain ``pickle.load`` for files that hold other
objects: it lets the file run any code, so use it only for files you made or fully trust.

Example::

    >>> import pickle, tempfile, os, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "features.pkl")
    >>> with open(path, "wb") as f:
    ...     pickle.dump({"train": {"audio": np.zeros((2, 3))}}, f)
    >>> load_pickle(path)["train"]["audio"].shape
    (2, 3)
"""

from __future__ import annotations

import _compat_pickle
import builtins
import collections
import copyreg
import os
import pickle
from typing import Any

__all__ = ["load_pickle", "load_weights_only", "allowed_globals", "UnsafePickleError", "CorruptPickleError",
           "ALLOW_LEVELS"]

#: Values of ``allow``: what a restricted load may rebuild.
ALLOW_LEVELS = ("data", "graphs")

_BUILTINS = ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float",
             "complex", "bool", "slice")
_NETWORKX_GRAPHS = {
    "networkx.classes.graph": "Graph",
    "networkx.classes.digraph": "DiGraph",
    "networkx.classes.multigraph": "MultiGraph",
    "networkx.classes.multidigraph": "MultiDiGraph",
}
_NETWORKX_VIEW_MODULES = ("networkx.classes.reportviews", "networkx.classes.coreviews")


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle names a global outside the allow-list; nothing from the file has been called.

    Also a ``ValueError``, so command-line tools report it as a user error in one line.
    """


class CorruptPickleError(pickle.UnpicklingError, ValueError):
    """A file is truncated, corrupt or not a pickle at all."""


def load_weights_only(path: str | os.PathLike, what: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, so a crafted file is
    refused, never run (the loader of ``mer`` checkpoints and of saved graph generators).

    Raises
    ------
    ValueError
        ``"<path>: not a <what> or unsafe to load: <reason>"`` for any file torch cannot read that way.
    """
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means: not a file we can trust
        reason = " ".join(str(err).split()) or type(err).__name__
        # torch's own text advises loading with weights_only=False, which would run the file's code:
        # keep only what it found.
        reason = reason.split("WeightsUnpickler error:", 1)[-1].strip()
        raise ValueError(f"{path}: not a {what} or unsafe to load: {reason}") from err


def load_pickle(path: str | os.PathLike, *, allow: str = "data", trust_pickle: bool = False,
                encoding: str = "ASCII") -> Any:
    """Unpickle ``path``, rebuilding only the globals that ``allow`` admits.

    Parameters
    ----------
    path : path
        The pickle file.
    allow : {"data", "graphs"}
        ``"data"``: builtin containers and scalars and NumPy arrays; ``"graphs"``: also networkx
        graphs. See :func:`allowed_globals` for the exact list.
    trust_pickle : bool
        ``True`` loads with plain ``pickle.load``, which **runs any code the file carries**: only for
        files you trust.
    encoding : str
        How to decode Python 2 ``str`` objects, as in ``pickle.load`` (``"latin1"`` for Python 2 pickles
        holding NumPy arrays).

    Returns
    -------
    object
        The unpickled value.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message names it).
    UnsafePickleError
        If the file names a global outside the allow-list (the message names the file, the global
        and the opt-in).
    CorruptPickleError
        If the file is truncated, corrupt or not a pickle (the message names the file).
    ValueError
        For an unknown ``allow``.
    """
    if allow not in ALLOW_LEVELS:
        raise ValueError(f"allow must be one of {list(ALLOW_LEVELS)}, got {allow!r}")
    with open(path, "rb") as handle:
        if trust_pickle:
            try:
                return pickle.load(handle, encoding=encoding)
            except (EOFError, pickle.UnpicklingError) as error:
                raise _corrupt(path, error) from error
        unpickler = _RestrictedUnpickler(handle, path, allow, encoding=encoding)
        try:
            return unpickler.load()
        except UnsafePickleError:
            raise
        except Exception as error:  # only allow-listed constructors ran: any failure is bad data
            raise _corrupt(path, error) from error


def allowed_globals(allow: str = "data") -> list[str]:
    """The ``module.name`` globals a restricted load with this ``allow`` accepts, sorted."""
    if allow not in ALLOW_LEVELS:
        raise ValueError(f"allow must be one of {list(ALLOW_LEVELS)}, got {allow!r}")
    return sorted(f"{module}.{name}" for module, name in _allowed(allow))


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, handle, path, allow: str, encoding: str):
        super().__init__(handle, encoding=encoding)
        self._path = path
        self._allow = allow
        self._globals = _allowed(allow)

    def find_class(self, module: str, name: str) -> Any:
        # pickle maps Python 2 names inside its own find_class, which this one replaces.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise _refused(self._path, self._allow, f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise _refused(self._path, self._allow, "a persistent id (external object reference)")


def _refused(path, allow: str, what: str) -> UnsafePickleError:
    kinds = {"data": "builtin containers, numbers, strings and NumPy arrays",
             "graphs": "builtin containers, numbers, strings, NumPy arrays and networkx graphs"}[allow]
    return UnsafePickleError(
        f"{os.fspath(path)}: refused to unpickle {what}: only {kinds} are loaded by default, because "
        "unpickling anything else can run code from the file. If you made this file or fully trust it, "
        "load it with trust_pickle=True (command line: --trust-pickle), which lets the file run any code."
    )


def _corrupt(path, error: BaseException) -> CorruptPickleError:
    detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    hint = ("; a Python 2 pickle may need encoding='latin1'"
            if isinstance(error, UnicodeDecodeError) else "")
    return CorruptPickleError(f"{os.fspath(path)}: not a readable pickle, the file is truncated or "
                              f"corrupt ({detail}){hint}")


_CACHE: dict[str, dict[tuple[str, str], Any]] = {}


def _allowed(allow: str) -> dict[tuple[str, str], Any]:
    """``(module, name) → object`` for ``allow``, built on first use (networkx is imported only then)."""
    if allow not in _CACHE:
        table = {("builtins", name): getattr(builtins, name) for name in _BUILTINS}
        table[("collections", "OrderedDict")] = collections.OrderedDict
        table[("collections", "defaultdict")] = collections.defaultdict
        table[("_codecs", "encode")] = _codecs_encode()
        table.update(_numpy_globals())
        if allow == "graphs":
            table.update(_networkx_globals())
            table[("copyreg", "_reconstructor")] = copyreg._reconstructor
            table[("builtins", "object")] = object
        _CACHE[allow] = table
    return _CACHE[allow]


def _codecs_encode():
    import _codecs

    return _codecs.encode


def _numpy_globals() -> dict[tuple[str, str], Any]:
    import numpy as np

    # Taken from NumPy's own reducers, so neither spelling needs importing (NumPy 2 warns on numpy.core).
    array = np.zeros(1)
    found = {
        ("multiarray", "_reconstruct"): array.__reduce__()[0],
        ("multiarray", "scalar"): np.float64(0).__reduce__()[0],
        ("numeric", "_frombuffer"): array.__reduce_ex__(5)[0],
    }
    table = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        for (module, name), obj in found.items():
            table[(f"{package}.{module}", name)] = obj
    return table


def _networkx_globals() -> dict[tuple[str, str], Any]:
    import importlib

    table = {}
    for module, name in _NETWORKX_GRAPHS.items():
        table[(module, name)] = getattr(importlib.import_module(module), name)
    for module in _NETWORKX_VIEW_MODULES:
        for name, obj in vars(importlib.import_module(module)).items():
            # The *DataView classes hold a lambda and never occur in a pickle.
            if (isinstance(obj, type) and obj.__module__ == module and name.endswith("View")
                    and not name.endswith("DataView")):
                table[(module, name)] = obj
    # nx.freeze(G) stores this function in place of the mutators; it only raises, and a pickle of a
    # frozen graph names it.
    table[("networkx.classes.function", "frozen")] = importlib.import_module("networkx.classes.function").frozen
    return table
