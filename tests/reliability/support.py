"""Shared pieces of the reliability tests: hostile strings, a scriptable loopback HTTP
server, a scripted run, and checks that text is safe for a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.runs import make_run

from obedience.runner import RunConfig

# Clear screen, OSC 52 clipboard write, OSC 8 hyperlink, CSI via C1, bidi override, a NEL
# and a lone surrogate: each would act on a terminal (or fail to encode) if printed raw.
HOSTILE = (
    "\x1b[2J\x1b]52;c;cHduZWQ=\x07\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
    "\u202eevil\u2066\x9b31m\x85\r\x07\ud800"
)

BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def unsafe_chars(text: str) -> list[str]:
    """Characters that can drive a terminal (all controls but newline and tab) or that
    are not encodable (surrogates)."""
    bad = []
    for ch in text:
        c = ord(ch)
        if (c < 32 and ch not in "\n\t") or 0x7F <= c < 0xA0 or c in BIDI or 0xD800 <= c <= 0xDFFF:
            bad.append(ch)
    return bad


def assert_terminal_safe(text: str, where: str) -> None:
    bad = unsafe_chars(text)
    assert not bad, f"{where}: raw control characters reached the output: {bad[:10]!r}"


def assert_bytes_terminal_safe(data: bytes, where: str) -> None:
    assert_terminal_safe(data.decode("utf-8", "surrogateescape"), where)


def scripted_run(run_dir: Path, model: str = "scripted:obedient", trials: int = 1) -> Path:
    config = RunConfig(models=[model], conditions=["PC-NS-NF"], trials=trials, concurrency=1)
    return make_run(run_dir, config)


Handler = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


@contextmanager
def http_server(handle: Handler) -> Iterator[str]:
    """A loopback HTTP server answering every request with ``handle``; yields the /v1 URL."""

    class _H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, payload = handle(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def models_body(*ids: str) -> bytes:
    return json.dumps(
        {"object": "list", "data": [{"id": i, "object": "model"} for i in ids]}
    ).encode()


def completion(text: str, model: str = "m", finish: str = "stop") -> bytes:
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        }
    ).encode()


def bind_read_only(source: Path, target: Path) -> None:
    """Expose ``source`` read-only at ``target`` (root only; skips otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    target.mkdir(parents=True, exist_ok=True)
    steps = [
        ["mount", "--bind", str(source), str(target)],
        ["mount", "-o", "remount,ro,bind", str(target)],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)
            pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()}")


def tmpfs(target: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def unmount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)
