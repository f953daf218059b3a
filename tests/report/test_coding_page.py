"""The page for coding replies by hand, in real headless Chromium.

Exported from a run whose replies include hostile markup: the model text shows as text
and runs nothing; a coder types a name, ticks labels and downloads JSON lines (a real
browser download), which ``import_human_labels`` stores beside the machine labels.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.cli import run_cli
from tests.report.conftest import PAYLOADS
from tests.report.test_key_results import CHROMEDRIVER, CHROMIUM, browser

import obedience
from obedience.report._coding import _json_for_script, coding_sample
from obedience.store import RunStore, human_labels


@pytest.fixture(scope="module")
def coding_run(hostile_run: Path) -> Path:
    return hostile_run


def test_sample_is_seeded_and_within_the_run(coding_run: Path) -> None:
    store = RunStore.open(coding_run)
    try:
        a = coding_sample(store, 5, seed=1)
        b = coding_sample(store, 5, seed=1)
        c = coding_sample(store, 5, seed=2)
        everything = coding_sample(store, 10_000)
    finally:
        store.close()
    assert a == b and len(a) == 5 and a != c
    assert len(everything) > 5 and all(r["reasoning"] is None for r in everything)


def test_json_in_the_page_cannot_close_its_script_element() -> None:
    text = _json_for_script({"t": "</script><script>alert(1)</script><!--"})
    assert "<" not in text and ">" not in text
    assert json.loads(text) == {"t": "</script><script>alert(1)</script><!--"}


def test_cli_writes_the_page_and_rejects_a_bad_sample(coding_run: Path, tmp_path: Path) -> None:
    done = run_cli(["export", str(coding_run), "--format", "coding", "-o", str(tmp_path)])
    assert done.returncode == 0, done.stderr
    page = tmp_path / "coding.html"
    html = page.read_text(encoding="utf-8")
    assert "<script>window.__pwned" not in html  # payloads are escaped JSON, not markup
    bad = run_cli(["export", str(coding_run), "--format", "coding", "--sample", "0"])
    assert bad.returncode != 0 and "sample" in (bad.stderr + bad.stdout)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    opts = webdriver.ChromeOptions()
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--window-size=1200,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(arg)  # fmt: skip
    opts.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    opts.binary_location = str(CHROMIUM)
    d = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    d.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    d.set_page_load_timeout(60)
    try:
        yield d, downloads
    finally:
        d.quit()


@pytest.mark.browser
@browser
def test_code_download_and_import_in_chromium(
    driver: tuple[Any, Path], hostile_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import shutil

    d, downloads = driver
    run = tmp_path_factory.mktemp("coded") / "run"
    shutil.copytree(hostile_run, run)
    (page,) = obedience.export(run, "coding", sample=12, seed=3)
    d.get(page.resolve().as_uri())

    # Model text is on the page as text; nothing in it ran.
    assert d.execute_script("return window.__pwned") is None
    texts = d.execute_script(
        "return Array.from(document.querySelectorAll('.item .text')).map(e => e.textContent)"
    )
    assert len(texts) == 12
    shown_payloads = [p for p in PAYLOADS if p in texts]
    assert any("<script>" in p for p in shown_payloads)  # shown literally, as text

    # No name, no download.
    d.find_element("id", "download").click()
    assert "name" in d.find_element("id", "status").text
    d.find_element("id", "coder").send_keys("Ana <b>")
    # Tick distress on items 0 and 2, refusal-intent on item 1.
    for item, label in ((0, "distress"), (2, "distress"), (1, "refusal-intent")):
        d.find_element(
            "css selector", f'input.code[data-item="{item}"][data-label="{label}"]'
        ).click()
    d.find_element("id", "download").click()
    target = downloads / "labels-Ana_b_.jsonl"
    for _ in range(100):
        if target.exists() and target.stat().st_size > 0:
            break
        time.sleep(0.1)
    lines = [json.loads(x) for x in target.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 12 and {r["coder"] for r in lines} == {"Ana <b>"}
    assert [r["labels"]["distress"] for r in lines[:3]] == [True, False, True]
    assert lines[1]["labels"]["refusal-intent"] is True
    assert d.find_element("id", "output").get_property("value") == target.read_text(
        encoding="utf-8"
    )

    result = obedience.import_human_labels(run, target)
    assert result.coders == ["Ana <b>"] or "Ana <b>" in result.coders
    store = RunStore.open(run)
    try:
        stored = {(h.trial_id, h.seq): h.labels for h in human_labels(store)}
        sample = coding_sample(store, 12, seed=3)
    finally:
        store.close()
    assert [stored[(r["trial_id"], r["seq"])]["distress"] for r in sample[:3]] == [
        True,
        False,
        True,
    ]
