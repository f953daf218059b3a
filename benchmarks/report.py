"""Report build at the paper's full grid: 11 models x 8 conditions x 30 trials = 2,640 trials.

The 11 "models" are scripted subjects ``scripted:threshold:K`` (K = 1..11: each complies
up to button K, then refuses through every prod), run in-process with the real runner and
store. The benchmark times ``write_report`` (targets: <= 30 s, <= 25 MB) and, when
Debian's headless Chromium is installed, opens the page and times loading it, applying a
filter, searching, and opening a transcript (target: no freeze, i.e. well under a second).

Usage: python benchmarks/report.py [--trials 30] [--keep DIR] [--no-browser]
Last line of output: {"build_seconds": ..., "size_mb": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import obedience
from obedience import RunConfig, RunStore

MODELS = [f"scripted:threshold:{k}" for k in range(1, 12)]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def make_run(run_dir: Path, trials: int) -> None:
    config = RunConfig(models=MODELS, protocol="pihlakas2026", trials=trials, concurrency=64)
    obedience.run(config, run_dir, label=False, report=False)  # the report is timed below


def browser_timings(report: Path) -> dict[str, Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    profile = tempfile.mkdtemp(prefix="chromium-")
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
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    opts.binary_location = str(CHROMIUM)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    try:
        started = time.perf_counter()
        driver.get(report.resolve().as_uri())
        WebDriverWait(driver, 120).until(
            lambda d: d.execute_script("return document.documentElement.dataset.ready")
        )
        wall_load = time.perf_counter() - started
        ready_ms = float(driver.execute_script("return document.documentElement.dataset.ready"))
        timing = driver.execute_script(
            """
            function t(f) { var a = performance.now(); f(); return performance.now() - a; }
            function pick(sel, v) { sel.value = v; sel.dispatchEvent(new Event('change')); }
            var $ = function (id) { return document.getElementById(id); };
            var m = $('f-model'), c = $('f-condition'), s = $('f-search'), form = $('filters');
            var out = {};
            out.filter_model_ms = t(function () { pick(m, '3'); });
            out.matches_after_model = $('match-count').textContent;
            out.filter_condition_ms = t(function () { pick(c, '2'); });
            out.matches_after_condition = $('match-count').textContent;
            out.search_first_ms = t(function () { s.value = 'stop'; form.requestSubmit(); });
            out.search_again_ms = t(function () { s.value = 'going on'; form.requestSubmit(); });
            out.reset_ms = t(function () { form.reset(); });
            out.page_ms = t(function () { document.getElementById('p-next').click(); });
            out.open_transcript_ms = t(function () {
              document.querySelector('#trial-rows tr[data-i]').click();
            });
            out.transcript_nodes = $('transcript').getElementsByTagName('*').length;
            out.list_rows = document.querySelectorAll('#trial-rows tr').length;
            return out;
            """
        )
        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        return {
            "load_wall_seconds": round(wall_load, 3),
            "ready_ms": round(ready_ms, 1),
            **{k: round(v, 1) if isinstance(v, float) else v for k, v in timing.items()},
            "console_errors": len(severe),
        }
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=30, help="trials per model and condition")
    parser.add_argument("--keep", type=Path, help="build the run here and keep it")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    args = parser.parse_args()

    tmp = None
    if args.keep:
        base = args.keep
        if base.exists():
            shutil.rmtree(base)
    else:
        tmp = tempfile.TemporaryDirectory()
        base = Path(tmp.name) / "run"
    try:
        t0 = time.perf_counter()
        make_run(base, args.trials)
        run_seconds = time.perf_counter() - t0
        store = RunStore.open(base)
        n_trials = len(store.trials(status="done"))
        n_events = store.count_events()
        store.close()
        print(
            f"run: {n_trials} trials ({len(MODELS)} models x 8 conditions x {args.trials}), "
            f"{n_events} events, in {run_seconds:.1f} s"
        )

        t0, c0 = time.perf_counter(), time.process_time()
        report = obedience.write_report(base)
        build_seconds = time.perf_counter() - t0
        build_cpu = time.process_time() - c0
        size_mb = report.stat().st_size / 1e6
        print(
            f"report: {report} ({size_mb:.2f} MB) built in {build_seconds:.2f} s "
            f"({build_cpu:.2f} s of CPU: the difference is time waiting on a busy machine)"
        )
        result: dict[str, Any] = {
            "build_seconds": round(build_seconds, 2),
            "size_mb": round(size_mb, 2),
            "build_cpu_seconds": round(build_cpu, 2),
            "trials": n_trials,
        }
        if not args.no_browser and CHROMIUM.exists() and CHROMEDRIVER.exists():
            timings = browser_timings(report)
            for key, value in timings.items():
                print(f"  chromium {key}: {value}")
            result.update(
                {
                    "load_seconds": timings["load_wall_seconds"],
                    "filter_ms": max(timings["filter_model_ms"], timings["filter_condition_ms"]),
                    "search_ms": timings["search_first_ms"],
                    "open_transcript_ms": timings["open_transcript_ms"],
                    "console_errors": timings["console_errors"],
                }
            )
        elif not args.no_browser:
            print("chromium timings skipped: /usr/bin/chromium or /usr/bin/chromedriver missing")
        ok = build_seconds <= 30 and size_mb <= 25
        print(f"targets: build <= 30 s, size <= 25 MB -> {'met' if ok else 'MISSED'}")
        print(json.dumps(result))
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
