"""One writer per run directory: a second writer gets one line, readers need no lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers.cli import error_lines, popen_cli
from tests.helpers.fake_openai import FakeOpenAI
from tests.reliability.support import scripted_run
from typer.testing import CliRunner

import obedience
from obedience.cli import app
from obedience.runner import RunConfig
from obedience.store import RunStore, StoreError

runner = CliRunner()


def test_a_second_writer_is_refused_and_readers_go_on(tmp_path: Path) -> None:
    run = scripted_run(tmp_path / "run", trials=2)
    with RunStore.open(run, write=True):
        with pytest.raises(StoreError, match="another obedience process"):
            RunStore.open(run, write=True)
        result = runner.invoke(app, ["run", "--resume", str(run), "-q", "--no-report"])
        assert result.exit_code == 2
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and "being written by another obedience process" in lines[0]
        for args in (["summary", "--json"], ["show"], ["stats", "--json"]):
            assert runner.invoke(app, [*args, str(run)]).exit_code == 0, args
        annotate = runner.invoke(app, ["annotate", str(run)])
        assert annotate.exit_code == 2 and "another obedience process" in annotate.output
    # Released on close: the next writer gets it.
    with RunStore.open(run, write=True):
        pass


def _planned_run(run_dir: Path, base_url: str, trials: int) -> None:
    """A run directory whose trials are planned but none has run (as after a crash)."""
    config = RunConfig(
        models=["openai:fake-model"],
        conditions=["PC-NS-NF"],
        trials=trials,
        base_url=base_url,
        concurrency=2,
    )
    obedience.plan(config, run_dir)


def test_two_resumes_at_once_run_each_trial_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAI(latency=0.2) as server:
        _planned_run(run, server.base_url, trials=4)
        before = server.chat_requests
        args = ["run", "--resume", str(run), "-q", "--no-report"]
        procs = [popen_cli(args), popen_cli(args)]
        results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
        requests = server.chat_requests - before
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, _, err in results if code == 2)
    assert len(error_lines(refused)) == 1 and "another obedience process" in refused
    # 4 obedient trials of 12 decisions: each request made exactly once.
    assert requests == 4 * 12
    with RunStore.open(run) as store:
        rows = store.trials()
    assert [r.attempt for r in rows] == [1, 1, 1, 1]
    assert {r.outcome for r in rows} == {"max-reached"}
    json.loads((run / "manifest.json").read_text())
