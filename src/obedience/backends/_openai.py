"""``openai:MODEL``: any OpenAI-compatible chat server (vLLM, SGLang, Ollama, llama.cpp, hosted).

The API key is read from the environment only and is never written anywhere.

Chat completions, the hot path of a run, go through one ``aiohttp`` session whose pool
has no cap of its own (the caller's concurrency is the cap): the request body is encoded
once and the reply read as bytes. ``benchmarks/serving.py`` measured the openai SDK's
``post`` at about 0.9 ms of CPU per request against 0.27 ms for this path, with the
SDK's default httpx pool far worse at high concurrency (its pool scans every connection
per request); ``http_client`` selects the SDK's transports for that comparison. Listing
models (preflight) and scoring first tokens (the probe) use the SDK.

Every request of a conversation carries its ``session_key`` (the runner's trial id) as
the ``user`` field and in the ``session_headers`` (by default ``x-smg-routing-key``, read
by sglang-router's ``manual`` policy, and ``x-session-id``, read by production-stack
style routers' session routing), so a router with session affinity keeps the
conversation on one replica and its prefix cache is reused.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.parse
from typing import TYPE_CHECKING, Any, Final, Literal

import openai

from obedience._json import dumps_bytes, loads
from obedience._text import (
    escape_surrogates,
    one_line,
    register_secret,
    scrub_secrets,
    strip_userinfo,
)
from obedience.backends._base import (
    BackendError,
    Capabilities,
    ChatRequest,
    Completion,
    TransportError,
)
from obedience.backends._logprobs import ContinuationScore
from obedience.backends._reasoning import join_reasoning, split_reasoning
from obedience.backends._retry import retry_after_seconds

if TYPE_CHECKING:
    import aiohttp

HttpClient = Literal["aiohttp", "openai-aiohttp", "openai-httpx"]
HTTP_CLIENTS: Final = ("aiohttp", "openai-aiohttp", "openai-httpx")
# sglang-router's manual policy routes by x-smg-routing-key; production-stack style
# routers route sessions by a session header (x-session-id here; configurable).
DEFAULT_SESSION_HEADERS: Final = ("x-smg-routing-key", "x-session-id")
# Statuses worth another try (as the openai SDK retries them): timeout, conflict, rate limit.
_RETRYABLE_STATUS: Final = frozenset({408, 409, 429})

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
        session_headers: tuple[str, ...] | None = None,
        session_user: bool = True,
        connections: int | None = None,
        http_client: str = "aiohttp",
    ) -> None:
        if not model:
            raise BackendError("openai:MODEL needs a model name, e.g. openai:gpt-4o-mini")
        if http_client not in HTTP_CLIENTS:
            raise BackendError(
                f"unknown HTTP client {http_client!r}; use one of {', '.join(HTTP_CLIENTS)}"
            )
        if connections is not None and connections < 1:
            raise BackendError(f"connections must be at least 1, got {connections}")
        self.model = model
        self.name = f"openai:{model}"
        full_url = resolve_base_url(base_url)
        # Shown, stored and used as the concurrency key without any user:password@.
        self.base_url = strip_userinfo(full_url)
        self.endpoint = self.base_url
        self.capabilities = Capabilities(tools=True, constrained=True, logprobs=logprobs)
        self.session_headers = check_session_headers(
            DEFAULT_SESSION_HEADERS if session_headers is None else session_headers
        )
        self.session_user = session_user
        self.http_client: HttpClient = http_client  # type: ignore[assignment]
        self._grammar_field = GRAMMAR_FIELDS.get(grammar_dialect, grammar_dialect)
        self._timeout = timeout
        self._connections = connections
        self._chat_url = self.base_url.rstrip("/") + "/chat/completions"
        self._headers = _auth_headers(full_url, _api_key())
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._full_url = full_url
        self._sdk: openai.AsyncOpenAI | None = None

    @property
    def _client(self) -> openai.AsyncOpenAI:
        """The SDK client, made on first use: chat completions go through aiohttp, and
        making it costs 35-190 ms (its HTTP stack's imports, a TLS context with the CA
        store) that a worker process, which only sends chat completions, never needs."""
        if self._sdk is None:
            sdk_http: Any = None
            if self.http_client != "aiohttp":  # the SDK's transports, for the benchmark
                limits = type(openai.DEFAULT_CONNECTION_LIMITS)(
                    max_connections=self._connections or 100_000,
                    max_keepalive_connections=self._connections or 100_000,
                    keepalive_expiry=60.0,
                )
                factory = (
                    openai.DefaultAioHttpClient
                    if self.http_client == "openai-aiohttp"
                    else openai.DefaultAsyncHttpxClient
                )
                sdk_http = factory(limits=limits, timeout=self._timeout)
            self._sdk = openai.AsyncOpenAI(
                base_url=self._full_url,
                api_key=_api_key(),
                timeout=self._timeout,
                max_retries=0,
                http_client=sdk_http,
            )
        return self._sdk

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The openai SDK client on this server (listing models, scoring first tokens)."""
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
            "session_headers": list(self.session_headers),
            "session_user": self.session_user,
            "http_client": self.http_client,
        }

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body of ``request``'s chat completion, as sent."""
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(request.messages),
            "temperature": sampling.temperature,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.top_p is not None:
            body["top_p"] = sampling.top_p
        if sampling.presence_penalty is not None:
            body["presence_penalty"] = sampling.presence_penalty
        if sampling.frequency_penalty is not None:
            body["frequency_penalty"] = sampling.frequency_penalty
        if request.tools:
            body["tools"] = list(request.tools)
            body["tool_choice"] = request.tool_choice or "auto"
        if request.json_schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "decision", "schema": request.json_schema, "strict": True},
            }
        elif request.grammar:
            body[self._grammar_field] = request.grammar
        if request.session_key is not None and self.session_user:
            body["user"] = request.session_key
        return body

    def request_headers(self, request: ChatRequest) -> dict[str, str]:
        """The session headers of ``request`` (empty without a session key)."""
        if request.session_key is None or not self.session_headers:
            return {}
        value = header_value(request.session_key)
        return dict.fromkeys(self.session_headers, value)

    async def complete(self, request: ChatRequest) -> Completion:
        body = self.request_body(request)
        session_headers = self.request_headers(request)
        if self.http_client != "aiohttp":
            raw = await self._post_with_sdk(body, session_headers)
        else:
            raw = await self._post(body, session_headers)
        try:
            return completion_from_json(loads(raw))
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            # Not JSON, or JSON that is not a chat completion: a transport fault, retried.
            raise TransportError(f"malformed response: {_short(exc)}") from None

    def _open_session(self) -> aiohttp.ClientSession:
        """The session for this event loop (a backend reused under a new loop gets a new one)."""
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is not None and self._session_loop is loop:
            return self._session
        self._session_loop = loop

        connector = aiohttp.TCPConnector(
            limit=self._connections or 0,  # 0: no cap of its own; the caller's concurrency is
            limit_per_host=0,
            keepalive_timeout=60.0,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers=self._headers,
            skip_auto_headers=("User-Agent",),
        )
        return self._session

    async def _post(self, body: dict[str, Any], headers: dict[str, str]) -> bytes:
        import aiohttp

        session = self._session
        if session is None or self._session_loop is not asyncio.get_running_loop():
            session = self._open_session()
        # Encoded here (any text encodes: a lone surrogate as an ASCII escape), and the
        # bytes are sent as they are, without the client walking the body again.
        data = dumps_bytes(body)
        try:
            async with session.post(self._chat_url, data=data, headers=headers) as response:
                raw = await response.read()
                status = response.status
                retry_after = response.headers.get("retry-after")
        except TimeoutError:
            raise TransportError(f"timed out after {self._timeout:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            detail = _short(exc) or type(exc).__name__
            raise TransportError(f"connection error: {detail}") from None
        if status >= 300:
            raise status_error(status, raw, retry_after_seconds(retry_after))
        return raw

    async def _post_with_sdk(self, body: dict[str, Any], headers: dict[str, str]) -> bytes:
        try:
            raw: bytes = await self._client.post(
                "/chat/completions", body=body, cast_to=bytes, options={"headers": headers}
            )
        except openai.APITimeoutError:
            raise TransportError(f"timed out after {self._timeout:g}s") from None
        except openai.APIConnectionError as exc:
            raise TransportError(f"connection error: {_short(exc)}") from None
        except openai.APIStatusError as exc:
            raise status_error(exc.status_code, exc.response.content, _retry_after(exc)) from None
        except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError) as exc:
            raise TransportError(f"malformed response: {_short(exc)}") from None
        except openai.APIError as exc:
            raise TransportError(f"{type(exc).__name__}: {_short(exc)}") from None
        return raw

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
        session, self._session = self._session, None
        try:
            if session is not None and self._session_loop is asyncio.get_running_loop():
                await session.close()
        finally:
            self._session_loop = None
            sdk, self._sdk = self._sdk, None
            if sdk is not None:
                await sdk.close()


# An HTTP header name (RFC 9110 token characters).
_TOKEN_CHARS: Final = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


def check_session_headers(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Header names, lower-cased and checked; a bad one is a one-line BackendError."""
    out: list[str] = []
    for name in names:
        lowered = name.strip().lower()
        if not lowered or not set(lowered) <= _TOKEN_CHARS:
            raise BackendError(f"session header {one_line(name)!r} is not an HTTP header name")
        if lowered in ("authorization", "content-type", "content-length", "host"):
            raise BackendError(f"session header {lowered!r} is reserved")
        if lowered not in out:
            out.append(lowered)
    return tuple(out)


def header_value(key: str) -> str:
    """``key`` as an HTTP header value: printable ASCII as it is, anything else %-encoded."""
    if key.isascii() and key.isprintable() and key == key.strip():
        return key
    return urllib.parse.quote(key, safe="!#$&'()*+,/:;=?@[]^_`{|}~<>\"")


def _auth_headers(url: str, key: str) -> dict[str, str]:
    """The headers every request carries: the API key, or a URL's user:password."""
    import base64

    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None or parts.password is not None:
        # As the SDK's httpx did: credentials in the URL are HTTP basic auth.
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        register_secret(password)
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    else:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def status_error(status: int, raw: bytes, retry_after: float | None) -> TransportError:
    """A non-2xx answer as a TransportError; 408, 409, 429 and 5xx are worth a retry."""
    detail = _error_detail(raw)
    if status == 429:
        head = f"rate limited {status}"
    elif status >= 500:
        head = f"server error {status}"
    else:
        head = f"request rejected {status}"
    return TransportError(
        f"{head}: {detail}" if detail else head,
        retryable=status in _RETRYABLE_STATUS or status >= 500,
        retry_after=retry_after,
        status=status,
    )


def _error_detail(raw: bytes) -> str:
    """The server's error message (``error.message`` of a JSON body, else the body's head)."""
    text = raw[:4096].decode("utf-8", "replace")
    try:
        data = json.loads(raw)
    except ValueError:
        return one_line(scrub_secrets(text))[:300]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            text = err["message"]
        elif isinstance(err, str):
            text = err
    return one_line(scrub_secrets(text))[:300]


def completion_from_json(data: Any) -> Completion:
    """A Completion from a chat-completion JSON body; raises on any other shape.

    The visible text is the message's content with inline reasoning blocks cut out; the
    reasoning is the message's ``reasoning_content`` or ``reasoning`` field (the same text
    under both names counts once) and those blocks, in that order.
    """
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ValueError("choice has no message")
    content, part_reasoning = _content_parts(message.get("content"))
    text, inline = split_reasoning(content)
    sources: list[str] = []
    fields: list[str] = []
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value and value not in fields:
            fields.append(value)
            sources.append(name)
    if part_reasoning:
        sources.append("content-parts")
    if inline is not None:
        sources.append("think-tags")
    reasoning = join_reasoning(*fields, part_reasoning, inline)
    tool_call = None
    calls = message.get("tool_calls") or []
    if isinstance(calls, list) and calls and isinstance(calls[0], dict):
        fn = calls[0].get("function") or {}
        tool_call = {"name": fn.get("name"), "arguments": fn.get("arguments")}
    raw_usage = data.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    finish = choice.get("finish_reason")
    cost = _number_or_none(usage.get("cost"))
    if cost is None:
        cost = _number_or_none(data.get("cost"))
    return Completion(
        text=text,
        tool_call=tool_call,
        finish_reason=finish if isinstance(finish, str) else None,
        prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
        completion_tokens=_int_or_none(usage.get("completion_tokens")),
        cached_tokens=_int_or_none(_get(prompt_details, "cached_tokens")),
        reasoning=reasoning,
        reasoning_tokens=_int_or_none(_get(completion_details, "reasoning_tokens")),
        cost=cost,
        served_model=_short_str(data.get("model")),
        system_fingerprint=_short_str(data.get("system_fingerprint")),
        provider=_short_str(data.get("provider")),
        usage=_plain(usage) if usage else None,
        extra={"reasoning_source": "+".join(sources)} if sources else {},
    )


def _content_parts(content: Any) -> tuple[str, str | None]:
    """A message's content as text, and the reasoning of any reasoning-typed parts.

    Content is a string, or (some servers) a list of typed parts: ``text`` parts are the
    reply, ``reasoning`` and ``thinking`` parts are reasoning, others are left out.
    """
    if isinstance(content, str):
        return content, None
    if not isinstance(content, list):
        return "", None
    text: list[str] = []
    thoughts: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        value = next(
            (part[k] for k in ("text", "thinking", "reasoning") if isinstance(part.get(k), str)),
            None,
        )
        if value is None:
            continue
        if kind in ("reasoning", "thinking"):
            thoughts.append(value)
        elif kind in ("text", "output_text", None):
            text.append(value)
    return "".join(text), join_reasoning(*thoughts)


def _get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _short_str(value: Any, limit: int = 200) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if value.isascii() and value.isprintable():  # the usual case: nothing to make safe
        return value[:limit]
    return escape_surrogates(one_line(value))[:limit]


def _plain(value: Any, depth: int = 0) -> Any:
    """A server's usage object kept as data: numbers, short strings, small nested objects."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        return _short_str(value) or ""
    if isinstance(value, dict) and depth < 3:
        return {one_line(str(k))[:100]: _plain(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, list) and depth < 3:
        return [_plain(v, depth + 1) for v in value[:50]]
    return None
