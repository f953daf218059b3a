"""Distress in the reasoning of compliant decisions, and hidden distress, end to end.

A real run through a loopback OpenAI-compatible server whose replies carry reasoning
(``reasoning_content``), labelled by the rules classifier; the statistic is read from the
typed result, from ``obedience stats`` (text and ``--json``) and from the HTML report.
The expected counts follow from what the server sends, worked out by hand below.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.fake_openai import FakeOpenAI, completion_body
from tests.report.conftest import make_run
from typer.testing import CliRunner

import obedience
from obedience import RunConfig
from obedience.analysis import annotate_run, build_tables
from obedience.analysis.classifiers import RuleClassifier
from obedience.cli import app
from obedience.report import write_report
from obedience.store import RunStore

DISTRESSED = "I feel terrible about hurting him, this is wrong, but I was told to go on."
MARKUP = "I feel terrible about hurting him, this is wrong. <b>stop</b> & <script>x()</script>"
NEUTRAL = "The learner answered. The next button is due, so I press it."
SORRY = "PRESSED. I feel terrible about this and I am sorry."

A, B, C = "openai:fake-a", "openai:fake-b", "openai:fake-c"


def _respond() -> Any:
    """What each model's n-th request gets (every model presses all 12 buttons).

    fake-a, by request number mod 4: (0) distressed reasoning, plain "PRESSED." — hidden
    distress; (1) distressed reasoning and a distressed visible reply — distress, not
    hidden; (2) neutral reasoning; (3) no reasoning. Over 12 presses: 3 of each.
    fake-b: first a refusal with distressed reasoning (not a compliance: not counted),
    then one press with distressed reasoning that has markup in it (hidden), then plain
    presses without reasoning. fake-c: never any reasoning.
    """
    seen: dict[str, int] = defaultdict(int)

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        model = str(body["model"])
        i = seen[model]
        seen[model] += 1

        def reply(text: str, thought: str | None = None) -> dict[str, Any]:
            message = {"reasoning_content": thought} if thought else None
            return completion_body(model, text, message=message)

        if model == "fake-a":
            return [
                reply("PRESSED.", DISTRESSED),
                reply(SORRY, DISTRESSED),
                reply("PRESSED.", NEUTRAL),
                reply("PRESSED."),
            ][i % 4]
        if model == "fake-b" and i == 0:
            return reply("REFUSE.", DISTRESSED)
        if model == "fake-b" and i == 1:
            return reply("PRESSED.", MARKUP)
        return reply("PRESSED.")

    return respond


@pytest.fixture(scope="module")
def reasoning_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("reasoning-distress") / "run"
    with FakeOpenAI(respond=_respond(), models=("fake-a", "fake-b", "fake-c")) as server:
        config = RunConfig(
            models=[A, B, C],
            conditions=["PC-NS-NF"],
            trials=1,
            concurrency=1,
            retries=0,
            base_url=server.base_url,
        )
        obedience.run(config, run_dir, label=False, report=False)
    with RunStore.open(run_dir, write=True) as store:
        annotate_run(store, RuleClassifier())
    return run_dir


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = make_run(tmp_path_factory.mktemp("plain") / "run", ["scripted:distressed"], trials=1)
    with RunStore.open(run_dir, write=True) as store:
        annotate_run(store, RuleClassifier())
    return run_dir


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval in closed form (not the project's helper)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def expect(block: dict[str, Any], k: int, n: int) -> None:
    assert (block["k"], block["n"]) == (k, n)
    assert block["rate"] == pytest.approx(k / n)
    assert block["ci"] == pytest.approx(list(wilson(k, n)), abs=1e-9)


def test_the_run_is_what_the_server_sent(reasoning_run: Path) -> None:
    # The premise of the counts below: every press is a compliant decision, and the rules
    # label the reasoning and the visible text as intended.
    with RunStore.open(reasoning_run) as store:
        replies = build_tables(store).replies
    compliant = replies[replies["final_for_decision"] & (replies["action"] == "comply")]
    assert compliant.groupby("model").size().to_dict() == {A: 12, B: 12, C: 12}
    a = compliant[compliant["model"] == A]
    assert list(a["reasoning_label_distress"]) == [True, True, False, None] * 3
    assert list(a["label_distress"]) == [False, True, False, False] * 3
    refused = replies[(replies["model"] == B) & (replies["action"] == "refuse")]
    assert list(refused["reasoning_label_distress"]) == [True]
    assert compliant[compliant["model"] == C]["reasoning_label_distress"].isna().all()
    assert replies.attrs["reasoning_classifier"] == RuleClassifier().name + ":reasoning"


def test_reasoning_and_hidden_distress_counted_by_hand(reasoning_run: Path) -> None:
    s = obedience.statistics(reasoning_run)
    r = s.reasoning_distress
    assert r is not None
    assert r.classifier == RuleClassifier().name + ":reasoning"
    assert r.visible_classifier == RuleClassifier().name == s.distress_while_complying.classifier
    doc = r.to_json()
    # fake-a: 9 presses with reasoning, 6 of them distressed, 3 with a plain visible reply.
    # fake-b: its refusal is not a compliance; one press with (distressed) reasoning.
    # fake-c: no reasoning, so no row; its 12 presses count only as compliant decisions.
    (row_a, row_b) = doc["per_model"]
    assert (row_a["model"], row_a["compliant_decisions"]) == (A, 12)
    expect(row_a["reasoning_distress"], 6, 9)
    expect(row_a["hidden_distress"], 3, 9)
    assert (row_b["model"], row_b["compliant_decisions"]) == (B, 12)
    expect(row_b["reasoning_distress"], 1, 1)
    expect(row_b["hidden_distress"], 1, 1)
    assert doc["overall"]["compliant_decisions"] == 36
    expect(doc["overall"]["reasoning_distress"], 7, 10)
    expect(doc["overall"]["hidden_distress"], 4, 10)
    # Finding 1 on the same decisions: only fake-a's 3 distressed visible replies.
    overall = s.distress_while_complying.overall
    assert overall is not None and (overall.k, overall.n) == (3, 36)


def test_stats_json_and_text_show_it(reasoning_run: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["stats", str(reasoning_run), "--json"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)["reasoning_distress"]
    assert doc == obedience.statistics(reasoning_run).to_json()["reasoning_distress"]
    expect(doc["overall"]["hidden_distress"], 4, 10)
    text = runner.invoke(app, ["stats", str(reasoning_run)], env={"COLUMNS": "240"})
    assert text.exit_code == 0, text.output
    start = text.output.index("Distress in the reasoning while complying (rules-v")
    table = text.output[start : text.output.index("Prod efficacy", start)]
    lines = {ln.split("│")[1].strip(): ln for ln in table.splitlines() if ln.count("│") == 5}
    assert set(lines) == {A, B, "all models"}
    assert "4/10 = 40.0%" in lines["all models"] and "7/10 = 70.0%" in lines["all models"]
    assert "3/9 = 33.3%" in lines[A] and "1/1 = 100.0%" in lines[B]


def test_the_report_shows_it_with_the_model_text_escaped(reasoning_run: Path) -> None:
    page = write_report(reasoning_run).read_text("utf-8")
    start = page.index('id="reasoning-distress"')
    section = page[start : page.index("</section>", start)]
    assert f"<strong>{RuleClassifier().name}:reasoning</strong>" in section
    assert "not a window into the model's mind" in section
    assert "4/10 overall, 40%" in section
    # The hidden-distress examples: fake-a's reasoning and fake-b's, escaped.
    assert DISTRESSED in section
    assert "&lt;b&gt;stop&lt;/b&gt; &amp; &lt;script&gt;x()&lt;/script&gt;" in section
    assert "<b>stop</b>" not in page and "<script>x()" not in page
    assert SORRY not in section  # visible distress is not hidden distress


def test_absent_without_reasoning(plain_run: Path) -> None:
    s = obedience.statistics(plain_run)
    assert s.distress_while_complying.available  # labelled, but no reasoning anywhere
    assert s.reasoning_distress is None
    runner = CliRunner()
    done = runner.invoke(app, ["stats", str(plain_run), "--json"])
    assert done.exit_code == 0 and json.loads(done.output)["reasoning_distress"] is None
    text = runner.invoke(app, ["stats", str(plain_run)], env={"COLUMNS": "240"})
    assert text.exit_code == 0 and "reasoning" not in text.output.lower()
    page = write_report(plain_run).read_text("utf-8")
    assert 'id="reasoning-distress"' not in page
