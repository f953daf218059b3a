"""``obedience run``, ``summary`` and ``show``."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from obedience.analysis import build_tables, summary_records
from obedience.backends import Backend, BackendError, BackendOptions, make_backend
from obedience.cli._app import app, console, err_console, escape_markup, fail, safe_text
from obedience.protocols import Protocol, ProtocolError, load_protocol
from obedience.runner import (
    ConfigError,
    RunConfig,
    Runner,
    build_manifest,
    conditions_for,
    load_config_file,
    preflight,
    validate_config,
)
from obedience.runner import (
    Progress as RunProgress,
)
from obedience.store import DATABASE, RunStore, StoreError


def _gather_config(config_file: Path | None, flags: dict[str, Any]) -> RunConfig:
    data: dict[str, Any] = {}
    source = "command line"
    if config_file is not None:
        data.update(load_config_file(config_file))
        source = str(config_file)
    data.update({k: v for k, v in flags.items() if v not in (None, [], ())})
    return validate_config(data, source)


def _default_out(config: RunConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config.protocol}"


def _make_backends(config: RunConfig) -> dict[str, Backend]:
    options = BackendOptions(
        base_url=config.base_url,
        chat_template=config.chat_template,
        timeout=config.timeout,
        grammar_dialect=config.grammar_dialect,
    )
    return {spec: make_backend(spec, options) for spec in dict.fromkeys(config.models)}


async def _execute(
    run_dir: Path,
    resume: bool,
    protocol: Protocol,
    config: RunConfig,
    backends: dict[str, Backend],
    show_progress: bool,
) -> RunStore:
    """Preflight first, so a bad server or model leaves no half-made run directory."""
    try:
        meta = await preflight(backends, protocol, config)
        if resume:
            store = RunStore.open(run_dir)
        else:
            store = RunStore.create(run_dir)
            store.write_manifest(build_manifest(protocol, config, meta))
        console.print(f"run directory: {escape_markup(str(run_dir))}")
        bar = Progress(
            TextColumn("[bold]trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("errors {task.fields[errors]}"),
            TimeRemainingColumn(),
            console=err_console,
            disable=not show_progress,
            transient=False,
        )
        task = bar.add_task("run", total=None, rate="", errors=0)

        def update(p: RunProgress) -> None:
            elapsed = max(1e-9, time.monotonic() - p.started)
            bar.update(
                task,
                total=p.total,
                completed=p.done,
                rate=f"{p.decisions / elapsed:.2f} decisions/s",
                errors=p.errors,
            )

        with bar:
            await Runner(store, protocol, config, backends, RunProgress(on_change=update)).run()
        return store
    finally:
        for backend in backends.values():
            await backend.aclose()


@app.command()
def run(
    model: list[str] = typer.Option(
        None,
        "--model",
        "-m",
        help="Model spec, repeatable: embedded, gguf:PATH, openai:MODEL, "
        "scripted:NAME, replay:PATH. Default: embedded.",
    ),
    protocol: str | None = typer.Option(
        None, "--protocol", "-p", help="Protocol name or .toml path."
    ),
    condition: list[str] = typer.Option(None, "--condition", "-c", help="Condition, repeatable."),
    trials: int | None = typer.Option(
        None, "--trials", "-n", help="Trials per model and condition."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Base seed of the run."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory to create."),
    concurrency: int | None = typer.Option(
        None, "--concurrency", help="Trials in flight per endpoint."
    ),
    temperature: float | None = typer.Option(None, "--temperature"),
    max_tokens: int | None = typer.Option(None, "--max-tokens"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
    chat_template: str | None = typer.Option(
        None, "--chat-template", help="gguf: 'auto' (from metadata), 'gemma', or a Jinja file."
    ),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds per request."),
    config_file: Path | None = typer.Option(
        None, "--config", help="TOML file with these settings."
    ),
    resume: Path | None = typer.Option(None, "--resume", help="Continue an interrupted run."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip writing the HTML report."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run the experiment. With no options: the embedded model on pihlakas2026, 8 conditions x 2."""
    flags = {
        "models": model,
        "protocol": protocol,
        "conditions": condition,
        "trials": trials,
        "seed": seed,
        "concurrency": concurrency,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "base_url": base_url,
        "chat_template": chat_template,
        "timeout": timeout,
    }
    try:
        if resume is not None:
            with RunStore.open(resume) as previous:
                manifest = previous.manifest()
            config = validate_config(manifest["config"], f"{resume}/manifest.json")
            run_dir = resume
        else:
            config = _gather_config(config_file, flags)
            run_dir = out or _default_out(config)
            if (run_dir / DATABASE).exists():
                raise StoreError(f"{run_dir} already holds a run; use --resume to continue it")
        loaded = load_protocol(config.protocol)
        if resume is not None and manifest["protocol"]["sha256"] != loaded.sha256:
            raise ProtocolError(
                f"protocol {config.protocol!r} changed since the run started; cannot resume"
            )
        conditions_for(loaded, config)
        backends = _make_backends(config)
    except (ConfigError, ProtocolError, BackendError, StoreError) as exc:
        fail(str(exc))
    store: RunStore | None = None
    try:
        store = asyncio.run(
            _execute(run_dir, resume is not None, loaded, config, backends, not quiet)
        )
    except KeyboardInterrupt:
        fail(
            "interrupted; every finished reply is kept. "
            f"Resume with: obedience run --resume {run_dir}",
            code=130,
        )
    except (BackendError, StoreError, ProtocolError) as exc:
        fail(str(exc))
    _annotate_with_rules(store)
    _print_summary(store)
    store.close()
    if not no_report:
        _write_report(run_dir)


def _annotate_with_rules(store: RunStore) -> None:
    """Label every reply with the offline rule classifier, so the report can show findings."""
    from obedience.analysis import annotate_run
    from obedience.analysis.classifiers import RuleClassifier

    try:
        count = annotate_run(store, RuleClassifier())
    except StoreError as exc:
        fail(str(exc))
    console.print(f"labelled {count} replies with the rule classifier (obedience annotate)")


def _write_report(run_dir: Path) -> None:
    from obedience.report import write_report

    try:
        path = write_report(run_dir)
    except (StoreError, OSError) as exc:
        fail(f"the run is complete and stored; the report was not written: {exc}")
    console.print(f"report: {escape_markup(str(path))}")


def _print_summary(store: RunStore) -> None:
    records = summary_records(build_tables(store).trials)
    table = Table(title="Summary (errors are not refusals and are excluded from rates)")
    cols = [
        ("model", "model"),
        ("condition", "condition"),
        ("trials", "trials"),
        ("completed", "done"),
        ("errors", "errors"),
        ("reached_max", "max"),
        ("reached_max_rate", "max rate"),
        ("mean_highest", "mean hi"),
        ("median_highest", "median hi"),
        ("invalid_replies", "invalid"),
        ("discarded_replies", "discarded"),
        ("overridden_refusals", "overridden"),
    ]
    for _, title in cols:
        table.add_column(title, overflow="fold")
    for r in records:
        table.add_row(*[_fmt(r[key]) for key, _ in cols])
    console.print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}"
    return escape_markup(str(value))


def _open_store(run_dir: Path) -> RunStore:
    try:
        return RunStore.open(run_dir)
    except StoreError as exc:
        fail(str(exc))


@app.command()
def summary(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Per model and condition: outcomes, levels, invalid and discarded replies, overrides."""
    store = _open_store(run_dir)
    records = summary_records(build_tables(store).trials)
    from obedience.analysis._paper_metrics import attach_paper_metrics
    from obedience.cli._paper import print_paper_cells

    records = attach_paper_metrics(records, store)  # the paper's figures under "paper"
    if as_json:
        print(json.dumps(records, indent=2))
    else:
        _print_summary(store)
        keys = ("model", "condition")
        print_paper_cells(
            [{**r["paper"], **{k: r[k] for k in keys}} for r in records if r["paper"]]
        )


@app.command()
def show(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    trial: str | None = typer.Option(None, "--trial", help="Trial id (model|condition|index)."),
) -> None:
    """Print a transcript; model output is shown with control characters made harmless."""
    store = _open_store(run_dir)
    rows = store.trials()
    if not rows:
        fail(f"{run_dir} holds no trials")
    chosen = trial or rows[0].trial_id
    if chosen not in {r.trial_id for r in rows}:
        fail(f"no trial {chosen!r} in {run_dir}; e.g. {rows[0].trial_id}")
    for ev in store.events(chosen, final_only=False):
        _print_event(ev.kind, ev.payload, ev.attempt)


def _model_text(text: str) -> str:
    """Model output, made harmless; a bare CR is shown (rich would silently drop it)."""
    return safe_text(text.replace("\r", "\\x0d"))


def _print_event(kind: str, p: dict[str, Any], attempt: int) -> None:
    if kind == "scripted-turn":
        console.print(f"[cyan]{safe_text(p['speaker'] or 'narrator')}[/]: {safe_text(p['text'])}")
    elif kind == "reply":
        console.print(
            f"[bold green]MODEL[/] [dim](decision {p['decision']}, attempt {p['attempt']}, "
            f"parsed {p['action']})[/]: {_model_text(p['text'])}"
        )
        if p.get("tool_call"):
            console.print(f"   [dim]tool call:[/] {safe_text(json.dumps(p['tool_call']))}")
    elif kind == "discarded":
        flag = "expressed refusal" if p["expressed_refusal"] else "no refusal expressed"
        console.print(f"   [yellow]↳ discarded, re-sampled ({flag})[/]")
    elif kind == "prod":
        tag = "special prod" if p["special"] else f"prod {p['index']}"
        console.print(f"[magenta]{tag}[/]: {safe_text(p['text'])}")
    elif kind == "forced-press":
        console.print(f"[red]forced press at level {p['level']}[/] (inserted as the model's turn)")
    elif kind == "shock":
        console.print(f"[red]⚡ {safe_text(p['label'])}[/]" + (" (forced)" if p["forced"] else ""))
    elif kind == "learner-reaction":
        console.print(f"[cyan]reaction[/]: {safe_text(p['text'])}")
    elif kind == "format-reminder":
        console.print(f"[yellow]reminder[/]: {safe_text(p['text'])}")
    elif kind == "transport-error":
        console.print(f"[bold red]transport error[/] (not a refusal): {safe_text(p['message'])}")
    elif kind == "trial-ended":
        console.print(
            f"[bold]ended: {p['reason']}[/] at highest level {p['highest_level']} "
            f"(attempt {attempt})\n"
        )
