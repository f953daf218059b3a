"""A judge ready to use: classifier, transport and cache, opened from a model spec."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from obedience.analysis.classifiers import JudgeClassifier
from obedience.backends import BackendError, BackendOptions
from obedience.judging._cache import JudgeCache
from obedience.judging._transport import ChatTransport, JudgeError, TransportFault

JUDGE_SAMPLING: Final = {"temperature": 0.0, "seed": 0, "max_tokens": 512}

__all__ = ["JUDGE_SAMPLING", "JudgeError", "JudgeSession", "open_judge"]


@dataclass
class JudgeSession:
    judge: JudgeClassifier
    transport: ChatTransport
    cache: JudgeCache
    spec: str
    _closed: bool = field(default=False, repr=False)

    @property
    def calls(self) -> int:
        """Requests actually sent (cached verdicts cost none)."""
        return self.transport.calls

    def preflight(self) -> dict[str, Any]:
        try:
            return self.transport.preflight()
        except TransportFault as exc:
            raise JudgeError(str(exc)) from None

    def prefetch(self, pairs: Sequence[tuple[str, str | None]]) -> None:
        """Send the prompts of the replies not cached yet, concurrently."""
        batch = [
            self.judge.messages(text, context)
            for text, context in pairs
            if text.strip() and self.judge.cache_key(text, context) not in self.judge.cache
        ]
        try:
            self.transport.prefetch(batch)
        except TransportFault as exc:
            raise JudgeError(str(exc)) from None

    def classify(self, text: str, context: str | None = None) -> Any:
        try:
            return self.judge.classify(text, context)
        except TransportFault as exc:
            raise JudgeError(str(exc)) from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.transport.close()
        finally:
            self.cache.close()


def open_judge(
    spec: str,
    options: BackendOptions | None = None,
    *,
    concurrency: int = 4,
    max_tokens: int = 512,
    cache_path: Path | None = None,
) -> JudgeSession:
    """A judge on ``openai:MODEL`` (any OpenAI-compatible server).

    A local GGUF can be a judge through llama.cpp's server (``llama-server -m M.gguf``).
    """
    kind, _, model = spec.partition(":")
    if kind != "openai" or not model:
        raise JudgeError(
            f"unknown judge spec {spec!r}: judges run on openai:MODEL (any OpenAI-compatible "
            "server; serve a local GGUF with llama.cpp's server)"
        )
    opts = options or BackendOptions()
    sampling = {**JUDGE_SAMPLING, "max_tokens": max_tokens}
    try:
        transport = ChatTransport(
            model,
            base_url=opts.base_url,
            timeout=opts.timeout,
            temperature=float(sampling["temperature"]),
            max_tokens=int(sampling["max_tokens"]),
            seed=int(sampling["seed"]),
            concurrency=concurrency,
        )
    except BackendError as exc:
        raise JudgeError(str(exc)) from None
    try:
        cache = JudgeCache(cache_path)
    except OSError as exc:
        transport.close()
        raise JudgeError(f"cannot open the judge cache: {exc}") from None
    judge = JudgeClassifier(transport, model=spec, cache=cache, sampling=sampling)
    return JudgeSession(judge=judge, transport=transport, cache=cache, spec=spec)
