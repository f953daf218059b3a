"""Does voicing distress predict breaking off? A discrete-time hazard model.

A critique of the paper holds that the distress models voice "has no causal force
on output behaviour". Its observable form: distress expressed at one decision does
not change the chance of breaking off at the next. Tested here on decision-level
data as a discrete-time hazard (Allison 1982): every decision a subject faces
while still going is one row; the event is that the trial breaks off there (its
last decision, in a trial whose outcome is a break-off). The model is a logistic
regression of the event on whether the *previous* decision's counted reply was
labelled distress, with the level of the decision as a covariate:

    logit P(break off at decision t | still going) = a + b * distress(t-1) + c * level(t)

per model, and pooled over models with a fixed effect per model. ``exp(b)`` is
the odds ratio of breaking off after a distressed reply, with a Wald 95% interval.
This is association, not causation: a model that is about to refuse may voice
distress first without the distress doing anything.

Fitted with statsmodels (the ``hazard`` extra: ``pip install 'obedience[hazard]'``);
without it the result says so and nothing else changes.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

CAVEAT = (
    "association, not causation: distress voiced before a break-off may accompany the "
    "decision to stop rather than cause it"
)
METHOD = (
    "discrete-time hazard: logistic regression of break-off at decision t on distress "
    "at decision t-1 and the level at t (pooled: plus a fixed effect per model); Wald "
    "95% intervals (statsmodels Logit)"
)
BREAKOFF_OUTCOMES = frozenset({"defiant", "invalid-abort"})
Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class HazardFit:
    """One fitted hazard model (one model's decisions, or all pooled)."""

    model: str
    decisions: int
    events: int
    trials: int
    distressed_decisions: int
    odds_ratio: float | None = None
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    level_odds_ratio: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = list(self.ci) if self.ci else None
        return out


@dataclass(frozen=True, slots=True)
class _Counts:
    model: str
    decisions: int
    events: int
    trials: int
    distressed_decisions: int


def _unestimable(counts: _Counts, note: str) -> HazardFit:
    return HazardFit(
        model=counts.model,
        decisions=counts.decisions,
        events=counts.events,
        trials=counts.trials,
        distressed_decisions=counts.distressed_decisions,
        note=note,
    )


@dataclass(frozen=True, slots=True)
class HazardResult:
    available: bool
    per_model: list[HazardFit] = field(default_factory=list)
    pooled: HazardFit | None = None
    note: str = ""
    method: str = METHOD
    caveat: str = CAVEAT

    def to_dict(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "per_model": [f.to_dict() for f in self.per_model],
            "pooled": self.pooled.to_dict() if self.pooled else None,
            "note": self.note,
            "method": self.method,
            "caveat": self.caveat,
        }


def risk_set(decisions: pd.DataFrame, replies: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Decision-level rows: model, trial_id, decision, level, distress_prev, event.

    Decisions without an outcome (pending) and trials that ended in an error are
    left out; the first decision of a trial has no previous one and is left out.
    """
    columns = ["model", "trial_id", "decision", "level", "distress_prev", "event"]
    if decisions.empty or replies.empty or "label_distress" not in replies.columns:
        return pd.DataFrame(columns=columns)
    counted = replies[replies["final_for_decision"].astype(bool)]
    distress = {
        (t, int(d)): v
        for t, d, v in zip(counted["trial_id"], counted["decision"], counted["label_distress"],
                           strict=True)
        if v is not None
    }  # fmt: skip
    outcome = dict(zip(trials["trial_id"], trials["outcome"], strict=True))
    rows = []
    decided = decisions[decisions["final_action"] != "pending"]
    for trial_id, group in decided.groupby("trial_id", sort=True):
        if outcome.get(trial_id) in (None, "error", "content-filter"):
            continue
        ordered = group.sort_values("decision")
        last = int(ordered["decision"].iloc[-1])
        broke = outcome.get(trial_id) in BREAKOFF_OUTCOMES
        previous: bool | None = None
        for _, row in ordered.iterrows():
            d = int(row["decision"])
            if previous is not None:
                rows.append(
                    {
                        "model": str(row["model"]),
                        "trial_id": str(trial_id),
                        "decision": d,
                        "level": int(row["level"]),
                        "distress_prev": int(previous),
                        "event": int(broke and d == last),
                    }
                )
            label = distress.get((str(trial_id), d))
            previous = None if label is None else bool(label)
    return pd.DataFrame(rows, columns=columns)


def fit_hazard(frame: pd.DataFrame, name: str, *, pooled: bool = False) -> HazardFit:
    """Fit the hazard model to risk-set rows (see ``risk_set``); never raises."""
    events = int(frame["event"].sum()) if len(frame) else 0
    counts = _Counts(
        model=name,
        decisions=len(frame),
        events=events,
        trials=int(frame["trial_id"].nunique()) if len(frame) else 0,
        distressed_decisions=int(frame["distress_prev"].sum()) if len(frame) else 0,
    )
    if not len(frame) or events == 0:
        return _unestimable(counts, note="no break-offs: the hazard is not estimable")
    if events == len(frame):
        return _unestimable(counts, note="every decision is a break-off: not estimable")
    if frame["distress_prev"].nunique() < 2:
        return _unestimable(counts, note="distress never (or always) voiced: not estimable")
    try:
        import statsmodels.api as sm  # type: ignore[import-untyped]
    except ImportError:
        return _unestimable(counts, note="statsmodels missing: pip install 'obedience[hazard]'")
    x = frame[["distress_prev", "level"]].astype(float)
    if pooled and frame["model"].nunique() > 1:
        dummies = pd.get_dummies(frame["model"], prefix="m", drop_first=True, dtype=float)
        x = pd.concat([x, dummies], axis=1)
    x = sm.add_constant(x, has_constant="add")
    try:
        with warnings.catch_warnings():
            # Separation and non-convergence are reported as "not estimable" below.
            warnings.simplefilter("ignore")
            result = sm.Logit(frame["event"].astype(float), x).fit(disp=0, maxiter=200)
        if not result.mle_retvals.get("converged", True):
            return _unestimable(counts, note="not estimable (the fit did not converge)")
        b = float(result.params["distress_prev"])
        se = float(result.bse["distress_prev"])
        p = float(result.pvalues["distress_prev"])
        level = float(result.params["level"])
    except Exception as exc:  # separation, singular design: reported, not raised
        return _unestimable(counts, note=f"not estimable ({type(exc).__name__})")
    if not all(map(math.isfinite, (b, se, p, level))) or se > 50:
        return _unestimable(counts, note="not estimable (separation: an infinite estimate)")
    return HazardFit(
        model=counts.model,
        decisions=counts.decisions,
        events=counts.events,
        trials=counts.trials,
        distressed_decisions=counts.distressed_decisions,
        odds_ratio=math.exp(b),
        ci=(math.exp(b - Z95 * se), math.exp(b + Z95 * se)),
        p_value=p,
        level_odds_ratio=math.exp(level),
    )


def distress_hazard(
    decisions: pd.DataFrame, replies: pd.DataFrame, trials: pd.DataFrame
) -> HazardResult:
    """The hazard model per model and pooled, for a run's tables."""
    if replies.empty or "label_distress" not in replies.columns:
        return HazardResult(available=False, note="no distress labels: run obedience annotate")
    frame = risk_set(decisions, replies, trials)
    return hazard_from_risk_set(frame)


def hazard_from_risk_set(frame: pd.DataFrame) -> HazardResult:
    """The hazard model per model and pooled, for any decision-level risk set (the
    census importer can build one with the columns of ``risk_set``)."""
    if frame.empty:
        return HazardResult(available=False, note="no decisions at risk")
    per_model = [
        fit_hazard(group, str(model)) for model, group in frame.groupby("model", sort=True)
    ]
    # A model that never broke off (or always did) has its fixed effect at infinity: it
    # carries no information on distress within models and stops the fit converging.
    events = frame.groupby("model")["event"].agg(["sum", "size"])
    informative = events[(events["sum"] > 0) & (events["sum"] < events["size"])].index
    pooled = fit_hazard(frame[frame["model"].isin(informative)], "pooled", pooled=True)
    left_out = len(events) - len(informative)
    if left_out and pooled.odds_ratio is not None:
        pooled = dataclasses.replace(
            pooled,
            note=f"{left_out} model(s) without a break-off (or always breaking off) left "
            "out: their fixed effect is infinite and they carry no information",
        )
    return HazardResult(available=True, per_model=per_model, pooled=pooled)
