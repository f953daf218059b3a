"""The backend interface: one small async Protocol that every model source implements."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from obedience.engine import Request

# The trial id of the request being made, set by the runner for each trial's task: an
# OpenAI-compatible backend sends it as the session key (the ``user`` field and routing
# headers), so that a router with session affinity keeps a trial on one replica.
SESSION_KEY: ContextVar[str | None] = ContextVar("obedience_session_key", default=None)
# Headers that carry the session key: sglang-router's manual policy, and a session header
# for vLLM production-stack's ``session`` routing (its ``--session-key`` names it).
SESSION_HEADERS = ("x-smg-routing-key", "x-session-id")


class BackendError(RuntimeError):
    """A backend cannot be set up (bad spec, unreachable server, unknown model). One line."""


class TransportError(RuntimeError):
    """A request failed in transport. Never a refusal: the runner retries or ends as error."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        history: list[str] | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.history = history or [message]
        # Seconds the server asked us to wait (its Retry-After header), if it said.
        self.retry_after = retry_after
        # The HTTP status of the answer, if there was one (the runner's circuit breaker).
        self.status = status


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; callers read these instead of checking its type or name.

    ``tools``: tool calls; ``constrained``: grammar or JSON-schema constrained decoding;
    ``logprobs``: scores continuations (the probe); ``renders_prompts``: has
    ``render(messages) -> str`` and ``count_tokens(text) -> int`` (the exact prompt it
    feeds the model); ``prefills_reply``: can be made to start its reply with given
    text; ``in_process``: runs in this process, so a request cannot be cut off by a
    timeout (the runner waits for it).
    """

    tools: bool = False
    constrained: bool = False
    logprobs: bool = False
    renders_prompts: bool = False
    prefills_reply: bool = False
    in_process: bool = False


@runtime_checkable
class PromptRenderer(Protocol):
    """A backend with ``capabilities.renders_prompts``: its prompt text and token counts."""

    def render(self, messages: Any) -> str: ...

    def count_tokens(self, text: str) -> int: ...


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
