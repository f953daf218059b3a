"""The backend interface: one small async Protocol that every model source implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from obedience.engine import Request


class BackendError(RuntimeError):
    """A backend cannot be set up (bad spec, unreachable server, unknown model). One line."""


class TransportError(RuntimeError):
    """A request failed in transport. Never a refusal: the runner retries or ends as error."""

    def __init__(
        self, message: str, *, retryable: bool = True, history: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.history = history or [message]


@dataclass(frozen=True)
class Capabilities:
    tools: bool = False
    constrained: bool = False
    logprobs: bool = False


@dataclass(frozen=True)
class Sampling:
    """Sampling settings for one request; ``seed`` is derived per trial, decision and attempt."""

    temperature: float
    max_tokens: int
    seed: int | None = None
    # Sent explicitly when set (the paper sent top_p 1 and zero penalties); None: unset.
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None


@dataclass
class Completion:
    text: str
    tool_call: dict[str, Any] | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A source of model replies.

    ``name`` is the spec string the user gave (``embedded``, ``openai:gpt-x``...).
    ``endpoint`` groups backends that share a concurrency limit (one server).
    """

    name: str
    endpoint: str
    capabilities: Capabilities
    default_concurrency: int

    async def preflight(self) -> dict[str, Any]:
        """Check the model is reachable and return its metadata; raise BackendError."""
        ...

    async def complete(self, request: Request, sampling: Sampling) -> Completion:
        """Sample one reply; raise TransportError on any transport fault."""
        ...

    async def aclose(self) -> None: ...


def check_supports(backend: Backend, request_channel: str, constrained: bool) -> None:
    """Fail before a run starts if the backend cannot serve the condition."""
    if request_channel == "tool-call" and not backend.capabilities.tools:
        raise BackendError(
            f"backend {backend.name!r} does not support tool calls (channel tool-call)"
        )
    if constrained and not backend.capabilities.constrained:
        raise BackendError(
            f"backend {backend.name!r} does not support constrained decoding (policy constrained)"
        )
