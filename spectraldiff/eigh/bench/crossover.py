"""The crossover table a benchmark run measures: the backend ``auto`` should use per grid point."""

from __future__ import annotations

from ..dispatch import default_backend
from .spread import SAME, noise_verdict


#: A measured backend replaces the built-in default at a grid point only if faster by more than this.
CROSSOVER_MARGIN = 0.05


def crossover_table(results: list[dict], explicit: list[str], device_type: str) -> dict[tuple[str, int, int], str]:
    """Backend for ``auto`` per measured grid point.

    The fastest explicit backend (by its fastest call), except that the built-in default
    (:func:`default_backend`) is kept unless another backend beat it by more than
    :data:`CROSSOVER_MARGIN` *and* beyond the spread of the two (:func:`.spread.noise_verdict` on
    their medians and IQRs, when the rows carry them): a near-tie or a difference within noise
    measured on a busy machine should not flip the choice, and a margin of 5% keeps ``auto`` within
    5% of the best time measured at every grid point.
    """
    rows: dict[tuple[str, int, int], dict[str, dict]] = {}
    for row in results:
        if row["backend"] in explicit and row["status"] == "ok":
            rows.setdefault((row["dtype"], row["n"], row["batch"]), {})[row["backend"]] = row
    table = {}
    for (dtype, n, batch), measured in rows.items():
        fastest = min(measured, key=lambda name: measured[name]["seconds"])
        default = default_backend(device_type, n, batch)
        if default in measured and _keeps_default(measured[default], measured[fastest]):
            fastest = default
        table[(dtype, n, batch)] = fastest
    return table


def _keeps_default(default: dict, fastest: dict) -> bool:
    if default["seconds"] <= (1 + CROSSOVER_MARGIN) * fastest["seconds"]:
        return True
    spreads = [row.get(key) for row in (default, fastest) for key in ("median_seconds", "iqr_seconds")]
    return None not in spreads and noise_verdict(*spreads) == SAME
