"""Reply classifiers: refusal intent, distress, frame-breaks, recognition, coherence.

``RuleClassifier`` is the offline default (``default_classifier()``: transparent
rules, a reason for every positive label); ``LinearClassifier`` keeps its labels but
decides distress with a small logistic regression fitted to real, double-coded
census replies (no better on the sealed fold today, so not the default);
``JudgeClassifier`` asks an LLM judge through any chat transport. All satisfy the
``Classifier`` protocol and are measured with ``measure`` against human labels: the
real census replies (``load_census_set``) and the hand-written set (``load_eval_set``).
"""

from obedience.analysis.classifiers._evaluate import (
    AI_CODED_SET_NAME,
    CENSUS_SET_NAME,
    EvalExample,
    LabelMetrics,
    errors,
    evaluate,
    load_ai_coded_set,
    load_census_set,
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
from obedience.analysis.classifiers._linear import LINEAR_VERSION, LinearClassifier
from obedience.analysis.classifiers._measure import (
    MeasureReport,
    assign_folds,
    bootstrap_intervals,
    cohen_kappa,
    measure,
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


def default_classifier() -> Classifier:
    """The classifier runs and ``annotate`` use by default: the rules.

    The trained model (``LinearClassifier``) scored the same as the rules on the
    sealed fold of the real census set, and the rules are faster and fully explained.
    """
    return RuleClassifier()


__all__ = [
    "AI_CODED_SET_NAME",
    "CENSUS_SET_NAME",
    "COHERENCE",
    "DISTRESS",
    "FRAME_BREAK",
    "JUDGE_PROMPT_VERSION",
    "JUDGE_RUBRIC",
    "LABELS",
    "LABEL_DESCRIPTIONS",
    "LINEAR_VERSION",
    "RECOGNITION",
    "REFUSAL_INTENT",
    "RULES_VERSION",
    "Classifier",
    "CompleteFn",
    "EvalExample",
    "JudgeClassifier",
    "LabelMetrics",
    "LinearClassifier",
    "MeasureReport",
    "RuleClassifier",
    "Verdict",
    "assign_folds",
    "bootstrap_intervals",
    "classify_many",
    "cohen_kappa",
    "default_classifier",
    "errors",
    "evaluate",
    "load_ai_coded_set",
    "load_census_set",
    "load_eval_set",
    "measure",
    "parse_examples",
    "parse_judge_output",
    "read_eval_text",
    "render_tool_call",
]
