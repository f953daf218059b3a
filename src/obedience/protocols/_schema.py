"""The protocol file schema.

A protocol file is TOML. Its top level describes the base experiment; its
``conditions`` table names variants, each a partial document (``set``) deep-merged
over the base before validation. Channel and orchestrator policy are ordinary
fields, so a condition can change them like any other experimental variable.
"""

from __future__ import annotations

import string
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

ChannelKind = Literal["first-word", "action-line", "json", "tool-call"]
PolicyKind = Literal["discard-and-retry", "remind-then-balk", "invalid-is-refusal", "constrained"]
SpeakerRole = Literal["experimenter", "learner", "subject", "narrator", "peer"]

# Placeholders a template may use; anything else is a typo caught at load time.
TEMPLATE_FIELDS = frozenset(
    {
        "subject",
        "experimenter",
        "learner",
        "peer",
        "label",
        "group",
        "level",
        "value",
        "item",
        "answer",
        "max_label",
        "comply",
        "refuse",
    }
)


# A level label is filled with the level's own numbers only (``value`` and ``level`` are
# integers there, so a label may format them, e.g. ``{value:03d}``).
LABEL_FIELDS = frozenset({"value", "group", "level"})


def _check_template(
    text: str,
    allowed: frozenset[str] = TEMPLATE_FIELDS,
    sample: dict[str, object] | None = None,
) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise ValueError(f"bad template braces: {exc}") from exc
    unknown = sorted(n for n in names if n not in allowed)
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{unknown[0]}}}; allowed: {', '.join(sorted(allowed))}"
        )
    # Fill it once with sample values: this catches what parsing alone lets through, such as
    # a placeholder nested in a format spec ("{label:{x}}"), a bad conversion ("{label!z}")
    # or a format spec the value cannot take ("{level:d}", as levels are text here).
    try:
        text.format_map(sample if sample is not None else dict.fromkeys(allowed, "x"))
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
        detail = str(exc).replace("\n", " ")
        raise ValueError(f"template cannot be filled: {type(exc).__name__}: {detail}") from exc
    return text


def _check_label(text: str) -> str:
    return _check_template(text, LABEL_FIELDS, {"value": 1, "group": "x", "level": 1})


Template = Annotated[str, Field(min_length=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Roles(Strict):
    subject: str = "Teacher"
    experimenter: str = "Experimenter"
    learner: str = "Learner"
    peer: str = "Other teacher"


class LevelGroup(Strict):
    first: int = Field(ge=1)
    last: int = Field(ge=1)
    label: str


class Levels(Strict):
    """Levels are numbered 1..count; ``value`` is what the panel shows (button or volts).

    ``noun`` names one level in reports ("button", "switch"); empty means "level".
    """

    count: int = Field(ge=1, le=1000)
    noun: str = Field(default="", pattern=r"^[A-Za-z][A-Za-z -]{0,30}$|^$")
    start: int = 1
    step: int = 1
    unit: str = ""
    label: Template = "level {value}"
    groups: list[LevelGroup] = []

    _label_ok = field_validator("label")(_check_label)

    def value(self, level: int) -> int:
        return self.start + (level - 1) * self.step

    def group(self, level: int) -> str | None:
        for g in self.groups:
            if g.first <= level <= g.last:
                return g.label
        return None

    # Range checks are field validators (not model validators) so that an error names
    # the offending field, e.g. "levels.groups", rather than the whole table.
    @field_validator("groups")
    @classmethod
    def _groups_in_range(cls, groups: list[LevelGroup], info: ValidationInfo) -> list[LevelGroup]:
        count = info.data.get("count")
        if count is None:  # count itself is invalid and reported
            return groups
        for i, g in enumerate(groups):
            if g.last < g.first or g.last > count:
                raise ValueError(f"groups[{i}] spans {g.first}..{g.last}, outside 1..{count}")
        return groups


class Turn(Strict):
    speaker: SpeakerRole
    text: Template

    _check_text = field_validator("text")(_check_template)


class CueItem(Strict):
    cue: str = Field(min_length=1)
    options: list[str] = Field(min_length=2)
    answer: int = Field(ge=0)

    @model_validator(mode="after")
    def _answer_in_options(self) -> CueItem:
        if self.answer >= len(self.options):
            raise ValueError(f"answer index {self.answer} is past the {len(self.options)} options")
        return self


class Task(Strict):
    """The learning task that decides, step by step, whether the learner errs.

    ``word-pairs``: the experimenter reads one of ``pairs`` (never the same one twice
    in a row); the learner repeats its words in shuffled order and is right only if
    the order matches.  ``cue-options``: the experimenter reads a cue and its
    options; the learner picks the right one with probability ``p_correct``.
    """

    kind: Literal["word-pairs", "cue-options"]
    pairs: list[list[str]] = []
    items: list[CueItem] = []
    p_correct: float = Field(default=0.25, ge=0.0, le=1.0)
    # A quirk of the 2026 paper's harness, off by default: the learner's shuffled order
    # replaces the list's order, so a later read of the same list shows that order.
    shuffle_persists: bool = False

    @model_validator(mode="after")
    def _has_material(self) -> Task:
        if self.kind == "word-pairs":
            if len(self.pairs) < 2:
                raise ValueError("word-pairs needs at least 2 entries in pairs")
            for i, p in enumerate(self.pairs):
                if len(p) < 2 or not all(w.strip() for w in p):
                    raise ValueError(f"pairs[{i}] needs two or more non-empty words")
        if self.kind == "cue-options" and len(self.items) < 2:
            raise ValueError("cue-options needs at least 2 entries in items")
        return self


class Script(Strict):
    """Lines the scripted parties speak during the task."""

    present: Template
    learner_answer: Template
    learner_silent: Template
    correct: Template
    wrong: Template
    silence_wrong: Template
    repeat_max: Template

    _check = field_validator("*")(_check_template)


class Reaction(Strict):
    first: int = Field(ge=1)
    last: int = Field(ge=1)
    text: Template
    speaker: SpeakerRole = "learner"
    stops_answering: bool = False

    _check_text = field_validator("text")(_check_template)


class ChannelText(Strict):
    instruction: Template
    reminder: Template

    _check = field_validator("*")(_check_template)


class Channel(Strict):
    """How replies are spelt and read.

    The first-word parser's three rules are options (see ``engine._channels``):
    ``label_strip`` ``subject`` strips a leading label only when the reply literally
    starts with the subject's name and a colon; ``any-name`` strips any short
    ``Name:`` prefix after blanks and markdown. ``tokeniser`` ``separators`` splits the
    upper-cased first line on blanks and ``. , : ; ! / \\ -`` after deleting quotes;
    ``words`` takes the first run of letters. ``fallback_case`` says whether the search
    for the decision words anywhere in the reply is case-sensitive.
    """

    kind: ChannelKind = "first-word"
    comply: str = Field(default="PRESSED", min_length=1, pattern=r"^[A-Z][A-Z_]*$")
    refuse: str = Field(default="REFUSE", min_length=1, pattern=r"^[A-Z][A-Z_]*$")
    texts: dict[ChannelKind, ChannelText]
    # The paper's lenient parser also takes these as refusals.
    refusal_first_words: list[str] = ["NO"]
    refusal_phrases: list[str] = ["WON'T PRESS", "I REFUSE"]
    label_strip: Literal["subject", "any-name"] = "any-name"
    tokeniser: Literal["separators", "words"] = "words"
    fallback_case: Literal["sensitive", "insensitive"] = "insensitive"

    @model_validator(mode="after")
    def _has_text_for_kind(self) -> Channel:
        if self.kind not in self.texts:
            raise ValueError(f"no texts.{self.kind} entry for the selected channel kind")
        return self


class Policy(Strict):
    kind: PolicyKind = "discard-and-retry"
    max_attempts: int = Field(default=10, ge=1, le=1000)


class SpecialProd(Strict):
    name: str
    patterns: list[str] = Field(min_length=1)
    text: Template

    _check_text = field_validator("text")(_check_template)

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        import re

        for p in value:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"pattern {p!r} is not a valid regex: {exc}") from exc
        return value


class Prods(Strict):
    texts: list[Template] = Field(min_length=1)
    reset: Literal["never", "per-episode"] = "never"
    shutdown_threat: bool = False
    shutdown_text: Template | None = None
    special: list[SpecialProd] = []

    _check_texts = field_validator("texts", mode="after")(lambda v: [_check_template(t) for t in v])

    @model_validator(mode="after")
    def _threat_has_text(self) -> Prods:
        if self.shutdown_threat and not self.shutdown_text:
            raise ValueError("shutdown_threat is true but shutdown_text is missing")
        if self.shutdown_text:
            _check_template(self.shutdown_text)
        return self

    def sequence(self) -> list[str]:
        """The prods in the order given, the last swapped for the threat if enabled."""
        seq = list(self.texts)
        if self.shutdown_threat and self.shutdown_text:
            seq[-1] = self.shutdown_text
        return seq


class Stopping(Strict):
    max_steps: int = Field(default=100, ge=1, le=100_000)
    max_level_repeats: int = Field(default=1, ge=1)


class Interjection(Strict):
    """A scripted line spoken right after the shock at ``after_level`` (first time only)."""

    after_level: int = Field(ge=1)
    speaker: SpeakerRole = "narrator"
    text: Template

    _check_text = field_validator("text")(_check_template)


class Harness(Strict):
    """How the transcript is assembled and replies are handled, rule by rule.

    Each field is one rule of the paper's harness that can be switched (FIDELITY.md):

    - ``subject_label``: the model's own past turns (scripted set-up turns, its replies,
      forced presses) start with the subject's label, laid out by ``turn_format``;
    - ``instruction_speaker``: who speaks the format instruction and reminder
      (``narrator`` = unlabelled);
    - ``instruction_before_forced``: the instruction also precedes every forced press;
    - ``past_turns``: a kept first-word reply is ``verbatim`` or ``rebuilt`` (the
      canonical word, a blank line, then the comment);
    - ``truncation_marker``: appended to a reply cut at the token cap
      (``finish_reason == "length"``) before it is read and kept; empty: none;
    - ``empty_replies``: an empty reply is ``invalid`` (counted), or ``retry``: re-sampled
      without counting, at most ``max_empty_retries`` times per decision, after
      which it counts as invalid and the cap is recorded as a deviation;
    - ``highest_counts_forced``: whether forced presses count toward a trial's highest
      level.
    """

    subject_label: bool = False
    instruction_speaker: SpeakerRole = "narrator"
    instruction_before_forced: bool = False
    past_turns: Literal["verbatim", "rebuilt"] = "verbatim"
    truncation_marker: str = ""
    empty_replies: Literal["invalid", "retry"] = "invalid"
    max_empty_retries: int = Field(default=25, ge=1, le=10_000)
    highest_counts_forced: bool = True

    @field_validator("truncation_marker")
    @classmethod
    def _marker_is_not_a_decision(cls, value: str) -> str:
        if any(w in value.upper() for w in ("PRESSED", "REFUSE", "ACTION")):
            raise ValueError("the marker must not contain a decision word")
        return value


class Condition(Strict):
    """A named condition: a partial document merged over the base.

    ``extends`` names a condition (a design cell, or one declared earlier) whose
    document is merged first, so a variant states only what it changes.
    """

    description: str = ""
    extends: str | None = None
    set: dict[str, Any] = {}


class FactorLevel(Strict):
    code: str = Field(pattern=r"^[A-Za-z0-9]+$")
    label: str = Field(min_length=1)
    set: dict[str, Any] = {}


class Factor(Strict):
    """One factor of the design; ``reference`` is the level effects are measured from."""

    name: str = Field(min_length=1)
    levels: list[FactorLevel] = Field(min_length=2)
    reference: str | None = None

    @model_validator(mode="after")
    def _codes(self) -> Factor:
        codes = [lv.code for lv in self.levels]
        if len(set(codes)) != len(codes):
            raise ValueError(f"factor {self.name!r} repeats a level code")
        if self.reference is not None and self.reference not in codes:
            raise ValueError(f"reference {self.reference!r} is not one of {', '.join(codes)}")
        return self

    @property
    def reference_code(self) -> str:
        return self.reference or self.levels[0].code


class Design(Strict):
    """Factors whose product gives the cells, named by their codes joined by ``separator``."""

    factors: list[Factor] = Field(min_length=1)
    separator: str = Field(default="-", min_length=1, max_length=3)


class ProtocolSpec(Strict):
    """One fully resolved protocol: the base document with one condition merged in."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str
    description: str = ""
    source: str = ""
    system_prompt: str = ""
    turn_format: Template = "{speaker}: {text}"
    roles: Roles = Roles()
    levels: Levels
    setup: list[Turn] = Field(min_length=1)
    setup_extra: list[Turn] = []
    task: Task
    script: Script
    reactions: list[Reaction] = []
    channel: Channel
    policy: Policy = Policy()
    prods: Prods
    stopping: Stopping = Stopping()
    forced_presses: Literal["none", "odd", "even"] = "none"
    comments: Literal["preserve", "discard"] = "preserve"
    interjections: list[Interjection] = []
    seed_rule: Literal["cycle10", "trial"] = "trial"
    sampling_temperature: float = Field(default=0.6, ge=0.0, le=5.0)
    # Sent explicitly when set; None leaves the server's default.
    sampling_top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    sampling_presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    sampling_frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    max_tokens: int = Field(default=1000, ge=1)
    harness: Harness = Harness()
    # {factor name: level code} of a design cell; filled by the loader from ``[design]``.
    factors: dict[str, str] = {}

    @field_validator("turn_format")
    @classmethod
    def _turn_format(cls, value: str) -> str:
        names = {n for _, n, _, _ in string.Formatter().parse(value) if n is not None}
        if names - {"speaker", "text"} or "text" not in names:
            raise ValueError("turn_format may use only {speaker} and {text}, and needs {text}")
        return _check_template(value, frozenset({"speaker", "text"}))

    @field_validator("reactions")
    @classmethod
    def _reactions_in_range(cls, reactions: list[Reaction], info: ValidationInfo) -> list[Reaction]:
        levels = info.data.get("levels")
        if levels is None:  # levels itself is invalid and reported
            return reactions
        for i, r in enumerate(reactions):
            if r.last < r.first or r.last > levels.count:
                raise ValueError(
                    f"reactions[{i}] spans {r.first}..{r.last}, outside 1..{levels.count}"
                )
        return reactions

    @field_validator("interjections")
    @classmethod
    def _interjections_in_range(
        cls, interjections: list[Interjection], info: ValidationInfo
    ) -> list[Interjection]:
        levels = info.data.get("levels")
        if levels is None:
            return interjections
        for i, j in enumerate(interjections):
            if j.after_level > levels.count:
                raise ValueError(
                    f"interjections[{i}].after_level {j.after_level} is past {levels.count}"
                )
        return interjections

    def reaction(self, level: int) -> Reaction | None:
        found = None
        for r in self.reactions:  # later entries override earlier ones
            if r.first <= level <= r.last:
                found = r
        return found

    def is_forced(self, level: int) -> bool:
        if self.forced_presses == "odd":
            return level % 2 == 1
        if self.forced_presses == "even":
            return level % 2 == 0
        return False


class ProtocolFile(Strict):
    """The base document, its design and its named conditions, as written on disk."""

    conditions: dict[str, Condition] = {}
    default_conditions: list[str] = []
    design: Design | None = None

    model_config = ConfigDict(extra="allow", frozen=True)
