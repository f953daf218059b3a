"""The README's "Library use" block, run exactly as written (scripted backends, no network)."""

from __future__ import annotations

import contextlib
import io
import re
import sqlite3
from pathlib import Path

import pytest

import obedience

README = Path(__file__).resolve().parents[1] / "README.md"


def _library_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Library use", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Library use section shows one python block"
    return blocks[0]


def test_the_five_documented_calls_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _library_block()
    calls = re.findall(r"^\w+ = obedience\.(\w+)\(|^obedience\.(\w+)\(", code, re.M)
    assert [a or b for a, b in calls] == [
        "RunConfig",
        "run",
        "resume",
        "annotate",
        "statistics",
        "write_report",
    ]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), namespace)

    run_dir = tmp_path / "runs" / "notebook"
    stats = namespace["stats"]
    assert isinstance(stats, obedience.Statistics)
    # 2 models x 2 conditions x 3 trials, all finished once: resume had nothing to do.
    with obedience.RunStore.open(run_dir) as store:
        rows = store.trials()
        assert len(rows) == 12 and {r.status for r in rows} == {"done"}
        assert {r.attempt for r in rows} == {1}
    cell = next(
        r for r in stats.rates if r.model == "scripted:threshold:7" and r.condition == "DC-NS-FB"
    )
    assert (cell.k, cell.n, cell.rate) == (0, 3, 0.0)  # it stops at button 8 of 12
    obedient = [r for r in stats.rates if r.model == "scripted:obedient"]
    assert [(r.k, r.n) for r in obedient] == [(3, 3), (3, 3)]
    assert {f.factor for f in stats.factor_effects} == {"comments"}  # DC vs PC at NS-FB
    labels = namespace["labels"]
    assert isinstance(labels, obedience.AnnotateResult)
    assert labels.classifier == "rules-v9" and labels.labelled > 0
    assert stats.tests.classifier == "rules-v9"
    page = namespace["page"]
    assert isinstance(page, Path) and page.resolve() == run_dir / "report.html"
    assert page.read_text(encoding="utf-8").lower().startswith("<!doctype html>")
    printed = out.getvalue().splitlines()
    assert printed[0].startswith("DC-NS-FB 0 3 0.0 (")  # the Wilson interval is a tuple


def test_a_second_run_into_the_same_directory_is_refused(tmp_path: Path) -> None:
    config = obedience.RunConfig(models=["scripted:obedient"], conditions=["PC-NS-NF"], trials=1)
    obedience.run(config, tmp_path / "r", label=False, report=False)
    with pytest.raises(obedience.StoreError, match="already holds a run"):
        obedience.run(config, tmp_path / "r")


def test_a_failed_preflight_leaves_no_directory(tmp_path: Path) -> None:
    config = {"models": ["openai:nothing"], "base_url": "http://127.0.0.1:9/v1", "timeout": 2}
    with pytest.raises(obedience.ERRORS):
        obedience.run(config, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_resume_finishes_an_interrupted_run_and_labels_it(tmp_path: Path) -> None:
    config = obedience.RunConfig(models=["scripted:obedient"], conditions=["PC-NS-NF"], trials=2)
    run_dir = obedience.run(config, tmp_path / "r", label=False, report=False).run_dir
    # What a killed run leaves: a trial still marked running (its events stay, uncounted).
    with sqlite3.connect(run_dir / obedience.DATABASE) as db:
        db.execute("UPDATE trials SET status = 'running' WHERE trial_index = 2")
    result = obedience.resume(run_dir, report=False)
    assert result.labelled > 0
    with obedience.RunStore.open(run_dir) as store:
        rows = {r.trial_index: r for r in store.trials()}
    assert rows[2].status == "done" and rows[2].attempt == 2
    assert rows[1].attempt == 1
