"""One registry class for every interchangeable part chosen by name, in both packages.

SDEs, predictors, correctors, eigendecomposition backends, generation models, graph families,
recoverers and datasets are each a :class:`Registry`. A config or a command line names an entry;
code that adds one registers it, by call or as a decorator.

>>> shapes = Registry("shape")
>>> @shapes.register("square")
... def square(side):
...     return side * side
>>> shapes.get("square")(3)
9
>>> shapes.get("circle")
Traceback (most recent call last):
...
KeyError: "unknown shape 'circle'; choose one of ['square']"
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """An unknown registry name. A ``KeyError`` (a lookup) and a ``ValueError`` (a bad setting), so
    callers written against either of the old per-kind registries keep catching it."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class Registry(Generic[T]):
    """Names → objects (classes, factories, functions) of one kind.

    Parameters
    ----------
    kind : str
        What the entries are ("SDE", "recoverer"); used in error messages.
    reserved : iterable of str
        Names that may never be registered (e.g. ``"auto"`` for eigh backends, which is a choice
        rule, not a backend).
    loader : callable, optional
        Called once before the first lookup, to import modules whose entries register themselves
        (so a base module never imports its subclasses at import time).

    A duplicate name is an error; an unknown name's error lists the valid ones.
    """

    def __init__(self, kind: str, *, reserved: tuple[str, ...] = (),
                 loader: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._reserved = frozenset(reserved)
        self._loader = loader

    def register(self, name: str, entry: T | None = None):
        """Register ``entry`` under ``name``; without ``entry``, return a decorator that does."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")

        def add(obj: T) -> T:
            if name in self._entries or name in self._reserved:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return add if entry is None else add(entry)

    def get(self, name: str) -> T:
        """The entry registered as ``name``; an unknown name raises, listing the valid ones."""
        self._load()
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; choose one of {self.names()}")
        return self._entries[name]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            loader()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"
