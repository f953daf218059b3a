"""Append-only, crash-safe run store."""

from obedience.store._labels import (
    REASONING_SUFFIX,
    HumanLabel,
    LabelSet,
    add_label_set,
    human_labels,
    label_rows,
    label_sets,
)
from obedience.store._merge import duplicated_trials, merge_into
from obedience.store._sqlite import (
    DATABASE,
    MANIFEST,
    Appended,
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
    "REASONING_SUFFIX",
    "Appended",
    "EventRow",
    "HumanLabel",
    "LabelSet",
    "RunStore",
    "StoreError",
    "StoreFullError",
    "TrialRow",
    "add_label_set",
    "duplicated_trials",
    "human_labels",
    "label_rows",
    "label_sets",
    "merge_into",
    "trial_key",
]
