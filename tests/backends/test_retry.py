"""The one retry loop that the runner and the judge share."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tests.helpers.fake_openai import FakeOpenAI

from obedience.backends import BackendError, RetryPolicy, TransportError, with_retries
from obedience.backends._retry import RETRY_AFTER_CAP_S
from obedience.judging import ChatTransport
from obedience.judging._transport import TransportFault


def _flaky(faults: list[BaseException]) -> tuple[Any, list[int]]:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if faults:
            raise faults.pop(0)
        return "ok"

    return call, calls


def _run(call: Any, policy: RetryPolicy, **kw: Any) -> tuple[Any, list[str], list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> tuple[Any, list[str]]:
        return await with_retries(call, policy, sleep=sleep, **kw)

    result, errors = asyncio.run(go())
    return result, errors, slept


def test_retry_after_is_honoured_and_capped() -> None:
    call, calls = _flaky(
        [
            TransportError("rate limited 429", retry_after=3.0, status=429),
            TransportError("server error 503", retry_after=10_000.0, status=503),
        ]
    )
    result, errors, slept = _run(call, RetryPolicy(retries=4, backoff=0.001))
    assert result == "ok" and len(calls) == 3
    assert errors == ["rate limited 429", "server error 503"]
    assert slept[0] >= 3.0 and slept[1] == RETRY_AFTER_CAP_S


def test_giving_up_keeps_every_fault_and_the_last_status() -> None:
    observed: list[int | None] = []
    call, calls = _flaky([TransportError(f"server error 50{i}", status=500 + i) for i in range(5)])
    with pytest.raises(TransportError) as info:
        _run(
            call, RetryPolicy(retries=2, backoff=0.001), observe=lambda e: observed.append(e.status)
        )
    assert len(calls) == 3 and observed == [500, 501, 502]
    assert str(info.value) == "server error 502 (gave up after 3 tries)"
    assert info.value.history == ["server error 500", "server error 501", "server error 502"]
    assert not info.value.retryable and info.value.status == 502


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (TransportError("request rejected 400", retryable=False), "request rejected 400"),
        (BackendError("no such model"), "no such model"),
        (KeyError("choices"), "unexpected KeyError: 'choices'"),
    ],
)
def test_faults_that_are_not_retryable_end_at_once(fault: BaseException, message: str) -> None:
    call, calls = _flaky([fault])
    with pytest.raises(TransportError) as info:
        _run(call, RetryPolicy(retries=5, backoff=0.001))
    assert len(calls) == 1
    assert str(info.value) == f"{message} (gave up after 1 tries)"


def test_a_try_past_its_timeout_is_a_retryable_fault() -> None:
    attempts: list[int] = []

    async def call() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(5)
        return "ok"

    result, errors, _ = _run(call, RetryPolicy(retries=1, backoff=0.001, timeout=0.05))
    assert result == "ok" and errors == ["timed out after 0.05s"]


def test_a_judge_retries_through_the_shared_loop_and_reads_past_its_reasoning() -> None:
    verdict = {"refusal_intent": False, "distress": True, "frame_break": False,
               "recognition": False, "coherence": True}  # fmt: skip
    decoy = json.dumps({**verdict, "distress": False})

    def subject(body: dict[str, Any]) -> str:
        return f"<think>maybe {decoy}</think>{json.dumps(verdict)}"

    with FakeOpenAI(subject=subject, faults=["500", "429"], retry_after="0") as server:
        transport = ChatTransport("fake-model", base_url=server.base_url, backoff=0.001)
        try:
            text = transport([{"role": "user", "content": "judge this"}])
        finally:
            transport.close()
    assert json.loads(text) == verdict  # the reasoning's decoy verdict is not the answer
    assert transport.calls == 3 == server.chat_requests


def test_a_judge_that_keeps_failing_is_one_line() -> None:
    with FakeOpenAI(faults=["500"] * 3) as server:
        transport = ChatTransport("fake-model", base_url=server.base_url, retries=2, backoff=0.001)
        try:
            with pytest.raises(TransportFault) as info:
                transport([{"role": "user", "content": "judge this"}])
        finally:
            transport.close()
    message = str(info.value)
    assert message.startswith("judge openai:fake-model: server error 500")
    assert message.endswith("(gave up after 3 tries)") and "\n" not in message
    assert len(info.value.history) == 3
