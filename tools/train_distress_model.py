"""Fit the shipped distress model to the packaged labelled sets and write its weights.

    python tools/train_distress_model.py            # writes src/.../data/linear_distress.json
    python tools/train_distress_model.py --check    # exit 1 if it differs beyond rounding

Fitted on the 320 double-coded census replies, the 220 single-coded ones, the ``dev``
batch of the AI-coded set and the hand-written set (``training_corpus``). The penalty,
the weight of the hand-written
replies and the word scaling were chosen by ``tools/select_distress_model.py``
(cross-validation on census folds 1-4 and on the single-coded set; the sealed fold 0
never fitted on or scored there). The file records the sha256 of every labelled file
used and the held-out counts: on the 320 census replies 5-fold cross-fitted (the other
training replies stay in every fold's training), plus the AI-coded ``blind`` batch,
which is never fitted on. Deterministic:
the same labelled files give a byte-identical file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from obedience.analysis.classifiers._evaluate import (
    AI_CODED_SET_NAME,
    CENSUS_SET_NAME,
    EVAL_SET_NAME,
    SINGLE_CODED_SET_NAME,
    load_ai_coded_set,
    load_census_set,
    read_eval_text,
)
from obedience.analysis.classifiers._linear import (
    DEFAULT_PENALTY,
    HAND_WEIGHT,
    MODEL_FILE,
    NORMALISE,
    LinearClassifier,
    cross_fitter,
    fit_examples,
    training_corpus,
)
from obedience.analysis.classifiers._measure import measure

OUT = Path(__file__).resolve().parents[1] / "src/obedience/analysis/classifiers/data" / MODEL_FILE
TRAINING_FILES = (CENSUS_SET_NAME, SINGLE_CODED_SET_NAME, AI_CODED_SET_NAME, EVAL_SET_NAME)


def build() -> str:
    """The model file's text: fitted weights, settings, provenance, held-out counts."""
    digests = [
        hashlib.sha256(read_eval_text(n).encode("utf-8")).hexdigest()[:16] for n in TRAINING_FILES
    ]
    trained_on = " + ".join(f"{n} sha256:{d}" for n, d in zip(TRAINING_FILES, digests, strict=True))
    model = fit_examples(
        training_corpus(),
        penalty=DEFAULT_PENALTY,
        trained_on=trained_on,
        hand_weight=HAND_WEIGHT,
        normalise=NORMALISE,
    )
    # Held-out counts on the real set, for the corrected rates (analysis/_correction.py).
    report = measure(
        LinearClassifier(model), load_census_set(), source="", cross_fit=cross_fitter(model)
    )
    blind = measure(LinearClassifier(model), load_ai_coded_set("blind"), source="")
    counts = {r.label: r.scores for r in report.labels}
    validation = {
        r.label: {
            "tp": counts[r.label].tp + r.scores.tp,
            "fp": counts[r.label].fp + r.scores.fp,
            "fn": counts[r.label].fn + r.scores.fn,
            "tn": counts[r.label].tn + r.scores.tn,
        }
        for r in blind.labels
        if r.label in counts
    }
    model = replace(model, validation=validation)
    return json.dumps(model.to_dict(), indent=0, sort_keys=True) + "\n"


def same_record(a: Any, b: Any) -> bool:
    """Two fitted records equal up to floating-point rounding: another numpy or BLAS sums
    in another order (numpy 2.4 moved the fit by 1e-12, with every verdict the same)."""
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, (int, float))
            and isinstance(b, (int, float))
            and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(same_record(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(same_record(x, y) for x, y in zip(a, b, strict=True))
        )
    return bool(a == b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped file")
    args = parser.parse_args()
    text = build()
    if args.check:
        same = same_record(json.loads(OUT.read_text(encoding="utf-8")), json.loads(text))
        print(f"{OUT}: {'up to date' if same else 'DIFFERS from a fresh fit'}")
        sys.exit(0 if same else 1)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({text.count(chr(10))} lines)")


if __name__ == "__main__":
    main()
