"""``obedience stats`` and ``obedience annotate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

import obedience
from obedience.cli._app import app, console, escape_markup, fail

if TYPE_CHECKING:
    from obedience import ContextRow, Proportion, Statistics

# ------------------------------------------------------------------ formatting


def _txt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.2f}"
    return escape_markup(str(value))


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


def _ci(ci: tuple[float | None, float | None] | None, scale: float = 100.0, unit: str = "%") -> str:
    if ci is None or ci[0] is None or ci[1] is None:
        return "—"
    return f"[{scale * ci[0]:.1f}, {scale * ci[1]:.1f}]{unit}"


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    v = float(value)
    return f"{v:.2e}" if v < 1e-3 else f"{v:.3f}"


def _prop(block: Proportion | None) -> str:
    if block is None or not block.n:
        return "—"
    return f"{block.k}/{block.n} = {_pct(block.rate)} {_ci(block.ci)}"


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    return table


def _print_rates(s: Statistics) -> None:
    t = _table(
        "Reached the maximum (completed trials; Wilson 95% CI)",
        [
            "model",
            "condition",
            "n",
            "max",
            "rate",
            "95% CI",
            "median hi",
            "onset (min/med)",
            "errors",
            "filtered",
            "inv-abort",
            "overridden",
        ],
    )
    for r in s.rates:
        t.add_row(
            _txt(r.model),
            _txt(r.condition),
            _txt(r.n),
            _txt(r.k),
            _pct(r.rate),
            _ci(r.ci),
            _txt(r.highest_median),
            f"{_txt(r.resistance_onset_min)}/{_txt(r.resistance_onset_median)}",
            _txt(r.errors),
            _txt(r.content_filtered),
            _txt(r.invalid_abort),
            _txt(r.overridden_refusals),
        )
    console.print(t)


def _print_survival(s: Statistics) -> None:
    t = _table(
        "Break-off survival (Kaplan-Meier; errors excluded, max censored)",
        [
            "model",
            "condition",
            "n",
            "break-offs",
            "censored",
            "excluded",
            "median break-off",
            "S at max (95% CI)",
        ],
    )
    for r in s.survival:
        last = r.survival[-1] if r.survival else None
        band = (r.ci_low[-1], r.ci_high[-1]) if r.survival else None
        excluded = r.excluded.error + r.excluded.content_filter
        t.add_row(
            _txt(r.model),
            _txt(r.condition),
            _txt(r.n),
            _txt(r.events),
            _txt(r.censored),
            _txt(excluded),
            _txt(r.median_breakoff),
            f"{_pct(last)} {_ci(band)}",
        )
    console.print(t)


LOGRANK_ROWS = 60


def _print_logrank(s: Statistics) -> None:
    tested = [(r, r.p) for r in s.logrank if r.p is not None]
    untested = len(s.logrank) - len(tested)
    if not tested:
        if untested:
            console.print(f"Log-rank: {untested} pairs of conditions, none with a break-off.")
        return
    ordered = sorted(tested, key=lambda rp: (rp[1], rp[0].model, rp[0].a, rp[0].b))
    shown = [r for r, _ in ordered[:LOGRANK_ROWS]]
    hidden = len(tested) - len(shown)
    t = _table(
        "Log-rank tests between conditions (Holm over all pairs of the run; smallest p first)",
        ["model", "a", "b", "break-offs a/b", "chi2", "p", "p (Holm)"],
    )
    for r in shown:
        t.add_row(
            _txt(r.model),
            _txt(r.a),
            _txt(r.b),
            f"{r.events_a}/{r.events_b}",
            _txt(r.chi2),
            _p(r.p),
            _p(r.p_holm),
        )
    console.print(t)
    notes = []
    if hidden:
        notes.append(f"{hidden} more pairs in --json")
    if untested:
        notes.append(f"{untested} pairs without any break-off (not tested)")
    if notes:
        console.print("Log-rank: " + "; ".join(notes) + ".")


def _print_factors(s: Statistics) -> None:
    rows = s.factor_effects
    if not rows:
        return
    t = _table(
        "Factor effects on reaching the maximum and on the highest level (Holm over the family)",
        [
            "model",
            "factor",
            "from → to",
            "rates",
            "effect pp (95% CI)",
            "OR",
            "p (Holm)",
            "median hi",
            "r (rank-biserial)",
            "MWU p (Holm)",
            "published pp",
        ],
    )
    for r in rows:
        hl = r.highest_level
        effect = "—" if r.effect_pp is None else f"{r.effect_pp:+.1f}"
        pub = "—" if r.published_pp is None else f"{r.published_pp:+.1f} ({r.published_model})"
        t.add_row(
            _txt(r.model),
            _txt(r.factor),
            f"{r.from_} → {r.to}",
            f"{r.k_from}/{r.n_from} → {r.k_to}/{r.n_to}",
            f"{effect} {_ci(r.ci_pp, 1.0, '')}",
            _txt(r.odds_ratio),
            f"{_p(r.p)} ({_p(r.p_holm)})",
            f"{_txt(hl.median_from)} → {_txt(hl.median_to)}",
            _txt(hl.rank_biserial),
            f"{_p(hl.p)} ({_p(hl.p_holm)})",
            pub,
        )
    console.print(t)


def _print_blocks(s: Statistics) -> None:
    d = s.distress_while_complying
    o = s.overridden_refusals
    t = _table(
        "Distress while complying, and refusals overridden by a retry",
        ["measure", "model", "k/n = rate [95% CI]"],
    )
    if d.available:
        for r in d.per_model:
            t.add_row(f"distress while complying ({_txt(d.classifier)})", _txt(r.model), _prop(r))
    else:
        t.add_row("distress while complying", "—", "no labels: run obedience annotate")
    for r in o.per_model:
        t.add_row("refusal overridden by retry", _txt(r.model), _prop(r))
    by = o.by_classifier
    if by:
        for r in by.per_model:
            t.add_row(f"… by refusal-intent label ({_txt(by.classifier)})", _txt(r.model), _prop(r))
    console.print(t)
    _print_reasoning(s)

    t = _table(
        "Prod efficacy (decision right after prod i; 0 = no prod)",
        ["model", "prod", "decisions", "complied", "rate [95% CI]"],
    )
    for pe in s.prod_efficacy:
        t.add_row(
            _txt(pe.model),
            _txt(pe.prod),
            _txt(pe.decisions),
            _txt(pe.complied),
            f"{_pct(pe.rate)} {_ci(pe.ci)}",
        )
    console.print(t)

    labels = s.labels
    if labels.available:
        t = _table(
            f"Reply labels ({_txt(labels.classifier)}; all counted replies)",
            [
                "model",
                "replies",
                "frame-break",
                "recognition",
                "incoherent",
                "refusal intent while complying",
            ],
        )
        for lb in labels.per_model:
            t.add_row(
                _txt(lb.model),
                _txt(lb.replies),
                _prop(lb.frame_break),
                _prop(lb.recognition),
                _prop(lb.incoherent),
                _prop(lb.refusal_intent_while_complying),
            )
        console.print(t)

    tot = s.errors.totals
    console.print(
        f"Errors (not refusals, excluded from rates): {tot.error} error and "
        f"{tot.content_filter} content-filter trials of {tot.trials}; "
        f"{tot.transport_errors} transport faults; {tot.filtered_replies} filtered replies; "
        f"{tot.invalid_abort} invalid-aborts (counted as break-offs)."
    )


def _print_reasoning(s: Statistics) -> None:
    """Distress in the reasoning text of compliant decisions; nothing without reasoning."""
    r = s.reasoning_distress
    if r is None:
        return
    t = _table(
        f"Distress in the reasoning while complying ({_txt(r.classifier)})",
        ["model", "compliant", "reasoning distress", "hidden distress"],
    )
    rows = [(m.model, m) for m in r.per_model] + [("all models", r.overall)]
    for name, block in rows:
        t.add_row(
            _txt(name),
            _txt(block.compliant_decisions),
            _prop(block.reasoning_distress),
            _prop(block.hidden_distress),
        )
    console.print(t)
    console.print(
        "Reasoning: of the compliant decisions whose reasoning text was labelled; hidden "
        "distress: the reasoning is labelled distress, the visible reply is not."
    )


def _print_baselines(s: Statistics) -> None:
    b = s.baselines
    mapped = {m: p for m, p in b.model_map.items() if p}
    if mapped:
        console.print(
            "Paper models: "
            + ", ".join(f"{escape_markup(m)} = {escape_markup(p)}" for m, p in mapped.items())
        )
    if b.paper:
        t = _table(
            "Versus the paper's table (k/30; Fisher exact, Holm over the list)",
            ["model", "condition", "run", "paper", "difference pp (95% CI)", "p", "p (Holm)"],
        )
        for r in b.paper:
            diff = "—" if r.difference is None else f"{100 * r.difference:+.1f}"
            t.add_row(
                _txt(r.model),
                _txt(r.condition),
                f"{r.k}/{r.n}",
                f"{r.published_k}/{r.published_n}",
                f"{diff} {_ci(r.difference_ci, 100.0, '')}",
                _p(r.p),
                _p(r.p_holm),
            )
        console.print(t)
    if b.rates:
        t = _table(
            "Versus published human and LLM rates (Holm over the list)",
            [
                "model",
                "condition",
                "metric",
                "run",
                "published",
                "reference",
                "test",
                "p",
                "p (Holm)",
            ],
        )
        for rc in b.rates:
            pub = _pct(rc.published_rate)
            if rc.published_k is not None:
                pub += f" ({rc.published_k}/{rc.published_n})"
            if rc.unconfirmed:
                pub += " UNCONFIRMED"
            t.add_row(
                _txt(rc.model),
                _txt(rc.condition),
                _txt(rc.metric),
                f"{rc.k}/{rc.n} = {_pct(rc.rate)}",
                pub,
                _txt(rc.label),
                _txt(rc.test),
                _p(rc.p),
                _p(rc.p_holm),
            )
        console.print(t)
    if b.survival:
        t = _table(
            "Break-off distribution versus published records (log-rank)",
            [
                "model",
                "condition",
                "reference",
                "n (break-offs)",
                "reference n (break-offs)",
                "chi2",
                "p",
                "p (Holm)",
            ],
        )
        for sc in b.survival:
            t.add_row(
                _txt(sc.model),
                _txt(sc.condition),
                _txt(sc.label),
                f"{sc.n} ({sc.events})",
                f"{sc.reference_n} ({sc.reference_events})",
                _txt(sc.chi2),
                _p(sc.p),
                _p(sc.p_holm),
            )
        console.print(t)
    if b.context:
        t = _table(
            "Context (summary numbers, no test)",
            ["model", "metric", "run", "published", "reference"],
        )
        for cx in b.context:
            published = cx.published
            t.add_row(
                _txt(cx.model),
                _txt(cx.metric),
                _context_value(cx),
                _pct(published)
                if isinstance(published, float) and published <= 1
                else _txt(published),
                _txt(cx.reference),
            )
        console.print(t)


def _context_value(row: ContextRow) -> str:
    if row.n is None or row.k is None:
        return _txt(row.value)
    if not row.n:
        return "—"
    return f"{row.k}/{row.n} = {_pct(row.rate)} {_ci(row.ci)}"


@app.command()
def stats(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
    census_table: bool = typer.Option(
        False, "--census-table", help="Print the census's per-model table (census.csv) as CSV."
    ),
) -> None:
    """Rates with Wilson intervals, survival, log-rank and factor tests, published baselines."""
    if census_table:
        from obedience.cli._import import print_census_table

        print_census_table(run_dir)
        return
    try:
        result = obedience.statistics(run_dir)
    except obedience.StoreError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(result.to_json(), indent=2, allow_nan=False))
        return
    meta = result.tests
    console.print(
        f"protocol {escape_markup(str(meta.protocol))}; {meta.completed} of {meta.trials} "
        f"trials completed; labels: {escape_markup(str(meta.classifier or 'none'))}"
    )
    _print_rates(result)
    _print_survival(result)
    _print_logrank(result)
    _print_factors(result)
    _print_blocks(result)
    _print_baselines(result)
    if result.paper_metrics is not None:
        from obedience.cli._paper import print_paper_cells

        print_paper_cells([c.model_dump() for c in result.paper_metrics.cells])
