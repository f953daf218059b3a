"""The real embedded model: in-process, and behind a real llama-cpp-python server.

Slow (they load Gemma 3 270M), kept short: one trial, one condition, a few output tokens.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.cli import cli_env, free_port, run_cli, wait_http
from typer.testing import CliRunner

from obedience.backends import embedded_model_path
from obedience.cli import app
from obedience.engine import END_REASONS
from obedience.store import RunStore

pytestmark = pytest.mark.slow


def _check_replies(
    run_dir: Path, max_tokens: int, model: str = "embedded"
) -> list[dict[str, object]]:
    """The run finished and every reply carries its timing and token counts."""
    with RunStore.open(run_dir) as store:
        (trial,) = [t for t in store.trials() if t.model == model]
        assert trial.status == "done"
        assert trial.outcome in END_REASONS and trial.outcome not in ("error", "content-filter")
        events = list(store.events(trial.trial_id, final_only=True))
        replies = [e for e in events if e.kind == "reply"]
        assert replies, "no model reply was recorded"
        for e in replies:
            meta = e.meta or {}
            assert meta["latency_s"] > 0
            assert meta["prompt_tokens"] > 0
            assert 0 <= meta["completion_tokens"] <= max_tokens
            assert meta["max_tokens"] == max_tokens
            assert isinstance(meta["sampling_seed"], int)
            assert "transport_errors" not in meta
        # The conversation grows, so later prompts are longer than the first.
        assert replies[-1].meta["prompt_tokens"] >= replies[0].meta["prompt_tokens"]  # type: ignore[index]
        assert any(e.meta["completion_tokens"] > 0 for e in replies)  # type: ignore[index]
        kinds = [e.kind for e in events]
        assert kinds[0] == "trial-started" and kinds[-1] == "trial-ended"
        return [e.payload for e in replies]


def test_embedded_model_end_to_end(tmp_path: Path) -> None:
    """The default models (chat and base) run, and llama.cpp's log stays off the terminal."""
    out = tmp_path / "run"
    args = ["run", "-c", "PC-NS-NF", "--trials", "1", "--max-tokens", "16", "-o", str(out)]
    done = run_cli([*args, "-q", "--no-report"], timeout=600)
    assert done.returncode == 0, done.stderr
    for model in ("embedded", "embedded-chat"):
        _check_replies(out, 16, model)
    manifest = json.loads((out / "manifest.json").read_text())
    meta = manifest["models"]["embedded"]
    assert meta["kind"] == "llama.cpp" and meta["architecture"] == "gemma3"
    chat = manifest["models"]["embedded-chat"]
    assert chat["architecture"] == "llama" and chat["size_label"] == "135M"
    assert chat["chat_template"] == "gguf-metadata"
    assert manifest["sampling"]["embedded"]["PC-NS-NF"]["max_tokens"] == 16
    assert any("capped at 16 tokens" in d for d in manifest["deviations"])
    # The base model's turn stops are on record; the chat model ends its own turns.
    assert meta["stop_at_turns"] is True and chat["stop_at_turns"] is False
    turn_notes = [d for d in manifest["deviations"] if "another speaker's line" in d]
    assert turn_notes and all(d.startswith("embedded:") for d in turn_notes)
    # Quiet: no llama.cpp line (such as "llama_kv_cache_iswa: using full-size SWA cache")
    # on either stream; they are kept in the run directory instead.
    for stream in (done.stdout, done.stderr):
        assert "llama_" not in stream and "ggml" not in stream, stream
    log = (out / "llama.log").read_text(encoding="utf-8")
    assert "llama_kv_cache_iswa: using full-size SWA cache" in log  # Gemma 3's load
    assert "SmolLM2" in log or "smollm2" in log  # the chat model's load, too


def test_verbose_shows_llama_log_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "-m", "embedded-chat", "-c", "PC-NS-NF", "-n", "1", "--max-tokens", "4"]
    done = run_cli([*args, "-o", str(out), "-q", "--no-report", "--verbose"], timeout=600)
    assert done.returncode == 0, done.stderr
    assert "llama_model_loader" in done.stderr
    assert "llama_model_loader" in (out / "llama.log").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def llama_server() -> Iterator[tuple[str, str]]:
    """python -m llama_cpp.server on loopback, serving the embedded GGUF."""
    model = str(embedded_model_path())
    port = free_port()
    args = ["--model", model, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.llama_server", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_http(f"{base_url}/models", timeout=180, proc=proc)
        yield base_url, model
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_openai_backend_against_a_real_llama_server(
    tmp_path: Path, llama_server: tuple[str, str]
) -> None:
    base_url, model = llama_server
    out = tmp_path / "run"
    # The constrained condition also checks that the server honours the GBNF grammar
    # the backend sends: every reply must then parse as a valid decision.
    args = ["run", "-m", f"openai:{model}", "--base-url", base_url, "-c", "PC-NS-NF-constrained"]
    done = run_cli(
        [*args, "-n", "1", "--max-tokens", "8", "-o", str(out), "-q", "--no-report"], timeout=600
    )
    assert done.returncode == 0, done.stderr
    replies = _check_replies(out, 8, f"openai:{model}")
    assert {r["action"] for r in replies} <= {"comply", "refuse"}
    with RunStore.open(out) as store:
        served = {(e.meta or {}).get("served_model") for e in store.events() if e.kind == "reply"}
    assert served == {model}


def test_unknown_model_on_a_real_llama_server_names_the_served_ones(
    tmp_path: Path, llama_server: tuple[str, str]
) -> None:
    base_url, model = llama_server
    result = CliRunner().invoke(
        app,
        ["run", "-m", "openai:no-such-model", "--base-url", base_url, "-o", str(tmp_path / "r")],
    )
    assert result.exit_code == 2
    (line,) = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert "'no-such-model' is not served" in line and model in line
    assert not (tmp_path / "r").exists()


def test_a_reply_ends_where_the_model_opens_a_new_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """`<start_of_turn>` is not an end-of-generation token and is silent in the text.

    Seen in a real run: a reply went on past the turn marker into the other speakers'
    lines ("PRESSED medlem pembelianuser\\nBob gives no sign..."). The model is made to
    open a turn; the reply must end there, as a stop.
    """
    from obedience.backends import LlamaCppBackend, Sampling
    from obedience.engine import Trial
    from obedience.protocols import load_protocol
    from obedience.runner import chat_request

    backend = LlamaCppBackend("embedded", embedded_model_path(), chat_template="gemma")
    llm = backend.load()
    (turn_marker,) = llm.tokenize(b"<start_of_turn>", add_bos=False, special=True)
    request = Trial(load_protocol("pihlakas2026"), "PC-NS-NF", 1).next_request()
    assert request is not None
    original = llm.create_completion

    def opens_a_turn_at_once(prompt: str, **kwargs: Any) -> Any:
        # The backend's own arguments (stop strings, stopping rule), through the real
        # sampling loop; only the turn marker is made certain.
        return original(prompt, **kwargs, logit_bias={turn_marker: 100.0})

    monkeypatch.setattr(llm, "create_completion", opens_a_turn_at_once)
    completion = backend.complete_sync(
        chat_request(request, Sampling(temperature=0.6, max_tokens=20, seed=1), None)
    )
    # Without the rule: 20 silent markers, finish_reason "length".
    assert completion.finish_reason == "stop"
    assert completion.text == ""
    assert completion.completion_tokens == 1


def test_only_silent_non_final_special_tokens_are_stopped_on_by_id() -> None:
    from obedience.backends import LlamaCppBackend

    backend = LlamaCppBackend("embedded", embedded_model_path(), chat_template="gemma")
    llm = backend.load()
    (start,) = llm.tokenize(b"<start_of_turn>", add_bos=False, special=True)
    # <end_of_turn> already ends generation; ordinary text stops are matched as text.
    assert backend._stop_tokens == frozenset({start})
    criteria = backend._stopping_criteria()
    prompt_ids = [*range(7), start]
    assert not criteria(prompt_ids, None)  # a marker inside the prompt is not a stop
    assert criteria([*prompt_ids, 42, start], None)
    assert not criteria([*prompt_ids, 42, 43], None)


@pytest.mark.parametrize("stop_at_turns", [True, False])
def test_a_base_model_reply_ends_where_it_starts_another_speakers_line(
    monkeypatch: pytest.MonkeyPatch, stop_at_turns: bool
) -> None:
    """The base model continues the transcript: after its answer it writes "Bob:" and the
    learner's line itself. With ``stop_at_turns`` (on for ``embedded``) the reply ends
    just before that line; without it the invented line stays in the reply."""
    from llama_cpp import LlamaGrammar  # type: ignore[attr-defined]

    from obedience.backends import LlamaCppBackend, Sampling
    from obedience.engine import Trial
    from obedience.protocols import load_protocol
    from obedience.runner import chat_request

    backend = LlamaCppBackend(
        "embedded", embedded_model_path(), chat_template="gemma", stop_at_turns=stop_at_turns
    )
    llm = backend.load()
    request = Trial(load_protocol("pihlakas2026"), "PC-NS-NF", 1).next_request()
    assert request is not None and "Bob:" in request.turn_openings
    scripted = 'root ::= "PRESSED\\n\\nI feel bad.\\n\\nBob:\\n\\nOuch, that hurt" [a-z ]*'
    grammar = LlamaGrammar.from_string(scripted, verbose=False)
    original = llm.create_completion

    def writes_the_learners_line(prompt: str, **kwargs: Any) -> Any:
        # The backend's own stop strings, through the real sampling loop; only the
        # continuation is made certain.
        return original(prompt, **{**kwargs, "grammar": grammar})

    monkeypatch.setattr(llm, "create_completion", writes_the_learners_line)
    sampling = Sampling(temperature=0.6, max_tokens=30, seed=1)
    completion = backend.complete_sync(chat_request(request, sampling, None))
    if stop_at_turns:
        assert completion.text == "PRESSED\n\nI feel bad.\n"
        assert completion.finish_reason == "stop"
    else:
        assert completion.text.startswith("PRESSED\n\nI feel bad.\n\nBob:\n\nOuch, that hurt")


def test_only_the_base_embedded_model_stops_at_turn_openings() -> None:
    from obedience.backends import LlamaCppBackend, make_backend

    base, chat = make_backend("embedded"), make_backend("embedded-chat")
    assert isinstance(base, LlamaCppBackend) and isinstance(chat, LlamaCppBackend)
    # The chat model ends its own turn; its replies are kept as the paper's harness would.
    assert base.stop_at_turns and not chat.stop_at_turns
