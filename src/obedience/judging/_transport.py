"""Chat messages to a judge's answer over an OpenAI-compatible server.

The judge sends plain chat messages (its rubric and one reply), not an experiment
turn, so it talks to the server's chat API directly through the OpenAI backend's
client (base URL resolution and API key from the environment are the backend's);
no engine request is involved. Retryable faults (connection, timeout, 429, 5xx,
malformed bodies) are retried with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterable, Sequence
from typing import Any

import openai

from obedience.backends import BackendError
from obedience.backends._openai import OpenAIBackend


class JudgeError(RuntimeError):
    """The judge could not be set up or reached. The message is one line."""


class TransportFault(JudgeError):
    """A judge request failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


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
        self.backend = OpenAIBackend(model, base_url=base_url, timeout=timeout, logprobs=False)
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.retries = retries
        self.backoff = backoff
        self.concurrency = max(1, concurrency)
        self.calls = 0
        self._loop = asyncio.new_event_loop()
        self._ready: dict[str, str] = {}

    @property
    def name(self) -> str:
        return self.backend.name

    def body(self, messages: Sequence[dict[str, str]]) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }

    async def _once(self, messages: Sequence[dict[str, str]]) -> str:
        try:
            raw = await self.backend.client.post(
                "/chat/completions", body=self.body(messages), cast_to=bytes
            )
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise TransportFault(f"{type(exc).__name__}: {exc}") from None
        except openai.RateLimitError as exc:
            raise TransportFault(f"rate limited: {exc.status_code}") from None
        except openai.InternalServerError as exc:
            raise TransportFault(f"server error {exc.status_code}") from None
        except openai.APIStatusError as exc:
            raise TransportFault(f"request rejected {exc.status_code}", retryable=False) from None
        except openai.APIError as exc:
            raise TransportFault(f"{type(exc).__name__}") from None
        try:
            data = json.loads(raw)
            content = data["choices"][0]["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise TransportFault("malformed response from the judge server") from None
        return content if isinstance(content, str) else ""

    async def complete_async(self, messages: Sequence[dict[str, str]]) -> str:
        for attempt in range(self.retries + 1):
            try:
                self.calls += 1
                return await self._once(messages)
            except TransportFault as exc:
                if not exc.retryable or attempt == self.retries:
                    raise TransportFault(
                        f"judge {self.name}: {exc} (after {attempt + 1} tries)", retryable=False
                    ) from None
                await asyncio.sleep(self.backoff * 2**attempt * random.uniform(0.5, 1.5))
        raise TransportFault(f"judge {self.name}: no reply")  # pragma: no cover

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
