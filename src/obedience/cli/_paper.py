"""Rendering of the paper's metrics (``obedience.analysis._paper_metrics``) for the CLI."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from obedience.cli._app import console, escape_markup


def _num(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_paper_cells(cells: list[dict[str, Any]]) -> None:
    """One row per model and condition, with the paper's definitions and its count."""
    if not cells:
        return
    table = Table(
        title="The paper's metrics (own presses only; invalid rate over all subject rows)",
        title_justify="left",
    )
    for col in (
        "model",
        "condition",
        "n",
        "reached max",
        "paper",
        "highest button min/mean/max",
        "onset",
        "highest refused",
        "insistences",
        "lower bound",
        "invalid %",
        "empty",
    ):
        table.add_column(col)
    for c in cells:
        published = (
            f"{c['published_reached_max']}/{c['published_trials']}"
            if c.get("published_reached_max") is not None
            else "–"
        )
        table.add_row(
            escape_markup(str(c["model"])),
            escape_markup(str(c["condition"])),
            str(c["trials"]),
            f"{c['reached_max']}/{c['trials']}",
            published,
            f"{_num(c['highest_button_min'])}/{_num(c['highest_button_mean'])}/"
            f"{_num(c['highest_button_max'])}",
            _num(c["resistance_onset_mean"]),
            _num(c["highest_refused_mean"]),
            _num(c["insistences_mean"]),
            _num(c["insistences_lower_bound_mean"]),
            _num(c["invalid_rate_pct"]),
            str(c["empty_replies"])
            + (f" (cap {c['empty_cap_trials']})" if c["empty_cap_trials"] else ""),
        )
    console.print(table)
