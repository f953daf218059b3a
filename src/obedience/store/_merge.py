"""Merging run stores (the shards of one run) into a new one, row for row.

Every row of every table is copied as stored (the JSON text of events, meta and
labels is not re-encoded), so a merged store holds exactly what the shards held:
every attempt of every trial, every label set and the current labels. The caller
checks that the stores are shards of one design (``obedience.merge`` does).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from obedience.store._labels import SCHEMA as LABEL_SCHEMA
from obedience.store._sqlite import DATABASE, RunStore, StoreError

# Columns copied verbatim, per table (the ids that are only row numbers are renumbered).
_TRIALS = (
    "trial_id, model, condition, trial_index, seed, sampling_seed, attempt, status, outcome,"
    " highest_level"
)
_EVENTS = "trial_id, attempt, seq, kind, payload, meta"
_ANNOTATIONS = "trial_id, attempt, seq, classifier, labels, reasons"
_LABEL_ROWS = "trial_id, attempt, seq, labels, reasons, coder, coded_at"


def _tables(conn: sqlite3.Connection, schema: str) -> set[str]:
    return {
        name
        for (name,) in conn.execute(f"SELECT name FROM {schema}.sqlite_master WHERE type='table'")
    }


def duplicated_trials(sources: Sequence[RunStore]) -> list[tuple[str, Path, Path]]:
    """Trials found in more than one source: ``(trial_id, first dir, second dir)``."""
    seen: dict[str, Path] = {}
    out = []
    for store in sources:
        for row in store.trials():
            if row.trial_id in seen:
                out.append((row.trial_id, seen[row.trial_id], store.run_dir))
            else:
                seen[row.trial_id] = store.run_dir
    return out


def merge_into(target: RunStore, sources: Sequence[RunStore]) -> dict[str, int]:
    """Copy every row of ``sources`` into the new, empty ``target``; returns row counts.

    One transaction per source: on a failure, discard the target (a new directory).
    """
    if target.count_events() or target.trials():
        raise StoreError(f"{target.run_dir} is not empty; merge writes a new run directory")
    counts = {"trials": 0, "events": 0, "annotations": 0, "label_sets": 0, "probes": 0}
    with target._transaction() as c:  # same package: the store's own transaction guard
        for statement in LABEL_SCHEMA.split(";"):
            if statement.strip():
                c.execute(statement)
    for source in sources:
        # SQLite attaches outside a transaction, and only ~10 databases at once: one
        # source at a time, each copied in one transaction.
        try:
            target._conn.execute("ATTACH DATABASE ? AS src", (str(source.run_dir / DATABASE),))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {source.run_dir / DATABASE}: {exc}") from None
        try:
            with target._transaction() as c:
                _copy(c, counts)
        finally:
            target._conn.execute("DETACH DATABASE src")
    return counts


def _copy(c: sqlite3.Connection, counts: dict[str, int]) -> None:
    tables = _tables(c, "src")
    counts["trials"] += c.execute(
        f"INSERT INTO trials ({_TRIALS}) SELECT {_TRIALS} FROM src.trials"
    ).rowcount
    counts["events"] += c.execute(
        f"INSERT INTO events ({_EVENTS}) SELECT {_EVENTS} FROM src.events ORDER BY id"
    ).rowcount
    if "annotations" in tables:
        counts["annotations"] += c.execute(
            f"INSERT INTO annotations ({_ANNOTATIONS}) "
            f"SELECT {_ANNOTATIONS} FROM src.annotations ORDER BY rowid"
        ).rowcount
    if "trial_attributes" in tables:
        c.execute(
            "INSERT INTO trial_attributes (trial_id, name, value)"
            " SELECT trial_id, name, value FROM src.trial_attributes"
        )
    if "probes" in tables:
        counts["probes"] += c.execute(
            "INSERT INTO probes (model, condition, history, k, payload)"
            " SELECT model, condition, history, k, payload FROM src.probes ORDER BY id"
        ).rowcount
    if "label_sets" in tables and "label_rows" in tables:
        sets = c.execute(
            "SELECT set_id, classifier, kind, version, identity, created"
            " FROM src.label_sets ORDER BY set_id"
        ).fetchall()
        for set_id, classifier, kind, version, identity, created in sets:
            cur = c.execute(
                "INSERT INTO label_sets (classifier, kind, version, identity, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (classifier, kind, version, identity, created),
            )
            c.execute(
                f"INSERT INTO label_rows (set_id, {_LABEL_ROWS}) SELECT ?, {_LABEL_ROWS}"
                " FROM src.label_rows WHERE set_id = ? ORDER BY rowid",
                (cur.lastrowid, set_id),
            )
            counts["label_sets"] += 1
