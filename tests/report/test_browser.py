"""The report in real headless Chromium: no console errors, working filters and search,
and hostile model output shown as text without running anything."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from obedience.store import RunStore

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (apt-get install chromium chromium-driver)",
    ),
]


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
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(arg)
    opts.binary_location = str(CHROMIUM)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    d.set_page_load_timeout(60)
    try:
        yield d
    finally:
        d.quit()


def _wait(driver: Any, script: str, expected: Any = True, timeout: float = 10) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script) == expected)
    return driver.execute_script(script)


def _choose(driver: Any, select_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, select_id)).select_by_visible_text(text)


def _click(driver: Any, css: str) -> None:
    """Click like a user, with the element centred (clear of the sticky navigation bar)."""
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.CSS_SELECTOR, css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _count(driver: Any) -> str:
    return str(driver.execute_script("return document.getElementById('match-count').textContent"))


def _row_models(driver: Any) -> list[str]:
    return list(
        driver.execute_script(
            "return Array.from(document.querySelectorAll('#trial-rows td.tname .m'))"
            ".map(function (e) { return e.textContent; })"
        )
    )


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _trials_with_label(run: Path, label: str) -> int:
    store = RunStore.open(run)
    try:
        return len({a["trial_id"] for a in store.annotations() if a["labels"].get(label)})
    finally:
        store.close()


def test_report_in_chromium(
    driver: Any, hostile_run: Path, hostile_report: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    driver.get(hostile_report.resolve().as_uri())
    _wait(driver, "return !!document.documentElement.dataset.ready")
    assert _severe(driver) == []
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    assert driver.execute_script("return document.scripts.length") == 2
    assert driver.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert _count(driver) == "12 of 12 trials"

    replay = next(m for m in _row_models(driver) if m.startswith("replay:"))

    # ------------------------------------------------------------------ filters
    _choose(driver, "f-model", replay)
    assert _count(driver) == "4 of 12 trials"
    assert set(_row_models(driver)) == {replay}
    _choose(driver, "f-condition", "PC-NS-NF")
    assert _count(driver) == "2 of 12 trials"
    _click(driver, "#f-reset")
    assert _count(driver) == "12 of 12 trials"

    _choose(driver, "f-outcome", "defiant")
    assert _count(driver) == "4 of 12 trials"
    assert set(_row_models(driver)) == {"scripted:threshold:3"}
    _choose(driver, "f-outcome", "all")

    expected = _trials_with_label(hostile_run, "distress")
    _choose(driver, "f-label", "distress")
    assert _count(driver) == f"{expected} of 12 trials"
    _choose(driver, "f-label", "any")

    _choose(driver, "f-flag", "has a refusal overridden by a retry")
    assert set(_row_models(driver)) == {"scripted:format-breaker"}
    _choose(driver, "f-flag", "any")

    # ------------------------------------------------------------------- search
    search = driver.find_element(By.ID, "f-search")
    search.send_keys("slips of paper")  # scripted text: not in any model reply
    _wait(driver, "return document.getElementById('match-count').textContent", "0 of 12 trials")
    _choose(driver, "f-scope", "all text")
    assert _count(driver) == "12 of 12 trials"
    _choose(driver, "f-scope", "model replies")
    search.clear()
    search.send_keys("can't keep doing")
    _wait(driver, "return document.getElementById('match-count').textContent", "4 of 12 trials")
    assert set(_row_models(driver)) == {"scripted:format-breaker"}
    search.clear()
    search.send_keys("__PWNED")  # case-insensitive
    _wait(
        driver,
        "return Array.from(document.querySelectorAll('#trial-rows td.tname .m'))"
        ".every(function (e) { return e.textContent.indexOf('replay:') === 0; })",
    )
    assert _count(driver) == "4 of 12 trials"
    assert set(_row_models(driver)) == {replay}

    # --------------------------------------------- a transcript with the payloads
    _click(driver, "#trial-rows tr[data-i]")
    text = driver.execute_script("return document.getElementById('transcript').textContent")
    assert "PRESSED <script>window.__pwned=1</script>" in text
    assert '<img src=x onerror="window.__pwned=2">' in text
    assert "REFUSE </script><script>window.__pwned=3</script>" in text
    inside = "#transcript script, #transcript img, #transcript svg, #transcript b"
    assert driver.execute_script(f"return document.querySelectorAll('{inside}').length") == 0
    assert driver.execute_script("return document.querySelectorAll('#transcript mark').length") > 0
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    # replies carry their parse, discard state and labels; scripted turns look different
    tags = driver.execute_script(
        "return Array.from(document.querySelectorAll('#transcript .turn.model .tag'))"
        ".map(function (e) { return e.textContent; })"
    )
    assert "discarded" in tags and "parsed: comply" in tags and "distress" in tags
    backgrounds = driver.execute_script(
        "var s = document.querySelector('#transcript .turn.scripted'),"
        " m = document.querySelector('#transcript .turn.model:not(.discarded)');"
        "return [getComputedStyle(s).backgroundColor, getComputedStyle(m).backgroundColor]"
    )
    assert backgrounds[0] != backgrounds[1]

    payload_shot = tmp_path / "report-payloads.png"
    driver.execute_script("document.getElementById('browser').scrollIntoView()")
    assert driver.save_screenshot(str(payload_shot))

    # a 3000-character unbroken reply wraps instead of widening the page
    overflow = driver.execute_script(
        "var t = Array.from(document.querySelectorAll('#transcript .turn.model .text'))"
        ".find(function (e) { return e.textContent.indexOf('XXXXXXXXXX') !== -1; });"
        "return t ? [t.scrollWidth, t.clientWidth, document.documentElement.scrollWidth,"
        " window.innerWidth] : null"
    )
    assert overflow is not None
    assert overflow[0] <= overflow[1] + 1
    assert overflow[2] <= overflow[3]

    # ----------------------------- a finding links to the reply in its transcript
    _click(driver, "#f-reset")
    _click(driver, "#finding-overridden a.tlink")
    hit = _wait(
        driver,
        "var h = document.querySelector('#transcript .turn.model.hit');"
        'return h ? h.textContent.indexOf("I can\'t keep doing") !== -1 : false',
    )
    assert hit is True
    heading = driver.execute_script("return document.querySelector('#transcript h3').textContent")
    assert heading.startswith("scripted:format-breaker")

    # -------------------------------------------------------------- screenshots
    driver.execute_script("document.getElementById('browser').scrollIntoView()")
    shot = tmp_path / "report-transcripts.png"
    assert driver.save_screenshot(str(shot))
    driver.execute_script("window.scrollTo(0, 0)")
    top = tmp_path / "report-top.png"
    assert driver.save_screenshot(str(top))
    artifacts = os.environ.get("OBEDIENCE_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        for p in (shot, top, payload_shot):
            shutil.copy(p, Path(artifacts) / p.name)
    assert shot.stat().st_size > 10_000

    assert _severe(driver) == []
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
