"""Model backends behind one small interface.

Specs: ``embedded`` (Gemma 3 270M base), ``embedded-chat`` (SmolLM2-135M-Instruct),
``gguf:PATH``, ``openai:MODEL``, ``scripted:NAME``,
``replay:PATH``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from obedience.backends._base import (
    SESSION_HEADERS,
    SESSION_KEY,
    Backend,
    BackendError,
    Capabilities,
    Completion,
    PromptRenderer,
    Sampling,
    TransportError,
    check_supports,
)
from obedience.backends._llama import (
    LlamaCppBackend,
    embedded_chat_model_path,
    embedded_model_path,
    format_gemma,
)
from obedience.backends._llama_runtime import (
    attach_llama_log,
    detach_llama_log,
    echo_llama_log,
)
from obedience.backends._openai import OpenAIBackend
from obedience.backends._simple import ReplayBackend, ScriptedBackend


@dataclass(frozen=True)
class BackendOptions:
    base_url: str | None = None
    chat_template: str | None = None
    timeout: float = 120.0
    n_ctx: int = 8192
    grammar_dialect: str = "llama.cpp"


def make_backend(spec: str, options: BackendOptions | None = None) -> Backend:
    opts = options or BackendOptions()
    kind, _, arg = spec.partition(":")
    if kind == "embedded" and not arg:
        return LlamaCppBackend(
            "embedded", embedded_model_path(), chat_template="gemma", n_ctx=opts.n_ctx
        )
    if spec == "embedded-chat":
        # The chat template comes from the GGUF's metadata (ChatML for SmolLM2).
        return LlamaCppBackend(
            "embedded-chat", embedded_chat_model_path(), chat_template="auto", n_ctx=opts.n_ctx
        )
    if kind == "gguf" and arg:
        return LlamaCppBackend(
            spec, Path(arg).expanduser(), chat_template=opts.chat_template, n_ctx=opts.n_ctx
        )
    if kind == "openai" and arg:
        return OpenAIBackend(
            arg, base_url=opts.base_url, timeout=opts.timeout, grammar_dialect=opts.grammar_dialect
        )
    if kind == "scripted" and arg:
        return ScriptedBackend(arg)
    if kind == "replay" and arg:
        return ReplayBackend(arg)
    raise BackendError(
        f"unknown model spec {spec!r}; use embedded, embedded-chat, gguf:PATH, openai:MODEL, "
        "scripted:NAME or replay:PATH"
    )


def known_capabilities(spec: str) -> Capabilities | None:
    """A spec's capabilities when its backend class fixes them (scripted, replay), else None.

    Lets a caller refuse a backend that cannot do what it needs before making it (a
    replay backend reads its file when made).
    """
    kind = spec.split(":", 1)[0]
    if kind == "scripted":
        return ScriptedBackend.capabilities
    if kind == "replay":
        return ReplayBackend.capabilities
    return None


__all__ = [
    "SESSION_HEADERS",
    "SESSION_KEY",
    "Backend",
    "BackendError",
    "BackendOptions",
    "Capabilities",
    "Completion",
    "LlamaCppBackend",
    "OpenAIBackend",
    "PromptRenderer",
    "ReplayBackend",
    "Sampling",
    "ScriptedBackend",
    "TransportError",
    "attach_llama_log",
    "check_supports",
    "detach_llama_log",
    "echo_llama_log",
    "embedded_chat_model_path",
    "embedded_model_path",
    "format_gemma",
    "known_capabilities",
    "make_backend",
]
