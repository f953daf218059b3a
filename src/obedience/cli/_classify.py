"""``obedience classify``: label teacher replies, or score the classifier on the labelled set."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import typer
from rich.markup import escape
from rich.table import Table

from obedience.cli._app import app, console, err_console, fail


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
    if synthetic and input_path is not None:
        fail("give either a labelled file or --synthetic, not both")
    if as_json and not evaluate:
        fail("--json goes with --evaluate; classify output is always JSON lines")
    if judge is not None:
        _with_judge(judge, base_url, timeout, input_path, output, evaluate, synthetic, as_json)
        return
    classifier = _make_classifier(classifier_name)
    if evaluate:
        _evaluate(classifier, input_path, as_json, synthetic=synthetic)
        return
    if input_path is None:
        fail("give an input file of JSON lines (or '-' for stdin), or use --evaluate")
    _label_file(classifier, input_path, output)


def _make_classifier(name: str) -> Any:
    from obedience.analysis.classifiers import LinearClassifier, RuleClassifier

    if name == "rules":
        return RuleClassifier()
    if name == "linear":
        return LinearClassifier()
    fail(f"--classifier must be 'linear' or 'rules', not {name!r}")


def _with_judge(
    spec: str,
    base_url: str | None,
    timeout: float,
    input_path: Path | None,
    output: Path | None,
    evaluate: bool,
    synthetic: bool,
    as_json: bool,
) -> None:
    from obedience.backends import BackendOptions
    from obedience.judging import JudgeError, open_judge

    try:
        session = open_judge(spec, BackendOptions(base_url=base_url, timeout=timeout))
    except JudgeError as exc:
        fail(str(exc))
    try:
        session.preflight()
        if evaluate:
            _evaluate(
                session.judge, input_path, as_json, synthetic=synthetic, prefetch=session.prefetch
            )
        else:
            if input_path is None:
                fail("give an input file of JSON lines (or '-' for stdin), or use --evaluate")
            _label_file(session.judge, input_path, output, prefetch=session.prefetch)
    except JudgeError as exc:
        fail(str(exc))
    finally:
        session.close()
    err_console.print(f"judge calls: {session.calls}", highlight=False)


def _label_file(
    classifier: Any,
    input_path: Path,
    output: Path | None,
    prefetch: Callable[[list[tuple[str, str | None]]], None] | None = None,
) -> None:
    records = _read_records(input_path)
    pairs = [(_reply_text(r), r.get("context")) for r in records]
    if prefetch is not None:
        prefetch(pairs)
    lines = []
    for record, (text, context) in zip(records, pairs, strict=True):
        verdict = classifier.classify(text, context)
        out = dict(record)
        if "labels" in out:
            out["input_labels"] = out.pop("labels")
        out.pop("reasons", None)
        out["labels"] = verdict.labels
        out["reasons"] = verdict.reasons
        out["classifier"] = classifier.name
        # ASCII JSON: controls, bidi overrides and lone surrogates stay escapes (terminal-safe).
        lines.append(json.dumps(out, ensure_ascii=True))
    if output is None:
        _write(sys.stdout, lines)
        return
    try:
        with output.open("w", encoding="utf-8") as fh:
            _write(fh, lines)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")


def _write(fh: TextIO, lines: list[str]) -> None:
    for line in lines:
        fh.write(line + "\n")
    fh.flush()


def _read_lines(path: Path) -> list[bytes]:
    try:
        if str(path) == "-":
            return sys.stdin.buffer.read().splitlines()
        return path.read_bytes().splitlines()
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except IsADirectoryError:
        fail(f"{path}: is a directory, not a JSON lines file")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")


def _read_records(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, raw in enumerate(_read_lines(path), 1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            fail(f"{path}: line {number}: not valid UTF-8")
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            fail(f"{path}: line {number}: invalid JSON ({exc.msg} at column {exc.colno})")
        except RecursionError:
            fail(f"{path}: line {number}: invalid JSON (nested too deeply)")
        if not isinstance(record, dict):
            fail(f"{path}: line {number}: expected a JSON object, got {type(record).__name__}")
        if not isinstance(record.get("text"), str):
            fail(f"{path}: line {number}: needs a string field 'text'")
        context = record.get("context")
        if context is not None and not isinstance(context, str):
            fail(f"{path}: line {number}: 'context' must be a string or null")
        tool_call = record.get("tool_call")
        if tool_call is not None and not isinstance(tool_call, dict):
            fail(f"{path}: line {number}: 'tool_call' must be an object or null")
        records.append(record)
    return records


def _reply_text(record: dict[str, Any]) -> str:
    from obedience.analysis.classifiers import render_tool_call

    return render_tool_call(str(record["text"]), record.get("tool_call"))


def _load_labelled(input_path: Path | None, synthetic: bool) -> tuple[str, list[Any]]:
    from obedience.analysis.classifiers import (
        CENSUS_SET_NAME,
        parse_examples,
        read_eval_text,
    )

    source = (
        "the hand-written 684-item set"
        if synthetic
        else "the real census replies (Aksu 2026, CC BY 4.0; labels by this project)"
    )
    try:
        if input_path is None:
            text = read_eval_text() if synthetic else read_eval_text(CENSUS_SET_NAME)
            examples = parse_examples(text.splitlines())
        else:
            source = str(input_path)
            raw_lines = _read_lines(input_path)
            examples = parse_examples(b.decode("utf-8-sig") for b in raw_lines)
    except FileNotFoundError:
        fail("the labelled evaluation set is missing from this installation of obedience")
    except UnicodeDecodeError:
        fail(f"{source}: not valid UTF-8")
    except ValueError as exc:
        fail(f"{source}: {exc}")
    if not examples:
        fail(f"{source}: no labelled examples")
    return source, examples


def _evaluate(
    classifier: Any,
    input_path: Path | None,
    as_json: bool,
    *,
    synthetic: bool = False,
    prefetch: Callable[[list[tuple[str, str | None]]], None] | None = None,
) -> None:
    from obedience.analysis.classifiers import LinearClassifier, measure
    from obedience.analysis.classifiers._linear import cross_fit

    source, examples = _load_labelled(input_path, synthetic)
    if prefetch is not None:
        prefetch([(ex.text, ex.context) for ex in examples])
    refit = None
    severity = None
    if isinstance(classifier, LinearClassifier):
        severity = classifier.severity
        # A trained model is never scored on replies it was fitted on.
        if any(classifier.seen(ex.text) for ex in examples):
            refit = cross_fit
    report = measure(classifier, examples, source=source, cross_fit=refit, severity=severity)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    _print_report(report)


def _interval(values: tuple[float, float]) -> str:
    return f"[{values[0]:.2f}, {values[1]:.2f}]"


def _print_report(report: Any) -> None:
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
