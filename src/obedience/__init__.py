"""obedience: Milgram-style authority-pressure experiments for language models.

The curated public API (see ``obedience._api`` and the README's "Library use"): run,
resume, annotate, statistics, write_report and probe_model, plus the types they
take and return. Everything else lives in private modules behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from obedience._version import __version__

if TYPE_CHECKING:
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
    from obedience.analysis._results import (
        BaselineComparisons,
        CellCurve,
        CellProportion,
        CellRates,
        Compliance,
        ConditionCurve,
        ContextRow,
        Curve,
        DistressWhileComplying,
        ErrorCell,
        ErrorCounts,
        Errors,
        Excluded,
        FactorEffect,
        HighestLevelTest,
        Labels,
        LevelCompliance,
        LogRank,
        ModelCurve,
        ModelLabels,
        ModelProportion,
        OverriddenByClassifier,
        OverriddenRefusals,
        PaperComparison,
        PooledSurvival,
        ProdCompliance,
        Proportion,
        PublishedContrast,
        RateComparison,
        ReferenceCurve,
        Result,
        Statistics,
        SurvivalComparison,
        TestsInfo,
    )
    from obedience.engine import (
        Reply,
        ReplyReceived,
        Request,
        Trial,
        read_reply,
        run_with,
        scripted_subject,
    )
    from obedience.protocols import (
        Protocol,
        ProtocolError,
        builtin_protocol_names,
        load_protocol,
    )
    from obedience.runner import (
        ConfigError,
        RunConfig,
        load_config_file,
        validate_config,
    )
    from obedience.runner import Progress as RunProgress
    from obedience.store import (
        DATABASE,
        RunStore,
        StoreError,
    )

# Every public name is imported on first use (PEP 562), so that ``import obedience`` and
# every command's start-up stay light: the engine and protocols bring pydantic, the
# API and analysis bring pandas, scipy and the HTTP client.
_LAZY: dict[str, tuple[str, str]] = {
    "AnnotateResult": ("obedience._api", "AnnotateResult"),
    "ProbeRun": ("obedience._api", "ProbeRun"),
    "RunResult": ("obedience._api", "RunResult"),
    "annotate": ("obedience._api", "annotate"),
    "as_config": ("obedience._api", "as_config"),
    "errors": ("obedience._api", "errors"),
    "export": ("obedience._api", "export"),
    "probe_model": ("obedience._api", "probe_model"),
    "probe_model_async": ("obedience._api", "probe_model_async"),
    "resume": ("obedience._api", "resume"),
    "resume_async": ("obedience._api", "resume_async"),
    "resume_config": ("obedience._api", "resume_config"),
    "run": ("obedience._api", "run"),
    "run_async": ("obedience._api", "run_async"),
    "sampled_obedience": ("obedience._api", "sampled_obedience"),
    "statistics": ("obedience._api", "statistics"),
    "summary": ("obedience._api", "summary"),
    "write_report": ("obedience._api", "write_report"),
    "Reply": ("obedience.engine", "Reply"),
    "ReplyReceived": ("obedience.engine", "ReplyReceived"),
    "Request": ("obedience.engine", "Request"),
    "Trial": ("obedience.engine", "Trial"),
    "run_with": ("obedience.engine", "run_with"),
    "scripted_subject": ("obedience.engine", "scripted_subject"),
    "read_reply": ("obedience.engine", "read_reply"),
    "Protocol": ("obedience.protocols", "Protocol"),
    "ProtocolError": ("obedience.protocols", "ProtocolError"),
    "builtin_protocol_names": ("obedience.protocols", "builtin_protocol_names"),
    "load_protocol": ("obedience.protocols", "load_protocol"),
    "ConfigError": ("obedience.runner", "ConfigError"),
    "RunConfig": ("obedience.runner", "RunConfig"),
    "load_config_file": ("obedience.runner", "load_config_file"),
    "validate_config": ("obedience.runner", "validate_config"),
    "DATABASE": ("obedience.store", "DATABASE"),
    "RunStore": ("obedience.store", "RunStore"),
    "StoreError": ("obedience.store", "StoreError"),
    "RunProgress": ("obedience.runner", "Progress"),
}

# The typed statistics' models live in the analysis package.
RESULT_TYPES = (
    "BaselineComparisons",
    "CellCurve",
    "CellProportion",
    "CellRates",
    "Compliance",
    "ConditionCurve",
    "ContextRow",
    "Curve",
    "DistressWhileComplying",
    "ErrorCell",
    "ErrorCounts",
    "Errors",
    "Excluded",
    "FactorEffect",
    "HighestLevelTest",
    "Labels",
    "LevelCompliance",
    "LogRank",
    "ModelCurve",
    "ModelLabels",
    "ModelProportion",
    "OverriddenByClassifier",
    "OverriddenRefusals",
    "PaperComparison",
    "PooledSurvival",
    "ProdCompliance",
    "Proportion",
    "PublishedContrast",
    "RateComparison",
    "ReferenceCurve",
    "Result",
    "Statistics",
    "SurvivalComparison",
    "TestsInfo",
)


def __getattr__(name: str) -> Any:
    import importlib

    # ERRORS names the judge's and the backends' exceptions: built on first use.
    if name == "ERRORS":
        return importlib.import_module("obedience._api").errors()
    if name in RESULT_TYPES:
        target: tuple[str, str] = ("obedience.analysis._results", name)
    elif name in _LAZY:
        target = _LAZY[name]
    else:
        raise AttributeError(f"module 'obedience' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


__all__ = [
    "DATABASE",
    "AnnotateResult",
    "BaselineComparisons",
    "CellCurve",
    "CellProportion",
    "CellRates",
    "Compliance",
    "ConditionCurve",
    "ConfigError",
    "ContextRow",
    "Curve",
    "DistressWhileComplying",
    "ErrorCell",
    "ErrorCounts",
    "Errors",
    "Excluded",
    "FactorEffect",
    "HighestLevelTest",
    "Labels",
    "LevelCompliance",
    "LogRank",
    "ModelCurve",
    "ModelLabels",
    "ModelProportion",
    "OverriddenByClassifier",
    "OverriddenRefusals",
    "PaperComparison",
    "PooledSurvival",
    "ProbeRun",
    "ProdCompliance",
    "Proportion",
    "Protocol",
    "ProtocolError",
    "PublishedContrast",
    "RateComparison",
    "ReferenceCurve",
    "Reply",
    "ReplyReceived",
    "Request",
    "Result",
    "RunConfig",
    "RunProgress",
    "RunResult",
    "RunStore",
    "Statistics",
    "StoreError",
    "SurvivalComparison",
    "TestsInfo",
    "Trial",
    "__version__",
    "annotate",
    "as_config",
    "builtin_protocol_names",
    "errors",
    "export",
    "load_config_file",
    "load_protocol",
    "probe_model",
    "probe_model_async",
    "read_reply",
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
