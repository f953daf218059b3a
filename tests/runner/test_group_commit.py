"""The runner commits the replies of one turn of the event loop together, in a writer
thread.

What must hold: replies that arrive together share one commit; an unfinished trial's
events are stored while it waits for its next reply (a killed process loses only the
replies in flight); ``run_trial`` returns only once its trial is stored as finished; and
the events are the same, in the same order, as with a commit per reply.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from obedience.backends import Capabilities, ChatRequest, Completion
from obedience.protocols import load_protocol
from obedience.runner import RunConfig, Runner
from obedience.store import Appended, RunStore

MODEL = "paced"


class _Paced:
    """Complies; with ``together`` trials in flight, all of them reply in the same turn of
    the event loop (a barrier), as a burst of replies from a server does."""

    capabilities = Capabilities(tools=False, constrained=False, logprobs=False)
    default_concurrency = 8
    name = MODEL
    endpoint = MODEL

    def __init__(self, gate_after: int | None = None, together: int = 1) -> None:
        self.calls = 0
        self.barrier = asyncio.Barrier(together)
        self.gate_after = gate_after
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def preflight(self) -> dict[str, Any]:
        return {"kind": "paced"}

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        if self.gate_after is not None and self.calls > self.gate_after:
            self.waiting.set()
            await self.gate.wait()
        await asyncio.sleep(0)
        await self.barrier.wait()
        return Completion(text="PRESSED. Going on.", finish_reason="stop")

    async def aclose(self) -> None:
        return None


def _config(trials: int, concurrency: int) -> RunConfig:
    return RunConfig(
        models=[MODEL], conditions=["PC-NS-NF"], trials=trials, concurrency=concurrency
    )


def _recording(store: RunStore) -> list[int]:
    """Patch ``store.append_many`` to record how many trials each commit holds."""
    sizes: list[int] = []
    real = store.append_many

    def record(batch: list[Appended]) -> None:
        sizes.append(len({item.trial_id for item in batch}))
        real(batch)

    store.append_many = record  # type: ignore[method-assign]
    return sizes


def _events(store: RunStore) -> list[tuple[str, int, str, dict[str, Any]]]:
    return [(e.trial_id.split("|")[-1], e.seq, e.kind, e.payload) for e in store.events()]


def test_replies_of_one_turn_share_a_commit_and_the_events_are_unchanged(tmp_path: Path) -> None:
    config = _config(trials=8, concurrency=8)
    protocol = load_protocol(config.protocol)
    with RunStore.create(tmp_path / "grouped") as store:
        sizes = _recording(store)
        asyncio.run(Runner(store, protocol, config, {MODEL: _Paced(together=8)}).run())
        grouped = _events(store)
        assert {r.status for r in store.trials()} == {"done"}
    # 8 trials x 12 decisions in flight together: their replies share commits.
    assert max(sizes) == 8
    assert len(sizes) < 8 * 12

    # The same trials one at a time (one reply per turn): the same events, in order.
    with RunStore.create(tmp_path / "single") as store:
        sizes = _recording(store)
        asyncio.run(Runner(store, protocol, _config(8, 1), {MODEL: _Paced()}).run())
        # One trial's hand-overs made while the writer thread wrote the one before go in
        # one commit, so there are fewer commits than replies, each of one trial.
        assert max(sizes) == 1
        assert _events(store) == grouped


def test_an_unfinished_trial_is_stored_while_it_waits_and_done_once_returned(
    tmp_path: Path,
) -> None:
    config = _config(trials=1, concurrency=1)
    protocol = load_protocol(config.protocol)

    async def scenario(store: RunStore) -> None:
        backend = _Paced(gate_after=3)
        runner = Runner(store, protocol, config, {MODEL: backend})
        task = asyncio.create_task(runner.run())
        await backend.waiting.wait()  # the 4th request is in flight
        # The commit of the 3rd reply runs in the writer thread: bounded wait for it.
        for _ in range(500):
            replies = [e for e in store.events(final_only=False) if e.kind == "reply"]
            if len(replies) == 3:
                break
            await asyncio.sleep(0.01)
        assert len(replies) == 3  # stored while the trial waits, before it goes on
        assert store.trials()[0].status == "running"
        backend.gate.set()
        await task
        # Returned: finished and stored as such, nothing left pending.
        assert store.trials()[0].status == "done"
        assert sum(1 for e in store.events() if e.kind == "reply") == 12

    with RunStore.create(tmp_path / "run") as store:
        asyncio.run(scenario(store))


def test_the_collector_runs_less_often_during_a_run_and_as_before_after(tmp_path: Path) -> None:
    import gc

    from obedience.runner._runner import RUN_GC_THRESHOLD

    seen: list[tuple[int, int, int]] = []

    class _Recording(_Paced):
        async def complete(self, request: ChatRequest) -> Completion:
            seen.append(gc.get_threshold())
            return await super().complete(request)

    before = gc.get_threshold()
    config = _config(trials=1, concurrency=1)
    with RunStore.create(tmp_path / "run") as store:
        asyncio.run(
            Runner(store, load_protocol(config.protocol), config, {MODEL: _Recording()}).run()
        )
    assert seen and all(t[0] >= RUN_GC_THRESHOLD for t in seen)
    assert gc.get_threshold() == before

    # Two runs at once in one process, ending in either order: the thresholds come back.
    async def two_runs(a: RunStore, b: RunStore) -> None:
        protocol = load_protocol(config.protocol)
        short = Runner(a, protocol, config, {MODEL: _Recording()})
        longer = Runner(b, protocol, _config(trials=3, concurrency=1), {MODEL: _Recording()})
        await asyncio.gather(short.run(), longer.run())

    with RunStore.create(tmp_path / "a") as a, RunStore.create(tmp_path / "b") as b:
        asyncio.run(two_runs(a, b))
    assert gc.get_threshold() == before


def test_an_attempt_opens_with_its_first_events_and_a_conflict_stores_nothing(
    tmp_path: Path,
) -> None:
    from obedience.runner import plan_rows
    from obedience.store import StoreError

    config = _config(trials=2, concurrency=1)
    with RunStore.create(tmp_path / "run") as store:
        store.plan_trials(plan_rows(load_protocol(config.protocol), config))
        first, second = (r.trial_id for r in store.trials())
        event = (0, {"kind": "trial-started"}, None)
        store.append_many([Appended(first, 1, [event], start=True)])
        row = store.trials()[0]
        assert (row.trial_id, row.attempt, row.status) == (first, 1, "running")
        # Attempt 1 again (the trial is at 1 now), beside a good start: all or nothing.
        with pytest.raises(StoreError, match="another process"):
            store.append_many(
                [Appended(second, 1, [event], start=True), Appended(first, 1, [event], start=True)]
            )
        assert [(r.attempt, r.status) for r in store.trials()] == [(1, "running"), (0, "pending")]
        assert len(list(store.events(final_only=False))) == 1


def _gapless(store: RunStore) -> None:
    """Every stored attempt's events run 0, 1, 2, ... and no finished trial lacks its end."""
    seqs: dict[tuple[str, int], list[int]] = {}
    kinds: dict[tuple[str, int], list[str]] = {}
    for e in store.events(final_only=False):
        seqs.setdefault((e.trial_id, e.attempt), []).append(e.seq)
        kinds.setdefault((e.trial_id, e.attempt), []).append(e.kind)
    for key, numbers in seqs.items():
        assert numbers == list(range(len(numbers))), key
    for row in store.trials():
        if row.status == "done":
            assert kinds[(row.trial_id, row.attempt)][-1] == "trial-ended"


def test_after_a_failed_commit_nothing_more_is_stored_and_resume_completes(
    tmp_path: Path,
) -> None:
    from obedience.store import StoreError

    config = _config(trials=4, concurrency=4)
    protocol = load_protocol(config.protocol)
    with RunStore.create(tmp_path / "clean") as store:
        sizes = _recording(store)
        asyncio.run(Runner(store, protocol, config, {MODEL: _Paced(together=4)}).run())
    # Commits in a whole run: few (the replies are instant, so all that is handed over
    # while the writer thread writes one batch goes in the next).
    assert len(sizes) >= 2
    # The batch with every trial's start, and the next (how many follow it depends on how
    # fast the writer thread is, but there is always a second).
    for failing in (1, 2):
        run_dir = tmp_path / f"run{failing}"
        with RunStore.create(run_dir) as store:
            real = store.append_many
            calls = 0

            def flaky(batch: list[Appended], real: Any = real, failing: int = failing) -> None:
                nonlocal calls
                calls += 1
                if calls == failing:  # once: the store is fine again afterwards
                    raise StoreError("database is locked")
                real(batch)

            store.append_many = flaky  # type: ignore[method-assign]
            with pytest.raises(StoreError, match="locked"):
                asyncio.run(Runner(store, protocol, config, {MODEL: _Paced(together=4)}).run())
            assert calls == failing  # nothing was stored after the failure
            _gapless(store)
            store.append_many = real  # type: ignore[method-assign]
            asyncio.run(Runner(store, protocol, config, {MODEL: _Paced(together=4)}).run())
            _gapless(store)
            assert {r.status for r in store.trials()} == {"done"}


def test_a_reply_that_cannot_be_stored_fails_the_run_instead_of_hanging(tmp_path: Path) -> None:
    import datetime

    class _Odd(_Paced):
        async def complete(self, request: ChatRequest) -> Completion:
            done = await super().complete(request)
            done.extra["received"] = datetime.datetime.now()  # not JSON
            return done

    config = _config(trials=2, concurrency=2)

    async def bounded(store: RunStore) -> None:
        run = Runner(store, load_protocol(config.protocol), config, {MODEL: _Odd()}).run()
        await asyncio.wait_for(run, timeout=30)

    with RunStore.create(tmp_path / "run") as store, pytest.raises(TypeError, match="JSON"):
        asyncio.run(bounded(store))
