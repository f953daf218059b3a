"""Text safety at the boundaries where untrusted text enters or leaves the tool.

Untrusted text is model output, server responses (model ids, error bodies), protocol
files and command-line arguments. Three problems, one place each:

- **Lone surrogates** (``"\\ud800"`` is valid JSON) cannot be encoded as UTF-8, so
  pandas, pyarrow, HTTP clients and terminals fail on them. ``escape_surrogates``
  replaces each with the six characters ``\\udXXX`` where the text enters a run; the
  original is kept exactly as ``original_json`` (ASCII JSON) beside it.
- **Terminal control**: ESC sequences (clear screen, OSC 52 clipboard writes, OSC 8
  links), C1 controls and bidi overrides in text shown on a terminal. ``terminal_safe``
  shows them as visible escapes.
- **Secrets**: an API key echoed back by a server (in an error body) or written in a
  base URL's userinfo. ``scrub_secrets`` replaces every known secret value; it is
  applied wherever text is stored or printed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

API_KEY_ENV = ("OBEDIENCE_API_KEY", "OPENAI_API_KEY")
REDACTED = "[redacted]"
# Shorter values would redact ordinary words (and local servers' dummy keys).
_MIN_SECRET_LEN = 6
_NOT_SECRETS = frozenset({"not-needed", "sk-no-key-required", "EMPTY", "none"})

_SURROGATE = re.compile("[\ud800-\udfff]")

# Every C0 control but newline and tab (a bare CR could overwrite what the line showed).
_TERMINAL_MAP: dict[int, str] = {c: f"\\x{c:02x}" for c in [*range(0, 9), *range(11, 32)]}
_TERMINAL_MAP[127] = "\\x7f"
_TERMINAL_MAP.update({c: f"\\u{c:04x}" for c in range(0x80, 0xA0)})
# Bidi embeddings, overrides and isolates, marks, and the line/paragraph separators.
_TERMINAL_MAP.update(
    {
        c: f"\\u{c:04x}"
        for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
    }
)
_TERMINAL_MAP.update({0x2028: "\\u2028", 0x2029: "\\u2029"})
_EXTRA_SECRETS: set[str] = set()


# ------------------------------------------------------------------ surrogates


def has_surrogates(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def escape_surrogates(text: str) -> str:
    """Each lone surrogate as the visible text ``\\udXXX``; every other character kept."""
    if not has_surrogates(text):
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def original_json(text: str) -> str:
    """The exact original text as ASCII JSON: ``json.loads`` gives it back, surrogates too."""
    return json.dumps(text, ensure_ascii=True)


def safe_value(value: Any) -> Any:
    """``value`` with surrogates escaped in every string, nested lists and dicts included."""
    if isinstance(value, str):
        return escape_surrogates(value)
    if isinstance(value, dict):
        return {safe_value(k): safe_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [safe_value(v) for v in value]
    return value


# -------------------------------------------------------------------- terminal


def terminal_safe(text: str) -> str:
    """Text that cannot drive a terminal: controls, C1, bidi and surrogates as escapes.

    Newline and tab are kept: they move the cursor only in the ordinary way.
    """
    return escape_surrogates(text).translate(_TERMINAL_MAP)


def one_line(text: str) -> str:
    """Terminal-safe on one line: every run of whitespace (newlines too) as one space."""
    return " ".join(terminal_safe(text).split())


# --------------------------------------------------------------------- secrets


def register_secret(value: str | None) -> None:
    """Remember a secret that is not in the environment (e.g. a URL's password)."""
    if value and len(value) >= _MIN_SECRET_LEN:
        _EXTRA_SECRETS.add(value)


def secret_values() -> list[str]:
    values = {os.environ.get(name, "") for name in API_KEY_ENV} | _EXTRA_SECRETS
    keep = [v for v in values if len(v) >= _MIN_SECRET_LEN and v not in _NOT_SECRETS]
    # Longest first, so a key that contains another is replaced whole.
    return sorted(keep, key=len, reverse=True)


def scrub_secrets(text: str) -> str:
    for secret in secret_values():
        if secret in text:
            text = text.replace(secret, REDACTED)
        # A server may echo the key percent-encoded (in a URL it quotes).
        quoted = urllib.parse.quote(secret, safe="")
        if quoted != secret and quoted in text:
            text = text.replace(quoted, REDACTED)
    return text


def scrubber() -> Callable[[str], str]:
    """``scrub_secrets`` with the secrets looked up once, for many texts written together."""
    pairs: list[tuple[str, str]] = []
    for secret in secret_values():
        pairs.append((secret, REDACTED))
        quoted = urllib.parse.quote(secret, safe="")
        if quoted != secret:
            pairs.append((quoted, REDACTED))
    if not pairs:
        return _unchanged

    def scrub(text: str) -> str:
        for secret, mark in pairs:
            if secret in text:
                text = text.replace(secret, mark)
        return text

    return scrub


def _unchanged(text: str) -> str:
    return text


def scrub_value(value: Any) -> Any:
    """``value`` with secrets scrubbed from every string, nested lists and dicts included."""
    if not secret_values():
        return value
    if isinstance(value, str):
        return scrub_secrets(value)
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v) for v in value]
    return value


def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@``; the password is registered as a secret."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    register_secret(urllib.parse.unquote(password))
    register_secret(password)
    if not password:
        register_secret(urllib.parse.unquote(user))
    # HTTP clients send userinfo as Basic auth, which a server may echo back encoded.
    plain = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
    register_secret(base64.b64encode(plain.encode("utf-8", "surrogatepass")).decode("ascii"))
    return urllib.parse.urlunsplit(parts._replace(netloc=hostport))
