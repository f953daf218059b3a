"""LLM judges for reply labels: the chat transport, a persistent cache, sessions.

``open_judge("openai:MODEL", options)`` returns a ``JudgeSession``: its ``judge``
is a ``JudgeClassifier`` (from ``obedience.analysis.classifiers``) whose verdicts
are cached on disk by (judge identity hash, prompt version, reply hash), so a rerun
costs no calls; ``prefetch`` sends a batch of prompts concurrently first.
"""

from obedience.judging._cache import JudgeCache, default_cache_path
from obedience.judging._session import (
    JUDGE_SAMPLING,
    JudgeError,
    JudgeSession,
    open_judge,
)
from obedience.judging._transport import ChatTransport

__all__ = [
    "JUDGE_SAMPLING",
    "ChatTransport",
    "JudgeCache",
    "JudgeError",
    "JudgeSession",
    "default_cache_path",
    "open_judge",
]
