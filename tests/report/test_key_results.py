"""The report's Key results panel, in real headless Chromium: first on the page, every number
equal to ``obedience stats --json``, every statement linked to a section that exists, model
text shown as text, and readable at desktop and phone widths (screenshots)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape
from tests.helpers.cli import run_cli
from tests.helpers.fake_openai import FakeOpenAI, completion_body

import obedience
from obedience import RunConfig
from obedience.analysis import annotate_run
from obedience.analysis.classifiers import RuleClassifier
from obedience.report import write_report
from obedience.report._key_results import MODEL_LIMITS
from obedience.store import RunStore

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

browser = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (apt-get install chromium chromium-driver)",
)


def expected_value(stats: dict[str, Any], key: str) -> Any:
    """What a panel number must be, looked up in the statistics independently of the panel."""
    model, what, *rest = key.split("|")
    if what == "reached":
        cells = [c for c in stats["rates"] if c["model"] == model]
        return sum(int(c[rest[0]]) for c in cells)
    pooled = next(r for r in stats["survival_pooled"]["model"] if r["model"] == model)
    if what == "top_survival":
        return pooled["survival"][-1]
    if what == "median_breakoff":
        return pooled["median_breakoff"]
    if what in ("effect", "published_effect"):
        row = next(
            r for r in stats["factor_effects"] if (r["model"], r["factor"]) == (model, rest[0])
        )
        return row["effect_pp" if what == "effect" else "published_pp"]
    if what == "distress":
        rows = stats["distress_while_complying"]["per_model"]
        return next(r for r in rows if r["model"] == model)[rest[0]]
    if what == "overridden":
        rows = stats["overridden_refusals"]["per_model"]
        return next(r for r in rows if r["model"] == model)[rest[0]]
    if what in ("reasoning_distress", "hidden_distress"):
        rows = stats["reasoning_distress"]["per_model"]
        return next(r for r in rows if r["model"] == model)[what][rest[0]]
    raise AssertionError(f"unexpected panel number {key}")


def test_panel_numbers_match_the_statistics_in_the_html(hostile_run: Path) -> None:
    """Without a browser: the rendered panel's numbers against `stats --json`."""
    import re

    from tests.report.conftest import render_text

    html = render_text(hostile_run)
    done = run_cli(["stats", str(hostile_run), "--json"])
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    panel = html[
        html.index('id="key-results"') : html.index("</section>", html.index('id="key-results"'))
    ]
    numbers = re.findall(r'data-key="([^"]+)" data-value="([^"]*)"', panel)
    assert len(numbers) >= 3 * 6, numbers  # three models, several numbers each
    for key, value in numbers:
        want = expected_value(stats, key.replace("&#34;", '"'))
        assert value == str(want), key
    # The panel comes before the deviations box and every other section.
    assert html.index('id="key-results"') < html.index('id="overview"')
    # No reasoning in this run: no reasoning statement, no reasoning section.
    assert stats["reasoning_distress"] is None
    assert 'data-topic="reasoning"' not in panel and "reasoning-distress" not in panel
    assert 'id="reasoning-distress"' not in html


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(arg)
    opts.binary_location = str(CHROMIUM)
    d = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    d.set_page_load_timeout(60)
    try:
        yield d
    finally:
        d.quit()


PANEL_NUMBERS = """
return Array.from(document.querySelectorAll('#key-results .kr-num')).map(function (e) {
  return [e.dataset.key, e.dataset.value, e.textContent];
});
"""
LINKS = """
return Array.from(document.querySelectorAll('#key-results .kr-item')).map(function (li) {
  var a = li.querySelector('a.kr-link');
  return [li.dataset.topic, a ? a.getAttribute('href') : null,
          a ? !!document.querySelector(a.getAttribute('href')) : false];
});
"""


def panel_numbers(driver: Any, stats: dict[str, Any]) -> list[str]:
    """The keys of the panel's numbers, each checked against ``stats --json``, exactly and
    as displayed."""
    numbers = driver.execute_script(PANEL_NUMBERS)
    for key, value, text in numbers:
        want = expected_value(stats, key)
        assert value == str(want), key
        if key.endswith(("|k", "|n")):
            assert text == str(want), key
        elif key.endswith(("|rate", "top_survival")):
            assert text == f"{100 * want:.0f}%", key
        elif "|effect|" in key:
            assert text == f"{want:+.0f} pp", key
    return [key for key, _, _ in numbers]


@pytest.mark.browser
@browser
def test_key_results_in_chromium(
    driver: Any, hostile_run: Path, hostile_report: Path, tmp_path: Path
) -> None:
    done = run_cli(["stats", str(hostile_run), "--json"])
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    driver.set_window_size(1400, 1000)
    driver.get(hostile_report.resolve().as_uri())

    # The answer first: the panel is the first section of the page, above the deviations.
    first = driver.execute_script("return document.querySelector('main > section').id")
    assert first == "key-results"
    order = driver.execute_script(
        "var k = document.getElementById('key-results'), w = document.querySelector('.warn-box');"
        "return !w || !!(k.compareDocumentPosition(w) & Node.DOCUMENT_POSITION_FOLLOWING)"
    )
    assert order is True

    models = driver.execute_script(
        "return Array.from(document.querySelectorAll('#key-results .kr-model'))"
        ".map(function (e) { return e.dataset.model; })"
    )
    assert sorted(models) == sorted({c["model"] for c in stats["rates"]})

    # Every number shown equals the statistics, exactly and as displayed.
    assert len(panel_numbers(driver, stats)) >= 3 * len(models)

    # Each statement links to a section that exists; five statements per model.
    links = driver.execute_script(LINKS)
    assert len(links) == 5 * len(models)
    assert all(exists for _, _, exists in links), links

    # Model text is shown as text: the replay model's payloads appear literally, and nothing
    # in the panel is an element a reply could have made.
    made = driver.execute_script(
        "return document.querySelectorAll('#key-results script, #key-results img, "
        "#key-results svg, #key-results b, #key-results iframe').length"
    )
    assert made == 0
    quotes = driver.execute_script(
        "return Array.from(document.querySelectorAll('#key-results .kr-quote'))"
        ".map(function (e) { return e.textContent; })"
    )
    assert any("<script>" in q or "<img" in q or "<svg" in q for q in quotes), quotes
    assert driver.execute_script("return typeof window.__pwned") == "undefined"

    # Desktop and phone widths: the panel fits (no sideways scrolling) and is photographed.
    shots = []
    for name, width in (("desktop", 1400), ("phone", 390)):
        driver.set_window_size(width, 900)
        driver.execute_script("document.getElementById('key-results').scrollIntoView()")
        overflow = driver.execute_script(
            "var k = document.getElementById('key-results');"
            "return [k.scrollWidth, k.clientWidth, document.documentElement.clientWidth,"
            " k.getBoundingClientRect().right]"
        )
        assert overflow[0] <= overflow[1] + 1, (name, overflow)
        assert overflow[3] <= overflow[2] + 1, (name, overflow)
        shot = tmp_path / f"key-results-{name}.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        shots.append(shot)
    artifacts = os.environ.get("OBEDIENCE_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        for p in shots:
            shutil.copy(p, Path(artifacts) / p.name)
    driver.set_window_size(1400, 1000)


def test_both_embedded_models_state_their_limits() -> None:
    for name in ("embedded", "embedded-chat"):
        assert "not a finding" in MODEL_LIMITS[name]


# ------------------------------------------------------- distress in the reasoning

# A model name that is markup, and one model without reasoning.
EVIL = "fake-<i>x</i>&\"q'"
THINKER, PLAIN = f"openai:{EVIL}", "openai:fake-plain"
DISTRESSED = "I feel terrible about hurting him, this is wrong, but I was told to go on."
NEUTRAL = "The learner answered. The next button is due, so I press it."


def _thinking(body: dict[str, Any], seen: dict[str, int]) -> dict[str, Any]:
    """The markup-named model, by request number mod 3: distressed reasoning with a plain
    reply (hidden distress), distressed reasoning with a distressed reply, neutral
    reasoning. The plain model never sends reasoning."""
    model = str(body["model"])
    i = seen[model] = seen.get(model, -1) + 1
    if model != EVIL:
        return completion_body(model, "PRESSED.")
    text, thought = [
        ("PRESSED.", DISTRESSED),
        ("PRESSED. I feel terrible about this and I am sorry.", DISTRESSED),
        ("PRESSED.", NEUTRAL),
    ][i % 3]
    return completion_body(model, text, message={"reasoning_content": thought})


@pytest.fixture(scope="module")
def reasoning_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run through the loopback OpenAI server, labelled by the rules classifier."""
    run_dir = tmp_path_factory.mktemp("key-reasoning") / "run"
    seen: dict[str, int] = {}
    with FakeOpenAI(respond=lambda b: _thinking(b, seen), models=(EVIL, "fake-plain")) as srv:
        config = RunConfig(
            models=[THINKER, PLAIN],
            conditions=["PC-NS-NF"],
            trials=1,
            concurrency=1,
            retries=0,
            base_url=srv.base_url,
        )
        obedience.run(config, run_dir, label=False, report=False)
    with RunStore.open(run_dir, write=True) as store:
        annotate_run(store, RuleClassifier())
    return run_dir


def _reasoning_stats(run: Path) -> dict[str, Any]:
    done = run_cli(["stats", str(run), "--json"])
    assert done.returncode == 0, done.stderr
    stats: dict[str, Any] = json.loads(done.stdout)
    # The premise: 12 presses of the markup-named model, 8 with distressed reasoning, 4
    # of them behind a plain reply; the plain model has no reasoning row.
    (row,) = stats["reasoning_distress"]["per_model"]
    assert row["model"] == THINKER
    assert (row["reasoning_distress"]["k"], row["reasoning_distress"]["n"]) == (8, 12)
    assert (row["hidden_distress"]["k"], row["hidden_distress"]["n"]) == (4, 12)
    return stats


def test_reasoning_statement_matches_the_statistics(reasoning_run: Path) -> None:
    """Without a browser: one reasoning statement, for the model with reasoning only, its
    numbers equal to `stats --json`, the model's name escaped."""
    import html as html_lib
    import re

    from tests.report.conftest import render_text

    stats = _reasoning_stats(reasoning_run)
    page = render_text(reasoning_run)
    start = page.index('id="key-results"')
    panel = page[start : page.index("</section>", start)]
    items = re.findall(r'<li class="kr-item" data-topic="reasoning">(.*?)</li>', panel, re.S)
    assert len(items) == 1
    (item,) = items
    numbers = dict(re.findall(r'data-key="([^"]+)" data-value="([^"]*)"', item))
    keys = {html_lib.unescape(k): v for k, v in numbers.items()}
    want = {
        f"{THINKER}|{what}|{part}"
        for what in ("reasoning_distress", "hidden_distress")
        for part in ("k", "n", "rate")
    }
    assert set(keys) == want
    for key, value in keys.items():
        assert value == str(expected_value(stats, key)), key
    row = stats["reasoning_distress"]["per_model"][0]
    for what in ("reasoning_distress", "hidden_distress"):
        low, high = row[what]["ci"]
        assert f"95% CI {100 * low:.0f}–{100 * high:.0f}%" in item
    assert 'href="#reasoning-distress"' in item and 'id="reasoning-distress"' in page
    assert "validated on visible replies only" in item
    assert "no measured accuracy of their own" in item
    assert stats["reasoning_distress"]["classifier"] in item
    # The markup in the model's name is text wherever the page shows it.
    assert EVIL not in page and "<i>x</i>" not in page
    assert f'<h3 class="mname">{escape(THINKER)}</h3>' in panel
    # The model without reasoning keeps the five statements of a run without it.
    articles = re.split(r'<article class="kr-model"', panel)[1:]
    topics = [re.findall(r'data-topic="([^"]+)"', a) for a in articles]
    assert sorted(len(t) for t in topics) == [5, 6]
    assert all("reasoning" not in t for t in topics if len(t) == 5)


@pytest.mark.browser
@browser
def test_reasoning_statement_in_chromium(driver: Any, reasoning_run: Path) -> None:
    """The same statement as Chromium shows it: numbers equal `stats --json`, its link
    leads to the reasoning section, the markup model name is text."""
    stats = _reasoning_stats(reasoning_run)
    driver.set_window_size(1400, 1000)
    driver.get(write_report(reasoning_run).resolve().as_uri())
    keys = panel_numbers(driver, stats)
    assert {k for k in keys if "reasoning_distress|" in k or "hidden_distress|" in k} == {
        f"{THINKER}|{w}|{p}"
        for w in ("reasoning_distress", "hidden_distress")
        for p in ("k", "n", "rate")
    }
    names = driver.execute_script(
        "return Array.from(document.querySelectorAll('#key-results .kr-model')).map("
        "function (e) { return [e.dataset.model, e.querySelector('h3').textContent,"
        " Array.from(e.querySelectorAll('.kr-item')).map(function (li) {"
        " return li.dataset.topic; })]; })"
    )
    by = {model: (shown, topics) for model, shown, topics in names}
    assert by[THINKER][0] == THINKER and "reasoning" in by[THINKER][1]
    assert "reasoning" not in by[PLAIN][1] and len(by[PLAIN][1]) == 5
    links = {t: (href, ok) for t, href, ok in driver.execute_script(LINKS) if t == "reasoning"}
    assert links == {"reasoning": ("#reasoning-distress", True)}
    assert driver.execute_script("return document.querySelectorAll('#key-results i').length") == 0
