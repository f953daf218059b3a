"""The run store: an append-only SQLite database in WAL mode, plus a JSON manifest.

Why SQLite/WAL: each commit is atomic and survives a killed process, a reader
never blocks the writer, and the whole run is one portable file that pandas, R
or the ``sqlite3`` shell can open.

Layout of a run directory::

    RUN_DIR/manifest.json   config, protocol hash, versions, models, seeds
    RUN_DIR/events.sqlite   trials, events, annotations, probe results

Rows are only ever inserted. A trial that was interrupted is restarted under a
new ``attempt`` number; the superseded attempt's events stay in the file (nothing
is lost) but only the final attempt of a finished trial is counted.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obedience.engine._events import Event, event_from_dict

SCHEMA = """
CREATE TABLE IF NOT EXISTS trials (
    trial_id      TEXT PRIMARY KEY,
    model         TEXT NOT NULL,
    condition     TEXT NOT NULL,
    trial_index   INTEGER NOT NULL,
    seed          INTEGER NOT NULL,
    sampling_seed INTEGER NOT NULL,
    attempt       INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'pending',
    outcome       TEXT,
    highest_level INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_id  TEXT NOT NULL,
    attempt   INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,
    meta      TEXT,
    UNIQUE (trial_id, attempt, seq)
);
CREATE TABLE IF NOT EXISTS annotations (
    trial_id   TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    classifier TEXT NOT NULL,
    labels     TEXT NOT NULL,
    reasons    TEXT,
    PRIMARY KEY (trial_id, attempt, seq, classifier)
);
CREATE TABLE IF NOT EXISTS probes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    model     TEXT NOT NULL,
    condition TEXT NOT NULL,
    history   TEXT NOT NULL,
    k         INTEGER NOT NULL,
    payload   TEXT NOT NULL
);
"""

MANIFEST = "manifest.json"
DATABASE = "events.sqlite"


class StoreError(RuntimeError):
    """The store cannot be opened or written. The message is one line."""


class StoreFullError(StoreError):
    """The disk is full: the last transaction was rolled back; the store is intact."""


@dataclass(frozen=True)
class TrialRow:
    trial_id: str
    model: str
    condition: str
    trial_index: int
    seed: int
    sampling_seed: int
    attempt: int
    status: str
    outcome: str | None
    highest_level: int | None


@dataclass(frozen=True)
class EventRow:
    trial_id: str
    attempt: int
    seq: int
    kind: str
    payload: dict[str, Any]
    meta: dict[str, Any] | None

    @property
    def event(self) -> Event:
        """The payload as its typed engine event (``ReplyReceived``, ``TrialEnded``, ...)."""
        return event_from_dict(self.payload)


def trial_key(model: str, condition: str, index: int) -> str:
    return f"{model}|{condition}|{index}"


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower()


def _dumps(value: Any) -> str:
    # Lone surrogates in model output would make strict UTF-8 fail; keep them escaped.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), sort_keys=True)


class RunStore:
    def __init__(self, run_dir: Path, conn: sqlite3.Connection) -> None:
        self.run_dir = run_dir
        self._conn = conn

    # ------------------------------------------------------------ open / close

    @classmethod
    def create(cls, run_dir: str | Path, *, exist_ok: bool = False) -> RunStore:
        path = Path(run_dir)
        if (path / DATABASE).exists() and not exist_ok:
            raise StoreError(f"{path} already holds a run; use --resume to continue it")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create run directory {path}: {exc.strerror}") from None
        return cls._connect(path)

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        path = Path(run_dir)
        if not (path / DATABASE).is_file():
            raise StoreError(f"{path} is not a run directory (no {DATABASE})")
        return cls._connect(path)

    @classmethod
    def _connect(cls, path: Path) -> RunStore:
        try:
            conn = sqlite3.connect(path / DATABASE, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            if _is_disk_full(exc):
                raise StoreFullError(f"disk full while opening {path}") from None
            raise StoreError(f"cannot open store in {path}: {exc}") from None
        return cls(path, conn)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                # SQLite may already have rolled back (it does on SQLITE_FULL): a second
                # ROLLBACK would fail and hide the real error.
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            if _is_disk_full(exc):
                raise StoreFullError(
                    f"disk full writing {self.run_dir / DATABASE}; the run stopped and the "
                    "store is intact: free space, then resume with --resume"
                ) from None
            raise StoreError(f"store write failed in {self.run_dir}: {exc}") from None

    # ---------------------------------------------------------------- manifest

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        target = self.run_dir / MANIFEST
        try:
            fd, tmp = tempfile.mkstemp(dir=self.run_dir, prefix=".manifest-")
            os.fchmod(fd, 0o644)  # mkstemp makes it private; the run directory is not
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(manifest, fh, indent=2, sort_keys=True, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)
            if _is_disk_full(exc):
                raise StoreFullError(f"disk full writing {target}") from None
            raise StoreError(f"cannot write {target}: {exc.strerror}") from None

    def manifest(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.run_dir / MANIFEST).read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"cannot read {self.run_dir / MANIFEST}: {exc}") from None
        return data

    # ------------------------------------------------------------------ trials

    def plan_trials(self, rows: Iterable[TrialRow]) -> int:
        """Register trials; ones already present are left as they are. Returns how many are new."""
        before = self._count("trials")
        with self._transaction() as c:
            c.executemany(
                "INSERT OR IGNORE INTO trials (trial_id, model, condition, trial_index, seed,"
                " sampling_seed) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (r.trial_id, r.model, r.condition, r.trial_index, r.seed, r.sampling_seed)
                    for r in rows
                ],
            )
        return self._count("trials") - before

    def start_trial(self, trial_id: str) -> int:
        """Open a fresh attempt of a trial; returns its attempt number."""
        with self._transaction() as c:
            c.execute(
                "UPDATE trials SET attempt = attempt + 1, status = 'running', outcome = NULL,"
                " highest_level = NULL WHERE trial_id = ?",
                (trial_id,),
            )
            row = c.execute("SELECT attempt FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
        if row is None:
            raise StoreError(f"unknown trial {trial_id!r}")
        return int(row[0])

    def append(
        self,
        trial_id: str,
        attempt: int,
        events: list[tuple[int, dict[str, Any], dict[str, Any] | None]],
        *,
        finish: tuple[str, int] | None = None,
    ) -> None:
        """Append ``(seq, payload, meta)`` events atomically, optionally closing the trial."""
        with self._transaction() as c:
            c.executemany(
                "INSERT INTO events (trial_id, attempt, seq, kind, payload, meta)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        trial_id,
                        attempt,
                        seq,
                        payload["kind"],
                        _dumps(payload),
                        None if meta is None else _dumps(meta),
                    )
                    for seq, payload, meta in events
                ],
            )
            if finish is not None:
                outcome, highest = finish
                c.execute(
                    "UPDATE trials SET status = 'done', outcome = ?, highest_level = ?"
                    " WHERE trial_id = ? AND attempt = ?",
                    (outcome, highest, trial_id, attempt),
                )

    def trials(self, *, status: str | None = None) -> list[TrialRow]:
        sql = (
            "SELECT trial_id, model, condition, trial_index, seed, sampling_seed, attempt,"
            " status, outcome, highest_level FROM trials"
        )
        args: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        sql += " ORDER BY model, condition, trial_index"
        return [TrialRow(*row) for row in self._conn.execute(sql, args)]

    def events(self, trial_id: str | None = None, *, final_only: bool = True) -> Iterator[EventRow]:
        """Events in order. ``final_only`` keeps only the counted attempt of finished trials."""
        sql = "SELECT e.trial_id, e.attempt, e.seq, e.kind, e.payload, e.meta FROM events e"
        where: list[str] = []
        args: list[Any] = []
        if final_only:
            sql += " JOIN trials t ON t.trial_id = e.trial_id AND t.attempt = e.attempt"
            where.append("t.status = 'done'")
        if trial_id is not None:
            where.append("e.trial_id = ?")
            args.append(trial_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY e.trial_id, e.attempt, e.seq"
        for tid, attempt, seq, kind, payload, meta in self._conn.execute(sql, args):
            yield EventRow(
                tid, attempt, seq, kind, json.loads(payload), json.loads(meta) if meta else None
            )

    def _count(self, table: str) -> int:
        row = self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        return int(row[0])

    def count_events(self) -> int:
        return self._count("events")

    # ------------------------------------------------------------- annotations

    def replace_annotations(
        self, classifier: str, rows: list[tuple[str, int, int, dict[str, bool], dict[str, str]]]
    ) -> None:
        """Store labels ``(trial_id, attempt, seq, labels, reasons)`` for one classifier."""
        with self._transaction() as c:
            c.execute("DELETE FROM annotations WHERE classifier = ?", (classifier,))
            c.executemany(
                "INSERT INTO annotations VALUES (?, ?, ?, ?, ?, ?)",
                [(t, a, s, classifier, _dumps(lab), _dumps(rea)) for t, a, s, lab, rea in rows],
            )

    def annotations(self, classifier: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT trial_id, attempt, seq, classifier, labels, reasons FROM annotations"
        args: tuple[Any, ...] = ()
        if classifier:
            sql += " WHERE classifier = ?"
            args = (classifier,)
        return [
            {
                "trial_id": t,
                "attempt": a,
                "seq": s,
                "classifier": c,
                "labels": json.loads(lab),
                "reasons": json.loads(rea) if rea else {},
            }
            for t, a, s, c, lab, rea in self._conn.execute(sql, args)
        ]

    # ------------------------------------------------------------------ probes

    def add_probe_rows(self, rows: list[tuple[str, str, str, int, dict[str, Any]]]) -> None:
        with self._transaction() as c:
            c.executemany(
                "INSERT INTO probes (model, condition, history, k, payload) VALUES (?, ?, ?, ?, ?)",
                [(m, cond, h, k, _dumps(p)) for m, cond, h, k, p in rows],
            )

    def probe_rows(self) -> list[dict[str, Any]]:
        out = []
        for m, cond, h, k, p in self._conn.execute(
            "SELECT model, condition, history, k, payload FROM probes ORDER BY id"
        ):
            row = json.loads(p)
            row.update({"model": m, "condition": cond, "history": h, "k": k})
            out.append(row)
        return out
