"""Versioned reply labels beside the events: every labelling is kept, none deleted.

Each time a classifier, a judge or a human coder labels replies, one *label set*
is appended (its classifier name, kind, identity and time) with one row per
reply. Nothing is ever updated or deleted here: relabelling with the same
classifier adds a new version, and the older ones stay readable. The store's
``annotations`` table is the current view (the latest machine version of each
classifier) that the analysis reads.

Human labels are label sets of kind ``human``: each row carries its coder and the
time it was coded, and they are never written into the machine view.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from obedience.store._sqlite import RunStore

Kind = Literal["machine", "judge", "human"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS label_sets (
    set_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    classifier TEXT NOT NULL,
    kind       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    identity   TEXT NOT NULL,
    created    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS label_rows (
    set_id    INTEGER NOT NULL REFERENCES label_sets (set_id),
    trial_id  TEXT NOT NULL,
    attempt   INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    labels    TEXT NOT NULL,
    reasons   TEXT,
    coder     TEXT,
    coded_at  TEXT
);
CREATE INDEX IF NOT EXISTS label_rows_set ON label_rows (set_id);
"""

LabelRow = tuple[str, int, int, Mapping[str, bool], Mapping[str, str]]
"""(trial_id, attempt, seq, labels, reasons)."""


@dataclass(frozen=True, slots=True)
class LabelSet:
    set_id: int
    classifier: str
    kind: str
    version: int
    identity: dict[str, Any]
    created: str


@dataclass(frozen=True, slots=True)
class HumanLabel:
    trial_id: str
    attempt: int
    seq: int
    labels: dict[str, bool]
    coder: str
    coded_at: str
    text_part: str = "visible"
    """What was coded: the visible reply, or its ``"reasoning"`` text where it has one."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), sort_keys=True)


def _ensure(store: RunStore) -> None:
    with store._transaction() as c:  # same package: the store's own transaction guard
        for statement in SCHEMA.split(";"):
            if statement.strip():
                c.execute(statement)


def _exists(store: RunStore) -> bool:
    # Reading never writes: a read-only run directory (or an older run) has no tables yet.
    row = store._conn.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'label_rows'"
    ).fetchone()
    return bool(row[0])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def add_label_set(
    store: RunStore,
    classifier: str,
    rows: Iterable[LabelRow],
    *,
    kind: Kind = "machine",
    identity: Mapping[str, Any] | None = None,
    coder: str | None = None,
    coded_at: Iterable[str | None] | None = None,
) -> LabelSet:
    """Append one label set and its rows; machine sets also refresh the current view."""
    _ensure(store)
    items = list(rows)
    times = list(coded_at) if coded_at is not None else [None] * len(items)
    created = _now()
    with store._transaction() as c:
        (latest,) = c.execute(
            "SELECT COALESCE(MAX(version), 0) FROM label_sets WHERE classifier = ?", (classifier,)
        ).fetchone()
        version = int(latest) + 1
        cur = c.execute(
            "INSERT INTO label_sets (classifier, kind, version, identity, created) "
            "VALUES (?, ?, ?, ?, ?)",
            (classifier, kind, version, _dumps(dict(identity or {})), created),
        )
        set_id = int(cur.lastrowid or 0)
        c.executemany(
            "INSERT INTO label_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (set_id, t, a, s, _dumps(dict(lab)), _dumps(dict(rea)), coder, when)
                for (t, a, s, lab, rea), when in zip(items, times, strict=True)
            ],
        )
        if kind != "human":
            # The current view: this version replaces the classifier's previous one
            # there, in the same transaction; every version stays in label_rows.
            c.execute("DELETE FROM annotations WHERE classifier = ?", (classifier,))
            c.executemany(
                "INSERT INTO annotations VALUES (?, ?, ?, ?, ?, ?)",
                [(t, a, s, classifier, _dumps(dict(lab)), _dumps(dict(rea)))
                 for t, a, s, lab, rea in items],
            )  # fmt: skip
    return LabelSet(set_id, classifier, kind, version, dict(identity or {}), created)


def label_sets(store: RunStore, classifier: str | None = None) -> list[LabelSet]:
    """Every label set, oldest first (optionally of one classifier)."""
    if not _exists(store):
        return []
    sql = "SELECT set_id, classifier, kind, version, identity, created FROM label_sets"
    args: tuple[Any, ...] = ()
    if classifier is not None:
        sql += " WHERE classifier = ?"
        args = (classifier,)
    return [
        LabelSet(int(i), str(c), str(k), int(v), json.loads(ident), str(when))
        for i, c, k, v, ident, when in store._conn.execute(sql + " ORDER BY set_id", args)
    ]


def label_rows(store: RunStore, set_id: int) -> list[dict[str, Any]]:
    if not _exists(store):
        return []
    return [
        {
            "trial_id": t,
            "attempt": a,
            "seq": s,
            "labels": json.loads(lab),
            "reasons": json.loads(rea) if rea else {},
            "coder": coder,
            "coded_at": when,
        }
        for t, a, s, lab, rea, coder, when in store._conn.execute(
            "SELECT trial_id, attempt, seq, labels, reasons, coder, coded_at FROM label_rows "
            "WHERE set_id = ? ORDER BY trial_id, attempt, seq",
            (set_id,),
        )
    ]


REASONING_SUFFIX = ":reasoning"
"""Label sets of a reply's reasoning text are named like the visible text's, plus this."""


def human_labels(store: RunStore, text_part: str = "visible") -> list[HumanLabel]:
    """Every imported human label of one text part (the visible reply by default, or
    ``"reasoning"``), in import order (a later import of a reply wins)."""
    out = []
    for label_set in label_sets(store):
        if label_set.kind != "human":
            continue
        if str(label_set.identity.get("text_part", "visible")) != text_part:
            continue
        for row in label_rows(store, label_set.set_id):
            out.append(
                HumanLabel(
                    row["trial_id"],
                    int(row["attempt"]),
                    int(row["seq"]),
                    dict(row["labels"]),
                    str(row["coder"] or ""),
                    str(row["coded_at"] or label_set.created),
                    text_part,
                )
            )
    return out
