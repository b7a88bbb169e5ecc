"""Summary statistics of repeated samples: median, IQR, range, count."""

from __future__ import annotations

import statistics


def summarize(values: list[float]) -> dict[str, float | int | None]:
    """median / iqr / min / max / n of ``values`` (None where undefined)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "iqr": None, "min": None, "max": None, "n": 0}
    if len(values) >= 2:
        # "inclusive" interpolates between order statistics, like numpy's default percentile.
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        iqr = q3 - q1
    else:
        iqr = 0.0
    return {"median": statistics.median(values), "iqr": iqr, "min": min(values), "max": max(values), "n": len(values)}
