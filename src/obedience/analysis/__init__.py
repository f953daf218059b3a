"""Analysis: pure functions from the run store to tables and statistics."""

from obedience.analysis._annotate import annotate_run
from obedience.analysis._baselines import (
    compare_baselines,
    load_baselines,
    normalise_model_name,
    paper_model_for,
)
from obedience.analysis._stats import (
    ERROR_COUNT_KEYS,
    label_column,
    statistics,
    statistics_from_tables,
)
from obedience.analysis._tables import (
    DECISION_COLUMNS,
    REPLY_COLUMNS,
    TRIAL_COLUMNS,
    RunTables,
    add_label_metrics,
    build_tables,
    summarise_trial,
    summary_records,
)

__all__ = [
    "DECISION_COLUMNS",
    "ERROR_COUNT_KEYS",
    "REPLY_COLUMNS",
    "TRIAL_COLUMNS",
    "RunTables",
    "add_label_metrics",
    "annotate_run",
    "build_tables",
    "compare_baselines",
    "label_column",
    "load_baselines",
    "normalise_model_name",
    "paper_model_for",
    "statistics",
    "statistics_from_tables",
    "summarise_trial",
    "summary_records",
]
