"""``obedience annotate``: label a run's replies with the classifier, judges, or human coders."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.table import Table

from obedience.cli._app import app, console, err_console, escape_markup, fail
from obedience.store import RunStore, StoreError


def _open(run_dir: Path) -> RunStore:
    try:
        return RunStore.open(run_dir, write=True)
    except StoreError as exc:
        fail(str(exc))


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
    store = _open(run_dir)
    try:
        if human is not None:
            _import_human(store, human)
            return
        if not judge:
            _annotate_machine(store, classifier_name)
            return
        names = [_annotate_judge(store, spec, base_url, timeout, concurrency, max_tokens)
                 for spec in judge]  # fmt: skip
        if len(names) > 1:
            _print_panel(store, names)
    except StoreError as exc:
        fail(str(exc))
    finally:
        store.close()


def _annotate_machine(store: RunStore, name: str) -> None:
    from obedience.analysis import annotate_run
    from obedience.analysis.classifiers import LinearClassifier, RuleClassifier

    if name not in ("linear", "rules"):
        fail(f"--classifier must be 'linear' or 'rules', not {name!r}")
    classifier = LinearClassifier() if name == "linear" else RuleClassifier()
    count = annotate_run(store, classifier)
    _print_counts(store, classifier.name, count)


def _annotate_judge(
    store: RunStore, spec: str, base_url: str | None, timeout: float, concurrency: int,
    max_tokens: int,
) -> str:  # fmt: skip
    from obedience.analysis import annotate_run
    from obedience.backends import BackendOptions
    from obedience.judging import JudgeError, open_judge

    try:
        session = open_judge(
            spec,
            BackendOptions(base_url=base_url, timeout=timeout),
            concurrency=concurrency,
            max_tokens=max_tokens,
        )
    except JudgeError as exc:
        fail(str(exc))
    try:
        session.preflight()
        count = annotate_run(store, session.judge, prepare=session.prefetch)
    except JudgeError as exc:
        fail(str(exc))
    finally:
        session.close()
    err_console.print(f"{spec}: judge calls {session.calls}", highlight=False)
    _print_counts(store, session.judge.name, count)
    return session.judge.name


def _print_counts(store: RunStore, name: str, count: int) -> None:
    labels = Counter(
        label for a in store.annotations(name) for label, value in a["labels"].items() if value
    )
    console.print(f"labelled {count} replies with {escape_markup(name)}")
    if count:
        t = Table(title="Positive labels", title_justify="left")
        t.add_column("label")
        t.add_column("replies", justify="right")
        for label, n in sorted(labels.items()):
            t.add_row(escape_markup(label), str(n))
        console.print(t)


def _print_panel(store: RunStore, names: list[str]) -> None:
    from obedience.analysis._agreement import pairwise_agreement

    t = Table(title="Inter-judge agreement (Cohen's κ)", title_justify="left")
    for col in ("judge A", "judge B", "label", "replies", "agree", "κ"):
        t.add_column(col, justify="right" if col in ("replies", "agree", "κ") else "left")
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for label, row in pairwise_agreement(store, a, b).items():
                t.add_row(
                    escape_markup(a), escape_markup(b), label, str(row["overlap"]),
                    str(row["agree"]), f"{row['kappa']:.3f}",
                )  # fmt: skip
    console.print(t)


def _import_human(store: RunStore, path: Path) -> None:
    from obedience.analysis._agreement import import_human_labels, read_human_labels

    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")
    try:
        labels = read_human_labels(text.splitlines(), source=str(path))
        count = import_human_labels(store, labels)
    except ValueError as exc:
        fail(f"{path}: {exc}" if not str(exc).startswith(str(path)) else str(exc))
    coders = sorted({h.coder for h in labels})
    console.print(
        f"imported {count} human labels from {escape_markup(', '.join(coders) or 'nobody')}; "
        "stats now uses them where they exist"
    )
