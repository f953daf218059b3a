"""Events read back from the store as the engine's typed events (``EventRow.event``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from tests.helpers.runs import make_run

from obedience.engine import (
    EVENT_TYPES,
    Event,
    EventDecodeError,
    ReplyReceived,
    TrialEnded,
    event_from_dict,
)
from obedience.runner import RunConfig
from obedience.store import RunStore


def test_every_stored_event_reads_back_as_the_event_that_was_written(tmp_path: Path) -> None:
    config = RunConfig(
        models=["scripted:threshold:3", "scripted:format-breaker", "scripted:obedient"],
        conditions=["DC-NS-FB", "PC-WS-NF"],
        protocol="pihlakas2026",
        trials=1,
    )
    with RunStore.open(make_run(tmp_path / "run", config)) as store:
        rows = list(store.events(final_only=False))
    kinds = Counter(row.kind for row in rows)
    # the run exercises most of the vocabulary: prods, discarded replies, forced presses
    assert {"trial-started", "request", "reply", "discarded", "prod", "shock"} <= set(kinds)
    assert {"forced-press", "trial-ended"} <= set(kinds)
    for row in rows:
        event = row.event
        assert type(event) is EVENT_TYPES[row.kind]
        assert event.to_dict() == row.payload  # nothing lost or renamed
    ended = [r.event for r in rows if r.kind == "trial-ended"]
    assert all(isinstance(e, TrialEnded) for e in ended) and len(ended) == 6
    replies = [r.event for r in rows if r.kind == "reply"]
    assert all(isinstance(e, ReplyReceived) and e.action in ("comply", "refuse", "invalid")
               for e in replies)  # fmt: skip


def test_decoding_is_strict_about_kind_and_fields_and_tolerant_of_extras() -> None:
    reply = {
        "kind": "reply",
        "decision": 1,
        "level": 2,
        "attempt": 1,
        "text": "PRESSED <b>x</b>",
        "tool_call": None,
        "action": "comply",
        "channel": "first-word",
        "comment": "",
        "finish_reason": "stop",
    }
    event = Event.from_dict(reply)
    assert isinstance(event, ReplyReceived) and event.text == "PRESSED <b>x</b>"
    # a key from a newer version is ignored
    assert event_from_dict({**reply, "added_later": 1}) == event
    with pytest.raises(EventDecodeError, match="unknown event kind 'nonsense'"):
        event_from_dict({**reply, "kind": "nonsense"})
    with pytest.raises(EventDecodeError, match="unknown event kind None"):
        event_from_dict({k: v for k, v in reply.items() if k != "kind"})
    missing = {k: v for k, v in reply.items() if k != "level"}
    with pytest.raises(EventDecodeError, match="reply event without its field 'level'"):
        event_from_dict(missing)
