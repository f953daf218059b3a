"""``obedience classify``: label teacher replies, or score the classifier on the labelled set."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import typer
from rich.table import Table

from obedience.cli._app import app, console, fail

_SPLIT_ORDER = ("all", "dev", "heldout", "fresh")


@app.command("classify")
def classify(
    input_path: Path | None = typer.Argument(
        None,
        metavar="[IN.jsonl]",
        help="JSON lines with a 'text' field (optional 'context', 'tool_call'); '-' reads stdin. "
        "With --evaluate: a labelled file to score instead of the packaged set.",
        show_default=False,
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write JSON lines here instead of stdout."
    ),
    evaluate: bool = typer.Option(
        False, "--evaluate", help="Score the rule classifier on the labelled evaluation set."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="With --evaluate: print the scores as JSON."
    ),
) -> None:
    """Label replies with refusal-intent, distress, frame-break, recognition and coherence.

    Each output line is the input object plus "labels" (the five labels, true/false)
    and "reasons" (why each label that is true fired). An input field already named
    "labels" is kept as "input_labels".
    """
    from obedience.analysis.classifiers import RuleClassifier

    classifier = RuleClassifier()
    if evaluate:
        _evaluate(classifier, input_path, as_json)
        return
    if as_json:
        fail("--json goes with --evaluate; classify output is always JSON lines")
    if input_path is None:
        fail("give an input file of JSON lines (or '-' for stdin), or use --evaluate")
    records = _read_records(input_path)
    lines = []
    for record in records:
        verdict = classifier.classify(_reply_text(record), record.get("context"))
        out = dict(record)
        if "labels" in out:
            out["input_labels"] = out.pop("labels")
        out.pop("reasons", None)
        out["labels"] = verdict.labels
        out["reasons"] = verdict.reasons
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


def _evaluate(classifier: Any, input_path: Path | None, as_json: bool) -> None:
    from obedience.analysis.classifiers import (
        LABELS,
        EvalExample,
        evaluate,
        parse_examples,
        read_eval_text,
    )

    source = "packaged evaluation set"
    examples: list[EvalExample]
    try:
        if input_path is None:
            examples = parse_examples(read_eval_text().splitlines())
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

    splits: dict[str, list[EvalExample]] = {"all": examples}
    for ex in examples:
        splits.setdefault(ex.split, []).append(ex)
    ordered = [s for s in _SPLIT_ORDER if s in splits] + sorted(
        s for s in splits if s not in _SPLIT_ORDER
    )
    scores = {split: evaluate(classifier, splits[split]) for split in ordered}
    if as_json:
        payload = {
            "classifier": classifier.name,
            "source": source,
            "items": {split: len(splits[split]) for split in ordered},
            "scores": scores,
        }
        print(json.dumps(payload, indent=2))
        return
    table = Table(
        title=f"{classifier.name} on the {source}",
        caption="items: " + ", ".join(f"{split} {len(splits[split])}" for split in ordered),
        title_justify="left",
        caption_justify="left",
    )
    for col in ("label", "split", "precision", "recall", "F1", "support", "tp", "fp", "fn"):
        table.add_column(col, justify="left" if col in ("label", "split") else "right")
    for label in LABELS:
        for i, split in enumerate(ordered):
            m = scores[split][label]
            table.add_row(
                label if i == 0 else "",
                split,
                f"{m['precision']:.3f}",
                f"{m['recall']:.3f}",
                f"{m['f1']:.3f}",
                str(m["support"]),
                str(m["tp"]),
                str(m["fp"]),
                str(m["fn"]),
                end_section=i == len(ordered) - 1,
            )
    console.print(table)
