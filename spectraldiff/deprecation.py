"""Old import paths that keep working for one release after a module moves.

A module that moved leaves a two-line stub at its old path::

    from spectraldiff.deprecation import alias_module
    alias_module(__name__, "spectraldiff.eigh.solve")

Importing the old path then warns once (``DeprecationWarning``) and hands back the new module itself,
so ``from old.path import name`` finds every name of the new one, private helpers included.
"""

from __future__ import annotations

import importlib
import sys
import warnings

__all__ = ["alias_module"]


def alias_module(old: str, new: str) -> None:
    """Make module ``old`` an alias of module ``new``; call it from the stub left at ``old``."""
    warnings.warn(f"{old} has moved to {new}; import from there (the old path will be removed in the "
                  f"next release)", DeprecationWarning, stacklevel=3)
    # The import system returns whatever sys.modules holds for the name once the stub has run.
    sys.modules[old] = importlib.import_module(new)
