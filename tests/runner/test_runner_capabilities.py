"""The runner reads what a backend can do from its capabilities, not from its name."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import obedience
from obedience.backends import Capabilities, ChatRequest, Completion


class _Slow:
    """Every reply takes ``delay`` seconds; ``in_process`` as given."""

    name = "slow"
    endpoint = "slow"  # not "llama:...": the runner must not guess from the endpoint
    default_concurrency = 1

    def __init__(self, delay: float, in_process: bool) -> None:
        self.capabilities = Capabilities(in_process=in_process)
        self.delay = delay

    async def preflight(self) -> dict[str, Any]:
        return {"kind": "test"}

    async def complete(self, request: ChatRequest) -> Completion:
        await asyncio.sleep(self.delay)
        return Completion(text="PRESSED.", finish_reason="stop")

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize(("in_process", "outcome"), [(True, "max-reached"), (False, "error")])
def test_only_remote_requests_are_timed_out(tmp_path: Path, in_process: bool, outcome: str) -> None:
    config = obedience.RunConfig(
        models=["slow"], conditions=["PC-NS-NF"], trials=1, timeout=0.01, retries=0
    )
    backend = _Slow(0.03, in_process)
    result = obedience.run(config, tmp_path / "r", backends={"slow": backend}, report=False)
    with obedience.RunStore.open(result.run_dir) as store:
        assert [r.outcome for r in store.trials()] == [outcome]
        manifest = store.manifest()
    # the manifest records what the backend said it can do
    assert manifest["models"]["slow"]["capabilities"]["in_process"] is in_process


def test_the_embedded_backends_declare_what_the_probe_and_runner_need() -> None:
    from obedience.backends import OpenAIBackend, ScriptedBackend, make_backend

    local = make_backend("gguf:/nonexistent.gguf").capabilities  # made lazily: no file read
    assert local.in_process and local.renders_prompts and local.prefills_reply
    assert local.logprobs
    remote = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1").capabilities
    assert not (remote.in_process or remote.renders_prompts or remote.prefills_reply)
    assert not ScriptedBackend("obedient").capabilities.logprobs
