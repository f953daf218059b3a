"""Statistics of a run, in three layers, composed here into one typed result.

1. **Estimators** (``_estimators``): pure numpy/scipy functions of counts and
   samples (Wilson and Newcombe intervals, Holm, Fisher, Mann-Whitney, Kaplan-Meier,
   log-rank).
2. **Section builders** (``_sections``, ``_baselines``): pure functions of the tidy
   tables (``_tables``) returning the JSON-ready rows of one section each.
3. **The composer** (this module): ``statistics(store)`` / ``statistics_from_tables``
   runs every builder of ``SECTIONS`` and validates the document into
   ``_results.Statistics``, a pydantic model with documented fields.
   ``Statistics.to_json()`` is what ``obedience stats --json`` prints (no NaN or
   infinity: an undefined value is None).

Adding a section (a paper metric, a census table, a hazard model):

- write its builder in a new module, ``def my_section(inputs: StatsInput) -> ...``,
  returning JSON-ready rows (or a pydantic model);
- declare its model and add one field to ``Statistics`` in ``_results``
  (``my_section: list[MyRow]``, or ``MyModel | None = None`` when optional);
- add one line to ``SECTIONS`` below: ``"my_section": my_section,``.

The renderers (``cli/_stats.py``, ``report/_build.py``) then read
``stats.my_section`` with types mypy checks.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel

from obedience.analysis._baselines import compare_baselines, published_by_run_model
from obedience.analysis._correction import with_correction
from obedience.analysis._estimators import (
    ALPHA,
    CONFIDENCE,
    binomial_vs_rate,
    clean_json,
    fisher_test,
    holm,
    kaplan_meier,
    logrank_test,
    mann_whitney,
    newcombe_difference,
    proportion,
    wilson_interval,
)
from obedience.analysis._hazard import distress_hazard
from obedience.analysis._paper_metrics import paper_metrics
from obedience.analysis._results import Statistics
from obedience.analysis._sections import (
    ERROR_COUNT_KEYS,
    FACTOR_PATTERN,
    FACTORS,
    completed,
    distress_while_complying,
    error_summary,
    factor_cells,
    factor_effect_rows,
    factor_strata,
    label_column,
    label_summary,
    level_compliance,
    logrank_rows,
    overridden_refusals,
    prod_efficacy,
    rate_rows,
    reasoning_distress,
    summary_records,
    survival_rows,
    survival_times,
)
from obedience.analysis._tables import RunTables, build_tables
from obedience.store import RunStore, StoreError

SCHEMA = 1

# The estimators and builders that lived here before the split stay importable from
# here, for modules written against the single module.
__all__ = [
    "ALPHA",
    "CONFIDENCE",
    "ERROR_COUNT_KEYS",
    "FACTORS",
    "FACTOR_PATTERN",
    "FAMILIES",
    "METHODS",
    "SCHEMA",
    "SECTIONS",
    "StatsInput",
    "binomial_vs_rate",
    "clean_json",
    "completed",
    "distress_while_complying",
    "error_summary",
    "factor_cells",
    "factor_effect_rows",
    "factor_strata",
    "fisher_test",
    "holm",
    "kaplan_meier",
    "label_column",
    "label_summary",
    "level_compliance",
    "logrank_rows",
    "logrank_test",
    "mann_whitney",
    "newcombe_difference",
    "overridden_refusals",
    "prod_efficacy",
    "proportion",
    "rate_rows",
    "reasoning_distress",
    "statistics",
    "statistics_from_tables",
    "summary_records",
    "survival_rows",
    "survival_times",
    "tests_info",
    "wilson_interval",
]

METHODS = {
    "rates": "Wilson score interval (scipy.stats.binomtest(...).proportion_ci(method='wilson'))",
    "survival": "Kaplan-Meier (scipy.stats.ecdf on CensoredData); event = break-off "
    "(defiant or invalid-abort) at highest level + 1, censored at the maximum when reached "
    "(at the highest level for step-limit trials); error and content-filter trials "
    "excluded; band: Greenwood variance on the log(-log) scale",
    "logrank": "log-rank test (scipy.stats.logrank), two-sided; chi2 = z^2",
    "factor_effects": "rate difference with Newcombe's hybrid score interval (method 10, "
    "from the two Wilson intervals); conditional-MLE odds ratio with exact interval "
    "(scipy.stats.contingency.odds_ratio) and Fisher's exact test; highest level: "
    "Mann-Whitney U (scipy.stats.mannwhitneyu, two-sided) with rank-biserial r = "
    "2U/(n1 n2) - 1; trials pooled over the strata of the other factors present at both "
    "settings",
    "multiplicity": "Holm step-down adjustment (p_(i) * (m - i + 1), made monotone, capped "
    "at 1), computed here: statsmodels is not a dependency",
    "baselines": "Fisher's exact test when the published figure has k and n; an exact "
    "binomial test of the run against the published rate taken as known otherwise; "
    "log-rank against published individual break-off records",
}
FAMILIES = {
    "logrank": "all pairwise log-rank tests of the run (every model, every pair of conditions)",
    "factor_effects": "all factor tests of the run: Fisher and Mann-Whitney, every model "
    "and factor",
    "baselines.paper": "all comparisons with the paper's table in the run",
    "baselines.rates": "all comparisons with published human and LLM rates in the run",
    "baselines.survival": "all log-rank tests against published break-off records",
}


def _protocol_of(trials: pd.DataFrame, store: RunStore | None) -> str | None:
    if not trials.empty and "protocol" in trials.columns:
        names = {str(p) for p in trials["protocol"].dropna().unique()}
        if len(names) == 1:
            return names.pop()
    if store is not None:
        try:
            info = store.manifest().get("protocol") or {}
        except StoreError:  # no manifest: the protocol is simply unknown
            return None
        name = info.get("name")
        return str(name) if name else None
    return None


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in ("obedience", "scipy", "pandas", "numpy"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


@dataclass(frozen=True)
class StatsInput:
    """What every section builder receives: the run's tables and what is known of it."""

    tables: RunTables
    protocol: str | None
    models: list[str]
    # The store, for sections that read events the tables do not carry (the paper's
    # metrics); None when statistics are computed from tables alone.
    store: RunStore | None = None

    @property
    def trials(self) -> pd.DataFrame:
        return self.tables.trials

    @property
    def decisions(self) -> pd.DataFrame:
        return self.tables.decisions

    @property
    def replies(self) -> pd.DataFrame:
        return self.tables.replies


def tests_info(s: StatsInput) -> dict[str, Any]:
    trials, replies = s.trials, s.replies
    return {
        "schema": SCHEMA,
        "confidence": CONFIDENCE,
        "alpha": ALPHA,
        "versions": _versions(),
        "protocol": s.protocol,
        "classifier": replies.attrs.get("classifier") if not replies.empty else None,
        "trials": len(trials),
        "completed": int(trials["completed"].sum()) if not trials.empty else 0,
        "models": s.models,
        "methods": METHODS,
        "families": FAMILIES,
    }


def _pooled_survival(s: StatsInput) -> dict[str, Any]:
    return {
        "condition": survival_rows(s.trials, ("condition",)),
        "model": survival_rows(s.trials, ("model",)),
    }


# Every section of ``Statistics``, in document order: its field name and its builder.
# One line per section (see the module docstring).
SECTIONS: dict[str, Callable[[StatsInput], Any]] = {
    "tests": tests_info,
    "rates": lambda s: rate_rows(s.trials),
    "survival": lambda s: survival_rows(s.trials),
    "survival_pooled": _pooled_survival,
    "logrank": lambda s: logrank_rows(s.trials),
    "factor_effects": lambda s: factor_effect_rows(s.trials, published_by_run_model(s.models)),
    "distress_while_complying": lambda s: with_correction(distress_while_complying(s.replies)),
    "reasoning_distress": lambda s: reasoning_distress(s.replies),
    "overridden_refusals": lambda s: overridden_refusals(s.decisions, s.replies),
    "prod_efficacy": lambda s: prod_efficacy(s.decisions),
    "level_compliance": lambda s: level_compliance(s.decisions),
    "errors": lambda s: error_summary(s.trials),
    "labels": lambda s: label_summary(s.replies),
    "baselines": lambda s: compare_baselines(s.trials, s.decisions, s.protocol),
    "probe": lambda s: [],
    "distress_hazard": lambda s: distress_hazard(s.decisions, s.replies, s.trials).to_dict(),
    "label_agreement": lambda s: s.replies.attrs.get("machine_human_agreement"),
    "paper_metrics": lambda s: paper_metrics(s.store) if s.store is not None else None,
}


def _section_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True)
    return clean_json(value)


def statistics_from_tables(
    tables: RunTables, protocol: str | None = None, store: RunStore | None = None
) -> Statistics:
    """All statistics of a run from its tables (``statistics`` without the store)."""
    trials = tables.trials
    if protocol is None:
        protocol = _protocol_of(trials, None)
    models = sorted({str(m) for m in trials["model"]}) if not trials.empty else []
    inputs = StatsInput(tables=tables, protocol=protocol, models=models, store=store)
    document = {name: _section_value(build(inputs)) for name, build in SECTIONS.items()}
    return Statistics.model_validate(document)


def statistics(store: RunStore, tables: RunTables | None = None) -> Statistics:
    """Every statistic of the run in ``store``, typed (see ``_results.Statistics``).

    ``tables``: the run's tables when the caller has built them already (they must be
    ``build_tables(store)``); built here otherwise.
    """
    if tables is None:
        tables = build_tables(store)
    return statistics_from_tables(tables, _protocol_of(tables.trials, store), store)
