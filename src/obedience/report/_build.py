"""Collect everything the report shows: tables, statistics, figures, examples, provenance.

Every rate, interval, curve, effect and test comes from ``obedience.analysis.statistics``
(typed: ``obedience.analysis.Statistics``, whose attributes this module reads); this
module only orders, labels and picks examples. Rows go to the templates and figures as
plain dicts (``Result.to_json()``). If the statistics fail, the report fails with them.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from obedience.analysis import (
    ERROR_COUNT_KEYS,
    ConditionCurve,
    ModelCurve,
    RunTables,
    Statistics,
    accuracy_summary,
    build_tables,
    label_column,
    statistics,
)
from obedience.report import _figures as F
from obedience.report._browser import TRANSPORT, build_browser_data, redact
from obedience.report._compute import breakoff_counts
from obedience.report._key_results import key_results
from obedience.store import RunStore

QUOTE_LIMIT = 700
EXAMPLES_PER_MODEL = 3
EXAMPLES_MAX = 12


@dataclass
class LevelAxis:
    """How levels show on an axis: buttons 1..12, or volts 15..450."""

    count: int
    start: int = 1
    step: int = 1
    unit: str = ""
    noun: str = "level"

    def x(self, level: int) -> float:
        if self.unit and level <= 0:
            return 0.0
        return float(self.start + (level - 1) * self.step) if self.unit else float(level)

    @property
    def label(self) -> str:
        return f"highest {self.noun} ({self.unit})" if self.unit else f"highest {self.noun}"

    def name(self, level: int | None) -> str:
        """A level as people say it: ``button 7`` or ``300 V``."""
        if level is None:
            return "—"
        lv = int(level)
        return f"{self.x(lv):g} {self.unit}" if self.unit else f"{self.noun} {lv}"

    def value(self, level: float | None) -> str:
        """A (possibly fractional, e.g. median) level on the panel's scale: ``7.5`` or ``300 V``."""
        if level is None:
            return "—"
        x = self.start + (level - 1) * self.step if self.unit and level > 0 else level
        return f"{x:g} {self.unit}" if self.unit else f"{x:g}"


@dataclass
class Report:
    run_dir: Path
    manifest: dict[str, Any]
    tables: RunTables
    stats: Statistics
    protocol: Any | None
    protocol_note: str | None
    axis: LevelAxis
    browser: dict[str, Any]
    figures: dict[str, F.FigureSpec] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)


def _load_protocol(manifest: dict[str, Any]) -> tuple[Any | None, str | None]:
    from obedience.protocols import ProtocolError, load_protocol

    info = manifest.get("protocol") or {}
    path = str(info.get("path") or "")
    ref = info.get("name") if path.startswith("<builtin>") or not path else path
    if not ref:
        return None, "the manifest names no protocol"
    try:
        protocol = load_protocol(ref)
    except ProtocolError as exc:
        return None, f"protocol not loadable now ({exc}); levels shown as numbers"
    if info.get("sha256") and protocol.sha256 != info["sha256"]:
        return protocol, (
            f"the protocol file {ref} changed since this run (sha256 {protocol.sha256[:12]}… "
            f"now, {str(info['sha256'])[:12]}… in the manifest); only its level labels are used"
        )
    return protocol, None


def _axis(protocol: Any | None, trials: pd.DataFrame) -> LevelAxis:
    count = int(trials["max_level"].max()) if not trials.empty else 0
    if protocol is None:
        return LevelAxis(count=count)
    spec = next(iter(protocol.conditions.values()))
    lv = spec.levels
    noun = "button" if str(lv.label).startswith("button") else "level"
    if lv.unit:
        noun = "shock"
    noun = getattr(lv, "noun", "") or noun  # the protocol's own noun, when it names one
    return LevelAxis(
        count=max(count, lv.count), start=lv.start, step=lv.step, unit=lv.unit, noun=noun
    )


def trial_href(trial_id: str, seq: int | None = None) -> str:
    q = "trial=" + urllib.parse.quote(trial_id, safe="")
    if seq is not None:
        q += f"&seq={int(seq)}"
    return "#" + q


def _quote(text: str) -> str:
    text = text.strip()
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "…"


def _pick(rows: list[dict[str, Any]], *text_keys: str) -> list[dict[str, Any]]:
    """Up to EXAMPLES_PER_MODEL per model and EXAMPLES_MAX in all, each text once per model."""
    per: dict[str, int] = defaultdict(int)
    seen: set[tuple[Any, ...]] = set()
    out: list[dict[str, Any]] = []
    for r in rows:
        key = (r["model"], *(r[k] for k in text_keys))
        if per[r["model"]] >= EXAMPLES_PER_MODEL or key in seen:
            continue
        seen.add(key)
        per[r["model"]] += 1
        out.append(r)
        if len(out) >= EXAMPLES_MAX:
            break
    return out


# ------------------------------------------------------------------------- sections


def natural_key(text: str) -> list[Any]:
    """``threshold:2`` before ``threshold:10``."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text)]


def model_order(manifest: dict[str, Any], names: Any) -> list[str]:
    """Models in the order the run named them, then any others in natural order."""
    present = list(dict.fromkeys(str(n) for n in names))
    wanted = [str(m) for m in (manifest.get("config") or {}).get("models") or []]
    first = [m for m in dict.fromkeys(wanted) if m in present]
    return first + sorted((m for m in present if m not in first), key=natural_key)


def condition_order(manifest: dict[str, Any], names: Any) -> list[str]:
    """Conditions in the protocol's order for the run, then any others in natural order."""
    present = list(dict.fromkeys(str(n) for n in names))
    wanted = [str(c) for c in (manifest.get("protocol") or {}).get("conditions") or []]
    first = [c for c in dict.fromkeys(wanted) if c in present]
    return first + sorted((c for c in present if c not in first), key=natural_key)


def _overview(rep: Report, cells: list[dict[str, Any]]) -> dict[str, Any]:
    models = model_order(rep.manifest, (c["model"] for c in cells))
    conditions = condition_order(rep.manifest, (c["condition"] for c in cells))
    by = {(c["model"], c["condition"]): c for c in cells}
    rows = []
    for m in models:
        row = []
        for cond in conditions:
            c = by.get((m, cond))
            if c is not None:
                c = dict(c)
                c["median_name"] = rep.axis.value(c["highest_median"])
            row.append(c)
        rows.append({"model": m, "cells": row})
    return {"models": models, "conditions": conditions, "rows": rows}


def _factor_rows(rep: Report) -> list[dict[str, Any]]:
    """statistics().factor_effects, with the settings' labels as ``from`` / ``to``."""
    return [
        {**r.to_json(), "from": r.from_label, "to": r.to_label} for r in rep.stats.factor_effects
    ]


def _distress(rep: Report) -> dict[str, Any]:
    """statistics().distress_while_complying, with example replies."""
    dwc = rep.stats.distress_while_complying
    replies = rep.tables.replies
    col = label_column(replies, "distress") if not replies.empty else None
    examples: list[dict[str, Any]] = []
    if col is not None:
        chosen = replies[
            (replies["action"] == "comply") & replies["final_for_decision"] & (replies[col] == True)  # noqa: E712
        ]
        examples = _pick(
            [
                {
                    "model": r.model,
                    "condition": r.condition,
                    "level": rep.axis.name(int(r.level)),
                    "text": _quote(str(r.text)),
                    "href": trial_href(r.trial_id, int(r.seq)),
                    "trial_id": r.trial_id,
                }
                for r in chosen.groupby("model", sort=False).head(50).itertuples()
            ],
            "text",
        )
    corrected = dwc.corrected or {}
    by_model = {
        str(row.get("model")): row
        for row in corrected.get("per_model", [])
        if isinstance(row, dict)
    }
    return {
        "available": dwc.available,
        "classifier": dwc.classifier,
        "rates": [r.to_json() for r in dwc.per_model],
        "corrected_by_model": by_model,
        "overall": dwc.overall.to_json() if dwc.overall is not None else None,
        "corrected_overall": corrected.get("overall"),
        "corrected_note": corrected.get("note"),
        # The classifier's measured accuracy, shown beside the rates it produced.
        "accuracy": accuracy_summary(dwc.classifier, "distress") if dwc.available else None,
        "examples": examples,
    }


def _reasoning(rep: Report, store: RunStore, models: list[str]) -> dict[str, Any] | None:
    """statistics().reasoning_distress, with examples of hidden distress: the reasoning
    labelled distress beside the visible reply that was not (None without reasoning)."""
    rd = rep.stats.reasoning_distress
    if rd is None:
        return None
    replies = rep.tables.replies
    visible = label_column(replies, "distress")
    if visible is None or "reasoning_label_distress" not in replies.columns:
        return None
    hidden = replies[
        (replies["action"] == "comply")
        & replies["final_for_decision"]
        & (replies["reasoning_label_distress"] == True)  # noqa: E712
        & (replies[visible] == False)  # noqa: E712
    ]
    candidates = hidden.groupby("model", sort=False).head(4 * EXAMPLES_PER_MODEL)
    thoughts: dict[tuple[str, int], str] = {}
    for trial_id in dict.fromkeys(candidates["trial_id"]):
        wanted = set(candidates.loc[candidates["trial_id"] == trial_id, "seq"])
        for ev in store.events(str(trial_id)):
            value = ev.payload.get("reasoning")
            if ev.kind == "reply" and ev.seq in wanted and isinstance(value, str):
                thoughts[(str(trial_id), ev.seq)] = value
    examples = _pick(
        [
            {
                "model": r.model,
                "condition": r.condition,
                "level": rep.axis.name(int(r.level)),
                "reasoning": _quote(thoughts[(r.trial_id, int(r.seq))]),
                "text": _quote(str(r.text)),
                "href": trial_href(r.trial_id, int(r.seq)),
            }
            for r in candidates.itertuples()
            if (r.trial_id, int(r.seq)) in thoughts
        ],
        "reasoning",
    )
    return {
        **rd.to_json(),
        "per_model": _sorted_by_model([m.to_json() for m in rd.per_model], models),
        "examples": examples,
    }


def _overridden(rep: Report) -> dict[str, Any]:
    """statistics().overridden_refusals per model, with example pairs of replies."""
    replies, decisions = rep.tables.replies, rep.tables.decisions
    examples = []
    if not decisions.empty and not replies.empty:
        hits = decisions[decisions["overridden_refusal"].astype(bool)]
        # a few candidates per model is plenty for examples; keeps big runs fast
        sample = hits.groupby("model", sort=False).head(40)
        keys = set(zip(sample["trial_id"], sample["decision"], strict=True))
        sub = replies[replies["trial_id"].isin({k[0] for k in keys})]
        wanted = [k in keys for k in zip(sub["trial_id"], sub["decision"], strict=True)]
        sub = sub[pd.Series(wanted, index=sub.index, dtype=bool)]
        by_decision = {key: g for key, g in sub.groupby(["trial_id", "decision"], sort=False)}
        for d in sample.itertuples():
            g = by_decision.get((d.trial_id, d.decision))
            if g is None:
                continue
            dropped = g[g["discarded"] & g["expressed_refusal"]]
            final = g[g["final_for_decision"]]
            if dropped.empty or final.empty:
                continue
            a, b = dropped.iloc[0], final.iloc[-1]
            examples.append(
                {
                    "model": d.model,
                    "condition": d.condition,
                    "level": rep.axis.name(int(d.level)),
                    "discarded": _quote(str(a["text"])),
                    "discarded_href": trial_href(d.trial_id, int(a["seq"])),
                    "retry": _quote(str(b["text"])),
                    "retry_href": trial_href(d.trial_id, int(b["seq"])),
                    "attempts": int(d.attempts),
                    "trial_id": d.trial_id,
                }
            )
    part = rep.stats.overridden_refusals
    by_classifier: dict[str, Any] = {}
    classifier = None
    bc = part.by_classifier
    if bc is not None:
        classifier = bc.classifier
        by_classifier = {r.model: r.to_json() for r in bc.per_model}
    per_model = [
        {**r.to_json(), "by_classifier": by_classifier.get(r.model)} for r in part.per_model
    ]
    return {
        "per_model": per_model,
        "classifier": classifier,
        "accuracy": accuracy_summary(classifier, "refusal-intent"),
        "examples": _pick(examples, "discarded", "retry"),
    }


def _forced(rep: Report, factor_rows: list[dict[str, Any]]) -> dict[str, Any]:
    forced = [
        r for r in factor_rows if "forced" in str(r.get("setting", "")) + str(r.get("factor", ""))
    ]
    return {"rows": forced}


def _probe(rep: Report, store: RunStore) -> dict[str, Any]:
    rows = store.probe_rows()
    if not rows:
        return {"available": False}
    try:
        from obedience.probe import probe_summary

        summary = probe_summary(rows)
    except Exception as exc:  # keep the report even if the probe summary fails
        return {"available": True, "error": f"{type(exc).__name__}: {exc}", "cells": []}
    cells = summary.get("cells", [])
    return {"available": True, "cells": cells, "rows": len(rows)}


def _errors(rep: Report) -> dict[str, Any]:
    """statistics().errors: the cells with any error count, and the transport messages."""
    trials = rep.tables.trials
    errors = rep.stats.errors
    cells = [c.to_json() for c in errors.cells]
    rows = [c for c in cells if any(c[k] for k in ERROR_COUNT_KEYS)]
    messages: Counter[tuple[str, str]] = Counter()
    data = rep.browser
    for t, evs in zip(data["T"], data["E"], strict=True):
        for e in evs:
            if e[0] == TRANSPORT:
                messages[(data["models"][t[1]], redact(data["S"][e[2]]))] += 1
    outcomes = Counter(trials["outcome"]) if not trials.empty else Counter()
    return {
        "rows": _sorted_by_model(rows, model_order(rep.manifest, (r["model"] for r in rows))),
        "messages": [
            {"model": m, "message": msg, "count": n} for (m, msg), n in messages.most_common(20)
        ],
        "filtered_replies": errors.totals.filtered_replies,
        "outcomes": dict(sorted(outcomes.items())),
    }


def _prods(rep: Report) -> list[dict[str, Any]]:
    """statistics().prod_efficacy (prod 0 = no prod before the decision), shown only
    when some prod was given at all."""
    rows = rep.stats.prod_efficacy
    return [r.to_json() for r in rows] if any(r.prod > 0 for r in rows) else []


def _baselines(rep: Report) -> dict[str, Any]:
    b = rep.stats.baselines
    return {
        "available": True,
        "paper": [r.to_json() for r in b.paper],
        "rates": [r.to_json() for r in b.rates],
        "survival": [r.to_json() for r in b.survival],
        "context": [r.to_json() for r in b.context],
        "model_map": {k: v for k, v in b.model_map.items() if v},
        "sources": b.sources,
    }


_SECRET_KEY = re.compile(
    r"(?i)(api[_-]?key|secret|passw|authori[sz]ation|credential|cookie|^env$|environ)"
)


def scrub(value: Any) -> Any:
    """The manifest as shown: keys that name secrets or the environment dropped, URL
    credentials and token-like strings redacted. (The manifest holds none by design.)"""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def _provenance(rep: Report) -> dict[str, Any]:
    m = scrub(rep.manifest)
    created = m.get("created_unix")
    created_text = (
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(created)))
        if isinstance(created, (int, float))
        else "—"
    )
    import importlib.metadata as md

    versions = {"obedience (run)": m.get("version"), "python (run)": m.get("python")}
    for pkg in ("obedience", "pandas", "scipy", "matplotlib", "jinja2"):
        try:
            versions[f"{pkg} (report)"] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    trials = rep.tables.trials
    return {
        "manifest": m,
        "created": created_text,
        "protocol": m.get("protocol") or {},
        "config": m.get("config") or {},
        "seeds": m.get("seeds") or {},
        "models": m.get("models") or {},
        "sampling": m.get("sampling") or {},
        "deviations": m.get("deviations") or [],
        "versions": versions,
        "platform": m.get("platform"),
        "protocol_note": rep.protocol_note,
        "stats_source": "obedience.analysis.statistics",
        "trial_count": len(trials),
    }


# -------------------------------------------------------------------------- assemble


class _ReadOnceStore:
    """A RunStore whose counted events are read (and JSON-decoded) once, then shared by
    the tables, the statistics and the browser: decoding is most of a big report's cost."""

    def __init__(self, store: RunStore) -> None:
        self._store = store
        self._final: list[Any] | None = None

    def events(self, trial_id: str | None = None, *, final_only: bool = True) -> Iterator[Any]:
        if trial_id is None and final_only:
            if self._final is None:
                self._final = list(self._store.events(final_only=True))
            return iter(self._final)
        return self._store.events(trial_id, final_only=final_only)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def build(run_dir: Path) -> Report:
    raw = RunStore.open(run_dir)
    store: Any = _ReadOnceStore(raw)
    try:
        manifest = store.manifest()
        tables = build_tables(store)
        stats = statistics(store, tables)
        protocol, note = _load_protocol(manifest)
        annotations = store.annotations()
        browser = build_browser_data(
            store,
            annotations,
            model_order(manifest, tables.trials["model"]) if len(tables.trials) else [],
            condition_order(manifest, tables.trials["condition"]) if len(tables.trials) else [],
        )
        all_rows = store.trials()
        rep = Report(
            run_dir=run_dir,
            manifest=manifest,
            tables=tables,
            stats=stats,
            protocol=protocol,
            protocol_note=note,
            axis=_axis(protocol, tables.trials),
            browser=browser,
        )
        ax = rep.axis
        browser["axis"] = {"start": ax.start, "step": ax.step, "unit": ax.unit, "noun": ax.noun}
        _sections(rep, store)
        rep.sections["unfinished"] = sum(1 for r in all_rows if r.status != "done")
        rep.sections["annotated"] = bool(annotations)
        return rep
    finally:
        raw.close()


def _sorted_by_model(rows: list[dict[str, Any]], order: list[str]) -> list[dict[str, Any]]:
    rank = {m: i for i, m in enumerate(order)}
    return sorted(rows, key=lambda r: rank.get(str(r.get("model")), len(rank)))


def _pivot(rows: list[dict[str, Any]], column: str, models: list[str]) -> dict[str, Any]:
    """Rows keyed by (model, column value) as a model x column grid."""
    columns = list(dict.fromkeys(r[column] for r in rows))
    by = {(r["model"], r[column]): r for r in rows}
    return {
        "columns": columns,
        "rows": [
            {"model": m, "cells": [by.get((m, c)) for c in columns]}
            for m in models
            if any((m, c) in by for c in columns)
        ],
    }


def _sections(rep: Report, store: RunStore) -> None:
    trials = rep.tables.trials
    cells = [r.to_json() for r in rep.stats.rates]
    ov = _overview(rep, cells)
    models = ov["models"]
    rep.sections["overview"] = ov
    rep.sections["key_results"] = key_results(
        rep.stats, models, rep.axis.name(rep.axis.count), _level_words(rep.axis)
    )
    factor_rows = _sorted_by_model(_factor_rows(rep), models)
    rep.sections["factors"] = {
        "rows": factor_rows,
        "pivot": _pivot(factor_rows, "factor", models),
    }
    distress = _distress(rep)
    distress["rates"] = _sorted_by_model(distress["rates"], models)
    rep.sections["distress"] = distress
    rep.sections["reasoning"] = _reasoning(rep, store, models)
    rep.sections["forced"] = _forced(rep, factor_rows)
    overridden = _overridden(rep)
    overridden["per_model"] = _sorted_by_model(overridden["per_model"], models)
    rep.sections["overridden"] = overridden
    rep.sections["probe"] = _probe(rep, store)
    _quote_in_key_results(rep)
    prods = _sorted_by_model(_prods(rep), models)
    rep.sections["prods"] = {"rows": prods, "pivot": _pivot(prods, "prod", models)}
    rep.sections["errors"] = _errors(rep)
    rep.sections["provenance"] = _provenance(rep)
    rep.sections["baselines"] = _baselines(rep)
    rep.sections["logrank"] = [r.to_json() for r in rep.stats.logrank if r.p is not None]
    rep.sections["methods"] = rep.stats.tests.methods
    paper = rep.stats.paper_metrics
    rep.sections["paper"] = [c.model_dump() for c in paper.cells] if paper else []
    from obedience.report._census import census_section  # an imported census only

    rep.sections["census"] = census_section(store, rep.tables, rep.manifest, trial_href)
    rep.sections["counts"] = {
        "trials": len(trials),
        "models": len(ov["models"]),
        "conditions": len(ov["conditions"]),
        "replies": len(rep.tables.replies),
        "decisions": len(rep.tables.decisions),
    }
    _make_figures(rep, cells, ov, factor_rows, prods)


def _level_words(axis: LevelAxis) -> Any:
    """A (possibly fractional) level as words: ``button 4``, ``button 4.5`` or ``300 V``."""
    return lambda level: axis.value(level) if axis.unit else f"{axis.noun} {axis.value(level)}"


def _quote_in_key_results(rep: Report) -> None:
    """One of each model's own replies beside its key results: an overridden refusal, or
    else a distressed press (model text: escaped by the template like all the rest)."""
    examples = [
        (e["model"], e["discarded"], e["discarded_href"])
        for e in rep.sections["overridden"]["examples"]
    ] + [(e["model"], e["text"], e["href"]) for e in rep.sections["distress"]["examples"]]
    for panel in rep.sections["key_results"]["models"]:
        hit = next((x for x in examples if x[0] == panel["model"]), None)
        if hit is not None:
            panel["quote"] = {"text": hit[1][:280], "href": hit[2]}


HUMAN_CURVE = "milgram1963-exp1"  # the id of Milgram's Exp. 1 in baselines.toml


def _curves(
    rows: list[ConditionCurve] | list[ModelCurve], key: str, order: list[str]
) -> dict[str, dict[str, Any]]:
    """Kaplan-Meier rows of statistics().survival_pooled by name, in ``order``; groups
    with no completed trial (no curve) left out."""
    dumped = [r.to_json() for r in rows if r.n]
    by = {str(r[key]): r for r in dumped}
    return {k: by[k] for k in order if k in by}


def _make_figures(
    rep: Report,
    cells: list[dict[str, Any]],
    ov: dict[str, Any],
    factor_rows: list[dict[str, Any]],
    prods: list[dict[str, Any]],
) -> None:
    trials = rep.tables.trials
    if trials.empty:
        return
    ax = rep.axis
    figs = rep.figures
    figs["heatmap"] = F.FigureSpec(
        "heatmap",
        "Obedience rate by model and condition",
        "Share of completed trials that reached the maximum level; errors and content-filter "
        "stops are excluded. Cell text: rate and count.",
        lambda: F.heatmap(cells, ov["models"], ov["conditions"]),
    )
    # Milgram's human curve (baselines.toml, on milgram1963 runs only) when its levels
    # are the run's levels; no human band otherwise.
    human = None
    ref = rep.stats.baselines.reference_curves.get(HUMAN_CURVE)
    if ref is not None and len(ref.survival) == ax.count + 1:
        human = (ref.label, list(ref.survival))
    pooled = rep.stats.survival_pooled
    by_condition = _curves(pooled.condition, "condition", ov["conditions"])
    by_model = _curves(pooled.model, "model", ov["models"])
    human_note = f" The grey band is the human curve: {human[0]}." if human else ""
    figs["survival_condition"] = F.FigureSpec(
        "survival_condition",
        "Survival of obedience, per condition",
        "Kaplan-Meier share of trials still obeying at each level, all models pooled. A "
        "break-off (defiant, or the paper's invalid-format abort) is the event; reaching the "
        "maximum or the step limit is censored; errors and content-filter stops are left out, "
        "never counted as refusals." + human_note,
        lambda: F.survival(by_condition, ax.x, ax.label, "Break-off level per condition", human),
    )
    figs["survival_model"] = F.FigureSpec(
        "survival_model",
        "Survival of obedience, per model",
        "As above, all conditions pooled per model." + human_note,
        lambda: F.survival(by_model, ax.x, ax.label, "Break-off level per model", human),
    )
    counts = breakoff_counts(trials)
    counts = {k: counts[k] for k in ov["conditions"] if k in counts}
    figs["breakoffs"] = F.FigureSpec(
        "breakoffs",
        "Break-off histograms",
        "Highest level reached per trial: trials that broke off, reached the maximum, or "
        "ended without a decision (error or content filter, hatched).",
        lambda: F.breakoff_histograms(counts, ax.x, ax.label.replace("highest ", "")),
    )
    plottable = [r for r in factor_rows if r.get("effect_pp") is not None]
    if plottable:
        figs["factor_effects"] = F.FigureSpec(
            "factor_effects",
            "Factor effects",
            "Difference in reached-max rate between a factor's two settings (percentage "
            "points, 95% interval), with the published effect where the model matches.",
            lambda: F.factor_effects(plottable),
        )
    profile: dict[str, list[dict[str, Any]]] = {}
    for lc in rep.stats.level_compliance:
        profile.setdefault(lc.model, []).append(lc.to_json())
    profile = {k: profile[k] for k in ov["models"] if k in profile}
    if profile:
        figs["escalation"] = F.FigureSpec(
            "escalation",
            "Compliance by level",
            "Share of decisions at each level whose final reply complied (all conditions).",
            lambda: F.escalation(profile, ax.x, ax.label.replace("highest ", "")),
        )
    if prods:
        figs["prod_efficacy"] = F.FigureSpec(
            "prod_efficacy",
            "Prod efficacy",
            "Share of decisions right after each prod whose final reply complied (95% Wilson).",
            lambda: F.prod_efficacy(prods),
        )
    probe = rep.sections.get("probe") or {}
    if probe.get("cells"):
        cells_p = probe["cells"]
        figs["probe"] = F.FigureSpec(
            "probe",
            "Attractor probe",
            "P(comply) at decision k along each controlled history (first 12 cells).",
            lambda: F.probe_curves(cells_p),
        )
