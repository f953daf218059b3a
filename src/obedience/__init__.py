"""obedience: Milgram-style authority-pressure experiments for language models.

The curated public API (see ``obedience._api`` and the README's "Library use"): run,
resume, annotate, statistics, write_report and probe_model, plus the types they
take and return. Everything else lives in private modules behind it.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import Any

from obedience._api import (
    AnnotateResult,
    ProbeRun,
    RunResult,
    annotate,
    as_config,
    errors,
    export,
    probe_model,
    probe_model_async,
    resume,
    resume_async,
    resume_config,
    run,
    run_async,
    sampled_obedience,
    statistics,
    summary,
    write_report,
)
from obedience.engine import Reply, Request, Trial, run_with, scripted_subject
from obedience.protocols import Protocol, ProtocolError, load_protocol
from obedience.runner import ConfigError, RunConfig, load_config_file, validate_config
from obedience.runner import Progress as RunProgress
from obedience.store import DATABASE, RunStore, StoreError


def __getattr__(name: str) -> Any:
    # ERRORS names the judge's and the backends' exceptions: built on first use so that
    # ``import obedience`` stays light.
    if name == "ERRORS":
        return errors()
    raise AttributeError(f"module 'obedience' has no attribute {name!r}")


__all__ = [
    "DATABASE",
    "AnnotateResult",
    "ConfigError",
    "ProbeRun",
    "Protocol",
    "ProtocolError",
    "Reply",
    "Request",
    "RunConfig",
    "RunProgress",
    "RunResult",
    "RunStore",
    "StoreError",
    "Trial",
    "__version__",
    "annotate",
    "as_config",
    "errors",
    "export",
    "load_config_file",
    "load_protocol",
    "probe_model",
    "probe_model_async",
    "resume",
    "resume_async",
    "resume_config",
    "run",
    "run_async",
    "run_with",
    "sampled_obedience",
    "scripted_subject",
    "statistics",
    "summary",
    "validate_config",
    "write_report",
]
