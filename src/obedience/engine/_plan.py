"""What a protocol condition fixes for all of its trials, worked out once.

A run plays hundreds of trials of one condition, and every one of them speaks the same
scripted lines at the same levels. The trial engine therefore looks up, rather than
recomputes, everything that depends on the condition alone: the level tables, the filled
templates, the speaker-labelled lines and the events that carry only such values.

Sharing events between trials is safe because events are frozen: a trial's transcript is
the same sequence of values whether an event was built for it or found in the cache.
Every cache is bounded, so a protocol with very many levels or task items costs memory
in proportion to the limit, not to the number of trials.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obedience.engine._builders import frozen_builder
from obedience.engine._channels import canonical_text, gbnf_grammar, json_schema, tool_definitions
from obedience.engine._events import Event, ReplyReceived, ShockDelivered
from obedience.protocols import ProtocolSpec
from obedience.protocols._schema import Interjection, Reaction, SpecialProd

# Entries each cache may hold; past it, values are computed afresh each time.
CACHE_LIMIT = 4096
# Plans kept at once (one per condition in use); the oldest is dropped past this.
PLAN_LIMIT = 32


def remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) < CACHE_LIMIT:
        cache[key] = value


@dataclass(slots=True, eq=False)
class Plan:
    """The condition's constant tables and the caches its trials share."""

    spec: ProtocolSpec
    max_level: int
    names: dict[str, str]
    static_fields: dict[str, str]
    forced: tuple[bool, ...]
    reactions: tuple[Reaction | None, ...]
    interjections: tuple[tuple[Interjection, ...], ...]
    prods: tuple[str, ...]
    specials: tuple[tuple[tuple[re.Pattern[str], ...], SpecialProd], ...]
    item_texts: tuple[str, ...]
    tools: list[dict[str, Any]] | None
    grammar: str | None
    schema: dict[str, Any] | None
    # Options the trial reads on every decision, looked up once (see _build).
    kind: str
    # The channel reads the last line strictly as the action line (parse_action_line).
    strict_lines: bool
    retry_empty: bool
    marker: str
    comply_text: str
    refuse_text: str
    preserve: bool
    rebuilt: bool
    own_affixes: tuple[str, str] | None
    discards: bool
    per_episode: bool
    max_steps: int
    # The shocks of a first delivery at each level, given and forced.
    own_shocks: tuple[ShockDelivered | None, ...]
    forced_shocks: tuple[ShockDelivered | None, ...]
    # The task's random draws: bits per item draw (first item, later items), and per
    # multiple-choice item the count of wrong options, its bits and the right option.
    item_bits: tuple[int, int]
    pair_fast: bool
    cues: tuple[tuple[int, int, int], ...]
    max_options: int
    # Makes the condition's ReplyReceived events (its channel fixed).
    reply_received: Callable[..., ReplyReceived]
    # How a speaker's turn begins in the transcript ("Bob:"), one per named role: a model
    # that continues raw text rather than answering in a chat turn (a base model) has
    # ended its own turn when it starts a line with one of these.
    turn_openings: tuple[str, ...] = ()
    # What the setup leaves behind (context, pending lines, events): the same for every
    # trial of the condition, so it is played once and copied after that.
    setup: tuple[tuple[dict[str, Any], ...], tuple[str, ...], tuple[Event, ...]] | None = None
    # Makes the condition's requests from the fields that vary (see Trial._request_fields).
    request: Callable[..., Any] | None = None
    level_fields: dict[int, dict[str, str]] = field(default_factory=dict)
    texts: dict[tuple[str, int], str] = field(default_factory=dict)
    lines: dict[tuple[str, str, int], tuple[str, str]] = field(default_factory=dict)
    # Per level: the decision's instruction line; the learner's reaction and its event.
    instructions: dict[int, str] = field(default_factory=dict)
    reacted: dict[int, tuple[str, Event]] = field(default_factory=dict)
    # A task step's lines, keyed by level, item, answer, correct, silent and repeating.
    steps: dict[tuple[Any, ...], tuple[tuple[str, ...], tuple[Event, ...], Event]] = field(
        default_factory=dict
    )
    events: dict[tuple[Any, ...], Event] = field(default_factory=dict)
    # A task step's lines and outcome by a whole-number key (see Trial._task_step), and
    # the learner's answers by step number, correctness and silence.
    draws: dict[int, tuple[tuple[str, ...], tuple[Event, ...], Event, bool]] = field(
        default_factory=dict
    )
    answers: dict[int, Event] = field(default_factory=dict)


_PLANS: dict[int, Plan] = {}


def plan_for(spec: ProtocolSpec) -> Plan:
    """The plan of ``spec``, built on first use. The plan holds the spec, so its id stays its."""
    plan = _PLANS.get(id(spec))
    if plan is not None and plan.spec is spec:
        return plan
    plan = _build(spec)
    if len(_PLANS) >= PLAN_LIMIT:
        del _PLANS[next(iter(_PLANS))]
    _PLANS[id(spec)] = plan
    return plan


def _build(spec: ProtocolSpec) -> Plan:
    count = spec.levels.count
    levels = range(count + 1)  # index 0 is unused: levels are numbered from 1
    roles = spec.roles
    channel = spec.channel
    constrained = spec.policy.kind == "constrained"
    task = spec.task
    if task.kind == "word-pairs":
        item_texts = tuple(" ".join(pair) for pair in task.pairs)
    else:
        item_texts = tuple(f"{cue.cue}: {', '.join(cue.options)}." for cue in task.items)
    harness = spec.harness
    labels = [label(spec, level) if level else "" for level in levels]
    items = len(item_texts)
    return Plan(
        spec=spec,
        max_level=count,
        names={
            "experimenter": roles.experimenter,
            "learner": roles.learner,
            "peer": roles.peer,
            "subject": roles.subject,
            "narrator": "",
        },
        static_fields={
            "subject": roles.subject,
            "experimenter": roles.experimenter,
            "learner": roles.learner,
            "peer": roles.peer,
            "comply": channel.comply,
            "refuse": channel.refuse,
            "item": "",
            "answer": "",
            "max_label": label(spec, count),
        },
        forced=tuple(level > 0 and spec.is_forced(level) for level in levels),
        reactions=tuple(spec.reaction(level) if level else None for level in levels),
        interjections=tuple(
            tuple(j for j in spec.interjections if j.after_level == level) for level in levels
        ),
        prods=tuple(spec.prods.sequence()),
        specials=tuple(
            (tuple(re.compile(p) for p in special.patterns), special)
            for special in spec.prods.special
        ),
        item_texts=item_texts,
        tools=tool_definitions() if channel.kind == "tool-call" else None,
        grammar=gbnf_grammar(channel) if constrained else None,
        schema=json_schema() if constrained and channel.kind == "json" else None,
        kind=channel.kind,
        strict_lines=channel.kind == "action-line" and channel.action_line == "strict",
        retry_empty=harness.empty_replies == "retry",
        marker=harness.truncation_marker,
        comply_text=canonical_text(channel, "comply"),
        refuse_text=canonical_text(channel, "refuse"),
        preserve=spec.comments == "preserve",
        rebuilt=harness.past_turns == "rebuilt" and channel.kind == "first-word",
        own_affixes=affixes(spec.turn_format, roles.subject) if harness.subject_label else ("", ""),
        discards=spec.policy.kind in ("discard-and-retry", "constrained"),
        per_episode=spec.prods.reset == "per-episode",
        max_steps=spec.stopping.max_steps,
        own_shocks=tuple(_first_shock(level, labels[level], False) for level in levels),
        forced_shocks=tuple(_first_shock(level, labels[level], True) for level in levels),
        item_bits=(items.bit_length(), (items - 1).bit_length()),
        pair_fast=task.kind == "word-pairs"
        and not task.shuffle_persists
        and all(len(pair) == 2 for pair in task.pairs),
        cues=tuple(
            (len(cue.options) - 1, (len(cue.options) - 1).bit_length(), cue.answer)
            for cue in task.items
        ),
        max_options=max((len(cue.options) for cue in task.items), default=2),
        reply_received=frozen_builder(ReplyReceived, {"channel": channel.kind}),
        turn_openings=turn_openings(spec),
    )


def turn_openings(spec: ProtocolSpec) -> tuple[str, ...]:
    """The text that opens each role's turn under the protocol's ``turn_format``.

    ``"{speaker}:\\n\\n{text}"`` gives ``"Alice:"``, ``"Bob:"``...; a format without a
    speaker before the text gives none.
    """
    head = spec.turn_format.partition("{text}")[0]
    if "{speaker}" not in head:
        return ()
    roles = spec.roles
    names = (roles.subject, roles.experimenter, roles.learner, roles.peer)
    openings = (head.format(speaker=name).strip() for name in names if name)
    return tuple(dict.fromkeys(o for o in openings if o))


def _first_shock(level: int, label: str, forced: bool) -> ShockDelivered | None:
    return ShockDelivered(level=level, label=label, forced=forced, repeat=1) if level else None


def affixes(turn_format: str, speaker: str) -> tuple[str, str] | None:
    """What ``turn_format`` puts before and after the text when ``speaker`` says it.

    None unless the format is plain ``{speaker}`` and ``{text}`` fields (no conversion, no
    format spec) with ``{text}`` once: then ``prefix + text + suffix`` is the format's own
    result for every text, and a line is laid out without ``str.format``.
    """
    before: list[str] = []
    after: list[str] = []
    seen = False
    try:
        parsed = list(string.Formatter().parse(turn_format))
    except ValueError:
        return None
    for literal, name, spec, conversion in parsed:
        part = after if seen else before
        part.append(literal)
        if name is None:
            continue
        if spec or conversion:
            return None
        if name == "speaker":
            part.append(speaker)
        elif name == "text" and not seen:
            seen = True
        else:
            return None
    if not seen:
        return None
    prefix, suffix = "".join(before), "".join(after)
    probe = "\x00{text}\x00"
    if turn_format.format(speaker=speaker, text=probe) != prefix + probe + suffix:
        return None
    return prefix, suffix


def label(spec: ProtocolSpec, level: int) -> str:
    levels = spec.levels
    return levels.label.format(
        value=levels.value(level), group=levels.group(level) or "", level=level
    )
