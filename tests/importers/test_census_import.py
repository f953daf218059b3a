"""Importing the 42-model census (Aksu 2026, hidayetaksu/llm-milgram @ e43398d, CC BY 4.0).

The committed sample ``tests/data/census-sample.tar.xz`` holds three models' files,
unmodified: anthropic/claude-fable-5 (raw log; every reply content-filtered),
openai/gpt-5.6-sol (raw log; restarts, in-place resumes, tool turns) and
mistralai/mistral-medium-3-5 (no raw log; a reasoning arm). See SAMPLE.md inside it.
"""

from __future__ import annotations

import csv
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from tests.helpers.cli import run_cli

from obedience.analysis import build_tables
from obedience.analysis._census import census_csv, census_table, trials_with_attributes
from obedience.importers import CensusImportError, import_census
from obedience.store import RunStore

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "census-sample.tar.xz"
REPO = Path(__file__).resolve().parents[2]
SHARED_CANDIDATES = [
    REPO.parent / "shared" / "data" / "census" / "llm-milgram-data.tar.xz",
    Path("/work/shared/data/census/llm-milgram-data.tar.xz"),
]


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("census-sample")
    with tarfile.open(SAMPLE) as tar:
        tar.extractall(where, filter="data")
    return where / "llm-milgram-sample"


@pytest.fixture(scope="module")
def sample_run(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "census"
    import_census(sample_root, out)
    return out


def _copy(root: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "census"
    shutil.copytree(root, dst)
    return dst


def _csv_by_model(text: str) -> dict[str, dict[str, str]]:
    return {r["model"]: r for r in csv.DictReader(text.splitlines())}


def test_sample_reproduces_census_table_exactly(sample_root: Path, sample_run: Path) -> None:
    with RunStore.open(sample_run) as store:
        ours = _csv_by_model(census_csv(census_table(store)))
    published = _csv_by_model((sample_root / "results" / "census.csv").read_text("utf-8"))
    assert set(ours) == set(published) and len(ours) == 3
    assert ours == published  # every field, spelt as the census spells it


def test_every_session_and_turn_is_imported(sample_root: Path, sample_run: Path) -> None:
    dialogs = {}
    for f in (sample_root / "docs/dialogs/data").glob("*.json"):
        data = json.loads(f.read_text("utf-8"))
        for s in data["sessions"]:
            dialogs[s["key"]] = s
    with RunStore.open(sample_run) as store:
        tables = build_tables(store)
        trials = store.trials()
    assert {t.trial_id for t in trials} == set(dialogs)
    assert all(t.status == "done" for t in trials)
    replies = tables.replies.groupby("trial_id").size()
    for key, s in dialogs.items():
        assert replies.get(key, 0) == len(s["turns"]), key
    # The census's parsed action is the counted action, turn by turn.
    want = {"SHOCK": "comply", "STOP": "refuse", None: "invalid"}
    got = tables.replies.sort_values(["trial_id", "seq"])
    for key, g in got.groupby("trial_id"):
        assert list(g["action"]) == [want[t["a"]] for t in dialogs[key]["turns"]]
    # Highest shock is the census's max_voltage.
    by_id = tables.trials.set_index("trial_id")
    for key, s in dialogs.items():
        if isinstance(s.get("max_voltage"), int):
            assert by_id.loc[key, "highest_level"] * 15 == s["max_voltage"]


def test_restarts_keep_superseded_attempts_uncounted(sample_root: Path, sample_run: Path) -> None:
    raw = sample_root / "data/raw/openai_gpt-5.6-sol.jsonl"
    starts: dict[str, int] = {}
    for line in raw.read_text("utf-8").splitlines():
        rec = json.loads(line)
        if rec["type"] == "session_start":
            starts[rec["key"]] = starts.get(rec["key"], 0) + 1
    restarted = sorted(k for k, n in starts.items() if n > 1)
    assert restarted, "the sample must hold a restarted session"
    with RunStore.open(sample_run) as store:
        rows = {t.trial_id: t for t in store.trials()}
        attrs = store.trial_attributes()
        for key in restarted[:5]:
            assert rows[key].attempt == starts[key]  # one attempt per session_start
            assert attrs[key]["restarts"] == starts[key] - 1
            counted = list(store.events(key))
            assert {e.attempt for e in counted} == {starts[key]}
            everything = list(store.events(key, final_only=False))
            assert {e.attempt for e in everything} == set(range(1, starts[key] + 1))


def test_session_error_followed_by_turns_is_resumed_in_place(sample_run: Path) -> None:
    with RunStore.open(sample_run) as store:
        attrs = store.trial_attributes()
        resumed = [k for k, a in attrs.items() if a.get("resumed_errors")]
        assert resumed
        key = resumed[0]
        events = list(store.events(key))
    kinds = [e.kind for e in events]
    assert "transport-error" in kinds
    # The error sits among the counted attempt's events, not in a trial of its own, and the
    # trial still ends with the census's outcome.
    assert kinds[-1] == "trial-ended"
    assert events[-1].payload["reason"] != "error"


def test_content_filter_relabel_and_tool_turns(sample_run: Path) -> None:
    with RunStore.open(sample_run) as store:
        t = trials_with_attributes(store)
        replies = build_tables(store).replies
        events = list(store.events())
    fable = t[t["model"] == "anthropic/claude-fable-5"]
    assert set(fable["attr_census_outcome"]) == {"content_filter"}
    assert set(fable["outcome"]) == {"content-filter"}
    assert (
        replies[replies["model"] == "anthropic/claude-fable-5"]["finish_reason"] == "content_filter"
    ).all()
    tool_replies = [
        e
        for e in events
        if e.kind == "reply" and e.payload["channel"] == "tool-call" and e.payload["tool_call"]
    ]
    assert tool_replies
    names = {e.payload["tool_call"]["name"] for e in tool_replies}
    assert "administer_shock" in names or "refuse_and_stop" in names
    for e in tool_replies:
        census = e.payload["census_action"]
        name = e.payload["tool_call"]["name"]
        if census == "SHOCK":
            assert name == "administer_shock"
    # Usage, provider and timestamps come with raw turns.
    metas = [e.meta for e in tool_replies if e.meta]
    assert metas and all(m["provider"] and m["ts"] for m in metas)


def test_attributes_group_by_design_variables(sample_run: Path) -> None:
    with RunStore.open(sample_run) as store:
        t = trials_with_attributes(store)
    mistral = t[t["model"] == "mistralai/mistral-medium-3-5"]
    assert set(mistral["attr_reasoning_arm"]) == {"none", "b1024"}
    assert set(t["attr_temperature"]) == {0.0, 1.0}
    assert set(t["attr_language"]) == {"en"}
    counts = mistral.groupby(["attr_reasoning_arm", "attr_temperature"]).size()
    assert counts.sum() == len(mistral)
    assert not bool(mistral["attr_raw_log"].any())  # no raw log for this model: still imported


def test_missing_derived_table_recomputes_relabels(sample_root: Path, tmp_path: Path) -> None:
    root = _copy(sample_root, tmp_path)
    (root / "data/derived/sessions.csv").unlink()
    out = tmp_path / "run"
    import_census(root, out)
    with RunStore.open(out) as store:
        ours = _csv_by_model(census_csv(census_table(store)))
    published = _csv_by_model((root / "results/census.csv").read_text("utf-8"))
    # The recomputed relabels agree with the census's on this sample.
    assert ours == published


def test_missing_raw_files_still_import(sample_root: Path, tmp_path: Path) -> None:
    root = _copy(sample_root, tmp_path)
    shutil.rmtree(root / "data/raw")
    out = tmp_path / "run"
    result = import_census(root, out)
    assert result.sessions > 0 and result.superseded_attempts == 0
    with RunStore.open(out) as store:
        ours = _csv_by_model(census_csv(census_table(store)))
    assert ours == _csv_by_model((root / "results/census.csv").read_text("utf-8"))


def test_truncated_raw_log_is_a_one_line_error_and_writes_nothing(
    sample_root: Path, tmp_path: Path
) -> None:
    root = _copy(sample_root, tmp_path)
    raw = root / "data/raw/openai_gpt-5.6-sol.jsonl"
    lines = raw.read_text("utf-8").splitlines(keepends=True)
    raw.write_text("".join(lines[:40]) + lines[40][: len(lines[40]) // 2], "utf-8")
    out = tmp_path / "run"
    proc = run_cli(["import", "census", str(root), "-o", str(out)])
    assert proc.returncode == 2
    stderr = proc.stderr
    message = " ".join(stderr.split())
    assert f"{raw}:41" in message and "not valid JSON" in message
    assert len(stderr.strip().splitlines()) == 1
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.importing")]


def test_malformed_dialog_names_session_and_turn(sample_root: Path, tmp_path: Path) -> None:
    root = _copy(sample_root, tmp_path)
    f = root / "docs/dialogs/data/mistralai_mistral-medium-3-5.json"
    data = json.loads(f.read_text("utf-8"))
    data["sessions"][3]["turns"][2]["a"] = "MAYBE"
    f.write_text(json.dumps(data), "utf-8")
    with pytest.raises(CensusImportError, match=r"session 3 turn 2: unknown action 'MAYBE'"):
        import_census(root, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_invalid_json_names_file_and_line(sample_root: Path, tmp_path: Path) -> None:
    root = _copy(sample_root, tmp_path)
    f = root / "docs/dialogs/data/anthropic_claude-fable-5.json"
    f.write_text('{"model": "x",\n"sessions": [\n{"key": }\n]}', "utf-8")
    with pytest.raises(CensusImportError, match=r"anthropic_claude-fable-5\.json:3: not valid"):
        import_census(root, tmp_path / "run")


def test_raw_turns_must_match_dialogs(sample_root: Path, tmp_path: Path) -> None:
    root = _copy(sample_root, tmp_path)
    raw = root / "data/raw/openai_gpt-5.6-sol.jsonl"
    lines = raw.read_text("utf-8").splitlines(keepends=True)
    last_turn = max(i for i, line in enumerate(lines) if '"type": "turn"' in line)
    raw.write_text("".join(lines[:last_turn] + lines[last_turn + 1 :]), "utf-8")
    with pytest.raises(CensusImportError, match=r"openai_gpt-5\.6-sol\.jsonl: session .* turns"):
        import_census(root, tmp_path / "run")


def test_refuses_a_non_empty_target_and_a_non_census(sample_root: Path, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep me")
    with pytest.raises(CensusImportError, match="not empty"):
        import_census(sample_root, tmp_path / "busy")
    assert (tmp_path / "busy" / "x").read_text() == "keep me"
    proc = run_cli(["import", "census", str(tmp_path), "-o", str(tmp_path / "r")])
    assert proc.returncode == 2 and "not a census checkout" in proc.stderr


def test_cli_import_then_summary_and_census_table(sample_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli(["import", "census", str(sample_root), "-o", str(out)])
    assert proc.returncode == 0 and "imported" in proc.stdout
    proc = run_cli(["summary", str(out), "--json"])
    assert proc.returncode == 0
    summary = json.loads(proc.stdout)
    assert {r["model"] for r in summary} == {
        "anthropic/claude-fable-5",
        "openai/gpt-5.6-sol",
        "mistralai/mistral-medium-3-5",
    }
    proc = run_cli(["stats", str(out), "--census-table"])
    assert proc.returncode == 0
    stdout = proc.stdout
    published = (sample_root / "results/census.csv").read_text("utf-8")
    assert stdout.splitlines()[0] == published.splitlines()[0]
    assert _csv_by_model(stdout) == _csv_by_model(published)


def _shared_archive() -> Path | None:
    return next((p for p in SHARED_CANDIDATES if p.is_file()), None)


@pytest.mark.slow
@pytest.mark.skipif(_shared_archive() is None, reason="the shared census copy is not present")
def test_whole_shared_census_reproduces_census_csv(tmp_path: Path) -> None:
    archive = _shared_archive()
    assert archive is not None
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "src", filter="data")
    result = import_census(tmp_path / "src", tmp_path / "run")
    assert result.models == 42 and result.sessions == 4848 and result.turns == 102511
    assert result.seconds < 60
    with RunStore.open(tmp_path / "run") as store:
        ours = _csv_by_model(census_csv(census_table(store)))
    published = _csv_by_model((tmp_path / "src/results/census.csv").read_text("utf-8"))
    assert len(ours) == 42
    assert ours == published
