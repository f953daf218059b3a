"""``obedience run`` killed with SIGKILL mid-run, then ``--resume``: every trial done once.

The model is a loopback OpenAI-compatible server with 100 ms latency whose replies are a
pure function of the conversation (about one decision in three is refused), so a clean run
of the same trials is the reference the resumed run must match exactly.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

from tests.helpers.cli import cli_env, db, popen_cli, run_cli
from tests.helpers.fake_openai import FakeOpenAI

from obedience.analysis import build_tables, summary_records
from obedience.backends import BackendOptions, make_backend
from obedience.protocols import load_protocol
from obedience.runner import RunConfig, Runner
from obedience.store import RunStore

TRIALS = 4


def _args(base_url: str, out: Path) -> list[str]:
    return [
        "run",
        "-m",
        "openai:fake-model",
        "--base-url",
        base_url,
        "-c",
        "PC-NS-NF",
        "-n",
        str(TRIALS),
        "--concurrency",
        "2",
        "-o",
        str(out),
        "-q",
        "--no-report",
    ]


def _progress(run_dir: Path) -> tuple[int, int]:
    """(finished trials, events of unfinished trials); (0, 0) before the store exists."""
    if not (run_dir / "events.sqlite").exists():
        return 0, 0
    try:
        with db(run_dir) as conn:
            done = conn.execute("SELECT COUNT(*) FROM trials WHERE status = 'done'").fetchone()
            partial = conn.execute(
                "SELECT COUNT(*) FROM events e JOIN trials t ON t.trial_id = e.trial_id"
                " AND t.attempt = e.attempt WHERE t.status = 'running'"
            ).fetchone()
        return int(done[0]), int(partial[0])
    except sqlite3.Error:
        return 0, 0


def _final_transcripts(run_dir: Path) -> dict[str, list[dict[str, object]]]:
    with RunStore.open(run_dir) as store:
        out: dict[str, list[dict[str, object]]] = {}
        for e in store.events(final_only=True):
            out.setdefault(e.trial_id, []).append(e.payload)
        return out


def _summary(run_dir: Path) -> list[dict[str, object]]:
    with RunStore.open(run_dir) as store:
        return summary_records(build_tables(store).trials)


def test_sigkill_then_resume_counts_every_trial_exactly_once(tmp_path: Path) -> None:
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    with FakeOpenAI(latency=0.1, subject="mixed") as server:
        proc = popen_cli(_args(server.base_url, killed_dir), env=cli_env())
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and proc.poll() is None:
                done, partial = _progress(killed_dir)
                if done >= 1 and partial >= 3:
                    break
                time.sleep(0.03)
            assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr}"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL

        killed_at = _progress(killed_dir)
        assert 1 <= killed_at[0] < TRIALS and killed_at[1] >= 3
        with db(killed_dir) as conn:
            interrupted = {
                t for (t,) in conn.execute("SELECT trial_id FROM trials WHERE status = 'running'")
            }
        assert interrupted

        resumed = run_cli(["run", "--resume", str(killed_dir), "-q", "--no-report"])
        assert resumed.returncode == 0, resumed.stderr
        # The reference: the same trials, uninterrupted (through the library: same runner).
        config = RunConfig(
            models=["openai:fake-model"],
            conditions=["PC-NS-NF"],
            trials=TRIALS,
            concurrency=TRIALS,
            base_url=server.base_url,
        )
        options = BackendOptions(base_url=server.base_url)
        backends = {m: make_backend(m, options) for m in config.models}
        with RunStore.create(clean_dir) as store:
            asyncio.run(Runner(store, load_protocol(config.protocol), config, backends).run())

    with db(killed_dir) as conn:
        rows = conn.execute("SELECT trial_id, attempt, status FROM trials").fetchall()
        trials = {t: (a, s) for t, a, s in rows}
        attempts_with_events = Counter(
            t for t, _a in conn.execute("SELECT DISTINCT trial_id, attempt FROM events")
        )
        superseded = conn.execute(
            "SELECT COUNT(*) FROM events e JOIN trials t ON t.trial_id = e.trial_id"
            " WHERE e.attempt < t.attempt"
        ).fetchone()[0]

    # Every trial exactly once, and done.
    assert len(trials) == TRIALS
    assert {s for _a, s in trials.values()} == {"done"}
    # The interrupted trials were restarted under a new attempt; their partial attempt is
    # kept in the file (append-only) but is not what is counted.
    for t in interrupted:
        assert trials[t][0] >= 2
    assert any(attempts_with_events[t] >= 2 for t in interrupted)
    assert superseded >= 3

    # What is counted is, trial by trial, exactly what a clean run records.
    final = _final_transcripts(killed_dir)
    reference = _final_transcripts(clean_dir)
    assert final == reference
    for events in final.values():
        kinds = Counter(str(e["kind"]) for e in events)
        assert kinds["trial-started"] == kinds["trial-ended"] == 1
    assert _summary(killed_dir) == _summary(clean_dir)
    (record,) = _summary(killed_dir)
    assert record["trials"] == TRIALS and record["errors"] == 0
