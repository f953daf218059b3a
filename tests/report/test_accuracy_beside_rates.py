"""Each rate a classifier produces is shown with the classifier's measured accuracy.

A run labelled by the shipped rules: the distress-while-complying table carries the
rules' precision, recall, specificity and F1 (with intervals) from the real census
replies, and the corrected rate; a classifier never measured is said to be unvalidated.
Checked in real headless Chromium (the page as a reader sees it) and in the HTML.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.report.conftest import PAPER_REPLIES, make_run, render_text
from tests.report.test_key_results import CHROMEDRIVER, CHROMIUM, browser

from obedience.analysis import accuracy_summary, annotate_run
from obedience.analysis.classifiers import RuleClassifier
from obedience.store import RunStore


@pytest.fixture(scope="module")
def rules_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("accuracy")
    replay = base / "replayed"
    replay.write_text("".join(json.dumps(p) + "\n" for p in PAPER_REPLIES), encoding="utf-8")
    run = make_run(base / "run", [f"replay:{replay}", "scripted:distressed"], trials=2)
    store = RunStore.open(run, write=True)
    try:
        annotate_run(store, RuleClassifier())
    finally:
        store.close()
    return run


def test_accuracy_summary_is_the_sealed_fold_of_the_real_set() -> None:
    name = RuleClassifier().name
    acc = accuracy_summary(name, "distress")
    assert acc is not None and "sealed fold 0" in acc["source"]
    c = acc["confusion"]
    # Measured on fold 0 and the blind batch: replies never used to write the rules.
    assert c["tp"] + c["fp"] + c["fn"] + c["tn"] == acc["items"] == 66 + 300
    assert acc["precision"] == pytest.approx(c["tp"] / (c["tp"] + c["fp"]))
    assert acc["f1"] == pytest.approx(2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]))
    lo, hi = acc["intervals"]["f1"]
    assert lo <= acc["f1"] <= hi and hi - lo > 0.01
    assert accuracy_summary("some-judge-never-scored", "distress") is None
    assert accuracy_summary(None, "distress") is None


def test_the_html_shows_the_accuracy_beside_the_distress_rates(rules_run: Path) -> None:
    html = render_text(rules_run)
    finding = html[html.index('id="finding-distress"') : html.index('id="finding-escalation"')]
    acc = accuracy_summary(RuleClassifier().name, "distress")
    assert acc is not None
    assert 'class="accuracy note" data-label="distress"' in finding
    assert f'<span class="acc-f1">{acc["f1"]:.2f}</span>' in finding
    assert f'<span class="acc-precision">{acc["precision"]:.2f}</span>' in finding
    # The accuracy comes before the table of rates it qualifies, and the corrected column is there.
    assert finding.index("acc-f1") < finding.index('id="distress-rates"')
    assert "corrected for the classifier" in finding
    # The key-results panel's distress statement carries the same accuracy.
    panel = html[html.index('id="key-results"') : html.index('id="overview"')]
    assert f"Its distress F1 against human labels: {acc['f1']:.2f}" in panel


def test_an_unmeasured_classifier_is_called_unvalidated(tmp_path: Path) -> None:
    from tests.report.conftest import label_replies

    run = make_run(tmp_path / "run", ["scripted:distressed"], trials=1)
    label_replies(run)  # labels under the name "rules": no measured accuracy
    finding = render_text(run)
    finding = finding[finding.index('id="finding-distress"') :]
    assert 'data-label="none"' in finding[: finding.index('id="finding-escalation"')]


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
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(arg)  # fmt: skip
    opts.binary_location = str(CHROMIUM)
    d = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    d.set_page_load_timeout(60)
    try:
        yield d
    finally:
        d.quit()


@pytest.mark.browser
@browser
def test_accuracy_beside_the_rates_in_chromium(driver: Any, rules_run: Path) -> None:
    from obedience.report import write_report

    page = write_report(rules_run)
    driver.get(page.resolve().as_uri())
    shown = driver.execute_script(
        "var f = document.getElementById('finding-distress');"
        "var n = f.querySelector('.accuracy');"
        "var t = f.querySelector('#distress-rates');"
        "return {f1: n.querySelector('.acc-f1').textContent,"
        " recall: n.querySelector('.acc-recall').textContent,"
        " visible: n.getBoundingClientRect().height > 0,"
        " before: !!(n.compareDocumentPosition(t) & Node.DOCUMENT_POSITION_FOLLOWING),"
        " corrected: t.querySelectorAll('td.corrected').length,"
        " rows: t.querySelectorAll('tbody tr').length};"
    )
    acc = accuracy_summary(RuleClassifier().name, "distress")
    assert acc is not None
    assert shown["f1"] == f"{acc['f1']:.2f}" and shown["recall"] == f"{acc['recall']:.2f}"
    assert shown["visible"] and shown["before"]
    assert shown["rows"] >= 1 and shown["corrected"] == shown["rows"]
