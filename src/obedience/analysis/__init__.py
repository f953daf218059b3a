"""Analysis: pure functions from the run store to tables and statistics."""

from obedience.analysis._tables import (
    DECISION_COLUMNS,
    REPLY_COLUMNS,
    TRIAL_COLUMNS,
    RunTables,
    build_tables,
    summarise_trial,
    summary_records,
)

__all__ = [
    "DECISION_COLUMNS",
    "REPLY_COLUMNS",
    "TRIAL_COLUMNS",
    "RunTables",
    "build_tables",
    "summarise_trial",
    "summary_records",
]
