"""Scoring through an OpenAI-compatible server's top_logprobs (stubbed client)."""

from __future__ import annotations

import asyncio
import math
from types import SimpleNamespace
from typing import Any

import pytest

from obedience.backends import BackendError, OpenAIBackend, ScriptedBackend
from obedience.backends._logprobs import parse_chat_first_token
from obedience.probe import require_scoring
from obedience.protocols import load_protocol


def _response(top: dict[str, float], sampled: str = "I") -> Any:
    entry = SimpleNamespace(
        token=sampled,
        logprob=top.get(sampled, -9.0),
        top_logprobs=[SimpleNamespace(token=t, logprob=lp) for t, lp in top.items()],
    )
    return SimpleNamespace(choices=[SimpleNamespace(logprobs=SimpleNamespace(content=[entry]))])


def test_single_token_is_exact_longer_is_a_first_token_bound() -> None:
    resp = _response({"PRESSED": -0.5, "REF": -2.0, "RE": -3.0, "I": -1.5})
    comply, refuse = parse_chat_first_token(resp, ["PRESSED", "REFUSE"])
    assert comply.logprob == -0.5 and comply.exact
    # The longest matching first token is used, and flagged as a bound.
    assert refuse.logprob == -2.0 and refuse.tokens == ["REF"] and not refuse.exact


def test_missing_first_token_and_missing_logprobs() -> None:
    comply, _refuse = parse_chat_first_token(_response({"I": -0.1}), ["PRESSED", "REFUSE"])
    assert comply.logprob == -math.inf and not comply.exact
    assert "top 20" in comply.note
    empty = SimpleNamespace(choices=[SimpleNamespace(logprobs=None)])
    with pytest.raises(LookupError):
        parse_chat_first_token(empty, ["PRESSED"])


class _StubCompletions:
    def __init__(self, resp: Any) -> None:
        self.resp = resp
        self.kwargs: dict[str, Any] = {}

    async def create(self, **kwargs: Any) -> Any:
        self.kwargs = kwargs
        return self.resp


def test_openai_backend_scores_and_asks_for_top_logprobs() -> None:
    backend = OpenAIBackend("stub", base_url="http://127.0.0.1:9/v1")
    stub = _StubCompletions(_response({"PRESSED": -0.2, "REF": -1.8}))
    backend._sdk = SimpleNamespace(  # type: ignore[assignment]
        chat=SimpleNamespace(completions=stub), close=lambda: None
    )
    messages = [{"role": "user", "content": "press"}]
    scores = asyncio.run(backend.score_continuations(messages, ["PRESSED", "REFUSE"]))
    assert scores == [-0.2, -1.8]
    assert stub.kwargs["logprobs"] is True and stub.kwargs["top_logprobs"] == 20
    assert stub.kwargs["max_tokens"] == 1 and stub.kwargs["messages"] == messages
    with pytest.raises(BackendError, match="cannot score"):
        asyncio.run(backend.score_continuations(messages, [" SHOCK"], prefix="ACTION:"))
    stub.resp = SimpleNamespace(choices=[SimpleNamespace(logprobs=None)])
    with pytest.raises(BackendError, match="no logprobs"):
        asyncio.run(backend.score_continuations(messages, ["PRESSED"]))


def test_require_scoring_refuses_backends_without_logprobs() -> None:
    protocol = load_protocol("pihlakas2026")
    with pytest.raises(BackendError, match="no log-probabilities"):
        require_scoring(ScriptedBackend("obedient"), protocol.condition("PC-NS-NF"))
    openai_backend = OpenAIBackend("stub", base_url="http://127.0.0.1:9/v1")
    action_line = protocol.condition("PC-NS-NF")
    action_line = action_line.model_copy(
        update={"channel": action_line.channel.model_copy(update={"kind": "action-line"})}
    )
    with pytest.raises(BackendError, match="first-word"):
        require_scoring(openai_backend, action_line)
    assert require_scoring(openai_backend, protocol.condition("PC-NS-NF")) is openai_backend
