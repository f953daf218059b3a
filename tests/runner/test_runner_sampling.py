"""Sampling parameters flow from the protocol to the wire (FIDELITY 13), and every harness
option or sampling setting that departs from the protocol's defaults is a manifest deviation."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.helpers.fake_openai import FakeOpenAI

from obedience.backends import BackendOptions, make_backend
from obedience.protocols import load_protocol
from obedience.runner import RunConfig, Runner, build_manifest
from obedience.store import RunStore

MODEL = "openai:fake-model"


def _bodies(tmp_path: Path, **config: object) -> tuple[list[dict[str, object]], RunConfig]:
    run_config = RunConfig(
        models=[MODEL],
        trials=1,
        concurrency=1,
        retries=0,
        **config,  # type: ignore[arg-type]
    )
    protocol = load_protocol(run_config.protocol)
    with FakeOpenAI() as server:
        server.keep_bodies = True
        run_config = run_config.model_copy(update={"base_url": server.base_url})
        backends = {MODEL: make_backend(MODEL, BackendOptions(base_url=server.base_url))}

        async def go() -> None:
            with RunStore.create(tmp_path / "run") as store:
                try:
                    await Runner(store, protocol, run_config, backends).run()
                finally:
                    await backends[MODEL].aclose()

        asyncio.run(go())
        return list(server.bodies), run_config


def test_the_papers_sampling_is_sent_explicitly(tmp_path: Path) -> None:
    bodies, _ = _bodies(tmp_path, conditions=["PC-NS-NF"])
    assert bodies
    for body in bodies:
        assert body["temperature"] == 1.0
        assert (body["top_p"], body["presence_penalty"], body["frequency_penalty"]) == (1.0, 0, 0)
        assert body["max_tokens"] == 1000


def test_a_local_run_at_0_6_is_one_flag_away_and_recorded(tmp_path: Path) -> None:
    bodies, config = _bodies(tmp_path, conditions=["PC-NS-NF"], temperature=0.6)
    assert {b["temperature"] for b in bodies} == {0.6}
    manifest = build_manifest(load_protocol("pihlakas2026"), config, {})
    assert f"{MODEL}: temperature 0.6 set by the run config" in manifest["deviations"]
    assert manifest["sampling"][MODEL]["PC-NS-NF"]["top_p"] == 1.0


def test_harness_variants_are_recorded_as_deviations() -> None:
    protocol = load_protocol("pihlakas2026")
    config = RunConfig(models=[MODEL], conditions=["PC-NS-NF", "PC-NS-NF-caseless"])
    deviations = build_manifest(protocol, config, {})["deviations"]
    assert deviations == [
        "PC-NS-NF-caseless: channel.fallback_case = 'insensitive' (protocol default: 'sensitive')"
    ]
    faithful = RunConfig(models=[MODEL], conditions=list(protocol.default_conditions))
    assert build_manifest(protocol, faithful, {})["deviations"] == []
