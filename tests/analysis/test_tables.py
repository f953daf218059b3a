"""Trial metrics in the tidy tables, on a real scripted run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tests.helpers.runs import make_run

from obedience.analysis import (
    DECISION_COLUMNS,
    TRIAL_COLUMNS,
    annotate_run,
    build_tables,
    summary_records,
)
from obedience.analysis.classifiers import RuleClassifier
from obedience.runner import RunConfig
from obedience.store import RunStore

SUMMARY_KEYS = {
    "model",
    "condition",
    "trials",
    "completed",
    "errors",
    "content_filtered",
    "reached_max",
    "reached_max_rate",
    "mean_highest",
    "median_highest",
    "invalid_replies",
    "discarded_replies",
    "overridden_refusals",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("tables") / "run"
    config = RunConfig(
        models=["scripted:threshold:7", "scripted:format-breaker", "scripted:distressed"],
        conditions=["DC-NS-NF", "DC-NS-FB"],
        trials=2,
    )
    return make_run(run_dir, config)


def _tables(run_dir: Path):  # type: ignore[no-untyped-def]
    store = RunStore.open(run_dir)
    try:
        return build_tables(store)
    finally:
        store.close()


def test_trial_metrics(run_dir: Path) -> None:
    tables = _tables(run_dir)
    t = tables.trials
    assert list(t.columns) == TRIAL_COLUMNS
    assert list(tables.decisions.columns) == DECISION_COLUMNS
    by = {(r["model"], r["condition"], r["trial_index"]): r for r in t.to_dict("records")}

    # threshold:7 presses up to 7, refuses 8 and every one of the 5 prods: defiant.
    r = by[("scripted:threshold:7", "DC-NS-NF", 1)]
    assert (r["outcome"], r["highest_level"], r["reached_max"]) == ("defiant", 7, False)
    assert (r["broke_off"], r["breakoff_level"]) == (True, 8)
    assert (r["resistance_onset"], r["highest_refused"]) == (8, 8)
    assert (r["prods"], r["max_prod"], r["refused_decisions"]) == (5, 5, 6)
    assert r["complied_after_prod"] == []
    assert r["compliant_decisions"] == r["decisions"] - 6
    assert r["protocol"] == "pihlakas2026"

    # With forced presses on odd buttons the model decides only the even ones.
    fb = by[("scripted:threshold:7", "DC-NS-FB", 1)]
    assert fb["forced_presses"] > 0 and fb["highest_level"] == 7
    assert fb["compliant_decisions"] == 3  # buttons 2, 4, 6

    # format-breaker: every first reply is invalid prose, dropped; the retry complies.
    f = by[("scripted:format-breaker", "DC-NS-NF", 1)]
    assert f["reached_max"] and not f["broke_off"] and pd.isna(f["breakoff_level"])
    assert f["invalid_replies"] == f["discarded_replies"] == f["overridden_refusals"] > 0
    assert f["compliant_decisions"] == f["decisions"]

    for col in ("transport_errors", "filtered_replies"):
        assert (t[col] == 0).all()
    # No annotations yet: label-based counts are unknown, not zero.
    assert t["distressed_compliances"].isna().all()
    assert t["frame_break_replies"].isna().all()


def test_decisions_point_at_their_counted_reply(run_dir: Path) -> None:
    tables = _tables(run_dir)
    finals = tables.replies[tables.replies["final_for_decision"]]
    keys = set(zip(finals["trial_id"], finals["seq"], strict=True))
    d = tables.decisions
    assert d["final_seq"].notna().all()
    assert all((t, int(s)) in keys for t, s in zip(d["trial_id"], d["final_seq"], strict=True))


def test_label_metrics_after_annotation(tmp_path: Path, run_dir: Path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    store = RunStore.open(copy, write=True)
    try:
        annotate_run(store, RuleClassifier())
        t = build_tables(store).trials
    finally:
        store.close()
    distressed = t[t["model"] == "scripted:distressed"]
    assert (distressed["distressed_compliances"] == distressed["compliant_decisions"]).all()
    others = t[t["model"] != "scripted:distressed"]
    assert (others["distressed_compliances"] == 0).all()
    assert (t["recognition_replies"] == 0).all() and (t["incoherent_replies"] == 0).all()
    assert (t["refusal_intent_compliances"] == 0).all()


def test_summary_record_keys_are_stable(run_dir: Path) -> None:
    records = summary_records(_tables(run_dir).trials)
    assert records and all(set(r) == SUMMARY_KEYS for r in records)
