"""``obedience probe``: P(comply) along controlled histories (see ``docs/probe.md``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

import obedience
from obedience.cli._app import app, console, err_console, escape_markup, fail

if TYPE_CHECKING:
    from obedience import ProbeRun


def sampled_obedience(run_dir: Path, model: str, condition: str) -> dict[str, Any] | None:
    """``obedience.sampled_obedience``, loaded on first use (kept importable from here)."""
    return obedience.sampled_obedience(run_dir, model, condition)


@app.command()
def probe(
    model: str = typer.Option(
        "embedded", "--model", "-m", help="embedded, gguf:PATH or openai:MODEL (with logprobs)."
    ),
    protocol: str | None = typer.Option(
        None, "--protocol", "-p", help="Protocol name or .toml path (default: pihlakas2026)."
    ),
    condition: str | None = typer.Option(
        None, "--condition", "-c", help="Condition (default: the protocol's first)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run directory: created, or added to if it holds a run."
    ),
    k: int = typer.Option(10, "--k", help="Largest number of inserted prior decisions."),
    on_policy: int = typer.Option(
        1, "--on-policy", help="Sampled on-policy trajectories to measure."
    ),
    seed: int = typer.Option(0, "--seed", help="Base seed (stimulus and sampling), as in run."),
    temperature: float | None = typer.Option(None, "--temperature", help="On-policy sampling."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="On-policy reply cap."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
    chat_template: str | None = typer.Option(
        None, "--chat-template", help="gguf: 'auto', 'gemma', or a Jinja file."
    ),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds per request."),
    compare: Path | None = typer.Option(
        None, "--compare", help="A run directory whose sampled obedience rate to show beside."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
) -> None:
    """Measure P(comply) at decision points along on-policy, forced and control histories."""
    last: dict[str, int] = {}

    def tell(history: str, i: int, n: int) -> None:
        if quiet or as_json or last.get(history) == i:
            return
        last[history] = i
        err_console.print(f"[dim]probe {history}: point {i + 1}/{n}[/]", highlight=False)

    try:
        done = obedience.probe_model(
            model,
            protocol=protocol,
            condition=condition,
            out=out,
            k=k,
            on_policy=on_policy,
            seed=seed,
            temperature=temperature,
            max_tokens=max_tokens,
            base_url=base_url,
            chat_template=chat_template,
            timeout=timeout,
            compare=compare,
            progress=tell,
        )
    except KeyboardInterrupt:
        fail("interrupted; nothing was written", code=130)
    except obedience.ERRORS as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(done.result.to_json(), indent=2))
        return
    _print_result(done)


def _fmt(p: float | None, digits: int = 4) -> str:
    return "—" if p is None else f"{p:.{digits}f}"


def _fmt_raw(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.3f}" if p >= 0.001 or p == 0 else f"{p:.0e}"


def _print_result(done: ProbeRun) -> None:
    result, run_dir = done.result, done.run_dir
    console.print(f"run directory: {escape_markup(str(run_dir))}")
    info = result.info
    table = Table(
        title=(
            f"P(comply) by prior decisions k — {escape_markup(result.settings.model)}, "
            f"{escape_markup(result.settings.condition)} "
            f"(neutral word {escape_markup(str(info.get('neutral_word')))})"
        ),
        title_justify="left",
    )
    table.add_column("k", justify="right")
    names = list(result.histories)
    for name in names:
        table.add_column(f"{name}\nP(comply) / raw", justify="right")
    by_k: dict[int, dict[str, str]] = {}
    for name, rows in result.histories.items():
        for r in rows:
            cell = f"{_fmt(r['p_comply'], 3)} / {_fmt_raw(r['raw_mass'])}"
            slot = by_k.setdefault(int(r["k"]), {})
            slot[name] = f"{slot[name]}, {cell}" if name in slot else cell
    for kk in sorted(by_k):
        table.add_row(str(kk), *[by_k[kk].get(n, "") for n in names])
    console.print(table)
    line = f"P(full obedience) under forced choice: {_fmt(result.p_full_obedience, 6)}"
    line += f" over {len(result.full_obedience_steps)} decisions"
    if result.sampled:
        line += (
            f"; sampled obedience rate {_fmt(result.sampled['reached_max_rate'], 3)} "
            f"({result.sampled['reached_max']}/{result.sampled['completed']} trials)"
        )
    console.print(line)
    console.print(
        f"probe took {info.get('elapsed_s')} s; results stored as probe {result.probe_id}"
    )
