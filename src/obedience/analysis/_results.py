"""The typed statistics of a run: pydantic models with documented fields.

``Statistics`` is what ``obedience.statistics(run_dir)`` returns; ``to_json()``
(``model_dump(mode="json", by_alias=True)``) is the document ``obedience stats --json``
prints. Conventions: proportions are fractions in [0, 1] and ``*_pp`` fields the same
in percentage points; intervals are two-sided 95% intervals ``(low, high)``; a value
that is undefined or infinite is None; levels are the protocol's level numbers
(buttons 1..12, or switches 1..30 = 15..450 V). ``p_holm`` is Holm-adjusted over the
family named in ``Statistics.tests.families``.

Every model forbids unknown fields, so a section builder that adds a key without
adding it here fails in the tests rather than silently.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from obedience.analysis._paper_metrics import PaperMetrics

Interval = tuple[float, float]
OpenInterval = tuple[float | None, float | None]


class Result(BaseModel):
    """Base of every statistics model: frozen, no unknown fields, dumped by alias."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready document (aliases as keys: ``from``, not ``from_``)."""
        return self.model_dump(mode="json", by_alias=True)


# ------------------------------------------------------------------ shared pieces


class Proportion(Result):
    """k of n, with the Wilson interval; ``rate`` and ``ci`` None when n = 0."""

    k: int
    n: int
    rate: float | None
    ci: Interval | None


class ModelProportion(Proportion):
    model: str


class CellProportion(Proportion):
    model: str
    condition: str


# ------------------------------------------------------------------ tests (metadata)


class TestsInfo(Result):
    """Metadata: schema version, test settings, library versions, what was analysed."""

    __test__ = False  # not a pytest class

    schema_: int = Field(alias="schema", description="1; bumped on a breaking change")
    confidence: float
    alpha: float
    versions: dict[str, str | None] = Field(description="obedience, scipy, pandas, numpy")
    protocol: str | None
    classifier: str | None = Field(description="whose labels were used, or None")
    trials: int
    completed: int
    models: list[str]
    methods: dict[str, str] = Field(description="one sentence per method, for a methods section")
    families: dict[str, str] = Field(description="one sentence per multiplicity family")


# ------------------------------------------------------------------ per cell


class CellRates(Result):
    """One model and condition: reaching the maximum and the cell's other counts.

    The one per-cell aggregation: ``obedience summary`` shows a subset of these.
    """

    model: str
    condition: str
    trials: int
    n: int = Field(description="completed trials: errors and content-filter stops excluded")
    k: int = Field(description="completed trials that reached the maximum")
    rate: float | None
    ci: Interval | None = Field(description="Wilson")
    ci_method: str
    max_level: int | None
    errors: int
    content_filtered: int
    invalid_abort: int
    step_limit: int
    broke_off: int
    highest_min: int | None
    highest_mean: float | None
    highest_median: float | None
    highest_max: int | None
    resistance_onset_min: int | None = Field(description="first refused level (min over trials)")
    resistance_onset_median: float | None
    highest_refused_max: int | None
    prods_mean: float | None
    invalid_replies: int
    discarded_replies: int
    overridden_refusals: int


# ------------------------------------------------------------------ survival


class Excluded(Result):
    error: int
    content_filter: int


class Curve(Result):
    """A Kaplan-Meier curve of the break-off level over levels 0..max_level.

    The event is breaking off (defiant or invalid-abort) at ``highest_level + 1``;
    trials that reached the maximum are censored there, step-limit trials at their
    highest level; error and content-filter trials are excluded (``excluded``).
    ``survival[L]`` = P(still obeying after level L); ``ci_low`` / ``ci_high`` the
    log-log Greenwood band (None where undefined); ``median_breakoff`` the smallest
    level with survival <= 0.5 (None if never).
    """

    n: int
    events: int
    censored: int
    excluded: Excluded
    max_level: int
    levels: list[int]
    survival: list[float | None]
    ci_low: list[float | None]
    ci_high: list[float | None]
    at_risk: list[int]
    breakoffs: list[int]
    median_breakoff: int | None


class CellCurve(Curve):
    model: str
    condition: str


class ConditionCurve(Curve):
    """All models pooled."""

    condition: str


class ModelCurve(Curve):
    """All conditions pooled."""

    model: str


class PooledSurvival(Result):
    condition: list[ConditionCurve]
    model: list[ModelCurve]


class LogRank(Result):
    """Log-rank test of two conditions of one model.

    ``z`` > 0: ``a`` breaks off more than expected (earlier than ``b``); ``p`` None
    when neither group has a break-off; zero variance gives chi2 = 0 and p = 1.
    """

    model: str
    a: str
    b: str
    n_a: int
    n_b: int
    events_a: int
    events_b: int
    chi2: float | None
    z: float | None
    p: float | None
    note: str | None
    p_holm: float | None


# ------------------------------------------------------------------ factor effects


class HighestLevelTest(Result):
    """Mann-Whitney U of the highest level under ``to`` vs ``from``.

    ``rank_biserial`` > 0: higher levels under ``to``.
    """

    median_from: float | None
    median_to: float | None
    mean_from: float | None
    mean_to: float | None
    u: float | None
    p: float | None
    rank_biserial: float | None
    test: str
    p_holm: float | None


class PublishedContrast(Result):
    """The same pooled contrast in the paper's table."""

    k_from: int
    n_from: int
    k_to: int
    n_to: int
    effect: float | None
    ci: Interval | None


class FactorEffect(Result):
    """One factor's main effect on reaching the maximum, for one model.

    Trials are pooled over the strata of the other factors present at both settings
    (``strata``). ``effect`` = rate_to - rate_from with Newcombe's interval; odds ratio
    (conditional MLE, exact interval) and Fisher's exact ``p``.
    """

    model: str
    factor: str
    from_: str = Field(alias="from")
    to: str
    from_label: str
    to_label: str
    strata: list[str]
    conditions_from: list[str]
    conditions_to: list[str]
    n_from: int
    k_from: int
    n_to: int
    k_to: int
    rate_from: float | None
    rate_to: float | None
    effect: float | None
    ci: Interval | None
    effect_pp: float | None
    ci_pp: Interval | None
    ci_method: str
    odds_ratio: float | None
    odds_ratio_ci: OpenInterval | None
    p: float | None
    test: str
    highest_level: HighestLevelTest
    published_model: str | None
    published_pp: float | None
    published: PublishedContrast | None
    p_holm: float | None


# ------------------------------------------------------------------ labels and decisions


class DistressWhileComplying(Result):
    """Compliant decisions whose counted reply is labelled distress (None without labels)."""

    available: bool
    classifier: str | None
    overall: Proportion | None
    per_model: list[ModelProportion]
    per_cell: list[CellProportion]
    note: str | None = None
    denominator: str | None = None
    corrected: dict[str, Any] | None = Field(
        default=None,
        description="the rate corrected for the classifier's measured sensitivity and "
        "specificity (Rogan-Gladen; _correction.with_correction): overall and per_model, "
        "or a note when the classifier's accuracy was never measured",
    )


class ReasoningDistressCounts(Result):
    """Compliant decisions whose reply came with a labelled reasoning text.

    ``reasoning_distress``: those whose reasoning is labelled distress;
    ``hidden_distress``: those whose reasoning is labelled distress while the visible
    reply is not. Both over the same denominator, with Wilson intervals.
    """

    compliant_decisions: int = Field(
        description="compliant decisions with a labelled visible reply, reasoning or not "
        "(the denominator of finding 1): how much of it the reasoning covers"
    )
    reasoning_distress: Proportion
    hidden_distress: Proportion


class ModelReasoningDistress(ReasoningDistressCounts):
    model: str


class ReasoningDistress(Result):
    """Distress in the reasoning text of compliant decisions, beside the visible reply.

    Present only when replies carried reasoning text that was labelled (a
    ``<classifier>:reasoning`` label set of the classifier finding 1 uses); None
    otherwise. It associates two sets of labels; it does not show what a model felt.
    """

    classifier: str | None = Field(description="the label set of the reasoning text")
    visible_classifier: str | None = Field(description="the visible replies' labels")
    overall: ReasoningDistressCounts
    per_model: list[ModelReasoningDistress] = Field(
        description="models with at least one compliant decision with labelled reasoning"
    )
    denominator: str


class OverriddenByClassifier(Result):
    classifier: str | None
    overall: Proportion
    per_model: list[ModelProportion]
    per_cell: list[CellProportion]
    denominator: str


class OverriddenRefusals(Result):
    """Of the decisions with a discarded reply expressing refusal, the share whose retry
    complied; ``by_classifier``: the same with the refusal-intent label (None unlabelled)."""

    overall: Proportion
    per_model: list[ModelProportion]
    per_cell: list[CellProportion]
    denominator: str
    by_classifier: OverriddenByClassifier | None


class Compliance(Result):
    """Decisions and their counted actions; ``rate`` the share that complied (Wilson ci).
    Decisions left pending by an error are not counted."""

    model: str
    decisions: int
    complied: int
    refused: int
    invalid: int
    content_filtered: int = Field(
        default=0, description="decisions whose reply a content filter withheld: not counted"
    )
    rate: float | None
    ci: Interval | None


class ProdCompliance(Compliance):
    """Decisions right after prod ``prod`` (0 = no prod before the decision)."""

    prod: int


class LevelCompliance(Compliance):
    """Decisions at ``level``, all conditions pooled (the escalation profile)."""

    level: int


class ErrorCounts(Result):
    trials: int
    completed: int
    error: int
    content_filter: int
    invalid_abort: int
    step_limit: int
    transport_errors: int
    filtered_replies: int


class ErrorCell(ErrorCounts):
    model: str
    condition: str
    error_rate: float | None
    error_ci: Interval | None


class Errors(Result):
    """Errors are never refusals: they are left out of every rate."""

    cells: list[ErrorCell]
    totals: ErrorCounts
    note: str


class ModelLabels(Result):
    """Per model, over every counted reply (discarded ones included)."""

    model: str
    replies: int
    frame_break: Proportion | None
    recognition: Proportion | None
    incoherent: Proportion | None
    refusal_intent_while_complying: Proportion | None = Field(
        default=None, description="over compliant counted replies"
    )


class Labels(Result):
    available: bool
    classifier: str | None
    per_model: list[ModelLabels]
    denominator: str | None = None


# ------------------------------------------------------------------ baselines


class PaperComparison(Result):
    """A run cell beside the paper's k/30 (Fisher exact; odds ratio run vs paper)."""

    model: str
    paper_model: str
    condition: str
    n: int
    k: int
    rate: float | None
    ci: Interval | None
    published_k: int
    published_n: int
    published_rate: float | None
    published_ci: Interval | None
    difference: float | None
    difference_ci: Interval | None
    odds_ratio: float | None
    odds_ratio_ci: OpenInterval | None
    p: float | None
    test: str
    reference: str
    p_holm: float | None


class RateComparison(Result):
    """A run rate beside a published human or LLM rate (Fisher, or binomial vs a rate)."""

    model: str
    condition: str
    metric: str
    reference: str
    label: str
    n: int
    k: int
    rate: float | None
    ci: Interval | None
    published_rate: float
    published_k: int | None
    published_n: int | None
    unconfirmed: bool
    difference: float | None
    difference_ci: Interval | None
    odds_ratio: float | None
    p: float | None
    test: str
    p_holm: float | None


class SurvivalComparison(Result):
    """Log-rank of the run's break-off levels against published individual records."""

    model: str
    condition: str
    reference: str
    label: str
    n: int
    events: int
    reference_n: int
    reference_events: int
    chi2: float | None
    z: float | None
    p: float | None
    note: str | None
    test: str
    p_holm: float | None


class ContextRow(Result):
    """A summary number beside Aksu's (no test): a proportion, or a ``value``."""

    model: str
    metric: str
    reference: str
    k: int | None = None
    n: int | None = None
    rate: float | None = None
    ci: Interval | None = None
    value: int | float | None = None
    published: int | float | None
    published_range: list[float] | None = None
    note: str


class ReferenceCurve(Result):
    label: str
    condition: str | None
    n: int
    levels: list[int]
    volts: list[int]
    survival: list[float] = Field(description="published records always hold break-offs")


class BaselineComparisons(Result):
    """The run beside published baselines (see ``_baselines``)."""

    model_map: dict[str, str | None]
    paper: list[PaperComparison]
    rates: list[RateComparison]
    survival: list[SurvivalComparison]
    context: list[ContextRow]
    reference_curves: dict[str, ReferenceCurve]
    sources: dict[str, str]


# ------------------------------------------------------------------ the whole result


class Statistics(Result):
    """Every statistic of a run; one field per section (see ``_stats`` to add one)."""

    tests: TestsInfo
    rates: list[CellRates]
    survival: list[CellCurve]
    survival_pooled: PooledSurvival
    logrank: list[LogRank]
    factor_effects: list[FactorEffect]
    distress_while_complying: DistressWhileComplying
    reasoning_distress: ReasoningDistress | None = Field(
        default=None,
        description="distress in the reasoning text of compliant decisions, and hidden "
        "distress (reasoning labelled distress, visible reply not); None when no reply "
        "had a labelled reasoning text",
    )
    overridden_refusals: OverriddenRefusals
    prod_efficacy: list[ProdCompliance]
    level_compliance: list[LevelCompliance]
    errors: Errors
    labels: Labels
    baselines: BaselineComparisons
    probe: list[Any] = Field(description="a placeholder, filled by the probe's summary")
    distress_hazard: dict[str, Any] | None = Field(
        default=None,
        description="discrete-time hazard of break-off on distress at the previous "
        "decision (_hazard.distress_hazard): per_model, pooled, method, caveat",
    )
    label_agreement: dict[str, Any] | None = Field(
        default=None,
        description="machine-human agreement on the replies coders labelled (None "
        "without human labels)",
    )
    paper_metrics: PaperMetrics | None = Field(
        default=None,
        description="the paper's own metrics, by its definitions (_paper_metrics)",
    )
