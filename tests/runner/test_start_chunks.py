"""Trials start in chunks: at thousands in flight, the first requests go out (and their
replies are handled) while later trials are still being set up, instead of every trial
setting itself up before the event loop sends anything."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from obedience.backends import Capabilities, ChatRequest, Completion
from obedience.protocols import load_protocol
from obedience.runner import RunConfig, Runner
from obedience.runner._runner import START_CHUNK
from obedience.store import RunStore

MODEL = "instant"


class _Instant:
    """Answers after one turn of the event loop; logs each request's trial and decision."""

    capabilities = Capabilities(tools=False, constrained=False, logprobs=False)
    default_concurrency = 8
    name = MODEL
    endpoint = MODEL

    def __init__(self) -> None:
        self.log: list[tuple[str | None, int]] = []

    async def preflight(self) -> dict[str, Any]:
        return {"kind": "instant"}

    async def complete(self, request: ChatRequest) -> Completion:
        seen = sum(1 for key, _ in self.log if key == request.session_key)
        self.log.append((request.session_key, seen))
        await asyncio.sleep(0)
        return Completion(text="PRESSED. Going on.", finish_reason="stop")

    async def aclose(self) -> None:
        return None


def _run(tmp_path: Path, trials: int) -> list[tuple[str | None, int]]:
    config = RunConfig(models=[MODEL], conditions=["PC-NS-NF"], trials=trials, concurrency=trials)
    backend = _Instant()
    with RunStore.create(tmp_path / "run") as store:
        runner = Runner(store, load_protocol(config.protocol), config, {MODEL: backend})
        asyncio.run(runner.run())
        assert {r.status for r in store.trials()} == {"done"}
    return backend.log


def test_second_requests_go_out_before_the_last_trial_starts(tmp_path: Path) -> None:
    trials = 4 * START_CHUNK
    log = _run(tmp_path, trials)
    first_of_last_trial = max(i for i, (_, n) in enumerate(log) if n == 0)
    first_second_request = min(i for i, (_, n) in enumerate(log) if n == 1)
    assert first_second_request < first_of_last_trial
    assert len({key for key, _ in log}) == trials  # every trial ran, each once from the start


def test_a_run_within_one_chunk_starts_every_trial_at_once(tmp_path: Path) -> None:
    trials = START_CHUNK // 2
    log = _run(tmp_path, trials)
    assert [n for _, n in log[:trials]] == [0] * trials


def test_the_endpoints_slots_are_taken_in_turn() -> None:
    from obedience.runner._runner import _interleaved

    a: asyncio.Queue[Any] = asyncio.Queue()
    b: asyncio.Queue[Any] = asyncio.Queue()
    order = _interleaved([(a, 3), (b, 1)])
    assert [q is a for q in order] == [True, False, True, True]
    assert _interleaved([]) == []
