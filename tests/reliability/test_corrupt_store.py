"""A damaged, foreign, empty or unwritable store: every command gives one line, exit 2,
and a reading command never changes the file."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from tests.reliability.support import bind_read_only, scripted_run, unmount
from typer.testing import CliRunner

from obedience.cli import app
from obedience.store import RunStore, StoreError

runner = CliRunner()

READERS = [
    ["summary"],
    ["summary", "--json"],
    ["show"],
    ["stats"],
    ["stats", "--json"],
    ["report"],
    ["export", "--format", "csv"],
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 2, (args, result.output)
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, (args, result.output)
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    run = scripted_run(tmp_path / "damaged", trials=3)
    db = run / "events.sqlite"
    with sqlite3.connect(db) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert pages >= 4
    with db.open("r+b") as fh:  # page 3 onwards: b-tree pages of the tables
        fh.seek(2 * page)
        fh.write(b"\xa5" * page)
    return run


@pytest.fixture
def damaged_row(tmp_path: Path) -> Path:
    """Intact pages, but an event's JSON cell overwritten (bit rot inside a cell)."""
    run = scripted_run(tmp_path / "damaged_row", trials=2)
    conn = sqlite3.connect(run / "events.sqlite")
    with conn:
        conn.execute('UPDATE events SET payload = \'{"kind": "rep\' WHERE seq = 3')
    conn.close()  # the last connection checkpoints the WAL into the file
    return run


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    run = tmp_path / "foreign"
    run.mkdir()
    with sqlite3.connect(run / "events.sqlite") as conn:
        conn.execute("CREATE TABLE trials (id INTEGER, name TEXT)")
        conn.execute("INSERT INTO trials VALUES (1, 'not ours')")
    return run


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    run = tmp_path / "empty"
    run.mkdir()
    (run / "events.sqlite").write_bytes(b"")
    (run / "manifest.json").write_text('{"config": {"models": ["scripted:obedient"]}}')
    return run


@pytest.mark.parametrize("kind", ["damaged", "damaged_row", "foreign", "empty"])
def test_every_reading_command_gives_one_line_and_changes_nothing(
    kind: str, request: pytest.FixtureRequest
) -> None:
    run: Path = request.getfixturevalue(kind)
    db = run / "events.sqlite"
    before = _digest(db)
    for args in READERS:
        line = _one_line_error([*args, str(run)])
        assert "events.sqlite" in line or str(run) in line, line
        assert _digest(db) == before, f"{args} changed the store"
    assert not (run / "report.html").exists() and not (run / "export").exists()
    # Only SQLite's own WAL index files may appear beside the database (a WAL reader needs
    # them); the database's bytes are unchanged.
    allowed = {"events.sqlite", "manifest.json", ".writer.lock", "events.sqlite-wal"}
    assert {p.name for p in run.iterdir()} <= allowed | {"events.sqlite-shm"}


@pytest.mark.parametrize("kind", ["damaged", "foreign", "empty"])
def test_resume_refuses_a_broken_store(kind: str, request: pytest.FixtureRequest) -> None:
    run: Path = request.getfixturevalue(kind)
    before = _digest(run / "events.sqlite")
    line = _one_line_error(["run", "--resume", str(run), "-q", "--no-report"])
    assert _digest(run / "events.sqlite") == before
    if kind == "empty":
        assert "empty" in line and "0 bytes" in line
    elif kind == "foreign":
        assert "not an obedience run store" in line
    else:
        assert "damaged" in line or "manifest" in line


def test_foreign_schema_is_named_and_not_written_into(foreign: Path) -> None:
    with pytest.raises(StoreError, match="not an obedience run store"):
        RunStore.open(foreign)
    with pytest.raises(StoreError, match="not an obedience run store"):
        RunStore.open(foreign, write=True)
    with sqlite3.connect(foreign / "events.sqlite") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"trials"}


def test_damaged_page_found_at_open_not_mid_analysis(damaged: Path) -> None:
    with pytest.raises(StoreError, match="damaged"):
        RunStore.open(damaged)


def test_run_on_a_read_only_filesystem_is_readable(tmp_path: Path) -> None:
    run = scripted_run(tmp_path / "src" / "run", trials=2)
    expected = runner.invoke(app, ["summary", str(run), "--json"])
    assert expected.exit_code == 0, expected.output
    # As a cleanly closed run leaves it: no WAL index, which a reader could not create on a
    # read-only filesystem (SQLite then needs its immutable mode).
    for leftover in ("events.sqlite-wal", "events.sqlite-shm"):
        (run / leftover).unlink(missing_ok=True)
    ro = tmp_path / "ro"
    bind_read_only(run.parent, ro)
    try:
        ro_run = ro / "run"
        for args in (["summary", "--json"], ["show"], ["stats", "--json"]):
            result = runner.invoke(app, [*args, str(ro_run)])
            assert result.exit_code == 0, (args, result.output)
        assert runner.invoke(app, ["summary", str(ro_run), "--json"]).output == expected.output
        # Writing is refused with one line: the report and a resume cannot write there.
        _one_line_error(["report", str(ro_run)])
        _one_line_error(["run", "--resume", str(ro_run), "-q", "--no-report"])
        with RunStore.open(ro_run) as store:
            assert len(store.trials()) == 2
    finally:
        unmount(ro)


def test_a_read_only_open_writes_nothing(tmp_path: Path) -> None:
    run = scripted_run(tmp_path / "run")
    before = _digest(run / "events.sqlite")
    with RunStore.open(run) as store:
        store.trials()
        with pytest.raises(StoreError, match="read-only"):
            store.replace_annotations("x", [])
    assert _digest(run / "events.sqlite") == before
