"""One run in several worker processes (``workers``).

What must hold: a run with workers stores the same events as one without, trial for
trial; the progress counts every worker's trials; budgets are shared out and the run stops
resumably; a worker that dies fails the run with one line and loses only unfinished
trials; and what workers cannot do (in-process models, ready backends) is refused before
anything is created.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.cli import error_lines, run_cli
from tests.helpers.fake_openai import FakeOpenAI

import obedience
from obedience import RunConfig
from obedience.backends import make_backend
from obedience.runner import Progress, WorkerError
from obedience.runner._workers import deal, worker_config
from obedience.store import DATABASE, RunStore, TrialRow

MODEL = "openai:fake-model"


def _events(run_dir: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(run_dir / DATABASE) as conn:
        return conn.execute(
            "SELECT e.trial_id, e.seq, e.kind, e.payload FROM events e JOIN trials t"
            " ON t.trial_id = e.trial_id AND t.attempt = e.attempt WHERE t.status = 'done'"
            " ORDER BY e.trial_id, e.seq"
        ).fetchall()


def _served(base_url: str, **extra: Any) -> RunConfig:
    return RunConfig(
        models=[MODEL],
        conditions=["PC-NS-NF", "DC-WS-FB"],
        trials=4,
        base_url=base_url,
        concurrency=4,
        timeout=20,
        **extra,
    )


def test_workers_store_the_same_events_as_one_process(tmp_path: Path) -> None:
    seen: list[Progress] = []
    live: list[Progress] = []
    with FakeOpenAI(subject="mixed") as server:
        config = _served(server.base_url)
        obedience.run(config, tmp_path / "one", label=False, report=False)
        obedience.run(
            config.model_copy(update={"workers": 2}),
            tmp_path / "two",
            label=False,
            report=False,
            progress=lambda p: (
                seen.append(Progress(**{k: getattr(p, k) for k in _COUNTS})),
                live.append(p),
            ),
        )
    one, two = _events(tmp_path / "one"), _events(tmp_path / "two")
    assert len(one) > 8 * 20
    assert two == one
    with RunStore.open(tmp_path / "two") as store:
        assert {r.status for r in store.trials()} == {"done"}
        assert all(r.attempt == 1 for r in store.trials())  # no trial ran twice
        assert store.manifest()["config"]["workers"] == 2
    # The parent's counters add up both workers' trials.
    last = seen[-1]
    assert (last.total, last.done) == (8, 8)
    assert last.decisions == sum(1 for e in one if e[2] == "reply")
    # Each worker reported its own CPU time and peak memory when it ended.
    assert live[-1].worker_cpu_s > 0 and live[-1].worker_peak_rss_mb > 20


_COUNTS = ("total", "done", "decisions", "errors", "transport_retries")


def test_a_request_budget_is_shared_out_and_the_run_resumes(tmp_path: Path) -> None:
    with FakeOpenAI(subject="mixed") as server:
        config = _served(server.base_url, workers=2, max_requests=15)
        with pytest.raises(obedience.RunStopped, match="budget reached"):
            obedience.run(config, tmp_path / "run", label=False, report=False)
        assert server.chat_requests <= 15  # 8 + 7 between the two workers
        obedience.resume(tmp_path / "run", overrides={"workers": 2}, label=False, report=False)
        obedience.run(_served(server.base_url), tmp_path / "clean", label=False, report=False)
    assert _events(tmp_path / "run") == _events(tmp_path / "clean")


def test_a_worker_that_dies_fails_the_run_in_one_line_and_resume_completes_it(
    tmp_path: Path,
) -> None:
    def kill_a_worker() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            workers = multiprocessing.active_children()
            if workers:
                time.sleep(0.5)  # let it start some trials
                os.kill(workers[0].pid or 0, signal.SIGKILL)
                return
            time.sleep(0.02)

    with FakeOpenAI(subject="mixed", latency=0.05) as server:
        config = _served(server.base_url, workers=2)
        killer = threading.Thread(target=kill_a_worker)
        killer.start()
        with pytest.raises(WorkerError) as failed:
            obedience.run(config, tmp_path / "run", label=False, report=False)
        killer.join()
        message = str(failed.value)
        assert "\n" not in message and "exit code -9" in message and "__main__" not in message
        with RunStore.open(tmp_path / "run") as store:
            statuses = {r.status for r in store.trials()}
        assert statuses != {"done"}  # the dead worker's trials were left unfinished
        obedience.resume(tmp_path / "run", label=False, report=False)
        obedience.run(_served(server.base_url), tmp_path / "clean", label=False, report=False)
    assert _events(tmp_path / "run") == _events(tmp_path / "clean")


def test_workers_refuse_in_process_models_and_ready_backends(tmp_path: Path) -> None:
    with pytest.raises(obedience.ConfigError, match="embedded runs in this process"):
        obedience.run(RunConfig(models=["embedded"], workers=2), tmp_path / "a")
    with pytest.raises(obedience.ConfigError, match="ready backends"):
        obedience.run(
            RunConfig(models=["scripted:obedient"], workers=2),
            tmp_path / "b",
            backends={"scripted:obedient": make_backend("scripted:obedient")},
        )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_workers_scripted_and_bad_values(tmp_path: Path) -> None:
    args = ["run", "-m", "scripted:threshold:7", "-c", "PC-NS-NF", "-n", "3", "-q", "--no-report"]
    done = run_cli([*args, "--workers", "2", "-o", str(tmp_path / "run")])
    assert done.returncode == 0, done.stderr
    with RunStore.open(tmp_path / "run") as store:
        assert [r.outcome for r in store.trials()] == ["defiant"] * 3
    bad = run_cli([*args, "--workers", "0", "-o", str(tmp_path / "bad")])
    assert bad.returncode == 2
    (line,) = error_lines(bad.stderr)
    assert "workers" in line


def _row(index: int) -> TrialRow:
    return TrialRow(f"m|c|{index}", "m", "c", index, 0, 0, 0, "pending", None, None)


def test_trials_are_dealt_round_the_workers_and_budgets_shared() -> None:
    rows = [_row(i) for i in range(5)]
    assert deal(rows, 2) == [["m|c|0", "m|c|2", "m|c|4"], ["m|c|1", "m|c|3"]]
    assert deal(rows[:1], 3) == [["m|c|0"]]  # no empty worker is started
    config = RunConfig(models=["scripted:obedient"], workers=3, max_requests=10, max_cost=0.9)
    shares = [worker_config(config, i, 3) for i in range(3)]
    assert [c.max_requests for c in shares] == [4, 3, 3]
    assert all(c.max_cost == pytest.approx(0.3) and c.workers == 1 for c in shares)


def test_ctrl_c_stops_every_worker_with_one_line_and_the_run_resumes(tmp_path: Path) -> None:
    import subprocess

    from tests.helpers.cli import CLI, cli_env

    run_dir = tmp_path / "run"
    with FakeOpenAI(subject="mixed", latency=0.1) as server:
        args = ["run", "-m", MODEL, "-c", "PC-NS-NF", "-n", "6", "--base-url", server.base_url]
        proc = subprocess.Popen(
            [*CLI, *args, "--workers", "2", "--concurrency", "2", "-o", str(run_dir), "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
            start_new_session=True,  # its own process group, as a terminal's job
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.chat_requests < 6:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # the whole group, as Ctrl-C does
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr
        (line,) = error_lines(stderr)
        assert "interrupted" in line and "--resume" in line
        resumed = run_cli(["run", "--resume", str(run_dir), "-q", "--no-report"])
        assert resumed.returncode == 0, resumed.stderr
    with RunStore.open(run_dir) as store:
        assert {r.status for r in store.trials()} == {"done"}


def test_a_failing_later_worker_stops_the_run_without_waiting_for_the_others(
    tmp_path: Path,
) -> None:
    killed_at: list[float] = []

    def kill_the_last_worker() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            last = [p for p in multiprocessing.active_children() if p.name.endswith("-1")]
            if last:
                time.sleep(0.5)
                os.kill(last[0].pid or 0, signal.SIGKILL)
                killed_at.append(time.monotonic())
                return
            time.sleep(0.02)

    # Worker 0 alone needs about 4 trials / 2 in flight x 12 decisions x 0.2 s = 4.8 s.
    with FakeOpenAI(subject="obedient", latency=0.2) as server:
        killer = threading.Thread(target=kill_the_last_worker)
        killer.start()
        with pytest.raises(WorkerError, match="worker 2 of 2"):
            obedience.run(
                _served(server.base_url, workers=2), tmp_path / "run", label=False, report=False
            )
        failed_at = time.monotonic()
        killer.join()
    assert killed_at and failed_at - killed_at[0] < 3.0


def test_workers_never_outnumber_a_request_budget_or_replay_a_file(tmp_path: Path) -> None:
    config = RunConfig(
        models=["scripted:obedient"], conditions=["PC-NS-NF"], trials=8, workers=4, max_requests=3
    )
    with pytest.raises(obedience.RunStopped, match="budget reached"):
        obedience.run(config, tmp_path / "run", label=False, report=False)
    replay = tmp_path / "replies.jsonl"
    replay.write_text('{"text": "PRESSED."}\n', encoding="utf-8")
    with pytest.raises(obedience.ConfigError, match="replay"):
        obedience.run(RunConfig(models=[f"replay:{replay}"], workers=2), tmp_path / "r")


def test_workers_see_the_environment_of_their_run_not_of_the_first(tmp_path: Path) -> None:
    # The fork server is started once per process; a key set after it must still reach
    # the next run's workers (here: a server that requires it, so the old one would fail).
    args: dict[str, Any] = {"label": False, "report": False}
    with FakeOpenAI(subject="obedient") as server:
        obedience.run(_served(server.base_url, workers=2), tmp_path / "a", **args)
    with FakeOpenAI(subject="obedient", api_key="sk-second") as server:
        os.environ["OPENAI_API_KEY"] = "sk-second"
        try:
            obedience.run(_served(server.base_url, workers=2), tmp_path / "b", **args)
        finally:
            del os.environ["OPENAI_API_KEY"]
        assert server.auth_headers == {"Bearer sk-second"}
    with RunStore.open(tmp_path / "b") as store:
        assert {r.outcome for r in store.trials()} == {"max-reached"}
