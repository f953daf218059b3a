"""A real run of scripted subjects through the library API, for tests that need a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import obedience
from obedience import RunConfig


def make_run(run_dir: Path, config: RunConfig, backends: dict[str, Any] | None = None) -> Path:
    """``obedience.run`` without the rule labels and the report; returns ``run_dir``.

    ``backends``: test doubles by model name; by default each model spec is made as usual.
    """
    obedience.run(config, run_dir, backends=backends, label=False, report=False)
    return run_dir
