"""Run ``obedience`` in a subprocess, read a run directory, and wait for servers."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FAKE_SERVER = Path(__file__).resolve().with_name("fake_openai.py")
CLI = [sys.executable, "-c", "from obedience.cli import main; main()"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: no inherited API keys or base URLs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "OBEDIENCE_API", "OBEDIENCE_BASE"))
    }
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run_cli(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env or cli_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def popen_cli(args: list[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args],
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.strip().splitlines() if ln.strip()]


def summary_json(run_dir: Path) -> list[dict[str, Any]]:
    done = run_cli(["summary", str(run_dir), "--json"])
    assert done.returncode == 0, done.stderr
    records: list[dict[str, Any]] = json.loads(done.stdout)
    return records


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    """Wait until ``url`` answers 200, or fail (early, if ``proc`` exits)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


# ---------------------------------------------------------------- the run store, raw


def db(run_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{run_dir / 'events.sqlite'}?mode=ro", uri=True)


def trial_rows(run_dir: Path) -> dict[str, tuple[int, str, str | None]]:
    """trial_id -> (attempt, status, outcome)."""
    with db(run_dir) as conn:
        return {
            t: (a, s, o)
            for t, a, s, o in conn.execute("SELECT trial_id, attempt, status, outcome FROM trials")
        }


def event_kinds_by_attempt(run_dir: Path) -> dict[tuple[str, int], Counter[str]]:
    out: dict[tuple[str, int], Counter[str]] = {}
    with db(run_dir) as conn:
        for t, a, kind in conn.execute("SELECT trial_id, attempt, kind FROM events"):
            out.setdefault((t, a), Counter())[kind] += 1
    return out


def all_bytes(run_dir: Path) -> bytes:
    """Every byte of every file in a run directory (sqlite, WAL, manifest...)."""
    return b"".join(p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file())
