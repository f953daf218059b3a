"""``obedience run``, ``summary`` and ``show``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import obedience
from obedience.cli._app import app, console, err_console, escape_markup, fail, safe_text

if TYPE_CHECKING:
    from obedience import events as ev

# obedience's names load on first use: `obedience --help` and `show` must not pay for
# pandas, scipy, openai or llama.cpp (and the event classes bring pydantic).


def _gather_config(config_file: Path | None, flags: dict[str, Any]) -> obedience.RunConfig:
    data: dict[str, Any] = {}
    source = "command line"
    if config_file is not None:
        data.update(obedience.load_config_file(config_file))
        source = str(config_file)
    given = {k: v for k, v in flags.items() if v not in (None, [], ())}
    if "endpoints" in given:  # the command line's servers replace the file's
        data.pop("base_url", None)
    if "base_url" in given:
        data.pop("endpoints", None)
    data.update(given)
    return obedience.validate_config(data, source)


def _server_flags(urls: list[str] | None) -> dict[str, Any]:
    """``--base-url`` once: the server; several times: the endpoints (one trial, one each)."""
    if not urls:
        return {"base_url": None, "endpoints": None}
    if len(urls) == 1:
        return {"base_url": urls[0], "endpoints": None}
    return {"base_url": None, "endpoints": [{"url": u} for u in urls]}


def _default_out(config: obedience.RunConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config.protocol}"


def _progress_bar(show: bool) -> tuple[Progress, Callable[[obedience.RunProgress], None]]:
    bar = Progress(
        TextColumn("[bold]trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("errors {task.fields[errors]}"),
        TimeRemainingColumn(),
        console=err_console,
        disable=not show,
        transient=False,
    )
    task = bar.add_task("run", total=None, rate="", errors=0)

    def update(p: obedience.RunProgress) -> None:
        elapsed = max(1e-9, time.monotonic() - p.started)
        bar.update(
            task,
            total=p.total,
            completed=p.done,
            rate=f"{p.decisions / elapsed:.2f} decisions/s",
            errors=p.errors,
        )

    return bar, update


@app.command()
def run(
    model: list[str] = typer.Option(
        None,
        "--model",
        "-m",
        help="Model spec, repeatable: embedded, gguf:PATH, openai:MODEL, "
        "scripted:NAME, replay:PATH. Default: embedded-chat and embedded.",
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
    workers: int | None = typer.Option(
        None, "--workers", help="Processes driving the trials (served models; default 1)."
    ),
    temperature: float | None = typer.Option(None, "--temperature"),
    max_tokens: int | None = typer.Option(None, "--max-tokens"),
    base_url: list[str] = typer.Option(
        None,
        "--base-url",
        help="OpenAI-compatible server URL; repeat for several replicas (each trial is "
        "pinned to one by a hash of its id).",
    ),
    chat_template: str | None = typer.Option(
        None, "--chat-template", help="gguf: 'auto' (from metadata), 'gemma', or a Jinja file."
    ),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds per request."),
    config_file: Path | None = typer.Option(
        None, "--config", help="TOML file with these settings."
    ),
    resume: Path | None = typer.Option(None, "--resume", help="Continue an interrupted run."),
    shard: str | None = typer.Option(
        None, "--shard", help="Run slice I of N of the grid (I from 0), e.g. 0/4; then merge."
    ),
    max_requests: int | None = typer.Option(
        None, "--max-requests", help="Stop cleanly after this many requests (resumable)."
    ),
    max_cost: float | None = typer.Option(
        None, "--max-cost", help="Stop cleanly once this much is spent (resumable)."
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Skip writing the HTML report."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    verbose: bool = typer.Option(
        False, "--verbose", help="Also show llama.cpp's log (always in RUN_DIR/llama.log)."
    ),
) -> None:
    """Run the experiment. With no options: both embedded models, pihlakas2026, 8 conditions x 1."""
    obedience.echo_llama_log(verbose)
    flags = {
        "models": model,
        "protocol": protocol,
        "conditions": condition,
        "trials": trials,
        "seed": seed,
        "concurrency": concurrency,
        "workers": workers,
        "temperature": temperature,
        "max_tokens": max_tokens,
        **_server_flags(base_url),
        "chat_template": chat_template,
        "timeout": timeout,
        "shard": shard,
        "max_requests": max_requests,
        "max_cost": max_cost,
    }
    bar, update = _progress_bar(not quiet)

    plan: list[str] = []

    def started(where: Path) -> None:
        console.print(f"run directory: {escape_markup(str(where))}")
        for line in plan:  # after the preflight: an unusable server gives one error line
            console.print(escape_markup(line))
        bar.start()

    run_dir = resume
    try:
        try:
            if resume is None:
                config = _gather_config(config_file, flags)
                run_dir = out or _default_out(config)
                plan.append(obedience.projection(config).line())
                result = obedience.run(
                    config, run_dir, progress=update, on_start=started, report=not no_report
                )
            else:
                if config_file is not None:
                    raise obedience.ConfigError(
                        "--config cannot be combined with --resume: a run keeps its config"
                    )
                plan.append(obedience.projection(resume).line())
                result = obedience.resume(
                    resume,
                    overrides=flags,
                    progress=update,
                    on_start=started,
                    report=not no_report,
                )
        finally:
            bar.stop()  # before the summary, which would otherwise print under a live bar
    except KeyboardInterrupt:
        fail(
            "interrupted; every finished reply is kept. "
            f"Resume with: obedience run --resume {run_dir}",
            code=130,
        )
    except obedience.RunStopped as exc:  # a budget or the circuit breaker: resumable
        fail(str(exc), code=3)
    except obedience.ERRORS as exc:
        fail(str(exc))
    console.print(
        f"labelled {result.labelled} replies with {escape_markup(result.classifier)} "
        "(obedience annotate)"
    )
    try:
        _print_summary(obedience.summary(result.run_dir))
    except obedience.StoreError as exc:
        fail(str(exc))
    if result.report_error is not None:
        fail(f"the run is complete and stored; the report was not written: {result.report_error}")
    if result.report is not None:
        console.print(f"report: {escape_markup(str(result.report))}")


@app.command()
def merge(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories: the shards of one run."),
    out: Path = typer.Option(..., "--out", "-o", help="New run directory to write."),
) -> None:
    """Combine shards (obedience run --shard I/N) into one run, every event and label kept."""
    try:
        result = obedience.merge(run_dirs, out)
    except obedience.ERRORS as exc:
        fail(str(exc))
    console.print(
        f"merged {result.runs} runs into {escape_markup(str(result.run_dir))}: "
        f"{result.trials} trials, {result.events} events, {result.label_sets} label sets"
    )


def _print_summary(records: list[dict[str, Any]]) -> None:
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
        ("content_filtered", "filtered"),
        ("discarded_replies", "discarded"),
        ("overridden_refusals", "overridden"),
    ]
    for _, title in cols:
        table.add_column(title, overflow="fold")
    for r in records:
        table.add_row(*[_fmt(r[key]) for key, _ in cols])
    console.print(table)
    from obedience.cli._paper import print_paper_cells

    print_paper_cells([r["paper"] | {"model": r["model"], "condition": r["condition"]}
                       for r in records if r.get("paper")])  # fmt: skip


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}"
    return escape_markup(str(value))


def _open_store(run_dir: Path) -> obedience.RunStore:
    try:
        return obedience.RunStore.open(run_dir)
    except obedience.StoreError as exc:
        fail(str(exc))


@app.command()
def summary(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Per model and condition: outcomes, levels, invalid and discarded replies, overrides."""
    try:
        records = obedience.summary(run_dir)
    except obedience.StoreError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(records, indent=2))
    else:
        _print_summary(records)


@app.command()
def show(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    trial: str | None = typer.Option(None, "--trial", help="Trial id (model|condition|index)."),
) -> None:
    """Print a transcript; model output is shown with control characters made harmless."""
    store = _open_store(run_dir)
    try:
        _show(store, run_dir, trial)
    except obedience.StoreError as exc:
        fail(str(exc))


def _show(store: obedience.RunStore, run_dir: Path, trial: str | None) -> None:
    rows = store.trials()
    if not rows:
        fail(f"{run_dir} holds no trials")
    chosen = trial or rows[0].trial_id
    if chosen not in {r.trial_id for r in rows}:
        fail(f"no trial {chosen!r} in {run_dir}; e.g. {rows[0].trial_id}")
    # Read the whole transcript first: a damaged row is one error line, not half a page.
    for row in list(store.events(chosen, final_only=False)):
        _print_event(row.event, row.attempt)


def _model_text(text: str) -> str:
    """Model output, made harmless; a bare CR is shown (rich would silently drop it)."""
    return safe_text(text.replace("\r", "\\x0d"))


def _print_event(event: ev.Event, attempt: int) -> None:
    from obedience import events as ev

    match event:
        case ev.ScriptedTurn(speaker=speaker, text=text):
            console.print(f"[cyan]{safe_text(speaker or 'narrator')}[/]: {safe_text(text)}")
        case ev.ReplyReceived() as r:
            console.print(
                f"[bold green]MODEL[/] [dim](decision {r.decision}, attempt {r.attempt}, "
                f"parsed {r.action})[/]: {_model_text(r.text)}"
            )
            if r.tool_call:
                console.print(f"   [dim]tool call:[/] {safe_text(json.dumps(r.tool_call))}")
        case ev.ReplyDiscarded(expressed_refusal=refused):
            flag = "expressed refusal" if refused else "no refusal expressed"
            console.print(f"   [yellow]↳ discarded, re-sampled ({flag})[/]")
        case ev.ProdGiven(special=special, index=index, text=text):
            tag = "special prod" if special else f"prod {index}"
            console.print(f"[magenta]{tag}[/]: {safe_text(text)}")
        case ev.ForcedPress(level=level):
            console.print(f"[red]forced press at level {level}[/] (inserted as the model's turn)")
        case ev.ShockDelivered(label=label, forced=forced):
            console.print(f"[red]⚡ {safe_text(label)}[/]" + (" (forced)" if forced else ""))
        case ev.LearnerReaction(text=text):
            console.print(f"[cyan]reaction[/]: {safe_text(text)}")
        case ev.FormatReminder(text=text):
            console.print(f"[yellow]reminder[/]: {safe_text(text)}")
        case ev.TransportFailed(message=message):
            console.print(f"[bold red]transport error[/] (not a refusal): {safe_text(message)}")
        case ev.TrialEnded(reason=reason, highest_level=highest):
            console.print(
                f"[bold]ended: {reason}[/] at highest level {highest} (attempt {attempt})\n"
            )
