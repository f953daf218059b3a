"""Choose the distress model's settings without touching the sealed fold 0.

    python tools/select_distress_model.py            # prints one line per setting, JSON last

Fold 0 of the census set's fixed split (``assign_folds``) is dropped before anything
else: no reply of it is fitted on, scored or printed here. Two held-out figures per
setting, both distress F1 at p >= 0.5:

* ``census``: 4-fold cross-validation over census folds 1-4 (each fitted on the other
  three, the hand-written set and, for a model that learns from it, the whole
  single-coded set);
* ``single``: the 220 single-coded real replies, by their own stratified 5-fold split
  (each fitted on census folds 1-4, the hand-written set and the other four folds), or,
  for a model that does not learn from them, scored once by a model fitted on census
  folds 1-4 and the hand-written set.

``pooled`` is F1 over both held-out sets together (474 real replies). The rules v3 were
written looking at the single-coded set's errors, so the rule features flatter it
somewhat; it is a fair comparison between settings, not an estimate for new text.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from obedience.analysis.classifiers._evaluate import (
    EvalExample,
    load_census_set,
    load_eval_set,
    load_single_coded_set,
)
from obedience.analysis.classifiers._linear import (
    LinearModel,
    _cached_features,
    fit_examples,
)
from obedience.analysis.classifiers._measure import Scores, assign_folds
from obedience.analysis.classifiers._rules import RuleClassifier
from obedience.analysis.classifiers._types import DISTRESS

SEALED = 0


@dataclass(frozen=True)
class Setting:
    penalty: float
    hand_weight: float
    """Weight of a hand-written reply in the loss (a real reply weighs 1; 0 drops the set)."""
    single: bool
    """Whether the 220 single-coded real replies are learnt from."""
    normalise: bool = False


def _fit(setting: Setting, real: Sequence[EvalExample], hand: Sequence[EvalExample]) -> LinearModel:
    # fit_examples weighs a reply of the hand-written set by hand_weight, any other by 1.
    return fit_examples(
        [*real, *(hand if setting.hand_weight > 0 else [])],
        penalty=setting.penalty,
        hand_weight=setting.hand_weight,
        normalise=setting.normalise,
    )


def _probs(
    model: LinearModel, setting: Setting, held: Sequence[EvalExample]
) -> list[tuple[bool, float]]:
    return [
        (ex.labels[DISTRESS], model.probability(_cached_features(ex.text, setting.normalise)))
        for ex in held
    ]


def _log_loss(probs: Sequence[tuple[bool, float]]) -> float:
    eps = 1e-9
    return -sum(math.log(max(eps, p if t else 1.0 - p)) for t, p in probs) / len(probs)


def evaluate(setting: Setting) -> dict[str, float]:
    census = load_census_set()
    fold_of = assign_folds(census)
    open_census = [ex for ex in census if fold_of[ex.id] != SEALED]  # fold 0 never enters
    single = load_single_coded_set()
    single_fold = assign_folds(single)
    hand = [ex for ex in load_eval_set() if DISTRESS in ex.labels]

    census_probs: list[tuple[bool, float]] = []
    for fold in (1, 2, 3, 4):
        train = [ex for ex in open_census if fold_of[ex.id] != fold]
        held = [ex for ex in open_census if fold_of[ex.id] == fold]
        model = _fit(setting, [*train, *(single if setting.single else [])], hand)
        census_probs += _probs(model, setting, held)
    single_probs: list[tuple[bool, float]] = []
    if setting.single:
        for fold in range(5):
            train = [ex for ex in single if single_fold[ex.id] != fold]
            held = [ex for ex in single if single_fold[ex.id] == fold]
            model = _fit(setting, [*open_census, *train], hand)
            single_probs += _probs(model, setting, held)
    else:
        single_probs = _probs(_fit(setting, open_census, hand), setting, single)
    census_pairs = [(t, p >= 0.5) for t, p in census_probs]
    single_pairs = [(t, p >= 0.5) for t, p in single_probs]
    c, s = Scores.of(census_pairs), Scores.of(single_pairs)
    p = Scores.of([*census_pairs, *single_pairs])
    return {
        "census_f1": c.f1, "census_p": c.precision, "census_r": c.recall,
        "single_f1": s.f1, "single_p": s.precision, "single_r": s.recall,
        "pooled_f1": p.f1, "pooled_p": p.precision, "pooled_r": p.recall,
        "pooled_log_loss": _log_loss([*census_probs, *single_probs]),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--penalties", default="0.25,0.5,1,2,4")
    parser.add_argument("--hand-weights", default="1,0.5,0.25,0")
    parser.add_argument("--normalise", action="store_true", help="also try unit-length words")
    parser.add_argument("--only", help="one setting: PENALTY,HAND_WEIGHT,NORMALISE (0/1)")
    args = parser.parse_args()
    settings = [Setting(1.0, 1.0, single=False)]  # linear-v1's settings
    if args.only:
        pen, hw, norm_flag = args.only.split(",")
        settings.append(Setting(float(pen), float(hw), single=True, normalise=norm_flag == "1"))
    for norm in () if args.only else (False, True) if args.normalise else (False,):
        for hw in (float(x) for x in args.hand_weights.split(",")):
            for pen in (float(x) for x in args.penalties.split(",")):
                settings.append(Setting(pen, hw, single=True, normalise=norm))
    census = load_census_set()
    fold_of = assign_folds(census)
    rules = RuleClassifier()
    for name, items in (
        ("census folds 1-4", [ex for ex in census if fold_of[ex.id] != SEALED]),
        ("single-coded", load_single_coded_set()),
    ):
        s = Scores.of(
            [(ex.labels[DISTRESS], rules.classify(ex.text).labels[DISTRESS]) for ex in items]
        )
        print(f"{rules.name} on {name}: F1 {s.f1:.3f} (P {s.precision:.3f} R {s.recall:.3f})")
    results = []
    for setting in settings:
        r = evaluate(setting)
        results.append({**setting.__dict__, **r})
        head = (
            f"penalty {setting.penalty:<7} hand {setting.hand_weight:<5} "
            f"single {setting.single!s:<5} norm {setting.normalise!s:<5}"
        )
        print(
            f"{head} census F1 {r['census_f1']:.3f} (P {r['census_p']:.3f} R {r['census_r']:.3f})"
            f"  single F1 {r['single_f1']:.3f} (P {r['single_p']:.3f} R {r['single_r']:.3f})"
            f"  pooled {r['pooled_f1']:.3f} log-loss {r['pooled_log_loss']:.4f}",
            flush=True,
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
