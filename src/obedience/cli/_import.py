"""``obedience import``: published data and other harnesses' logs as run directories."""

from __future__ import annotations

from pathlib import Path

import typer

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
    from obedience.importers import CensusImportError, import_census
    from obedience.store import StoreError

    try:
        result = import_census(path, out)
    except (CensusImportError, StoreError) as exc:
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

    from obedience.analysis._census import census_csv, census_table
    from obedience.store import RunStore, StoreError

    try:
        with RunStore.open(run_dir) as store:
            if not store.trials(status="done"):
                fail(f"{run_dir} holds no finished trials")
            rows = census_table(store)
    except StoreError as exc:
        fail(str(exc))
    if not rows:
        fail(f"{run_dir} is not an imported census (its trials carry no census attributes)")
    sys.stdout.write(census_csv(rows))


def export_inspect_logs(run_dir: Path, out: Path | None) -> None:
    """``export --format inspect``: one Inspect .eval log per model x condition."""
    from obedience.report._inspect import InspectUnavailable, export_inspect
    from obedience.store import StoreError

    try:
        paths = export_inspect(run_dir, out)
    except (InspectUnavailable, StoreError, OSError) as exc:
        fail(str(exc))
    for p in paths:
        console.print(str(p), highlight=False, soft_wrap=True)


@import_app.command("inspect")
def import_inspect_command(
    logs: list[Path] = typer.Argument(..., help="Inspect .eval logs (or a directory of them)"),
    out: Path = typer.Option(..., "--out", "-o", help="the run directory to create"),
) -> None:
    """Inspect AI logs of a shock-panel task (such as `export --format inspect` writes)."""
    from obedience.importers._inspect import InspectImportError, import_inspect
    from obedience.store import StoreError

    paths: list[Path] = []
    for p in logs:
        if p.is_dir():
            paths.extend(sorted(p.glob("*.eval")))
        elif p.is_file():
            paths.append(p)
        else:
            fail(f"{p}: no such file or directory")
    if not paths:
        fail("no .eval logs given")
    try:
        result = import_inspect(paths, out)
    except (InspectImportError, StoreError) as exc:
        fail(str(exc))
    console.print(
        f"imported {result['trials']} trials from {result['logs']} logs into {out}",
        highlight=False,
    )
