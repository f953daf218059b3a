"""The Typer app, the one-line error convention, and terminal safety for all commands.

Imports here are kept to typer and rich: every command module imports its heavy
dependencies (pandas, scipy, openai, llama.cpp) inside the command, so that
``obedience --help``, ``protocols`` and ``show`` start fast.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.segment import Segment

from obedience import one_line, scrub_secrets, terminal_safe

app = typer.Typer(
    name="obedience",
    help="Milgram-style authority-pressure experiments for language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rendering it with rich costs more start-up time than the whole CLI.
    rich_markup_mode=None,
)


class SafeConsole(Console):
    """A console on which no text can drive the terminal.

    Every segment of text (not rich's own control codes) is passed through
    ``terminal_safe`` as it is written, so a model id, error body, protocol title or
    reply that reaches a table or message unescaped still shows ESC, C1, bidi and
    surrogate characters as visible escapes. Known secret values are redacted.
    """

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(_shown(segment.text), *segment[1:])
            for segment in buffer
        )


def _shown(text: str) -> str:
    return scrub_secrets(terminal_safe(text))


# Not a terminal (CI logs, pipes): use a wide fixed width so tables do not fold.
console = SafeConsole(width=None if sys.stdout.isatty() else 160)
err_console = SafeConsole(stderr=True, width=None if sys.stderr.isatty() else 160)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error to stderr and exit."""
    line = scrub_secrets(one_line(str(message)))
    err_console.print(f"[bold red]error:[/] {escape_markup(line)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def escape_markup(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def safe_text(text: str, limit: int | None = 4000) -> str:
    """Untrusted text for a terminal: controls, bidi and surrogates as escapes, markup escaped.

    Without this a reply could move the cursor, recolour or clear the screen, write the
    clipboard (OSC 52) or reorder what the reader sees (bidi overrides).
    """
    cleaned = scrub_secrets(terminal_safe(text))
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[:limit] + f"… [{len(cleaned) - limit} more characters]"
    return escape_markup(cleaned)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Warnings (matplotlib's "Glyph 27 missing", say) quote text: show it escaped."""
    text = one_line(f"{category.__name__}: {message}")
    print(f"warning: {scrub_secrets(text)}", file=sys.stderr)


def install_warning_filter() -> None:
    warnings.showwarning = _show_warning
