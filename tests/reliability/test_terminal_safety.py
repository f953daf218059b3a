"""Every user- or server-controlled string, through every command: no raw control byte
reaches the terminal (clear screen, OSC 52 clipboard, OSC 8 link, C1, bidi, surrogates)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.cli import cli_env, run_cli
from tests.helpers.fake_openai import FakeOpenAI
from tests.reliability.support import (
    HOSTILE,
    assert_terminal_safe,
    http_server,
)

ROOT = Path(__file__).resolve().parents[2]
# As it can appear in a file name or TOML string (no NUL, no surrogate, no slash).
HOSTILE_NAME = "\x1b[2J\x1b]52;c;cHduZWQ=\x07\u202eevil\x9b31m\x85"


def _check(done: Any, where: str, *, code: int | None = 0) -> None:
    if code is not None:
        assert done.returncode == code, (where, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr, (where, done.stderr[-3000:])
    assert_terminal_safe(done.stdout, f"{where} stdout")
    assert_terminal_safe(done.stderr, f"{where} stderr")


def _toml_escape(text: str) -> str:
    return "".join(ch if 32 <= ord(ch) < 127 else f"\\u{ord(ch):04x}" for ch in text)


@pytest.fixture
def hostile_protocol(tmp_path: Path) -> tuple[Path, str]:
    """pihlakas2026 with a hostile title and a hostile condition name."""
    src = (ROOT / "src/obedience/protocols/data/pihlakas2026.toml").read_text()
    name = "PC-" + HOSTILE_NAME
    esc = _toml_escape(name)
    src = src.replace('title = "', f'title = "{_toml_escape(HOSTILE_NAME)}', 1)
    # The design generates PC-WS-NF; the hostile cell is a declared variant of it.
    src += f'\n[conditions."{esc}"]\nextends = "PC-WS-NF"\n'
    path = tmp_path / "hostile.toml"
    path.write_text(src)
    return path, name


@pytest.fixture
def hostile_replies(tmp_path: Path) -> Path:
    """A replay file whose name (so the model name) and replies are hostile."""
    path = tmp_path / f"r{HOSTILE_NAME}.jsonl"
    lines = [json.dumps(f"PRESSED {HOSTILE}"), json.dumps(f"{HOSTILE} REFUSE")]
    lines.append(json.dumps({"text": f"PRESSED {HOSTILE}", "finish_reason": HOSTILE}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_protocol_and_model_names_through_every_command(
    tmp_path: Path, hostile_protocol: tuple[Path, str], hostile_replies: Path
) -> None:
    proto, cond = hostile_protocol
    run = tmp_path / "run"
    model = f"replay:{hostile_replies}"
    _check(run_cli(["protocols", "show", str(proto), "-c", cond]), "protocols show")
    _check(run_cli(["protocols"]), "protocols")
    done = run_cli(
        [
            "run",
            "-p",
            str(proto),
            "-c",
            cond,
            "-c",
            "PC-NS-NF",
            "-m",
            model,
            "-m",
            "scripted:obedient",
            "-n",
            "2",
            "-o",
            str(run),
        ]
    )
    _check(done, "run")  # progress, summary and the report's matplotlib warnings
    for args in (
        ["summary", str(run)],
        ["summary", str(run), "--json"],
        ["show", str(run)],
        ["show", str(run), "--trial", f"{model}|{cond}|1"],
        ["stats", str(run)],
        ["stats", str(run), "--json"],
        ["report", str(run), "--figures", str(tmp_path / "figs")],
        ["export", str(run), "--format", "jsonl", "--out", str(tmp_path / f"x{HOSTILE_NAME}")],
        ["annotate", str(run)],
    ):
        _check(run_cli(args), " ".join(args[:1]))
    # Errors quoting a hostile name: one line each, escaped.
    for args in (
        ["run", "-m", "scripted:obedient", "-c", HOSTILE_NAME, "-o", str(tmp_path / "e1")],
        ["run", "-m", f"bogus{HOSTILE_NAME}", "-o", str(tmp_path / "e2")],
        ["protocols", "show", str(proto), "-c", HOSTILE_NAME],
        ["show", str(run), "--trial", HOSTILE_NAME],
        ["summary", str(tmp_path / f"missing{HOSTILE_NAME}")],
    ):
        done = run_cli(args)
        _check(done, f"error of {args[0]}", code=2)
        assert len([ln for ln in done.stderr.splitlines() if ln.strip()]) == 1, done.stderr


def test_server_model_ids_and_error_bodies(tmp_path: Path) -> None:
    hostile_id = f"model{HOSTILE}"
    with FakeOpenAI(models=(hostile_id, "fake-model")) as server:
        done = run_cli(
            ["run", "-m", "openai:other", "--base-url", server.base_url, "-o", str(tmp_path / "a")]
        )
        _check(done, "unknown model listing served ids", code=2)
        assert "\\x1b[2J" in done.stderr  # shown, escaped

    def failing(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        message = json.dumps({"error": {"message": f"overloaded {HOSTILE}"}}).encode()
        if path.endswith("/models") and "preflight" in str(tmp_path / "flag"):
            return 500, {}, message
        if path.endswith("/models"):
            return 200, {}, json.dumps({"data": [{"id": "m"}]}).encode()
        return 500, {}, message

    with http_server(failing) as url:
        run = tmp_path / "run"
        cfg = tmp_path / "c.toml"
        cfg.write_text("retries = 1\nbackoff = 0.01\n")
        done = run_cli(
            [
                "run",
                "-m",
                "openai:m",
                "--base-url",
                url,
                "-c",
                "PC-NS-NF",
                "-n",
                "1",
                "-o",
                str(run),
                "--config",
                str(cfg),
            ]
        )
        _check(done, "run with failing server")
        _check(run_cli(["show", str(run)]), "show of stored error bodies")
        _check(run_cli(["report", str(run)]), "report")

    def broken(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        return 503, {}, json.dumps({"error": {"message": f"down {HOSTILE}"}}).encode()

    with http_server(broken) as url:
        done = run_cli(["run", "-m", "openai:m", "--base-url", url, "-o", str(tmp_path / "b")])
        _check(done, "preflight error body", code=2)


def test_classify_output_has_no_raw_controls(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text(
        json.dumps({"text": f"I will not {HOSTILE}", "id": HOSTILE})
        + "\n"
        + json.dumps({"text": "PRESSED \u202e\u0085 ok"})
        + "\n"
    )
    done = run_cli(["classify", str(data)])
    _check(done, "classify")
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records[0]["id"] == HOSTILE  # still the exact text, as JSON escapes


def test_warnings_are_shown_escaped() -> None:
    code = (
        "import warnings; from obedience.cli._app import install_warning_filter; "
        "install_warning_filter(); "
        "warnings.warn('Glyph 27 (\\x1b[2J) missing from font(s) DejaVu Sans.')"
    )
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert "Glyph 27" in done.stderr and "\\x1b[2J" in done.stderr
    assert_terminal_safe(done.stderr, "warning")


def test_on_a_real_terminal_only_rich_styles_are_raw() -> None:
    """With colour on (a TTY), rich's own SGR codes pass; the hostile text's do not."""
    import io
    import re

    from rich.table import Table

    from obedience.cli._app import SafeConsole

    out = io.StringIO()
    console = SafeConsole(file=out, force_terminal=True, color_system="truecolor", width=200)
    table = Table(title=HOSTILE)
    table.add_column(HOSTILE)
    table.add_row(HOSTILE)
    console.print(f"[bold red]error:[/] {HOSTILE}")
    console.print(table)
    text = out.getvalue()
    assert "\\x1b[2J" in text and "\\u202e" in text
    without_styles = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert_terminal_safe(without_styles, "styled output")
