"""The report section of an imported census: what the census itself did not measure.

Distress while complying is the report's finding 1 (already per model); this section
adds refusals overridden by a format reminder, the baseline break-off points beside
Milgram (1963), and our action-line reading beside the census's, each disagreement
linked into the transcript browser (whose "flag" filter also lists them).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from obedience.analysis._census import (
    milgram_survival,
    parser_agreement,
    reminder_overrides,
    trials_with_attributes,
)
from obedience.analysis._tables import RunTables
from obedience.store import RunStore


def is_imported_census(manifest: dict[str, Any]) -> bool:
    source = manifest.get("source")
    return (
        manifest.get("kind") == "import"
        and isinstance(source, dict)
        and (source.get("name") == "census")
    )


def census_section(
    store: RunStore, tables: RunTables, manifest: dict[str, Any], href: Any
) -> dict[str, Any] | None:
    """The section's data, or None for a run that is not an imported census."""
    if not is_imported_census(manifest):
        return None
    trials: pd.DataFrame = trials_with_attributes(store, tables.trials)
    parser = parser_agreement(tables.replies)
    for d in parser["disagreements"]:
        d["href"] = href(d["trial_id"], d["seq"])
    return {
        "attribution": (manifest.get("source") or {}).get("attribution"),
        "overrides": reminder_overrides(tables.replies, tables.decisions),
        "survival": milgram_survival(trials),
        "parser": parser,
    }
