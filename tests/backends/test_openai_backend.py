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
    OpenAIBackend,
    Sampling,
    TransportError,
    make_backend,
)
from obedience.engine import Trial
from obedience.protocols import load_protocol

PROTOCOL = load_protocol("pihlakas2026")


def _request(condition: str = "PC-NS-NF") -> Any:
    request = Trial(PROTOCOL, condition, 1).next_request()
    assert request is not None
    return request


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


def test_wire_body_carries_the_request_as_is() -> None:
    request = _request()
    with FakeOpenAI() as server:
        server.keep_bodies = True
        completion = _with_backend(
            server, lambda b: b.complete(request, Sampling(temperature=0.6, max_tokens=33, seed=7))
        )
    (body,) = server.bodies
    assert body["messages"] == list(request.messages)
    assert body["model"] == "fake-model"
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.6, 33, 7)
    assert "tools" not in body and "response_format" not in body and "grammar" not in body
    assert completion.text.startswith("PRESSED")
    assert completion.finish_reason == "stop"
    assert (completion.prompt_tokens, completion.completion_tokens) == (100, 7)
    assert completion.extra == {"served_model": "fake-model"}


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
    request = _request(condition)
    with FakeOpenAI() as server:
        server.keep_bodies = True
        _with_backend(
            server,
            lambda b: b.complete(request, Sampling(0.0, 8, None)),
            grammar_dialect=dialect,
        )
    (body,) = server.bodies
    assert expect in body
    assert "seed" not in body  # no seed given, none sent
    if expect == "tools":
        assert body["tool_choice"] in ("auto", "required")
        assert {t["function"]["name"] for t in body["tools"]} >= {"administer_shock"}
    else:
        assert body[expect] == request.grammar


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
        completion = _with_backend(
            server, lambda b: b.complete(_request("PC-NS-NF-tool"), Sampling(0.0, 8, 1))
        )
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
        _with_backend(server, lambda b: b.complete(_request(), Sampling(0.0, 8, 1)))
    assert info.value.retryable
    assert str(info.value).startswith("malformed response")


@pytest.mark.parametrize(
    ("fault", "retryable", "start"),
    [
        ("500", True, "server error 500"),
        ("reset", True, "APIConnectionError"),
        ("timeout", True, "APITimeoutError"),
        ("malformed", True, "malformed response"),
    ],
)
def test_faults_map_to_transport_errors(fault: str, retryable: bool, start: str) -> None:
    with FakeOpenAI(faults=[fault], hang_s=2) as server, pytest.raises(TransportError) as info:
        _with_backend(server, lambda b: b.complete(_request(), Sampling(0.0, 8, 1)), timeout=0.3)
    assert info.value.retryable is retryable
    assert str(info.value).startswith(start)


def test_make_backend_passes_options() -> None:
    backend = make_backend(
        "openai:m", BackendOptions(base_url="http://127.0.0.1:1/v1", grammar_dialect="vllm")
    )
    assert isinstance(backend, OpenAIBackend)
    assert backend.endpoint == "http://127.0.0.1:1/v1" and backend.name == "openai:m"
    asyncio.run(backend.aclose())
