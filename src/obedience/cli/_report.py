"""``obedience report`` and ``obedience export``."""

from __future__ import annotations

from pathlib import Path

import typer

import obedience
from obedience.cli._app import app, console, escape_markup, fail


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="HTML file to write (default RUN_DIR/report.html)."
    ),
    figures: Path | None = typer.Option(
        None, "--figures", help="Also write every figure as SVG and PNG into this directory."
    ),
) -> None:
    """Write one self-contained HTML report (figures, findings, transcript browser)."""
    try:
        path = obedience.write_report(run_dir, out=out, figures_dir=figures)
    except (obedience.StoreError, OSError) as exc:
        fail(str(exc))
    console.print(f"report: {escape_markup(str(path))}")
    if figures is not None:
        console.print(f"figures: {escape_markup(str(figures))}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    fmt: str = typer.Option(
        "csv", "--format", "-f", help="csv, parquet, jsonl, inspect, or coding (an HTML page)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Directory to write into (default RUN_DIR/export)."
    ),
    sample: int = typer.Option(100, "--sample", help="With --format coding: replies to draw."),
    seed: int = typer.Option(0, "--seed", help="With --format coding: the sample's seed."),
) -> None:
    """Write tidy tables of trials, decisions, replies and annotations for pandas and R.

    ``--format coding`` writes a self-contained page of a random sample of replies that a
    person codes in a browser; its download imports with ``annotate RUN_DIR --human FILE``.
    """
    if fmt.lower() == "inspect":
        from obedience.cli._import import export_inspect_logs

        export_inspect_logs(run_dir, out)
        return
    try:
        paths = obedience.export(run_dir, fmt, out, sample=sample, seed=seed)
    except obedience.ERRORS as exc:
        fail(str(exc))
    for p in paths:
        console.print(escape_markup(str(p)))
