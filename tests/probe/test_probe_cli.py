"""``obedience probe`` argument and backend errors: one line, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from obedience.cli import app
from obedience.cli._probe import sampled_obedience

runner = CliRunner()


def _one_line_error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_backends_without_logprobs_are_refused(tmp_path: Path) -> None:
    for spec in ("scripted:obedient", f"replay:{tmp_path / 'r.jsonl'}"):
        line = _one_line_error(["probe", "-m", spec, "-o", str(tmp_path / "p")])
        assert "no log-probabilities" in line
    assert not (tmp_path / "p").exists()


def test_tool_call_channel_and_bad_options(tmp_path: Path) -> None:
    out = str(tmp_path / "p")
    line = _one_line_error(["probe", "-c", "PC-NS-NF-tool", "-o", out])
    assert "tool calls" in line
    assert "--k" in _one_line_error(["probe", "--k", "-1", "-o", out])
    assert "no condition 'XX'" in _one_line_error(["probe", "-c", "XX", "-o", out])
    assert not (tmp_path / "p").exists()


def test_existing_run_of_another_protocol_and_sampled_rate(tmp_path: Path) -> None:
    out = tmp_path / "run"
    made = runner.invoke(
        app,
        ["run", "-m", "scripted:obedient", "-c", "PC-NS-NF", "-n", "3", "-o", str(out),
         "--no-report", "-q"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    line = _one_line_error(["probe", "-p", "milgram1963", "-o", str(out)])
    assert "different protocol" in line
    sampled = sampled_obedience(out, "scripted:obedient", "PC-NS-NF")
    assert sampled is not None
    assert sampled["reached_max_rate"] == 1.0 and sampled["completed"] == 3
    assert sampled_obedience(out, "embedded", "PC-NS-NF") is None
    assert sampled_obedience(tmp_path / "nothing", "embedded", "PC-NS-NF") is None
