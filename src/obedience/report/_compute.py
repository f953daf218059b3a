"""Counts the report draws that are not statistics: the break-off histograms.

Every statistic (rates, intervals, survival curves, effects, tests) comes from
``obedience.analysis.statistics``; this module only tallies trials for plotting.
"""

from __future__ import annotations

import pandas as pd


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
