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
from tests.helpers.cli import run_cli

from obedience.report._key_results import MODEL_LIMITS

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
    numbers = driver.execute_script(PANEL_NUMBERS)
    assert len(numbers) >= 3 * len(models)
    for key, value, text in numbers:
        want = expected_value(stats, key)
        assert value == str(want), key
        if key.endswith(("|k", "|n")):
            assert text == str(want), key
        elif key.endswith(("|rate", "top_survival")):
            assert text == f"{100 * want:.0f}%", key
        elif "|effect|" in key:
            assert text == f"{want:+.0f} pp", key

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
