"""obedience: Milgram-style authority-pressure experiments for language models.

The curated public API (see ``obedience._api`` and the README's "Library use"): run,
resume, annotate, statistics, write_report and probe_model, plus the types they
take and return. Everything else lives in private modules behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from obedience._version import __version__
from obedience.engine import Reply, ReplyReceived, Request, Trial, run_with, scripted_subject
from obedience.protocols import Protocol, ProtocolError, builtin_protocol_names, load_protocol
from obedience.runner import ConfigError, RunConfig, load_config_file, validate_config
from obedience.runner import Progress as RunProgress
from obedience.store import DATABASE, RunStore, StoreError

if TYPE_CHECKING:
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

# The typed statistics' models, imported on first use: they live in the analysis
# package, whose import brings pandas and scipy.
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
    # ERRORS names the judge's and the backends' exceptions: built on first use so that
    # ``import obedience`` stays light.
    if name == "ERRORS":
        return errors()
    if name in RESULT_TYPES:
        from obedience.analysis import _results

        return getattr(_results, name)
    raise AttributeError(f"module 'obedience' has no attribute {name!r}")


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
