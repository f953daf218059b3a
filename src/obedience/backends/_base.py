"""The backend interface: one small async Protocol that every model source implements.

A backend takes its own request type, ``ChatRequest`` (chat messages, tools, a decoding
constraint, sampling and a session key), and returns a ``Completion``. It knows nothing of
the experiment: the runner maps the engine's requests to chat requests, and the judge
builds them from its rubric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable


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
        # The HTTP status the server answered with (401, 429, 500...); None: no answer.
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


Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat completion to sample: what every backend takes.

    ``messages``: OpenAI-style chat messages (``role``, ``content``), sent as they are.
    ``tools`` and ``tool_choice``: function tools offered, and whether a call is
    ``required`` or left to the model (``auto``). ``grammar`` (GBNF) and ``json_schema``:
    a decoding constraint the reply must follow, set only when it must; when both are
    set a backend applies the one it supports best. ``session_key``: a stable key of the
    conversation (the runner sends the trial id), which a backend passes on so that a
    router with session affinity keeps every turn of it on one replica. ``origin``: the
    caller's own request this one was made from, passed through untouched; only a
    backend that plays one of the engine's scripted subjects reads it, model backends
    never do. ``turn_openings``: how each speaker's turn opens in the transcript
    (``"Bob:"``); a backend that continues raw text (a base model) may stop its reply
    where a line starts with one, as the llama.cpp backend's ``stop_at_turns`` does.
    """

    messages: Sequence[Message]
    sampling: Sampling
    tools: Sequence[dict[str, Any]] | None = None
    tool_choice: Literal["auto", "required"] | None = None
    grammar: str | None = None
    json_schema: dict[str, Any] | None = None
    session_key: str | None = None
    origin: object | None = None
    turn_openings: Sequence[str] = ()


@dataclass
class Completion:
    """A sampled reply, with whatever the server reported about how it was made.

    ``text`` is the visible reply, the only text ever parsed as an action. ``reasoning``
    is the model's reasoning when it was sent apart from the reply (``reasoning_content``
    or ``reasoning`` fields) or inside it (``<think>`` blocks, cut out of ``text``); None
    when there was none. The provenance fields are the server's own words (None when it
    did not say): token usage (``cached_tokens``: prompt tokens served from its prefix
    cache; ``reasoning_tokens``: completion tokens spent reasoning), ``cost`` (as billed,
    e.g. OpenRouter's ``usage.cost``), the ``served_model`` name it answered with, its
    ``system_fingerprint`` and the ``provider`` that served it; ``usage`` keeps the
    whole usage object as sent (numbers and short strings only).
    """

    text: str
    tool_call: dict[str, Any] | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning: str | None = None
    reasoning_tokens: int | None = None
    cost: float | None = None
    served_model: str | None = None
    system_fingerprint: str | None = None
    provider: str | None = None
    usage: dict[str, Any] | None = None
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

    async def complete(self, request: ChatRequest) -> Completion:
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
