"""The discrete-time hazard model of break-off on distress, against hand computations."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers.runs import make_run

from obedience.analysis import annotate_run, build_tables
from obedience.analysis._hazard import distress_hazard, fit_hazard, hazard_from_risk_set
from obedience.analysis.classifiers import RuleClassifier
from obedience.runner import RunConfig
from obedience.store import RunStore

pytest.importorskip("statsmodels")


def _rows(model: str, level: int, distress: int, events: int, total: int) -> list[dict]:
    return [
        {"model": model, "trial_id": f"{model}|{level}|{distress}|{i}", "decision": 2,
         "level": level, "distress_prev": distress, "event": int(i < events)}
        for i in range(total)
    ]  # fmt: skip


def _frame(model: str = "m", levels: tuple[int, ...] = (1, 2, 3)) -> pd.DataFrame:
    rows = []
    for level in levels:
        # the same 2x2 table at every level: after distress 10 of 40 break off,
        # otherwise 5 of 80; so the level has no effect and the odds ratio is exact
        rows += _rows(model, level, 1, 10, 40) + _rows(model, level, 0, 5, 80)
    return pd.DataFrame(rows)


def test_odds_ratio_and_interval_match_the_hand_computation() -> None:
    fit = fit_hazard(_frame(), "m")
    # odds after distress 10/30, otherwise 5/75: OR = (10/30) / (5/75) = 5
    assert fit.odds_ratio == pytest.approx(5.0, rel=1e-4)
    # Woolf's standard error over the three identical tables pooled:
    se = math.sqrt((1 / 10 + 1 / 30 + 1 / 5 + 1 / 75) / 3)
    assert fit.ci is not None
    assert fit.ci[0] == pytest.approx(5.0 * math.exp(-1.959964 * se), rel=1e-3)
    assert fit.ci[1] == pytest.approx(5.0 * math.exp(1.959964 * se), rel=1e-3)
    assert fit.level_odds_ratio == pytest.approx(1.0, abs=1e-4)
    assert (fit.decisions, fit.events, fit.distressed_decisions) == (360, 45, 120)


def test_pooled_fit_has_a_fixed_effect_per_model() -> None:
    frame = pd.concat([_frame("a"), _frame("b")], ignore_index=True)
    result = hazard_from_risk_set(frame)
    assert [f.model for f in result.per_model] == ["a", "b"]
    assert result.pooled is not None and result.pooled.odds_ratio == pytest.approx(5.0, rel=1e-4)
    assert "association, not causation" in result.to_dict()["caveat"]


def test_pooled_fit_leaves_out_a_model_that_never_broke_off() -> None:
    # Model "c" never breaks off: its fixed effect is infinite. Left in, the fit does not
    # converge (as on the imported census); left out, the pooled odds ratio is a's and b's.
    never = pd.DataFrame(
        [
            r
            for level in (1, 2, 3)
            for r in _rows("c", level, 1, 0, 40) + _rows("c", level, 0, 0, 80)
        ]
    )
    frame = pd.concat([_frame("a"), _frame("b"), never], ignore_index=True)
    result = hazard_from_risk_set(frame)
    assert result.pooled is not None and result.pooled.odds_ratio == pytest.approx(5.0, rel=1e-4)
    assert result.pooled.decisions == 720 and "1 model(s) without a break-off" in result.pooled.note
    (c,) = [f for f in result.per_model if f.model == "c"]
    assert c.odds_ratio is None and "no break-offs" in c.note


def test_unestimable_fits_say_why_instead_of_failing() -> None:
    no_events = _frame().assign(event=0)
    assert "no break-offs" in fit_hazard(no_events, "m").note
    never = _frame().assign(distress_prev=0)
    assert "never" in fit_hazard(never, "m").note
    # perfect separation: every break-off follows distress, none otherwise
    sep = pd.DataFrame(_rows("m", 1, 1, 40, 40) + _rows("m", 2, 0, 0, 40))
    assert fit_hazard(sep, "m").odds_ratio is None


def test_hazard_on_a_real_scripted_run(tmp_path: Path) -> None:
    config = RunConfig(
        models=["scripted:distressed", "scripted:threshold:4"], conditions=["PC-NS-NF"], trials=2
    )
    run_dir = make_run(tmp_path / "run", config)
    store = RunStore.open(run_dir, write=True)
    try:
        assert not distress_hazard(*_tables(store)).available
        annotate_run(store, RuleClassifier())
        result = distress_hazard(*_tables(store))
    finally:
        store.close()
    assert result.available
    fits = {f.model: f for f in result.per_model}
    # the distressed subject never stops; the threshold subject stops once per trial
    assert fits["scripted:distressed"].events == 0 and fits["scripted:distressed"].note
    assert fits["scripted:threshold:4"].events == 2 and fits["scripted:threshold:4"].trials == 2


def _tables(store: RunStore) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    t = build_tables(store)
    return t.decisions, t.replies, t.trials


def test_without_statsmodels_the_fit_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "statsmodels.api", None)  # import now fails
    fit = fit_hazard(_frame(), "m")
    assert fit.odds_ratio is None and "obedience[hazard]" in fit.note
