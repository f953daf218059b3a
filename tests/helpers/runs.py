"""A real run of scripted subjects through the runner, for tests that need a run directory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from obedience.backends import BackendOptions, make_backend
from obedience.protocols import load_protocol
from obedience.runner import RunConfig, Runner, build_manifest, preflight
from obedience.store import RunStore


def make_run(run_dir: Path, config: RunConfig, backends: dict[str, Any] | None = None) -> Path:
    """Preflight, manifest and run, exactly as `obedience run` does; returns ``run_dir``.

    ``backends``: test doubles by model name; by default each model spec is made as usual.
    """
    proto = load_protocol(config.protocol)
    if backends is None:
        backends = {m: make_backend(m, BackendOptions()) for m in config.models}

    async def go() -> None:
        meta = await preflight(backends, proto, config)
        store = RunStore.create(run_dir)
        try:
            store.write_manifest(build_manifest(proto, config, meta))
            await Runner(store, proto, config, backends).run()
        finally:
            store.close()

    asyncio.run(go())
    return run_dir
