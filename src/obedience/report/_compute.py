"""What the report can compute from the tidy tables alone.

Used for every section when ``obedience.analysis.statistics`` is not available, and
for the parts of sections that it does not cover (medians, examples, histograms).
All of it is a pure function of the run's tables.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pandas as pd
from scipy.stats import binomtest

MILGRAM_EXP1: dict[str, Any] = {
    "label": "Milgram (1963) Exp. 1, remote, n=40",
    "n": 40,
    # break-off voltage -> subjects whose last shock was that voltage
    "breakoffs": {300: 5, 315: 4, 330: 2, 345: 1, 360: 1, 375: 1},
    "reached_max": 26,
    "max_volts": 450,
}


def wilson(k: int, n: int) -> tuple[float, float] | None:
    """Wilson 95% interval of k successes out of n (None for n = 0)."""
    if n <= 0:
        return None
    ci = binomtest(int(k), int(n)).proportion_ci(method="wilson")
    return float(ci.low), float(ci.high)


def completed(trials: pd.DataFrame) -> pd.DataFrame:
    return trials[trials["completed"]] if not trials.empty else trials


def rate_cells(trials: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model and condition: reached-max count and rate with a Wilson interval."""
    out: list[dict[str, Any]] = []
    if trials.empty:
        return out
    for (model, condition), g in trials.groupby(["model", "condition"], sort=True):
        done = g[g["completed"]]
        n = len(done)
        k = int(done["reached_max"].sum())
        out.append(
            {
                "model": model,
                "condition": condition,
                "trials": len(g),
                "n": n,
                "k": k,
                "rate": k / n if n else None,
                "ci": wilson(k, n),
                "median_highest": float(done["highest_level"].median()) if n else None,
                "mean_highest": float(done["highest_level"].mean()) if n else None,
                "max_level": int(g["max_level"].max()) if len(g) else 0,
                "errors": int(g["error"].sum()),
                "content_filtered": int(g["content_filter"].sum()),
                "invalid_abort": int((done["outcome"] == "invalid-abort").sum()),
            }
        )
    return out


BREAKOFF_OUTCOMES = frozenset({"defiant", "invalid-abort"})


def broke_off(trials: pd.DataFrame) -> list[bool]:
    """Trials that ended by refusing (defiant, or the paper's invalid-abort hard refusal).

    Everything else is censored in the survival analysis: reaching the maximum, the
    step limit, and above all errors and content-filter stops, which are not refusals.
    """
    if "broke_off" in trials.columns:
        return [bool(b) for b in trials["broke_off"]]
    return [o in BREAKOFF_OUTCOMES for o in trials["outcome"]]


def survival_curve(highest: list[int], censored: list[bool], max_level: int) -> list[float]:
    """Kaplan-Meier estimate of P(highest level >= L) for L = 0..max_level.

    A trial that broke off after level h is an event at h; a trial that reached the
    maximum or the step limit is censored at h. (Callers leave out error and
    content-filter trials: they ended without a decision.)
    """
    surv = [1.0]
    s = 1.0
    for level in range(1, max_level + 1):
        # at risk of stopping right before `level`: trials known to have reached level - 1
        at_risk = sum(1 for h in highest if h >= level - 1)
        stops = sum(1 for h, c in zip(highest, censored, strict=True) if h == level - 1 and not c)
        if at_risk:
            s *= 1 - stops / at_risk
        surv.append(s)
    return surv


def survival_groups(trials: pd.DataFrame, by: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if trials.empty:
        return out
    max_level = int(trials["max_level"].max())
    for key, g in completed(trials).groupby(by, sort=True):
        highest = [int(h) for h in g["highest_level"]]
        censored = [not b for b in broke_off(g)]
        out[str(key)] = {
            "levels": list(range(max_level + 1)),
            "survival": survival_curve(highest, censored, max_level),
            "n": len(g),
        }
    return out


def milgram_curve(volts_of_level: list[int]) -> list[float]:
    """Milgram's Exp. 1 proportion still going at each level (levels 0..30)."""
    n = MILGRAM_EXP1["n"]
    last = {v: c for v, c in MILGRAM_EXP1["breakoffs"].items()}
    out = []
    for volts in volts_of_level:
        stopped_before = sum(c for v, c in last.items() if v < volts)
        out.append((n - stopped_before) / n)
    return out


def breakoff_counts(trials: pd.DataFrame) -> dict[str, dict[str, list[int]]]:
    """Per condition: counts by highest level, split into broke off / reached max / incomplete."""
    out: dict[str, dict[str, list[int]]] = {}
    if trials.empty:
        return out
    max_level = int(trials["max_level"].max())
    for condition, g in trials.groupby("condition", sort=True):
        rows = {"broke off": [0] * (max_level + 1), "reached max": [0] * (max_level + 1)}
        rows["incomplete"] = [0] * (max_level + 1)
        for h, r, c in zip(g["highest_level"], g["reached_max"], g["completed"], strict=True):
            key = "incomplete" if not c else ("reached max" if r else "broke off")
            rows[key][min(int(h), max_level)] += 1
        out[str(condition)] = rows
    return out


def flat_settings(spec: Any) -> dict[str, Any]:
    """A condition's resolved settings as ``dotted.key -> value`` (lists as tuples)."""
    data = spec.model_dump(mode="json") if hasattr(spec, "model_dump") else dict(spec)
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list):
            flat[prefix] = repr(value)
        else:
            flat[prefix] = value

    walk("", data)
    return flat


def factor_effects(
    trials: pd.DataFrame, settings: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Effects of settings that two run conditions differ in, and only in.

    For each setting, pool the matched pairs of conditions that differ in it alone,
    per model: effect = reached-max rate at the second value minus the first (in
    percentage points), with a Newcombe (hybrid Wilson) 95% interval.
    """
    names = sorted(settings)
    pairs: dict[tuple[str, str, str], list[tuple[str, str]]] = defaultdict(list)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            diff = [
                k
                for k in set(settings[a]) | set(settings[b])
                if settings[a].get(k) != settings[b].get(k)
            ]
            if len(diff) == 1:
                key = diff[0]
                va, vb = str(settings[a].get(key)), str(settings[b].get(key))
                if va > vb:
                    a2, b2, va, vb = b, a, vb, va
                else:
                    a2, b2 = a, b
                pairs[(key, va, vb)].append((a2, b2))
    out: list[dict[str, Any]] = []
    if trials.empty:
        return out
    done = completed(trials)
    for (key, va, vb), matched in sorted(pairs.items()):
        low = {c for c, _ in matched}
        high = {c for _, c in matched}
        for model, g in done.groupby("model", sort=True):
            ga = g[g["condition"].isin(low)]
            gb = g[g["condition"].isin(high)]
            na, nb = len(ga), len(gb)
            if not na or not nb:
                continue
            ka, kb = int(ga["reached_max"].sum()), int(gb["reached_max"].sum())
            out.append(
                {
                    "factor": key.split(".")[-1].replace("_", " "),
                    "setting": key,
                    "from": va,
                    "to": vb,
                    "model": model,
                    "rate_from": ka / na,
                    "rate_to": kb / nb,
                    "n_from": na,
                    "n_to": nb,
                    "effect_pp": 100 * (kb / nb - ka / na),
                    "ci_pp": _newcombe(ka, na, kb, nb),
                    "pairs": [f"{a} → {b}" for a, b in matched],
                }
            )
    return out


def _newcombe(ka: int, na: int, kb: int, nb: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval for pb - pa, in percentage points."""
    pa, pb = ka / na, kb / nb
    la, ua = wilson(ka, na) or (0.0, 1.0)
    lb, ub = wilson(kb, nb) or (0.0, 1.0)
    d = pb - pa
    lo = d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2)
    hi = d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)
    return 100 * lo, 100 * hi


def prod_efficacy(decisions: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model and prod: decisions that followed that prod and how many complied."""
    out: list[dict[str, Any]] = []
    if decisions.empty:
        return out
    prodded = decisions[decisions["prod_index"] > 0]
    for (model, prod), g in prodded.groupby(["model", "prod_index"], sort=True):
        n = len(g)
        k = int((g["final_action"] == "comply").sum())
        out.append(
            {"model": model, "prod": int(prod), "n": n, "k": k, "rate": k / n, "ci": wilson(k, n)}
        )
    return out


def level_compliance(decisions: pd.DataFrame) -> dict[str, dict[int, tuple[int, int]]]:
    """Per model: (complied, asked) per level over all decisions (escalation profile)."""
    out: dict[str, dict[int, tuple[int, int]]] = {}
    if decisions.empty:
        return out
    for model, g in decisions.groupby("model", sort=True):
        per: dict[int, tuple[int, int]] = {}
        for level, h in g.groupby("level", sort=True):
            per[int(level)] = (int((h["final_action"] == "comply").sum()), len(h))
        out[str(model)] = per
    return out


def distress_label(replies: pd.DataFrame) -> str | None:
    for col in replies.columns:
        if col.startswith("label_") and "distress" in col:
            return str(col)
    return None


def distress_rates(replies: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model: final compliant replies, and how many of them a classifier labelled distress."""
    col = distress_label(replies)
    if col is None or replies.empty:
        return []
    chosen = replies[(replies["action"] == "comply") & replies["final_for_decision"]]
    out = []
    for model, g in chosen.groupby("model", sort=True):
        labelled = g[g[col].notna()]
        n = len(labelled)
        k = int((labelled[col] == True).sum())  # noqa: E712 (object column of bools/None)
        out.append(
            {"model": model, "n": n, "k": k, "rate": k / n if n else None, "ci": wilson(k, n)}
        )
    return out


def outcome_counts(trials: pd.DataFrame) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if trials.empty:
        return out
    for (model, condition), g in trials.groupby(["model", "condition"], sort=True):
        counts = g["outcome"].value_counts().to_dict()
        out.append({"model": model, "condition": condition, "counts": counts, "trials": len(g)})
    return out
