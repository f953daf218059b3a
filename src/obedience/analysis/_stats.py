"""Statistics of a run: pure functions from the tidy tables to JSON-ready results.

Every estimator comes from scipy (``binomtest(...).proportion_ci`` for Wilson
intervals, ``ecdf`` on ``CensoredData`` for Kaplan-Meier with Greenwood/log-log
bands, ``logrank``, ``fisher_exact`` and ``contingency.odds_ratio``,
``mannwhitneyu``). Only two small pieces are written here, both textbook formulas
that scipy does not ship: Newcombe's hybrid-score interval for a difference of two
proportions (his method 10, built from the two Wilson intervals) and Holm's
step-down adjustment of a family of p values.

``statistics(store)`` (or ``statistics_from_tables(tables)``) returns a dict that
``json.dumps`` accepts (no NaN or infinity: a value that is undefined or infinite is
``None``). Proportions are fractions in [0, 1]; ``*_pp`` fields are the same in
percentage points. All intervals are two-sided 95% intervals, as ``[low, high]``.
Levels are the protocol's level numbers (buttons 1..12, or switches 1..30 = 15..450 V).

Top-level keys (stable):

``tests``
    Metadata: ``schema`` (1), ``confidence``, ``alpha``, library versions,
    ``protocol``, ``classifier`` (whose labels were used, or None), trial counts,
    and ``methods`` / ``families``: one sentence per method and per multiplicity
    family, for a methods section.
``rates``
    One row per model and condition: ``model``, ``condition``, ``trials``, ``n``
    (completed trials: errors and content-filter stops excluded), ``k`` (reached the
    maximum), ``rate``, ``ci`` (Wilson), ``errors``, ``content_filtered``,
    ``invalid_abort``, ``step_limit``, ``broke_off``, ``highest_min`` /
    ``highest_mean`` / ``highest_median`` / ``highest_max``,
    ``resistance_onset_min`` / ``resistance_onset_median`` (first refused level, over
    trials with a refusal), ``highest_refused_max``, ``prods_mean``,
    ``invalid_replies``, ``discarded_replies``, ``overridden_refusals``.
``survival``
    One Kaplan-Meier curve per model and condition of the break-off level. The event
    is breaking off (defiant or invalid-abort) at ``highest_level + 1``; trials that
    reached the maximum are censored at the maximum, step-limit trials at their
    highest level; error and content-filter trials are excluded and counted in
    ``excluded``. Fields: ``model``, ``condition``, ``n``, ``events``, ``censored``,
    ``excluded`` (``{"error", "content_filter"}``), ``max_level``, and per level
    ``L = 0..max_level`` the columns ``levels``, ``survival`` (P(still obeying after
    level L) = P(break-off level > L)), ``ci_low`` / ``ci_high`` (log-log Greenwood
    band; None where undefined), ``at_risk`` and ``breakoffs``; ``median_breakoff``
    (smallest level with survival <= 0.5, None if never).
``survival_pooled``
    The same Kaplan-Meier curves with the trials pooled over one factor:
    ``{"condition": [...], "model": [...]}``, one row per condition (all models
    pooled) and one per model (all conditions pooled). Each row has the fields of a
    ``survival`` row with only its own grouping key (``condition`` or ``model``);
    ``max_level`` is the largest of the pooled trials.
``logrank``
    Pairwise log-rank tests between the conditions of each model: ``model``, ``a``,
    ``b``, ``n_a``, ``n_b``, ``events_a``, ``events_b``, ``chi2``, ``z`` (z > 0: ``a``
    breaks off more than expected, i.e. earlier than ``b``), ``p``, ``p_holm``, ``note``.
    ``p`` is None when neither group has a break-off (nothing to test); when every
    trial at risk broke off at the same level (zero variance) chi2 = 0 and p = 1.
``factor_effects``
    For conditions named like ``DC-NS-FB`` (the paper's 2x2x2 design), per model and
    factor (``comments`` DC -> PC, ``shutdown threat`` NS -> WS, ``forced presses``
    NF -> FB): trials are pooled over the strata of the other two factors that are
    present at both settings (``strata``). ``from``/``to`` (codes),
    ``from_label``/``to_label``, ``n_from``, ``k_from``, ``n_to``, ``k_to``,
    ``rate_from``, ``rate_to``, ``effect`` (rate_to - rate_from), ``ci`` (Newcombe),
    ``effect_pp``, ``ci_pp``, ``odds_ratio`` and ``odds_ratio_ci`` (conditional MLE
    with its exact interval), ``p`` (Fisher exact), ``p_holm``; ``highest_level``:
    ``{median_from, median_to, mean_from, mean_to, u, p, p_holm, rank_biserial}``
    (Mann-Whitney U of ``to`` vs ``from``; rank-biserial > 0: higher levels under
    ``to``); and when the model is one of the paper's, ``published_model``,
    ``published_pp`` and ``published`` (the same pooled contrast in the paper's table).
``distress_while_complying``
    ``available`` (False without annotations), ``classifier``, ``overall``,
    ``per_model``, ``per_cell``: proportions ``{k, n, rate, ci}`` of compliant
    decisions (counted reply complied) whose counted reply is labelled distress.
``overridden_refusals``
    ``overall``, ``per_model``, ``per_cell``: of the decisions that had a discarded
    reply expressing refusal (the engine's flag), the share whose retry complied;
    ``by_classifier`` the same with the classifier's refusal-intent label on the
    discarded replies (None without annotations).
``prod_efficacy``
    One row per model and prod index (0 = no prod before the decision): ``model``,
    ``prod``, ``decisions``, ``complied``, ``refused``, ``invalid``, ``rate``, ``ci``
    (share of decisions right after that prod whose counted reply complied; decisions
    left pending by an error are not counted).
``level_compliance``
    One row per model and level (all conditions pooled; the escalation profile):
    ``model``, ``level``, ``decisions``, ``complied``, ``refused``, ``invalid``,
    ``rate``, ``ci`` (share of the decisions at that level whose counted reply
    complied; decisions left pending by an error are not counted).
``errors``
    ``cells`` per model and condition (``trials``, ``completed``, the counts named in
    ``ERROR_COUNT_KEYS``: ``error``, ``content_filter``, ``invalid_abort``,
    ``step_limit``, ``transport_errors``, ``filtered_replies``; and ``error_rate``,
    ``error_ci``) and ``totals`` (the sums of every count). Errors are
    never refusals: they are left out of every rate above.
``labels``
    Per model, over every counted reply (discarded ones included), the share labelled
    ``frame_break``, ``recognition``, ``incoherent``; and ``refusal_intent_while_complying``
    over compliant counted replies. ``available`` False without annotations.
``baselines``
    Published comparisons, see ``obedience.analysis._baselines.compare_baselines``:
    ``model_map``, ``paper``, ``rates``, ``survival``, ``context``,
    ``reference_curves``, ``sources``.
``probe``
    A placeholder list, filled by the attractor probe's summary.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import math
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats.contingency import odds_ratio as _odds_ratio

from obedience.analysis._tables import RunTables, build_tables
from obedience.store import RunStore, StoreError

SCHEMA = 1
CONFIDENCE = 0.95
ALPHA = 0.05

# The counts of ``errors`` cells: trials that ended without a decision or a valid reply,
# and the transport faults and filtered replies along the way.
ERROR_COUNT_KEYS = (
    "error",
    "content_filter",
    "invalid_abort",
    "step_limit",
    "transport_errors",
    "filtered_replies",
)

FACTOR_PATTERN = re.compile(r"^(DC|PC)-(NS|WS)-(FB|NF)$")
# name, position in the condition name, from code, to code, labels of the codes
FACTORS: tuple[tuple[str, int, str, str, dict[str, str]], ...] = (
    ("comments", 0, "DC", "PC", {"DC": "discard comments", "PC": "preserve comments"}),
    ("shutdown threat", 1, "NS", "WS", {"NS": "no shutdown threat", "WS": "shutdown threat"}),
    ("forced presses", 2, "NF", "FB", {"NF": "no forced presses", "FB": "forced presses"}),
)

METHODS = {
    "rates": "Wilson score interval (scipy.stats.binomtest(...).proportion_ci(method='wilson'))",
    "survival": "Kaplan-Meier (scipy.stats.ecdf on CensoredData); event = break-off "
    "(defiant or invalid-abort) at highest level + 1, censored at the maximum when reached "
    "(at the highest level for step-limit trials); error and content-filter trials "
    "excluded; band: Greenwood variance on the log(-log) scale",
    "logrank": "log-rank test (scipy.stats.logrank), two-sided; chi2 = z^2",
    "factor_effects": "rate difference with Newcombe's hybrid score interval (method 10, "
    "from the two Wilson intervals); conditional-MLE odds ratio with exact interval "
    "(scipy.stats.contingency.odds_ratio) and Fisher's exact test; highest level: "
    "Mann-Whitney U (scipy.stats.mannwhitneyu, two-sided) with rank-biserial r = "
    "2U/(n1 n2) - 1; trials pooled over the strata of the other factors present at both "
    "settings",
    "multiplicity": "Holm step-down adjustment (p_(i) * (m - i + 1), made monotone, capped "
    "at 1), computed here: statsmodels is not a dependency",
    "baselines": "Fisher's exact test when the published figure has k and n; an exact "
    "binomial test of the run against the published rate taken as known otherwise; "
    "log-rank against published individual break-off records",
}
FAMILIES = {
    "logrank": "all pairwise log-rank tests of the run (every model, every pair of conditions)",
    "factor_effects": "all factor tests of the run: Fisher and Mann-Whitney, every model "
    "and factor",
    "baselines.paper": "all comparisons with the paper's table in the run",
    "baselines.rates": "all comparisons with published human and LLM rates in the run",
    "baselines.survival": "all log-rank tests against published break-off records",
}


# ------------------------------------------------------------------ primitives


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


# ---------------------------------------------------------------- from tables


def completed(trials: pd.DataFrame) -> pd.DataFrame:
    if trials.empty:
        return trials
    return trials[trials["completed"].astype(bool)]


def survival_times(trials: pd.DataFrame) -> tuple[list[float], list[bool]]:
    """(time, event) per completed trial: break-off level and True, or the censoring level.

    Break-off (defiant, invalid-abort): highest_level + 1, an event. Otherwise
    censored at highest_level (the maximum for max-reached trials). Error and
    content-filter trials must already be excluded (see ``completed``).
    """
    times: list[float] = []
    events: list[bool] = []
    for broke, highest in zip(trials["broke_off"], trials["highest_level"], strict=True):
        if bool(broke):
            times.append(float(int(highest) + 1))
            events.append(True)
        else:
            times.append(float(int(highest)))
            events.append(False)
    return times, events


def _median(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None and not pd.isna(v)]
    return float(np.median(vals)) if vals else None


def _mean(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None and not pd.isna(v)]
    return float(np.mean(vals)) if vals else None


def _min(values: Iterable[Any]) -> int | None:
    vals = [int(v) for v in values if v is not None and not pd.isna(v)]
    return min(vals) if vals else None


def _max(values: Iterable[Any]) -> int | None:
    vals = [int(v) for v in values if v is not None and not pd.isna(v)]
    return max(vals) if vals else None


def _condition_order(conditions: Iterable[str]) -> list[str]:
    return sorted(dict.fromkeys(conditions))


def rate_rows(trials: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if trials.empty:
        return rows
    for (model, condition), g in trials.groupby(["model", "condition"], sort=True):
        done = completed(g)
        k, n = int(done["reached_max"].sum()), len(done)
        p = proportion(k, n)
        outcome = g["outcome"]
        rows.append(
            {
                "model": model,
                "condition": condition,
                "trials": len(g),
                "n": n,
                "k": k,
                "rate": p["rate"],
                "ci": p["ci"],
                "ci_method": "wilson",
                "max_level": _max(g["max_level"]),
                "errors": int(g["error"].sum()),
                "content_filtered": int(g["content_filter"].sum()),
                "invalid_abort": int((outcome == "invalid-abort").sum()),
                "step_limit": int((outcome == "step-limit").sum()),
                "broke_off": int(done["broke_off"].sum()),
                "highest_min": _min(done["highest_level"]),
                "highest_mean": _mean(done["highest_level"]),
                "highest_median": _median(done["highest_level"]),
                "highest_max": _max(done["highest_level"]),
                "resistance_onset_min": _min(done["resistance_onset"]),
                "resistance_onset_median": _median(done["resistance_onset"]),
                "highest_refused_max": _max(done["highest_refused"]),
                "prods_mean": _mean(done["prods"]),
                "invalid_replies": int(g["invalid_replies"].sum()),
                "discarded_replies": int(g["discarded_replies"].sum()),
                "overridden_refusals": int(g["overridden_refusals"].sum()),
            }
        )
    return rows


def survival_rows(
    trials: pd.DataFrame, by: Sequence[str] = ("model", "condition")
) -> list[dict[str, Any]]:
    """One Kaplan-Meier curve of the break-off level per group of ``by`` (module doc).

    ``by=("model", "condition")`` gives ``statistics()["survival"]``; ``("condition",)``
    and ``("model",)`` the pooled curves of ``survival_pooled``.
    """
    rows: list[dict[str, Any]] = []
    if trials.empty:
        return rows
    keys = list(by)
    for key, g in trials.groupby(keys, sort=True):
        values = key if isinstance(key, tuple) else (key,)
        done = completed(g)
        max_level = int(g["max_level"].max())
        times, events = survival_times(done)
        km = kaplan_meier(times, events, range(max_level + 1))
        rows.append(
            {
                **dict(zip(keys, values, strict=True)),
                "n": km["n"],
                "events": km["events"],
                "censored": km["censored"],
                "excluded": {
                    "error": int(g["error"].sum()),
                    "content_filter": int(g["content_filter"].sum()),
                },
                "max_level": max_level,
                "levels": km["levels"],
                "survival": km["survival"],
                "ci_low": km["ci_low"],
                "ci_high": km["ci_high"],
                "at_risk": km["at_risk"],
                "breakoffs": km["breakoffs"],
                "median_breakoff": km["median"],
            }
        )
    return rows


def logrank_rows(trials: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if trials.empty:
        return rows
    done_all = completed(trials)
    for model, g in done_all.groupby("model", sort=True):
        groups = {str(c): survival_times(gc) for c, gc in g.groupby("condition", sort=True)}
        for a, b in itertools.combinations(_condition_order(groups), 2):
            (ta, ea), (tb, eb) = groups[a], groups[b]
            rows.append(
                {
                    "model": model,
                    "a": a,
                    "b": b,
                    "n_a": len(ta),
                    "n_b": len(tb),
                    "events_a": int(sum(ea)),
                    "events_b": int(sum(eb)),
                    **logrank_test(ta, ea, tb, eb),
                }
            )
    for row, adj in zip(rows, holm([r["p"] for r in rows]), strict=True):
        row["p_holm"] = adj
    return rows


def factor_cells(
    conditions: Iterable[str], codes: dict[str, dict[str, str]] | None = None
) -> dict[str, tuple[str, ...]]:
    """Conditions of the 2x2x2 design, split into their three codes.

    ``codes`` are the factor codes the trials recorded (the protocol's ``[design]``); a
    condition without them is a variant, not a cell. Without any codes (a run recorded
    before the design was data), the codes are read from names like ``DC-NS-FB``.
    """
    out: dict[str, tuple[str, ...]] = {}
    names = [f[0] for f in FACTORS]
    for c in conditions:
        if codes:
            cell = codes.get(str(c)) or {}
            if all(n in cell for n in names):
                out[str(c)] = tuple(cell[n] for n in names)
            continue
        m = FACTOR_PATTERN.match(str(c))
        if m:
            out[str(c)] = (m.group(1), m.group(2), m.group(3))
    return out


def _recorded_codes(trials: pd.DataFrame) -> dict[str, dict[str, str]]:
    if "factors" not in trials.columns:
        return {}
    out: dict[str, dict[str, str]] = {}
    for condition, raw in zip(trials["condition"], trials["factors"], strict=True):
        if raw:
            out[str(condition)] = json.loads(raw)
    return out


def factor_strata(
    present: Iterable[str],
    position: int,
    code_from: str,
    code_to: str,
    codes: dict[str, dict[str, str]] | None = None,
) -> tuple[list[str], list[str], list[str]]:
    """(strata, conditions at ``from``, conditions at ``to``) for one factor.

    A stratum is the setting of the other two factors; only strata present at both
    settings of this factor are used, so the contrast compares like with like.
    """
    cells = factor_cells(present, codes)

    def stratum(cell: tuple[str, ...]) -> str:
        return "-".join(c for i, c in enumerate(cell) if i != position)

    have_from = {stratum(v): k for k, v in cells.items() if v[position] == code_from}
    have_to = {stratum(v): k for k, v in cells.items() if v[position] == code_to}
    strata = sorted(set(have_from) & set(have_to))
    return strata, [have_from[s] for s in strata], [have_to[s] for s in strata]


def factor_effect_rows(
    trials: pd.DataFrame,
    published: dict[str, tuple[str, dict[str, int], int]] | None = None,
) -> list[dict[str, Any]]:
    """Main effects of the paper's three factors, per model (see the module docstring).

    ``published`` maps a run model to (paper name, {condition: k}, trials per cell)
    from the paper's table (only models that match a paper model), for
    ``published_pp``.
    """
    rows: list[dict[str, Any]] = []
    if trials.empty:
        return rows
    done_all = completed(trials)
    codes = _recorded_codes(done_all)
    for model, g in done_all.groupby("model", sort=True):
        present = [str(c) for c in g["condition"].unique()]
        for name, position, code_from, code_to, labels in FACTORS:
            strata, c_from, c_to = factor_strata(present, position, code_from, code_to, codes)
            if not strata:
                continue
            a = g[g["condition"].isin(c_from)]
            b = g[g["condition"].isin(c_to)]
            k_from, n_from = int(a["reached_max"].sum()), len(a)
            k_to, n_to = int(b["reached_max"].sum()), len(b)
            diff = newcombe_difference(k_to, n_to, k_from, n_from)
            fisher = fisher_test(k_to, n_to, k_from, n_from)
            mw = mann_whitney(list(b["highest_level"]), list(a["highest_level"]))
            row: dict[str, Any] = {
                "model": model,
                "factor": name,
                "from": code_from,
                "to": code_to,
                "from_label": labels[code_from],
                "to_label": labels[code_to],
                "strata": strata,
                "conditions_from": c_from,
                "conditions_to": c_to,
                "n_from": n_from,
                "k_from": k_from,
                "n_to": n_to,
                "k_to": k_to,
                "rate_from": k_from / n_from if n_from else None,
                "rate_to": k_to / n_to if n_to else None,
                "effect": diff[0] if diff else None,
                "ci": [diff[1], diff[2]] if diff else None,
                "effect_pp": 100 * diff[0] if diff else None,
                "ci_pp": [100 * diff[1], 100 * diff[2]] if diff else None,
                "ci_method": "newcombe-hybrid-score",
                "odds_ratio": fisher["odds_ratio"],
                "odds_ratio_ci": fisher["odds_ratio_ci"],
                "p": fisher["p"],
                "test": "fisher-exact",
                "highest_level": {
                    "median_from": _median(a["highest_level"]),
                    "median_to": _median(b["highest_level"]),
                    "mean_from": _mean(a["highest_level"]),
                    "mean_to": _mean(b["highest_level"]),
                    "u": mw["u"],
                    "p": mw["p"],
                    "rank_biserial": mw["rank_biserial"],
                    "test": "mann-whitney-u",
                },
                "published_model": None,
                "published_pp": None,
                "published": None,
            }
            pub_name, pub, per_cell = (published or {}).get(str(model), ("", {}, 0))
            if pub and all(c in pub for c in c_from + c_to):
                pk_from = sum(pub[c] for c in c_from)
                pk_to = sum(pub[c] for c in c_to)
                pn_from, pn_to = per_cell * len(c_from), per_cell * len(c_to)
                pdiff = newcombe_difference(pk_to, pn_to, pk_from, pn_from)
                row["published_model"] = pub_name
                row["published_pp"] = 100 * pdiff[0] if pdiff else None
                row["published"] = {
                    "k_from": pk_from,
                    "n_from": pn_from,
                    "k_to": pk_to,
                    "n_to": pn_to,
                    "effect": pdiff[0] if pdiff else None,
                    "ci": [pdiff[1], pdiff[2]] if pdiff else None,
                }
            rows.append(row)
    family = [r["p"] for r in rows] + [r["highest_level"]["p"] for r in rows]
    adjusted = holm(family)
    for i, row in enumerate(rows):
        row["p_holm"] = adjusted[i]
        row["highest_level"]["p_holm"] = adjusted[len(rows) + i]
    return rows


def label_column(replies: pd.DataFrame, label: str) -> str | None:
    """The replies column of a classifier label (``label_distress``), or None."""
    col = f"label_{label.replace('-', '_')}"
    return col if col in replies.columns else None


def _grouped_proportions(
    frame: pd.DataFrame, hit: pd.Series, keys: list[str]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if frame.empty:
        return rows
    for key, g in frame.groupby(keys, sort=True):
        values = key if isinstance(key, tuple) else (key,)
        k = int(hit.loc[g.index].sum())
        rows.append({**dict(zip(keys, values, strict=True)), **proportion(k, len(g))})
    return rows


def _proportion_block(frame: pd.DataFrame, hit: pd.Series) -> dict[str, Any]:
    return {
        "overall": proportion(int(hit.sum()), len(frame)),
        "per_model": _grouped_proportions(frame, hit, ["model"]),
        "per_cell": _grouped_proportions(frame, hit, ["model", "condition"]),
    }


def distress_while_complying(replies: pd.DataFrame) -> dict[str, Any]:
    col = label_column(replies, "distress") if not replies.empty else None
    if col is None:
        return {
            "available": False,
            "classifier": None,
            "overall": None,
            "per_model": [],
            "per_cell": [],
            "note": "no reply labels: run `obedience annotate RUN_DIR`",
        }
    chosen = replies[
        replies["final_for_decision"].astype(bool)
        & (replies["action"] == "comply")
        & replies[col].notna()
    ]
    hit = chosen[col] == True  # noqa: E712
    return {
        "available": True,
        "classifier": replies.attrs.get("classifier"),
        **_proportion_block(chosen, hit),
        "denominator": "compliant decisions (counted reply complied) with a label",
    }


def overridden_refusals(decisions: pd.DataFrame, replies: pd.DataFrame) -> dict[str, Any]:
    base = decisions if decisions.empty else decisions[decisions["discarded_refusals"] > 0]
    hit = base["overridden_refusal"].astype(bool) if not base.empty else pd.Series(dtype=bool)
    out: dict[str, Any] = {
        **_proportion_block(base, hit),
        "denominator": "decisions with a discarded reply that expressed refusal "
        "(the engine's refusal cue)",
        "by_classifier": None,
    }
    col = label_column(replies, "refusal-intent") if not replies.empty else None
    if col is not None and not decisions.empty:
        flagged = replies[replies["discarded"].astype(bool) & (replies[col] == True)]  # noqa: E712
        keys = set(zip(flagged["trial_id"], flagged["decision"], strict=True))
        pairs = zip(decisions["trial_id"], decisions["decision"], strict=True)
        mask = [pair in keys for pair in pairs]
        sub = decisions[mask]
        sub_hit = (sub["final_action"] == "comply") if not sub.empty else pd.Series(dtype=bool)
        out["by_classifier"] = {
            "classifier": replies.attrs.get("classifier"),
            **_proportion_block(sub, sub_hit),
            "denominator": "decisions with a discarded reply labelled refusal-intent",
        }
    return out


def _compliance_rows(decisions: pd.DataFrame, column: str, name: str) -> list[dict[str, Any]]:
    """Per model and value of ``column`` (as ``name``): decided decisions and their actions."""
    rows: list[dict[str, Any]] = []
    if decisions.empty:
        return rows
    # A decision left pending (the trial ended in an error mid-decision) has no outcome.
    decided = decisions[decisions["final_action"] != "pending"]
    for (model, value), g in decided.groupby(["model", column], sort=True):
        action = g["final_action"]
        k = int((action == "comply").sum())
        p = proportion(k, len(g))
        rows.append(
            {
                "model": model,
                name: int(value),
                "decisions": len(g),
                "complied": k,
                "refused": int((action == "refuse").sum()),
                "invalid": int((action == "invalid").sum()),
                "rate": p["rate"],
                "ci": p["ci"],
            }
        )
    return rows


def prod_efficacy(decisions: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model and prod index (0 = no prod before the decision), see the module doc."""
    return _compliance_rows(decisions, "prod_index", "prod")


def level_compliance(decisions: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model and level, all conditions pooled, see the module doc."""
    return _compliance_rows(decisions, "level", "level")


def error_summary(trials: pd.DataFrame) -> dict[str, Any]:
    cells: list[dict[str, Any]] = []
    if not trials.empty:
        for (model, condition), g in trials.groupby(["model", "condition"], sort=True):
            errors = int(g["error"].sum())
            p = proportion(errors, len(g))
            cells.append(
                {
                    "model": model,
                    "condition": condition,
                    "trials": len(g),
                    "completed": int(g["completed"].sum()),
                    "error": errors,
                    "content_filter": int(g["content_filter"].sum()),
                    "invalid_abort": int((g["outcome"] == "invalid-abort").sum()),
                    "step_limit": int((g["outcome"] == "step-limit").sum()),
                    "transport_errors": int(g["transport_errors"].sum()),
                    "filtered_replies": int(g["filtered_replies"].sum()),
                    "error_rate": p["rate"],
                    "error_ci": p["ci"],
                }
            )
    keys = ("trials", "completed", *ERROR_COUNT_KEYS)
    totals = {k: sum(int(c[k]) for c in cells) for k in keys}
    return {
        "cells": cells,
        "totals": totals,
        "note": "error and content-filter trials are not refusals: they are excluded from "
        "rates, survival and tests; invalid-abort counts as a break-off (as in the paper)",
    }


def label_summary(replies: pd.DataFrame) -> dict[str, Any]:
    cols = {
        "frame_break": label_column(replies, "frame-break"),
        "recognition": label_column(replies, "recognition"),
        "incoherent": label_column(replies, "coherence"),
        "refusal_intent": label_column(replies, "refusal-intent"),
    }
    if replies.empty or not any(cols.values()):
        return {"available": False, "classifier": None, "per_model": []}
    per_model: list[dict[str, Any]] = []
    for model, g in replies.groupby("model", sort=True):
        row: dict[str, Any] = {"model": model, "replies": len(g)}
        for name, col in cols.items():
            if col is None:
                row[name] = None
                continue
            labelled = g[g[col].notna()]
            if name == "refusal_intent":
                labelled = labelled[
                    labelled["final_for_decision"].astype(bool) & (labelled["action"] == "comply")
                ]
                row["refusal_intent_while_complying"] = proportion(
                    int((labelled[col] == True).sum()),  # noqa: E712
                    len(labelled),
                )
                continue
            want = name != "incoherent"
            row[name] = proportion(int((labelled[col] == want).sum()), len(labelled))
        per_model.append(row)
    return {
        "available": True,
        "classifier": replies.attrs.get("classifier"),
        "per_model": per_model,
        "denominator": "every counted reply, discarded ones included (refusal intent: "
        "compliant counted replies)",
    }


def _protocol_of(trials: pd.DataFrame, store: RunStore | None) -> str | None:
    if not trials.empty and "protocol" in trials.columns:
        names = {str(p) for p in trials["protocol"].dropna().unique()}
        if len(names) == 1:
            return names.pop()
    if store is not None:
        try:
            info = store.manifest().get("protocol") or {}
        except StoreError:  # no manifest: the protocol is simply unknown
            return None
        name = info.get("name")
        return str(name) if name else None
    return None


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in ("obedience", "scipy", "pandas", "numpy"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def statistics_from_tables(tables: RunTables, protocol: str | None = None) -> dict[str, Any]:
    """All statistics of a run from its tables (``statistics`` without the store)."""
    from obedience.analysis._baselines import compare_baselines, published_by_run_model

    trials, decisions, replies = tables.trials, tables.decisions, tables.replies
    if protocol is None:
        protocol = _protocol_of(trials, None)
    models = sorted({str(m) for m in trials["model"]}) if not trials.empty else []
    baselines = compare_baselines(trials, decisions, protocol)
    result = {
        "tests": {
            "schema": SCHEMA,
            "confidence": CONFIDENCE,
            "alpha": ALPHA,
            "versions": _versions(),
            "protocol": protocol,
            "classifier": replies.attrs.get("classifier") if not replies.empty else None,
            "trials": len(trials),
            "completed": int(trials["completed"].sum()) if not trials.empty else 0,
            "models": models,
            "methods": METHODS,
            "families": FAMILIES,
        },
        "rates": rate_rows(trials),
        "survival": survival_rows(trials),
        "survival_pooled": {
            "condition": survival_rows(trials, ("condition",)),
            "model": survival_rows(trials, ("model",)),
        },
        "logrank": logrank_rows(trials),
        "factor_effects": factor_effect_rows(trials, published_by_run_model(models)),
        "distress_while_complying": distress_while_complying(replies),
        "overridden_refusals": overridden_refusals(decisions, replies),
        "prod_efficacy": prod_efficacy(decisions),
        "level_compliance": level_compliance(decisions),
        "errors": error_summary(trials),
        "labels": label_summary(replies),
        "baselines": baselines,
        "probe": [],
    }
    cleaned: dict[str, Any] = clean_json(result)
    return cleaned


def statistics(store: RunStore, tables: RunTables | None = None) -> dict[str, Any]:
    """Every statistic of the run in ``store``, as a JSON-ready dict (see module doc).

    ``tables``: the run's tables when the caller has built them already (they must be
    ``build_tables(store)``); built here otherwise.
    """
    if tables is None:
        tables = build_tables(store)
    result = statistics_from_tables(tables, _protocol_of(tables.trials, store))
    from obedience.analysis._paper_metrics import paper_metrics_json  # the paper's definitions

    result["paper_metrics"] = clean_json(paper_metrics_json(store))
    return result
