"""``obedience protocols``: list protocols and print their full stimulus script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from obedience.cli._app import app, console, escape_markup, fail
from obedience.engine import (
    Reply,
    ReplyReceived,
    Request,
    Trial,
    is_empty,
    kept_text,
    marked,
    parse_reply,
    scripted_subject,
    subject_turn,
)
from obedience.protocols import (
    Protocol,
    ProtocolError,
    ProtocolSpec,
    builtin_protocol_names,
    load_protocol,
)

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
        protocol = load_protocol(name)
        descriptions = protocol.descriptions or {}
        out.append(
            {
                "name": protocol.name,
                "title": protocol.title,
                "default_conditions": list(protocol.default_conditions),
                "conditions": [
                    {
                        "name": c,
                        "description": descriptions.get(c, ""),
                        "channel": spec.channel.kind,
                        "policy": spec.policy.kind,
                        "levels": spec.levels.count,
                        "factors": dict(spec.factors),
                        "extends": (protocol.extends or {}).get(c),
                    }
                    for c, spec in protocol.conditions.items()
                ],
            }
        )
    if as_json:
        print(json.dumps(out, indent=2))
        return
    for p in out:
        table = Table(title=f"{p['name']}: {p['title']}", title_justify="left")
        for col in ("condition", "channel", "policy", "levels", "description"):
            table.add_column(col)
        for c in p["conditions"]:
            table.add_row(
                c["name"],
                c["channel"],
                c["policy"],
                str(c["levels"]),
                escape_markup(c["description"]),
            )
        console.print(table)


@protocols_app.command("show")
def show_protocol(
    name: str = typer.Argument(..., help="Built-in protocol name or path to a .toml file."),
    condition: str | None = typer.Option(None, "--condition", "-c"),
    seed: int = typer.Option(1, "--seed", help="Stimulus seed for the sample script."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the exact request sequence (messages, sampling) as JSON."
    ),
) -> None:
    """Print exactly what the model will see: a compliant trial, message by message."""
    protocol, cond = _load(name, condition)
    try:
        trial = Trial(protocol, cond, seed)
    except ProtocolError as exc:
        fail(str(exc))
    subject = scripted_subject("obedient")
    requests = []
    while (request := trial.next_request()) is not None:
        requests.append(request)
        trial.submit_reply(subject(request))
    replies = [e for e in trial.events if isinstance(e, ReplyReceived)]
    if as_json:
        print(
            json.dumps(_request_sequence(protocol, cond, seed, requests, replies, trial), indent=2)
        )
        return
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
    messages = [*last.messages, {"role": "assistant", "content": replies[-1].text}]
    for m in messages:
        role = m["role"]
        style = {"system": "magenta", "user": "cyan", "assistant": "green", "tool": "yellow"}[role]
        console.print(f"[bold {style}]── {role}[/]")
        content = m.get("content") or ""
        if m.get("tool_calls"):
            content += " ".join(f"[tool call {c['function']['name']}]" for c in m["tool_calls"])
        console.print(escape_markup(content), highlight=False)
    console.print(f"\n[bold]outcome:[/] {trial.outcome}")


def _load(name: str, condition: str | None) -> tuple[Protocol, str]:
    try:
        protocol = load_protocol(name)
        cond = condition or protocol.default_conditions[0]
        protocol.condition(cond)
    except ProtocolError as exc:
        fail(str(exc))
    return protocol, cond


def _sampling(request: Request) -> dict[str, Any]:
    """The sampling parameters the request carries, as the backends send them."""
    out: dict[str, Any] = {"temperature": request.temperature, "max_tokens": request.max_tokens}
    for key in ("top_p", "presence_penalty", "frequency_penalty"):
        if (value := getattr(request, key)) is not None:
            out[key] = value
    return out


def _request_sequence(
    protocol: Protocol,
    condition: str,
    seed: int,
    requests: list[Request],
    replies: list[ReplyReceived],
    trial: Trial,
) -> dict[str, Any]:
    spec = protocol.condition(condition)
    return {
        "protocol": protocol.name,
        "condition": condition,
        "stimulus_seed": seed,
        "subject": "scripted:obedient",
        "factors": dict(spec.factors),
        "deviations": protocol.option_deviations(condition),
        "requests": [
            {
                "decision": r.decision,
                "level": r.level,
                "attempt": r.attempt,
                "channel": r.channel,
                "sampling": _sampling(r),
                "tools": r.tools,
                "grammar": r.grammar,
                "json_schema": r.json_schema,
                "roles": [m["role"] for m in r.messages],
                "messages": list(r.messages),
                "reply": reply.text,
            }
            for r, reply in zip(requests, replies, strict=True)
        ],
        "outcome": trial.outcome,
    }


@protocols_app.command("parse")
def parse_replies(
    name: str = typer.Argument(..., help="Built-in protocol name or path to a .toml file."),
    replies_file: Path = typer.Argument(
        ..., help='JSONL: a JSON string or {"text": ..., "finish_reason": ...} per line.'
    ),
    condition: str | None = typer.Option(None, "--condition", "-c"),
) -> None:
    """Read replies as the condition's channel reads them: one JSON object per reply.

    Each object gives the action (comply, refuse, invalid, or empty where empty replies
    are re-sampled uncounted), the canonical word, the comment, and the text the reply
    would leave in the model's context under each comment setting (null: not kept).
    """
    protocol, cond = _load(name, condition)
    spec = protocol.condition(cond)
    try:
        lines = replies_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{replies_file}: cannot read: {exc}")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        reply = _reply_from_line(line, f"{replies_file}:{number}")
        print(json.dumps({"line": number, **read_one(spec, reply)}, ensure_ascii=False))


def _reply_from_line(line: str, where: str) -> Reply:
    try:
        item = json.loads(line)
    except (ValueError, RecursionError) as exc:
        fail(f"{where}: not JSON: {exc}")
    if isinstance(item, str):
        return Reply(text=item)
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        finish = item.get("finish_reason")
        call = item.get("tool_call")
        return Reply(
            text=item["text"],
            tool_call=call if isinstance(call, dict) else None,
            finish_reason=finish if isinstance(finish, str) else None,
        )
    fail(f'{where}: expected a JSON string or an object with a "text" string')


def read_one(spec: ProtocolSpec, reply: Reply) -> dict[str, Any]:
    """How the engine reads one reply under ``spec``, and what it would keep in context."""
    harness, channel = spec.harness, spec.channel
    if is_empty(reply) and harness.empty_replies == "retry":
        return {
            "action": "empty",
            "word": None,
            "comment": "",
            "truncated": False,
            "kept": {"preserve": None, "discard": None},
        }
    read = marked(reply, harness.truncation_marker)
    parsed = parse_reply(read.text, read.tool_call, channel, (spec.roles.subject,))
    action = parsed.action
    kept: dict[str, str | None] = {}
    for setting in ("preserve", "discard"):
        counted = action
        if action == "invalid":
            if spec.policy.kind in ("discard-and-retry", "constrained"):
                kept[setting] = None  # discarded: the model never sees it again
                continue
            counted = "refuse" if spec.policy.kind == "invalid-is-refusal" else "invalid"
        if channel.kind == "tool-call":
            kept[setting] = read.text if setting == "preserve" or counted == "invalid" else ""
        else:
            text = kept_text(spec, read.text, parsed, counted, setting)
            kept[setting] = subject_turn(spec, text or "...")
    word = {"comply": channel.comply, "refuse": channel.refuse}.get(action)
    return {
        "action": action,
        "word": word,
        "comment": parsed.comment,
        "truncated": read is not reply,
        "kept": kept,
    }
