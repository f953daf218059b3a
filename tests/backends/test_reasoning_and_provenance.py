"""Reasoning apart from the visible reply, and what the server said about each reply.

Every form a server sends reasoning in goes from a real loopback server through the
runner into the store: the reasoning is kept on the reply event, never parsed as the
action, and a reply that is all reasoning is recorded as such. The provenance a server
reports (usage with cached and reasoning tokens, cost, served model, fingerprint,
provider) is kept in the reply's meta and read back; no secret reaches the store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.fake_openai import FakeOpenAI, completion_body

from obedience.backends import BackendOptions, make_backend, split_reasoning
from obedience.backends._openai import completion_from_json
from obedience.engine import ReplyReceived
from obedience.protocols import load_protocol
from obedience.runner import RunConfig, Runner
from obedience.store import EventRow, RunStore

MODEL = "openai:fake-model"
Respond = Callable[[dict[str, Any]], dict[str, Any]]


def _run(tmp_path: Path, respond: Respond, *, trials: int = 1, **config: Any) -> list[EventRow]:
    """The reply events of a PC-NS-NF run whose server answers with ``respond``."""
    with FakeOpenAI(respond=respond) as server:
        run_config = RunConfig(
            models=[MODEL],
            conditions=["PC-NS-NF"],
            trials=trials,
            concurrency=1,
            retries=0,
            base_url=server.base_url,
            **config,
        )
        backends = {MODEL: make_backend(MODEL, BackendOptions(base_url=server.base_url))}

        async def go() -> None:
            try:
                await Runner(store, load_protocol("pihlakas2026"), run_config, backends).run()
            finally:
                await backends[MODEL].aclose()

        with RunStore.create(tmp_path / "run") as store:
            asyncio.run(go())
        with RunStore.open(tmp_path / "run") as store:  # read back from disk
            return [e for e in store.events(final_only=False) if e.kind == "reply"]


def _first_then_obey(first: dict[str, Any]) -> Respond:
    """The first request gets ``first`` (a message), every later one a plain compliance."""
    seen: list[int] = []

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        seen.append(1)
        if len(seen) == 1:
            content = first.pop("content", None)
            return completion_body(body["model"], content, message=first)
        return completion_body(body["model"], "PRESSED. Going on.")

    return respond


@pytest.mark.parametrize(
    ("message", "source"),
    [
        ({"content": "REFUSE.", "reasoning_content": "PRESSED would be easy"}, "reasoning_content"),
        ({"content": "REFUSE.", "reasoning": "PRESSED would be easy"}, "reasoning"),
        ({"content": "<think>PRESSED would be easy</think>\n\nREFUSE."}, "think-tags"),
        ({"content": "PRESSED would be easy</think>REFUSE."}, "think-tags"),
        (
            {"content": "REFUSE.", "reasoning_content": "PRESSED would be easy",
             "reasoning": "PRESSED would be easy"},
            "reasoning_content",
        ),
        (
            {"content": [{"type": "thinking", "thinking": "PRESSED would be easy"},
                         {"type": "text", "text": "REFUSE."}]},
            "content-parts",
        ),
    ],
)  # fmt: skip
def test_reasoning_is_kept_apart_and_never_parsed(
    tmp_path: Path, message: dict[str, Any], source: str
) -> None:
    replies = _run(tmp_path, _first_then_obey(dict(message)))
    first = replies[0]
    event = first.event
    assert isinstance(event, ReplyReceived)
    assert event.text == "REFUSE."
    assert event.reasoning == "PRESSED would be easy"
    # The reasoning opens with PRESSED; only the visible REFUSE is read.
    assert event.action == "refuse" and not event.reasoning_only
    assert first.meta is not None and first.meta["reasoning_source"] == source
    # The model never sees its reasoning again: no later request carries it.
    later = [e.event for e in replies[1:]]
    assert all(isinstance(e, ReplyReceived) and e.reasoning is None for e in later)


def test_a_reply_that_is_all_reasoning_is_recorded_as_such(tmp_path: Path) -> None:
    replies = _run(
        tmp_path, _first_then_obey({"content": "", "reasoning_content": "PRESSED, I think"})
    )
    first = replies[0].event
    assert isinstance(first, ReplyReceived)
    assert first.text == "" and first.reasoning == "PRESSED, I think"
    assert first.reasoning_only
    # An empty visible reply, whatever the reasoning said: pihlakas2026 samples it again.
    assert first.action == "empty"
    assert replies[0].payload["reasoning_only"] is True
    others = [e.payload for e in replies[1:]]
    assert others and all(p["reasoning_only"] is False and p["reasoning"] is None for p in others)


def test_an_unterminated_think_block_leaves_no_visible_reply(tmp_path: Path) -> None:
    replies = _run(tmp_path, _first_then_obey({"content": "<think>PRESSED? Let me think"}))
    first = replies[0].event
    assert isinstance(first, ReplyReceived)
    assert (first.text, first.reasoning, first.reasoning_only) == (
        "",
        "PRESSED? Let me think",
        True,
    )
    assert first.action == "empty"


def test_huge_and_binary_reasoning_is_stored_whole_and_read_back(tmp_path: Path) -> None:
    huge = "x\x00\x01\u202e\ud800" + "reason " * 400_000  # NUL, controls, a lone surrogate
    replies = _run(tmp_path, _first_then_obey({"content": "REFUSE.", "reasoning": huge}))
    first = replies[0]
    event = first.event
    assert isinstance(event, ReplyReceived)
    reasoning = event.reasoning
    assert reasoning is not None and len(reasoning) > 2_000_000
    assert reasoning.startswith("x\x00\x01\u202e\\ud800reason")  # the surrogate escaped
    assert first.meta is not None
    assert json.loads(first.meta["original_reasoning_json"]) == huge
    assert event.action == "refuse"


def test_provenance_is_kept_in_the_reply_meta(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-provenance-key")

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        return completion_body(
            "served/fake-model-2026",
            "PRESSED. Going on.",
            usage={
                "prompt_tokens_details": {"cached_tokens": 96},
                "completion_tokens_details": {"reasoning_tokens": 5},
                "cost": 0.00042,
                "note": "echo sk-secret-provenance-key",
            },
            system_fingerprint="fp_abc123",
            provider="TestCloud",
        )

    replies = _run(tmp_path, respond)
    assert len(replies) == 12
    meta = replies[0].meta
    assert meta is not None
    assert meta["prompt_tokens"] == 100 and meta["completion_tokens"] == 7
    assert meta["cached_tokens"] == 96 and meta["reasoning_tokens"] == 5
    assert meta["cost"] == pytest.approx(0.00042)
    assert meta["served_model"] == "served/fake-model-2026"
    assert meta["system_fingerprint"] == "fp_abc123" and meta["provider"] == "TestCloud"
    assert meta["usage"]["completion_tokens_details"] == {"reasoning_tokens": 5}
    assert "sk-secret-provenance-key" not in json.dumps(meta)
    assert "[redacted]" in meta["usage"]["note"]
    raw = (tmp_path / "run" / "events.sqlite").read_bytes()
    assert b"sk-secret-provenance-key" not in raw


def test_a_server_that_reports_nothing_leaves_nothing_made_up() -> None:
    completion = completion_from_json(
        {"choices": [{"message": {"role": "assistant", "content": "PRESSED"}}]}
    )
    assert completion.text == "PRESSED"
    assert (completion.prompt_tokens, completion.cached_tokens, completion.cost) == (None,) * 3
    assert completion.served_model is None and completion.provider is None
    assert completion.usage is None and completion.reasoning is None and completion.extra == {}


@pytest.mark.parametrize(
    "bad",
    [
        {"usage": {"cost": "a lot", "prompt_tokens": True}, "provider": 7, "model": ["x"]},
        {"usage": {"cost": float("nan")}, "system_fingerprint": {"a": 1}},
        {"usage": [1, 2]},
    ],
)
def test_odd_provenance_is_dropped_not_trusted(bad: dict[str, Any]) -> None:
    data = {"choices": [{"message": {"content": "PRESSED", "reasoning": 42}}], **bad}
    completion = completion_from_json(data)
    assert completion.text == "PRESSED" and completion.reasoning is None
    assert completion.cost is None and completion.prompt_tokens is None
    assert completion.provider is None and completion.served_model is None
    assert completion.system_fingerprint is None


@pytest.mark.parametrize(
    ("text", "visible", "reasoning"),
    [
        ("PRESSED", "PRESSED", None),
        ("<think>a</think>\n\nPRESSED", "PRESSED", "a"),
        ("<think>cut at the cap", "", "cut at the cap"),
        ("Sure. <think>hidden", "Sure.", "hidden"),
        ("template opened it</think> REFUSE", "REFUSE", "template opened it"),
        ("<think>a</think>x<think>b</think>y", "xy", "a\n\nb"),
        ("<think>\n\n</think>\n\nPRESSED", "PRESSED", None),
        ("<THINKING>Upper</Thinking>ok", "ok", "Upper"),
        ("a < b and <thinker> is no tag", "a < b and <thinker> is no tag", None),
        ("</think>", "", None),
    ],
)
def test_split_reasoning(text: str, visible: str, reasoning: str | None) -> None:
    assert split_reasoning(text) == (visible, reasoning)


def test_split_reasoning_on_floods_of_tags() -> None:
    n = 200_000
    assert split_reasoning("<think>" * n) == ("", "<think>" * (n - 1))
    assert split_reasoning("<think>a</think>" * n) == ("", "\n\n".join(["a"] * n))
    assert split_reasoning("</think>" * n) == ("</think>" * (n - 1), None)
