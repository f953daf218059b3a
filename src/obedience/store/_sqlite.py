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
import fcntl
import json
import os
import sqlite3
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obedience._json import dumps_sorted, loads
from obedience._text import scrub_secrets, scrubber
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
CREATE TABLE IF NOT EXISTS trial_attributes (
    trial_id  TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (trial_id, name)
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
# Held (flock, exclusive) by the one process that writes a run directory. Readers need none.
WRITER_LOCK = ".writer.lock"
# The columns this code reads; a file without them is not one of our stores.
REQUIRED_COLUMNS = {
    "trials": {
        "trial_id",
        "model",
        "condition",
        "trial_index",
        "seed",
        "sampling_seed",
        "attempt",
        "status",
        "outcome",
        "highest_level",
    },
    "events": {"trial_id", "attempt", "seq", "kind", "payload", "meta"},
}


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
class Appended:
    """One trial's new events for ``RunStore.append_many``: ``(seq, payload, meta)`` rows,
    and ``finish`` ``(outcome, highest level)`` when the trial ends with them.

    ``start``: these are the first events of attempt ``attempt``, which opens with them
    (the trial must still be at attempt ``attempt - 1`` and not counted as done).
    """

    trial_id: str
    attempt: int
    events: Sequence[tuple[int, dict[str, Any], dict[str, Any] | None]]
    finish: tuple[str, int] | None = None
    start: bool = False


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


def _dumps(value: Any, scrub: Callable[[str], str] = scrub_secrets) -> str:
    # Sorted keys: one text for one value. A lone surrogate that got this far stays an
    # ASCII escape, not a bad byte (``dumps_sorted``). Known secret values (an API key a
    # server echoed back) are never stored.
    return scrub(dumps_sorted(value))


def _db_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """One line for a store that cannot be read: damaged, foreign, or unreadable."""
    text = str(exc)
    if _is_disk_full(exc):
        return StoreFullError(f"disk full while using {path / DATABASE}")
    if isinstance(exc, sqlite3.DatabaseError) and (
        "malformed" in text or "not a database" in text or "corrupt" in text
    ):
        return StoreError(f"{path / DATABASE} is damaged ({text}); it cannot be read")
    return StoreError(f"cannot read store in {path}: {text}")


def _is_open_failure(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "unable to open" in text or "readonly" in text or "read-only" in text


def _check_store(conn: sqlite3.Connection, path: Path, *, integrity: bool = True) -> None:
    """Refuse a file that is not an intact store of ours, with one line, touching nothing.

    ``integrity``: also read every page (``PRAGMA quick_check``); only a worker of a run
    skips it, since its parent checked the file when it opened it, and a check per worker
    would read the whole file again in every one of them."""
    try:
        tables = {
            name: {row[1] for row in conn.execute(f"PRAGMA table_info({name})")}
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name in REQUIRED_COLUMNS
        }
        for table, needed in REQUIRED_COLUMNS.items():
            missing = needed - tables.get(table, set())
            if missing:
                what = (
                    f"no table {table!r}"
                    if table not in tables
                    else (f"table {table!r} lacks {', '.join(sorted(missing))}")
                )
                raise StoreError(f"{path / DATABASE} is not an obedience run store ({what})")
        if not integrity:
            return
        # Reads every page of the tables' b-trees: a damaged page is found here, at open,
        # rather than in the middle of an analysis.
        result = conn.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.Error as exc:
        raise _db_error(path, exc) from None
    if result is None or result[0] != "ok":
        detail = " ".join(str(result[0] if result else "no result").split())[:200]
        raise StoreError(f"{path / DATABASE} is damaged ({detail}); it cannot be read")


class _WriterLock:
    """An exclusive advisory lock on a run directory, held while a store is open to write."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / WRITER_LOCK
        try:
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot lock {run_dir} for writing: {exc.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            self._fd = None
            raise StoreError(
                f"{run_dir} is being written by another obedience process; "
                "wait for it to finish (reading commands work meanwhile)"
            ) from None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


class RunStore:
    def __init__(
        self,
        run_dir: Path,
        conn: sqlite3.Connection,
        *,
        read_only: bool = False,
        lock: _WriterLock | None = None,
    ) -> None:
        self.run_dir = run_dir
        self._conn = conn
        self.read_only = read_only
        self._lock = lock

    # ------------------------------------------------------------ open / close

    @classmethod
    def create(cls, run_dir: str | Path, *, exist_ok: bool = False) -> RunStore:
        """A new store, open to write (the directory's writer lock is taken)."""
        path = Path(run_dir)
        if (path / DATABASE).exists() and not exist_ok:
            raise StoreError(f"{path} already holds a run; use --resume to continue it")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create run directory {path}: {exc.strerror}") from None
        lock = _WriterLock(path)
        try:
            if (path / DATABASE).exists():
                return cls._connect_existing(path, lock)
            return cls._connect_new(path, lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open(cls, run_dir: str | Path, *, write: bool = False) -> RunStore:
        """An existing store. Read-only unless ``write``: then the writer lock is taken.

        A read-only open never creates or changes anything, not even the schema, and
        falls back to SQLite's ``immutable`` mode where the directory is not writable.
        """
        path = Path(run_dir)
        db = path / DATABASE
        if not db.is_file():
            raise StoreError(f"{path} is not a run directory (no {DATABASE})")
        try:
            size = db.stat().st_size
        except OSError as exc:
            raise StoreError(f"cannot read {db}: {exc.strerror}") from None
        if size == 0:
            raise StoreError(f"{db} is empty (0 bytes): not a run store; nothing to read or resume")
        if not write:
            return cls._connect_read_only(path)
        lock = _WriterLock(path)
        try:
            return cls._connect_existing(path, lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open_worker(cls, run_dir: str | Path) -> RunStore:
        """The store of a run being written by a parent process that holds its writer lock,
        opened to write by one of that parent's worker processes (``workers``).

        The parent opened (and so checked) the file already: the worker checks that it is
        a store of ours, but does not read every page of it again (``PRAGMA quick_check``).
        """
        path = Path(run_dir)
        if not (path / DATABASE).is_file():
            raise StoreError(f"{path} is not a run directory (no {DATABASE})")
        return cls._connect_existing(path, None, integrity=False)

    @classmethod
    def _connect_new(cls, path: Path, lock: _WriterLock) -> RunStore:
        try:
            conn = sqlite3.connect(
                path / DATABASE, isolation_level=None, timeout=30, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            if _is_disk_full(exc):
                raise StoreFullError(f"disk full while opening {path}") from None
            raise StoreError(f"cannot open store in {path}: {exc}") from None
        return cls(path, conn, lock=lock)

    @classmethod
    def _connect_existing(
        cls, path: Path, lock: _WriterLock | None, *, integrity: bool = True
    ) -> RunStore:
        """Open to write a store that exists: it must be ours and intact before anything
        (``integrity``: read every page to know it is intact; see ``_check_store``)."""
        try:
            conn = sqlite3.connect(
                path / DATABASE, isolation_level=None, timeout=30, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store in {path}: {exc}") from None
        try:
            _check_store(conn, path, integrity=integrity)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)  # tables added by later versions (all IF NOT EXISTS)
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise _db_error(path, exc) from None
        return cls(path, conn, lock=lock)

    @classmethod
    def _connect_read_only(cls, path: Path) -> RunStore:
        uri = "file:" + urllib.parse.quote(str((path / DATABASE).absolute()))
        conn: sqlite3.Connection | None = None
        last: sqlite3.Error | None = None
        # A read-only directory cannot hold WAL's shared-memory file: SQLite then reads the
        # file as immutable (nothing can be writing to it, since nothing can write there).
        for suffix in ("?mode=ro", "?mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(uri + suffix, uri=True, isolation_level=None, timeout=30)
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
                break
            except sqlite3.Error as exc:
                if conn is not None:
                    conn.close()
                conn, last = None, exc
                if not _is_open_failure(exc):
                    break
        if conn is None:
            assert last is not None
            raise _db_error(path, last) from None
        try:
            _check_store(conn, path)
        except StoreError:
            conn.close()
            raise
        return cls(path, conn, read_only=True)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise StoreError(f"the store in {self.run_dir} was opened read-only")
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
            # allow_nan=False: Infinity/NaN are not JSON; ASCII: surrogates stay escapes.
            text = json.dumps(manifest, indent=2, sort_keys=True, default=str, allow_nan=False)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(scrub_secrets(text))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except (OSError, ValueError) as exc:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)
            if isinstance(exc, ValueError):
                raise StoreError(f"cannot write {target}: {exc}") from None
            if _is_disk_full(exc):
                raise StoreFullError(f"disk full writing {target}") from None
            raise StoreError(f"cannot write {target}: {exc.strerror}") from None

    def manifest(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.run_dir / MANIFEST).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {self.run_dir / MANIFEST}: {exc}") from None
        if not isinstance(data, dict):
            raise StoreError(f"{self.run_dir / MANIFEST} is not a JSON object")
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

    def start_trial(self, trial_id: str, *, reopen_error: bool = False) -> int | None:
        """Open a fresh attempt of a trial; returns its attempt number.

        A finished trial is never reopened: that returns ``None`` and changes nothing.
        ``reopen_error``: except one that ended as ``error`` (a transport failure, which
        measured nothing); its events stay, as a superseded attempt.
        """
        reopenable = "status != 'done'"
        if reopen_error:
            reopenable = "(status != 'done' OR outcome = 'error')"
        with self._transaction() as c:
            c.execute(
                "UPDATE trials SET attempt = attempt + 1, status = 'running', outcome = NULL,"
                f" highest_level = NULL WHERE trial_id = ? AND {reopenable}",
                (trial_id,),
            )
            row = c.execute(
                "SELECT attempt, status FROM trials WHERE trial_id = ?", (trial_id,)
            ).fetchone()
        if row is None:
            raise StoreError(f"unknown trial {trial_id!r}")
        return None if row[1] == "done" else int(row[0])

    def append(
        self,
        trial_id: str,
        attempt: int,
        events: list[tuple[int, dict[str, Any], dict[str, Any] | None]],
        *,
        finish: tuple[str, int] | None = None,
    ) -> None:
        """Append ``(seq, payload, meta)`` events atomically, optionally closing the trial."""
        self.append_many([Appended(trial_id, attempt, events, finish)])

    def append_many(self, batch: Sequence[Appended]) -> None:
        """Append the events of several trials (and close those that finish) in one commit.

        All or nothing: a failed commit (a full disk) stores none of them. The runner groups
        the replies that arrive together into one commit, which costs one WAL write
        instead of one per reply.
        """
        scrub = scrubber()
        rows = [
            (
                item.trial_id,
                item.attempt,
                seq,
                payload["kind"],
                _dumps(payload, scrub),
                None if meta is None else _dumps(meta, scrub),
            )
            for item in batch
            for seq, payload, meta in item.events
        ]
        finished = [
            (item.finish[0], item.finish[1], item.trial_id, item.attempt)
            for item in batch
            if item.finish is not None
        ]
        starts = [(item.attempt, item.trial_id, item.attempt - 1) for item in batch if item.start]
        with self._transaction() as c:
            if starts:
                opened = c.executemany(
                    "UPDATE trials SET attempt = ?, status = 'running', outcome = NULL,"
                    " highest_level = NULL WHERE trial_id = ? AND attempt = ?"
                    " AND (status != 'done' OR outcome = 'error')",
                    starts,
                ).rowcount
                if opened != len(starts):  # rolled back: nothing of the batch is stored
                    raise StoreError(
                        f"{self.run_dir}: a trial was changed by another process during "
                        "this run (is a second run writing this directory?)"
                    )
            if rows:
                c.executemany(
                    "INSERT INTO events (trial_id, attempt, seq, kind, payload, meta)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            if finished:
                c.executemany(
                    "UPDATE trials SET status = 'done', outcome = ?, highest_level = ?"
                    " WHERE trial_id = ? AND attempt = ?",
                    finished,
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
        return [TrialRow(*row) for row in self._rows(sql, args)]

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
        for tid, attempt, seq, kind, payload, meta in self._rows(sql, args):
            yield EventRow(
                tid,
                attempt,
                seq,
                kind,
                self._loads(payload, "events"),
                self._loads(meta, "events") if meta else None,
            )

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of a query; a damaged file mid-read is a one-line StoreError."""
        try:
            cursor = self._conn.execute(sql, tuple(args))
            while batch := cursor.fetchmany(512):
                yield from batch
        except sqlite3.Error as exc:
            raise _db_error(self.run_dir, exc) from None

    def _loads(self, text: str, table: str) -> Any:
        """A stored JSON cell; one that does not parse means the file was damaged."""
        try:
            return loads(text)
        except (TypeError, ValueError) as exc:
            raise StoreError(
                f"{self.run_dir / DATABASE} is damaged: a row of {table!r} is not JSON ({exc})"
            ) from None

    def _count(self, table: str) -> int:
        return int(next(self._rows(f"SELECT COUNT(*) FROM {table}"))[0])

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
        sql += " ORDER BY rowid"  # the order they were written in (analysis relies on it)
        return [
            {
                "trial_id": t,
                "attempt": a,
                "seq": s,
                "classifier": c,
                "labels": self._loads(lab, "annotations"),
                "reasons": self._loads(rea, "annotations") if rea else {},
            }
            for t, a, s, c, lab, rea in self._rows(sql, args)
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
        for m, cond, h, k, p in self._rows(
            "SELECT model, condition, history, k, payload FROM probes ORDER BY id"
        ):
            row = self._loads(p, "probes")
            row.update({"model": m, "condition": cond, "history": h, "k": k})
            out.append(row)
        return out

    # ---------------------------------------------------------- trial attributes

    def add_trial_attributes(self, rows: Iterable[tuple[str, str, Any]]) -> None:
        """Record ``(trial_id, name, value)`` facts about trials (imported runs' design
        variables such as temperature or reasoning arm). Values are JSON; a name is set once."""
        with self._transaction() as c:
            c.executemany(
                "INSERT OR IGNORE INTO trial_attributes (trial_id, name, value) VALUES (?, ?, ?)",
                [(t, n, _dumps(v)) for t, n, v in rows],
            )

    def trial_attributes(self) -> dict[str, dict[str, Any]]:
        """Every trial's attributes: ``{trial_id: {name: value}}`` (empty for a normal run)."""
        out: dict[str, dict[str, Any]] = {}
        for tid, name, value in self._conn.execute(
            "SELECT trial_id, name, value FROM trial_attributes ORDER BY trial_id, name"
        ):
            out.setdefault(tid, {})[name] = loads(value)
        return out
