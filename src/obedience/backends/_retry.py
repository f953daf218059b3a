"""One retry loop for every caller of a backend: the runner and the judge.

Each try runs under an optional timeout. A retryable fault (connection, timeout, 429,
5xx, a malformed body) waits an exponential backoff with jitter before the next try, but
never less than the server's ``Retry-After`` (honoured up to a cap, so one server cannot
park a run for an hour); a fault that is not retryable, or the last try's, ends the loop
with a ``TransportError`` whose ``history`` lists every fault seen, as stored text (no
known secret, no lone surrogate). Transport faults are never replies: the caller records
them as errors.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from obedience._text import escape_surrogates, scrub_secrets
from obedience.backends._base import BackendError, TransportError

T = TypeVar("T")

BACKOFF_CAP_S = 20.0
# A server's Retry-After is honoured up to this many seconds (a longer wait is cut short:
# the retry may then fail again, and the call ends as an error after the last try).
RETRY_AFTER_CAP_S = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` after the first try; ``backoff`` seconds before the first retry, doubling
    per retry (times a jitter in [0.5, 1.5)) up to ``backoff_cap``; ``timeout`` seconds per
    try (None: the backend's own); ``retry_after_cap``: the longest Retry-After obeyed."""

    retries: int = 4
    backoff: float = 1.0
    timeout: float | None = None
    backoff_cap: float = BACKOFF_CAP_S
    retry_after_cap: float = RETRY_AFTER_CAP_S


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


def retry_delay(
    backoff: float,
    attempt: int,
    retry_after: float | None,
    *,
    backoff_cap: float = BACKOFF_CAP_S,
    retry_after_cap: float = RETRY_AFTER_CAP_S,
) -> float:
    """Seconds before retry ``attempt + 1``: exponential backoff with jitter, but never
    sooner than the server's Retry-After (honoured up to ``retry_after_cap``)."""
    delay = float(min(backoff_cap, backoff * 2**attempt) * random.uniform(0.5, 1.5))
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, retry_after_cap))
    return delay


def stored_text(text: str) -> str:
    """Server-sent text (error bodies) as stored: no lone surrogates, no known secrets."""
    return scrub_secrets(escape_surrogates(text))


def as_transport_error(exc: BaseException, timeout: float | None) -> TransportError:
    """Any failure of one try as a TransportError (a backend bug is one too, not retried)."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, TimeoutError):
        return TransportError(f"timed out after {timeout:g}s" if timeout else "timed out")
    if isinstance(exc, BackendError):
        return TransportError(str(exc), retryable=False)
    return TransportError(
        f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:300]}", retryable=False
    )


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    observe: Callable[[TransportError], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> tuple[T, list[str]]:
    """``call()``'s result and the faults of the tries before it, retried under ``policy``.

    ``observe`` sees every failed try as it happens (a caller's circuit breaker may count
    them; raising from it stops the loop). ``sleep``: how to wait between tries
    (``asyncio.sleep``). Raises a non-retryable ``TransportError``
    ending in ``(gave up after N tries)`` with the whole ``history``.
    """
    errors: list[str] = []
    for attempt in range(policy.retries + 1):
        try:
            if policy.timeout is None:
                return await call(), errors
            # A deadline on this task (no task of its own per try, unlike wait_for).
            async with asyncio.timeout(policy.timeout):
                return await call(), errors
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            err = as_transport_error(exc, policy.timeout)
        errors.append(stored_text(str(err)))
        if observe is not None:
            observe(err)
        if not err.retryable or attempt == policy.retries:
            raise TransportError(
                f"{err} (gave up after {attempt + 1} tries)",
                retryable=False,
                history=errors,
                retry_after=err.retry_after,
                status=err.status,
            )
        await (sleep or asyncio.sleep)(
            retry_delay(
                policy.backoff,
                attempt,
                err.retry_after,
                backoff_cap=policy.backoff_cap,
                retry_after_cap=policy.retry_after_cap,
            )
        )
    raise AssertionError("unreachable")  # pragma: no cover
