"""The engine's speed-ups change nothing a caller can see: shared per-condition tables and
events, the fast dataclass builders, the inlined random draws and the parsers' shortcuts
each give what the plain definition gives."""

from __future__ import annotations

import dataclasses
import json
import random
import re

import pytest
from engine_support import by_request, run
from hypothesis import given, settings
from hypothesis import strategies as st

from obedience.engine import (
    Reply,
    ReplyReceived,
    Request,
    ScriptedTurn,
    Trial,
    TrialStarted,
    _channels,
    _plan,
    dump_events,
    scripted_subject,
    spell,
)
from obedience.engine._builders import frozen_builder
from obedience.engine._trial import _below
from obedience.protocols import Protocol, ProtocolSpec

SUBJECTS = ["obedient", "defiant", "distressed", "format-breaker", "threshold:5"]


def _varied(request: Request) -> Reply:
    """Invalid, refusing and complying replies, with comments that differ by decision."""
    if request.attempt == 1 and request.level % 4 == 0:
        return Reply(text="I would rather not say.")
    if request.level in (3, 7) and request.decision % 2 == 0:
        return spell(request, False, f"Not at {request.level}; he is in pain.")
    return spell(request, True, f"Decision {request.decision}.")


def _labelled(spec: ProtocolSpec) -> ProtocolSpec:
    """The condition with level-dependent instructions and prods (the built-ins have none)."""
    texts = {
        kind: text.model_copy(update={"instruction": f"At {{label}}: {text.instruction}"})
        for kind, text in spec.channel.texts.items()
    }
    prods = spec.prods.model_copy(update={"texts": [f"{{label}}. {t}" for t in spec.prods.texts]})
    channel = spec.channel.model_copy(update={"texts": texts})
    return spec.model_copy(update={"channel": channel, "prods": prods})


def _record(trial: Trial, requests: list[Request]) -> str:
    """The events, and the last request as sent: its messages hold the whole context,
    format instructions included, which no event records."""
    return dump_events(trial.events) + json.dumps(dataclasses.asdict(requests[-1]))


def _transcripts(protocol: Protocol, seeds: range) -> list[str]:
    out = []
    for condition, spec in protocol.conditions.items():
        for name in SUBJECTS:
            for seed in seeds:
                out.append(_record(*run(protocol, condition, scripted_subject(name), seed=seed)))
        out.append(_record(*run(protocol, condition, by_request(_varied), seed=seeds[0])))
        out.append(_record(*run(_labelled(spec), condition, by_request(_varied), seed=seeds[0])))
    return out


@pytest.fixture
def afresh(paper: Protocol, milgram: Protocol, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The transcripts with nothing shared: every line and event computed as it is needed."""
    monkeypatch.setattr(_plan, "_PLANS", {})
    monkeypatch.setattr(_plan, "CACHE_LIMIT", 0)
    expected = [*_transcripts(paper, range(1, 3)), *_transcripts(milgram, range(1, 4))]
    monkeypatch.setattr(_plan, "_PLANS", {})
    monkeypatch.undo()
    return expected


def test_shared_tables_and_events_change_no_transcript(
    paper: Protocol, milgram: Protocol, afresh: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_plan, "_PLANS", {})
    cold = [*_transcripts(paper, range(1, 3)), *_transcripts(milgram, range(1, 4))]
    warm = [*_transcripts(paper, range(1, 3)), *_transcripts(milgram, range(1, 4))]
    assert cold == afresh
    assert warm == afresh


def test_full_caches_and_evicted_plans_change_no_transcript(
    paper: Protocol, milgram: Protocol, afresh: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Caches that fill after a handful of entries, and room for one plan at a time: some
    # lines and events are shared, most made afresh, and plans rebuilt as conditions alternate.
    monkeypatch.setattr(_plan, "_PLANS", {})
    monkeypatch.setattr(_plan, "CACHE_LIMIT", 5)
    monkeypatch.setattr(_plan, "PLAN_LIMIT", 1)
    assert [*_transcripts(paper, range(1, 3)), *_transcripts(milgram, range(1, 4))] == afresh
    (plan,) = _plan._PLANS.values()
    caches = (plan.events, plan.steps, plan.texts, plan.lines, plan.instructions, plan.reacted)
    assert all(len(cache) <= 5 for cache in caches)


def test_a_plan_belongs_to_its_spec_object(paper: Protocol) -> None:
    spec = paper.condition("PC-NS-NF")
    twin = spec.model_copy(update={"title": "another title"})
    assert _plan.plan_for(spec) is _plan.plan_for(spec)
    assert _plan.plan_for(twin) is not _plan.plan_for(spec)
    assert _plan.plan_for(twin).spec is twin


def test_requests_of_one_condition_do_not_share_their_context(paper: Protocol) -> None:
    spec = paper.condition("PC-NS-NF")
    _, first = run(spec, "PC-NS-NF", scripted_subject("obedient"), seed=1)
    first[0].messages[0]["content"] = "changed by a careless caller"
    _, second = run(spec, "PC-NS-NF", scripted_subject("obedient"), seed=1)
    assert second[0].messages[0]["content"] != "changed by a careless caller"


# --------------------------------------------------------------------------- builders


def test_a_builder_makes_what_the_class_makes() -> None:
    build = frozen_builder(ReplyReceived)
    fields = dict(
        decision=2,
        level=3,
        attempt=1,
        text="PRESSED. fine",
        tool_call=None,
        action="comply",
        channel="first-word",
        comment="fine",
        finish_reason="stop",
    )
    made = build(**fields)
    assert made == ReplyReceived(**fields)
    assert made.truncated is False  # the class's default
    assert made.to_dict() == ReplyReceived(**fields).to_dict()
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.text = "REFUSE"  # type: ignore[misc]
    with pytest.raises(TypeError):
        build(decision=2)  # required fields stay required


def test_a_builder_applies_default_factories_afresh() -> None:
    build = frozen_builder(TrialStarted)
    args = dict(protocol="p", condition="c", seed=1, max_level=3, channel="json", policy="x")
    one, two = build(**args), build(**args)
    assert one == TrialStarted(**args)
    assert one.factors == {} and one.factors is not two.factors


def test_fixed_fields_leave_every_other_field_required() -> None:
    build = frozen_builder(ScriptedTurn, {"role": "user"})
    assert build(speaker="Learner", text="Ow!") == ScriptedTurn("Learner", "user", "Ow!")
    with pytest.raises(TypeError):
        build(speaker="Learner")
    with pytest.raises(TypeError, match="no field"):
        frozen_builder(ScriptedTurn, {"volume": 3})


def test_builders_refuse_classes_they_cannot_make_faithfully() -> None:
    @dataclasses.dataclass(slots=True)
    class Loose:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            if self.x < 0:
                raise ValueError("negative")

    for cls in (Loose, Checked):
        with pytest.raises(TypeError):
            frozen_builder(cls)


# ----------------------------------------------------------------------- random draws


@given(seed=st.integers(0, 2**40), n=st.integers(1, 5000))
def test_draws_are_randranges_draws(seed: int, n: int) -> None:
    ours, reference = random.Random(seed), random.Random(seed)
    assert [_below(ours.getrandbits, n) for _ in range(20)] == [
        reference.randrange(n) for _ in range(20)
    ]
    assert ours.random() == reference.random()  # and the stream stays in step


@given(seed=st.integers(0, 2**40), size=st.integers(1, 8))
def test_the_inlined_shuffle_is_random_shuffle(seed: int, size: int) -> None:
    ours, reference = random.Random(seed), random.Random(seed)
    mine, theirs = list(range(size)), list(range(size))
    for i in range(len(mine) - 1, 0, -1):
        j = _below(ours.getrandbits, i + 1)
        mine[i], mine[j] = mine[j], mine[i]
    reference.shuffle(theirs)
    assert mine == theirs


# ------------------------------------------------------------------- parser shortcuts

_MARKS = " \t\n.,:;!?/\\-_*\"'`\u2018\u2019\u201c\u201d\u00a0\u2028\u3000"
lines = st.lists(st.sampled_from([*_MARKS, "a", "B", "é", "PRESSED", "I", "x1"])).map("".join)


@settings(max_examples=400)
@given(line=lines)
def test_the_first_token_is_the_first_piece_of_the_papers_split(line: str) -> None:
    pieces = [p for p in _channels._SEPARATORS.split(line.translate(_channels._QUOTES)) if p]
    token = _channels._FIRST_TOKEN.search(line)
    assert (token.group().translate(_channels._QUOTES) if token else "") == (
        pieces[0] if pieces else ""
    )


def _comment_by_definition(body: str) -> str:
    """Drop the separators, then the first token as written, then blanks and one mark."""
    rest = body[re.match(r"^[\s.,:;!/\\-]*", body).end() :]  # type: ignore[union-attr]
    end = re.search(r"[\s.,:;!/\\-]+", rest)
    rest = (rest[end.start() :] if end else "").lstrip(" \t")
    return (rest[1:] if re.match(r"^[.,:;!?/\\-]", rest) else rest).strip()


@settings(max_examples=400)
@given(body=lines)
def test_the_comment_after_the_first_token_follows_its_definition(body: str) -> None:
    assert _channels._comment_after_first_token(body) == _comment_by_definition(body)


def _action_line_by_definition(text: str, channel: object) -> tuple[str, str]:
    """The last non-empty line, stripped, must be the action line."""
    body = text.rstrip()
    kept = body.split("\n")
    while kept and not kept[-1].strip():
        kept.pop()
    if not kept:
        return ("invalid", "")
    found = _channels._ACTION_LINE.match(kept[-1].strip())
    comment = "\n".join(kept[:-1]).strip()
    if not found:
        return ("invalid", body.strip())
    word = found.group(1).upper()
    if word in ("SHOCK", channel.comply):  # type: ignore[attr-defined]
        return ("comply", comment)
    if word in ("STOP", channel.refuse):  # type: ignore[attr-defined]
        return ("refuse", comment)
    return ("invalid", body.strip())


@settings(max_examples=400)
@given(
    text=st.lists(
        st.sampled_from(
            [*" \n\r\t\x0c\u2028\x85:*-xé", "ACTION", "action", "SHOCK", "stop", "PRESSED"]
        )
    ).map("".join)
)
def test_the_action_line_parser_reads_the_last_non_empty_line(text: str, milgram: Protocol) -> None:
    channel = milgram.condition("baseline").channel
    parsed = _channels.parse_action_line(text, channel)
    assert (parsed.action, parsed.comment) == _action_line_by_definition(text, channel)


# ------------------------------------------------------------- shortcuts of this round


def test_a_built_object_is_of_the_class_itself() -> None:
    # Builders fill a same-layout maker and switch its class: what they return is the class.
    build = frozen_builder(ReplyReceived)
    made = build(
        decision=1,
        level=1,
        attempt=1,
        text="x",
        tool_call=None,
        action="comply",
        channel="first-word",
        comment="",
        finish_reason=None,
    )
    assert type(made) is ReplyReceived
    with pytest.raises(dataclasses.FrozenInstanceError):
        del made.text  # type: ignore[misc]


@pytest.mark.parametrize(
    "fmt",
    [
        "{speaker}: {text}",
        "{speaker}:\n\n{text}",
        "{text} ({speaker})",
        "{{literal}} {speaker}: {text}",
        "{speaker!r}: {text}",
        "{speaker}: {text:>10}",
        "{speaker} {text} {text}",
    ],
)
def test_turn_affixes_lay_out_a_line_as_the_format_does(fmt: str) -> None:
    found = _plan.affixes(fmt, "Alice")
    for text in ["", "PRESSED", "a {b} c", "Line\nbreak"]:
        if found is not None:
            assert found[0] + text + found[1] == fmt.format(speaker="Alice", text=text)
    # Formats with conversions, format specs or a repeated text are left to str.format.
    assert (found is None) == ("!r" in fmt or ":>" in fmt or fmt.count("{text}") > 1)


openings = st.tuples(
    st.sampled_from(["PRESSED", "REFUSE", "NO", "I", "Alice: PRESSED", " PRESSED", "PRESSED_X"]),
    st.lists(st.sampled_from([*_MARKS, "a", "B", "é", "PRESSED", "I", "REFUSE"])).map("".join),
).map("".join)


@settings(max_examples=400)
@given(text=openings)
def test_the_first_word_shortcut_reads_what_the_full_reading_reads(
    text: str, paper: Protocol
) -> None:
    for channel in (
        paper.condition("PC-NS-NF").channel,
        paper.condition("PC-NS-NF").channel.model_copy(update={"refusal_first_words": ["PRESSED"]}),
    ):
        quick = _channels.parse_first_word(text, channel, ("Alice",))
        with pytest.MonkeyPatch.context() as m:
            m.setattr(_channels, "_leading_word", lambda body, channel: None)
            full = _channels.parse_first_word(text, channel, ("Alice",))
        assert quick == full


action_texts = st.lists(st.sampled_from(["ACTION: SHOCK", "ACTION: STOP", "\n", " ", "x"]))


@settings(max_examples=300)
@given(text=action_texts.map("".join))
def test_the_plain_action_lines_read_as_the_pattern_reads_them(
    text: str, milgram: Protocol
) -> None:
    channel = milgram.condition("baseline").channel
    assert _channels.parse_action_line(text, channel) == _action_line_by_definition_parsed(
        text, channel
    )


def _action_line_by_definition_parsed(text: str, channel: object) -> _channels.Parsed:
    action, comment = _action_line_by_definition(text, channel)
    return _channels.Parsed(action, comment)  # type: ignore[arg-type]
