"""The async runner: drives many trials at once and records every event.

Trials are grouped by endpoint (one server, or one in-process model); each
endpoint gets ``concurrency`` workers, so a slow or failing server never starves
another. A model served by several endpoints (replicas) has each trial pinned to
one of them for its whole life, by a stable hash of the trial id, so every turn
of a trial reuses that server's prefix cache; each request is a ``ChatRequest``
carrying the trial id as its session key, for routers with session affinity.
Transport faults are retried by the backends' shared retry loop (exponential
backoff with jitter, Retry-After honoured); a trial whose transport still fails
ends as ``error`` (never as a refusal; ``resume`` runs it again) and the run goes on.
Events are committed after every reply; the replies that arrive in one turn of the event
loop share one commit (``_GroupCommit``), so a killed process loses at most the replies
in flight and those of the turn being committed, and ``resume`` runs those trials again.

A budget (``max_requests``, ``max_cost``) or the circuit breaker (a storm of
401/402/403 or 429 answers) stops the run cleanly: no new request is sent, the
trials in flight are left unfinished, and ``resume`` completes them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import hashlib
import json
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from obedience._text import strip_userinfo
from obedience._version import __version__
from obedience.backends import (
    Backend,
    BackendError,
    BackendOptions,
    ChatRequest,
    Completion,
    RetryPolicy,
    Sampling,
    TransportError,
    attach_llama_log,
    check_supports,
    detach_llama_log,
    make_backend,
    with_retries,
)
from obedience.backends._retry import stored_text
from obedience.engine import Reply, Request, Trial, run_with, scripted_subject
from obedience.protocols import Protocol, ProtocolSpec
from obedience.runner._config import RunConfig, derive_seed, stimulus_seed
from obedience.runner._requests import chat_request, engine_reply, reply_meta, safe_completion
from obedience.store import Appended, RunStore, StoreError, TrialRow, trial_key

# HTTP statuses the circuit breaker counts: a bad key or an exhausted quota, and rate limits.
AUTH_STATUSES = frozenset({401, 402, 403})
RATE_LIMIT_STATUS = 429


@dataclass
class Progress:
    """Counters the CLI shows; updated by the runner, read by whoever renders them."""

    total: int = 0
    done: int = 0
    decisions: int = 0
    errors: int = 0
    transport_retries: int = 0
    # With ``workers``: their own CPU seconds and the sum of their peak memory, as each
    # reported it when it ended (the parent's own are the process's).
    worker_cpu_s: float = 0.0
    worker_peak_rss_mb: float = 0.0
    started: float = field(default_factory=time.monotonic)
    on_change: Callable[[Progress], None] | None = None

    def bump(self, **delta: int) -> None:
        for key, value in delta.items():
            setattr(self, key, getattr(self, key) + value)
        if self.on_change is not None:
            self.on_change(self)


class RunStopped(RuntimeError):
    """The run stopped before its end (a budget, or the circuit breaker); it is resumable.

    The message is one line and says why.
    """


class _Stop(BaseException):
    """Raised inside a trial when the run is stopping: the trial is left unfinished.

    A ``BaseException`` like ``asyncio.CancelledError``: the shared retry loop turns every
    ``Exception`` into a transport fault, and a stopping run must not be retried as one.
    """


def endpoint_index(trial_id: str, count: int) -> int:
    """The endpoint (0..count-1) a trial is pinned to: a hash of its id, the same in every
    process and Python version (sha256, not ``hash()``)."""
    if count <= 1:
        return 0
    digest = hashlib.sha256(f"endpoint|{trial_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def in_shard(cell_position: int, trial_index: int, shard: tuple[int, int] | None) -> bool:
    """Whether trial ``trial_index`` of the ``cell_position``-th (model, condition) cell is in
    ``shard`` (I, N). Each cell's trials are dealt round the shards, starting at a different
    shard per cell, so shards are balanced, and growing ``trials`` keeps every trial's shard."""
    if shard is None:
        return True
    index, count = shard
    return (cell_position + trial_index - 1) % count == index


def conditions_for(protocol: Protocol, config: RunConfig) -> list[str]:
    chosen = config.conditions or list(protocol.default_conditions)
    for c in chosen:
        protocol.condition(c)  # raises a one-line ProtocolError for an unknown name
    return chosen


def plan_rows(protocol: Protocol, config: RunConfig) -> list[TrialRow]:
    """The trials of the run, or of its shard: the same rows, ids and seeds in every shard."""
    rows = []
    shard = config.shard_of()
    cells = [(m, c) for m in config.models for c in conditions_for(protocol, config)]
    for position, (model, condition) in enumerate(cells):
        rule = protocol.condition(condition).seed_rule
        for index in range(1, config.trials + 1):
            if in_shard(position, index, shard):
                rows.append(
                    TrialRow(
                        trial_id=trial_key(model, condition, index),
                        model=model,
                        condition=condition,
                        trial_index=index,
                        seed=stimulus_seed(rule, config.seed, index),
                        sampling_seed=derive_seed(config.seed, model, condition, index),
                        attempt=0,
                        status="pending",
                        outcome=None,
                        highest_level=None,
                    )
                )
    return rows


# Characters per token in the projection's prompt estimate (English prose, BPE tokenisers).
CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class Projection:
    """What a run will ask for, from its design alone, before any request is sent.

    ``max_requests``: trials x the protocol's decision cap x its attempts per decision
    (an upper bound, transport retries aside); ``full_requests``: if every trial went to
    the end with one valid reply per decision (an obedient subject), and
    ``prompt_tokens`` / ``completion_tokens`` for those requests (prompts estimated at
    ~4 characters a token; completions at the token cap, a bound). ``max_prompt_tokens``
    bounds the prompt tokens of ``max_requests`` requests.
    """

    trials: int
    max_requests: int
    full_requests: int
    prompt_tokens: int
    max_prompt_tokens: int
    completion_tokens: int

    def line(self) -> str:
        return (
            f"projection: {self.trials} trials; requests <= {self.max_requests:,} "
            f"({self.full_requests:,} if every trial went to the end with one reply a "
            f"decision); prompt tokens ~{self.prompt_tokens:,} for those "
            f"(<= {self.max_prompt_tokens:,}); completion tokens <= {self.completion_tokens:,}"
        )


def _prompt_chars(request: Request) -> int:
    return sum(len(json.dumps(m.get("content"), ensure_ascii=False)) for m in request.messages)


def request_cap(spec: ProtocolSpec) -> int:
    """Requests one trial can send at most, transport retries aside: every step can open a
    decision per prod after a refusal, every decision takes up to the policy's attempts,
    and each attempt may be re-sampled uncounted for empty replies."""
    decisions = spec.stopping.max_steps * (1 + len(spec.prods.sequence()))
    empties = spec.harness.max_empty_retries if spec.harness.empty_replies == "retry" else 0
    return decisions * spec.policy.max_attempts * (1 + empties)


def project(
    protocol: Protocol, config: RunConfig, rows: Sequence[TrialRow] | None = None
) -> Projection:
    """The projection of ``config`` (or of ``rows``, e.g. the trials still to run)."""
    planned = plan_rows(protocol, config) if rows is None else list(rows)
    obedient = scripted_subject("obedient")
    per_cell: dict[tuple[str, str], tuple[int, int, int, int]] = {}
    totals = [0, 0, 0, 0, 0]
    for row in planned:
        key = (row.model, row.condition)
        if key not in per_cell:
            spec = protocol.condition(row.condition)
            trial = Trial(spec, row.condition, row.seed)
            chars: list[int] = []

            def answer(request: Request, chars: list[int] = chars) -> Reply:
                chars.append(_prompt_chars(request))
                return obedient(request)

            run_with(trial, answer)
            cap = request_cap(spec)
            longest = max(chars, default=0)
            per_cell[key] = (
                cap,
                len(chars),
                round(sum(chars) / CHARS_PER_TOKEN),
                round(cap * longest / CHARS_PER_TOKEN),
            )
        cap, full, prompt, max_prompt = per_cell[key]
        spec = protocol.condition(row.condition)
        totals[0] += cap
        totals[1] += full
        totals[2] += prompt
        totals[3] += max_prompt
        totals[4] += full * config.max_tokens_for(row.model, spec)
    return Projection(len(planned), totals[0], totals[1], totals[2], totals[3], totals[4])


def deviations(
    protocol: Protocol, config: RunConfig, model_meta: dict[str, Any] | None = None
) -> list[str]:
    """Departures from the protocol as written, recorded in the manifest and report."""
    notes = []
    for model, meta in (model_meta or {}).items():
        if isinstance(meta, dict) and meta.get("stop_at_turns"):
            notes.append(
                f"{model}: a base model; its reply ends where it starts another "
                "speaker's line (the protocol's turn openings are its stop strings)"
            )
    for model in config.models:
        for condition in conditions_for(protocol, config):
            spec = protocol.condition(condition)
            cap = config.max_tokens_for(model, spec)
            if cap < spec.max_tokens:
                notes.append(
                    f"{model}: output capped at {cap} tokens (protocol: {spec.max_tokens})"
                )
                break
        if config.temperature is not None:
            notes.append(f"{model}: temperature {config.temperature} set by the run config")
    for condition in conditions_for(protocol, config):  # harness options off the defaults
        notes.extend(protocol.option_deviations(condition))
    return sorted(set(notes))


def build_manifest(
    protocol: Protocol, config: RunConfig, model_meta: dict[str, Any]
) -> dict[str, Any]:
    return {
        "tool": "obedience",
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "created_unix": time.time(),
        "config": _manifest_config(config),
        "protocol": {
            "name": protocol.name,
            "title": protocol.title,
            "path": protocol.path,
            "sha256": protocol.sha256,
            "conditions": conditions_for(protocol, config),
            # The declared design: each run condition's {factor: code} (empty: a variant).
            "factors": {c: protocol.factors_of(c) for c in conditions_for(protocol, config)},
        },
        "sampling": {
            model: {
                c: {
                    "temperature": config.temperature_for(protocol.condition(c)),
                    "max_tokens": config.max_tokens_for(model, protocol.condition(c)),
                    "top_p": protocol.condition(c).sampling_top_p,
                    "presence_penalty": protocol.condition(c).sampling_presence_penalty,
                    "frequency_penalty": protocol.condition(c).sampling_frequency_penalty,
                }
                for c in conditions_for(protocol, config)
            }
            for model in config.models
        },
        "seeds": {
            "run_seed": config.seed,
            "stimulus_rule": {c: protocol.condition(c).seed_rule for c in protocol.conditions},
            "sampling": "sha256(run_seed|model|condition|trial), then |decision|attempt",
        },
        "models": model_meta,
        "deviations": deviations(protocol, config, model_meta),
    }


def _manifest_config(config: RunConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json")
    if data.get("base_url"):
        data["base_url"] = strip_userinfo(data["base_url"])  # a password never reaches a file
    for endpoint in data.get("endpoints") or []:
        endpoint["url"] = strip_userinfo(endpoint["url"])
    return data


Replicas = Mapping[str, "Backend | Sequence[Backend]"]


def replica_lists(backends: Replicas) -> dict[str, list[Backend]]:
    """Each model spec's backends as a list: one per endpoint serving it (one, mostly)."""
    out: dict[str, list[Backend]] = {}
    for spec, value in backends.items():
        replicas: list[Backend] = (
            list(value) if isinstance(value, (list, tuple)) else [value]  # type: ignore[list-item]
        )
        if not replicas:
            raise ValueError(f"model {spec!r} has no backend")
        out[spec] = replicas
    return out


def make_backends(config: RunConfig) -> dict[str, Backend | list[Backend]]:
    """One backend per distinct model spec of ``config``, with its backend options; an
    ``openai:`` model with several ``endpoints`` gets one backend per endpoint (a list)."""
    headers = None if config.session_headers is None else tuple(config.session_headers)

    def options(url: str | None) -> BackendOptions:
        return BackendOptions(
            base_url=url,
            chat_template=config.chat_template,
            timeout=config.timeout,
            grammar_dialect=config.grammar_dialect,
            session_headers=headers,
        )

    urls = [e.url for e in config.endpoints]
    out: dict[str, Backend | list[Backend]] = {}
    for spec in dict.fromkeys(config.models):
        if spec.startswith("openai:") and len(urls) > 1:
            out[spec] = [make_backend(spec, options(url)) for url in urls]
        else:
            out[spec] = make_backend(spec, options(urls[0] if urls else config.base_url))
    return out


def todo_rows(store: RunStore) -> list[TrialRow]:
    """The trials still to run: unfinished ones, and ones that ended in a transport error
    (a dead endpoint, a storm of faults): those measured nothing, and run again as a new
    attempt."""
    return [r for r in store.trials() if r.status != "done" or r.outcome == "error"]


async def preflight(backends: Replicas, protocol: Protocol, config: RunConfig) -> dict[str, Any]:
    """Each model's metadata; raises BackendError when a model cannot be served at all.

    A model with several endpoints needs one that answers: the others are recorded as
    unreachable (``endpoints`` in its metadata), and their trials end as ``error``
    (retried by ``resume``) while the rest of the run goes on.
    """
    meta: dict[str, Any] = {}
    for spec, replicas in replica_lists(backends).items():
        for backend in replicas:
            for condition in conditions_for(protocol, config):
                c = protocol.condition(condition)
                check_supports(backend, c.channel.kind, c.policy.kind == "constrained")
        answers: list[dict[str, Any] | BackendError] = []
        for backend in replicas:
            try:
                answers.append(await backend.preflight())
            except BackendError as exc:
                if len(replicas) == 1:
                    raise
                answers.append(exc)
        good = [a for a in answers if isinstance(a, dict)]
        if not good:
            raise BackendError(f"no endpoint of {spec} answers: {answers[0]}")
        meta[spec] = {**good[0], "capabilities": vars(replicas[0].capabilities)}
        if len(replicas) > 1:
            meta[spec]["endpoints"] = [
                {"endpoint": b.endpoint}
                | ({"unreachable": str(a)} if isinstance(a, BackendError) else {})
                for b, a in zip(replicas, answers, strict=True)
            ]
    return meta


@dataclass
class _Governor:
    """The run's budget and circuit breaker, shared by every worker."""

    config: RunConfig
    requests: int = 0
    cost: float = 0.0
    auth_streak: int = 0
    rate_streak: int = 0
    reason: str | None = None

    def before_request(self) -> None:
        """Count one request about to be sent; raise ``_Stop`` if the run is stopping."""
        limit = self.config.max_requests
        if self.reason is None and limit is not None and self.requests >= limit:
            self.reason = f"budget reached: {self.requests} requests sent (--max-requests {limit})"
        if self.reason is not None:
            raise _Stop
        self.requests += 1

    def succeeded(self, completion: Completion) -> None:
        self.auth_streak = self.rate_streak = 0
        self.cost += self._cost_of(completion)
        limit = self.config.max_cost
        if limit is not None and self.reason is None and self.cost >= limit:
            self.reason = f"budget reached: cost {self.cost:.4g} (--max-cost {limit:g})"

    def failed(self, err: TransportError, where: str) -> None:
        """Count an answer toward the breaker; raise ``_Stop`` when it trips."""
        status = err.status
        if status in AUTH_STATUSES:
            self.auth_streak += 1
            if self.auth_streak >= self.config.breaker.auth and self.reason is None:
                detail = " ".join(str(err).split())[:160]
                self.reason = (
                    f"circuit breaker: {self.auth_streak} requests in a row refused with "
                    f"HTTP {status} by {where} (API key or quota?): {detail}"
                )
        elif status == RATE_LIMIT_STATUS:
            self.rate_streak += 1
            if self.rate_streak >= self.config.breaker.rate_limit and self.reason is None:
                self.reason = (
                    f"circuit breaker: {self.rate_streak} rate-limit answers (HTTP 429) in a "
                    f"row from {where}; lower --concurrency or wait for the quota"
                )
        else:
            return
        if self.reason is not None:
            raise _Stop

    def _cost_of(self, completion: Completion) -> float:
        # The server's billed cost (``usage.cost``) when it reported one.
        reported = completion.cost if completion.cost is not None else completion.extra.get("cost")
        if isinstance(reported, (int, float)) and not isinstance(reported, bool):
            return max(0.0, float(reported))
        prices = self.config.prices
        if prices is None:
            return 0.0
        prompt = completion.prompt_tokens or 0
        produced = completion.completion_tokens or 0
        return (prompt * prices.prompt + produced * prices.completion) / 1e6


# Trials started in one turn of the event loop. Started all at once, 10,000 trials set
# themselves up (about 0.35 ms each) before the first request leaves, since the loop
# looks at its sockets only between turns: 3.5 s in which nothing is sent. In chunks,
# each chunk's requests go out while the next chunk is set up.
START_CHUNK = 64

# The youngest generation's threshold while a run is on (CPython's default is 700).
RUN_GC_THRESHOLD = 50_000
# The thresholds from before the first of the runs on in this process, once per run on.
_RUNS_ON: list[tuple[int, int, int]] = []


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect cyclic garbage less often while the run is on; the old thresholds after.

    Thousands of trials in flight keep millions of small objects alive (every trial's
    transcript). With the default thresholds the collector walks all of them again and
    again: at 10,000 trials in flight it took half of the run's time (29 full collections
    of up to 1.5 s each, measured). The run makes little cyclic garbage, so collecting
    about 70 times less often costs a little memory and saves that time.
    """
    if not _RUNS_ON:  # the first run on in this process saves the thresholds
        old = gc.get_threshold()
        gc.set_threshold(max(old[0], RUN_GC_THRESHOLD), max(old[1], 50), *old[2:])
        _RUNS_ON.append(old)
    else:
        _RUNS_ON.append(_RUNS_ON[0])
    try:
        yield
    finally:
        saved = _RUNS_ON.pop()
        if not _RUNS_ON:  # the last run to end puts them back
            gc.set_threshold(*saved)


def _interleaved(
    slots: list[tuple[asyncio.Queue[TrialRow], int]],
) -> list[asyncio.Queue[TrialRow]]:
    """One worker per trial in flight, the endpoints' (queue, count) taken in turn: each
    endpoint's trials start from the first chunk, not after every other endpoint's."""
    most = max((n for _, n in slots), default=0)
    return [queue for i in range(most) for queue, n in slots if i < n]


class _GroupCommit:
    """Commits the events of every reply handled in one turn of the event loop together,
    in a writer thread of its own.

    At many trials in flight the replies come back in bursts; a commit per reply would
    write the WAL once per reply while the other replies wait. Each trial hands its new
    events over after every reply and goes on at once; the first hand-over of a turn
    schedules one commit for the next turn (``call_soon``), which takes everything handed
    over meanwhile. The commit runs in one writer thread (SQLite lets go of the GIL while
    it writes), so the event loop goes on sending requests and reading replies meanwhile,
    and does not stop while another worker process holds the write lock; what is handed
    over during a commit goes in the next one, in order. A trial's last events are
    awaited (``durable``): ``run_trial`` returns only once its trial is stored as
    finished. A failed commit (a full disk) is reported to ``on_error`` and to every
    waiter; the run stops. ``close`` commits what is left and ends the thread.
    """

    def __init__(self, store: RunStore, on_error: Callable[[Exception], None]) -> None:
        self.store = store
        self.on_error = on_error
        self._pending: list[Appended] = []
        self._waiters: list[asyncio.Future[None]] = []  # for what is pending now
        self._scheduled = False
        # The commit in the writer thread, and the waiters for what it holds.
        self._writing: concurrent.futures.Future[None] | None = None
        self._writing_waiters: list[asyncio.Future[None]] = []
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="obedience-store"
        )
        # Set by the first failed commit: nothing more is stored in this run, so no trial
        # keeps later events after a lost batch (a gap); ``resume`` reruns them all.
        self.failed: Exception | None = None

    def add(self, item: Appended) -> None:
        if self.failed is not None:
            return
        self._pending.append(item)
        if not self._scheduled and self._writing is None:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    async def durable(self) -> None:
        """Wait until everything handed over so far is committed."""
        if self.failed is not None:
            raise self.failed
        if self._pending:
            waiters = self._waiters
        elif self._writing is not None:
            waiters = self._writing_waiters
        else:
            return
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        await waiter

    def _start(self) -> None:
        """Hand what is pending to the writer thread (unless a commit is running there)."""
        self._scheduled = False
        if self._writing is not None:
            return  # ``_written`` starts the next one
        batch, self._pending = self._pending, []
        waiters, self._waiters = self._waiters, []
        if not batch or self.failed is not None:
            _settle(waiters, self.failed)
            return
        loop = asyncio.get_running_loop()
        writing = self._thread.submit(self.store.append_many, batch)
        self._writing, self._writing_waiters = writing, waiters
        writing.add_done_callback(
            lambda done: loop.call_soon_threadsafe(self._written, done)
        )  # fmt: skip

    def _written(self, done: concurrent.futures.Future[None]) -> None:
        if done is not self._writing:
            return  # already settled by ``commit`` (the run ended while it was written)
        self._settle_writing()
        if self._pending or self._waiters:
            self._start()

    def _settle_writing(self) -> None:
        writing, self._writing = self._writing, None
        waiters, self._writing_waiters = self._writing_waiters, []
        assert writing is not None
        error = writing.exception()
        if error is not None and self.failed is None:
            assert isinstance(error, Exception)
            self.failed = error  # a full disk, or a payload that is not JSON
            self.on_error(error)
        _settle(waiters, self.failed)

    def commit(self) -> None:
        """Commit everything handed over, here and now (when the run ends or stops): wait
        for the writer thread's commit, then write what is still pending."""
        if self._writing is not None:
            concurrent.futures.wait([self._writing])
            self._settle_writing()
        batch, self._pending = self._pending, []
        waiters, self._waiters = self._waiters, []
        if batch and self.failed is None:
            try:
                self.store.append_many(batch)
            except Exception as exc:
                self.failed = exc
                self.on_error(exc)
        _settle(waiters, self.failed)

    def close(self) -> None:
        self.commit()
        self._thread.shutdown(wait=True)


def _settle(waiters: list[asyncio.Future[None]], error: Exception | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


class Runner:
    def __init__(
        self,
        store: RunStore,
        protocol: Protocol,
        config: RunConfig,
        backends: Replicas,
        progress: Progress | None = None,
        *,
        only: frozenset[str] | None = None,
        share: tuple[int, int] = (0, 1),
    ) -> None:
        """``only``: run just these trials (a worker's share, already planned); ``share``:
        (I, N), this runner is the I-th of N, and keeps its part of each concurrency (the
        N parts add up to it)."""
        self.store = store
        self.only = only
        self.share = share
        self.protocol = protocol
        self.config = config
        self.replicas = replica_lists(backends)
        self.progress = progress or Progress()
        self._fatal: BaseException | None = None
        self.governor = _Governor(config)
        self._commits = _GroupCommit(store, self._store_failed)
        self._tasks: list[asyncio.Task[None]] = []  # the workers, one per trial in flight

    def _store_failed(self, exc: Exception) -> None:
        if self._fatal is None:  # disk full or broken store: stop everything
            self._fatal = exc
        # Now, not at each trial's next request: nothing more is stored, so what the
        # trials in flight would get is lost anyway (they stay 'running' for ``resume``).
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    def backend_for(self, row: TrialRow) -> Backend:
        """The backend (endpoint) this trial is pinned to for its whole life."""
        replicas = self.replicas[row.model]
        return replicas[endpoint_index(row.trial_id, len(replicas))]

    async def run(self) -> None:
        with _fewer_collections():
            # llama.cpp's log lines (held since the models were loaded) go to
            # RUN_DIR/llama.log, in a run with an in-process model only: a run of remote or
            # scripted models gets no llama.log, even when this process loaded a model for
            # something else.
            if not any(b.capabilities.in_process for r in self.replicas.values() for b in r):
                await self._run()
                return
            attach_llama_log(self.store.run_dir)
            try:
                await self._run()
            finally:
                detach_llama_log()

    async def _run(self) -> None:
        if self.only is None:
            self.store.plan_trials(plan_rows(self.protocol, self.config))
            todo = todo_rows(self.store)
            self.progress.total = len(self.store.trials())
        else:
            todo = [r for r in todo_rows(self.store) if r.trial_id in self.only]
            self.progress.total = len(self.only)
        self.progress.bump(done=self.progress.total - len(todo))
        by_endpoint: dict[str, list[TrialRow]] = defaultdict(list)
        for row in todo:
            by_endpoint[self.backend_for(row).endpoint].append(row)
        limits = {strip_userinfo(e.url): e.concurrency for e in self.config.endpoints}
        slots: list[tuple[asyncio.Queue[TrialRow], int]] = []  # (queue, trials in flight)
        for endpoint, endpoint_rows in by_endpoint.items():
            queue: asyncio.Queue[TrialRow] = asyncio.Queue()
            for row in endpoint_rows:
                queue.put_nowait(row)
            backend = self.backend_for(endpoint_rows[0])
            n = limits.get(endpoint) or self.config.concurrency or backend.default_concurrency
            index, count = self.share
            n = n // count + (1 if index < n % count else 0)  # >= 1: workers <= concurrency
            slots.append((queue, min(max(1, n), len(endpoint_rows))))
        workers = self._tasks
        try:
            # The endpoints' workers interleaved, and started in chunks (START_CHUNK).
            for queue in _interleaved(slots):
                if self._fatal is not None:
                    break
                workers.append(asyncio.create_task(self._worker(queue)))
                if len(workers) % START_CHUNK == 0:
                    await asyncio.sleep(0)
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            if self._fatal is None:
                raise  # the run itself was cancelled
            # else: the workers were stopped by a failed commit (raised below)
        finally:
            for w in workers:
                w.cancel()
            self._commits.close()  # whatever a stopping or cancelled run handed over
        if self._fatal is not None:
            raise self._fatal
        if self.governor.reason is not None:
            raise RunStopped(
                f"stopped, {self.governor.reason}; every finished reply is kept, "
                f"resume with: obedience run --resume {self.store.run_dir}"
            )

    async def _worker(self, queue: asyncio.Queue[TrialRow]) -> None:
        while self._fatal is None and self.governor.reason is None:
            try:
                row = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                await self.run_trial(row)
            except StoreError as exc:
                self._store_failed(exc)
                return

    async def run_trial(self, row: TrialRow) -> Trial:
        backend = self.backend_for(row)
        spec = self.protocol.condition(row.condition)
        trial = Trial(spec, row.condition, row.seed)
        if row.status == "done" and row.outcome != "error":
            return trial  # a counted trial is never reopened
        # The new attempt opens in the store with its first events (one commit for every
        # trial that starts in the same turn), not with a commit of its own.
        attempt = row.attempt + 1
        written = 0
        metas: dict[int, dict[str, Any]] = {}
        while (request := trial.next_request()) is not None:
            if self._fatal is not None:
                return trial  # leave the trial 'running'; resume restarts it cleanly
            sampling = self._sampling(row, spec, request)
            first_new = len(trial.events)
            started = time.monotonic()
            try:
                completion, errors = await self._call(
                    backend, chat_request(request, sampling, row.trial_id)
                )
            except _Stop:  # a budget or the breaker: leave it 'running'; resume restarts it
                self._flush(row.trial_id, attempt, trial, written, metas)
                return trial
            except TransportError as exc:
                trial.submit_failure(stored_text(str(exc)))
                metas[first_new] = {"transport_errors": [stored_text(e) for e in exc.history]}
                self.progress.bump(errors=1)
            else:
                completion, originals = safe_completion(completion)
                trial.submit_reply(engine_reply(completion))
                metas[first_new] = reply_meta(
                    completion, time.monotonic() - started, errors, sampling
                )
                metas[first_new].update(originals)
                if len(self.replicas[row.model]) > 1:
                    metas[first_new]["endpoint"] = backend.endpoint
                self.progress.bump(decisions=1, transport_retries=len(errors))
            written = self._flush(row.trial_id, attempt, trial, written, metas)
        self._flush(row.trial_id, attempt, trial, written, metas)
        await self._commits.durable()
        self.progress.bump(done=1)
        return trial

    def _flush(
        self, trial_id: str, attempt: int, trial: Trial, written: int, metas: dict[int, Any]
    ) -> int:
        new = trial.events[written:]
        if not new and not trial.done:
            return written
        rows = [(written + i, e.to_dict(), metas.pop(written + i, None)) for i, e in enumerate(new)]
        finish = (trial.outcome or "error", trial.highest_level) if trial.done else None
        self._commits.add(Appended(trial_id, attempt, rows, finish, start=written == 0))
        return len(trial.events)

    def _sampling(self, row: TrialRow, spec: ProtocolSpec, request: Request) -> Sampling:
        return Sampling(
            temperature=self.config.temperature_for(spec),
            max_tokens=self.config.max_tokens_for(row.model, spec),
            seed=derive_seed(row.sampling_seed, request.decision, request.attempt),
            top_p=request.top_p,
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
        )

    async def _call(self, backend: Backend, request: ChatRequest) -> tuple[Completion, list[str]]:
        """One reply, retried under the run's policy; the faults of the tries before it."""
        policy = RetryPolicy(
            retries=self.config.retries,
            backoff=self.config.backoff,
            # An in-process model cannot be cut off: the runner waits for it.
            timeout=None if backend.capabilities.in_process else self.config.timeout,
        )
        governor = self.governor

        async def one_try() -> Completion:
            governor.before_request()  # raises _Stop once a budget or the breaker says so
            completion = await backend.complete(request)
            governor.succeeded(completion)
            return completion

        return await with_retries(
            one_try, policy, observe=lambda err: governor.failed(err, backend.endpoint)
        )
