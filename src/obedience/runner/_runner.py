"""The async runner: drives many trials at once and records every event.

Trials are grouped by endpoint (one server, or one in-process model); each
endpoint gets ``concurrency`` workers, so a slow or failing server never starves
another. Each engine request goes to the backend as a ``ChatRequest`` carrying the
trial id as its session key. Transport faults are retried by the backends' shared
retry loop (exponential backoff with jitter, Retry-After honoured); a trial whose
transport still fails ends as ``error`` (never as a refusal) and the run goes on.
Events are committed after every reply, so a killed process loses at most the replies
in flight.
"""

from __future__ import annotations

import asyncio
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obedience._text import strip_userinfo
from obedience._version import __version__
from obedience.backends import (
    Backend,
    ChatRequest,
    Completion,
    RetryPolicy,
    Sampling,
    TransportError,
    attach_llama_log,
    check_supports,
    detach_llama_log,
    with_retries,
)
from obedience.backends._retry import stored_text
from obedience.engine import Request, Trial
from obedience.protocols import Protocol, ProtocolSpec
from obedience.runner._config import RunConfig, derive_seed, stimulus_seed
from obedience.runner._requests import chat_request, engine_reply, reply_meta, safe_completion
from obedience.store import RunStore, StoreError, TrialRow, trial_key


@dataclass
class Progress:
    """Counters the CLI shows; updated by the runner, read by whoever renders them."""

    total: int = 0
    done: int = 0
    decisions: int = 0
    errors: int = 0
    transport_retries: int = 0
    started: float = field(default_factory=time.monotonic)
    on_change: Callable[[Progress], None] | None = None

    def bump(self, **delta: int) -> None:
        for key, value in delta.items():
            setattr(self, key, getattr(self, key) + value)
        if self.on_change is not None:
            self.on_change(self)


def conditions_for(protocol: Protocol, config: RunConfig) -> list[str]:
    chosen = config.conditions or list(protocol.default_conditions)
    for c in chosen:
        protocol.condition(c)  # raises a one-line ProtocolError for an unknown name
    return chosen


def plan_rows(protocol: Protocol, config: RunConfig) -> list[TrialRow]:
    rows = []
    for model in config.models:
        for condition in conditions_for(protocol, config):
            rule = protocol.condition(condition).seed_rule
            for index in range(1, config.trials + 1):
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
    return data


async def preflight(
    backends: dict[str, Backend], protocol: Protocol, config: RunConfig
) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for spec, backend in backends.items():
        for condition in conditions_for(protocol, config):
            c = protocol.condition(condition)
            check_supports(backend, c.channel.kind, c.policy.kind == "constrained")
        meta[spec] = {
            **(await backend.preflight()),
            "capabilities": vars(backend.capabilities),
        }
    return meta


class Runner:
    def __init__(
        self,
        store: RunStore,
        protocol: Protocol,
        config: RunConfig,
        backends: dict[str, Backend],
        progress: Progress | None = None,
    ) -> None:
        self.store = store
        self.protocol = protocol
        self.config = config
        self.backends = backends
        self.progress = progress or Progress()
        self._fatal: BaseException | None = None

    async def run(self) -> None:
        # llama.cpp's log lines (held since the models were loaded) go to RUN_DIR/llama.log,
        # in a run with an in-process model only: a run of remote or scripted models gets
        # no llama.log, even when this process loaded a model for something else.
        if not any(b.capabilities.in_process for b in self.backends.values()):
            await self._run()
            return
        attach_llama_log(self.store.run_dir)
        try:
            await self._run()
        finally:
            detach_llama_log()

    async def _run(self) -> None:
        self.store.plan_trials(plan_rows(self.protocol, self.config))
        todo = [r for r in self.store.trials() if r.status != "done"]
        self.progress.total = len(self.store.trials())
        self.progress.bump(done=self.progress.total - len(todo))
        by_endpoint: dict[str, list[TrialRow]] = defaultdict(list)
        for row in todo:
            by_endpoint[self.backends[row.model].endpoint].append(row)
        workers = []
        for endpoint_rows in by_endpoint.values():
            queue: asyncio.Queue[TrialRow] = asyncio.Queue()
            for row in endpoint_rows:
                queue.put_nowait(row)
            backend = self.backends[endpoint_rows[0].model]
            n = self.config.concurrency or backend.default_concurrency
            workers += [asyncio.create_task(self._worker(queue)) for _ in range(n)]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
        if self._fatal is not None:
            raise self._fatal

    async def _worker(self, queue: asyncio.Queue[TrialRow]) -> None:
        while self._fatal is None:
            try:
                row = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                await self.run_trial(row)
            except StoreError as exc:  # disk full or broken store: stop everything
                self._fatal = exc
                return

    async def run_trial(self, row: TrialRow) -> Trial:
        backend = self.backends[row.model]
        spec = self.protocol.condition(row.condition)
        attempt = self.store.start_trial(row.trial_id)
        trial = Trial(spec, row.condition, row.seed)
        if attempt is None:  # finished meanwhile: never reopen a counted trial
            return trial
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
                self.progress.bump(decisions=1, transport_retries=len(errors))
            written = self._flush(row.trial_id, attempt, trial, written, metas)
        self._flush(row.trial_id, attempt, trial, written, metas)
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
        self.store.append(trial_id, attempt, rows, finish=finish)
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
        return await with_retries(lambda: backend.complete(request), policy)
