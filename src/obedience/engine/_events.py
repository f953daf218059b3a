"""Typed events emitted by a trial.

Every event is a frozen dataclass with a ``kind`` tag. Events are the unit of
record: the store keeps them verbatim, and every analysis is recomputed from
them, so their field names are a stable, documented schema (see
``docs/events.md``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

# "empty": an empty reply that is re-sampled without counting (harness.empty_replies).
Action = Literal["comply", "refuse", "invalid", "empty"]
EndReason = Literal[
    "max-reached", "defiant", "invalid-abort", "step-limit", "error", "content-filter"
]
END_REASONS: tuple[EndReason, ...] = (
    "max-reached",
    "defiant",
    "invalid-abort",
    "step-limit",
    "error",
    "content-filter",
)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    # ``dataclasses.fields`` walks the class's fields on every call; a run serialises
    # about a dozen events per decision, so the names are looked up once per class.
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


@dataclass(frozen=True, slots=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _field_names(type(self))}
        data["kind"] = self.kind
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """The typed event of a stored payload (``to_dict`` inverted); see ``event_from_dict``."""
        return event_from_dict(data)


@dataclass(frozen=True, slots=True)
class TrialStarted(Event):
    kind: ClassVar[str] = "trial-started"
    protocol: str
    condition: str
    seed: int
    max_level: int
    channel: str
    policy: str
    # {factor name: level code} when the condition is a cell of the protocol's design.
    factors: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScriptedTurn(Event):
    """A line spoken by a scripted party, or a scripted line put in the subject's mouth."""

    kind: ClassVar[str] = "scripted-turn"
    speaker: str
    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class LearnerAnswer(Event):
    kind: ClassVar[str] = "learner-answer"
    step: int
    correct: bool
    silent: bool


@dataclass(frozen=True, slots=True)
class RequestIssued(Event):
    """The engine asked the model for a decision (one sampling attempt)."""

    kind: ClassVar[str] = "request"
    decision: int
    level: int
    attempt: int
    prods_used: int
    messages: int


@dataclass(frozen=True, slots=True)
class ReplyReceived(Event):
    """A sampled reply and how the channel parsed it; kept whether or not it is used."""

    kind: ClassVar[str] = "reply"
    decision: int
    level: int
    attempt: int
    text: str
    tool_call: dict[str, Any] | None
    action: Action
    channel: str
    comment: str
    finish_reason: str | None
    # The reply was cut at the token cap and the protocol's truncation marker appended.
    truncated: bool = False
    # The model's reasoning, sent apart from the reply (never parsed as the action).
    reasoning: str | None = None
    # The visible reply was empty (blank, no tool call) while the reasoning was not.
    reasoning_only: bool = False


@dataclass(frozen=True, slots=True)
class ReplyDiscarded(Event):
    """An invalid reply that the orchestrator dropped: the model never sees it again."""

    kind: ClassVar[str] = "discarded"
    decision: int
    level: int
    attempt: int
    expressed_refusal: bool


@dataclass(frozen=True, slots=True)
class EmptyReplyRetried(Event):
    """An empty reply, re-sampled without counting toward the attempts."""

    kind: ClassVar[str] = "empty-retry"
    decision: int
    level: int
    attempt: int
    empties: int


@dataclass(frozen=True, slots=True)
class EmptyRetryCapReached(Event):
    """The cap on uncounted empty retries was reached: from here an empty reply counts as
    invalid. A deviation from the paper, whose transport retried empty replies forever."""

    kind: ClassVar[str] = "empty-cap"
    decision: int
    level: int
    empties: int


@dataclass(frozen=True, slots=True)
class RetryIssued(Event):
    kind: ClassVar[str] = "retry"
    decision: int
    level: int
    attempt: int


@dataclass(frozen=True, slots=True)
class FormatReminder(Event):
    kind: ClassVar[str] = "format-reminder"
    decision: int
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class ProdGiven(Event):
    kind: ClassVar[str] = "prod"
    decision: int
    level: int
    index: int
    text: str
    special: bool


@dataclass(frozen=True, slots=True)
class ForcedPress(Event):
    kind: ClassVar[str] = "forced-press"
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class ShockDelivered(Event):
    kind: ClassVar[str] = "shock"
    level: int
    label: str
    forced: bool
    repeat: int


@dataclass(frozen=True, slots=True)
class LearnerReaction(Event):
    kind: ClassVar[str] = "learner-reaction"
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class TransportFailed(Event):
    kind: ClassVar[str] = "transport-error"
    decision: int
    message: str


@dataclass(frozen=True, slots=True)
class TrialEnded(Event):
    kind: ClassVar[str] = "trial-ended"
    reason: EndReason
    highest_level: int
    decisions: int
    steps: int


def dump_events(events: list[Event]) -> str:
    """A canonical, byte-stable JSONL rendering of a transcript."""
    return "".join(
        json.dumps(e.to_dict(), sort_keys=True, ensure_ascii=False) + "\n" for e in events
    )


# ------------------------------------------------------------------ reading events back


class EventDecodeError(ValueError):
    """A stored payload is not an event of this version. The message is one line."""


def _event_types() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    todo: list[type[Event]] = list(Event.__subclasses__())
    while todo:
        cls = todo.pop()
        found.setdefault(cls.kind, cls)
        todo.extend(cls.__subclasses__())
    return found


EVENT_TYPES: dict[str, type[Event]] = _event_types()
"""Every event class by its ``kind`` tag."""


_REQUIRED = object()
_FIELDS: dict[type[Event], tuple[tuple[str, Any, bool], ...]] = {}


def _fields_of(cls: type[Event]) -> tuple[tuple[str, Any, bool], ...]:
    """(name, default or _REQUIRED, whether the default is a factory) per field, cached."""
    cached = _FIELDS.get(cls)
    if cached is None:
        specs: list[tuple[str, Any, bool]] = []
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                specs.append((f.name, f.default, False))
            elif f.default_factory is not dataclasses.MISSING:
                specs.append((f.name, f.default_factory, True))
            else:
                specs.append((f.name, _REQUIRED, False))
        cached = _FIELDS[cls] = tuple(specs)
    return cached


def event_from_dict(data: dict[str, Any]) -> Event:
    """The typed event of a payload written by ``Event.to_dict`` (the store's ``payload``).

    Keys the class does not know are ignored (a payload from a newer version); a field
    the payload lacks takes the class's default, or raises ``EventDecodeError``.
    """
    kind = data.get("kind")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventDecodeError(f"unknown event kind {kind!r}")
    values: dict[str, Any] = {}
    for name, default, factory in _fields_of(cls):
        if name in data:
            values[name] = data[name]
        elif default is _REQUIRED:
            raise EventDecodeError(f"{kind} event without its field {name!r}")
        else:
            values[name] = default() if factory else default
    return cls(**values)
