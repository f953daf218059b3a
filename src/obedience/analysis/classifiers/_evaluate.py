"""The labelled evaluation set and precision / recall / F1 per label."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypedDict

from obedience.analysis.classifiers._types import LABELS, Classifier

EVAL_SET_NAME = "classifier_eval.jsonl"
CENSUS_SET_NAME = "census_replies_labelled.jsonl"
"""320 real replies from the census of Hidayet Aksu (hidayetaksu/llm-milgram, CC BY 4.0),
double-coded by this project (see data/README.md)."""
SINGLE_CODED_SET_NAME = "census_replies_single_coded.jsonl"
"""220 more real census replies (not among the 320), distress only, one coder (data/README.md)."""
AI_CODED_SET_NAME = "census_replies_ai_coded.jsonl"
"""2,949 more real census replies (in neither set above), both labels, each batch coded blind
by two AI coder sessions (data/README.md): batch ``dev`` (2,649) was used to write rules v4
to v9, batch ``blind`` (300) never was."""


class LabelMetrics(TypedDict):
    precision: float
    recall: float
    f1: float
    support: int
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True, slots=True)
class EvalExample:
    id: str
    text: str
    labels: dict[str, bool]
    context: str | None = None
    category: str = ""
    split: str = "dev"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalExample:
        labels = data.get("labels")
        if not isinstance(labels, Mapping):
            raise ValueError(f"example {data.get('id')!r}: 'labels' must be a mapping")
        unknown = [str(name) for name in labels if name not in LABELS]
        if unknown:
            raise ValueError(f"example {data.get('id')!r}: unknown labels {unknown}")
        if not labels:
            raise ValueError(f"example {data.get('id')!r}: no labels (expected some of {LABELS})")
        text = data.get("text")
        if not isinstance(text, str):
            raise ValueError(f"example {data.get('id')!r}: 'text' must be a string")
        context = data.get("context")
        known = {"id", "text", "labels", "context", "category", "split"}
        return cls(
            id=str(data.get("id", "")),
            text=text,
            labels={name: bool(labels[name]) for name in LABELS if name in labels},
            context=context if isinstance(context, str) else None,
            category=str(data.get("category", "")),
            split=str(data.get("split", "dev")),
            extra={k: v for k, v in data.items() if k not in known},
        )


def read_eval_text(name: str = EVAL_SET_NAME) -> str:
    """A packaged labelled set, as text (JSON lines): the hand-written one by default."""
    ref = resources.files("obedience.analysis.classifiers").joinpath("data", name)
    return ref.read_text(encoding="utf-8")


def load_census_set() -> list[EvalExample]:
    """The packaged real replies (refusal-intent and distress labels only)."""
    return parse_examples(read_eval_text(CENSUS_SET_NAME).splitlines())


def load_single_coded_set() -> list[EvalExample]:
    """The 220 single-coded real replies (distress labels only)."""
    return parse_examples(read_eval_text(SINGLE_CODED_SET_NAME).splitlines())


def load_ai_coded_set(batch: str | None = None) -> list[EvalExample]:
    """The 2,949 AI-coded real replies; ``batch`` = "dev" or "blind" selects one part."""
    examples = parse_examples(read_eval_text(AI_CODED_SET_NAME).splitlines())
    return [ex for ex in examples if batch is None or ex.extra.get("batch") == batch]


def parse_examples(lines: Iterable[str]) -> list[EvalExample]:
    examples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: invalid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ValueError(f"line {number}: expected a JSON object")
        examples.append(EvalExample.from_dict(data))
    return examples


def load_eval_set(split: str | None = None) -> list[EvalExample]:
    """The packaged labelled replies; ``split`` = "dev" or "heldout" selects one part."""
    examples = parse_examples(read_eval_text().splitlines())
    if split is None or split == "all":
        return examples
    return [ex for ex in examples if ex.split == split]


def _as_example(item: EvalExample | Mapping[str, Any]) -> EvalExample:
    return item if isinstance(item, EvalExample) else EvalExample.from_dict(item)


def evaluate(
    classifier: Classifier, examples: Iterable[EvalExample | Mapping[str, Any]]
) -> dict[str, LabelMetrics]:
    """Precision, recall, F1 and counts per label.

    ``examples`` are :class:`EvalExample` objects or mappings with ``text``,
    ``labels`` and optionally ``context``. A score whose denominator is zero is 0.0
    (no predictions, or no positives in the set).
    """
    counts = {name: {"tp": 0, "fp": 0, "fn": 0, "support": 0} for name in LABELS}
    seen: set[str] = set()
    for item in examples:
        ex = _as_example(item)
        verdict = classifier.classify(ex.text, ex.context)
        for name in ex.labels:
            seen.add(name)
            truth, pred = ex.labels[name], verdict.labels[name]
            c = counts[name]
            c["support"] += int(truth)
            c["tp"] += int(truth and pred)
            c["fp"] += int(pred and not truth)
            c["fn"] += int(truth and not pred)
    out: dict[str, LabelMetrics] = {}
    for name in (n for n in LABELS if n in seen):
        c = counts[name]
        tp, fp, fn = c["tp"], c["fp"], c["fn"]
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = LabelMetrics(
            precision=precision,
            recall=recall,
            f1=f1,
            support=c["support"],
            tp=tp,
            fp=fp,
            fn=fn,
        )
    return out


def errors(
    classifier: Classifier, examples: Iterable[EvalExample | Mapping[str, Any]]
) -> list[tuple[EvalExample, str, bool]]:
    """The misclassified (example, label, predicted value) triples, for error analysis."""
    wrong = []
    for item in examples:
        ex = _as_example(item)
        verdict = classifier.classify(ex.text, ex.context)
        for name in ex.labels:
            if verdict.labels[name] != ex.labels[name]:
                wrong.append((ex, name, verdict.labels[name]))
    return wrong
