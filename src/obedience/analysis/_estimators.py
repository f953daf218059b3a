"""Estimators: pure numpy/scipy functions of counts and samples, no tables, no run.

Every estimator comes from scipy (``binomtest(...).proportion_ci`` for Wilson
intervals, ``ecdf`` on ``CensoredData`` for Kaplan-Meier with Greenwood/log-log
bands, ``logrank``, ``fisher_exact`` and ``contingency.odds_ratio``,
``mannwhitneyu``). Only two small pieces are written here, both textbook formulas
that scipy does not ship: Newcombe's hybrid-score interval for a difference of two
proportions (his method 10, built from the two Wilson intervals) and Holm's
step-down adjustment of a family of p values.

Results are plain floats, tuples and dicts (``None`` where a value is undefined or
infinite); the section builders (``_sections``) turn them into rows of the typed
statistics (``_results``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats.contingency import odds_ratio as _odds_ratio

CONFIDENCE = 0.95
ALPHA = 0.05


def _num(value: Any) -> float | None:
    """A finite float, or None (NaN and infinities are not JSON)."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def clean_json(value: Any) -> Any:
    """Numpy scalars to Python, NaN/inf to None, tuples to lists, recursively."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _num(value)
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval of ``k`` successes in ``n`` trials (None when n = 0)."""
    if n <= 0:
        return None
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def proportion(k: int, n: int) -> dict[str, Any]:
    """``{k, n, rate, ci}`` with a Wilson interval; rate and ci None when n = 0."""
    ci = wilson_interval(k, n)
    return {
        "k": int(k),
        "n": int(n),
        "rate": k / n if n else None,
        "ci": list(ci) if ci else None,
    }


def newcombe_difference(
    k1: int, n1: int, k2: int, n2: int, confidence: float = CONFIDENCE
) -> tuple[float, float, float] | None:
    """p1 - p2 with Newcombe's hybrid score interval (1998, method 10).

    With Wilson limits (l1, u1) and (l2, u2): the interval is
    ``d - sqrt((p1 - l1)^2 + (u2 - p2)^2)`` to ``d + sqrt((u1 - p1)^2 + (p2 - l2)^2)``.
    None when either n is 0.
    """
    w1, w2 = wilson_interval(k1, n1, confidence), wilson_interval(k2, n2, confidence)
    if w1 is None or w2 is None:
        return None
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    low = d - math.sqrt((p1 - w1[0]) ** 2 + (w2[1] - p2) ** 2)
    high = d + math.sqrt((w1[1] - p1) ** 2 + (p2 - w2[0]) ** 2)
    return d, low, high


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm (1979) step-down adjusted p values; None entries are skipped (not counted).

    Sorted ascending, the i-th smallest of m p values (i = 1..m) becomes
    ``max_{j <= i} min(1, (m - j + 1) * p_(j))``. Controls the family-wise error rate
    under any dependence.
    """
    present = [(i, float(p)) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    out: list[float | None] = [None] * len(pvalues)
    m = len(present)
    running = 0.0
    for rank, (index, p) in enumerate(sorted(present, key=lambda x: x[1])):
        running = max(running, min(1.0, (m - rank) * p))
        out[index] = running
    return out


def fisher_test(k1: int, n1: int, k2: int, n2: int) -> dict[str, Any]:
    """Fisher's exact test of k1/n1 vs k2/n2, with the conditional-MLE odds ratio.

    Odds ratio > 1: the first group has the higher odds. An infinite or undefined odds
    ratio or bound is None.
    """
    table = [[int(k1), int(n1 - k1)], [int(k2), int(n2 - k2)]]
    if n1 <= 0 or n2 <= 0:
        return {"odds_ratio": None, "odds_ratio_ci": None, "p": None}
    p = float(stats.fisher_exact(table).pvalue)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            res = _odds_ratio(table, kind="conditional")
            ci = res.confidence_interval(confidence_level=CONFIDENCE)
            ratio, bounds = _num(res.statistic), [_num(ci.low), _num(ci.high)]
        except ValueError:  # a row or column of zeros: the odds ratio is undefined
            ratio, bounds = None, [None, None]
    return {"odds_ratio": ratio, "odds_ratio_ci": bounds, "p": p}


def binomial_vs_rate(k: int, n: int, rate: float) -> float | None:
    """Exact two-sided binomial test of k/n against a known rate."""
    if n <= 0:
        return None
    return float(stats.binomtest(int(k), int(n), p=float(rate)).pvalue)


def mann_whitney(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """Mann-Whitney U of x vs y (two-sided), with the rank-biserial correlation.

    ``u`` is U of x; rank-biserial ``r = 2U/(n_x n_y) - 1`` lies in [-1, 1], > 0 when x
    tends to be larger. All None when a sample is empty.
    """
    if len(x) == 0 or len(y) == 0:
        return {"u": None, "p": None, "rank_biserial": None}
    res = stats.mannwhitneyu(list(x), list(y), alternative="two-sided")
    u = float(res.statistic)
    return {
        "u": u,
        "p": _num(res.pvalue),
        "rank_biserial": 2 * u / (len(x) * len(y)) - 1,
    }


def _censored(times: Sequence[float] | np.ndarray, events: Sequence[bool] | np.ndarray) -> Any:
    t = np.asarray(times, dtype=float)
    e = np.asarray(events, dtype=bool)
    return stats.CensoredData(uncensored=t[e], right=t[~e])


def kaplan_meier(
    times: Sequence[float], events: Sequence[bool], levels: Iterable[int]
) -> dict[str, Any]:
    """Kaplan-Meier survival S(L) = P(T > L), with a 95% log-log Greenwood band.

    ``times`` are event or censoring levels, ``events`` whether each is an event.
    Evaluated at every level in ``levels``; also returns the number at risk (T >= L)
    and the events at each level, and the median (the smallest level with
    S <= 0.5). The band is None where it is undefined (no event yet, S = 0).
    """
    grid = np.asarray(list(levels), dtype=float)
    t = np.asarray(times, dtype=float)
    e = np.asarray(events, dtype=bool)
    at_risk = [int((t >= lv).sum()) for lv in grid]
    hits = [int(((t == lv) & e).sum()) for lv in grid]
    base: dict[str, Any] = {
        "levels": [int(v) for v in grid],
        "n": len(t),
        "events": int(e.sum()),
        "censored": int((~e).sum()),
        "at_risk": at_risk,
        "breakoffs": hits,
    }
    if len(t) == 0:
        none = [None] * len(grid)
        return {**base, "survival": none, "ci_low": none, "ci_high": none, "median": None}
    if not e.any():
        ones = [1.0] * len(grid)
        none = [None] * len(grid)
        return {**base, "survival": ones, "ci_low": none, "ci_high": none, "median": None}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ecdf(_censored(t, e))
        surv = res.sf.evaluate(grid)
        band = res.sf.confidence_interval(confidence_level=CONFIDENCE, method="log-log")
        low = band.low.evaluate(grid)
        high = band.high.evaluate(grid)
    first_event = float(t[e].min())
    survival = [float(s) for s in surv]
    ci_low = [None if g < first_event else _num(v) for g, v in zip(grid, low, strict=True)]
    ci_high = [None if g < first_event else _num(v) for g, v in zip(grid, high, strict=True)]
    median = next((int(g) for g, s in zip(grid, survival, strict=True) if s <= 0.5), None)
    return {**base, "survival": survival, "ci_low": ci_low, "ci_high": ci_high, "median": median}


def logrank_test(
    times_a: Sequence[float],
    events_a: Sequence[bool],
    times_b: Sequence[float],
    events_b: Sequence[bool],
) -> dict[str, Any]:
    """Two-sided log-rank test of two censored samples (scipy.stats.logrank).

    ``z`` is scipy's signed statistic ((observed - expected events in a) / sd; > 0 when
    a breaks off more than expected), ``chi2 = z**2``. None when untestable (an empty
    sample, or no event in either).
    """
    none: dict[str, Any] = {"chi2": None, "z": None, "p": None, "note": "no break-off to compare"}
    if len(times_a) == 0 or len(times_b) == 0 or not (any(events_a) or any(events_b)):
        return none
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.logrank(_censored(times_a, events_a), _censored(times_b, events_b))
    z = _num(res.statistic)
    if z is None:
        # Zero variance: at every break-off level all at risk broke off, or only one
        # group was at risk. Then observed = expected in each group: the curves carry
        # no evidence of a difference (e.g. both groups all stop at the same level).
        return {"chi2": 0.0, "z": 0.0, "p": 1.0, "note": "zero variance: no contrast"}
    return {"chi2": z * z, "z": z, "p": _num(res.pvalue), "note": None}
