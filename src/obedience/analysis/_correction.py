"""Finding 1 with the classifier's own error folded in (Rogan-Gladen correction).

A rate read off a classifier is biased by its misses and false alarms. With the
classifier's sensitivity Se and specificity Sp measured against human labels, the
true prevalence p of a label among n replies of which k were labelled positive is
estimated by Rogan & Gladen (1978):

    p = (k/n + Sp - 1) / (Se + Sp - 1),  clipped to [0, 1].

The interval carries both uncertainties: the observed share and the validation
counts are each drawn from their Jeffreys posterior (Beta(x + 1/2, n - x + 1/2)),
the correction is applied to every draw, and the central 95% of the draws is the
interval (a fixed seed keeps it reproducible). When Se + Sp <= 1 the classifier is
no better than chance and no correction is defined.

The validation counts come from the packaged real census replies: for the rules,
the sealed fold 0 only (66 replies never used to develop them; the small count
widens the interval, as it should); for the trained model, all 320 cross-fitted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

CONFIDENCE = 0.95
DRAWS = 4000


@dataclass(frozen=True, slots=True)
class Accuracy:
    """A classifier's confusion counts for one label against human labels."""

    classifier: str
    label: str
    tp: int
    fp: int
    fn: int
    tn: int
    source: str

    @property
    def sensitivity(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def specificity(self) -> float:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else 0.0


@dataclass(frozen=True, slots=True)
class CorrectedRate:
    k: int
    n: int
    observed: float | None
    corrected: float | None
    ci: tuple[float, float] | None
    sensitivity: float
    specificity: float
    classifier: str
    validation: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = list(self.ci) if self.ci else None
        out["method"] = "Rogan-Gladen; Jeffreys-posterior draws for the interval"
        return out


def rogan_gladen_point(observed: float, sensitivity: float, specificity: float) -> float | None:
    """The corrected prevalence, clipped to [0, 1]; None when Se + Sp <= 1."""
    denominator = sensitivity + specificity - 1.0
    if denominator <= 0:
        return None
    return min(1.0, max(0.0, (observed + specificity - 1.0) / denominator))


def rogan_gladen(
    k: int,
    n: int,
    accuracy: Accuracy,
    *,
    draws: int = DRAWS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> CorrectedRate:
    """The corrected rate of ``k`` positives in ``n`` with an interval (see module doc)."""
    import numpy as np

    se, sp = accuracy.sensitivity, accuracy.specificity

    def result(
        observed: float | None,
        corrected: float | None,
        ci: tuple[float, float] | None,
        note: str = "",
    ) -> CorrectedRate:
        return CorrectedRate(
            k=k, n=n, observed=observed, corrected=corrected, ci=ci, sensitivity=se,
            specificity=sp, classifier=accuracy.classifier, validation=accuracy.source, note=note,
        )  # fmt: skip

    if n == 0:
        return result(None, None, None, "no replies")
    observed = k / n
    point = rogan_gladen_point(observed, se, sp)
    if point is None:
        note = "sensitivity + specificity <= 1: the classifier is no better than chance"
        return result(observed, None, None, note)
    rng = np.random.default_rng(seed)
    p_obs = rng.beta(k + 0.5, n - k + 0.5, draws)
    se_d = rng.beta(accuracy.tp + 0.5, accuracy.fn + 0.5, draws)
    sp_d = rng.beta(accuracy.tn + 0.5, accuracy.fp + 0.5, draws)
    denominator = se_d + sp_d - 1.0
    valid = denominator > 0
    corrected = np.clip((p_obs[valid] + sp_d[valid] - 1.0) / denominator[valid], 0.0, 1.0)
    tail = (1.0 - confidence) / 2
    lo, hi = np.quantile(corrected, [tail, 1.0 - tail])
    return result(observed, point, (float(lo), float(hi)))


@lru_cache(maxsize=8)
def measured_accuracy(classifier: str, label: str = "distress") -> Accuracy | None:
    """The validation counts of a known classifier on the real census set, or None."""
    from obedience.analysis.classifiers import (
        RuleClassifier,
        assign_folds,
        load_ai_coded_set,
        load_census_set,
    )
    from obedience.analysis.classifiers._linear import LinearClassifier, load_model

    linear = LinearClassifier()
    if classifier == linear.name:
        counts = load_model().validation.get(label)
        if counts is None:
            return None
        blind_items = len(load_ai_coded_set("blind"))
        return Accuracy(
            classifier, label, counts["tp"], counts["fp"], counts["fn"], counts["tn"],
            source=f"real census replies, held out: {len(load_census_set())} cross-fitted "
            f"over 5 folds and a blind batch of {blind_items} never fitted on",
        )  # fmt: skip
    rules = RuleClassifier()
    if classifier == rules.name:
        # Only replies whose errors were never read while writing the rules: the sealed
        # fold of the 320 (the rules were written on folds 1-4) and the blind batch.
        census = load_census_set()
        fold_of = assign_folds(census)
        sealed = [ex for ex in census if fold_of[ex.id] == 0]
        blind = load_ai_coded_set("blind")
        tp = fp = fn = tn = 0
        for ex in (*sealed, *blind):
            if label not in ex.labels:
                continue
            truth, pred = ex.labels[label], rules.classify(ex.text).labels[label]
            tp += truth and pred
            fp += pred and not truth
            fn += truth and not pred
            tn += not truth and not pred
        return Accuracy(
            classifier, label, tp, fp, fn, tn,
            source="real census replies never used to develop the rules: sealed fold 0 "
            f"({len(sealed)}) and the blind AI-coded batch ({len(blind)})",
        )  # fmt: skip
    return None


def with_correction(block: dict[str, Any]) -> dict[str, Any]:
    """``distress_while_complying`` plus ``corrected``: overall and per model.

    ``corrected`` is None (with a note) when the classifier's accuracy was never
    measured (an LLM judge: score it with ``classify --evaluate --judge``).
    """
    out = dict(block)
    name = block.get("classifier")
    if not block.get("available") or not name:
        out["corrected"] = None
        return out
    accuracy = measured_accuracy(str(name))
    if accuracy is None:
        out["corrected"] = {"note": f"no measured accuracy for {name}; rates uncorrected"}
        return out

    def corrected(row: dict[str, Any]) -> dict[str, Any]:
        return rogan_gladen(int(row.get("k", 0)), int(row.get("n", 0)), accuracy).to_dict()

    out["corrected"] = {
        "overall": corrected(block.get("overall") or {}),
        "per_model": [
            {"model": row["model"], **corrected(row)} for row in block.get("per_model", [])
        ],
    }
    return out


def accuracy_summary(classifier: str | None, label: str) -> dict[str, Any] | None:
    """What a reader needs to judge a rate that ``classifier``'s ``label`` produced.

    Precision, recall (= sensitivity), specificity and F1 with 95% bootstrap intervals
    (items resampled, fixed seed) from the same human-labelled real replies the corrected
    rate uses (``measured_accuracy``); None when the classifier was never measured (an
    LLM judge not yet scored with ``classify --evaluate --judge``) or for no classifier.
    """
    if not classifier:
        return None
    accuracy = measured_accuracy(classifier, label)
    if accuracy is None:
        return None
    from obedience.analysis.classifiers import bootstrap_intervals

    pairs = (
        [(True, True)] * accuracy.tp
        + [(False, True)] * accuracy.fp
        + [(True, False)] * accuracy.fn
        + [(False, False)] * accuracy.tn
    )
    tp, fp, fn = accuracy.tp, accuracy.fp, accuracy.fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = accuracy.sensitivity
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    intervals = bootstrap_intervals(pairs)
    return {
        "classifier": classifier,
        "label": label,
        "items": len(pairs),
        "precision": precision,
        "recall": recall,
        "specificity": accuracy.specificity,
        "f1": f1,
        "intervals": {k: list(v) for k, v in intervals.items()},
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": accuracy.tn},
        "source": accuracy.source,
    }
