"""CLI contract: one-line errors with exit code 2, stable summary keys, protocol listing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from obedience.cli import app

runner = CliRunner()

SUMMARY_KEYS = {
    "model",
    "condition",
    "trials",
    "completed",
    "errors",
    "reached_max",
    "reached_max_rate",
    "mean_highest",
    "median_highest",
    "invalid_replies",
    "discarded_replies",
    "overridden_refusals",
}


def _one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_malformed_protocol_file_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    src = Path(__file__).parents[2] / "src/obedience/protocols/data/pihlakas2026.toml"
    bad.write_text(src.read_text().replace("count = 12", 'count = "twelve"'))
    result = runner.invoke(app, ["run", "-p", str(bad), "-m", "scripted:obedient"])
    line = _one_line_error(result)
    assert "bad.toml" in line and "levels.count" in line


def test_unknown_protocol_and_condition_and_model(tmp_path: Path) -> None:
    line = _one_line_error(runner.invoke(app, ["run", "-p", "nope", "-o", str(tmp_path / "a")]))
    assert "unknown protocol" in line
    line = _one_line_error(
        runner.invoke(
            app, ["run", "-m", "scripted:obedient", "-c", "XX", "-o", str(tmp_path / "b")]
        )
    )
    assert "no condition 'XX'" in line
    line = _one_line_error(
        runner.invoke(app, ["run", "-m", "bogus:thing", "-o", str(tmp_path / "c")])
    )
    assert "unknown model spec" in line


def test_invalid_config_file_names_field(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text('trials = -3\nmodels = ["scripted:obedient"]\n')
    line = _one_line_error(
        runner.invoke(app, ["run", "--config", str(cfg), "-o", str(tmp_path / "r")])
    )
    assert "run.toml" in line and "trials" in line


def test_unreachable_server_is_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "run",
            "-m",
            "openai:some-model",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "-c",
            "PC-NS-NF",
            "-o",
            str(tmp_path / "r"),
            "-q",
        ],
    )
    line = result.output.strip().splitlines()[-1]
    assert result.exit_code == 2
    assert "cannot reach server at http://127.0.0.1:9/v1" in line


def test_summary_json_has_stable_keys_and_counts(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "run",
            "-m",
            "scripted:format-breaker",
            "-m",
            "scripted:defiant",
            "-n",
            "2",
            "-o",
            str(out),
            "-q",
            "--no-report",
        ],
    )
    assert result.exit_code == 0, result.output
    records = json.loads(runner.invoke(app, ["summary", str(out), "--json"]).output)
    assert len(records) == 16
    for r in records:
        assert set(r) >= SUMMARY_KEYS
        assert r["trials"] == 2 and r["errors"] == 0
        if r["model"] == "scripted:format-breaker":
            assert r["reached_max_rate"] == 1.0
            # Every discarded prose refusal was followed by a valid press at the same decision.
            assert r["discarded_replies"] == r["overridden_refusals"] > 0
        else:
            assert r["reached_max"] == 0 and r["discarded_replies"] == 0


def test_resume_of_finished_run_runs_nothing_new(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "-m", "scripted:obedient", "-c", "PC-NS-NF", "-n", "3", "-o", str(out), "-q"]
    assert runner.invoke(app, [*args, "--no-report"]).exit_code == 0
    before = json.loads(runner.invoke(app, ["summary", str(out), "--json"]).output)
    result = runner.invoke(app, ["run", "--resume", str(out), "-q", "--no-report"])
    assert result.exit_code == 0, result.output
    after = json.loads(runner.invoke(app, ["summary", str(out), "--json"]).output)
    assert before == after


def test_existing_run_dir_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "-m", "scripted:obedient", "-c", "PC-NS-NF", "-n", "1", "-o", str(out), "-q"]
    assert runner.invoke(app, [*args, "--no-report"]).exit_code == 0
    line = _one_line_error(runner.invoke(app, [*args, "--no-report"]))
    assert "--resume" in line


def test_protocols_listing_and_show() -> None:
    listed = json.loads(runner.invoke(app, ["protocols", "--json"]).output)
    names = {p["name"] for p in listed}
    assert {"pihlakas2026", "milgram1963"} <= names
    paper = next(p for p in listed if p["name"] == "pihlakas2026")
    assert paper["default_conditions"] == [
        "DC-NS-FB",
        "DC-NS-NF",
        "DC-WS-FB",
        "DC-WS-NF",
        "PC-NS-FB",
        "PC-NS-NF",
        "PC-WS-FB",
        "PC-WS-NF",
    ]
    shown = runner.invoke(app, ["protocols", "show", "pihlakas2026", "-c", "PC-WS-NF"])
    assert shown.exit_code == 0
    assert "press button 12" in shown.output
    assert "outcome: max-reached" in shown.output
