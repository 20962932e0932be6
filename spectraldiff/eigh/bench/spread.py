"""The spread of a timed cell, and the rule that says whether two cells differ beyond it.

A cell (one backend at one grid point) is timed ``R`` times; its spread is summarised by the
interquartile range and the standard deviation of those ``R`` times (:func:`spread`). Two cells
differ only when their medians differ by more than the larger of their two IQRs
(:func:`noise_verdict`): then neither median lies within the other cell's middle half, give or take,
and the difference is not what the repeats of one run already show as noise.
"""

from __future__ import annotations

import statistics

#: What :func:`noise_verdict` returns.
SAME, FASTER, SLOWER = "same", "faster", "slower"

#: The rule of :func:`noise_verdict` in words, printed with every report.
NOISE_RULE = "two cells differ only if |median_a − median_b| > max(IQR_a, IQR_b), else they are the same within noise"


def spread(samples: list[float]) -> dict[str, float]:
    """Summary of ``samples`` (seconds, at least one): min, median, quartiles, IQR, mean, std.

    Quartiles are ``statistics.quantiles(method="inclusive")`` (linear interpolation between order
    statistics, as ``numpy.percentile``'s default), so ``min ≤ q1 ≤ median ≤ q3``; the standard
    deviation is the sample one (``n − 1``). A single sample has IQR and std 0.
    """
    if not samples:
        raise ValueError("spread needs at least one sample")
    if len(samples) > 1:
        q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
        std = statistics.stdev(samples)
    else:
        q1 = q3 = samples[0]
        std = 0.0
    return {
        "seconds": min(samples),
        "median_seconds": statistics.median(samples),
        "q1_seconds": q1,
        "q3_seconds": q3,
        "iqr_seconds": q3 - q1,
        "mean_seconds": statistics.fmean(samples),
        "std_seconds": std,
    }


def noise_verdict(median: float, iqr: float, reference_median: float, reference_iqr: float) -> str:
    """Whether a cell is ``"faster"``, ``"slower"`` or the ``"same"`` (within noise) as a reference.

    Rule: the difference counts only if ``|median − reference_median| > max(iqr, reference_iqr)``;
    then the cell is ``"faster"`` when its median is lower, ``"slower"`` when higher. Otherwise it is
    ``"same"``. The larger IQR is used so that the noisier of the two runs sets the bar.
    """
    if min(iqr, reference_iqr) < 0:
        raise ValueError(f"an IQR cannot be negative, got {iqr} and {reference_iqr}")
    difference = median - reference_median
    if abs(difference) <= max(iqr, reference_iqr):
        return SAME
    return FASTER if difference < 0 else SLOWER


def describe_ratio(ratio: float, verdict: str) -> str:
    """``"≈ (1.03×, same within noise)"``, ``"1.22× (slower)"``: a median ratio with its verdict."""
    if verdict == SAME:
        return f"≈ ({ratio:.2f}×, same within noise)"
    return f"{ratio:.2f}× ({verdict})"
