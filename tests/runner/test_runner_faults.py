"""The runner against a loopback server that injects transport faults.

No fault may become a refusal: a fault is retried (with the retries recorded in the reply's
meta), a trial whose retries run out ends as ``error``, a filtered reply ends as
``content-filter``, and the run goes on to the end.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.fake_openai import FakeOpenAI

from obedience.analysis import build_tables, summary_records
from obedience.backends import (
    Backend,
    BackendOptions,
    ChatRequest,
    Completion,
    TransportError,
    make_backend,
)
from obedience.protocols import load_protocol
from obedience.runner import Progress, RunConfig, Runner
from obedience.store import RunStore, StoreError

MODEL = "openai:fake-model"

# Requests are served one at a time (concurrency 1), so faults are consumed in order.
# The obedient server makes exactly 12 decisions per PC-NS-NF trial.
FAULTS = (
    # trial 1: one fault of each retryable kind, each followed by a good reply
    ["500", "ok", "reset", "ok", "malformed", "ok", "timeout", "ok", "bad-shape", "ok"]
    + ["ok"] * 7
    # trial 2: 500 on every try -> error after 3 tries (retries = 2)
    + ["500", "500", "500"]
    # trial 3: the reply is filtered -> content-filter
    + ["filter"]
    # trial 4: three different faults in a row -> error
    + ["reset", "timeout", "malformed"]
    # trial 5: clean
)


def _config(base_url: str, trials: int) -> RunConfig:
    return RunConfig(
        models=[MODEL],
        conditions=["PC-NS-NF"],
        trials=trials,
        concurrency=1,
        base_url=base_url,
        timeout=0.4,
        retries=2,
        backoff=0.01,
    )


def _run(store: RunStore, config: RunConfig, progress: Progress | None = None) -> Progress:
    progress = progress or Progress()
    protocol = load_protocol(config.protocol)
    options = BackendOptions(base_url=config.base_url, timeout=config.timeout)
    backends = {m: make_backend(m, options) for m in config.models}

    async def go() -> None:
        try:
            await Runner(store, protocol, config, backends, progress).run()
        finally:
            for b in backends.values():
                await b.aclose()

    asyncio.run(go())
    return progress


def test_faults_are_retried_or_end_as_error_never_as_refusals(tmp_path: Path) -> None:
    with FakeOpenAI(faults=list(FAULTS), hang_s=3.0) as server:
        with RunStore.create(tmp_path / "run") as store:
            progress = _run(store, _config(server.base_url, trials=5))
            outcomes = {r.trial_index: r.outcome for r in store.trials()}
            events = list(store.events(final_only=False))
            records = summary_records(build_tables(store).trials)
        injected = Counter(server.injected)

    assert outcomes == {
        1: "max-reached",
        2: "error",
        3: "content-filter",
        4: "error",
        5: "max-reached",
    }
    assert injected == {
        "500": 4,
        "reset": 2,
        "malformed": 2,
        "timeout": 2,
        "bad-shape": 1,
        "filter": 1,
    }
    by_trial: dict[int, list[Any]] = {}
    for e in events:
        by_trial.setdefault(int(e.trial_id.rsplit("|", 1)[1]), []).append(e)

    # Not one fault turned into a refusal or a prod.
    assert not [e for e in events if e.kind == "prod"]
    assert not [e for e in events if e.kind == "reply" and e.payload["action"] == "refuse"]

    # Trial 1: five replies needed one retry each, and say why.
    retried = [e.meta for e in by_trial[1] if e.kind == "reply" and "transport_retries" in e.meta]
    assert [m["transport_retries"] for m in retried] == [1, 1, 1, 1, 1]
    reasons = [m["transport_errors"][0] for m in retried]
    assert reasons[0].startswith("server error 500")
    assert reasons[1].startswith("connection error")
    assert reasons[2].startswith("malformed response")
    assert "timed out" in reasons[3].lower()
    assert reasons[4].startswith("malformed response")
    shocks = [e for e in by_trial[1] if e.kind == "shock"]
    assert len(shocks) == 12

    # Trials 2 and 4: the failed decision has no reply; the trial ends as error.
    for index, tries in ((2, 3), (4, 3)):
        kinds = [e.kind for e in by_trial[index]]
        assert "reply" not in kinds
        assert kinds[-2:] == ["transport-error", "trial-ended"]
        failure = by_trial[index][-2]
        assert len(failure.meta["transport_errors"]) == tries
        assert "gave up after 3 tries" in failure.payload["message"]
        assert by_trial[index][-1].payload["reason"] == "error"

    # Trial 3: the filtered reply is recorded with its finish_reason; no retry, no prod.
    replies = [e for e in by_trial[3] if e.kind == "reply"]
    assert [r.payload["finish_reason"] for r in replies] == ["content_filter"]
    assert by_trial[3][-1].payload["reason"] == "content-filter"

    # The summary keeps errors and filtered trials apart from the rates.
    (record,) = records
    assert record["trials"] == 5
    assert record["errors"] == 2
    assert record["content_filtered"] == 1
    assert record["completed"] == 2
    assert record["reached_max"] == 2 and record["reached_max_rate"] == 1.0
    assert progress.errors == 2
    assert progress.transport_retries == 5
    assert progress.done == 5


class _Flaky:
    """A backend whose first ``fail`` calls raise ``exc``; then it complies."""

    name = "flaky"
    endpoint = "flaky"
    default_concurrency = 1

    def __init__(self, exc: BaseException, fail: int) -> None:
        from obedience.backends import Capabilities

        self.capabilities = Capabilities()
        self.exc = exc
        self.fail = fail
        self.calls = 0

    async def preflight(self) -> dict[str, Any]:
        return {}

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        if self.calls <= self.fail:
            raise self.exc
        return Completion(text="PRESSED. Fine.", finish_reason="stop")

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize(
    ("exc", "outcome", "calls"),
    [
        (TransportError("flaky network"), "max-reached", 12 + 2),
        # a 4xx other than 429 is the request's fault: one try, then the trial is an error
        (TransportError("request rejected 400: bad", retryable=False), "error", 1),
        (KeyError("choices"), "error", 1),  # a backend bug: recorded, not retried, no crash
    ],
)
def test_backend_exceptions_never_crash_the_run(
    tmp_path: Path, exc: BaseException, outcome: str, calls: int
) -> None:
    backend = _Flaky(exc, fail=2)
    assert isinstance(backend, Backend)
    config = RunConfig(
        models=["flaky"], conditions=["PC-NS-NF"], trials=1, retries=3, backoff=0.001
    )
    with RunStore.create(tmp_path / "run") as store:
        asyncio.run(Runner(store, load_protocol(config.protocol), config, {"flaky": backend}).run())
        assert [r.outcome for r in store.trials()] == [outcome]
    assert backend.calls == calls


def test_backoff_grows_and_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, *args: Any) -> None:
        delays.append(delay)
        await real_sleep(0)

    monkeypatch.setattr("obedience.runner._runner.asyncio.sleep", fake_sleep)
    backend = _Flaky(TransportError("down"), fail=3)
    config = RunConfig(models=["flaky"], conditions=["PC-NS-NF"], trials=1, retries=3, backoff=2)
    with RunStore.create(tmp_path / "run") as store:
        asyncio.run(Runner(store, load_protocol(config.protocol), config, {"flaky": backend}).run())
    assert len(delays) == 3
    # base * 2**attempt, with jitter in [0.5, 1.5)
    for attempt, delay in enumerate(delays):
        assert 2 * 2**attempt * 0.5 <= delay <= 2 * 2**attempt * 1.5


def test_a_store_error_stops_every_worker_and_leaves_trials_resumable(tmp_path: Path) -> None:
    config = RunConfig(
        models=["scripted:obedient"], conditions=["PC-NS-NF"], trials=6, concurrency=3
    )
    protocol = load_protocol(config.protocol)
    with RunStore.create(tmp_path / "run") as store:
        # The runner writes through ``append_many``: one commit per turn of the event loop
        # (a scripted subject never yields, so here: one per finished trial).
        real_append = store.append_many
        calls = 0

        def failing_append(*args: Any, **kwargs: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise StoreError("store write failed: injected")
            real_append(*args, **kwargs)

        store.append_many = failing_append  # type: ignore[method-assign]
        backends = {m: make_backend(m) for m in config.models}
        with pytest.raises(StoreError, match="injected"):
            asyncio.run(Runner(store, protocol, config, backends).run())
        assert calls == 2  # nothing was written after the failure
        statuses = Counter(r.status for r in store.trials())
        assert statuses["done"] < 6
        store.append_many = real_append  # type: ignore[method-assign]
        asyncio.run(Runner(store, protocol, config, backends).run())
        assert {r.status for r in store.trials()} == {"done"}
        assert {r.outcome for r in store.trials()} == {"max-reached"}
