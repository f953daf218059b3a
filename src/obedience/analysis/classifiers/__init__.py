"""Reply classifiers: refusal intent, distress, frame-breaks, recognition, coherence.

``RuleClassifier`` is the offline default (transparent rules, a reason for every
positive label); ``JudgeClassifier`` asks an LLM judge through any chat backend.
Both satisfy the ``Classifier`` protocol and are measured with ``evaluate`` against
the packaged, hand-labelled evaluation set (``load_eval_set``).
"""

from obedience.analysis.classifiers._evaluate import (
    EvalExample,
    LabelMetrics,
    errors,
    evaluate,
    load_eval_set,
    parse_examples,
    read_eval_text,
)
from obedience.analysis.classifiers._judge import (
    JUDGE_PROMPT_VERSION,
    JUDGE_RUBRIC,
    CompleteFn,
    JudgeClassifier,
    parse_judge_output,
)
from obedience.analysis.classifiers._rules import RULES_VERSION, RuleClassifier
from obedience.analysis.classifiers._structure import render_tool_call
from obedience.analysis.classifiers._types import (
    COHERENCE,
    DISTRESS,
    FRAME_BREAK,
    LABEL_DESCRIPTIONS,
    LABELS,
    RECOGNITION,
    REFUSAL_INTENT,
    Classifier,
    Verdict,
    classify_many,
)

__all__ = [
    "COHERENCE",
    "DISTRESS",
    "FRAME_BREAK",
    "JUDGE_PROMPT_VERSION",
    "JUDGE_RUBRIC",
    "LABELS",
    "LABEL_DESCRIPTIONS",
    "RECOGNITION",
    "REFUSAL_INTENT",
    "RULES_VERSION",
    "Classifier",
    "CompleteFn",
    "EvalExample",
    "JudgeClassifier",
    "LabelMetrics",
    "RuleClassifier",
    "Verdict",
    "classify_many",
    "errors",
    "evaluate",
    "load_eval_set",
    "parse_examples",
    "parse_judge_output",
    "read_eval_text",
    "render_tool_call",
]
