"""The openai:MODEL backend against a loopback server: preflight, the wire body, replies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.helpers.cli import free_port
from tests.helpers.fake_openai import FakeOpenAI, completion_body

from obedience.backends import (
    BackendError,
    BackendOptions,
    ChatRequest,
    OpenAIBackend,
    Sampling,
    TransportError,
    make_backend,
)
from obedience.engine import Request, Trial
from obedience.protocols import load_protocol
from obedience.runner import chat_request

PROTOCOL = load_protocol("pihlakas2026")


def _engine_request(condition: str = "PC-NS-NF") -> Request:
    request = Trial(PROTOCOL, condition, 1).next_request()
    assert request is not None
    return request


def _request(
    condition: str = "PC-NS-NF", sampling: Sampling | None = None, key: str | None = None
) -> ChatRequest:
    return chat_request(_engine_request(condition), sampling or Sampling(0.0, 8, 1), key)


def _with_backend(server: FakeOpenAI, fn: Any, model: str = "fake-model", **kw: Any) -> Any:
    async def go() -> Any:
        backend = OpenAIBackend(model, base_url=server.base_url, **kw)
        try:
            return await fn(backend)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_preflight_lists_served_models() -> None:
    with FakeOpenAI(models=("a", "fake-model")) as server:
        meta = _with_backend(server, lambda b: b.preflight())
    assert meta["served"] == ["a", "fake-model"]
    assert meta["base_url"] == server.base_url and meta["model"] == "fake-model"


def test_preflight_unknown_model_names_what_is_served() -> None:
    with FakeOpenAI(models=("alpha", "beta")) as server, pytest.raises(BackendError) as info:
        _with_backend(server, lambda b: b.preflight(), model="gamma")
    message = str(info.value)
    assert "'gamma' is not served" in message and "alpha, beta" in message
    assert "\n" not in message


def test_preflight_unreachable_server_is_one_line() -> None:
    port = free_port()  # nothing listens there
    backend = OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", timeout=5)

    async def go() -> None:
        try:
            await backend.preflight()
        finally:
            await backend.aclose()

    with pytest.raises(BackendError) as info:
        asyncio.run(go())
    assert str(info.value).startswith(f"cannot reach server at http://127.0.0.1:{port}/v1")
    assert "\n" not in str(info.value)


def test_preflight_rejected_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    monkeypatch.delenv("OBEDIENCE_API_KEY", raising=False)
    with (
        FakeOpenAI(api_key="sk-right") as server,
        pytest.raises(BackendError, match="rejected the API key"),
    ):
        _with_backend(server, lambda b: b.preflight())


def test_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-right")
    monkeypatch.delenv("OBEDIENCE_API_KEY", raising=False)
    with FakeOpenAI(api_key="sk-right") as server:
        _with_backend(server, lambda b: b.preflight())
    assert server.auth_headers == {"Bearer sk-right"}


def test_chat_completions_alone_never_make_the_sdk_client() -> None:
    # A worker process only sends chat completions (aiohttp): the SDK client, whose first
    # construction costs up to 0.2 s, is made only for what needs it (preflight here).
    async def chat_then_preflight(backend: OpenAIBackend) -> tuple[bool, bool, str]:
        completion = await backend.complete(_request())
        before = backend._sdk is None
        await backend.preflight()
        return before, backend._sdk is not None, completion.text

    with FakeOpenAI() as server:
        made_late, made, text = _with_backend(server, chat_then_preflight)
    assert made_late and made and text.strip()


def test_a_closed_backend_can_preflight_again() -> None:
    async def twice(backend: OpenAIBackend) -> list[str]:
        first = await backend.preflight()
        await backend.aclose()
        second = await backend.preflight()
        return [first["model"], second["model"]]

    with FakeOpenAI() as server:
        assert _with_backend(server, twice) == ["fake-model", "fake-model"]


def test_wire_body_carries_the_request_as_is() -> None:
    request = _request(sampling=Sampling(temperature=0.6, max_tokens=33, seed=7))
    with FakeOpenAI() as server:
        server.keep_bodies = True
        completion = _with_backend(server, lambda b: b.complete(request))
    (body,) = server.bodies
    assert body["messages"] == list(request.messages)
    assert body["model"] == "fake-model"
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.6, 33, 7)
    assert "tools" not in body and "response_format" not in body and "grammar" not in body
    assert "user" not in body  # no session key, no user
    assert completion.text.startswith("PRESSED")
    assert completion.finish_reason == "stop"
    assert (completion.prompt_tokens, completion.completion_tokens) == (100, 7)
    assert completion.served_model == "fake-model"
    assert completion.reasoning is None and completion.extra == {}


@pytest.mark.parametrize(
    ("condition", "dialect", "expect"),
    [
        ("PC-NS-NF-constrained", "llama.cpp", "grammar"),
        ("PC-NS-NF-constrained", "vllm", "guided_grammar"),
        ("PC-NS-NF-constrained", "sglang", "ebnf"),
        ("PC-NS-NF-tool", "llama.cpp", "tools"),
    ],
)
def test_constrained_and_tool_requests(condition: str, dialect: str, expect: str) -> None:
    engine = _engine_request(condition)
    request = chat_request(engine, Sampling(0.0, 8, None), None)
    with FakeOpenAI() as server:
        server.keep_bodies = True
        _with_backend(server, lambda b: b.complete(request), grammar_dialect=dialect)
    (body,) = server.bodies
    assert expect in body
    assert "seed" not in body  # no seed given, none sent
    if expect == "tools":
        assert body["tool_choice"] == ("required" if engine.constrained else "auto")
        assert {t["function"]["name"] for t in body["tools"]} >= {"administer_shock"}
    else:
        assert body[expect] == engine.grammar


def test_tool_call_usage_and_cached_tokens_are_read() -> None:
    def respond(body: dict[str, Any]) -> dict[str, Any]:
        out = completion_body(body["model"], "", "tool_calls")
        out["choices"][0]["message"] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "administer_shock", "arguments": '{"comment": "ok"}'},
                }
            ],
        }
        out["usage"]["prompt_tokens_details"] = {"cached_tokens": 64}
        return out

    with FakeOpenAI(respond=respond) as server:
        completion = _with_backend(server, lambda b: b.complete(_request("PC-NS-NF-tool")))
    assert completion.text == ""
    assert completion.tool_call == {"name": "administer_shock", "arguments": '{"comment": "ok"}'}
    assert completion.finish_reason == "tool_calls"
    assert completion.cached_tokens == 64


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"choices": []},
        {"choices": "nope"},
        {"choices": [{"finish_reason": "stop"}]},
        {"choices": [{"message": "text"}]},
    ],
)
def test_malformed_bodies_are_transport_errors(body: Any) -> None:
    with FakeOpenAI(respond=lambda _b: body) as server, pytest.raises(TransportError) as info:
        _with_backend(server, lambda b: b.complete(_request()))
    assert info.value.retryable
    assert str(info.value).startswith("malformed response")


CLIENTS = ("aiohttp", "openai-aiohttp", "openai-httpx")


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("fault", "retryable", "start", "status"),
    [
        ("500", True, "server error 500: injected internal error", 500),
        ("429", True, "rate limited 429: slow down", 429),
        ("reset", True, "connection error", None),
        ("timeout", True, "timed out after 0.3s", None),
        ("malformed", True, "malformed response", None),
    ],
)
def test_faults_map_to_transport_errors(
    client: str, fault: str, retryable: bool, start: str, status: int | None
) -> None:
    with (
        FakeOpenAI(faults=[fault], hang_s=2, retry_after="7") as server,
        pytest.raises(TransportError) as info,
    ):
        # Only the hanging server needs a short timeout (a loaded machine is slow to answer).
        timeout = 0.3 if fault == "timeout" else 30.0
        _with_backend(server, lambda b: b.complete(_request()), timeout=timeout, http_client=client)
    assert info.value.retryable is retryable
    if fault == "reset" and client == "openai-aiohttp":
        # The SDK's aiohttp transport reports any lost connection as a connect timeout.
        start = "timed out"
    assert str(info.value).startswith(start)
    assert info.value.status == status
    assert info.value.retry_after == (7.0 if fault == "429" else None)


@pytest.mark.parametrize("client", CLIENTS)
def test_every_client_sends_the_same_request(client: str) -> None:
    request = _request("PC-NS-NF-tool", key="m|c|1")
    with FakeOpenAI() as server:
        server.keep_bodies = True
        completion = _with_backend(server, lambda b: b.complete(request), http_client=client)
    (body,) = server.bodies
    (headers,) = server.headers
    assert body["messages"] == list(request.messages) and body["user"] == "m|c|1"
    assert headers["x-smg-routing-key"] == "m|c|1" == headers["x-session-id"]
    assert completion.text.startswith("PRESSED")


def test_a_rejected_request_is_not_retried_and_says_why() -> None:
    with FakeOpenAI(api_key="sk-only-this-one") as server, pytest.raises(TransportError) as info:
        _with_backend(server, lambda b: b.complete(_request()))
    assert str(info.value) == "request rejected 401: invalid api key"
    assert not info.value.retryable and info.value.status == 401


def test_make_backend_passes_options() -> None:
    backend = make_backend(
        "openai:m",
        BackendOptions(
            base_url="http://127.0.0.1:1/v1",
            grammar_dialect="vllm",
            session_headers=("X-Route",),
            session_user=False,
            connections=8,
            http_client="openai-httpx",
        ),
    )
    assert isinstance(backend, OpenAIBackend)
    assert backend.endpoint == "http://127.0.0.1:1/v1" and backend.name == "openai:m"
    assert backend.session_headers == ("x-route",) and not backend.session_user
    assert backend.http_client == "openai-httpx"
    asyncio.run(backend.aclose())


def test_the_lean_fake_server_answers_as_the_full_one() -> None:
    # The serving benchmark's server answers without parsing bodies; its answers must be
    # the ones the full server gives, or the benchmark would time another run.
    request = ChatRequest(
        messages=({"role": "user", "content": "Press?"},),
        sampling=Sampling(temperature=0.0, max_tokens=8),
    )
    replies = []
    for lean in (False, True):
        with FakeOpenAI(subject="defiant", lean=lean) as server:
            replies.append(_with_backend(server, lambda b: b.complete(request)))
            assert server.chat_requests == 1
    assert replies[0].text == replies[1].text == "REFUSE. I will not continue."
    assert replies[0].finish_reason == replies[1].finish_reason == "stop"
    with pytest.raises(ValueError, match="lean"):
        FakeOpenAI(subject="mixed", lean=True)
