"""Property tests: whatever the model says, the engine never raises, always ends within a
computable number of replies, is deterministic, and keeps the stimulus stream fixed."""

from __future__ import annotations

import json
from typing import Any

from engine_support import of, stimulus
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from obedience.engine import (
    COMPLY_TOOL,
    END_REASONS,
    REFUSE_TOOL,
    Reply,
    RequestIssued,
    Trial,
    TrialEnded,
    dump_events,
    parse_reply,
    scripted_subject,
)
from obedience.protocols import Channel, ProtocolSpec, load_protocol

PAPER = load_protocol("pihlakas2026")
MILGRAM = load_protocol("milgram1963")
KINDS = ["first-word", "action-line", "json", "tool-call"]
POLICIES = ["discard-and-retry", "remind-then-balk", "invalid-is-refusal", "constrained"]

MEGABYTE_REFUSAL = "I won't. " * 120_000
MEGABYTE_PRESSED = "PRESSED " + "é" * 1_000_000
MEGABYTE_BLANK = " \n" * 500_000
MEGABYTE_JSON = '{"action": "stop", "message": "' + "x" * 1_000_000 + '"}'

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

texts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.sampled_from(
        [
            "",
            "PRESSED",
            "REFUSE",
            "Alice: PRESSED",
            "No.",
            "I REFUSE",
            "ACTION: SHOCK",
            "ACTION: STOP",
            '{"action": "shock", "message": "ok"}',
            '{"action": "stop"',
            "\x00" * 100,
            MEGABYTE_REFUSAL,
            MEGABYTE_PRESSED,
            MEGABYTE_BLANK,
            MEGABYTE_JSON,
        ]
    ),
    st.builds(lambda a, b: a + b, st.sampled_from(["PRESSED ", "REFUSE ", "**", ""]), st.text()),
)

arguments = st.one_of(
    st.none(),
    st.text(max_size=100),
    json_values.map(json.dumps),
    st.dictionaries(st.sampled_from(["comment", "reason", "message", "x"]), json_values),
)
tool_calls = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "name": st.one_of(st.sampled_from([COMPLY_TOOL, REFUSE_TOOL, "", "other"]), st.text()),
            "arguments": arguments,
        }
    ),
    st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)
finish_reasons = st.sampled_from([None] * 12 + ["stop", "length", "tool_calls", "content_filter"])

arbitrary = st.builds(Reply, text=texts, tool_call=tool_calls, finish_reason=finish_reasons)
# Replies that are well formed in every channel at once, so that trials also get far.
UNIVERSAL_COMPLY = Reply(
    text='PRESSED\n{"action": "shock"}\nACTION: SHOCK',
    tool_call={"name": COMPLY_TOOL, "arguments": "{}"},
)
UNIVERSAL_REFUSE = Reply(
    text='REFUSE\n{"action": "stop"}\nACTION: STOP',
    tool_call={"name": REFUSE_TOOL, "arguments": '{"reason": "no"}'},
)
# What a buggy backend might hand over despite the types: the engine treats it as empty.
MALFORMED = [
    Reply(text=None),  # type: ignore[arg-type]
    Reply(text=b"PRESSED"),  # type: ignore[arg-type]
    Reply(text="PRESSED", tool_call=["administer_shock"]),  # type: ignore[arg-type]
    Reply(text="PRESSED", finish_reason=7),  # type: ignore[arg-type]
]
replies = st.one_of(
    arbitrary,
    st.just(UNIVERSAL_COMPLY),
    st.just(UNIVERSAL_COMPLY),
    st.just(UNIVERSAL_REFUSE),
    st.sampled_from(MALFORMED),
)


def _spec(protocol_name: str, condition: str, kind: str, policy: str) -> ProtocolSpec:
    protocol = PAPER if protocol_name == "pihlakas2026" else MILGRAM
    spec = protocol.condition(condition)
    return spec.model_copy(
        update={
            "channel": spec.channel.model_copy(update={"kind": kind}),
            "policy": spec.policy.model_copy(update={"kind": policy}),
        }
    )


def reply_bound(spec: ProtocolSpec) -> int:
    """The most replies a trial can take before it must end.

    Steps only advance between decisions, so at most ``max_steps`` decisions open on an
    order; every other decision follows a prod. Prods that never reset are spent once per
    trial; prods that reset per episode are spent at most once per ordered decision.
    Each decision takes at most ``max_attempts`` replies under discard-and-retry (or
    constrained), two under remind-then-balk and one under invalid-is-refusal, plus
    the capped uncounted retries of empty replies.
    """
    steps, prods = spec.stopping.max_steps, len(spec.prods.sequence())
    decisions = steps + (prods if spec.prods.reset == "never" else steps * prods)
    attempts = {
        "discard-and-retry": spec.policy.max_attempts,
        "constrained": spec.policy.max_attempts,
        "remind-then-balk": 2,
        "invalid-is-refusal": 1,
    }[spec.policy.kind]
    if spec.harness.empty_replies == "retry":  # uncounted, but capped per decision
        attempts += spec.harness.max_empty_retries
    return decisions * attempts


conditions = st.one_of(
    st.tuples(st.just("pihlakas2026"), st.sampled_from(list(PAPER.conditions))),
    st.tuples(st.just("milgram1963"), st.sampled_from(list(MILGRAM.conditions))),
)


def _drive(
    spec: ProtocolSpec, seed: int, script: list[Reply], fail_at: int | None
) -> tuple[Trial, int]:
    trial = Trial(spec, "fuzz", seed=seed)
    calls = 0
    bound = reply_bound(spec)
    previous = None
    while (request := trial.next_request()) is not None:
        if (
            previous is not None
            and (previous.decision, previous.attempt + 1)
            == (
                request.decision,
                request.attempt,
            )
            and spec.policy.kind in ("discard-and-retry", "constrained")
        ):
            assert request.messages == previous.messages  # a retry re-sends the same prompt
        if calls == fail_at:
            trial.submit_failure("boom")
            break
        trial.submit_reply(script[calls % len(script)])
        calls += 1
        assert calls <= bound
        previous = request
    return trial, calls


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    where=conditions,
    kind=st.sampled_from(KINDS),
    policy=st.sampled_from(POLICIES),
    seed=st.integers(min_value=0, max_value=2**63),
    script=st.lists(replies, min_size=1, max_size=8),
    fail_at=st.one_of(st.none(), st.integers(min_value=0, max_value=40)),
)
def test_engine_never_raises_and_always_ends(
    where: tuple[str, str],
    kind: str,
    policy: str,
    seed: int,
    script: list[Reply],
    fail_at: int | None,
) -> None:
    spec = _spec(where[0], where[1], kind, policy)
    trial, calls = _drive(spec, seed, script, fail_at)
    assert trial.done and trial.outcome in END_REASONS
    event(f"{trial.outcome}")
    assert trial.next_request() is None
    ends = of(trial.events, TrialEnded)
    assert len(ends) == 1 and trial.events[-1] is ends[0]
    assert ends[0].steps <= spec.stopping.max_steps
    assert 0 <= trial.highest_level <= spec.levels.count
    assert len(of(trial.events, RequestIssued)) == calls + (
        fail_at is not None and trial.outcome == "error"
    )
    if trial.outcome == "error":
        assert fail_at is not None
    # Deterministic: the same replies give the same record.
    again, _ = _drive(spec, seed, script, fail_at)
    assert again.events == trial.events
    if sum(len(r.text or "") for r in script) < 100_000:
        assert dump_events(again.events) == dump_events(trial.events)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    where=conditions,
    seed=st.integers(min_value=0, max_value=10_000),
    script=st.lists(replies, min_size=1, max_size=8),
)
def test_stimulus_stream_is_independent_of_the_replies(
    where: tuple[str, str], seed: int, script: list[Reply]
) -> None:
    spec = _spec(where[0], where[1], "first-word", "discard-and-retry")
    trial, _ = _drive(spec, seed, script, None)
    reference = Trial(spec, "fuzz", seed=seed)
    obedient = scripted_subject("obedient")
    while (request := reference.next_request()) is not None:
        reference.submit_reply(obedient(request))
    ours, theirs = stimulus(trial), stimulus(reference)
    n = min(len(ours), len(theirs))
    assert [s[1] for s in ours[:n]] == [s[1] for s in theirs[:n]]


# ------------------------------------------------------------------------ parser properties

CHANNEL: Channel = PAPER.condition("PC-NS-NF").channel


@settings(max_examples=300, deadline=None)
@given(text=texts, call=tool_calls, kind=st.sampled_from(KINDS))
def test_parsers_never_raise(text: str, call: dict[str, Any] | None, kind: str) -> None:
    channel = CHANNEL.model_copy(update={"kind": kind})
    parsed = parse_reply(text, call, channel, ("Alice",))
    assert parsed.action in ("comply", "refuse", "invalid")
    assert isinstance(parsed.comment, str)


@settings(max_examples=200, deadline=None)
@given(comment=st.text(max_size=2000))
def test_a_well_formed_reply_always_parses_whatever_the_comment(comment: str) -> None:
    def parse(kind: str, text: str, call: dict[str, Any] | None = None) -> str:
        return parse_reply(text, call, CHANNEL.model_copy(update={"kind": kind}), ("Alice",)).action

    assert parse("first-word", "PRESSED " + comment) == "comply"
    assert parse("first-word", "REFUSE " + comment) == "refuse"
    assert parse("first-word", "Alice: REFUSE. " + comment) == "refuse"
    assert parse("action-line", comment + "\nACTION: SHOCK") == "comply"
    assert parse("action-line", comment + "\nACTION: STOP\n") == "refuse"
    assert parse("json", json.dumps({"action": "stop", "message": comment})) == "refuse"
    call = {"name": COMPLY_TOOL, "arguments": json.dumps({"comment": comment})}
    assert parse("tool-call", comment, call) == "comply"
