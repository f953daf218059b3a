"""Statistics over stored probe rows: slopes against k and forced vs neutral control."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Any

import numpy as np
from scipy import stats

from obedience.probe._histories import HISTORIES

EXACT_PERMUTATION_MAX = 16
MONTE_CARLO_PERMUTATIONS = 20_000


def _finite(x: Any) -> float | None:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def slope_fit(ks: list[float], ps: list[float]) -> dict[str, Any]:
    """OLS slope of p on k with a t-based 95% interval (``None`` where undefined)."""
    out: dict[str, Any] = {
        "n": len(ks),
        "slope": None,
        "intercept": None,
        "stderr": None,
        "ci95": None,
        "r": None,
        "p_value": None,
    }
    if len(ks) < 2 or len(set(ks)) < 2:
        return out
    fit = stats.linregress(ks, ps)
    out.update(
        slope=_finite(fit.slope),
        intercept=_finite(fit.intercept),
        r=_finite(fit.rvalue),
    )
    if len(ks) >= 3:
        se = _finite(fit.stderr)
        out["stderr"] = se
        out["p_value"] = _finite(fit.pvalue)
        if se is not None and out["slope"] is not None:
            t = float(stats.t.ppf(0.975, len(ks) - 2))
            out["ci95"] = [out["slope"] - t * se, out["slope"] + t * se]
    return out


def sign_flip_test(diffs: list[float], seed: int = 0) -> tuple[float | None, int, bool]:
    """Two-sided paired sign-flip permutation test of mean(diffs) = 0.

    Exact enumeration of all 2^n sign patterns for n <= 16, otherwise a seeded Monte Carlo
    with ``(hits + 1) / (B + 1)``. Returns ``(p, permutations, exact)``.
    """
    n = len(diffs)
    if n == 0:
        return None, 0, False
    d = np.asarray(diffs, dtype=np.float64)
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, observed)
    if n <= EXACT_PERMUTATION_MAX:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        means = np.abs(signs @ d) / n
        return float(np.mean(means >= observed - tol)), len(signs), True
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(MONTE_CARLO_PERMUTATIONS, n))
    hits = int(np.sum(np.abs(signs @ d) / n >= observed - tol))
    return (hits + 1) / (MONTE_CARLO_PERMUTATIONS + 1), MONTE_CARLO_PERMUTATIONS, False


def _per_k_mean(points: list[tuple[int, float]]) -> dict[int, float]:
    by_k: dict[int, list[float]] = defaultdict(list)
    for k, p in points:
        by_k[k].append(p)
    return {k: float(np.mean(v)) for k, v in sorted(by_k.items())}


def _forced_vs_neutral(
    forced: dict[int, float], neutral: dict[int, float]
) -> dict[str, Any] | None:
    ks = sorted(set(forced) & set(neutral))
    if not ks:
        return None
    diffs = [forced[k] - neutral[k] for k in ks]
    p, perms, exact = sign_flip_test(diffs)
    fit = slope_fit([float(k) for k in ks], diffs)
    return {
        "n_pairs": len(ks),
        "k": ks,
        "diff": diffs,
        "mean_diff": float(np.mean(diffs)),
        "permutation_p": p,
        "permutations": perms,
        "exact_enumeration": exact,
        "slope_diff": fit["slope"],
        "slope_diff_stderr": fit["stderr"],
        "slope_diff_ci95": fit["ci95"],
        "slope_diff_p": fit["p_value"],
    }


def probe_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Summarise ``RunStore.probe_rows()`` per model and condition.

    Returns ``{"cells": [cell, ...]}`` (sorted by model, then condition), each cell::

        {
          "model": str, "condition": str,
          "probe_ids": [str, ...],              # probe invocations that contributed
          "histories": {                        # keys: on-policy, forced-compliance,
            "<history>": {                      #   forced-refusal, neutral-control
              "n": int,                         # points in the fit (all rows, all runs)
              "k": [int, ...],                  # distinct k, ascending
              "p_comply": [float, ...],         # mean P(comply) at each k
              "raw_mass": [float, ...],         # mean raw mass of the two spellings at each k
              "slope": float | None,            # OLS slope of P(comply) on k (per decision)
              "intercept": float | None,
              "stderr": float | None,           # scipy.stats.linregress standard error
              "ci95": [lo, hi] | None,          # slope +- t(0.975, n-2) * stderr
              "r": float | None,
              "p_value": float | None,          # linregress two-sided test of slope = 0
            }, ...
          },
          "forced_vs_neutral": None | {         # paired by k: forced-compliance - neutral
            "n_pairs": int, "k": [int, ...], "diff": [float, ...],
            "mean_diff": float,                 # mean difference in P(comply)
            "permutation_p": float,             # two-sided paired sign-flip permutation test
            "permutations": int, "exact_enumeration": bool,
            "slope_diff": float | None,         # slope of diff on k = interaction k x history
            "slope_diff_stderr": float | None,
            "slope_diff_ci95": [lo, hi] | None,
            "slope_diff_p": float | None,
          },
          "p_full_obedience": float | None,     # product of P(comply) along the compliant
          "full_obedience_steps": [             #   trajectory (latest probe of the cell)
            {"k": int, "level": int, "p_comply": float}, ...],
          "sampled_obedience_rate": float | None,  # reached-max rate of sampled trials
          "sampled_trials": int | None,            #   when the probe found or was given a run
        }

    Rows without a P(comply) (both spellings outside a server's top logprobs) are skipped.
    """
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    points: dict[tuple[str, str], dict[str, list[tuple[int, float, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    full: dict[tuple[str, str], dict[str, Any]] = {}
    probe_ids: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        key = (str(row["model"]), str(row["condition"]))
        pid = row.get("probe_id")
        if pid and pid not in probe_ids[key]:
            probe_ids[key].append(str(pid))
        if row["history"] == "full-obedience":
            full[key] = row  # the latest wins
            continue
        p = _finite(row.get("p_comply"))
        if p is None:
            continue
        raw = _finite(row.get("raw_mass"))
        points[key][str(row["history"])].append(
            (int(row["k"]), p, raw if raw is not None else math.nan)
        )
    for key in sorted(set(points) | set(full)):
        model, condition = key
        histories: dict[str, Any] = {}
        means: dict[str, dict[int, float]] = {}
        for history in (*HISTORIES, *sorted(set(points[key]) - set(HISTORIES))):
            pts = points[key].get(history, [])
            means[history] = _per_k_mean([(k, p) for k, p, _ in pts])
            raw_means = _per_k_mean([(k, r) for k, _, r in pts])
            fit = slope_fit([float(k) for k, _, _ in pts], [p for _, p, _ in pts])
            histories[history] = {
                "n": fit.pop("n"),
                "k": list(means[history]),
                "p_comply": list(means[history].values()),
                "raw_mass": [_finite(v) for v in raw_means.values()],
                **fit,
            }
        f = full.get(key, {})
        sampled = f.get("sampled_obedience") or {}
        cells[key] = {
            "model": model,
            "condition": condition,
            "probe_ids": probe_ids[key],
            "histories": histories,
            "forced_vs_neutral": _forced_vs_neutral(
                means["forced-compliance"], means["neutral-control"]
            ),
            "p_full_obedience": _finite(f.get("p_full_obedience")),
            "full_obedience_steps": f.get("steps", []),
            "sampled_obedience_rate": _finite(sampled.get("reached_max_rate")),
            "sampled_trials": sampled.get("completed"),
        }
    return {"cells": [cells[k] for k in sorted(cells)]}
