"""The sixteen defects of issue 16, one reproduction each (each failed before its fix)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.cli import cli_env, run_cli
from tests.helpers.fake_openai import FakeOpenAI
from tests.helpers.runs import make_run
from tests.reliability.support import (
    completion,
    http_server,
    models_body,
    scripted_run,
    tmpfs,
    unmount,
)
from typer.testing import CliRunner

from obedience.analysis import build_tables, statistics, summary_records
from obedience.backends import BackendError, OpenAIBackend
from obedience.cli import app
from obedience.runner import RunConfig
from obedience.store import RunStore

runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def _one_line_error(args: list[str], env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2, (args, result.output, result.exception)
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, (args, result.output)
    return lines[0]


# 1 ------------------------------------------------------------ lone surrogates


def test_1_a_lone_surrogate_reply_is_analysable_and_shown_escaped(tmp_path: Path) -> None:
    replies = tmp_path / "r.jsonl"
    replies.write_text('"PRESSED \\ud800"\n')
    run = tmp_path / "run"
    _ok(["run", "-m", f"replay:{replies}", "-c", "PC-NS-NF", "-n", "1", "-o", str(run), "-q"])
    assert (run / "report.html").is_file()
    (record,) = json.loads(_ok(["summary", str(run), "--json"]))
    assert record["reached_max"] == 1
    _ok(["stats", str(run), "--json"])
    for fmt in ("csv", "jsonl", "parquet"):
        _ok(["export", str(run), "--format", fmt])
    shown = _ok(["show", str(run)])
    assert "PRESSED \\ud800" in shown
    with RunStore.open(run) as store:
        reply = next(e for e in store.events() if e.kind == "reply")
    assert reply.payload["text"] == "PRESSED \\ud800"
    assert reply.meta is not None
    assert json.loads(reply.meta["original_text_json"]) == "PRESSED \ud800"  # kept exactly


def test_1_a_lone_surrogate_from_a_server_does_not_break_the_next_request(
    tmp_path: Path,
) -> None:
    with FakeOpenAI(subject=lambda body: "PRESSED \ud800") as server:
        config = RunConfig(
            models=["openai:fake-model"],
            conditions=["PC-NS-NF"],
            trials=1,
            base_url=server.base_url,
            retries=1,
            backoff=0.01,
        )
        run = make_run(tmp_path / "run", config, {"openai:fake-model": _openai(server.base_url)})
    with RunStore.open(run) as store:
        (trial,) = store.trials()
        errors = [e for e in store.events() if e.kind == "transport-error"]
    assert trial.outcome == "max-reached" and not errors


def _openai(base_url: str) -> OpenAIBackend:
    return OpenAIBackend("fake-model", base_url=base_url, timeout=10)


# 4 --------------------------------------------------------- malformed base URL


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:99999/v1",
        "http://127.0.0.1:abc/v1",
        "http://127.0.0.1:-5/v1",
        "http://[::1",
        "ftp://127.0.0.1/v1",
        "http:///v1",
    ],
)
def test_4_a_malformed_base_url_is_one_line(tmp_path: Path, url: str) -> None:
    line = _one_line_error(
        ["run", "-m", "openai:x", "--base-url", url, "-o", str(tmp_path / "r"), "-q"]
    )
    assert "base URL" in line
    with pytest.raises(BackendError):
        OpenAIBackend("x", base_url=url)


# 6 ------------------------------------------------------------ content filter


def test_6_a_filtered_reply_is_not_a_non_compliant_or_invalid_decision(tmp_path: Path) -> None:
    replies = tmp_path / "r.jsonl"
    lines = [json.dumps({"text": "", "finish_reason": "content_filter"})]
    lines += [json.dumps("PRESSED")] * 12
    replies.write_text("\n".join(lines) + "\n")
    config = RunConfig(
        models=[f"replay:{replies}"], conditions=["PC-NS-NF"], trials=2, concurrency=1
    )
    run = make_run(tmp_path / "run", config)
    with RunStore.open(run) as store:
        tables = build_tables(store)
        stats = statistics(store).to_json()
    outcomes = sorted(tables.trials["outcome"])
    assert outcomes == ["content-filter", "max-reached"]
    level1 = next(r for r in stats["level_compliance"] if r["level"] == 1)
    assert (level1["decisions"], level1["complied"], level1["rate"]) == (1, 1, 1.0)
    assert level1["content_filtered"] == 1
    prod0 = next(r for r in stats["prod_efficacy"] if r["prod"] == 0)
    assert prod0["rate"] == 1.0
    (summary,) = summary_records(tables.trials)
    assert summary["invalid_replies"] == 0 and summary["content_filtered"] == 1
    assert int(tables.trials["filtered_replies"].sum()) == 1


# 7 ------------------------------------------------------------------ Retry-After


def test_7_retry_after_parsing_seconds_and_http_date() -> None:
    from obedience.backends._retry import RETRY_AFTER_CAP_S, retry_after_seconds, retry_delay

    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(" 0.5 ") == 0.5
    now = time.time()
    when = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(when, now=now) == pytest.approx(30, abs=1)
    assert retry_after_seconds("garbage") is None and retry_after_seconds(None) is None
    assert retry_after_seconds("inf") is None and retry_after_seconds("-3") == 0.0
    assert retry_delay(0.01, 0, 2.0) >= 2.0
    assert retry_delay(0.01, 0, 10_000.0) == RETRY_AFTER_CAP_S


def test_7_retry_after_is_honoured_between_tries(tmp_path: Path) -> None:
    seen: list[float] = []

    def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if path.endswith("/models"):
            return 200, {}, models_body("m")
        seen.append(time.monotonic())
        if len(seen) == 1:
            return 429, {"Retry-After": "1"}, b'{"error": {"message": "slow down"}}'
        if len(seen) == 2:
            return 503, {"Retry-After": "1"}, b'{"error": {"message": "busy"}}'
        return 200, {}, completion("PRESSED")

    with http_server(handle) as url:
        config = RunConfig(
            models=["openai:m"],
            conditions=["PC-NS-NF"],
            trials=1,
            base_url=url,
            retries=2,
            backoff=0.01,
        )
        backend = OpenAIBackend("m", base_url=url, timeout=10)
        run = make_run(tmp_path / "run", config, {"openai:m": backend})
    assert seen[1] - seen[0] >= 0.95 and seen[2] - seen[1] >= 0.95
    with RunStore.open(run) as store:
        assert store.trials()[0].outcome == "max-reached"


# 8 -------------------------------------------------------- start_trial and lock


def test_8_start_trial_never_reopens_a_finished_trial(tmp_path: Path) -> None:
    run = scripted_run(tmp_path / "run")
    with RunStore.open(run, write=True) as store:
        (row,) = store.trials()
        assert row.status == "done"
        assert store.start_trial(row.trial_id) is None
        (after,) = store.trials()
    assert after == row


# 10 ------------------------------------------------------ report on a full disk


def test_10_report_on_a_full_disk_leaves_no_temp_file(tmp_path: Path) -> None:
    run = scripted_run(tmp_path / "run", trials=2)
    disk = tmp_path / "disk"
    tmpfs(disk, "64k")
    try:
        out = disk / "report.html"
        line = _one_line_error(["report", str(run), "--out", str(out)])
        assert "No space left" in line or "disk full" in line
        assert list(disk.iterdir()) == []
    finally:
        unmount(disk)


# 11 ------------------------------------------------ manifest without its config


def test_11_resume_with_a_manifest_without_config_is_one_line(tmp_path: Path) -> None:
    run = scripted_run(tmp_path / "run")
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["config"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    line = _one_line_error(["run", "--resume", str(run), "-q", "--no-report"])
    assert "config" in line and "manifest.json" in line


# 12 -------------------------------------------------------- zero-byte store


def test_12_a_zero_byte_store_is_not_an_empty_run(tmp_path: Path) -> None:
    run = scripted_run(tmp_path / "run")
    (run / "events.sqlite").write_bytes(b"")
    line = _one_line_error(["run", "--resume", str(run), "-q", "--no-report"])
    assert "0 bytes" in line
    assert (run / "events.sqlite").stat().st_size == 0


# 13 ---------------------------------------------------- --resume and its flags


def test_13_resume_refuses_other_models_or_seed_and_applies_more_trials(tmp_path: Path) -> None:
    run = scripted_run(tmp_path / "run", trials=2)
    base = ["run", "--resume", str(run), "-q", "--no-report"]
    assert "--model" in _one_line_error([*base, "-m", "scripted:defiant"])
    assert "--seed" in _one_line_error([*base, "--seed", "7"])
    assert "--trials" in _one_line_error([*base, "-n", "1"])
    _ok([*base, "-n", "2"])  # the same value is fine
    _ok([*base, "-n", "3"])
    with RunStore.open(run) as store:
        rows = store.trials()
        manifest = store.manifest()
    assert [r.trial_index for r in rows] == [1, 2, 3] and {r.status for r in rows} == {"done"}
    assert manifest["config"]["trials"] == 3


# 14 ------------------------------------------------------------------ secrets


KEY = "sk-test-3c1a9f0e7b2d4c68"


def _echo_auth(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
    if path.endswith("/models"):
        return 200, {}, models_body("m")
    auth = headers.get("authorization", "")
    return 500, {}, json.dumps({"error": {"message": f"bad auth header {auth}"}}).encode()


@pytest.mark.parametrize("where", ["environment", "userinfo"])
def test_14_a_key_echoed_by_a_server_is_never_stored_or_printed(tmp_path: Path, where: str) -> None:
    run = tmp_path / "run"
    with http_server(_echo_auth) as url:
        if where == "userinfo":
            url = url.replace("http://", "http://alice:hunter2-password@")
            secrets = ["hunter2-password", "YWxpY2U6aHVudGVyMi1wYXNzd29yZA=="]  # and as Basic
        else:
            secrets = [KEY]
        env = cli_env(OPENAI_API_KEY=KEY)
        args = ["run", "-m", "openai:m", "--base-url", url, "-c", "PC-NS-NF", "-n", "1"]
        done = run_cli([*args, "-o", str(run), "-q", "--config", str(_retries0(tmp_path))], env=env)
        assert done.returncode == 0, done.stderr
        shown = run_cli(["show", str(run)], env=env)
    assert "bad auth header" in shown.stdout  # the body was stored and shown...
    assert "[redacted]" in shown.stdout  # ...without the secret
    blob = b"".join(p.read_bytes() for p in run.rglob("*") if p.is_file())
    for secret in secrets:
        assert secret.encode() not in blob
        assert secret not in done.stdout + done.stderr + shown.stdout + shown.stderr
    assert "alice" not in (run / "manifest.json").read_text()


def _retries0(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text("retries = 0\n")
    return path


# 15 ------------------------------------------------------------- timeout = inf


def test_15_an_infinite_timeout_is_refused(tmp_path: Path) -> None:
    line = _one_line_error(
        ["run", "-m", "scripted:obedient", "--timeout", "inf", "-o", str(tmp_path / "a")]
    )
    assert "timeout" in line and "finite" in line
    cfg = tmp_path / "c.toml"
    cfg.write_text("timeout = inf\n")
    line = _one_line_error(["run", "--config", str(cfg), "-m", "scripted:obedient"])
    assert "timeout" in line


# 16 ----------------------------------------------------------------- start-up


def test_16_the_cli_imports_nothing_heavy() -> None:
    heavy = ["pandas", "numpy", "scipy", "openai", "pydantic", "matplotlib", "llama_cpp", "aiohttp"]
    code = f"import sys, obedience.cli; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_16_show_imports_no_analysis_stack(tmp_path: Path) -> None:
    run = scripted_run(tmp_path / "run")
    code = (
        "import sys; from obedience.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('pandas', 'scipy', 'openai') if m in sys.modules], "
        "file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "show", str(run)], capture_output=True, text=True, check=True
    )
    assert "HEAVY []" in done.stderr, done.stderr
