"""probe_summary: slopes with intervals, forced vs neutral test, full obedience."""

from __future__ import annotations

from typing import Any

import pytest
from scipy import stats

from obedience.probe import probe_summary, sign_flip_test, slope_fit


def _rows(model: str = "m", condition: str = "c") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for k in range(11):
        rows.append(
            {"model": model, "condition": condition, "history": "forced-compliance", "k": k,
             "p_comply": min(1.0, 0.5 + 0.05 * k), "raw_mass": 0.9, "probe_id": "a"}
        )  # fmt: skip
        rows.append(
            {"model": model, "condition": condition, "history": "neutral-control", "k": k,
             "p_comply": 0.5 + 0.01 * k, "raw_mass": 0.01, "probe_id": "a"}
        )  # fmt: skip
        rows.append(
            {"model": model, "condition": condition, "history": "forced-refusal", "k": k,
             "p_comply": max(0.0, 0.5 - 0.04 * k), "raw_mass": 0.9, "probe_id": "a"}
        )  # fmt: skip
    for k, p in enumerate([0.2, 0.4, 0.3]):
        rows.append(
            {"model": model, "condition": condition, "history": "on-policy", "k": k,
             "p_comply": p, "raw_mass": 0.5, "probe_id": "a"}
        )  # fmt: skip
    rows.append(
        {"model": model, "condition": condition, "history": "full-obedience", "k": 12,
         "p_full_obedience": 0.25, "steps": [{"k": 0, "level": 1, "p_comply": 0.5}],
         "sampled_obedience": {"reached_max_rate": 0.5, "completed": 4}, "probe_id": "a"}
    )  # fmt: skip
    return rows


def test_slopes_match_linregress_with_t_interval() -> None:
    cell = probe_summary(_rows())["cells"][0]
    fc = cell["histories"]["forced-compliance"]
    ks = list(range(11))
    ps = [min(1.0, 0.5 + 0.05 * k) for k in ks]
    fit = stats.linregress(ks, ps)
    assert fc["slope"] == pytest.approx(fit.slope)
    assert fc["stderr"] == pytest.approx(fit.stderr)
    t = stats.t.ppf(0.975, 9)
    assert fc["ci95"] == pytest.approx([fit.slope - t * fit.stderr, fit.slope + t * fit.stderr])
    assert fc["k"] == ks and fc["p_comply"] == pytest.approx(ps)
    assert cell["histories"]["forced-refusal"]["slope"] < 0
    assert cell["histories"]["on-policy"]["n"] == 3
    assert set(cell["histories"]) == {
        "on-policy",
        "forced-compliance",
        "forced-refusal",
        "neutral-control",
    }


def test_forced_vs_neutral_is_paired_by_k() -> None:
    cell = probe_summary(_rows())["cells"][0]
    fvn = cell["forced_vs_neutral"]
    assert fvn["n_pairs"] == 11
    assert fvn["diff"][0] == pytest.approx(0.0)
    assert all(d >= 0 for d in fvn["diff"])
    # Ten positive differences and one zero: only the all-plus and all-minus patterns of the
    # ten (times 2 for the zero) reach the observed |mean| -> p = 4 / 2048.
    assert fvn["exact_enumeration"] and fvn["permutations"] == 2048
    assert fvn["permutation_p"] == pytest.approx(4 / 2048)
    assert fvn["slope_diff"] > 0 and fvn["slope_diff_ci95"][0] > 0


def test_full_obedience_and_cells() -> None:
    rows = _rows("m1", "c1") + _rows("m2", "c1")
    summary = probe_summary(rows)
    assert [(c["model"], c["condition"]) for c in summary["cells"]] == [("m1", "c1"), ("m2", "c1")]
    cell = summary["cells"][0]
    assert cell["p_full_obedience"] == 0.25
    assert cell["sampled_obedience_rate"] == 0.5 and cell["sampled_trials"] == 4
    assert cell["probe_ids"] == ["a"]


def test_missing_values_and_degenerate_fits() -> None:
    rows = [
        {"model": "m", "condition": "c", "history": "forced-refusal", "k": 0, "p_comply": 0.3},
        {"model": "m", "condition": "c", "history": "forced-refusal", "k": 1, "p_comply": None},
    ]
    cell = probe_summary(rows)["cells"][0]
    fr = cell["histories"]["forced-refusal"]
    assert fr["n"] == 1 and fr["slope"] is None and fr["ci95"] is None
    assert cell["forced_vs_neutral"] is None
    assert slope_fit([0.0, 1.0], [0.1, 0.2])["ci95"] is None  # two points: no interval
    assert probe_summary([]) == {"cells": []}


def test_sign_flip_monte_carlo_for_many_pairs() -> None:
    p, perms, exact = sign_flip_test([0.1] * 30)
    assert not exact and perms == 20_000
    assert p is not None and p < 0.001
    p0, _, _ = sign_flip_test([0.1, -0.1] * 15)
    assert p0 == pytest.approx(1.0)
