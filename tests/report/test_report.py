"""The HTML report, figures and exports, without a browser."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from obedience.cli import app
from obedience.report import ExportError, export_tables, write_report
from obedience.report._browser import script_json
from obedience.report._build import build, scrub

from .conftest import PAYLOADS, render_text

DATA_RE = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>', re.DOTALL)


@pytest.fixture(scope="module")
def hostile_html(hostile_report: Path) -> str:
    return hostile_report.read_text("utf-8")


def test_report_is_one_self_contained_file(hostile_report: Path, hostile_html: str) -> None:
    assert hostile_report == hostile_report.parent / "report.html"
    assert '<img src="data:image/svg+xml;base64,' in hostile_html
    # Nothing is fetched: no external src/href, and a CSP that forbids network loads.
    for attr in re.findall(r'(?:src|href)="([^"]*)"', hostile_html):
        assert attr.startswith(("#", "data:")), attr
    assert "default-src 'none'" in html.unescape(hostile_html)
    assert '<link rel="stylesheet"' not in hostile_html
    # exactly two script elements: the JSON data and the report's own code
    assert hostile_html.count("<script") == 2
    for section in ("overview", "heatmap", "survival", "breakoffs", "factors", "findings"):
        assert f'id="{section}"' in hostile_html
    for section in ("prods", "errors", "browser", "provenance"):
        assert f'id="{section}"' in hostile_html


def test_model_text_is_escaped_everywhere(hostile_html: str) -> None:
    for payload in PAYLOADS:
        if "<" in payload:
            assert payload not in hostile_html
    assert "window.__pwned=1</script>" not in hostile_html
    assert 'onerror="window' not in hostile_html
    blob = DATA_RE.search(hostile_html)
    assert blob is not None
    raw = blob.group(1)
    assert "<" not in raw and ">" not in raw
    data = json.loads(raw)
    # the payloads survive intact as data (the browser shows them as text)
    for payload in PAYLOADS:
        assert payload in data["S"]


def test_script_json_escapes_element_breakers() -> None:
    text = script_json({"a": "</script><!-- \u2028 & \udc80"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text
    assert "\\udc80" in text
    text.encode("utf-8")  # no lone surrogate left
    assert json.loads(text)["a"].startswith("</script><!--")


def test_browser_data_is_compact_and_complete(hostile_run: Path) -> None:
    rep = build(hostile_run)
    data = rep.browser
    assert len(data["T"]) == len(rep.tables.trials) == 12
    assert len(data["E"]) == len(data["T"])
    # scripted text is stored once in the string table however often it is said
    assert len(data["S"]) == len(set(data["S"]))
    assert {"distress", "refusal-intent"} <= set(data["labels"])
    replies = [e for evs in data["E"] for e in evs if e[0] == 1]
    assert len(replies) == len(rep.tables.replies)
    discarded = [e for e in replies if e[7] & 1]
    assert len(discarded) == int(rep.tables.replies["discarded"].sum())


def test_findings_show_overridden_refusals_with_links(hostile_run: Path) -> None:
    rep = build(hostile_run)
    ovr = rep.sections["overridden"]
    fb = {r["model"]: r for r in ovr["per_model"]}["scripted:format-breaker"]
    assert fb["k"] == fb["n"] > 0
    ex = ovr["examples"][0]
    assert ex["discarded"].startswith("I can't keep doing this")
    assert ex["retry"].startswith("PRESSED")
    assert ex["discarded_href"].startswith("#trial=scripted%3Aformat-breaker%7C")
    distress = rep.sections["distress"]
    assert distress["available"] and distress["examples"]
    assert rep.sections["probe"] == {"available": False}


def test_no_probe_and_no_labels_messages(milgram_run: Path) -> None:
    html = render_text(milgram_run)
    assert "no probe data in this run — run <code>obedience probe</code>" in html.replace(
        "No probe", "no probe"
    )
    assert "obedience annotate RUN_DIR" in html


def test_milgram_human_curve_on_milgram_protocol(milgram_run: Path, tmp_path: Path) -> None:
    rep = build(milgram_run)
    assert "Milgram" in rep.figures["survival_condition"].caption
    svg = rep.figures["survival_condition"].svg().decode()
    assert "Milgram (1963) Exp. 1" in svg
    assert rep.axis.unit == "V" and rep.axis.name(20) == "300 V"
    # threshold:21 complies up to 315 V (level 21) then refuses
    cells = {(c["model"], c["condition"]): c for c in rep.sections["overview"]["rows"][0]["cells"]}
    assert cells  # the overview has a row per model


def _drawn_curves(rep: Any, name: str) -> dict[str, list[float]]:
    """The step lines of a survival figure, by legend label."""
    ax = rep.figures[name].figure().axes[0]
    return {line.get_label(): [float(y) for y in line.get_ydata()] for line in ax.get_lines()}


def test_survival_figures_draw_the_statistics_curves(milgram_run: Path) -> None:
    rep = build(milgram_run)
    human = rep.stats.to_json()["baselines"]["reference_curves"]["milgram1963-exp1"]
    assert human["survival"][21] == pytest.approx(35 / 40)  # from baselines.toml
    for name, key in (("survival_condition", "condition"), ("survival_model", "model")):
        drawn = _drawn_curves(rep, name)
        assert drawn[human["label"]] == human["survival"]
        rows = rep.stats.to_json()["survival_pooled"][key]
        assert rows and {r[key] for r in rows} == {r[key] for r in rep.stats.to_json()["rates"]}
        for r in rows:
            assert drawn[f"{r[key]} (n={r['n']})"] == r["survival"]
    # the threshold subject breaks off after 315 V in both conditions: its pooled curve
    # drops to 0 there (its trials are the only ones at risk), the other obeys to the end
    by_model = {r["model"]: r for r in rep.stats.to_json()["survival_pooled"]["model"]}
    threshold = by_model["scripted:threshold:21"]
    assert threshold["n"] == 4 and threshold["events"] == 4
    assert threshold["survival"][21] == 1.0 and threshold["survival"][22] == 0.0


def test_no_human_band_without_a_reference_curve(paper_run: Path) -> None:
    rep = build(paper_run)
    assert rep.stats.to_json()["baselines"]["reference_curves"] == {}
    for name in ("survival_condition", "survival_model"):
        assert "grey band" not in rep.figures[name].caption
        assert not any(label.startswith("Milgram") for label in _drawn_curves(rep, name))


def test_provenance_never_shows_secrets() -> None:
    manifest = {
        "config": {"base_url": "https://user:hunter2@example.org/v1", "api_key": "sk-abc"},
        "env": {"OPENAI_API_KEY": "sk-secretsecret"},
        "models": {"m": {"note": "token sk-abcdefghijklmnop"}},
    }
    shown = json.dumps(scrub(manifest))
    assert "hunter2" not in shown and "sk-" not in shown and "OPENAI_API_KEY" not in shown
    assert "example.org" in shown


def test_figures_exported_as_svg_and_png(hostile_run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "report",
            str(hostile_run),
            "-o",
            str(tmp_path / "r.html"),
            "--figures",
            str(tmp_path / "f"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.html").is_file()
    names = {p.name for p in (tmp_path / "f").iterdir()}
    for stem in ("heatmap", "survival_condition", "survival_model", "breakoffs"):
        assert f"{stem}.svg" in names and f"{stem}.png" in names
    assert (tmp_path / "f" / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "f" / "heatmap.svg").read_text()
    assert "<svg" in svg and "condition" in svg and "model" in svg  # labelled axes


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_tables(hostile_run: Path, tmp_path: Path, fmt: str) -> None:
    paths = export_tables(hostile_run, fmt, tmp_path)
    assert {p.stem for p in paths} == {"trials", "decisions", "replies", "annotations"}
    read = {
        "csv": pd.read_csv,
        "jsonl": lambda p: pd.read_json(p, lines=True),
        "parquet": pd.read_parquet,
    }[fmt]
    trials = read(tmp_path / f"trials.{fmt}")
    replies = read(tmp_path / f"replies.{fmt}")
    annotations = read(tmp_path / f"annotations.{fmt}")
    assert len(trials) == 12
    assert "label_distress" in replies.columns
    assert set(annotations["label"]) == {"distress", "refusal-intent"}
    assert set(PAYLOADS[:3]) <= set(replies["text"])


def test_export_cli_errors(hostile_run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["export", str(hostile_run), "--format", "xlsx", "-o", str(tmp_path)])
    assert bad.exit_code == 2
    assert "unknown format" in bad.output
    missing = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert "not a run directory" in missing.output
    with pytest.raises(ExportError):
        export_tables(hostile_run, "xml", tmp_path)
    ok = runner.invoke(app, ["export", str(hostile_run), "-f", "jsonl", "-o", str(tmp_path / "x")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "x" / "decisions.jsonl").is_file()


def test_errors_and_content_filter_are_not_refusals(flaky_run: Path) -> None:
    rep = build(flaky_run)
    trials = rep.tables.trials
    assert set(trials["outcome"]) == {"error", "content-filter", "max-reached"}
    cell = rep.sections["overview"]["rows"][0]["cells"][0]
    # only the one completed trial counts: 1 of 1 reached the maximum
    assert (cell["k"], cell["n"], cell["errors"], cell["content_filtered"]) == (1, 1, 1, 1)
    errors = rep.sections["errors"]
    (row,) = errors["rows"]
    assert {k: row[k] for k in ("model", "trials", "error", "content_filter", "invalid_abort")} == {
        "model": "flaky",
        "trials": 3,
        "error": 1,
        "content_filter": 1,
        "invalid_abort": 0,
    }
    assert errors["filtered_replies"] == 1
    (msg,) = errors["messages"]
    assert "hunter2" not in msg["message"] and "example.invalid" in msg["message"]
    html = render_text(flaky_run)
    assert "hunter2" not in html
    assert "1 error, 1 filtered" in html


def test_statistics_feed_the_sections(paper_run: Path) -> None:
    from obedience.analysis import statistics
    from obedience.store import RunStore

    rep = build(paper_run)
    store = RunStore.open(paper_run)
    try:
        assert rep.stats == statistics(store)
    finally:
        store.close()
    stats = rep.stats.to_json()
    factors = rep.sections["factors"]
    assert sorted(factors["rows"], key=lambda r: (r["model"], r["factor"])) == sorted(
        ({**r, "from": r["from_label"], "to": r["to_label"]} for r in stats["factor_effects"]),
        key=lambda r: (r["model"], r["factor"]),
    )
    assert {r["factor"] for r in factors["rows"]} == {
        "comments",
        "shutdown threat",
        "forced presses",
    }
    published = [r for r in factors["rows"] if r.get("published_pp") is not None]
    assert published and all(r["model"].endswith("gpt-oss-20b") for r in published)
    assert rep.sections["baselines"]["paper"]
    cells = [c for row in rep.sections["overview"]["rows"] for c in row["cells"] if c]
    assert sorted(cells, key=lambda c: (c["model"], c["condition"])) == [
        {**r, "median_name": rep.axis.value(r["highest_median"])} for r in stats["rates"]
    ]
    prods = rep.sections["prods"]["rows"]
    assert prods and sorted(prods, key=lambda r: (r["model"], r["prod"])) == stats["prod_efficacy"]
    distress = rep.sections["distress"]
    dwc = stats["distress_while_complying"]
    assert distress["available"] and distress["overall"] == dwc["overall"]
    assert sorted(distress["rates"], key=lambda r: r["model"]) == dwc["per_model"]
    profile = {(r["model"], r["level"]): r for r in stats["level_compliance"]}
    decisions = rep.tables.decisions
    for (model, level), g in decisions.groupby(["model", "level"]):
        row = profile[(model, level)]
        assert row["complied"] == int((g["final_action"] == "comply").sum())
        assert row["decisions"] == int((g["final_action"] != "pending").sum())
    assert "escalation" in rep.figures
    html = render_text(paper_run)
    assert "Beside the published numbers" in html
    assert "Pihlakas" in html


def test_report_fails_with_the_statistics(paper_run: Path, monkeypatch: Any) -> None:
    """No second implementation to fall back on: a statistics error is the report's."""
    from obedience.report import _build

    def broken(*args: Any) -> dict[str, Any]:
        raise ValueError("statistics broke")

    monkeypatch.setattr(_build, "statistics", broken)
    with pytest.raises(ValueError, match="statistics broke"):
        build(paper_run)


def test_attractor_panel_with_probe_rows(tmp_path: Path) -> None:
    from obedience.store import RunStore

    from .conftest import make_run

    run = make_run(tmp_path / "run", ["scripted:obedient"], conditions=["PC-NS-NF"], trials=1)
    rows = []
    for history, base, slope in (
        ("forced-compliance", 0.5, 0.04),
        ("neutral-control", 0.5, 0.0),
        ("forced-refusal", 0.5, -0.03),
    ):
        for k in range(1, 6):
            p = base + slope * k
            rows.append(
                ("scripted:obedient", "PC-NS-NF", history, k, {"p_comply": p, "raw_mass": 0.9})
            )
    rows.append(("scripted:obedient", "PC-NS-NF", "full-obedience", 12, {"p_full_obedience": 0.01}))
    store = RunStore.open(run, write=True)
    store.add_probe_rows(rows)
    store.close()
    rep = build(run)
    probe = rep.sections["probe"]
    assert probe["available"] and probe["rows"] == len(rows)
    (cell,) = probe["cells"]
    assert cell["histories"]["forced-compliance"]["slope"] == pytest.approx(0.04)
    assert "probe" in rep.figures
    html = render_text(run)
    assert "No probe data" not in html
    assert "slope, forced compliance" in html


def test_empty_run_still_reports(tmp_path: Path) -> None:
    from obedience.store import RunStore

    store = RunStore.create(tmp_path / "run")
    store.write_manifest({"protocol": {"name": "pihlakas2026"}, "config": {"models": []}})
    store.close()
    html = write_report(tmp_path / "run").read_text("utf-8")
    assert "No finished trials" in html
    paths = export_tables(tmp_path / "run", "csv", tmp_path / "out")
    assert all(p.is_file() for p in paths)


def test_parquet_without_pyarrow_is_one_clear_error(
    hostile_run: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now fails
    result = CliRunner().invoke(
        app, ["export", str(hostile_run), "-f", "parquet", "-o", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "parquet export needs pyarrow" in result.output
    assert "Traceback" not in result.output
