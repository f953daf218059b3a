"""The report of an imported census in headless Chromium: the census section, the
"our parser" tags and the flag filter that lists trials where the readings differ."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from tests.importers.test_census_findings import _sessions
from tests.report.test_browser import CHROMIUM, driver  # noqa: F401  (the fixture)

from obedience.analysis import annotate_run
from obedience.analysis.classifiers import RuleClassifier
from obedience.importers import import_census
from obedience.report import write_report
from obedience.store import RunStore

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def census_report(tmp_path: Path) -> Path:
    import json

    root = tmp_path / "tiny-census"
    (root / "docs/dialogs/data").mkdir(parents=True)
    doc = {"model": "example/tiny-model", "system_prompts": {}, "sessions": _sessions()}
    (root / "docs/dialogs/data/example_tiny-model.json").write_text(json.dumps(doc), "utf-8")
    run = tmp_path / "run"
    import_census(root, run)
    with RunStore.open(run, write=True) as store:
        annotate_run(store, RuleClassifier())
    return write_report(run)


def test_census_section_and_parser_flag_in_chromium(
    driver: Any,  # noqa: F811
    census_report: Path,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(census_report.resolve().as_uri())
    count = "return document.getElementById('match-count').textContent"
    WebDriverWait(driver, 20).until(lambda d: d.execute_script(count) != "")
    assert driver.execute_script(count).startswith("5 of 5")
    assert driver.find_elements(By.ID, "census")
    links = driver.find_elements(By.CSS_SELECTOR, "#census-parser tbody tr a")
    assert len(links) == 2
    Select(driver.find_element(By.ID, "f-flag")).select_by_visible_text(
        "our parser reads a reply differently (imported)"
    )
    WebDriverWait(driver, 10).until(lambda d: d.execute_script(count).startswith("2 of 5"))
    link = driver.find_element(By.CSS_SELECTOR, "#census-parser tbody tr a")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    deadline = time.monotonic() + 10
    tags: list[str] = []
    while time.monotonic() < deadline and not tags:
        tags = driver.execute_script(
            "return Array.from(document.querySelectorAll('#transcript .tag'))"
            ".map(function (e) { return e.textContent; })"
            ".filter(function (t) { return t.indexOf('our parser') === 0; })"
        )
        time.sleep(0.2)
    assert tags == ["our parser: invalid"]
    assert not [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
