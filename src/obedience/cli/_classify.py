"""``obedience classify``: label teacher replies, or score the classifier on the labelled set."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer
from rich.markup import escape
from rich.table import Table

import obedience
from obedience.cli._app import app, console, err_console, fail

if TYPE_CHECKING:
    from obedience import MeasureReport


@app.command("classify")
def classify(
    input_path: Path | None = typer.Argument(
        None,
        metavar="[IN.jsonl]",
        help="JSON lines with a 'text' field (optional 'context', 'tool_call'); '-' reads stdin. "
        "With --evaluate: a labelled file to score instead of the packaged real census set.",
        show_default=False,
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write JSON lines here instead of stdout."
    ),
    evaluate: bool = typer.Option(
        False,
        "--evaluate",
        help="Score the classifier against human labels (default: the packaged real replies).",
    ),
    classifier_name: str = typer.Option(
        "rules",
        "--classifier",
        help="rules (the default) or linear (the rules with the trained distress model).",
    ),
    synthetic: bool = typer.Option(
        False, "--synthetic", help="With --evaluate: the hand-written 684-item set instead."
    ),
    blind: bool = typer.Option(
        False,
        "--blind",
        help="With --evaluate: the blind batch of AI-coded census replies (never used to "
        "write the rules) instead.",
    ),
    judge: str | None = typer.Option(
        None, "--judge", help="Score (or label with) an LLM judge: openai:MODEL, gguf:PATH, ..."
    ),
    base_url: str | None = typer.Option(None, "--base-url", help="Judge server URL (openai:)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds per judge request."),
    as_json: bool = typer.Option(
        False, "--json", help="With --evaluate: print the scores as JSON."
    ),
) -> None:
    """Label replies with refusal-intent, distress, frame-break, recognition and coherence.

    Each output line is the input object plus "labels" (the five labels, true/false),
    "reasons" (why each label that is true fired) and "classifier" (name and version).
    An input field already named "labels" is kept as "input_labels".
    """
    if synthetic and not evaluate:
        fail("--synthetic goes with --evaluate")
    if blind and not evaluate:
        fail("--blind goes with --evaluate")
    if sum((synthetic, blind, input_path is not None)) > 1:
        fail("give one of a labelled file, --synthetic or --blind")
    if as_json and not evaluate:
        fail("--json goes with --evaluate; classify output is always JSON lines")
    if judge is None and classifier_name not in ("rules", "linear"):
        fail(f"--classifier must be 'linear' or 'rules', not {classifier_name!r}")
    chosen = judge if judge is not None else classifier_name
    try:
        if evaluate:
            _evaluate(chosen, input_path, as_json, synthetic, blind, base_url, timeout)
        elif input_path is None:
            fail("give an input file of JSON lines (or '-' for stdin), or use --evaluate")
        else:
            _label_file(chosen, input_path, output, base_url, timeout)
    except obedience.ERRORS as exc:
        fail(str(exc))


def _judge_calls(calls: int | None) -> None:
    if calls is not None:
        err_console.print(f"judge calls: {calls}", highlight=False)


def _label_file(
    classifier: str, input_path: Path, output: Path | None, base_url: str | None, timeout: float
) -> None:
    result = obedience.classify(input_path, classifier, base_url=base_url, timeout=timeout)
    # ASCII JSON: controls, bidi overrides and lone surrogates stay escapes (terminal-safe).
    lines = [json.dumps(row, ensure_ascii=True) for row in result.rows()]
    if output is None:
        _write(sys.stdout, lines)
    else:
        try:
            with output.open("w", encoding="utf-8") as fh:
                _write(fh, lines)
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
    _judge_calls(result.judge_calls)


def _write(fh: TextIO, lines: list[str]) -> None:
    for line in lines:
        fh.write(line + "\n")
    fh.flush()


def _evaluate(
    classifier: str,
    input_path: Path | None,
    as_json: bool,
    synthetic: bool,
    blind: bool,
    base_url: str | None,
    timeout: float,
) -> None:
    result = obedience.evaluate_classifier(
        input_path,
        classifier,
        synthetic=synthetic,
        blind=blind,
        base_url=base_url,
        timeout=timeout,
    )
    if as_json:
        print(json.dumps(result.report.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_report(result.report)
    _judge_calls(result.judge_calls)


def _interval(values: tuple[float, float]) -> str:
    return f"[{values[0]:.2f}, {values[1]:.2f}]"


def _print_report(report: MeasureReport) -> None:
    console.print(
        f"{escape(report.classifier)} on {escape(report.source)}\n"
        f"protocol: {escape(report.protocol)}; intervals: 95% bootstrap (1000 resamples)",
        highlight=False,
    )
    table = Table(title="Agreement with the human labels", title_justify="left")
    for col in ("label", "items", "precision", "recall", "F1", "κ", "tp", "fp", "fn", "tn"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for r in report.labels:
        s = r.scores
        table.add_row(
            r.label,
            str(r.items),
            f"{s.precision:.3f} {_interval(r.intervals['precision'])}",
            f"{s.recall:.3f} {_interval(r.intervals['recall'])}",
            f"{s.f1:.3f} {_interval(r.intervals['f1'])}",
            f"{r.kappa:.3f}",
            str(s.tp),
            str(s.fp),
            str(s.fn),
            str(s.tn),
        )
    console.print(table)
    folds = Table(title="F1 per held-out fold (fixed 5-fold split)", title_justify="left")
    folds.add_column("label")
    for i in range(len(report.labels[0].folds) if report.labels else 0):
        folds.add_column(f"fold {i}", justify="right")
    for r in report.labels:
        folds.add_row(r.label, *(f"{f.f1:.3f}" for f in r.folds))
    console.print(folds)
    misses = Table(title=f"The {len(report.misses)} worst misses", title_justify="left")
    for col in ("id", "label", "human", "classifier", "reply", "classifier's reason"):
        misses.add_column(col, overflow="fold")
    for m in report.misses:
        misses.add_row(
            escape(m.id),
            m.label,
            str(m.truth).lower(),
            str(m.predicted).lower(),
            escape(_short(m.text, 160)),
            escape(_short(m.reason, 80)),
        )
    console.print(misses if report.misses else "no misses")


def _short(text: str, limit: int) -> str:
    flat = "".join(ch if ch.isprintable() else " " for ch in " ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
