"""``obedience run`` / ``summary`` / ``show`` against loopback servers and replay files."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli import all_bytes, cli_env, free_port, run_cli
from tests.helpers.fake_openai import FakeOpenAI
from typer.testing import CliRunner

from obedience.cli import app

runner = CliRunner()


def _one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return str(lines[0])


def _fast_retries(tmp_path: Path, retries: int = 1) -> Path:
    cfg = tmp_path / "fast.toml"
    cfg.write_text(f"retries = {retries}\ntimeout = 0.5\nbackoff = 0.01\nconcurrency = 1\n")
    return cfg


def test_faults_end_as_errors_that_summary_reports_apart(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # trial 1: both tries fail -> error; trial 2: filtered; trial 3: one reset, then fine.
    faults = ["500", "malformed", "filter", "reset"]
    with FakeOpenAI(faults=faults) as server:
        result = runner.invoke(
            app,
            [
                "run",
                "-m",
                "openai:fake-model",
                "--base-url",
                server.base_url,
                "-c",
                "PC-NS-NF",
                "-n",
                "3",
                "--config",
                str(_fast_retries(tmp_path)),
                "-o",
                str(out),
                "-q",
                "--no-report",
            ],
        )
    assert result.exit_code == 0, result.output
    assert "errors are not refusals" in result.stdout
    summary = runner.invoke(app, ["summary", str(out), "--json"])
    assert summary.exit_code == 0
    (record,) = json.loads(summary.stdout)
    assert record["trials"] == 3
    assert record["errors"] == 1
    assert record["content_filtered"] == 1
    assert record["completed"] == 1
    assert record["reached_max"] == 1 and record["reached_max_rate"] == 1.0
    assert record["mean_highest"] == 12.0  # the errored trial's level 0 is not averaged in

    shown = runner.invoke(app, ["show", str(out), "--trial", "openai:fake-model|PC-NS-NF|1"])
    assert "transport error (not a refusal)" in shown.stdout
    assert "gave up after 2 tries" in shown.stdout
    assert "prod" not in shown.stdout.lower()


def test_show_makes_control_characters_in_model_output_harmless(tmp_path: Path) -> None:
    replies = [
        "\x1b[2J\x1b[HPRESSED. I cleared your screen",
        "PRESSED. \x1b]0;pwned title\x07 and \x1b[31mred",
        "PRESSED. \u202eesrever\u202c and \u2066isolate\u2069 \u200f",
        "PRESSED. back\x08\x08space, \rcarriage, \x9b31m C1, \x7f del",
    ]
    replay = tmp_path / "replies.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in replies), encoding="utf-8")
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["run", "-m", f"replay:{replay}", "-c", "PC-NS-NF", "-n", "1", "-o", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, ["show", str(out)])
    assert shown.exit_code == 0
    text = shown.stdout
    dangerous = ["\x1b", "\x07", "\x08", "\r", "\x9b", "\x7f", "\u202e", "\u202c", "\u2066"]
    dangerous += ["\u2069", "\u200f"]
    assert [c for c in dangerous if c in text] == []
    # The characters are shown, as escapes, not dropped.
    for escaped in ("\\x1b[2J", "\\x1b]0;pwned title\\x07", "\\u202e", "\\x08", "\\x0d"):
        assert escaped in text, escaped
    assert "\\u009b" in text or "\\x9b" in text
    assert "I cleared your screen" in text


def test_api_key_is_never_written_or_printed(tmp_path: Path) -> None:
    secret = "sk-test-SECRET"
    out = tmp_path / "run"
    env = cli_env(OPENAI_API_KEY=secret)
    with FakeOpenAI(api_key=secret) as server:
        done = run_cli(
            [
                "run",
                "-m",
                "openai:fake-model",
                "--base-url",
                server.base_url,
                "-c",
                "PC-NS-NF",
                "-n",
                "1",
                "-o",
                str(out),
                "--no-report",
            ],
            env=env,
        )
        assert done.returncode == 0, done.stderr
        # The key was really used, and accepted.
        assert server.auth_headers == {f"Bearer {secret}"}
        # A rejected key is reported without echoing it either.
        bad = run_cli(
            [
                "run",
                "-m",
                "openai:fake-model",
                "--base-url",
                server.base_url,
                "-o",
                str(tmp_path / "bad"),
            ],
            env=cli_env(OPENAI_API_KEY="sk-test-OTHER-SECRET"),
        )
    assert bad.returncode == 2 and "rejected the API key" in bad.stderr
    assert "OTHER-SECRET" not in bad.stdout + bad.stderr
    summary = runner.invoke(app, ["summary", str(out)])
    show = runner.invoke(app, ["show", str(out)])
    printed = done.stdout + done.stderr + summary.output + show.output
    assert secret not in printed
    blob = all_bytes(out)
    assert (out / "manifest.json").is_file() and (out / "events.sqlite").is_file()
    assert secret.encode() not in blob
    assert "SECRET".encode("utf-16-le") not in blob


def test_preflight_errors_are_one_line_and_leave_no_run_directory(tmp_path: Path) -> None:
    port = free_port()
    base = ["run", "-c", "PC-NS-NF", "-q", "--no-report"]
    line = _one_line_error(
        runner.invoke(
            app,
            [
                *base,
                "-m",
                "openai:m",
                "--base-url",
                f"http://127.0.0.1:{port}/v1",
                "-o",
                str(tmp_path / "a"),
            ],
        )
    )
    assert f"cannot reach server at http://127.0.0.1:{port}/v1" in line
    assert not (tmp_path / "a").exists()

    with FakeOpenAI(models=("served-one", "served-two")) as server:
        line = _one_line_error(
            runner.invoke(
                app,
                [
                    *base,
                    "-m",
                    "openai:missing",
                    "--base-url",
                    server.base_url,
                    "-o",
                    str(tmp_path / "b"),
                ],
            )
        )
    assert "'missing' is not served" in line and "served-one, served-two" in line
    assert not (tmp_path / "b").exists()


def test_backoff_setting_is_validated(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('models = ["scripted:obedient"]\nbackoff = -1\n')
    line = _one_line_error(
        runner.invoke(app, ["run", "--config", str(cfg), "-o", str(tmp_path / "r")])
    )
    assert "bad.toml" in line and "backoff" in line
