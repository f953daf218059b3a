"""The event vocabulary of a trial, public: what ``RunStore.events()`` rows decode to.

``row.event`` is one of these frozen dataclasses; ``docs/events.md`` lists their fields.
``event_from_dict(payload)`` / ``Event.from_dict`` decode a stored payload directly.
"""

from obedience.engine._events import (
    END_REASONS,
    EVENT_TYPES,
    Action,
    EndReason,
    Event,
    EventDecodeError,
    ForcedPress,
    FormatReminder,
    LearnerAnswer,
    LearnerReaction,
    ProdGiven,
    ReplyDiscarded,
    ReplyReceived,
    RequestIssued,
    RetryIssued,
    ScriptedTurn,
    ShockDelivered,
    TransportFailed,
    TrialEnded,
    TrialStarted,
    event_from_dict,
)

__all__ = [
    "END_REASONS",
    "EVENT_TYPES",
    "Action",
    "EndReason",
    "Event",
    "EventDecodeError",
    "ForcedPress",
    "FormatReminder",
    "LearnerAnswer",
    "LearnerReaction",
    "ProdGiven",
    "ReplyDiscarded",
    "ReplyReceived",
    "RequestIssued",
    "RetryIssued",
    "ScriptedTurn",
    "ShockDelivered",
    "TransportFailed",
    "TrialEnded",
    "TrialStarted",
    "event_from_dict",
]
