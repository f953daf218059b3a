"""Reasoning text and visible text are labelled apart, and runs without reasoning still work.

Reply events may carry ``reasoning`` (the model's reasoning text, str or None). The
run below is a real scripted run; a few of its reply payloads get a reasoning field
written into the store the way a reasoning-aware runner records it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from tests.report.conftest import make_run

import obedience
from obedience.analysis import annotate_run, build_tables
from obedience.analysis.classifiers import RuleClassifier
from obedience.store import REASONING_SUFFIX, RunStore, human_labels, label_sets

THOUGHT = "I feel terrible about this and I am worried for him, but I will press."


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("reasoning") / "run", ["scripted:obedient"], trials=1)


def _with_reasoning(base: Path, dest: Path, n: int) -> list[tuple[str, int, int]]:
    shutil.copytree(base, dest)
    con = sqlite3.connect(dest / "events.sqlite")
    try:
        rows = con.execute(
            "SELECT id, trial_id, attempt, seq, payload FROM events WHERE kind = 'reply' "
            "ORDER BY id LIMIT ?",
            (n,),
        ).fetchall()
        for row_id, _, _, _, payload in rows:
            data = json.loads(payload)
            data["reasoning"] = THOUGHT
            con.execute("UPDATE events SET payload = ? WHERE id = ?", (json.dumps(data), row_id))
        con.commit()
    finally:
        con.close()
    return [(t, a, s) for _, t, a, s, _ in rows]


def test_reasoning_gets_its_own_label_set(base_run: Path, tmp_path: Path) -> None:
    thought = _with_reasoning(base_run, tmp_path / "run", 3)
    store = RunStore.open(tmp_path / "run", write=True)
    try:
        visible = annotate_run(store, RuleClassifier())
        sets = {s.classifier: s for s in label_sets(store)}
        name = RuleClassifier().name
        assert set(sets) == {name, name + REASONING_SUFFIX}
        assert sets[name + REASONING_SUFFIX].identity["text_part"] == "reasoning"
        rows = {(a["trial_id"], a["attempt"], a["seq"]): a for a in
                store.annotations(name + REASONING_SUFFIX)}  # fmt: skip
        assert set(rows) == set(thought)  # only replies that have reasoning
        assert all(r["labels"]["distress"] for r in rows.values())
        vis = {(a["trial_id"], a["attempt"], a["seq"]): a for a in store.annotations(name)}
        assert len(vis) == visible and visible > len(thought)
        # The visible replies of an obedient script are plain presses: no distress there.
        assert not any(vis[k]["labels"]["distress"] for k in thought)
        tables = build_tables(store)
    finally:
        store.close()
    replies = tables.replies
    assert tables.replies.attrs["classifier"] == name  # the visible set drives the analysis
    assert "reasoning_label_distress" in replies.columns
    marked = replies[replies["reasoning_label_distress"] == True]  # noqa: E712
    assert len(marked) >= 1 and not marked["label_distress"].any()


def test_a_run_without_reasoning_has_no_reasoning_labels(base_run: Path, tmp_path: Path) -> None:
    shutil.copytree(base_run, tmp_path / "run")
    store = RunStore.open(tmp_path / "run", write=True)
    try:
        annotate_run(store, RuleClassifier())
        assert [s.classifier for s in label_sets(store)] == [RuleClassifier().name]
        assert "reasoning_label_distress" not in build_tables(store).replies.columns
    finally:
        store.close()


def test_human_labels_of_the_reasoning_are_kept_apart(base_run: Path, tmp_path: Path) -> None:
    thought = _with_reasoning(base_run, tmp_path / "run", 1)
    (t, a, s) = thought[0]
    lines = [
        {"trial_id": t, "attempt": a, "seq": s, "labels": {"distress": False}, "coder": "ana"},
        {"trial_id": t, "attempt": a, "seq": s, "labels": {"distress": True}, "coder": "ana",
         "text_part": "reasoning"},
    ]  # fmt: skip
    path = tmp_path / "ana.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    obedience.import_human_labels(tmp_path / "run", path)
    store = RunStore.open(tmp_path / "run")
    try:
        assert [h.labels for h in human_labels(store)] == [{"distress": False}]
        assert [h.labels for h in human_labels(store, "reasoning")] == [{"distress": True}]
    finally:
        store.close()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**lines[0], "text_part": "thoughts"}) + "\n", encoding="utf-8")
    with pytest.raises(obedience.InputError, match="text_part"):
        obedience.import_human_labels(tmp_path / "run", bad)


def test_classify_labels_the_reasoning_of_an_item_apart() -> None:
    result = obedience.classify(
        [
            {"text": "PRESSED.", "reasoning": THOUGHT},
            {"text": "PRESSED."},
            {"text": "PRESSED.", "reasoning": None},
        ]
    )
    rows = result.rows()
    assert rows[0]["labels"]["distress"] is False
    assert rows[0]["reasoning_labels"]["distress"] is True and rows[0]["reasoning_reasons"]
    assert "reasoning_labels" not in rows[1] and "reasoning_labels" not in rows[2]
    plain = obedience.classify(["PRESSED."]).rows()
    assert "reasoning_labels" not in plain[0]
    with pytest.raises(obedience.InputError, match="reasoning"):
        obedience.classify([{"text": "PRESSED.", "reasoning": 3}])
