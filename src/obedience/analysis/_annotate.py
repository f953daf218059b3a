"""Label every reply of a run with a classifier and store the labels in the run.

``annotate_run(store, classifier)`` labels EVERY ``reply`` event in the store:
counted and discarded replies, and those of superseded (interrupted) attempts, so
no reply escapes measurement. Each reply is classified with its context: the
lines the subject was answering (scripted turns, prods, learner reactions and
format reminders since its previous accepted turn). Tool calls are rendered into
the text the classifiers read. Labels replace any earlier labels of the same
classifier (``RunStore.replace_annotations``); ``build_tables`` then attaches
them as ``label_<name>`` columns.

An LLM judge runs on any backend: ``BackendCompletion`` adapts a
``obedience.backends.Backend`` (async ``complete(request, sampling)``) to the
judge's transport, a callable from chat messages to text, and can send a batch
of prompts concurrently first (``prefetch``). ``make_judge`` builds the judge and
names it ``judge:<spec>@<prompt version>`` so the stored labels say which model
and which rubric produced them.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from obedience.store import EventRow, RunStore

if TYPE_CHECKING:
    from obedience.analysis.classifiers import Classifier, JudgeClassifier
    from obedience.backends import Backend, BackendOptions

CONTEXT_LIMIT = 3000
"""Characters of context kept (the end of it: the lines right before the reply)."""

_USER_SIDE = frozenset({"scripted-turn", "prod", "learner-reaction", "format-reminder"})


class JudgeError(RuntimeError):
    """The judge could not be reached or set up. The message is one line."""


@dataclass(frozen=True)
class ReplyItem:
    """One reply to label: where it is in the store, its text and its context."""

    trial_id: str
    attempt: int
    seq: int
    text: str
    context: str | None


def _render(payload: dict[str, Any]) -> str:
    from obedience.analysis.classifiers import render_tool_call

    text = str(payload.get("text") or "")
    call = payload.get("tool_call")
    return render_tool_call(text, call if isinstance(call, dict) else None)


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
    store.replace_annotations(classifier.name, rows)
    return len(rows)


# --------------------------------------------------------------------------- judge


class BackendCompletion:
    """A backend as a judge transport: ``__call__(messages) -> text``.

    Requests go out at ``temperature`` (0 by default) with a fixed seed, up to
    ``max_tokens``; retryable transport faults are retried ``retries`` times with
    exponential backoff, then raise ``JudgeError``. ``prefetch`` sends many prompts
    concurrently (at most ``concurrency`` at a time) and keeps the answers for the
    calls that follow. Call ``close`` when done.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        temperature: float = 0.0,
        max_tokens: int = 512,
        seed: int = 0,
        retries: int = 3,
        backoff: float = 1.0,
        concurrency: int = 4,
    ) -> None:
        self.backend = backend
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.retries = retries
        self.backoff = backoff
        self.concurrency = max(1, concurrency)
        self.calls = 0
        self._loop = asyncio.new_event_loop()
        self._ready: dict[str, str] = {}

    @staticmethod
    def _key(messages: Sequence[dict[str, str]]) -> str:
        return json.dumps(list(messages), sort_keys=True, ensure_ascii=False)

    async def _complete(self, messages: Sequence[dict[str, str]]) -> str:
        from obedience.backends import Sampling, TransportError
        from obedience.engine import Request

        request = Request(
            messages=tuple(dict(m) for m in messages),
            channel="first-word",
            decision=0,
            level=0,
            attempt=1,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )
        sampling = Sampling(
            temperature=self.temperature, max_tokens=self.max_tokens, seed=self.seed
        )
        for attempt in range(self.retries + 1):
            try:
                self.calls += 1
                completion = await self.backend.complete(request, sampling)
                return completion.text
            except TransportError as exc:
                if not exc.retryable or attempt == self.retries:
                    raise JudgeError(
                        f"judge {self.backend.name}: {exc} (after {attempt + 1} tries)"
                    ) from None
                await asyncio.sleep(self.backoff * 2**attempt * random.uniform(0.5, 1.5))
        raise JudgeError(f"judge {self.backend.name}: no reply")  # pragma: no cover

    def __call__(self, messages: list[dict[str, str]]) -> str:
        key = self._key(messages)
        if key in self._ready:
            return self._ready.pop(key)
        return self._loop.run_until_complete(self._complete(messages))

    def prefetch(self, batch: Iterable[Sequence[dict[str, str]]]) -> None:
        wanted = {self._key(m): m for m in batch}
        todo = [(k, m) for k, m in wanted.items() if k not in self._ready]
        if not todo:
            return
        gate = asyncio.Semaphore(self.concurrency)

        async def one(key: str, messages: Sequence[dict[str, str]]) -> None:
            async with gate:
                self._ready[key] = await self._complete(messages)

        async def run_all() -> None:
            # A TaskGroup cancels the other requests when one fails for good.
            async with asyncio.TaskGroup() as group:
                for k, m in todo:
                    group.create_task(one(k, m))

        try:
            self._loop.run_until_complete(run_all())
        except ExceptionGroup as group:
            raise group.exceptions[0] from None

    def preflight(self) -> dict[str, Any]:
        from obedience.backends import BackendError

        try:
            return self._loop.run_until_complete(self.backend.preflight())
        except BackendError as exc:
            raise JudgeError(str(exc)) from None

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._loop.run_until_complete(self.backend.aclose())
        finally:
            self._loop.close()


def make_judge(
    spec: str,
    options: BackendOptions | None = None,
    *,
    concurrency: int | None = None,
    max_tokens: int = 512,
) -> tuple[JudgeClassifier, BackendCompletion]:
    """A judge on the backend ``spec`` (any ``make_backend`` spec) and its transport.

    The judge is named ``judge:<spec>@<prompt version>``. Close the transport when done.
    """
    from obedience.analysis.classifiers import JudgeClassifier
    from obedience.backends import BackendError, make_backend

    try:
        backend = make_backend(spec, options)
    except BackendError as exc:
        raise JudgeError(str(exc)) from None
    transport = BackendCompletion(
        backend,
        max_tokens=max_tokens,
        concurrency=concurrency or min(8, max(1, backend.default_concurrency)),
    )
    judge = JudgeClassifier(transport, model=spec)
    judge.name = f"judge:{spec}@{judge.prompt_version}"
    return judge, transport


def judge_prepare(
    judge: JudgeClassifier, transport: BackendCompletion
) -> Callable[[Sequence[tuple[str, str | None]]], None]:
    """An ``annotate_run(prepare=...)`` hook that sends the judge's prompts concurrently.

    Replies already in the judge's cache and empty replies (the judge is not asked)
    are skipped.
    """

    def prepare(pairs: Sequence[tuple[str, str | None]]) -> None:
        batch = [
            judge.messages(text, context)
            for text, context in pairs
            if text.strip() and judge.cache_key(text, context) not in judge.cache
        ]
        transport.prefetch(batch)

    return prepare
