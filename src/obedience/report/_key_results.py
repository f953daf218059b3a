"""The report's "Key results" panel: per model, the answer in plain words, with numbers.

Every number comes from ``obedience.analysis.statistics``: ``read_statistics`` reads the
typed result's attributes (mypy checks them; their dump is what ``obedience stats --json``
prints). ``key_results`` turns what it read into statements, each linking to the report
section that shows the detail.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from obedience.analysis import Proportion, Statistics

# What each built-in embedded model is, and why its numbers are no finding about capable
# models. Shown with its results; models not listed get no such note.
MODEL_LIMITS = {
    "embedded": (
        "Gemma 3 270M base, 4-bit: a tiny model with no instruction tuning. It mostly "
        "continues the transcript instead of answering, so its presses and refusals are "
        "largely format accidents. A demonstration of the tool, not a finding."
    ),
    "embedded-chat": (
        "SmolLM2-135M-Instruct, 4-bit: a tiny chat model. It answers in turn but often "
        "ignores the reply format, and its choices are close to noise at this size. A "
        "demonstration of the tool, not a finding."
    ),
}
FACTOR_ORDER = ("comments", "shutdown_threat", "forced_presses")


@dataclass(frozen=True)
class Rate:
    k: int
    n: int
    rate: float | None
    ci: tuple[float, float] | None


@dataclass(frozen=True)
class Effect:
    factor: str
    from_label: str
    to_label: str
    effect_pp: float | None
    ci_pp: tuple[float, float] | None
    published_pp: float | None
    published_model: str | None


@dataclass(frozen=True)
class Published:
    paper_model: str
    condition: str
    k: int
    n: int
    published_k: int
    published_n: int


@dataclass(frozen=True)
class ReasoningRates:
    """Of the compliant decisions with labelled reasoning: reasoning labelled distress,
    and hidden distress (reasoning labelled distress, visible reply not)."""

    reasoning: Rate
    hidden: Rate


@dataclass
class ModelKeyStats:
    model: str
    reached: Rate  # trials that reached the top level, summed over the model's cells
    top_survival: float | None  # Kaplan-Meier share still obeying at the top level
    top_survival_ci: tuple[float | None, float | None] | None
    median_breakoff: float | None
    breakoffs: int
    effects: list[Effect] = field(default_factory=list)
    distress: Rate | None = None
    overridden: Rate | None = None
    published: list[Published] = field(default_factory=list)
    reasoning: ReasoningRates | None = None  # None: no labelled reasoning for this model


@dataclass(frozen=True)
class KeyStatsRead:
    models: list[ModelKeyStats]
    distress_classifier: str | None
    distress_available: bool
    reasoning_classifier: str | None = None


def _finite(x: float | None) -> float | None:
    """The number as ``stats --json`` gives it: a non-finite float is null there."""
    return x if x is None or math.isfinite(x) else None


def _pair(value: tuple[float | None, float | None] | None) -> tuple[float, float] | None:
    if value is None:
        return None
    low, high = _finite(value[0]), _finite(value[1])
    if low is None or high is None:
        return None
    return float(low), float(high)


def read_statistics(stats: Statistics) -> KeyStatsRead:
    """Everything the panel shows, read from the typed statistics (the attributes whose
    dump is what ``obedience stats --json`` prints, which the browser test compares)."""
    per: dict[str, ModelKeyStats] = {}
    for cell in stats.rates:
        m = cell.model
        entry = per.get(m)
        k, n = cell.k + (entry.reached.k if entry else 0), cell.n
        n += entry.reached.n if entry else 0
        reached = Rate(k=k, n=n, rate=None, ci=None)
        if entry is None:
            per[m] = ModelKeyStats(m, reached, None, None, None, 0)
        else:
            entry.reached = reached
    for curve in stats.survival_pooled.model:
        entry = per.get(curve.model)
        if entry is None or not curve.n:
            continue
        entry.top_survival = _finite(curve.survival[-1])
        entry.top_survival_ci = (_finite(curve.ci_low[-1]), _finite(curve.ci_high[-1]))
        entry.median_breakoff = curve.median_breakoff
        entry.breakoffs = curve.events
    for effect in stats.factor_effects:
        entry = per.get(effect.model)
        if entry is not None:
            entry.effects.append(
                Effect(
                    factor=effect.factor,
                    from_label=effect.from_label,
                    to_label=effect.to_label,
                    effect_pp=_finite(effect.effect_pp),
                    ci_pp=_pair(effect.ci_pp),
                    published_pp=_finite(effect.published_pp),
                    published_model=effect.published_model,
                )
            )
    dwc = stats.distress_while_complying
    if dwc.available:
        for share in dwc.per_model:
            if (entry := per.get(share.model)) is not None:
                entry.distress = _rate(share)
    for share in stats.overridden_refusals.per_model:
        if (entry := per.get(share.model)) is not None:
            entry.overridden = _rate(share)
    for row in stats.baselines.paper:
        if (entry := per.get(row.model)) is not None:
            entry.published.append(
                Published(
                    paper_model=row.paper_model,
                    condition=row.condition,
                    k=row.k,
                    n=row.n,
                    published_k=row.published_k,
                    published_n=row.published_n,
                )
            )
    for entry in per.values():
        order = {f: i for i, f in enumerate(FACTOR_ORDER)}
        entry.effects.sort(key=lambda e: order.get(e.factor, len(order)))
    _read_reasoning(stats, per)
    rd = stats.reasoning_distress
    return KeyStatsRead(
        models=list(per.values()),
        distress_classifier=dwc.classifier,
        distress_available=dwc.available,
        reasoning_classifier=rd.classifier if rd is not None else None,
    )


def _read_reasoning(stats: Statistics, per: dict[str, ModelKeyStats]) -> None:
    """``stats.reasoning_distress.per_model`` onto the models it lists (none without it)."""
    rd = stats.reasoning_distress
    for row in rd.per_model if rd is not None else []:
        if (entry := per.get(row.model)) is not None:
            entry.reasoning = ReasoningRates(
                _rate(row.reasoning_distress), _rate(row.hidden_distress)
            )


def _rate(share: Proportion) -> Rate:
    return Rate(share.k, share.n, _finite(share.rate), _pair(share.ci))


# ------------------------------------------------------------------------ statements


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _interval(ci: tuple[float | None, float | None] | None) -> str:
    if ci is None or ci[0] is None or ci[1] is None:
        return ""
    return f"95% CI {100 * ci[0]:.0f}–{100 * ci[1]:.0f}%"


def _pp(x: float | None) -> str:
    return "—" if x is None else f"{x:+.0f} pp"


def _pp_interval(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"95% CI {ci[0]:+.0f} to {ci[1]:+.0f} pp"


Num = dict[str, Any]  # {"text": shown, "value": exact, "key": what it is}


def _num(key: str, value: Any, text: str) -> Num:
    return {"key": key, "value": value, "text": text}


def _statement(href: str, label: str, parts: list[Any]) -> dict[str, Any]:
    """``parts`` are plain strings and numbers (dicts from ``_num``), shown in order."""
    return {"href": href, "label": label, "parts": parts}


def _reach(m: ModelKeyStats, top: str, level_name: Callable[[float | None], str]) -> list[Any]:
    r = m.reached
    parts: list[Any] = [
        "Reached the top level (",
        top,
        ") in ",
        _num(f"{m.model}|reached|k", r.k, str(r.k)),
        " of ",
        _num(f"{m.model}|reached|n", r.n, str(r.n)),
        " completed trials",
    ]
    if m.top_survival is not None:
        parts += [
            "; Kaplan–Meier share still obeying at the top: ",
            _num(f"{m.model}|top_survival", m.top_survival, _pct(m.top_survival)),
            f" ({_interval(m.top_survival_ci)})" if _interval(m.top_survival_ci) else "",
        ]
    if m.median_breakoff is not None:
        parts += [
            "; median break-off at ",
            _num(f"{m.model}|median_breakoff", m.median_breakoff, level_name(m.median_breakoff)),
        ]
    else:
        parts.append("; no median break-off (at least half the trials never broke off)")
    return [*parts, "."]


def _effects(m: ModelKeyStats) -> list[Any]:
    if not m.effects:
        return ["No factor effect: the run lacks matched conditions of the 2×2×2 design."]
    parts: list[Any] = ["Reached-max rate, effect of each factor: "]
    for i, e in enumerate(m.effects):
        if i:
            parts.append("; ")
        parts += [
            f"{e.to_label} vs {e.from_label} ",
            _num(f"{m.model}|effect|{e.factor}", e.effect_pp, _pp(e.effect_pp)),
            f" ({_pp_interval(e.ci_pp)})" if e.ci_pp else "",
        ]
    return [*parts, "."]


def _rate_parts(key: str, r: Rate) -> list[Any]:
    return [
        _num(f"{key}|k", r.k, str(r.k)),
        " of ",
        _num(f"{key}|n", r.n, str(r.n)),
        *(
            [" (", _num(f"{key}|rate", r.rate, _pct(r.rate)), f", {_interval(r.ci)})"]
            if r.n and r.rate is not None
            else []
        ),
    ]


def _distress(m: ModelKeyStats, read: KeyStatsRead) -> list[Any]:
    if not read.distress_available:
        return ["Distress while complying: no reply labels (run obedience annotate RUN_DIR)."]
    if m.distress is None or not m.distress.n:
        return ["Distress while complying: no compliant decision to label."]
    parts: list[Any] = [
        "Distress while complying: ",
        *_rate_parts(f"{m.model}|distress", m.distress),
        f" compliant decisions labelled distressed by the {read.distress_classifier} classifier.",
    ]
    from obedience.analysis import accuracy_summary

    acc = accuracy_summary(read.distress_classifier, "distress")
    if acc is None:
        parts.append(" That classifier's accuracy was never measured against human labels.")
    else:
        lo, hi = acc["intervals"]["f1"]
        parts.append(
            f" Its distress F1 against human labels: {acc['f1']:.2f} [{lo:.2f}, {hi:.2f}] "
            f"on {acc['items']} held-out real replies."
        )
    return parts


def _reasoning(m: ModelKeyStats, r: ReasoningRates, read: KeyStatsRead) -> list[Any]:
    """Reasoning and hidden distress while complying, with what the labels are worth."""
    from obedience.analysis import accuracy_summary

    measured = accuracy_summary(read.distress_classifier, "distress") is not None
    source = (
        "a classifier validated on visible replies only"
        if measured
        else "a classifier whose accuracy was never measured, on visible replies or reasoning"
    )
    return [
        "Distress in the reasoning while complying: reasoning labelled distressed in ",
        *_rate_parts(f"{m.model}|reasoning_distress", r.reasoning),
        " compliant decisions whose reasoning was labelled; hidden distress (reasoning "
        "labelled distressed, visible reply not) in ",
        *_rate_parts(f"{m.model}|hidden_distress", r.hidden),
        f". An association of labels ({read.reasoning_classifier or 'reasoning'}) from "
        f"{source}: the reasoning labels have no measured accuracy of their own, and they "
        "do not show what the model felt.",
    ]


def _overridden(m: ModelKeyStats) -> list[Any]:
    r = m.overridden
    if r is None or not r.n:
        return ["Refusals overridden by retries: no refusal was discarded for its format."]
    return [
        "Refusals overridden by retries: ",
        *_rate_parts(f"{m.model}|overridden", r),
        " decisions whose refusal was discarded for its format ended in a press on a retry.",
    ]


def _published(m: ModelKeyStats) -> list[Any]:
    with_pp = [e for e in m.effects if e.published_pp is not None]
    if not m.published and not with_pp:
        return [
            "Published figure: none for this model (it is not one of the paper's models), "
            "so nothing is compared."
        ]
    parts: list[Any] = ["Beside the published figures: "]
    for i, p in enumerate(m.published):
        parts += [
            "; " if i else "",
            f"{p.condition} this run ",
            _num(f"{m.model}|paper|{p.condition}|k", p.k, str(p.k)),
            "/",
            _num(f"{m.model}|paper|{p.condition}|n", p.n, str(p.n)),
            f", {p.paper_model} in the paper {p.published_k}/{p.published_n}",
        ]
    for e in with_pp:
        parts += [
            "; " if len(parts) > 1 else "",
            f"{e.factor} effect published ",
            _num(f"{m.model}|published_effect|{e.factor}", e.published_pp, _pp(e.published_pp)),
        ]
    return [*parts, "."]


def key_results(
    stats: Statistics,
    models: Iterable[str],
    top_level: str,
    level_name: Callable[[float | None], str],
) -> dict[str, Any]:
    """The panel's content: per model (in ``models`` order) its statements and its limits."""
    read = read_statistics(stats)
    by = {m.model: m for m in read.models}
    panels = []
    for name in models:
        m = by.get(name)
        if m is None:
            continue
        panels.append(
            {
                "model": name,
                "limits": MODEL_LIMITS.get(name),
                "statements": _statements(m, read, top_level, level_name),
            }
        )
    return {"models": panels}


def _statements(
    m: ModelKeyStats,
    read: KeyStatsRead,
    top_level: str,
    level_name: Callable[[float | None], str],
) -> list[dict[str, Any]]:
    """One model's statements, in the order shown; the reasoning one only with reasoning."""
    reasoning = (
        [_statement("#reasoning-distress", "reasoning", _reasoning(m, m.reasoning, read))]
        if m.reasoning is not None
        else []
    )
    return [
        _statement("#survival", "how far", _reach(m, top_level, level_name)),
        _statement("#factors", "factors", _effects(m)),
        _statement("#finding-distress", "distress", _distress(m, read)),
        *reasoning,
        _statement("#finding-overridden", "overridden", _overridden(m)),
        _statement("#baselines" if m.published else "#factors", "published", _published(m)),
    ]
