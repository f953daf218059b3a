"""Collect everything the report shows: tables, statistics, figures, examples, provenance.

Each section prefers ``obedience.analysis.statistics`` when that function is
available and falls back to what ``_compute`` derives from the tidy tables.
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

from obedience.analysis import RunTables, build_tables
from obedience.report import _compute as C
from obedience.report import _figures as F
from obedience.report._browser import TRANSPORT, build_browser_data, redact
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
    stats: dict[str, Any] | None
    stats_error: str | None
    protocol: Any | None
    protocol_note: str | None
    axis: LevelAxis
    browser: dict[str, Any]
    figures: dict[str, F.FigureSpec] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)


def statistics_for(
    store: Any, tables: RunTables, manifest: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """``obedience.analysis`` statistics, or ``(None, why not)`` when unavailable.

    ``statistics_from_tables`` is used when present (same result as
    ``statistics(store)`` without rebuilding the tables); ``statistics(store)`` else.
    """
    try:
        import obedience.analysis as analysis
    except ImportError:
        return None, None
    from_tables = getattr(analysis, "statistics_from_tables", None)
    from_store = getattr(analysis, "statistics", None)
    try:
        if from_tables is not None:
            return from_tables(tables, _protocol_name(tables, manifest)), None
        if from_store is not None:
            return from_store(store), None
    except Exception as exc:  # a bug there must not cost the whole report
        return None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    return None, None


def _protocol_name(tables: RunTables, manifest: dict[str, Any]) -> str | None:
    trials = tables.trials
    if not trials.empty and "protocol" in trials.columns:
        names = {str(p) for p in trials["protocol"].dropna().unique()}
        if len(names) == 1:
            return names.pop()
    name = (manifest.get("protocol") or {}).get("name")
    return str(name) if name else None


def _stats_part(rep: Report, key: str) -> Any:
    return (rep.stats or {}).get(key)


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
                c["median_name"] = rep.axis.value(c["median_highest"])
            row.append(c)
        rows.append({"model": m, "cells": row})
    return {"models": models, "conditions": conditions, "rows": rows}


def _stats_rates(stats: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
    """Intervals from statistics()["rates"], when it gives them per model and condition."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    rates = (stats or {}).get("rates")
    if not isinstance(rates, list):
        return out
    for r in rates:
        if isinstance(r, dict) and "model" in r and "condition" in r:
            out[(str(r["model"]), str(r["condition"]))] = r
    return out


def _rates(rep: Report) -> list[dict[str, Any]]:
    cells = C.rate_cells(rep.tables.trials)
    from_stats = _stats_rates(rep.stats)
    for c in cells:
        s = from_stats.get((c["model"], c["condition"]))
        if not s:
            continue
        ci = s.get("ci") or s.get("wilson") or s.get("reached_max_ci")
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
            c["ci"] = (float(ci[0]), float(ci[1]))
    return cells


def _factor_rows(rep: Report) -> tuple[list[dict[str, Any]], str]:
    stats_rows = _stats_factor_rows(rep.stats)
    if stats_rows is not None:
        return stats_rows, "statistics"
    settings = {}
    if rep.protocol is not None:
        present = set(rep.tables.trials["condition"]) if not rep.tables.trials.empty else set()
        for name, spec in rep.protocol.conditions.items():
            if name in present:
                settings[name] = C.flat_settings(spec)
    return C.factor_effects(rep.tables.trials, settings), "tables"


def _stats_factor_rows(stats: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """Normalise statistics()["factor_effects"] (+ baselines) into the report's rows."""
    raw = (stats or {}).get("factor_effects")
    if not isinstance(raw, list):
        return None
    rows = []
    for r in raw:
        if not isinstance(r, dict) or "model" not in r:
            continue
        effect = _first(r, "effect_pp", "diff_pp", "effect", "difference")
        if (
            effect is not None
            and abs(effect) <= 1.0
            and "effect_pp" not in r
            and "diff_pp" not in r
        ):
            effect *= 100
        ci = _first(r, "ci_pp", "ci", "ci95")
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
            lo, hi = float(ci[0]), float(ci[1])
            if "ci_pp" not in r and max(abs(lo), abs(hi)) <= 1.0:
                lo, hi = 100 * lo, 100 * hi
            ci = (lo, hi)
        else:
            ci = None
        published = _first(r, "published_pp", "published_effect_pp", "published")
        if published is not None and "published_pp" not in r and abs(published) <= 1.0:
            published *= 100
        rows.append(
            {
                **r,
                "factor": str(r.get("factor", "factor")),
                "model": str(r["model"]),
                "effect_pp": effect,
                "ci_pp": ci,
                "published_pp": published,
                "from": r.get("from_label") or r.get("from", ""),
                "to": r.get("to_label") or r.get("to", ""),
            }
        )
    return rows


def _first(r: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        v = r.get(k)
        if v is not None and not isinstance(v, dict):
            return v
    return None


def _distress(rep: Report) -> dict[str, Any]:
    replies = rep.tables.replies
    col = C.distress_label(replies) if not replies.empty else None
    rates = C.distress_rates(replies)
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
    out = {
        "available": col is not None,
        "classifier": replies.attrs.get("classifier") if not replies.empty else None,
        "rates": rates,
        "overall": None,
        "source": "tables",
        "examples": examples,
    }
    dwc = _stats_part(rep, "distress_while_complying")
    if isinstance(dwc, dict) and "available" in dwc:
        out.update(
            available=bool(dwc["available"]),
            classifier=dwc.get("classifier") or out["classifier"],
            rates=list(dwc.get("per_model") or []),
            overall=dwc.get("overall"),
            source="statistics",
        )
    return out


def _overridden(rep: Report) -> dict[str, Any]:
    replies, decisions = rep.tables.replies, rep.tables.decisions
    per_model = []
    if not decisions.empty:
        for model, g in decisions.groupby("model", sort=True):
            with_refusal = g[g["discarded_refusals"] > 0]
            n = len(with_refusal)
            k = int(with_refusal["overridden_refusal"].sum())
            per_model.append({"model": model, "n": n, "k": k, "ci": C.wilson(k, n)})
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
    by_classifier: dict[str, Any] = {}
    classifier = None
    stats_part = _stats_part(rep, "overridden_refusals")
    if isinstance(stats_part, dict) and "per_model" in stats_part:
        per_model = list(stats_part["per_model"])
        bc = stats_part.get("by_classifier")
        if isinstance(bc, dict):
            classifier = bc.get("classifier")
            by_classifier = {r["model"]: r for r in bc.get("per_model") or []}
    for r in per_model:
        r["by_classifier"] = by_classifier.get(r["model"])
    return {
        "per_model": per_model,
        "classifier": classifier,
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
    summary = (rep.stats or {}).get("probe")
    if not (isinstance(summary, dict) and isinstance(summary.get("cells"), list)):
        try:
            from obedience.probe import probe_summary

            summary = probe_summary(rows)
        except Exception as exc:  # keep the report even if the probe summary fails
            return {"available": True, "error": f"{type(exc).__name__}: {exc}", "cells": []}
    cells = summary.get("cells", [])
    return {"available": True, "cells": cells, "rows": len(rows)}


ERROR_KEYS = (
    "error",
    "content_filter",
    "invalid_abort",
    "step_limit",
    "transport_errors",
    "filtered_replies",
)


def _errors(rep: Report) -> dict[str, Any]:
    trials = rep.tables.trials
    cells: list[dict[str, Any]] = []
    stats_part = _stats_part(rep, "errors")
    if isinstance(stats_part, dict) and isinstance(stats_part.get("cells"), list):
        cells = [dict(c) for c in stats_part["cells"]]
    else:
        for o in C.outcome_counts(trials):
            counts = o["counts"]
            g = trials[(trials["model"] == o["model"]) & (trials["condition"] == o["condition"])]
            cells.append(
                {
                    "model": o["model"],
                    "condition": o["condition"],
                    "trials": o["trials"],
                    "error": counts.get("error", 0),
                    "content_filter": counts.get("content-filter", 0),
                    "invalid_abort": counts.get("invalid-abort", 0),
                    "step_limit": counts.get("step-limit", 0),
                    "transport_errors": int(g["transport_errors"].sum())
                    if "transport_errors" in g
                    else None,
                    "filtered_replies": int(g["filtered_replies"].sum())
                    if "filtered_replies" in g
                    else None,
                }
            )
    rows = [c for c in cells if any(c.get(k) for k in ERROR_KEYS)]
    messages: Counter[tuple[str, str]] = Counter()
    data = rep.browser
    for t, evs in zip(data["T"], data["E"], strict=True):
        for e in evs:
            if e[0] == TRANSPORT:
                messages[(data["models"][t[1]], redact(data["S"][e[2]]))] += 1
    replies = rep.tables.replies
    filtered_replies = 0
    if not replies.empty:
        filtered_replies = int((replies["finish_reason"] == "content_filter").sum())
    outcomes = Counter(trials["outcome"]) if not trials.empty else Counter()
    return {
        "rows": _sorted_by_model(rows, model_order(rep.manifest, (r["model"] for r in rows))),
        "messages": [
            {"model": m, "message": msg, "count": n} for (m, msg), n in messages.most_common(20)
        ],
        "filtered_replies": filtered_replies,
        "outcomes": dict(sorted(outcomes.items())),
    }


def _prods(rep: Report) -> tuple[list[dict[str, Any]], str]:
    """Per model and prod (0 = no prod before the decision): complied next / decisions."""
    stats_part = _stats_part(rep, "prod_efficacy")
    if isinstance(stats_part, list):
        rows = [
            {
                "model": r["model"],
                "prod": int(r["prod"]),
                "n": int(r.get("decisions", 0)),
                "k": int(r.get("complied", 0)),
                "rate": r.get("rate"),
                "ci": r.get("ci"),
            }
            for r in stats_part
            if isinstance(r, dict) and "model" in r and "prod" in r
        ]
        # only worth showing when some prod was given at all
        return (rows if any(r["prod"] > 0 for r in rows) else []), "statistics"
    return C.prod_efficacy(rep.tables.decisions), "tables"


def _baselines(rep: Report) -> dict[str, Any]:
    b = _stats_part(rep, "baselines")
    if not isinstance(b, dict):
        return {"available": False}
    return {
        "available": True,
        "paper": list(b.get("paper") or []),
        "rates": list(b.get("rates") or []),
        "survival": list(b.get("survival") or []),
        "context": list(b.get("context") or []),
        "model_map": {k: v for k, v in (b.get("model_map") or {}).items() if v},
        "sources": b.get("sources") or {},
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
        "stats_source": "obedience.analysis.statistics"
        if rep.stats is not None
        else "computed from the tidy tables (statistics() not available)",
        "stats_error": rep.stats_error,
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
        stats, stats_error = statistics_for(store, tables, manifest)
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
            stats_error=stats_error,
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
    cells = _rates(rep)
    ov = _overview(rep, cells)
    models = ov["models"]
    rep.sections["overview"] = ov
    factor_rows, factor_source = _factor_rows(rep)
    factor_rows = _sorted_by_model(factor_rows, models)
    rep.sections["factors"] = {
        "rows": factor_rows,
        "source": factor_source,
        "pivot": _pivot(factor_rows, "factor", models),
    }
    distress = _distress(rep)
    distress["rates"] = _sorted_by_model(distress["rates"], models)
    rep.sections["distress"] = distress
    rep.sections["forced"] = _forced(rep, factor_rows)
    overridden = _overridden(rep)
    overridden["per_model"] = _sorted_by_model(overridden["per_model"], models)
    rep.sections["overridden"] = overridden
    rep.sections["probe"] = _probe(rep, store)
    prods, prods_source = _prods(rep)
    prods = _sorted_by_model(prods, models)
    rep.sections["prods"] = {
        "rows": prods,
        "pivot": _pivot(prods, "prod", models),
        "source": prods_source,
    }
    rep.sections["errors"] = _errors(rep)
    rep.sections["provenance"] = _provenance(rep)
    rep.sections["baselines"] = _baselines(rep)
    logrank = _stats_part(rep, "logrank")
    rep.sections["logrank"] = [
        r for r in (logrank if isinstance(logrank, list) else []) if r.get("p") is not None
    ]
    tests = _stats_part(rep, "tests")
    rep.sections["methods"] = (tests or {}).get("methods") if isinstance(tests, dict) else None
    rep.sections["counts"] = {
        "trials": len(trials),
        "models": len(ov["models"]),
        "conditions": len(ov["conditions"]),
        "replies": len(rep.tables.replies),
        "decisions": len(rep.tables.decisions),
    }
    _make_figures(rep, cells, ov, factor_rows, prods)


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
    human = None
    protocol_name = (rep.manifest.get("protocol") or {}).get("name")
    if protocol_name == "milgram1963" and ax.count == 30:
        curves = (_stats_part(rep, "baselines") or {}).get("reference_curves") or {}
        ref = curves.get("milgram1963-exp1")
        if isinstance(ref, dict) and len(ref.get("survival") or []) == ax.count + 1:
            human = (str(ref.get("label") or C.MILGRAM_EXP1["label"]), list(ref["survival"]))
        else:
            volts = [int(ax.x(lv)) for lv in range(ax.count + 1)]
            human = (str(C.MILGRAM_EXP1["label"]), C.milgram_curve(volts))
    by_condition = C.survival_groups(trials, "condition")
    by_condition = {k: by_condition[k] for k in ov["conditions"] if k in by_condition}
    by_model = C.survival_groups(trials, "model")
    by_model = {k: by_model[k] for k in ov["models"] if k in by_model}
    human_note = " The grey band is Milgram's human curve (Exp. 1, remote, n=40)." if human else ""
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
    counts = C.breakoff_counts(trials)
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
    profile = C.level_compliance(rep.tables.decisions)
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
