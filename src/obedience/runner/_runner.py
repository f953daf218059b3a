"""The async runner: drives many trials at once and records every event.

Trials are grouped by endpoint (one server, or one in-process model); each
endpoint gets ``concurrency`` workers, so a slow or failing server never starves
another. Transport faults are retried with exponential backoff and jitter; a
trial whose transport still fails ends as ``error`` (never as a refusal) and
the run goes on. Events are committed after every reply, so a killed process
loses at most the replies in flight.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import platform
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obedience._text import (
    escape_surrogates,
    has_surrogates,
    original_json,
    safe_value,
    scrub_secrets,
    strip_userinfo,
)
from obedience._version import __version__
from obedience.backends import (
    Backend,
    BackendError,
    Completion,
    Sampling,
    TransportError,
    attach_llama_log,
    check_supports,
    detach_llama_log,
)
from obedience.engine import Reply, Request, Trial
from obedience.protocols import Protocol, ProtocolSpec
from obedience.runner._config import RunConfig, derive_seed, stimulus_seed
from obedience.store import RunStore, StoreError, TrialRow, trial_key

BACKOFF_CAP_S = 20.0
# A server's Retry-After is honoured up to this many seconds (a longer wait is cut short:
# the retry may then fail again, and the trial ends as an error after the last try).
RETRY_AFTER_CAP_S = 60.0


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
                completion, errors = await self._call(backend, request, sampling)
            except TransportError as exc:
                trial.submit_failure(_untrusted(str(exc)))
                metas[first_new] = {"transport_errors": [_untrusted(e) for e in exc.history]}
                self.progress.bump(errors=1)
            else:
                completion, originals = safe_completion(completion)
                trial.submit_reply(
                    Reply(
                        text=completion.text,
                        tool_call=completion.tool_call,
                        finish_reason=completion.finish_reason,
                    )
                )
                metas[first_new] = _meta(completion, time.monotonic() - started, errors, sampling)
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

    async def _call(
        self, backend: Backend, request: Request, sampling: Sampling
    ) -> tuple[Completion, list[str]]:
        errors: list[str] = []
        timeout = None if backend.capabilities.in_process else self.config.timeout
        for attempt in range(self.config.retries + 1):
            try:
                completion = await asyncio.wait_for(backend.complete(request, sampling), timeout)
                return completion, errors
            except TimeoutError:
                err = TransportError(f"timed out after {timeout:g}s")
            except TransportError as exc:
                err = exc
            except BackendError as exc:
                err = TransportError(str(exc), retryable=False)
            except Exception as exc:  # a backend bug must not crash the run or pose as a reply
                err = TransportError(
                    f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                    retryable=False,
                )
            errors.append(_untrusted(str(err)))
            if not err.retryable or attempt == self.config.retries:
                raise TransportError(
                    f"{err} (gave up after {attempt + 1} tries)", retryable=False, history=errors
                )
            await asyncio.sleep(retry_delay(self.config.backoff, attempt, err.retry_after))
        raise AssertionError("unreachable")


def retry_delay(backoff: float, attempt: int, retry_after: float | None) -> float:
    """Seconds before retry ``attempt + 1``: exponential backoff with jitter, but never
    sooner than the server's Retry-After (honoured up to ``RETRY_AFTER_CAP_S``)."""
    delay = float(min(BACKOFF_CAP_S, backoff * 2**attempt) * random.uniform(0.5, 1.5))
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP_S))
    return delay


def _untrusted(text: str) -> str:
    """Server-sent text (error bodies) as stored: no lone surrogates, no known secrets."""
    return scrub_secrets(escape_surrogates(text))


def safe_completion(completion: Completion) -> tuple[Completion, dict[str, Any]]:
    """The completion made safe where it enters the run, and the originals it replaced.

    Lone surrogates (valid in JSON, impossible in UTF-8) are escaped as ``\\udXXX`` in
    the text every later step sees; the exact original is kept in the reply's meta as
    ASCII JSON (``original_text_json``), so nothing the model sent is lost.
    """
    originals: dict[str, Any] = {}
    text = completion.text
    if has_surrogates(text):
        originals["original_text_json"] = original_json(text)
        text = escape_surrogates(text)
    tool_call = completion.tool_call
    if tool_call is not None:
        safe_call = safe_value(tool_call)
        if safe_call != tool_call:
            originals["original_tool_call_json"] = json.dumps(tool_call, ensure_ascii=True)
            tool_call = safe_call
    finish = completion.finish_reason
    if finish is not None:
        finish = escape_surrogates(finish)
    if not originals and finish == completion.finish_reason:
        return completion, originals
    return (
        dataclasses.replace(
            completion,
            text=text,
            tool_call=tool_call,
            finish_reason=finish,
            extra=safe_value(completion.extra),
        ),
        originals,
    )


def _meta(
    completion: Completion, latency: float, errors: list[str], sampling: Sampling
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "latency_s": round(latency, 6),
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "sampling_seed": sampling.seed,
        "temperature": sampling.temperature,
        "max_tokens": sampling.max_tokens,
    }
    if completion.cached_tokens is not None:
        meta["cached_tokens"] = completion.cached_tokens
    if errors:
        meta["transport_retries"] = len(errors)
        meta["transport_errors"] = errors
    if completion.extra:
        meta.update({k: v for k, v in completion.extra.items() if v is not None})
    return meta
