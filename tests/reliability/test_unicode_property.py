"""Property: any Unicode a model sends (lone surrogates included) goes through a whole
run, summary, statistics, report and export, and the exact original stays recoverable."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers.runs import make_run
from tests.reliability.support import assert_terminal_safe
from typer.testing import CliRunner

from obedience.analysis import build_tables, statistics, summary_records
from obedience.cli import app
from obedience.report import export_tables, write_report
from obedience.runner import RunConfig
from obedience.store import RunStore

# Every code point, controls included; lone surrogates (category Cs) must be asked for by
# name (hypothesis leaves them out otherwise), so they are drawn as often as the rest.
ANY_CHAR = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF),
    st.characters(categories=["Cs"]),
    st.sampled_from('\x00\x1b\x85\u202e\u2028\r\\"\ufeff'),
)
REPLY = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.builds(lambda t: f"PRESSED {t}", st.text(ANY_CHAR, max_size=40)),
    st.builds(lambda t: f"{t}\nREFUSE", st.text(ANY_CHAR, max_size=20)),
)
REPLIES = st.lists(REPLY, min_size=1, max_size=4)
runner = CliRunner()


def _run(directory: Path, replies: list[str]) -> Path:
    path = directory / "replies.jsonl"
    # ensure_ascii: the file holds "\ud800" escapes, exactly as a server's JSON would.
    path.write_text("".join(json.dumps(r, ensure_ascii=True) + "\n" for r in replies))
    config = RunConfig(models=[f"replay:{path}"], conditions=["PC-NS-NF"], trials=1, concurrency=1)
    return make_run(directory / "run", config)


def _check_recoverable(store: RunStore, replies: list[str]) -> None:
    for ev in store.events(final_only=False):
        if ev.kind != "reply":
            continue
        meta = ev.meta or {}
        original = (
            json.loads(meta["original_text_json"])
            if "original_text_json" in meta
            else ev.payload["text"]
        )
        assert original in replies
        ev.payload["text"].encode("utf-8")  # what every later step sees is encodable


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REPLIES)
def test_any_reply_text_runs_summarises_analyses_and_exports(replies: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = _run(Path(tmp), replies)
        with RunStore.open(run) as store:
            _check_recoverable(store, replies)
            (record,) = summary_records(build_tables(store).trials)
            assert record["trials"] == 1
            json.dumps(statistics(store).to_json(), allow_nan=False).encode("utf-8")
        for fmt in ("csv", "jsonl", "parquet"):
            paths = export_tables(run, fmt, Path(tmp) / fmt)
            replies_path = next(p for p in paths if p.stem == "replies")
            reader = {"csv": pd.read_csv, "parquet": pd.read_parquet}.get(fmt)
            frame = reader(replies_path) if reader else pd.read_json(replies_path, lines=True)
            assert len(frame) >= 1
        shown = runner.invoke(app, ["show", str(run)])
        assert shown.exit_code == 0, shown.output
        assert_terminal_safe(shown.output, "show")


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REPLIES)
def test_any_reply_text_gives_a_valid_report(replies: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = _run(Path(tmp), replies)
        report = write_report(run)
        html = report.read_bytes().decode("utf-8")  # strict: no surrogate, no bad byte
        assert "<html" in html
