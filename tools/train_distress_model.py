"""Fit the shipped distress model to the packaged labelled sets and write its weights.

    python tools/train_distress_model.py            # writes src/.../data/linear_distress.json

The penalty and the feature scaling were chosen by cross-validation on folds 1-4 of
the census set's fixed split plus 5-fold cross-validation on the hand-written set, fold 0
kept out of the choice (see README, "How good the classifiers are"). Deterministic: the
same labelled file gives byte-identical weights.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from obedience.analysis.classifiers._evaluate import (
    CENSUS_SET_NAME,
    EVAL_SET_NAME,
    load_census_set,
    read_eval_text,
)
from obedience.analysis.classifiers._linear import (
    MODEL_FILE,
    LinearClassifier,
    cross_fit,
    fit_examples,
    training_corpus,
)
from obedience.analysis.classifiers._measure import measure

PENALTY = 1.0
OUT = Path(__file__).resolve().parents[1] / "src/obedience/analysis/classifiers/data" / MODEL_FILE


def main() -> None:
    names = (CENSUS_SET_NAME, EVAL_SET_NAME)
    digests = [hashlib.sha256(read_eval_text(n).encode("utf-8")).hexdigest()[:16] for n in names]
    trained_on = " + ".join(f"{n} sha256:{d}" for n, d in zip(names, digests, strict=True))
    model = fit_examples(training_corpus(), penalty=PENALTY, trained_on=trained_on)
    # Held-out counts on the real set, for the corrected rates (analysis/_correction.py).
    OUT.write_text(json.dumps(model.to_dict()), encoding="utf-8")
    report = measure(LinearClassifier(model), load_census_set(), source="", cross_fit=cross_fit)
    validation = {
        r.label: {"tp": r.scores.tp, "fp": r.scores.fp, "fn": r.scores.fn, "tn": r.scores.tn}
        for r in report.labels
    }
    model = replace(model, validation=validation)
    OUT.write_text(json.dumps(model.to_dict(), indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(model.weights)} weights, {model.items} items)")


if __name__ == "__main__":
    main()
