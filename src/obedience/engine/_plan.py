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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obedience.engine._channels import gbnf_grammar, json_schema, tool_definitions
from obedience.engine._events import Event
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


def label(spec: ProtocolSpec, level: int) -> str:
    levels = spec.levels
    return levels.label.format(
        value=levels.value(level), group=levels.group(level) or "", level=level
    )
