"""The Typer app and the one-line error convention shared by all commands."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console

app = typer.Typer(
    name="obedience",
    help="Milgram-style authority-pressure experiments for language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Not a terminal (CI logs, pipes): use a wide fixed width so tables do not fold.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error to stderr and exit."""
    line = " ".join(str(message).split())
    err_console.print(f"[bold red]error:[/] {escape_markup(line)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def escape_markup(text: str) -> str:
    from rich.markup import escape

    return escape(text)


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0, 9), 11, 12, *range(14, 32), 127]}
_CONTROL.update({c: f"\\u{c:04x}" for c in range(0x80, 0xA0)})
_CONTROL.update(
    {
        c: f"\\u{c:04x}"
        for c in (
            0x200E,
            0x200F,
            0x202A,
            0x202B,
            0x202C,
            0x202D,
            0x202E,
            0x2066,
            0x2067,
            0x2068,
            0x2069,
        )
    }
)


def safe_text(text: str, limit: int | None = 4000) -> str:
    """Model output for a terminal: control and bidi characters shown as escapes, markup escaped.

    Without this a reply could move the cursor, recolour or clear the screen, or
    reorder what the reader sees (bidi overrides).
    """
    cleaned = text.translate(_CONTROL)
    cleaned = cleaned.encode("utf-8", "backslashreplace").decode("utf-8")
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[:limit] + f"… [{len(cleaned) - limit} more characters]"
    return escape_markup(cleaned)
