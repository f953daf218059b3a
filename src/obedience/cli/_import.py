"""``obedience import``: published data and other harnesses' logs as run directories."""

from __future__ import annotations

from pathlib import Path

import typer

import obedience
from obedience.cli._app import app, console, fail

import_app = typer.Typer(
    help="Import published data or other harnesses' logs as a run directory.", no_args_is_help=True
)
app.add_typer(import_app, name="import")


@import_app.command("census")
def import_census_command(
    path: Path = typer.Argument(..., help="a census checkout or the unpacked data archive"),
    out: Path = typer.Option(..., "--out", "-o", help="the run directory to create"),
) -> None:
    """The 42-model census (Aksu 2026, hidayetaksu/llm-milgram; data CC BY 4.0)."""
    try:
        result = obedience.import_census(path, out)
    except obedience.ERRORS as exc:
        fail(str(exc))
    console.print(
        f"imported {result.sessions} sessions ({result.turns} turns, {result.events} events) "
        f"of {result.models} models into {result.run_dir} in {result.seconds:.1f} s"
        + (
            f"; {result.superseded_attempts} restarted sessions kept as superseded attempts"
            if result.superseded_attempts
            else ""
        ),
        highlight=False,
    )


def print_census_table(run_dir: Path) -> None:
    """``stats --census-table``: the census's results/census.csv, recomputed from the events."""
    import sys

    try:
        table = obedience.census_table(run_dir)
    except obedience.ERRORS as exc:
        fail(str(exc))
    sys.stdout.write(table)


def export_inspect_logs(run_dir: Path, out: Path | None) -> None:
    """``export --format inspect``: one Inspect .eval log per model x condition."""
    try:
        paths = obedience.export(run_dir, "inspect", out)
    except (*obedience.ERRORS, OSError) as exc:
        fail(str(exc))
    for p in paths:
        console.print(str(p), highlight=False, soft_wrap=True)


@import_app.command("inspect")
def import_inspect_command(
    logs: list[Path] = typer.Argument(..., help="Inspect .eval logs (or a directory of them)"),
    out: Path = typer.Option(..., "--out", "-o", help="the run directory to create"),
) -> None:
    """Inspect AI logs of a shock-panel task (such as `export --format inspect` writes)."""
    try:
        result = obedience.import_inspect(logs, out)
    except obedience.ERRORS as exc:
        fail(str(exc))
    console.print(
        f"imported {result.trials} trials from {result.logs} logs into {out}",
        highlight=False,
    )
