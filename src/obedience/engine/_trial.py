"""The trial: a pure, deterministic state machine (sans I/O, no clock).

Drive it like this::

    trial = Trial(protocol, "PC-NS-NF", seed=1)
    while (request := trial.next_request()) is not None:
        trial.submit_reply(Reply(text=call_the_model(request.messages)))
    trial.outcome  # e.g. "max-reached"

The trial emits typed events (``trial.events``). Given the same protocol,
condition, seed and replies it produces the same events, byte for byte.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from obedience.engine._builders import frozen_builder
from obedience.engine._channels import (
    COMPLY_TOOL,
    REFUSE_TOOL,
    Parsed,
    canonical_text,
    parse_action_line,
    parse_first_word,
    parse_reply,
)
from obedience.engine._events import (
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
    RequestIssued,
    RetryIssued,
    ScriptedTurn,
    ShockDelivered,
    TransportFailed,
    TrialEnded,
    TrialStarted,
)
from obedience.engine._intent import looks_like_refusal
from obedience.engine._plan import label, plan_for, remember
from obedience.protocols import Protocol, ProtocolSpec

Message = dict[str, Any]
E = TypeVar("E", bound=Event)


class EngineUsageError(RuntimeError):
    """The caller drove the trial out of order (a programming error, not model output)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What the model said: text, and for the tool-call channel the call it made.

    ``reasoning``: the model's reasoning, sent apart from the reply; it is recorded and
    never parsed as the action, nor shown to the model again.
    """

    text: str = ""
    tool_call: dict[str, Any] | None = None
    finish_reason: str | None = None
    reasoning: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """One sampling request: the messages to send and the kind of answer expected."""

    messages: tuple[Message, ...]
    channel: str
    decision: int
    level: int
    attempt: int
    temperature: float
    max_tokens: int
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    comply_word: str = "PRESSED"
    refuse_word: str = "REFUSE"
    tools: list[dict[str, Any]] | None = None
    grammar: str | None = None
    json_schema: dict[str, Any] | None = None
    constrained: bool = False
    # How each speaker's turn opens in the transcript (``"Bob:"``); a backend that
    # continues raw text may stop when its reply starts a line with one (see Plan).
    turn_openings: tuple[str, ...] = ()


@dataclass(slots=True)
class _State:
    next_level: int = 1
    highest: int = 0
    highest_own: int = 0
    repeats_at_max: int = 0
    prods_used: int = 0
    step: int = 0
    decision: int = 0
    attempt: int = 0
    invalid_run: int = 0
    empty_run: int = 0
    reminded: bool = False
    learner_silent: bool = False
    last_item: int | None = None
    awaiting: bool = False
    outcome: EndReason | None = None
    interjected: set[int] = field(default_factory=set)


# Every trial starts with one (the only event made afresh for each trial besides replies).
_trial_started = frozen_builder(TrialStarted)


class Trial:
    def __init__(self, protocol: Protocol | ProtocolSpec, condition: str, seed: int) -> None:
        spec = protocol.condition(condition) if isinstance(protocol, Protocol) else protocol
        self.spec = spec
        self.condition = condition
        self.seed = seed
        self.events: list[Event] = []
        # Tables and texts fixed by the condition: worked out once, shared by its trials.
        self._plan = plan = plan_for(spec)
        self._rng = random.Random(seed)
        self._bits = self._rng.getrandbits
        self._s = _State()
        self._context: list[Message] = []
        self._pending: list[str] = []
        self._names = plan.names
        self._speaker_names = (spec.roles.subject,)
        self._channel = spec.channel
        self._max = plan.max_level
        self._sequence = plan.prods
        # The lists as they will be read next (they change only under shuffle_persists).
        self._pairs = [list(p) for p in spec.task.pairs] if spec.task.shuffle_persists else None
        self._constrained = spec.policy.kind == "constrained"
        if plan.request is None:
            plan.request = frozen_builder(Request, self._request_fields())
        self._request: Callable[..., Request] = plan.request
        self.events.append(
            _trial_started(
                protocol=spec.name,
                condition=condition,
                seed=seed,
                max_level=self._max,
                channel=plan.kind,
                policy=spec.policy.kind,
                factors=dict(spec.factors),
            )
        )
        if plan.setup is None:
            first = len(self.events)
            if spec.system_prompt:
                self._context.append({"role": "system", "content": spec.system_prompt})
            self._run_setup()
            context = tuple(dict(message) for message in self._context)
            plan.setup = (context, tuple(self._pending), tuple(self.events[first:]))
        else:
            # The setup uses neither the seed nor the random stream: copy its outcome.
            context, pending, events = plan.setup
            self._context = [dict(message) for message in context]
            self._pending = list(pending)
            self.events.extend(events)
        self._advance()

    # ----------------------------------------------------------------- public API

    @property
    def done(self) -> bool:
        return self._s.outcome is not None

    @property
    def outcome(self) -> EndReason | None:
        return self._s.outcome

    @property
    def highest_level(self) -> int:
        """The highest level given: forced presses included unless the protocol says not."""
        return self._s.highest if self.spec.harness.highest_counts_forced else self._s.highest_own

    def next_request(self) -> Request | None:
        """The request the model must answer next, or None once the trial is over."""
        s = self._s
        if not s.awaiting:
            return None
        return self._request(
            messages=tuple(self._context),
            decision=s.decision,
            level=s.next_level,
            attempt=s.attempt,
        )

    def _request_fields(self) -> dict[str, Any]:
        """The fields that every request of the condition shares, whatever the trial."""
        channel = self.spec.channel
        plan = self._plan
        return dict(
            channel=channel.kind,
            temperature=self.spec.sampling_temperature,
            max_tokens=self.spec.max_tokens,
            top_p=self.spec.sampling_top_p,
            presence_penalty=self.spec.sampling_presence_penalty,
            frequency_penalty=self.spec.sampling_frequency_penalty,
            comply_word=channel.comply,
            refuse_word=channel.refuse,
            tools=plan.tools,
            grammar=plan.grammar,
            json_schema=plan.schema,
            constrained=self._constrained,
            turn_openings=plan.turn_openings,
        )

    def submit_reply(self, reply: Reply) -> None:
        s = self._s
        if not s.awaiting:
            raise EngineUsageError("submit_reply called while no request is pending")
        text, call, finish = reply.text, reply.tool_call, reply.finish_reason
        thought = reply.reasoning
        if not (
            type(text) is str
            and (call is None or type(call) is dict)
            and (finish is None or type(finish) is str)
            and (thought is None or type(thought) is str)
        ):
            reply = _normalised(reply)
            text, call, finish = reply.text, reply.tool_call, reply.finish_reason
            thought = reply.reasoning
        plan = self._plan
        if plan.retry_empty and (not text or text.isspace()) and not call:
            self._on_empty(reply)
            return
        # Not empty (or empty replies count): the reply is read as the channel reads it.
        read = reply
        if finish == "length" and plan.marker:
            read = Reply(text=text + plan.marker, tool_call=call, finish_reason=finish)
        if plan.kind == "first-word":
            parsed = parse_first_word(read.text, self._channel, self._speaker_names)
        elif plan.strict_lines:
            parsed = parse_action_line(read.text, self._channel)
        else:
            parsed = parse_reply(read.text, call, self._channel, self._speaker_names)
        action = parsed.action
        self.events.append(
            plan.reply_received(
                decision=s.decision,
                level=s.next_level,
                attempt=s.attempt,
                text=text,
                tool_call=call,
                action=action,
                comment=parsed.comment,
                finish_reason=finish,
                truncated=read is not reply,
                reasoning=thought,
                reasoning_only=thought is not None and _has_text(thought) and is_empty(reply),
            )
        )
        if finish == "content_filter":
            self._end("content-filter")
        elif action == "comply":
            self._on_comply(read, parsed)
        elif action == "invalid":
            self._on_invalid(read, parsed)
        else:
            self._on_refuse(read, parsed)

    def _on_empty(self, reply: Reply) -> None:
        """An empty reply where empty replies are re-sampled: uncounted, up to the cap."""
        s = self._s
        harness = self.spec.harness
        capped = s.empty_run + 1 > harness.max_empty_retries
        read = marked(reply, harness.truncation_marker)
        if not capped:
            parsed = Parsed("empty", "")
        else:
            parsed = parse_reply(read.text, read.tool_call, self.spec.channel, self._speaker_names)
        self.events.append(
            self._plan.reply_received(
                decision=s.decision,
                level=s.next_level,
                attempt=s.attempt,
                text=reply.text,
                tool_call=reply.tool_call,
                action=parsed.action,
                comment=parsed.comment,
                finish_reason=reply.finish_reason,
                truncated=read is not reply,
                reasoning=reply.reasoning,
                reasoning_only=_has_text(reply.reasoning) and is_empty(reply),
            )
        )
        reply = read
        if reply.finish_reason == "content_filter":
            self._end("content-filter")
        elif parsed.action == "empty":
            s.empty_run += 1
            s.attempt += 1
            self._emit(
                EmptyReplyRetried(
                    decision=s.decision, level=s.next_level, attempt=s.attempt, empties=s.empty_run
                )
            )
            self._emit_request()
        elif s.empty_run == harness.max_empty_retries:
            s.empty_run += 1  # record the cap once per decision, then read it as invalid
            self._emit(
                EmptyRetryCapReached(
                    decision=s.decision, level=s.next_level, empties=harness.max_empty_retries
                )
            )
            self._on_invalid(reply, parsed)
        elif parsed.action == "invalid":
            self._on_invalid(reply, parsed)
        elif parsed.action == "comply":
            self._on_comply(reply, parsed)
        else:
            self._on_refuse(reply, parsed)

    def submit_failure(self, message: str) -> None:
        """A transport failure: the trial ends as ``error``, never as a refusal."""
        if self.done:
            raise EngineUsageError("submit_failure called on a finished trial")
        self._emit(TransportFailed(decision=self._s.decision, message=message[:2000]))
        self._end("error")

    # ---------------------------------------------------------------- the script

    def _run_setup(self) -> None:
        for turn in [*self.spec.setup, *self.spec.setup_extra]:
            text = self._fill(turn.text)
            if turn.speaker == "subject":
                self._flush()
                self._context.append({"role": "assistant", "content": self._own(text)})
                self._emit(
                    ScriptedTurn(speaker=self._names["subject"], role="assistant", text=text)
                )
            else:
                self._say(turn.speaker, text)
                self._emit(ScriptedTurn(speaker=self._names[turn.speaker], role="user", text=text))

    def _advance(self) -> None:
        """Run scripted steps until the model must decide or the trial ends."""
        s = self._s
        forced = self._plan.forced
        max_steps = self._plan.max_steps
        task_step = self._task_step
        while s.outcome is None:
            if s.step >= max_steps:
                self._end("step-limit")
                return
            s.step += 1
            if task_step():
                continue
            level = s.next_level
            if forced[level]:
                self._forced_press(level)
                continue
            self._open_decision()
            return

    def _task_step(self) -> bool:
        """Present one item, have the learner answer and the experimenter respond.

        Returns whether the answer was right. The random draws do not depend on the
        learner's state, so a seed fixes the whole stimulus stream whatever the model does.

        The draws are ``random``'s own (see ``_below``), made inline. What a step says
        depends only on the level, the item, the draw of its answer and the learner's
        state, so it is looked up by a whole number made of those (``plan.draws``).
        """
        s = self._s
        plan = self._plan
        bits = self._bits
        last = s.last_item
        # The draw of randrange(n): k random bits until they fall below n (see _below).
        if last is None:
            n = len(plan.item_texts)
            k = plan.item_bits[0]
        else:
            n = len(plan.item_texts) - 1
            k = plan.item_bits[1]
        idx = bits(k)
        while idx >= n:
            idx = bits(k)
        if last is not None:
            idx += idx >= last
        s.last_item = idx
        if plan.pair_fast:
            # random.shuffle of two words: one draw below 2 (1 keeps the order).
            pick = bits(2)
            while pick > 1:
                pick = bits(2)
            choices = 2
        elif self.spec.task.kind == "word-pairs":
            return self._pair_step(idx)
        else:
            roll = self._rng.random()
            wrong, k, right = plan.cues[idx]
            pick = bits(k)
            while pick >= wrong:
                pick = bits(k)
            pick += pick >= right
            if roll < self.spec.task.p_correct:
                pick = right
            choices = plan.max_options
        silent = s.learner_silent
        level = s.next_level
        repeating = level == self._max and s.repeats_at_max > 0
        drawn = (level * len(plan.item_texts) + idx) * choices + pick
        key = (drawn << 2) | (silent << 1) | repeating
        step = plan.draws.get(key)
        if step is None:
            step = self._drawn_lines(idx, pick, silent, repeating)
            remember(plan.draws, key, step)
        lines, turns, verdict, correct = step
        return self._record_step(lines, turns, verdict, correct, silent)

    def _record_step(
        self,
        lines: tuple[str, ...],
        turns: tuple[Event, ...],
        verdict: Event,
        correct: bool,
        silent: bool,
    ) -> bool:
        """Queue a task step's lines and record its events: turns, the answer, the verdict."""
        plan, s = self._plan, self._s
        self._pending.extend(lines)
        events = self.events
        events.extend(turns)
        answer_key = (s.step << 2) | (correct << 1) | silent
        answered = plan.answers.get(answer_key)
        if answered is None:
            answered = LearnerAnswer(step=s.step, correct=correct, silent=silent)
            remember(plan.answers, answer_key, answered)
        events.append(answered)
        events.append(verdict)
        return correct

    def _drawn_lines(
        self, idx: int, pick: int, silent: bool, repeating: bool
    ) -> tuple[tuple[str, ...], tuple[Event, ...], Event, bool]:
        """A task step's lines, events and outcome, from its item and the answer's draw."""
        task = self.spec.task
        item = self._plan.item_texts[idx]
        if task.kind == "word-pairs":
            pair = task.pairs[idx]
            shuffled = list(pair) if pick else [pair[1], pair[0]]
            answer, correct = " ".join(shuffled), shuffled == pair
        else:
            cue = task.items[idx]
            answer, correct = cue.options[pick], pick == cue.answer
        if silent:
            answer, correct = "", False
        lines, turns, verdict = self._step_lines(item, answer, correct, silent, repeating)
        return lines, turns, verdict, correct

    def _pair_step(self, idx: int) -> bool:
        """A word-pairs step in general: pairs of any length, orders that may persist."""
        s = self._s
        task = self.spec.task
        bits = self._bits
        plan = self._plan
        pair = task.pairs[idx] if self._pairs is None else self._pairs[idx]
        shuffled = list(pair)
        for i in range(len(shuffled) - 1, 0, -1):  # random.shuffle's own steps
            k = (i + 1).bit_length()
            j = bits(k)
            while j > i:
                j = bits(k)
            shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
        item = plan.item_texts[idx] if self._pairs is None else " ".join(pair)
        answer, correct = " ".join(shuffled), shuffled == pair
        if self._pairs is not None:
            self._pairs[idx] = shuffled
        silent = s.learner_silent
        if silent:
            answer, correct = "", False
        level = s.next_level
        repeating = level == self._max and s.repeats_at_max > 0
        key = (level, item, answer, correct, silent, repeating)
        step = plan.steps.get(key)
        if step is None:
            step = self._step_lines(item, answer, correct, silent, repeating)
            remember(plan.steps, key, step)
        lines, turns, verdict = step
        return self._record_step(lines, turns, verdict, correct, silent)

    def _step_lines(
        self, item: str, answer: str, correct: bool, silent: bool, repeating: bool
    ) -> tuple[tuple[str, ...], tuple[Event, ...], Event]:
        """A task step's three lines (item, answer, verdict): their texts and events."""
        script = self.spec.script
        present = self._turn("experimenter", script.present, item=item)
        if silent:
            reply = self._turn("learner", script.learner_silent)
        else:
            reply = self._turn("learner", script.learner_answer, answer=answer)
        if correct:
            order = script.correct
        elif repeating:
            order = script.repeat_max
        else:
            order = script.silence_wrong if silent else script.wrong
        verdict = self._turn("experimenter", order)
        return (present[0], reply[0], verdict[0]), (present[1], reply[1]), verdict[1]

    def _open_decision(self) -> None:
        s = self._s
        s.decision += 1
        s.attempt = 1
        s.invalid_run = 0
        s.empty_run = 0
        s.reminded = False
        pending = self._pending
        line = self._plan.instructions.get(s.next_level)
        pending.append(self._instruction() if line is None else line)
        # The instruction is pending, so there is a user turn to make.
        self._context.append({"role": "user", "content": "\n\n".join(pending)})
        pending.clear()
        s.awaiting = True
        self._emit_request()

    def _emit_request(self) -> None:
        s = self._s
        events = self._plan.events
        key = (RequestIssued, s.decision, s.next_level, s.attempt, s.prods_used, len(self._context))
        issued = events.get(key)
        if issued is None:
            issued = RequestIssued(
                decision=s.decision,
                level=s.next_level,
                attempt=s.attempt,
                prods_used=s.prods_used,
                messages=len(self._context),
            )
            remember(events, key, issued)
        self.events.append(issued)

    # ------------------------------------------------------------ reply handling

    def _instruction(self) -> str:
        """The format instruction as said at the current level (it depends on that alone)."""
        level = self._s.next_level
        line = self._plan.instructions.get(level)
        if line is None:
            template = self.spec.channel.texts[self.spec.channel.kind].instruction
            line = self._spoken(self.spec.harness.instruction_speaker, template, level)[1]
            remember(self._plan.instructions, level, line)
        return line

    def _instruct(self) -> None:
        self._pending.append(self._instruction())

    def _on_invalid(self, reply: Reply, parsed: Parsed) -> None:
        s = self._s
        policy = self.spec.policy
        if self._plan.discards:
            events = self._plan.events
            refused = looks_like_refusal(reply.text)
            key = (ReplyDiscarded, s.decision, s.next_level, s.attempt, refused)
            discarded = events.get(key)
            if discarded is None:
                discarded = ReplyDiscarded(
                    decision=s.decision,
                    level=s.next_level,
                    attempt=s.attempt,
                    expressed_refusal=refused,
                )
                remember(events, key, discarded)
            self.events.append(discarded)
            s.invalid_run += 1
            if s.invalid_run >= policy.max_attempts:
                self._end("invalid-abort")
                return
            s.attempt += 1
            retry_key = (RetryIssued, s.decision, s.next_level, s.attempt)
            retry = events.get(retry_key)
            if retry is None:
                retry = RetryIssued(decision=s.decision, level=s.next_level, attempt=s.attempt)
                remember(events, retry_key, retry)
            self.events.append(retry)
            self._emit_request()
        elif policy.kind == "remind-then-balk" and not s.reminded:
            s.reminded = True
            self._append_assistant(reply, parsed, "invalid")
            texts = self.spec.channel.texts[self.spec.channel.kind]
            speaker = self.spec.harness.instruction_speaker
            reminder, said = self._spoken(speaker, texts.reminder, s.next_level)
            self._pending.append(said)
            self.events.append(
                self._shared(FormatReminder, decision=s.decision, level=s.next_level, text=reminder)
            )
            self._flush()
            s.attempt += 1
            self._emit_request()
        else:  # invalid-is-refusal, or a second invalid reply under remind-then-balk
            self._on_refuse(reply, parsed)

    def _on_comply(self, reply: Reply, parsed: Parsed) -> None:
        s = self._s
        s.awaiting = False
        self._append_assistant(reply, parsed, "comply")
        if self._plan.per_episode:
            s.prods_used = 0
        self._deliver(s.next_level, False)
        self._advance()

    def _on_refuse(self, reply: Reply, parsed: Parsed) -> None:
        s = self._s
        s.awaiting = False
        self._append_assistant(reply, parsed, "refuse")
        if s.prods_used >= len(self._sequence):
            self._end("defiant")
            return
        specials = self._plan.specials
        if specials:
            text = reply.text[:_SCAN_LIMIT]
            for patterns, special in specials:
                for pattern in patterns:
                    if pattern.search(text):
                        self._prod(special.text, 0, special=True)
                        break
        s.prods_used += 1
        self._prod(self._sequence[s.prods_used - 1], s.prods_used, special=False)
        self._open_decision()

    def _prod(self, template: str, index: int, *, special: bool) -> None:
        s = self._s
        text, said = self._spoken("experimenter", template, s.next_level)
        self._pending.append(said)
        events = self._plan.events
        key = (ProdGiven, s.decision, s.next_level, index, text, special)
        given = events.get(key)
        if given is None:
            given = ProdGiven(
                decision=s.decision, level=s.next_level, index=index, text=text, special=special
            )
            remember(events, key, given)
        self.events.append(given)

    def _append_assistant(self, reply: Reply, parsed: Parsed, action: str) -> None:
        """Put the subject's turn in context: in full, or (discard) as the bare action."""
        plan = self._plan
        if plan.kind == "tool-call" and reply.tool_call and action != "invalid":
            keep_comment = plan.preserve
            content = reply.text if keep_comment else ""
            name = COMPLY_TOOL if action == "comply" else REFUSE_TOOL
            arguments = _call_arguments(reply.tool_call) if keep_comment else "{}"
            result = "Done." if action == "comply" else "Noted."
            self._append_tool_turn(name, content, result, arguments)
            return
        # kept_text, with the options it reads looked up in the plan.
        if action == "invalid":
            content = reply.text
        else:
            content = plan.comply_text if action == "comply" else plan.refuse_text
            if plan.preserve:
                if plan.rebuilt:
                    if parsed.comment:
                        content = f"{content}\n\n{parsed.comment}"
                else:
                    content = reply.text
        affixes = plan.own_affixes
        if affixes is None:
            content = self._own(content or "...")
        else:
            content = affixes[0] + (content or "...") + affixes[1]
        self._context.append({"role": "assistant", "content": content})

    def _own(self, text: str) -> str:
        return subject_turn(self.spec, text)

    def _append_tool_turn(
        self, name: str, content: str, result: str, arguments: str = "{}"
    ) -> None:
        call_id = f"call_{self._s.decision}_{self._s.attempt}_{len(self._context)}"
        self._context.append(
            {
                "role": "assistant",
                "content": content or None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                ],
            }
        )
        self._context.append({"role": "tool", "tool_call_id": call_id, "content": result})

    def _forced_press(self, level: int) -> None:
        """Insert a press the model never made, as if it were the model's own turn."""
        if self.spec.harness.instruction_before_forced:
            self._instruct()
        self._flush()
        channel = self.spec.channel
        text = canonical_text(channel, "comply")
        if channel.kind == "tool-call":
            self._append_tool_turn(COMPLY_TOOL, "", "Done.")
        else:
            self._context.append({"role": "assistant", "content": self._own(text)})
        self._emit(ForcedPress(level=level, text=text))
        self._deliver(level, True)

    def _deliver(self, level: int, forced: bool) -> None:
        s = self._s
        plan = self._plan
        top = level == self._max
        if top:
            s.repeats_at_max += 1
        if level > s.highest:
            s.highest = level
        if not forced and level > s.highest_own:
            s.highest_own = level
        repeat = s.repeats_at_max if top else 1
        shock: Event | None
        if repeat == 1:
            shock = (plan.forced_shocks if forced else plan.own_shocks)[level]
        else:
            key = (ShockDelivered, level, forced, repeat)
            shock = plan.events.get(key)
            if shock is None:
                label = self._fields(level)["label"]
                shock = ShockDelivered(level=level, label=label, forced=forced, repeat=repeat)
                remember(plan.events, key, shock)
        self.events.append(shock)  # type: ignore[arg-type]  # levels from 1 have a shock
        reaction = plan.reactions[level]
        if reaction is not None:
            reacted = plan.reacted.get(level)
            if reacted is None:
                text, said = self._spoken(reaction.speaker, reaction.text, level)
                reacted = (said, LearnerReaction(level=level, text=text))
                remember(plan.reacted, level, reacted)
            self._pending.append(reacted[0])
            self.events.append(reacted[1])
            if reaction.stops_answering:
                s.learner_silent = True
        interjections = plan.interjections[level]
        if interjections:
            if level not in s.interjected:
                for j in interjections:
                    text = self._fill(j.text, level=level)
                    self._say(j.speaker, text)
                    self._emit(ScriptedTurn(speaker=self._names[j.speaker], role="user", text=text))
            s.interjected.add(level)
        if top:
            if s.repeats_at_max >= self.spec.stopping.max_level_repeats:
                self._end("max-reached")
                return
            s.next_level = level
        else:
            s.next_level = level + 1

    def _end(self, reason: EndReason) -> None:
        s = self._s
        s.awaiting = False
        s.outcome = reason
        self._emit(
            TrialEnded(
                reason=reason, highest_level=self.highest_level, decisions=s.decision, steps=s.step
            )
        )

    # ------------------------------------------------------------------- helpers

    def _emit(self, event: Event) -> None:
        self.events.append(event)

    def _shared(self, kind: type[E], **fields: Any) -> E:
        """The event of these field values, built once per condition (events are frozen)."""
        key = (kind, *fields.values())
        event = self._plan.events.get(key)
        if event is None:
            event = kind(**fields)
            remember(self._plan.events, key, event)
        return event  # type: ignore[return-value]

    def _scripted(self, speaker: str, template: str, **extra: str) -> None:
        said, event = self._turn(speaker, template, **extra)
        self._pending.append(said)
        self.events.append(event)

    def _turn(self, speaker: str, template: str, **extra: str) -> tuple[str, ScriptedTurn]:
        """A scripted line as the model reads it, and its event."""
        text = self._fill(template, extra=extra)
        event = ScriptedTurn(speaker=self._names[speaker], role="user", text=text)
        return self._said(speaker, text), event

    def _spoken(self, speaker: str, template: str, level: int) -> tuple[str, str]:
        """The template filled at ``level``, and that line as said by ``speaker``."""
        key = (speaker, template, level)
        line = self._plan.lines.get(key)
        if line is None:
            text = self._fill(template, level=level)
            line = (text, self._said(speaker, text))
            remember(self._plan.lines, key, line)
        return line

    def _say(self, speaker: str, text: str) -> None:
        self._pending.append(self._said(speaker, text))

    def _said(self, speaker: str, text: str) -> str:
        """The line as the model reads it: labelled with the speaker's name if it has one."""
        name = self._names[speaker]
        return self.spec.turn_format.format(speaker=name, text=text) if name else text

    def _flush(self) -> None:
        if self._pending:
            self._context.append({"role": "user", "content": "\n\n".join(self._pending)})
            self._pending.clear()

    def _fields(self, level: int) -> dict[str, str]:
        plan = self._plan
        fields = plan.level_fields.get(level)
        if fields is None:
            levels = self.spec.levels
            fields = dict(plan.static_fields)
            fields["level"] = str(level)
            fields["value"] = str(levels.value(level))
            fields["group"] = levels.group(level) or ""
            fields["label"] = label(self.spec, level)
            plan.level_fields[level] = fields
        return fields

    def _fill(
        self, template: str, *, level: int | None = None, extra: dict[str, str] | None = None
    ) -> str:
        at = self._s.next_level if level is None else level
        if extra:
            return template.format_map({**self._fields(at), **extra})
        texts = self._plan.texts
        text = texts.get((template, at))
        if text is None:
            text = template.format_map(self._fields(at))
            remember(texts, (template, at), text)
        return text


def _below(bits: Callable[[int], int], n: int) -> int:
    """A uniform draw from range(n), exactly as ``random.Random.randrange(n)`` makes it.

    CPython draws ``n.bit_length()`` random bits until they fall below ``n``; this does
    the same with the public ``getrandbits``, so the stimulus stream of a seed is the one
    the engine has always drawn, minus the cost of ``randrange``'s argument checks.
    """
    k = n.bit_length()
    r = bits(k)
    while r >= n:
        r = bits(k)
    return r


def is_empty(reply: Reply) -> bool:
    """No text but blanks and no tool call: what the paper's transport re-sampled."""
    # isspace() is strip()'s own test of a blank, without copying the text.
    return (not reply.text or reply.text.isspace()) and not reply.tool_call


def _has_text(text: str | None) -> bool:
    """Some text that is not all blanks."""
    return text is not None and text != "" and not text.isspace()


def marked(reply: Reply, marker: str) -> Reply:
    """The reply with the truncation marker appended if it was cut at the token cap."""
    if not marker or reply.finish_reason != "length":
        return reply
    return Reply(text=reply.text + marker, tool_call=reply.tool_call, finish_reason="length")


def kept_text(spec: ProtocolSpec, text: str, parsed: Parsed, action: str, comments: str) -> str:
    """The content a reply leaves in the model's context (before the subject label).

    Under ``discard`` a decided reply leaves only the bare word. Under ``preserve`` it is
    the reply verbatim, or for ``past_turns = "rebuilt"`` on the first-word channel the
    canonical word, a blank line and the comment. An invalid reply (kept only under
    remind-then-balk) is always verbatim.
    """
    channel = spec.channel
    if action == "invalid":
        return text
    word = canonical_text(channel, "comply" if action == "comply" else "refuse")
    if comments != "preserve":
        return word
    if spec.harness.past_turns == "rebuilt" and channel.kind == "first-word":
        return f"{word}\n\n{parsed.comment}" if parsed.comment else word
    return text


def subject_turn(spec: ProtocolSpec, text: str) -> str:
    """A turn of the subject's as it stands in context: labelled if the protocol says so."""
    if spec.harness.subject_label:
        return spec.turn_format.format(speaker=spec.roles.subject, text=text)
    return text


def _normalised(reply: Reply) -> Reply:
    """The reply with anything malformed (not text, not a call, odd finish) made empty."""
    call, finish, thought = reply.tool_call, reply.finish_reason, reply.reasoning
    if (
        type(reply.text) is str
        and (call is None or type(call) is dict)
        and (finish is None or type(finish) is str)
        and (thought is None or type(thought) is str)
    ):
        return reply  # the usual case, told apart with the cheapest checks
    text = reply.text if isinstance(reply.text, str) else ""
    call = reply.tool_call if isinstance(reply.tool_call, dict) else None
    finish = reply.finish_reason if isinstance(reply.finish_reason, str) else None
    thought = reply.reasoning if isinstance(reply.reasoning, str) else None
    if (
        text is reply.text
        and call is reply.tool_call
        and finish is reply.finish_reason
        and thought is reply.reasoning
    ):
        return reply
    return Reply(text=text, tool_call=call, finish_reason=finish, reasoning=thought)


def _call_arguments(tool_call: dict[str, Any]) -> str:
    """The model's own call arguments as a JSON object string ("{}" if they are not one)."""
    args = tool_call.get("arguments")
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except (ValueError, RecursionError):
            return "{}"
    if not isinstance(args, dict):
        return "{}"
    try:
        return json.dumps(args, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return "{}"


# Special prods look for their patterns in this much of a reply.
_SCAN_LIMIT = 20_000
