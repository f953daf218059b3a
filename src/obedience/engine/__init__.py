"""The experiment engine: a pure state machine with no I/O and no clock."""

from obedience.engine._channels import (
    COMPLY_TOOL,
    REFUSE_TOOL,
    Parsed,
    canonical_text,
    parse_reply,
    tool_definitions,
)
from obedience.engine._events import (
    END_REASONS,
    Action,
    EmptyReplyRetried,
    EmptyRetryCapReached,
    EndReason,
    Event,
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
    dump_events,
)
from obedience.engine._intent import looks_like_refusal
from obedience.engine._subjects import SCRIPTED_SUBJECTS, Subject, scripted_subject, spell
from obedience.engine._trial import (
    EngineUsageError,
    Message,
    Reply,
    Request,
    Trial,
    is_empty,
    kept_text,
    marked,
    subject_turn,
)

__all__ = [
    "COMPLY_TOOL",
    "END_REASONS",
    "REFUSE_TOOL",
    "SCRIPTED_SUBJECTS",
    "Action",
    "EmptyReplyRetried",
    "EmptyRetryCapReached",
    "EndReason",
    "EngineUsageError",
    "Event",
    "ForcedPress",
    "FormatReminder",
    "LearnerAnswer",
    "LearnerReaction",
    "Message",
    "Parsed",
    "ProdGiven",
    "Reply",
    "ReplyDiscarded",
    "ReplyReceived",
    "Request",
    "RequestIssued",
    "RetryIssued",
    "ScriptedTurn",
    "ShockDelivered",
    "Subject",
    "TransportFailed",
    "Trial",
    "TrialEnded",
    "TrialStarted",
    "canonical_text",
    "dump_events",
    "is_empty",
    "kept_text",
    "looks_like_refusal",
    "marked",
    "parse_reply",
    "scripted_subject",
    "spell",
    "subject_turn",
    "tool_definitions",
]


def run_with(trial: Trial, subject: Subject) -> Trial:
    """Drive a trial to the end with a synchronous subject (scripted or test double)."""
    while (request := trial.next_request()) is not None:
        trial.submit_reply(subject(request))
    return trial


__all__.append("run_with")
