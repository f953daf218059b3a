"""The transcript browser's data: every trial, packed into one compact JSON blob.

Layout (``v`` = 1)::

    S        string table: every text (scripted lines, replies, labels, speakers) once
    models, conditions, outcomes, labels, flags: the filter vocabularies
    T        one row per trial: [trial_id, model, condition, index, outcome, highest,
             max_level, replies, discarded, label_ids, seed, sampling_seed, flag_bits]
    E        one list per trial of events, each an array whose first item is its code
             (see ``CODES``); text fields are indices into ``S``

Scripted text repeats in every trial, so the string table keeps a run of thousands of
trials small. The browser builds only the selected trial's transcript into the page.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from obedience.events import (
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
)
from obedience.store import EventRow, RunStore

# Event codes understood by report.js.
SCRIPTED, REPLY, PROD, FORCED, SHOCK, REACTION, REMINDER, TRANSPORT = range(8)
ANSWER, RETRY, ENDED, STARTED, OTHER = 8, 9, 10, 11, 99
CODES = {
    "scripted-turn": SCRIPTED,
    "reply": REPLY,
    "prod": PROD,
    "forced-press": FORCED,
    "shock": SHOCK,
    "learner-reaction": REACTION,
    "format-reminder": REMINDER,
    "transport-error": TRANSPORT,
    "learner-answer": ANSWER,
    "retry": RETRY,
    "trial-ended": ENDED,
    "trial-started": STARTED,
}
ACTIONS = {"comply": 0, "refuse": 1, "invalid": 2, "empty": 3}  # empty: re-sampled uncounted

# Reply flag bits.
F_DISCARDED, F_EXPRESSED_REFUSAL, F_FINAL = 1, 2, 4
# Trial flag bits (filter "flags").
T_DISCARDED, T_OVERRIDDEN, T_TRANSPORT, T_FORCED, T_PRODDED = 1, 2, 4, 8, 16
T_READINGS_DIFFER = 32  # imported runs: our parser reads a reply differently
TRIAL_FLAGS = [
    (T_DISCARDED, "has discarded replies"),
    (T_OVERRIDDEN, "has a refusal overridden by a retry"),
    (T_TRANSPORT, "has a transport error"),
    (T_FORCED, "has forced presses"),
    (T_PRODDED, "was prodded"),
    (T_READINGS_DIFFER, "our parser reads a reply differently (imported)"),
]

_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
_SECRET_VALUE = re.compile(r"(?i)\b(sk-[a-z0-9_-]{8,}|bearer\s+[a-z0-9._-]{8,}|hf_[a-z0-9]{8,})")


def redact(text: str) -> str:
    """Transport messages and manifest strings as shown: URL credentials and token-like
    strings replaced (the tool never stores a key, but a user may put one in a URL)."""
    text = _URL_USERINFO.sub(r"\1[redacted]@", text)
    return _SECRET_VALUE.sub("[redacted]", text)


class StringTable:
    def __init__(self) -> None:
        self.strings: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, text: str | None) -> int:
        if text is None:
            return -1
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self.strings)
            self.strings.append(text)
        return found


def label_keys(
    annotations: list[dict[str, Any]],
) -> tuple[list[str], dict[tuple[str, int, int], list[str]]]:
    """Label names (``classifier:label`` when several classifiers) and the true ones per reply."""
    classifiers = sorted({a["classifier"] for a in annotations})
    several = len(classifiers) > 1
    per_reply: dict[tuple[str, int, int], list[str]] = defaultdict(list)
    names: set[str] = set()
    for a in annotations:
        for label, value in sorted(a["labels"].items()):
            if value is True:
                key = f"{a['classifier']}:{label}" if several else str(label)
                names.add(key)
                per_reply[(a["trial_id"], a["attempt"], a["seq"])].append(key)
    return sorted(names), per_reply


def _typed(row: EventRow) -> Event | None:
    """The row's typed event, or None for a payload this version cannot read."""
    try:
        return row.event
    except EventDecodeError:
        return None


def _encode_trial(
    events: list[EventRow],
    s: StringTable,
    labels_of: dict[tuple[str, int, int], list[str]],
    label_index: dict[str, int],
) -> tuple[list[list[Any]], dict[str, Any]]:
    out: list[list[Any]] = []
    reply_at: dict[tuple[int, int], list[Any]] = {}
    facts: dict[str, Any] = {"replies": 0, "discarded": 0, "labels": set(), "flags": 0}
    refused_discarded: set[int] = set()
    for ev in events:
        e = _typed(ev)
        if isinstance(e, ScriptedTurn):
            role = 1 if e.role == "assistant" else 0
            out.append([SCRIPTED, s(e.speaker or ""), role, s(e.text)])
        elif isinstance(e, ReplyReceived):
            found = labels_of.get((ev.trial_id, ev.attempt, ev.seq), [])
            ids = sorted(label_index[k] for k in found)
            facts["labels"].update(ids)
            tool = e.tool_call
            # An imported reply's action is the source's; ours is kept beside it, in a
            # field of the import's own that the event type does not have.
            ours = ev.payload.get("parsed_action")
            row: list[Any] = [
                REPLY,
                ev.seq,
                e.decision,
                e.level,
                e.attempt,
                s(e.text),
                ACTIONS.get(e.action, 2),
                0,
                ids,
                s(json.dumps(tool, ensure_ascii=False, sort_keys=True)) if tool else -1,
                s(e.finish_reason),
                ACTIONS.get(ours, 2) if isinstance(ours, str) and ours else -1,
            ]
            if row[11] >= 0 and row[11] != row[6]:
                facts["flags"] |= T_READINGS_DIFFER
            reply_at[(e.decision, e.attempt)] = row
            facts["replies"] += 1
            out.append(row)
        elif isinstance(e, ReplyDiscarded):
            dropped = reply_at.get((e.decision, e.attempt))
            if dropped is not None:
                dropped[7] |= F_DISCARDED | (F_EXPRESSED_REFUSAL if e.expressed_refusal else 0)
            facts["discarded"] += 1
            facts["flags"] |= T_DISCARDED
            if e.expressed_refusal:
                refused_discarded.add(e.decision)
        elif isinstance(e, ProdGiven):
            if not e.special:
                facts["flags"] |= T_PRODDED
            out.append([PROD, e.index, s(e.text), int(bool(e.special))])
        elif isinstance(e, ForcedPress):
            facts["flags"] |= T_FORCED
            out.append([FORCED, e.level, s(e.text)])
        elif isinstance(e, ShockDelivered):
            out.append([SHOCK, e.level, s(str(e.label)), int(bool(e.forced)), e.repeat])
        elif isinstance(e, LearnerReaction):
            out.append([REACTION, e.level, s(e.text)])
        elif isinstance(e, FormatReminder):
            out.append([REMINDER, e.level, s(e.text)])
        elif isinstance(e, TransportFailed):
            facts["flags"] |= T_TRANSPORT
            out.append([TRANSPORT, e.decision, s(redact(str(e.message)))])
        elif isinstance(e, LearnerAnswer):
            out.append([ANSWER, e.step, int(bool(e.correct)), int(bool(e.silent))])
        elif isinstance(e, RetryIssued):
            out.append([RETRY, e.decision, e.attempt])
        elif isinstance(e, TrialEnded):
            out.append([ENDED, s(e.reason), e.highest_level, e.decisions, e.steps])
        elif isinstance(e, TrialStarted):
            out.append([STARTED, s(e.channel), s(e.policy), e.seed])
        elif isinstance(e, RequestIssued):
            continue
        else:
            # Any other event (or a payload this version cannot read) is shown as its fields.
            fields = e.to_dict() if e is not None else ev.payload
            payload = {k: v for k, v in fields.items() if k != "kind"}
            out.append([OTHER, s(ev.kind), s(json.dumps(payload, ensure_ascii=False))])
    # The final reply of each decision: the last attempt that was not discarded.
    last: dict[int, list[Any]] = {}
    for row in out:
        if row[0] == REPLY and not row[7] & F_DISCARDED:
            last[row[2]] = row
    for row in last.values():
        row[7] |= F_FINAL
        if row[2] in refused_discarded and row[6] == ACTIONS["comply"]:
            facts["flags"] |= T_OVERRIDDEN
    return out, facts


def build_browser_data(
    store: RunStore,
    annotations: list[dict[str, Any]],
    model_order: list[str] | None = None,
    condition_order: list[str] | None = None,
) -> dict[str, Any]:
    """The browser's blob; trials listed by model, condition and index in the given order."""
    rows = {r.trial_id: r for r in store.trials(status="done")}
    present_models = {r.model for r in rows.values()}
    present_conditions = {r.condition for r in rows.values()}
    names, labels_of = label_keys(annotations)
    label_index = {k: i for i, k in enumerate(names)}
    s = StringTable()
    models = {m: i for i, m in enumerate(m for m in model_order or [] if m in present_models)}
    conditions = {
        c: i for i, c in enumerate(c for c in condition_order or [] if c in present_conditions)
    }
    outcomes: dict[str, int] = {}
    trials: list[list[Any]] = []
    encoded: list[list[list[Any]]] = []

    def flush(tid: str, events: list[EventRow]) -> None:
        row = rows.get(tid)
        if row is None:
            return
        evs, facts = _encode_trial(events, s, labels_of, label_index)
        outcome = row.outcome or "unknown"
        trials.append(
            [
                row.trial_id,
                models.setdefault(row.model, len(models)),
                conditions.setdefault(row.condition, len(conditions)),
                row.trial_index,
                outcomes.setdefault(outcome, len(outcomes)),
                row.highest_level or 0,
                _max_level(events),
                facts["replies"],
                facts["discarded"],
                sorted(facts["labels"]),
                row.seed,
                row.sampling_seed,
                facts["flags"],
            ]
        )
        encoded.append(evs)

    for tid, events in _grouped(store.events(final_only=True)):
        flush(tid, events)
    order = sorted(range(len(trials)), key=lambda i: (trials[i][0].rsplit("|", 1)[0], trials[i][3]))
    return {
        "v": 1,
        "S": s.strings,
        "models": list(models),
        "conditions": list(conditions),
        "outcomes": list(outcomes),
        "labels": names,
        "flags": [[bit, text] for bit, text in TRIAL_FLAGS],
        "T": [trials[i] for i in order],
        "E": [encoded[i] for i in order],
    }


def _max_level(events: list[EventRow]) -> int:
    for ev in events:
        if ev.kind == "trial-started":
            started = _typed(ev)
            return started.max_level if isinstance(started, TrialStarted) else 0
    return 0


def _grouped(events: Iterable[EventRow]) -> Iterable[tuple[str, list[EventRow]]]:
    current: str | None = None
    bucket: list[EventRow] = []
    for ev in events:
        if ev.trial_id != current:
            if current is not None:
                yield current, bucket
            current, bucket = ev.trial_id, []
        bucket.append(ev)
    if current is not None:
        yield current, bucket


def script_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<`` survives, so no
    ``</script>`` or ``<!--`` from model text can end or confuse the element; lone
    surrogates (possible in model output) are kept as escapes so the file stays UTF-8."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
