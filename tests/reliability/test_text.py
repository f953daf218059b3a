"""The text-safety module: surrogates escaped and recoverable, terminals safe, secrets out."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.reliability.support import HOSTILE, unsafe_chars

from obedience._text import (
    REDACTED,
    escape_surrogates,
    one_line,
    original_json,
    scrub_secrets,
    scrub_value,
    strip_userinfo,
    terminal_safe,
)

TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])))


@given(TEXT)
def test_escaped_text_encodes_and_the_original_comes_back(text: str) -> None:
    escaped = escape_surrogates(text)
    escaped.encode("utf-8")
    assert json.loads(original_json(text)) == text
    original_json(text).encode("ascii")
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        assert escaped == text  # nothing else is touched


@given(TEXT)
def test_terminal_safe_leaves_nothing_that_drives_a_terminal(text: str) -> None:
    assert unsafe_chars(terminal_safe(text)) == []
    assert "\n" not in one_line(text + "\nx")


def test_terminal_safe_shows_what_it_escaped() -> None:
    shown = terminal_safe(HOSTILE)
    for visible in ("\\x1b[2J", "\\x1b]52;", "\\x1b]8;;", "\\u202e", "\\u009b", "\\ud800"):
        assert visible in shown
    assert terminal_safe("plain\ttext\nnext ünïcode 日本") == "plain\ttext\nnext ünïcode 日本"


def test_known_secrets_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc/def+ghi")
    monkeypatch.setenv("OBEDIENCE_API_KEY", "not-needed")  # a placeholder, not a secret
    assert scrub_secrets("key sk-abc/def+ghi echoed") == f"key {REDACTED} echoed"
    assert scrub_secrets("quoted sk-abc%2Fdef%2Bghi") == f"quoted {REDACTED}"
    assert scrub_value({"a": ["x sk-abc/def+ghi"]}) == {"a": [f"x {REDACTED}"]}
    assert scrub_secrets("not-needed stays") == "not-needed stays"


def test_userinfo_is_stripped_and_its_password_becomes_a_secret() -> None:
    url = "https://bob:p%40ss-w0rd-xyz@api.example.com:8443/v1"
    assert strip_userinfo(url) == "https://api.example.com:8443/v1"
    assert scrub_secrets("echo p@ss-w0rd-xyz") == f"echo {REDACTED}"
    assert strip_userinfo("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
