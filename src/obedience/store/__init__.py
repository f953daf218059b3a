"""Append-only, crash-safe run store."""

from obedience.store._sqlite import (
    DATABASE,
    MANIFEST,
    EventRow,
    RunStore,
    StoreError,
    StoreFullError,
    TrialRow,
    trial_key,
)

__all__ = [
    "DATABASE",
    "MANIFEST",
    "EventRow",
    "RunStore",
    "StoreError",
    "StoreFullError",
    "TrialRow",
    "trial_key",
]
