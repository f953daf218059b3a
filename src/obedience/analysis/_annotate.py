"""Label every reply of a run with a classifier and store the labels in the run.

``annotate_run(store, classifier)`` labels EVERY ``reply`` event in the store:
counted and discarded replies, and those of superseded (interrupted) attempts, so
no reply escapes measurement. Each reply is classified with its context: the
lines the subject was answering (scripted turns, prods, learner reactions and
format reminders since its previous accepted turn). Tool calls are rendered into
the text the classifiers read. Each labelling is appended as a new version of the
classifier's labels (``obedience.store.add_label_set``: nothing is deleted) with
the classifier's identity; the latest version is the current view that
``build_tables`` attaches as ``label_<name>`` columns.

LLM judges (transport, cache, sessions) live in ``obedience.judging``; this
module only runs a classifier over the stored replies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from obedience.store import REASONING_SUFFIX, EventRow, RunStore, add_label_set

if TYPE_CHECKING:
    from obedience.analysis.classifiers import Classifier

CONTEXT_LIMIT = 3000
"""Characters of context kept (the end of it: the lines right before the reply)."""

_USER_SIDE = frozenset({"scripted-turn", "prod", "learner-reaction", "format-reminder"})


@dataclass(frozen=True)
class ReplyItem:
    """One reply to label: where it is in the store, its text and its context."""

    trial_id: str
    attempt: int
    seq: int
    text: str
    context: str | None
    reasoning: str | None = None
    """The reply's reasoning text (``reasoning`` in its payload), when the model gave one."""


def _render(payload: dict[str, Any]) -> str:
    from obedience.analysis.classifiers import render_tool_call

    text = str(payload.get("text") or "")
    call = payload.get("tool_call")
    return render_tool_call(text, call if isinstance(call, dict) else None)


def _reasoning(payload: dict[str, Any]) -> str | None:
    value = payload.get("reasoning")
    return value if isinstance(value, str) and value.strip() else None


def _line(ev: EventRow) -> str:
    p = ev.payload
    text = str(p.get("text") or "")
    if ev.kind == "scripted-turn":
        speaker = str(p.get("speaker") or "")
        return f"{speaker}: {text}" if speaker else text
    if ev.kind == "prod":
        return f"Experimenter: {text}"
    return text


def reply_items(events: Iterable[EventRow]) -> list[ReplyItem]:
    """Every reply event with its context, in store order (all attempts of all trials).

    The context of a reply is what the subject saw since its last accepted turn: a
    discarded reply is never shown, so its retry shares its context.
    """
    items: list[ReplyItem] = []
    key: tuple[str, int] | None = None
    buffer: list[str] = []
    clear_next = False
    context = ""
    for ev in events:
        if (ev.trial_id, ev.attempt) != key:
            key, buffer, clear_next, context = (ev.trial_id, ev.attempt), [], False, ""
        kind = ev.kind
        if kind == "reply":
            items.append(
                ReplyItem(
                    ev.trial_id,
                    ev.attempt,
                    ev.seq,
                    _render(ev.payload),
                    context[-CONTEXT_LIMIT:] or None,
                    _reasoning(ev.payload),
                )
            )
            clear_next = True
        elif kind == "discarded":
            clear_next = False
        elif kind == "request":
            if clear_next:
                buffer, clear_next = [], False
            context = "\n".join(buffer)
        elif kind == "forced-press" or (
            kind == "scripted-turn" and ev.payload.get("role") == "assistant"
        ):
            buffer, clear_next = [], False
        elif kind in _USER_SIDE:
            if clear_next:
                buffer, clear_next = [], False
            buffer.append(_line(ev))
    return items


def annotate_run(
    store: RunStore,
    classifier: Classifier,
    *,
    prepare: Callable[[Sequence[tuple[str, str | None]]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Label every reply in ``store`` with ``classifier``; returns how many were stored.

    Identical (text, context) pairs are classified once. ``prepare`` receives the
    distinct pairs before classification (e.g. to send a judge's prompts
    concurrently); ``progress(done, total)`` is called as pairs are classified.
    """
    items = reply_items(store.events(final_only=False))
    distinct = list(dict.fromkeys((it.text, it.context) for it in items))
    if prepare is not None and distinct:
        prepare(distinct)
    verdicts: dict[tuple[str, str | None], tuple[dict[str, bool], dict[str, str]]] = {}
    for i, (text, context) in enumerate(distinct, 1):
        verdict = classifier.classify(text, context)
        verdicts[(text, context)] = (dict(verdict.labels), dict(verdict.reasons))
        if progress is not None:
            progress(i, len(distinct))
    rows = [(it.trial_id, it.attempt, it.seq, *verdicts[(it.text, it.context)]) for it in items]
    identity = identity_of(classifier)
    add_label_set(store, classifier.name, rows, kind=_kind(classifier), identity=identity)
    # Reasoning text, where replies have it, is labelled on its own: distress in the
    # reasoning while the visible reply complies is a finding of its own. Its labels are
    # a second set, "<classifier>:reasoning"; a run without reasoning gets none.
    thinking = [it for it in items if it.reasoning is not None]
    if thinking:
        seen: dict[tuple[str, str | None], tuple[dict[str, bool], dict[str, str]]] = {}
        reasoning_rows = []
        for it in thinking:
            key = (it.reasoning or "", it.context)
            if key not in seen:
                verdict = classifier.classify(*key)
                seen[key] = (dict(verdict.labels), dict(verdict.reasons))
            reasoning_rows.append((it.trial_id, it.attempt, it.seq, *seen[key]))
        add_label_set(
            store,
            classifier.name + REASONING_SUFFIX,
            reasoning_rows,
            kind=_kind(classifier),
            identity={**identity, "text_part": "reasoning"},
        )
    return len(rows)


def _kind(classifier: Classifier) -> Literal["machine", "judge"]:
    return "judge" if classifier.name.startswith("judge:") else "machine"


def identity_of(classifier: Classifier) -> dict[str, Any]:
    """What produced a label set: a judge's identity (model, prompt, sampling, hash) or
    a classifier's name and version."""
    identity = getattr(classifier, "identity", None)
    if isinstance(identity, dict):
        return {**identity, "identity_sha256": getattr(classifier, "identity_hash", "")}
    return {"name": classifier.name, "version": str(getattr(classifier, "version", ""))}
