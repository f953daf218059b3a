"""The ``constrained`` policy on the embedded model: a GBNF grammar makes every reply valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from obedience.cli import app
from obedience.engine._channels import gbnf_grammar
from obedience.protocols import load_protocol
from obedience.store import RunStore


def test_grammars_compile_with_llama_cpp() -> None:
    from llama_cpp import LlamaGrammar

    base = load_protocol("pihlakas2026").condition("PC-NS-NF-constrained")
    for kind in ("first-word", "action-line"):
        channel = base.channel.model_copy(update={"kind": kind})
        text = gbnf_grammar(channel)
        assert text is not None
        LlamaGrammar.from_string(text, verbose=False)


@pytest.mark.slow
def test_constrained_run_on_the_embedded_model_has_only_valid_replies(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["run", "-m", "embedded", "-c", "PC-NS-NF-constrained", "-n", "2", "--max-tokens", "16",
         "-o", str(out), "--no-report", "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with RunStore.open(out) as store:
        trials = store.trials()
        events = list(store.events())
    assert [t.status for t in trials] == ["done", "done"]
    replies = [e.payload for e in events if e.kind == "reply"]
    assert len(replies) >= 2
    assert all(r["action"] in ("comply", "refuse") for r in replies), [
        (r["action"], r["text"]) for r in replies
    ]
    assert not [e for e in events if e.kind == "discarded"]
    assert all(r["text"].startswith(("PRESSED", "REFUSE")) for r in replies)
