"""The run store: append-only events, attempts, final-only reads, annotations, a full disk."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from tests.helpers.cli import error_lines, run_cli, summary_json, trial_rows

from obedience.analysis import build_tables, summary_records
from obedience.backends import make_backend
from obedience.protocols import load_protocol
from obedience.runner import RunConfig, Runner
from obedience.store import RunStore, StoreError, StoreFullError, TrialRow, trial_key


def _row(index: int, model: str = "m", condition: str = "C") -> TrialRow:
    return TrialRow(
        trial_id=trial_key(model, condition, index),
        model=model,
        condition=condition,
        trial_index=index,
        seed=index,
        sampling_seed=100 + index,
        attempt=0,
        status="pending",
        outcome=None,
        highest_level=None,
    )


def _ev(kind: str, **fields: object) -> dict[str, object]:
    return {"kind": kind, **fields}


def _raw_events(store: RunStore) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(store.run_dir / "events.sqlite")
    try:
        return list(conn.execute("SELECT * FROM events ORDER BY id"))
    finally:
        conn.close()


# ------------------------------------------------------------------ plain store


def test_plan_is_idempotent_and_keeps_progress(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "run") as store:
        assert store.plan_trials([_row(1), _row(2)]) == 2
        attempt = store.start_trial(_row(1).trial_id)
        store.append(_row(1).trial_id, attempt, [(0, _ev("trial-started"), None)], finish=("x", 3))
        # Planning again (as --resume does) adds only the new trial and touches no other.
        assert store.plan_trials([_row(1), _row(2), _row(3)]) == 1
        by_id = {r.trial_id: r for r in store.trials()}
        assert by_id[_row(1).trial_id].status == "done"
        assert by_id[_row(1).trial_id].outcome == "x"
        assert by_id[_row(1).trial_id].highest_level == 3
        assert [r.status for r in store.trials(status="pending")] == ["pending", "pending"]


def test_restarted_trial_keeps_superseded_attempt_but_counts_only_the_final_one(
    tmp_path: Path,
) -> None:
    with RunStore.create(tmp_path / "run") as store:
        store.plan_trials([_row(1)])
        tid = _row(1).trial_id
        first = store.start_trial(tid)
        store.append(
            tid,
            first,
            [(0, _ev("trial-started"), None), (1, _ev("reply", text="partial"), {"a": 1})],
        )
        before = _raw_events(store)
        # The process died; on resume the trial is opened again under a new attempt.
        second = store.start_trial(tid)
        assert (first, second) == (1, 2)
        (row,) = store.trials()
        assert (row.attempt, row.status, row.outcome) == (2, "running", None)
        # Until the new attempt finishes nothing of the trial is counted.
        assert list(store.events(final_only=True)) == []
        store.append(
            tid,
            second,
            [(0, _ev("trial-started"), None), (1, _ev("trial-ended", reason="defiant"), None)],
            finish=("defiant", 0),
        )
        # Append-only: every row written before the restart is still there, unchanged.
        after = _raw_events(store)
        assert after[: len(before)] == before
        assert len(after) == len(before) + 2
        final = list(store.events(final_only=True))
        assert [(e.attempt, e.seq, e.kind) for e in final] == [
            (2, 0, "trial-started"),
            (2, 1, "trial-ended"),
        ]
        everything = list(store.events(tid, final_only=False))
        assert [(e.attempt, e.seq) for e in everything] == [(1, 0), (1, 1), (2, 0), (2, 1)]
        assert everything[1].meta == {"a": 1}
        assert everything[1].payload == {"kind": "reply", "text": "partial"}
        assert store.count_events() == 4


def test_a_late_finish_from_a_superseded_attempt_is_ignored(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "run") as store:
        store.plan_trials([_row(1)])
        tid = _row(1).trial_id
        old = store.start_trial(tid)
        new = store.start_trial(tid)
        store.append(tid, old, [(0, _ev("trial-ended"), None)], finish=("max-reached", 12))
        (row,) = store.trials()
        assert (row.attempt, row.status, row.outcome) == (new, "running", None)


def test_final_only_filters_per_trial(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "run") as store:
        store.plan_trials([_row(1), _row(2), _row(3)])
        done, running, _pending = (_row(i).trial_id for i in (1, 2, 3))
        a = store.start_trial(done)
        store.append(done, a, [(0, _ev("trial-started"), None)], finish=("defiant", 0))
        b = store.start_trial(running)
        store.append(running, b, [(0, _ev("trial-started"), None)])
        assert {e.trial_id for e in store.events()} == {done}
        assert {e.trial_id for e in store.events(final_only=False)} == {done, running}
        assert list(store.events(running)) == []
        assert len(list(store.events(running, final_only=False))) == 1


def test_a_failed_batch_is_rolled_back_whole(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "run") as store:
        store.plan_trials([_row(1)])
        tid = _row(1).trial_id
        a = store.start_trial(tid)
        store.append(tid, a, [(0, _ev("trial-started"), None)])
        with pytest.raises(StoreError) as info:
            # seq 1 is new but seq 0 is a duplicate: neither may land, nor the finish.
            store.append(
                tid,
                a,
                [(1, _ev("reply"), None), (0, _ev("reply"), None)],
                finish=("defiant", 0),
            )
        assert "\n" not in str(info.value)
        assert store.count_events() == 1
        assert store.trials()[0].status == "running"


def test_annotations_are_replaced_per_classifier(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "run") as store:
        store.replace_annotations(
            "rules",
            [("t|1", 1, 4, {"refusal": True}, {"refusal": "said no"}), ("t|1", 1, 9, {}, {})],
        )
        store.replace_annotations("judge:x", [("t|1", 1, 4, {"refusal": False}, {})])
        store.replace_annotations("rules", [("t|2", 3, 7, {"distress": True}, {})])
        rules = store.annotations("rules")
        assert rules == [
            {
                "trial_id": "t|2",
                "attempt": 3,
                "seq": 7,
                "classifier": "rules",
                "labels": {"distress": True},
                "reasons": {},
            }
        ]
        assert [a["labels"] for a in store.annotations("judge:x")] == [{"refusal": False}]
        assert len(store.annotations()) == 2


def test_manifest_is_replaced_atomically(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "run") as store:
        store.write_manifest({"a": 1})
        store.write_manifest({"a": 2, "text": "ünïcode"})
        assert store.manifest() == {"a": 2, "text": "ünïcode"}
    leftovers = [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".manifest")]
    assert leftovers == []


def test_model_text_with_lone_surrogates_and_controls_is_stored(tmp_path: Path) -> None:
    text = "bad \ud800 surrogate \x1b[2J \u202e nul\x00"
    with RunStore.create(tmp_path / "run") as store:
        store.plan_trials([_row(1)])
        tid = _row(1).trial_id
        a = store.start_trial(tid)
        store.append(tid, a, [(0, _ev("reply", text=text), None)], finish=("defiant", 0))
        (event,) = store.events()
        assert event.payload["text"] == text


def test_open_and_create_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a run directory"):
        RunStore.open(tmp_path / "missing")
    RunStore.create(tmp_path / "run").close()
    with pytest.raises(StoreError, match="--resume"):
        RunStore.create(tmp_path / "run")


def _statements_of_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement run on the connections the store opens from now on."""
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    return statements


def test_a_worker_does_not_check_the_whole_file_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    with RunStore.create(run) as store:
        store.plan_trials([_row(i) for i in range(1, 4)])
    statements = _statements_of_opens(monkeypatch)

    def checks() -> int:
        return sum("quick_check" in s.lower() for s in statements)

    # The parent's open (to write, and any read) reads every page once ...
    with RunStore.open(run, write=True) as parent:
        assert checks() == 1
        # ... and a worker of that parent (the lock is the parent's) does not again,
        with RunStore.open_worker(run) as worker:
            assert checks() == 1
            assert [r.trial_id for r in worker.trials()] == [_row(i).trial_id for i in (1, 2, 3)]
            tid = _row(1).trial_id
            a = worker.start_trial(tid)
            assert a is not None
            worker.append(tid, a, [(0, _ev("reply", text="x"), None)], finish=("defiant", 0))
        assert len(list(parent.events())) == 1
    with RunStore.open(run) as reader:
        assert checks() == 2
        assert len(list(reader.events())) == 1
    # ... but still refuses a file that is not a store of ours.
    conn = sqlite3.connect(tmp_path / "other.sqlite")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "other.sqlite").rename(tmp_path / "foreign" / "events.sqlite")
    with pytest.raises(StoreError, match="not an obedience run store"):
        RunStore.open_worker(tmp_path / "foreign")


# --------------------------------------------------------------------- full disk


def _run(store: RunStore, config: RunConfig) -> None:
    protocol = load_protocol(config.protocol)
    backends = {m: make_backend(m) for m in config.models}
    asyncio.run(Runner(store, protocol, config, backends).run())


def _summary(run_dir: Path) -> list[dict[str, object]]:
    with RunStore.open(run_dir) as store:
        return summary_records(build_tables(store).trials)


CONFIG = RunConfig(
    models=["scripted:threshold:7"], conditions=["PC-NS-NF"], trials=6, concurrency=1
)


def test_full_database_stops_the_run_and_it_resumes_intact(tmp_path: Path) -> None:
    """Simulated with SQLite's max_page_count: the same SQLITE_FULL a full disk gives."""
    clean_dir, run_dir = tmp_path / "clean", tmp_path / "run"
    with RunStore.create(clean_dir) as clean:
        _run(clean, CONFIG)
    store = RunStore.create(run_dir)
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages + 12}")
    with pytest.raises(StoreFullError) as info:
        _run(store, CONFIG)
    message = str(info.value)
    assert "disk full" in message and "--resume" in message and "\n" not in message
    store.close()

    # Intact: it opens, passes an integrity check and reads back.
    with RunStore.open(run_dir, write=True) as reopened:
        assert reopened._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = reopened.trials()
        done = [r for r in rows if r.status == "done"]
        assert 0 < len(done) < CONFIG.trials, "the limit should hit mid-run"
        for r in done:
            kinds = [e.kind for e in reopened.events(r.trial_id)]
            assert kinds[0] == "trial-started" and kinds[-1] == "trial-ended"
        summary_records(build_tables(reopened).trials)  # readable by the analysis

        # Space is back (a new connection has no page limit): resume finishes the run.
        _run(reopened, CONFIG)
        assert {r.status for r in reopened.trials()} == {"done"}
    assert _summary(run_dir) == _summary(clean_dir)


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            "cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN): "
            f"{done.stderr.strip()}; the max_page_count test covers SQLITE_FULL"
        )


@pytest.fixture
def tiny_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the max_page_count test covers SQLITE_FULL")
    mount = tmp_path / "disk"
    _mount_tmpfs(mount, "1m")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_cli_on_a_full_disk_stops_with_one_line_and_resumes(
    tmp_path: Path, tiny_disk: Path
) -> None:
    # 40 trials take about 1.7 MB: more than the 1 MB disk holds, even with commits grouped.
    trials = 40
    args = ["-m", "scripted:threshold:7", "-c", "PC-NS-NF", "-n", str(trials), "--concurrency", "1"]
    clean = tmp_path / "clean"
    with RunStore.create(clean) as store:
        _run(store, CONFIG.model_copy(update={"trials": trials}))

    run_dir = tiny_disk / "run"
    full = run_cli(["run", *args, "-o", str(run_dir), "-q", "--no-report"])
    assert full.returncode == 2, full.stderr
    (line,) = error_lines(full.stderr)
    assert line.startswith("error: disk full") and "--resume" in line
    assert "Traceback" not in full.stderr

    # Still full, the store is readable: summary works and finished trials are whole.
    partial = summary_json(run_dir)
    rows = trial_rows(run_dir)
    finished = sum(1 for _a, status, _o in rows.values() if status == "done")
    assert 0 < finished < trials, rows
    assert sum(r["trials"] for r in partial) == finished

    # Free space (grow the filesystem), then resume: every trial done once, same counts.
    subprocess.run(["mount", "-o", "remount,size=16m", str(tiny_disk)], check=True)
    resumed = run_cli(["run", "--resume", str(run_dir), "-q", "--no-report"])
    assert resumed.returncode == 0, resumed.stderr
    assert {status for _a, status, _o in trial_rows(run_dir).values()} == {"done"}
    assert _summary(run_dir) == _summary(clean)
