"""Every request of a trial carries the trial id as its session key, so that a router with
session affinity keeps the trial on one replica: as the ``user`` field and in the
configured headers (by default sglang-router's ``x-smg-routing-key`` and ``x-session-id``).

The loopback server records the headers and bodies it saw.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.fake_openai import FakeOpenAI

import obedience
from obedience.backends import (
    DEFAULT_SESSION_HEADERS,
    BackendError,
    ChatRequest,
    OpenAIBackend,
    Sampling,
)
from obedience.backends._openai import header_value
from obedience.runner import RunConfig

MODEL = "openai:fake-model"


def _run(tmp_path: Path, **config: Any) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    with FakeOpenAI(subject="mixed") as server:
        server.keep_bodies = True
        run_config = RunConfig(
            models=[MODEL],
            conditions=["PC-NS-NF"],
            trials=3,
            concurrency=3,
            base_url=server.base_url,
            **config,
        )
        obedience.run(run_config, tmp_path / "run", label=False, report=False)
        return list(server.bodies), list(server.headers)


def test_every_request_of_a_trial_carries_its_trial_id(tmp_path: Path) -> None:
    bodies, headers = _run(tmp_path)
    assert DEFAULT_SESSION_HEADERS == ("x-smg-routing-key", "x-session-id")
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, (body, seen) in enumerate(zip(bodies, headers, strict=True)):
        key = body["user"]
        assert seen["x-smg-routing-key"] == key == seen["x-session-id"]
        by_key[key].append(i)
    assert set(by_key) == {f"{MODEL}|PC-NS-NF|{i}" for i in (1, 2, 3)}
    # The three trials ran side by side, so their requests interleave on the wire.
    assert sum(len(v) for v in by_key.values()) == len(bodies) > 3
    # Within a trial each request extends the one before (one conversation per key).
    for indices in by_key.values():
        lengths = [len(bodies[i]["messages"]) for i in indices]
        assert lengths == sorted(lengths)


def test_the_session_headers_are_configurable(tmp_path: Path) -> None:
    bodies, headers = _run(tmp_path, session_headers=["X-Affinity"])
    assert bodies and all(set(h) & {"x-smg-routing-key", "x-session-id"} == set() for h in headers)
    assert [h["x-affinity"] for h in headers] == [b["user"] for b in bodies]


def test_no_session_headers_when_disabled(tmp_path: Path) -> None:
    bodies, headers = _run(tmp_path, session_headers=[])
    assert bodies and not any("x-smg-routing-key" in h or "x-session-id" in h for h in headers)
    assert all(b["user"].startswith(MODEL) for b in bodies)  # the user field stays


def test_a_request_without_a_session_key_sends_none() -> None:
    async def go(server: FakeOpenAI) -> None:
        backend = OpenAIBackend("fake-model", base_url=server.base_url, session_user=True)
        try:
            await backend.complete(
                ChatRequest(messages=[{"role": "user", "content": "hi"}], sampling=Sampling(0, 4))
            )
        finally:
            await backend.aclose()

    with FakeOpenAI() as server:
        server.keep_bodies = True
        asyncio.run(go(server))
    (body,), (headers,) = server.bodies, server.headers
    assert "user" not in body and "x-smg-routing-key" not in headers


def test_a_key_that_is_not_plain_ascii_is_percent_encoded() -> None:
    async def go(server: FakeOpenAI) -> None:
        backend = OpenAIBackend("fake-model", base_url=server.base_url)
        try:
            request = ChatRequest(
                messages=[{"role": "user", "content": "hi"}],
                sampling=Sampling(0, 4),
                session_key="openai:modèle|PC\r\nX-Injected: 1|1",
            )
            await backend.complete(request)
        finally:
            await backend.aclose()

    with FakeOpenAI() as server:
        server.keep_bodies = True
        asyncio.run(go(server))
    (headers,) = server.headers
    assert "x-injected" not in headers  # no header splitting
    assert headers["x-smg-routing-key"] == "openai:mod%C3%A8le|PC%0D%0AX-Injected:%201|1"
    assert server.bodies[0]["user"] == "openai:modèle|PC\r\nX-Injected: 1|1"
    assert header_value("plain|key|1") == "plain|key|1"


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("bad header",), "is not an HTTP header name"),
        (("",), "is not an HTTP header name"),
        (("Authorization",), "is reserved"),
        (("x-ok", "x\nbad"), "is not an HTTP header name"),
    ],
)
def test_bad_session_header_names_are_one_line_errors(names: tuple[str, ...], message: str) -> None:
    with pytest.raises(BackendError, match=message) as info:
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", session_headers=names)
    assert "\n" not in str(info.value)


def test_a_backend_serves_one_event_loop_after_another() -> None:
    """``obedience.run`` starts a new event loop per call; a backend passed to two runs works."""
    request = ChatRequest(messages=[{"role": "user", "content": "hi"}], sampling=Sampling(0, 4))
    with FakeOpenAI() as server:
        backend = OpenAIBackend("fake-model", base_url=server.base_url)
        first = asyncio.run(backend.complete(request))
        second = asyncio.run(backend.complete(request))
        asyncio.run(backend.aclose())
    assert first.text == second.text != "" and server.chat_requests == 2
