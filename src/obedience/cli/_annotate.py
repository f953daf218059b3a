"""``obedience annotate``: label a run's replies with the classifier, judges, or human coders."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

import obedience
from obedience.cli._app import app, console, err_console, escape_markup, fail

if TYPE_CHECKING:
    from obedience import AnnotateResult, PanelResult


@app.command()
def annotate(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    judge: list[str] = typer.Option(
        [],
        "--judge",
        help="Label with an LLM judge (openai:MODEL); repeat for a panel, whose "
        "inter-judge agreement is reported.",
    ),
    human: Path | None = typer.Option(
        None,
        "--human",
        help="Import human labels from JSON lines: trial_id, seq, labels, coder (optional: "
        "attempt, coded_at). Stored beside the machine labels.",
    ),
    classifier_name: str = typer.Option(
        "rules", "--classifier", help="Without --judge: rules (default) or linear."
    ),
    base_url: str | None = typer.Option(None, "--base-url", help="Judge server URL (openai:)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds per judge request."),
    concurrency: int = typer.Option(4, "--concurrency", help="Judge requests in flight."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Judge output tokens."),
) -> None:
    """Label every reply in the run (discarded and superseded ones too) and store the labels.

    Every labelling is kept as a new version; nothing is overwritten.
    """
    try:
        if human is not None:
            _import_human(run_dir, human)
            return
        if not judge:
            _annotate_machine(run_dir, classifier_name)
            return
        panel = obedience.annotate_panel(
            run_dir,
            judge,
            base_url=base_url,
            timeout=timeout,
            concurrency=concurrency,
            max_tokens=max_tokens,
            on_judge=_print_judge,
        )
        if len(judge) > 1:
            _print_panel(panel)
    except obedience.ERRORS as exc:
        fail(str(exc))


def _annotate_machine(run_dir: Path, name: str) -> None:
    if name not in ("linear", "rules"):
        obedience.RunStore.open(run_dir).close()  # a directory that is no run is said first
        fail(f"--classifier must be 'linear' or 'rules', not {name!r}")
    _print_counts(obedience.annotate(run_dir, name))


def _print_judge(spec: str, result: AnnotateResult) -> None:
    err_console.print(f"{spec}: judge calls {result.judge_calls}", highlight=False)
    _print_counts(result)


def _print_counts(result: AnnotateResult) -> None:
    console.print(f"labelled {result.labelled} replies with {escape_markup(result.classifier)}")
    if result.labelled:
        t = Table(title="Positive labels", title_justify="left")
        t.add_column("label")
        t.add_column("replies", justify="right")
        for label, n in sorted(result.positives.items()):
            t.add_row(escape_markup(label), str(n))
        console.print(t)


def _print_panel(panel: PanelResult) -> None:
    t = Table(title="Inter-judge agreement (Cohen's κ)", title_justify="left")
    for col in ("judge A", "judge B", "label", "replies", "agree", "κ"):
        t.add_column(col, justify="right" if col in ("replies", "agree", "κ") else "left")
    for k in panel.agreement:
        t.add_row(
            escape_markup(k.judge_a), escape_markup(k.judge_b), k.label, str(k.overlap),
            str(k.agree), f"{k.kappa:.3f}",
        )  # fmt: skip
    console.print(t)


def _import_human(run_dir: Path, path: Path) -> None:
    result = obedience.import_human_labels(run_dir, path)
    console.print(
        f"imported {result.labelled} human labels from "
        f"{escape_markup(', '.join(result.coders) or 'nobody')}; "
        "stats now uses them where they exist"
    )
