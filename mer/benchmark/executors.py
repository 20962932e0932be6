"""Where a benchmark's trainings run: one after another in this process (``"local"``), or as tasks
on a Ray cluster (``"ray"``), started here or joined by address.

An executor runs *tasks*, each a call ``fn(*args)`` of a picklable function, and yields
``(index, outcome)`` as each finishes, in finishing order; the outcome is the call's return value or
a :class:`TaskFailure` holding the exception's traceback. A failure never stops the other tasks: the
caller collects them and reports them at the end (:class:`BenchmarkTaskError`). Every task runs with
the same number of torch threads (``threads``), because the sum a matrix product forms can depend on
how many threads split it: a local run and a Ray run give identical numbers when ``threads`` is equal
(Ray's default is its ``cpus_per_run``, 1; the local default leaves torch's setting as it is).

Ray is imported only by :class:`RayExecutor`; without it installed, asking for it raises
:class:`MissingExtraError` telling how to install it. The benchmark process keeps the folder lock and
writes ``results.json`` itself; tasks only return rows (see :func:`mer.benchmark.run_benchmark`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import os
import re
import traceback
from typing import Any, Callable, Iterator, Sequence

import torch

__all__ = [
    "EXECUTORS",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "TaskFailure",
    "BenchmarkTaskError",
    "MissingExtraError",
    "make_executor",
]

logger = logging.getLogger("mer.benchmark")

#: A task: the function and its positional arguments.
Task = tuple[Callable[..., Any], tuple]


@dataclasses.dataclass(frozen=True)
class TaskFailure:
    """A task that raised: what it was (``label``), the exception's one-line summary and the full
    traceback text (for a Ray task, the remote one)."""

    label: str
    error: str
    traceback: str


class BenchmarkTaskError(RuntimeError):
    """Some trainings of a benchmark failed; every other row was written. ``failures`` lists them."""

    def __init__(self, failures: Sequence[TaskFailure], rows_written: int):
        self.failures = list(failures)
        self.rows_written = rows_written
        names = "; ".join(f"{f.label}: {f.error}" for f in self.failures)
        super().__init__(f"{len(self.failures)} benchmark task{'s' if len(self.failures) > 1 else ''} "
                         f"failed ({names}); the other {rows_written} rows were written")

    def report(self) -> str:
        """Every failure with its traceback, for a log or a terminal."""
        parts = [f"--- {f.label} failed:\n{f.traceback.rstrip()}" for f in self.failures]
        return "\n".join(parts + [str(self)])


class MissingExtraError(ImportError, ValueError):
    """An optional dependency that the chosen option needs is not installed (a user error: the
    command line prints its one line)."""


def _with_threads(threads: int | None, fn: Callable[..., Any], *args) -> Any:
    """``fn(*args)`` with torch using ``threads`` intra-op threads (``None``: as set), restored after."""
    if threads is None:
        return fn(*args)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(previous)


def _positive(name: str, value, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < low):
        raise ValueError(f"executor option {name} must be a number >= {low}, got {value!r}")


class Executor:
    """Runs tasks; a context manager (entering may start a cluster, leaving stops what it started)."""

    name = ""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def share(self, value: Any) -> Any:
        """``value`` as tasks should receive it (Ray: stored once in the object store)."""
        return value

    def run(self, tasks: Sequence[Task], labels: Sequence[str]) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError


class LocalExecutor(Executor):
    """Every task in this process, in order.

    Parameters
    ----------
    threads : int, optional
        torch threads while a task runs (default: torch's current setting).
    """

    name = "local"

    def __init__(self, *, threads: int | None = None):
        _positive("threads", threads)
        self.threads = threads

    def run(self, tasks, labels):
        for i, (fn, args) in enumerate(tasks):
            try:
                outcome = _with_threads(self.threads, fn, *args)
            except Exception as error:  # noqa: BLE001 - reported with its traceback, the sweep goes on
                outcome = TaskFailure(labels[i], _summary(error), traceback.format_exc())
            yield i, outcome


class RayExecutor(Executor):
    """Every task a Ray task, with ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs reserved.

    Parameters
    ----------
    address : str, optional
        A running cluster to join (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``). Without it a
        local cluster of ``workers`` CPUs starts here and stops when the sweep ends. When this process
        has already called ``ray.init``, that session is used and left running.
    workers : int, optional
        CPUs of the local cluster (default: this machine's); at most ``workers / cpus_per_run``
        trainings run at once.
    gpus_per_run : float
        GPUs per training (fractions share a GPU); Ray sets ``CUDA_VISIBLE_DEVICES`` so that the
        run's ``device: cuda`` is the GPU it was given.
    cpus_per_run : float
        CPUs reserved per training (default 1).
    threads : int, optional
        torch threads per training (default ``cpus_per_run``, at least 1).
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None,
                 gpus_per_run: float = 0, cpus_per_run: float = 1, threads: int | None = None):
        _positive("workers", workers)
        _positive("gpus_per_run", gpus_per_run, allow_zero=True)
        _positive("cpus_per_run", cpus_per_run, allow_zero=True)
        _positive("threads", threads)
        if address is not None and workers is not None:
            raise ValueError("give either an address (join a cluster) or workers (start one here), "
                             "not both: a joined cluster's size is its own")
        self.address = address
        self.workers = workers
        self.gpus_per_run = gpus_per_run
        self.cpus_per_run = cpus_per_run
        self.threads = threads if threads is not None else max(1, int(cpus_per_run))
        self._ray = None
        self._started = False

    def __enter__(self):
        try:
            import ray
        except ImportError as error:
            raise MissingExtraError(
                'the ray executor needs Ray, which is not installed: pip install ".[ray]" '
                f"(or pip install ray) ({error})") from error
        self._ray = ray
        if not ray.is_initialized():
            if self.address is not None:
                ray.init(address=self.address, log_to_driver=True)
            else:
                ray.init(num_cpus=self.workers or os.cpu_count() or 1, include_dashboard=False)
            self._started = True
        logger.info("ray executor: cluster with %s", ray.cluster_resources())
        return self

    def __exit__(self, *exc):
        if self._started:
            self._ray.shutdown()
            self._started = False

    def share(self, value):
        return self._ray.put(value)

    def run(self, tasks, labels):
        ray = self._ray
        remote = ray.remote(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                            max_retries=0)(_with_threads)
        pending = {remote.remote(self.threads, fn, *args): i for i, (fn, args) in enumerate(tasks)}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(done[0])
                try:
                    outcome = ray.get(done[0])
                except ray.exceptions.RayTaskError as error:  # the task raised: keep its traceback
                    outcome = TaskFailure(labels[i], _summary(error.cause) if error.cause else
                                          type(error).__name__, _plain(str(error)))
                except ray.exceptions.RayError as error:  # the worker died, the node was lost ...
                    outcome = TaskFailure(labels[i], _summary(error), _plain(str(error)))
                yield i, outcome
        finally:
            for ref in pending:  # interrupted: do not leave trainings running on a joined cluster
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)


def _summary(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {_plain(str(error))}".split())


def _plain(text: str) -> str:
    """``text`` without terminal colour codes (Ray colours its remote tracebacks)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


#: Executor name → class.
EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "ray": RayExecutor}


def make_executor(name: str, options: dict | None = None) -> Executor:
    """The executor ``name`` with ``options`` (its keyword arguments); unknown names or options are
    refused with the valid ones."""
    if name not in EXECUTORS:
        raise ValueError(f"executor must be one of {sorted(EXECUTORS)}, got {name!r}")
    cls = EXECUTORS[name]
    options = dict(options or {})
    valid = [p for p in inspect.signature(cls).parameters]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for the "
                         f"{name} executor; valid: {', '.join(valid)}")
    return cls(**options)
