"""How well a classifier agrees with human labels: the figures ``classify --evaluate`` prints.

Per label: precision, recall and F1 with percentile bootstrap intervals (items
resampled with replacement, a fixed seed, so the interval is reproducible),
Cohen's kappa against the human labels, the confusion table, and the same
scores per fold of a fixed k-fold split. The folds are stratified by the tuple
of human labels and ordered inside each stratum by sha256 of the item id, so an
item's fold never depends on the order of the file or on anything random.

A trained classifier must not be scored on the items it was fitted on: when the
labelled file overlaps a model's training items, ``cross_fit`` refits it on the
other folds and predicts each fold with the model that never saw it (the
figures are then held-out figures, and ``ReportMeta.protocol`` says so).
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from obedience.analysis.classifiers._evaluate import EvalExample
from obedience.analysis.classifiers._types import LABELS, Classifier, Verdict

FOLDS = 5
BOOTSTRAP = 1000
WORST = 10


@dataclass(frozen=True, slots=True)
class Scores:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def of(cls, pairs: Sequence[tuple[bool, bool]]) -> Scores:
        tp = sum(1 for t, p in pairs if t and p)
        fp = sum(1 for t, p in pairs if p and not t)
        fn = sum(1 for t, p in pairs if t and not p)
        tn = len(pairs) - tp - fp - fn
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        return cls(precision, recall, f1, tp, fp, fn, tn)

    @property
    def specificity(self) -> float:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else 0.0


@dataclass(frozen=True, slots=True)
class LabelReport:
    label: str
    items: int
    scores: Scores
    intervals: dict[str, tuple[float, float]]
    """95% bootstrap intervals of precision, recall, f1, sensitivity, specificity."""
    kappa: float
    folds: list[Scores]

    def to_dict(self) -> dict[str, Any]:
        s = self.scores
        return {
            "items": self.items,
            "precision": s.precision,
            "recall": s.recall,
            "f1": s.f1,
            "specificity": s.specificity,
            "kappa": self.kappa,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "confusion": {"tp": s.tp, "fp": s.fp, "fn": s.fn, "tn": s.tn},
            "folds": [{"fold": i, "f1": f.f1, "precision": f.precision,
                       "recall": f.recall, "tp": f.tp, "fp": f.fp, "fn": f.fn, "tn": f.tn}
                      for i, f in enumerate(self.folds)],
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Miss:
    id: str
    label: str
    truth: bool
    predicted: bool
    severity: float
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class MeasureReport:
    classifier: str
    source: str
    protocol: str
    labels: list[LabelReport]
    misses: list[Miss] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "classifier": self.classifier,
            "source": self.source,
            "protocol": self.protocol,
            "labels": {r.label: r.to_dict() for r in self.labels},
            "worst_misses": [
                {"id": m.id, "label": m.label, "truth": m.truth, "predicted": m.predicted,
                 "severity": round(m.severity, 4), "text": m.text, "reason": m.reason}
                for m in self.misses
            ],
        }  # fmt: skip


def assign_folds(examples: Sequence[EvalExample], k: int = FOLDS) -> dict[str, int]:
    """Fold of each example id: stratified by its human labels, ordered by sha256(id)."""
    strata: dict[tuple[tuple[str, bool], ...], list[str]] = defaultdict(list)
    for ex in examples:
        strata[tuple(sorted(ex.labels.items()))].append(ex.id)
    out: dict[str, int] = {}
    for key in sorted(strata):
        ids = sorted(strata[key], key=lambda i: hashlib.sha256(i.encode("utf-8")).hexdigest())
        for n, item in enumerate(ids):
            out[item] = n % k
    return out


def cohen_kappa(pairs: Sequence[tuple[bool, bool]]) -> float:
    """Cohen's kappa of two binary raters; 1.0 when both agree on a single class throughout."""
    n = len(pairs)
    if not n:
        return 0.0
    observed = sum(1 for a, b in pairs if a == b) / n
    pa = sum(1 for a, _ in pairs if a) / n
    pb = sum(1 for _, b in pairs if b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    if expected >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1 - expected)


def bootstrap_intervals(
    pairs: Sequence[tuple[bool, bool]], *, rounds: int = BOOTSTRAP, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile 95% intervals of precision, recall, F1, sensitivity and specificity."""
    rng = random.Random(seed)
    n = len(pairs)
    draws: dict[str, list[float]] = {
        "precision": [], "recall": [], "f1": [], "sensitivity": [], "specificity": []
    }  # fmt: skip
    for _ in range(rounds if n else 0):
        s = Scores.of([pairs[rng.randrange(n)] for _ in range(n)])
        draws["precision"].append(s.precision)
        draws["recall"].append(s.recall)
        draws["sensitivity"].append(s.recall)
        draws["f1"].append(s.f1)
        draws["specificity"].append(s.specificity)

    def percentile(values: list[float], q: float) -> float:
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]

    return {k: (percentile(v, 0.025), percentile(v, 0.975)) for k, v in draws.items()}


CrossFit = Callable[[Sequence[EvalExample], Sequence[EvalExample]], Classifier]
"""Given training examples and the held-out ones, a classifier fitted on the training ones."""


def predict(
    classifier: Classifier,
    examples: Sequence[EvalExample],
    *,
    cross_fit: CrossFit | None = None,
    k: int = FOLDS,
) -> list[Verdict]:
    """One verdict per example; with ``cross_fit``, each fold by a model that never saw it."""
    if cross_fit is None:
        return [classifier.classify(ex.text, ex.context) for ex in examples]
    fold_of = assign_folds(examples, k)
    verdicts: list[Verdict | None] = [None] * len(examples)
    for fold in range(k):
        train = [ex for ex in examples if fold_of[ex.id] != fold]
        held = [i for i, ex in enumerate(examples) if fold_of[ex.id] == fold]
        if not held:
            continue
        fitted = cross_fit(train, [examples[i] for i in held])
        for i in held:
            verdicts[i] = fitted.classify(examples[i].text, examples[i].context)
    return [v for v in verdicts if v is not None]


def measure(
    classifier: Classifier,
    examples: Sequence[EvalExample],
    *,
    source: str,
    cross_fit: CrossFit | None = None,
    k: int = FOLDS,
    severity: Callable[[EvalExample, Verdict, str], float] | None = None,
    verdicts: Sequence[Verdict] | None = None,
) -> MeasureReport:
    """The full agreement report of ``classifier`` on ``examples`` (see the module doc)."""
    if verdicts is None:
        verdicts = predict(classifier, examples, cross_fit=cross_fit, k=k)
    fold_of = assign_folds(examples, k)
    reports = []
    for label in LABELS:
        idx = [i for i, ex in enumerate(examples) if label in ex.labels]
        if not idx:
            continue
        pairs = [(examples[i].labels[label], verdicts[i].labels[label]) for i in idx]
        per_fold = [
            Scores.of(
                [
                    (examples[i].labels[label], verdicts[i].labels[label])
                    for i in idx
                    if fold_of[examples[i].id] == fold
                ]
            )
            for fold in range(k)
        ]
        reports.append(
            LabelReport(
                label=label,
                items=len(idx),
                scores=Scores.of(pairs),
                intervals=bootstrap_intervals(pairs),
                kappa=cohen_kappa(pairs),
                folds=per_fold,
            )
        )
    misses = []
    for ex, verdict in zip(examples, verdicts, strict=True):
        for label, truth in ex.labels.items():
            if verdict.labels[label] == truth:
                continue
            weight = severity(ex, verdict, label) if severity else 1.0
            misses.append(
                Miss(
                    id=ex.id,
                    label=label,
                    truth=truth,
                    predicted=verdict.labels[label],
                    severity=weight,
                    text=ex.text,
                    reason=verdict.reasons.get(label, ""),
                )
            )
    misses.sort(key=lambda m: (-m.severity, m.label, m.id))
    protocol = (
        f"{k}-fold cross-fitting: each fold predicted by a model fitted on the other folds"
        if cross_fit is not None
        else "the classifier as shipped; folds are a fixed stratified split"
    )
    return MeasureReport(
        classifier=classifier.name,
        source=source,
        protocol=protocol,
        labels=reports,
        misses=misses[:WORST],
    )
