"""A tiny HTTP proxy on loopback that records every request it forwards to one server.

It stands in front of a model server (a llama-cpp-python server, say) and writes one JSON
line per request to ``log``: method, path, the ``user`` field of a JSON body and the
routing headers. It also answers ``GET /health`` itself (routers such as sglang-router
check it; llama-cpp-python's server has no such route). Run it as a process::

    python -m tests.helpers.recording_proxy --port P --upstream http://127.0.0.1:Q --log FILE

It prints ``PORT <n>`` once listening. A body's ``max_completion_tokens`` (what
sglang-router sends) is forwarded as ``max_tokens`` too, which llama-cpp-python reads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
from pathlib import Path
from typing import Any

import httpx
from tests.helpers.fake_openai import read_request

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class RecordingProxy:
    def __init__(self, upstream: str, log: Path, port: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.log = log
        self._sock = socket.create_server(("127.0.0.1", port), backlog=256)
        self.port = int(self._sock.getsockname()[1])
        self._client = httpx.AsyncClient(timeout=600)

    async def serve(self) -> None:
        server = await asyncio.start_server(self._connection, sock=self._sock)
        async with server:
            await server.serve_forever()

    def _record(self, entry: dict[str, Any]) -> None:
        with self.log.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    return
                method, path, headers, body = request
                if method == "GET" and path.rstrip("/") == "/health":
                    status, out_headers, data = 200, {"content-type": "application/json"}, b"{}"
                else:
                    status, out_headers, data = await self._forward(method, path, headers, body)
                writer.write(
                    f"HTTP/1.1 {status} Status\r\nContent-Length: {len(data)}\r\n".encode()
                    + "".join(f"{k}: {v}\r\n" for k, v in out_headers.items()).encode()
                    + b"Connection: keep-alive\r\n\r\n"
                    + data
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            if not writer.transport.is_closing():
                writer.close()

    async def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        user = None
        keys: list[str] = []
        if body:
            with contextlib.suppress(ValueError, AttributeError):
                data = json.loads(body)
                user = data.get("user")
                keys = sorted(data)
                # sglang-router sends the cap as ``max_completion_tokens`` only, which
                # llama-cpp-python's server does not read: hand it on as ``max_tokens``.
                if "max_completion_tokens" in data and "max_tokens" not in data:
                    data["max_tokens"] = data["max_completion_tokens"]
                    body = json.dumps(data).encode()
        self._record(
            {
                "method": method,
                "path": path,
                "user": user,
                "keys": keys,
                "routing_key": headers.get("x-smg-routing-key"),
                "session_id": headers.get("x-session-id"),
            }
        )
        sent = {k: v for k, v in headers.items() if k not in HOP_BY_HOP}
        resp = await self._client.request(method, self.upstream + path, headers=sent, content=body)
        kept = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
        kept.pop("content-encoding", None)  # httpx has decoded the body
        return resp.status_code, kept, resp.content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    proxy = RecordingProxy(args.upstream, args.log, args.port)
    print(f"PORT {proxy.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(proxy.serve())


if __name__ == "__main__":
    main()
