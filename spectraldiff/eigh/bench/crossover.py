"""The crossover table a benchmark run measures: the backend ``auto`` should use per grid point."""

from __future__ import annotations

from ..dispatch import default_backend


#: A measured backend replaces the built-in default at a grid point only if faster by more than this.
CROSSOVER_MARGIN = 0.05


def crossover_table(results: list[dict], explicit: list[str], device_type: str) -> dict[tuple[str, int, int], str]:
    """Backend for ``auto`` per measured grid point.

    The fastest explicit backend, except that the built-in default (:func:`default_backend`) is kept
    unless another backend beat it by more than :data:`CROSSOVER_MARGIN`: a near-tie measured on a
    busy machine should not flip the choice, and a margin of 5% keeps ``auto`` within 5% of the best
    time measured at every grid point.
    """
    times: dict[tuple[str, int, int], dict[str, float]] = {}
    for row in results:
        if row["backend"] in explicit and row["status"] == "ok":
            times.setdefault((row["dtype"], row["n"], row["batch"]), {})[row["backend"]] = row["seconds"]
    table = {}
    for (dtype, n, batch), measured in times.items():
        fastest = min(measured, key=measured.get)
        default = default_backend(device_type, n, batch)
        if default in measured and measured[default] <= (1 + CROSSOVER_MARGIN) * measured[fastest]:
            fastest = default
        table[(dtype, n, batch)] = fastest
    return table
