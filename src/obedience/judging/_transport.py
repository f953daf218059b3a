"""Chat messages to a judge's answer, through the ``openai:`` backend.

The judge sends plain chat messages (its rubric and one reply), not an experiment turn:
each goes to the backend as a ``ChatRequest`` of its own (no engine request is involved),
so base URL, API key and transport are the backend's, and a judge that is a reasoning
model has its reasoning cut off its answer as in a run. Faults are retried by the same
loop as the runner's (``obedience.backends.with_retries``: backoff with jitter,
Retry-After honoured up to a cap, every fault kept).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from typing import Any

from obedience.backends import (
    BackendError,
    ChatRequest,
    RetryPolicy,
    Sampling,
    TransportError,
    with_retries,
)
from obedience.backends._openai import OpenAIBackend


class JudgeError(RuntimeError):
    """The judge could not be set up or reached. The message is one line."""


class TransportFault(JudgeError):
    """A judge request failed; ``retryable`` says whether trying again may help."""

    def __init__(
        self, message: str, *, retryable: bool = True, history: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.history = history or [message]


class ChatTransport:
    """``__call__(messages) -> text`` against ``model`` on an OpenAI-compatible server."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        timeout: float = 120.0,
        temperature: float = 0.0,
        max_tokens: int = 512,
        seed: int = 0,
        retries: int = 3,
        backoff: float = 1.0,
        concurrency: int = 4,
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.backend = OpenAIBackend(
            model, base_url=base_url, timeout=timeout, logprobs=False, session_headers=()
        )
        self.model = model
        self.sampling = Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed)
        self.policy = RetryPolicy(retries=retries, backoff=backoff)
        self.calls = 0
        self._loop = asyncio.new_event_loop()
        self._ready: dict[str, str] = {}

    @property
    def name(self) -> str:
        return self.backend.name

    def request(self, messages: Sequence[dict[str, str]]) -> ChatRequest:
        """The chat request of one judge prompt (no session key: prompts are independent)."""
        return ChatRequest(messages=[dict(m) for m in messages], sampling=self.sampling)

    def body(self, messages: Sequence[dict[str, str]]) -> dict[str, Any]:
        """The JSON body sent for ``messages``."""
        return self.backend.request_body(self.request(messages))

    async def complete_async(self, messages: Sequence[dict[str, str]]) -> str:
        request = self.request(messages)

        async def once() -> str:
            self.calls += 1
            return (await self.backend.complete(request)).text

        try:
            text, _errors = await with_retries(once, self.policy)
        except TransportError as exc:
            raise TransportFault(
                f"judge {self.name}: {exc}", retryable=False, history=exc.history
            ) from None
        return text

    @staticmethod
    def _key(messages: Sequence[dict[str, str]]) -> str:
        return json.dumps(list(messages), sort_keys=True, ensure_ascii=False)

    def __call__(self, messages: list[dict[str, str]]) -> str:
        key = self._key(messages)
        if key in self._ready:
            return self._ready.pop(key)
        return self._loop.run_until_complete(self.complete_async(messages))

    def prefetch(self, batch: Iterable[Sequence[dict[str, str]]]) -> None:
        """Send many prompts concurrently; the answers wait for the calls that follow."""
        wanted = {self._key(m): m for m in batch}
        todo = [(k, m) for k, m in wanted.items() if k not in self._ready]
        if not todo:
            return
        gate = asyncio.Semaphore(self.concurrency)

        async def one(key: str, messages: Sequence[dict[str, str]]) -> None:
            async with gate:
                self._ready[key] = await self.complete_async(messages)

        async def run_all() -> None:
            async with asyncio.TaskGroup() as group:  # one failure cancels the rest
                for k, m in todo:
                    group.create_task(one(k, m))

        try:
            self._loop.run_until_complete(run_all())
        except ExceptionGroup as group:
            raise group.exceptions[0] from None

    def preflight(self) -> dict[str, Any]:
        try:
            return self._loop.run_until_complete(self.backend.preflight())
        except BackendError as exc:
            raise TransportFault(str(exc), retryable=False) from None

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._loop.run_until_complete(self.backend.aclose())
        finally:
            self._loop.close()
