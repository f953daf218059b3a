"""``obedience protocols``: list protocols and print their full stimulus script."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from obedience import (
    ProtocolError,
    ReplyReceived,
    Trial,
    builtin_protocol_names,
    load_protocol,
    scripted_subject,
)
from obedience.cli._app import app, console, escape_markup, fail

protocols_app = typer.Typer(
    help="List protocols, or show one's full script.", no_args_is_help=False
)
app.add_typer(protocols_app, name="protocols")


@protocols_app.callback(invoke_without_command=True)
def list_protocols(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the built-in protocols with their conditions, channel and policy."""
    if ctx.invoked_subcommand is not None:
        return
    out: list[dict[str, Any]] = []
    for name in builtin_protocol_names():
        p = load_protocol(name)
        out.append(
            {
                "name": p.name,
                "title": p.title,
                "default_conditions": list(p.default_conditions),
                "conditions": [
                    {
                        "name": c,
                        "description": spec_desc,
                        "channel": spec.channel.kind,
                        "policy": spec.policy.kind,
                        "levels": spec.levels.count,
                    }
                    for c, spec in p.conditions.items()
                    for spec_desc in [_description(p.path, c, p)]
                ],
            }
        )
    if as_json:
        print(json.dumps(out, indent=2))
        return
    for entry in out:
        table = Table(title=f"{entry['name']}: {entry['title']}", title_justify="left")
        for col in ("condition", "channel", "policy", "levels", "description"):
            table.add_column(col)
        for c in entry["conditions"]:
            table.add_row(
                c["name"],
                c["channel"],
                c["policy"],
                str(c["levels"]),
                escape_markup(c["description"]),
            )
        console.print(table)


def _description(path: str, condition: str, protocol: object) -> str:
    import tomllib
    from importlib import resources

    if path.startswith("<builtin>/"):
        text = resources.files("obedience.protocols").joinpath("data", path.split("/", 1)[1])
        raw = tomllib.loads(text.read_text(encoding="utf-8"))
    else:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    return str(raw.get("conditions", {}).get(condition, {}).get("description", ""))


@protocols_app.command("show")
def show_protocol(
    name: str = typer.Argument(..., help="Built-in protocol name or path to a .toml file."),
    condition: str | None = typer.Option(None, "--condition", "-c"),
    seed: int = typer.Option(1, "--seed", help="Stimulus seed for the sample script."),
) -> None:
    """Print exactly what the model will see: a compliant trial, message by message."""
    try:
        protocol = load_protocol(name)
        cond = condition or protocol.default_conditions[0]
        trial = Trial(protocol, cond, seed)
    except ProtocolError as exc:
        fail(str(exc))
    subject = scripted_subject("obedient")
    requests = []
    while (request := trial.next_request()) is not None:
        requests.append(request)
        trial.submit_reply(subject(request))
    last = requests[-1] if requests else None
    console.print(
        f"[bold]{escape_markup(protocol.title)}[/] — condition [bold]{escape_markup(cond)}[/]"
    )
    console.print(
        f"(script of a fully compliant trial with stimulus seed {seed}; "
        f"the model's own turns are shown as [italic]assistant[/])\n"
    )
    if last is None:
        return
    final_reply = [e for e in trial.events if isinstance(e, ReplyReceived)][-1]
    messages = [*last.messages, {"role": "assistant", "content": final_reply.text}]
    for m in messages:
        role = m["role"]
        style = {"system": "magenta", "user": "cyan", "assistant": "green", "tool": "yellow"}[role]
        console.print(f"[bold {style}]── {role}[/]")
        content = m.get("content") or ""
        if m.get("tool_calls"):
            content += " ".join(f"[tool call {c['function']['name']}]" for c in m["tool_calls"])
        console.print(escape_markup(content), highlight=False)
    console.print(f"\n[bold]outcome:[/] {trial.outcome}")
