"""Reading one reply as a condition's channel and harness read it, outside a trial.

Pure: the same functions the trial uses (parse, truncation marker, kept text, subject
label), applied to a single reply, for ``obedience protocols parse`` and for users who
check a protocol by machine.
"""

from __future__ import annotations

from typing import Any

from obedience.engine._channels import parse_reply
from obedience.engine._trial import Reply, is_empty, kept_text, marked, subject_turn
from obedience.protocols import ProtocolSpec


def read_reply(spec: ProtocolSpec, reply: Reply) -> dict[str, Any]:
    """How the engine reads one reply under ``spec``, and what it would keep in context.

    The action (comply, refuse, invalid, or empty where empty replies are re-sampled
    uncounted), the canonical word, the comment, whether the reply was marked truncated,
    and the text kept in the model's context under each comment setting (None: the
    reply is discarded and never shown again). ``obedience protocols parse`` prints it.
    """
    harness, channel = spec.harness, spec.channel
    if is_empty(reply) and harness.empty_replies == "retry":
        return {
            "action": "empty",
            "word": None,
            "comment": "",
            "truncated": False,
            "kept": {"preserve": None, "discard": None},
        }
    read = marked(reply, harness.truncation_marker)
    parsed = parse_reply(read.text, read.tool_call, channel, (spec.roles.subject,))
    action = parsed.action
    kept: dict[str, str | None] = {}
    for setting in ("preserve", "discard"):
        counted = action
        if action == "invalid":
            if spec.policy.kind in ("discard-and-retry", "constrained"):
                kept[setting] = None  # discarded: the model never sees it again
                continue
            counted = "refuse" if spec.policy.kind == "invalid-is-refusal" else "invalid"
        if channel.kind == "tool-call":
            kept[setting] = read.text if setting == "preserve" or counted == "invalid" else ""
        else:
            text = kept_text(spec, read.text, parsed, counted, setting)
            kept[setting] = subject_turn(spec, text or "...")
    word = {"comply": channel.comply, "refuse": channel.refuse}.get(action)
    return {
        "action": action,
        "word": word,
        "comment": parsed.comment,
        "truncated": read is not reply,
        "kept": kept,
    }
