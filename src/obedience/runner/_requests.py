"""Where the engine meets a backend: its requests as chat requests, replies as events.

The engine asks for a decision with its own ``Request`` (messages, the channel's tools
and decoding constraint, sampling); a backend takes a ``ChatRequest``. ``chat_request``
maps one to the other. Going back, ``engine_reply`` turns a backend's ``Completion``
into the engine's ``Reply`` (visible text, tool call, reasoning apart) and
``reply_meta`` keeps what the server said about it (usage, cost, served model, latency,
transport retries) for the reply event's meta.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from obedience._text import escape_surrogates, has_surrogates, original_json, safe_value
from obedience.backends import ChatRequest, Completion, Sampling
from obedience.engine import Reply, Request


def chat_request(request: Request, sampling: Sampling, session_key: str | None) -> ChatRequest:
    """The chat request a backend samples for the engine's ``request``.

    A grammar or JSON schema goes along only when the policy constrains decoding; on the
    tool-call channel a constrained request requires a call. ``session_key`` (the trial
    id) keeps every turn of a trial on one replica behind a router.
    """
    constrained = request.constrained
    return ChatRequest(
        messages=request.messages,
        sampling=sampling,
        tools=request.tools or None,
        tool_choice=("required" if constrained else "auto") if request.tools else None,
        grammar=request.grammar if constrained else None,
        json_schema=request.json_schema if constrained else None,
        session_key=session_key,
        origin=request,
        turn_openings=request.turn_openings,
    )


def engine_reply(completion: Completion) -> Reply:
    return Reply(
        text=completion.text,
        tool_call=completion.tool_call,
        finish_reason=completion.finish_reason,
        reasoning=completion.reasoning,
    )


def safe_completion(completion: Completion) -> tuple[Completion, dict[str, Any]]:
    """The completion made safe where it enters the run, and the originals it replaced.

    Lone surrogates (valid in JSON, impossible in UTF-8) are escaped as ``\\udXXX`` in
    the text every later step sees; the exact original is kept in the reply's meta as
    ASCII JSON (``original_text_json``, ``original_reasoning_json``), so nothing the
    model sent is lost.
    """
    originals: dict[str, Any] = {}
    text = completion.text
    if has_surrogates(text):
        originals["original_text_json"] = original_json(text)
        text = escape_surrogates(text)
    reasoning = completion.reasoning
    if reasoning is not None and has_surrogates(reasoning):
        originals["original_reasoning_json"] = original_json(reasoning)
        reasoning = escape_surrogates(reasoning)
    tool_call = completion.tool_call
    if tool_call is not None:
        safe_call = safe_value(tool_call)
        if safe_call != tool_call:
            originals["original_tool_call_json"] = json.dumps(tool_call, ensure_ascii=True)
            tool_call = safe_call
    finish = completion.finish_reason
    if finish is not None:
        finish = escape_surrogates(finish)
    if not originals and finish == completion.finish_reason:
        return completion, originals
    return (
        dataclasses.replace(
            completion,
            text=text,
            reasoning=reasoning,
            tool_call=tool_call,
            finish_reason=finish,
            usage=safe_value(completion.usage),
            extra=safe_value(completion.extra),
        ),
        originals,
    )


# Completion fields kept in a reply's meta when the server reported them.
_PROVENANCE = (
    "cached_tokens",
    "reasoning_tokens",
    "cost",
    "served_model",
    "system_fingerprint",
    "provider",
    "usage",
)


def reply_meta(
    completion: Completion, latency: float, errors: list[str], sampling: Sampling
) -> dict[str, Any]:
    """A reply event's meta: timing, sampling, token usage and the server's provenance."""
    meta: dict[str, Any] = {
        "latency_s": round(latency, 6),
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "sampling_seed": sampling.seed,
        "temperature": sampling.temperature,
        "max_tokens": sampling.max_tokens,
    }
    for name in _PROVENANCE:
        value = getattr(completion, name)
        if value is not None:
            meta[name] = safe_value(value) if name == "usage" else value
    if errors:
        meta["transport_retries"] = len(errors)
        meta["transport_errors"] = errors
    if completion.extra:
        meta.update({k: v for k, v in completion.extra.items() if v is not None})
    return meta
