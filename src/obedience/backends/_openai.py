"""``openai:MODEL``: any OpenAI-compatible chat server (vLLM, SGLang, Ollama, llama.cpp, hosted).

The API key is read from the environment only and is never written anywhere.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import time
import urllib.parse
from typing import Any

import openai

from obedience._text import one_line, scrub_secrets, strip_userinfo
from obedience.backends._base import (
    SESSION_HEADERS,
    SESSION_KEY,
    BackendError,
    Capabilities,
    Completion,
    Sampling,
    TransportError,
)
from obedience.backends._logprobs import ContinuationScore
from obedience.engine import Request

BASE_URL_ENV = ("OBEDIENCE_BASE_URL", "OPENAI_BASE_URL")
API_KEY_ENV = ("OBEDIENCE_API_KEY", "OPENAI_API_KEY")

# How to ask a server for grammar-constrained output when a JSON schema does not apply.
GRAMMAR_FIELDS = {
    "llama.cpp": "grammar",
    "vllm": "guided_grammar",
    "sglang": "ebnf",
}


def resolve_base_url(explicit: str | None) -> str:
    if explicit:
        return check_base_url(explicit)
    for name in BASE_URL_ENV:
        if value := os.environ.get(name):
            return check_base_url(value, source=name)
    return "https://api.openai.com/v1"


def check_base_url(url: str, *, source: str = "base URL") -> str:
    """``url`` if it is a usable http(s) URL; else a one-line BackendError."""
    shown = one_line(strip_userinfo(url))
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises ValueError for ':abc', ':99999', ':-5'
    except ValueError as exc:
        raise BackendError(f"{source} {shown!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise BackendError(f"{source} {shown!r} must start with http:// or https://")
    if not parts.hostname:
        raise BackendError(f"{source} {shown!r} has no host")
    if port == 0:
        raise BackendError(f"{source} {shown!r}: port 0 is not a port")
    return url


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """A Retry-After header in seconds: delta-seconds or an HTTP-date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _retry_after(exc: openai.APIStatusError) -> float | None:
    try:
        return retry_after_seconds(exc.response.headers.get("retry-after"))
    except AttributeError:
        return None


def _api_key() -> str:
    for name in API_KEY_ENV:
        if value := os.environ.get(name):
            return value
    return "not-needed"  # local servers ignore it; hosted ones answer 401, reported as such


def _short(exc: BaseException) -> str:
    """Server-sent text on one line: no known secret, no terminal control."""
    return one_line(scrub_secrets(str(exc)))[:300]


class OpenAIBackend:
    default_concurrency = 32

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        timeout: float = 120.0,
        grammar_dialect: str = "llama.cpp",
        logprobs: bool = True,
    ) -> None:
        if not model:
            raise BackendError("openai:MODEL needs a model name, e.g. openai:gpt-4o-mini")
        self.model = model
        self.name = f"openai:{model}"
        full_url = resolve_base_url(base_url)
        # Shown, stored and used as the concurrency key without any user:password@.
        self.base_url = strip_userinfo(full_url)
        self.endpoint = self.base_url
        self.capabilities = Capabilities(tools=True, constrained=True, logprobs=logprobs)
        self._grammar_field = GRAMMAR_FIELDS.get(grammar_dialect, grammar_dialect)
        self._client = openai.AsyncOpenAI(
            base_url=full_url, api_key=_api_key(), timeout=timeout, max_retries=0
        )

    @property
    def client(self) -> openai.AsyncOpenAI:
        return self._client

    async def preflight(self) -> dict[str, Any]:
        try:
            page = await self._client.models.list()
        except openai.AuthenticationError:
            raise BackendError(
                f"server at {self.base_url} rejected the API key (set OPENAI_API_KEY)"
            ) from None
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise BackendError(f"cannot reach server at {self.base_url}: {_short(exc)}") from None
        except openai.APIError as exc:
            raise BackendError(f"server at {self.base_url} failed: {_short(exc)}") from None
        ids = [m.id for m in page.data]
        if ids and self.model not in ids:
            shown = ", ".join(ids[:8]) + (" ..." if len(ids) > 8 else "")
            raise BackendError(
                f"model {self.model!r} is not served at {self.base_url}; it serves: {shown}"
            )
        return {
            "kind": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "served": ids[:50],
        }

    def request_kwargs(self, request: Request, sampling: Sampling) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": list(request.messages),
            "temperature": sampling.temperature,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            kwargs["seed"] = sampling.seed
        for key in ("top_p", "presence_penalty", "frequency_penalty"):
            if (value := getattr(sampling, key)) is not None:
                kwargs[key] = value
        if request.tools:
            kwargs["tools"] = request.tools
            kwargs["tool_choice"] = "required" if request.constrained else "auto"
        if request.constrained and request.json_schema:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "decision", "schema": request.json_schema, "strict": True},
            }
        elif request.constrained and request.grammar:
            kwargs["extra_body"] = {self._grammar_field: request.grammar}
        return kwargs

    async def complete(self, request: Request, sampling: Sampling) -> Completion:
        body = self.request_kwargs(request, sampling)
        body.update(body.pop("extra_body", {}))
        # A plain POST (the client's documented way to send any body) with the reply read
        # as bytes: ``chat.completions.create`` type-walks every message of the request and
        # builds a model of the response, ~1-10 ms of CPU per call in a long trial, which
        # capped a concurrent run far below what the server could serve.
        options: openai._types.RequestOptions = {}
        if (session := SESSION_KEY.get()) is not None:
            body.setdefault("user", session)
            options["headers"] = dict.fromkeys(SESSION_HEADERS, session)
        try:
            raw = await self._client.post(
                "/chat/completions", body=body, cast_to=bytes, options=options
            )
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise TransportError(f"{type(exc).__name__}: {_short(exc)}") from None
        except openai.RateLimitError as exc:
            raise TransportError(
                f"rate limited: {_short(exc)}", retry_after=_retry_after(exc), status=429
            ) from None
        except openai.InternalServerError as exc:
            raise TransportError(
                f"server error {exc.status_code}: {_short(exc)}",
                retry_after=_retry_after(exc),
                status=exc.status_code,
            ) from None
        except openai.APIStatusError as exc:
            raise TransportError(
                f"request rejected {exc.status_code}: {_short(exc)}",
                retryable=False,
                status=exc.status_code,
            ) from None
        except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError) as exc:
            raise TransportError(f"malformed response: {_short(exc)}") from None
        except openai.APIError as exc:
            raise TransportError(f"{type(exc).__name__}: {_short(exc)}") from None
        try:
            return _completion_from_json(json.loads(raw))
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            # Not JSON, or JSON that is not a chat completion: a transport fault, retried.
            raise TransportError(f"malformed response: {_short(exc)}") from None

    async def score_continuations_detailed(
        self,
        messages: list[dict[str, Any]] | tuple[dict[str, Any], ...],
        continuations: list[str],
        *,
        prefix: str = "",
    ) -> list[ContinuationScore]:
        """Log-probabilities of reply openings from the first token's ``top_logprobs``.

        A chat API cannot force a reply prefix, so ``prefix`` must be empty (first-word
        channel only). See ``obedience.backends._logprobs`` for what is exact and what is
        a bound.
        """
        from obedience.backends._logprobs import score_with_chat_logprobs

        if prefix:
            raise BackendError(
                f"{self.name}: a chat server cannot score a reply that starts with {prefix!r}; "
                "probe a first-word condition"
            )
        try:
            return await score_with_chat_logprobs(
                self._client, self.model, list(messages), continuations
            )
        except LookupError as exc:
            raise BackendError(f"{self.name} at {self.base_url}: {exc}") from None
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise TransportError(f"{type(exc).__name__}: {_short(exc)}") from None
        except openai.APIStatusError as exc:
            raise BackendError(
                f"{self.name}: logprobs request rejected {exc.status_code}: {_short(exc)}"
            ) from None
        except (openai.APIError, AttributeError, TypeError, ValueError) as exc:
            raise TransportError(f"malformed logprobs response: {_short(exc)}") from None

    async def score_continuations(
        self,
        messages: list[dict[str, Any]] | tuple[dict[str, Any], ...],
        continuations: list[str],
        *,
        prefix: str = "",
    ) -> list[float]:
        scores = await self.score_continuations_detailed(messages, continuations, prefix=prefix)
        return [s.logprob for s in scores]

    async def aclose(self) -> None:
        await self._client.close()


def _completion_from_json(data: Any) -> Completion:
    """A Completion from a chat-completion JSON body; raises on any other shape."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ValueError("choice has no message")
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    tool_call = None
    calls = message.get("tool_calls") or []
    if isinstance(calls, list) and calls and isinstance(calls[0], dict):
        fn = calls[0].get("function") or {}
        tool_call = {"name": fn.get("name"), "arguments": fn.get("arguments")}
    raw_usage = data.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    finish = choice.get("finish_reason")
    return Completion(
        text=text,
        tool_call=tool_call,
        finish_reason=finish if isinstance(finish, str) else None,
        prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
        completion_tokens=_int_or_none(usage.get("completion_tokens")),
        cached_tokens=_int_or_none(cached),
        extra={"served_model": data.get("model") if isinstance(data.get("model"), str) else None},
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
