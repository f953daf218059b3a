"""A loopback OpenAI-compatible chat server for tests and benchmarks (standard library).

It answers ``GET /v1/models`` and ``POST /v1/chat/completions`` after a fixed latency, with
a reply chosen by a *subject* (a function of the request body), and can inject faults:

* ``"500"``        an HTTP 500 with a JSON error body
* ``"timeout"``    sleep past the client's timeout (``hang_s``), then drop the connection
* ``"reset"``      close the socket with SO_LINGER 0, so the client sees a connection reset
* ``"malformed"``  HTTP 200 whose body is not JSON
* ``"bad-shape"``  HTTP 200 with JSON that is not a chat completion
* ``"filter"``     a normal completion with ``finish_reason: "content_filter"``
* ``"401"``, ``"402"``, ``"403"``  an auth or quota refusal with a JSON error body
* ``"429"``        a rate limit, with ``Retry-After: 0``

* ``"429"``        an HTTP 429 with ``Retry-After: <retry_after>`` (when set)

Faults are consumed in order from ``faults`` (a queue shared by all requests), or chosen by
``fault_for(body)``; when neither gives one the request succeeds. With ``keep_bodies``
the server keeps every chat request's body (``bodies``) and headers (``headers``, names
lower-cased, the Authorization header left out). ``GET /stats`` answers the requests it
served and the CPU seconds its process used, from which a benchmark reads the server's
own ceiling. Use it in-process::

    with FakeOpenAI(latency=0.1) as server:
        server.base_url  # http://127.0.0.1:PORT/v1

or as a separate process (so it does not share the GIL with the client)::

    python tests/helpers/fake_openai.py --latency 0.1 --subject obedient
    # prints "PORT <n>" on its first line, then serves until killed

Several processes can serve one port (``--reuse-port``, SO_REUSEPORT: the kernel spreads
connections over them): start one with ``--port 0 --reuse-port``, then the others with
``--port <n> --reuse-port``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import signal
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

Body = dict[str, Any]
Subject = Callable[[Body], str]

FAULTS = ("500", "timeout", "reset", "malformed", "bad-shape", "filter", "401", "402", "403", "429")


def _last_user_text(body: Body) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return str(message["content"])
    return ""


def obedient(body: Body) -> str:
    """Complies in the first-word channel of pihlakas2026 (comply word PRESSED)."""
    return "PRESSED. Going on as instructed."


def mixed(body: Body) -> str:
    """Deterministic in the conversation so far: refuses about one decision in three.

    The reply is a pure function of the messages, so a resumed run and a clean run of the
    same trials give identical transcripts.
    """
    digest = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).digest()
    if digest[0] % 3 == 0:
        return "REFUSE. I will not hurt him any more."
    return "PRESSED. Going on."


def defiant(body: Body) -> str:
    """Refuses every time (a trial ends after the protocol's prods, in a few decisions)."""
    return "REFUSE. I will not continue."


SUBJECTS: dict[str, Subject] = {"obedient": obedient, "mixed": mixed, "defiant": defiant}


class FakeOpenAI:
    """The server; runs its own asyncio loop in a daemon thread (``start``/``stop``)."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        models: tuple[str, ...] = ("fake-model",),
        subject: Subject | str = obedient,
        faults: list[str] | None = None,
        fault_for: Callable[[Body], str | None] | None = None,
        hang_s: float = 5.0,
        port: int = 0,
        api_key: str | None = None,
        respond: Callable[[Body], Body] | None = None,
        retry_after: str | None = None,
        reuse_port: bool = False,
        lean: bool = False,
    ) -> None:
        self.latency = latency
        self.api_key = api_key  # when set, other keys get a 401
        self.respond = respond  # when set, builds the whole 200 body of a chat completion
        self.models = list(models)
        self.subject: Subject = SUBJECTS[subject] if isinstance(subject, str) else subject
        self.faults: deque[str] = deque(faults or [])
        self.fault_for = fault_for
        self.hang_s = hang_s
        self.lock = threading.Lock()
        self.chat_requests = 0
        self.model_requests = 0
        self.injected: list[str] = []
        self.auth_headers: set[str] = set()
        self.bodies: list[Body] = []
        self.headers: list[dict[str, str]] = []
        self.keep_bodies = False
        self.retry_after = retry_after
        # Lean (benchmarks): every chat request gets the same prepared answer, without the
        # body being parsed, so the server spends little of a shared machine's CPU.
        self._lean_answer: bytes | None = None
        self._lateness = 0.0  # how late the lean server's timers fire, a running mean
        self.served_latency_s = 0.0  # summed over its chat requests
        if lean:
            if self.subject not in (obedient, defiant) or faults or fault_for or respond:
                raise ValueError("lean serves a fixed answer: obedient or defiant, no faults")
            answer = completion_body(self.models[0], self.subject({}))
            self._lean_answer = json.dumps(answer).encode()
        self._sock = socket.create_server(("127.0.0.1", port), backlog=4096, reuse_port=reuse_port)
        self._port = int(self._sock.getsockname()[1])
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=lambda: asyncio.run(self.serve()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, sock=self._sock)
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                task.cancel()

    # ------------------------------------------------------------------- requests

    def next_fault(self, body: Body, headers: dict[str, str] | None = None) -> str | None:
        with self.lock:
            self.chat_requests += 1
            if self.keep_bodies:
                self.bodies.append(body)
                self.headers.append(
                    {k: v for k, v in (headers or {}).items() if k != "authorization"}
                )
            fault = self.faults.popleft() if self.faults else None
        if fault in (None, "ok") and self.fault_for is not None:
            fault = self.fault_for(body)
        if fault in (None, "ok"):
            return None
        with self.lock:
            self.injected.append(str(fault))
        return fault

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    return
                method, path, headers, raw = request
                auth = headers.get("authorization")
                if auth:
                    with self.lock:
                        self.auth_headers.add(auth)
                keep = await self._respond(
                    method, path.split("?")[0].rstrip("/"), raw, writer, headers
                )
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:  # the server is stopping
            writer.transport.abort()
            return
        finally:
            if not writer.transport.is_closing():
                writer.close()

    async def _lean_wait(self, latency: float) -> None:
        """Wait ``latency`` seconds from now, on average exactly (the lean server only).

        asyncio's timers fire late: epoll waits whole milliseconds, rounded up, so a plain
        ``sleep(latency)`` added 0.5-1 ms of the server's own to every request. The lean
        server aims that much earlier, by a running mean of how late its timers fired, so
        the latency it serves is the latency asked for (``served_latency_s`` in its
        statistics, for the benchmark to print)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        target = start + latency - self._lateness
        await asyncio.sleep(max(0.0, target - start))
        now = loop.time()
        self._lateness += 0.05 * ((now - target) - self._lateness)
        self._lateness = min(max(self._lateness, 0.0), 0.005)
        self.served_latency_s += now - start

    async def _respond(
        self,
        method: str,
        path: str,
        raw: bytes,
        writer: asyncio.StreamWriter,
        headers: dict[str, str],
    ) -> bool:
        """Answer one request; returns whether the connection stays open."""
        auth = headers.get("authorization")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return await _send(writer, 401, {"error": {"message": "invalid api key"}})
        if method == "GET" and path.endswith("/stats"):
            stats = {"chat_requests": self.chat_requests, "cpu_s": time.process_time()}
            return await _send(writer, 200, stats)
        if method == "GET" and path.endswith("/models"):
            with self.lock:
                self.model_requests += 1
            data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models]
            return await _send(writer, 200, {"object": "list", "data": data})
        if (
            self._lean_answer is not None
            and method == "POST"
            and path.endswith("/chat/completions")
        ):
            with self.lock:
                self.chat_requests += 1
            if self.latency > 0:
                await self._lean_wait(self.latency)
            return await _send(writer, 200, self._lean_answer)
        if method != "POST" or not path.endswith("/chat/completions"):
            return await _send(writer, 404, {"error": {"message": f"no route {method} {path}"}})
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return await _send(writer, 400, {"error": {"message": "request body is not JSON"}})
        fault = self.next_fault(body, headers)
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        model = str(body.get("model", "fake-model"))
        if fault == "500":
            return await _send(writer, 500, {"error": {"message": "injected internal error"}})
        if fault in ("401", "402", "403"):
            return await _send(writer, int(fault), {"error": {"message": f"injected {fault}"}})
        if fault == "429":
            extra = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return await _send(writer, 429, {"error": {"message": "slow down"}}, extra)
        if fault == "timeout":
            await asyncio.sleep(self.hang_s)
            writer.close()
            return False
        if fault == "reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if fault == "malformed":
            return await _send(writer, 200, b'{"id": "chatcmpl-x", "choices": [{"index": 0, "mess')
        if fault == "bad-shape":
            return await _send(writer, 200, {"object": "chat.completion", "choices": "nope"})
        if fault == "filter":
            return await _send(writer, 200, completion_body(model, "", "content_filter"))
        if self.respond is not None:
            return await _send(writer, 200, self.respond(body))
        return await _send(writer, 200, completion_body(model, self.subject(body)))


async def read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str], bytes] | None:
    """One HTTP/1.1 request: method, path, lower-cased headers and body; None at the end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = [*lines[0].split(" "), "", ""][:3]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length") or 0))
    return method, path, headers, body


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


async def _send(
    writer: asyncio.StreamWriter,
    status: int,
    payload: Any,
    headers: dict[str, str] | None = None,
) -> bool:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n{extra}"
        "Connection: keep-alive\r\n\r\n".encode()
        + data
    )
    await writer.drain()
    return True


def completion_body(
    model: str,
    text: str | None,
    finish_reason: str = "stop",
    *,
    message: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
    **fields: Any,
) -> Body:
    """A chat completion: ``text`` as the content, ``message`` merged into the message
    (``reasoning_content``, ``reasoning``...), ``usage`` into the usage and ``fields``
    into the body (``system_fingerprint``, ``provider``...)."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, **(message or {})},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 7,
            "total_tokens": 107,
            **(usage or {}),
        },
        **fields,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--subject", choices=sorted(SUBJECTS), default="obedient")
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--reuse-port", action="store_true", help="share the port (SO_REUSEPORT)")
    parser.add_argument("--lean", action="store_true", help="a fixed answer, bodies not parsed")
    args = parser.parse_args(argv)
    server = FakeOpenAI(
        latency=args.latency,
        subject=args.subject,
        models=tuple(args.model or ["fake-model"]),
        port=args.port,
        reuse_port=args.reuse_port,
        lean=args.lean,
    )
    print(f"PORT {server.port}", flush=True)

    async def serve_until_terminated() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await server.serve()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_terminated())
    # What this process served and the CPU it used: a benchmark reads the server's ceiling.
    stats = {
        "chat_requests": server.chat_requests,
        "cpu_s": time.process_time(),
        "served_latency_s": server.served_latency_s,
    }
    print(f"STATS {json.dumps(stats)}", flush=True)


if __name__ == "__main__":
    main()
