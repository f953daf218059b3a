"""``obedience stats`` and ``obedience annotate``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from obedience.cli._app import app, console, err_console, escape_markup, fail
from obedience.store import RunStore, StoreError


def _open(run_dir: Path) -> RunStore:
    try:
        return RunStore.open(run_dir)
    except StoreError as exc:
        fail(str(exc))


# ------------------------------------------------------------------ formatting


def _txt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.2f}"
    return escape_markup(str(value))


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


def _ci(ci: Any, scale: float = 100.0, unit: str = "%") -> str:
    if not isinstance(ci, list) or len(ci) != 2 or None in ci:
        return "—"
    return f"[{scale * ci[0]:.1f}, {scale * ci[1]:.1f}]{unit}"


def _p(value: Any) -> str:
    if value is None:
        return "—"
    v = float(value)
    return f"{v:.2e}" if v < 1e-3 else f"{v:.3f}"


def _prop(block: Any) -> str:
    if not isinstance(block, dict) or block.get("n") in (None, 0):
        return "—"
    return f"{block['k']}/{block['n']} = {_pct(block['rate'])} {_ci(block['ci'])}"


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    return table


def _print_rates(s: dict[str, Any]) -> None:
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
    for r in s["rates"]:
        t.add_row(
            _txt(r["model"]),
            _txt(r["condition"]),
            _txt(r["n"]),
            _txt(r["k"]),
            _pct(r["rate"]),
            _ci(r["ci"]),
            _txt(r["highest_median"]),
            f"{_txt(r['resistance_onset_min'])}/{_txt(r['resistance_onset_median'])}",
            _txt(r["errors"]),
            _txt(r["content_filtered"]),
            _txt(r["invalid_abort"]),
            _txt(r["overridden_refusals"]),
        )
    console.print(t)


def _print_survival(s: dict[str, Any]) -> None:
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
    for r in s["survival"]:
        last = r["survival"][-1] if r["survival"] else None
        band = [r["ci_low"][-1], r["ci_high"][-1]] if r["survival"] else None
        excluded = r["excluded"]["error"] + r["excluded"]["content_filter"]
        t.add_row(
            _txt(r["model"]),
            _txt(r["condition"]),
            _txt(r["n"]),
            _txt(r["events"]),
            _txt(r["censored"]),
            _txt(excluded),
            _txt(r["median_breakoff"]),
            f"{_pct(last)} {_ci(band)}",
        )
    console.print(t)


LOGRANK_ROWS = 60


def _print_logrank(s: dict[str, Any]) -> None:
    tested = [r for r in s["logrank"] if r["p"] is not None]
    untested = len(s["logrank"]) - len(tested)
    if not tested:
        if untested:
            console.print(f"Log-rank: {untested} pairs of conditions, none with a break-off.")
        return
    shown = sorted(tested, key=lambda r: (r["p"], r["model"], r["a"], r["b"]))[:LOGRANK_ROWS]
    hidden = len(tested) - len(shown)
    t = _table(
        "Log-rank tests between conditions (Holm over all pairs of the run; smallest p first)",
        ["model", "a", "b", "break-offs a/b", "chi2", "p", "p (Holm)"],
    )
    for r in shown:
        t.add_row(
            _txt(r["model"]),
            _txt(r["a"]),
            _txt(r["b"]),
            f"{r['events_a']}/{r['events_b']}",
            _txt(r["chi2"]),
            _p(r["p"]),
            _p(r["p_holm"]),
        )
    console.print(t)
    notes = []
    if hidden:
        notes.append(f"{hidden} more pairs in --json")
    if untested:
        notes.append(f"{untested} pairs without any break-off (not tested)")
    if notes:
        console.print("Log-rank: " + "; ".join(notes) + ".")


def _print_factors(s: dict[str, Any]) -> None:
    rows = s["factor_effects"]
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
        hl = r["highest_level"]
        effect = "—" if r["effect_pp"] is None else f"{r['effect_pp']:+.1f}"
        pub = (
            "—"
            if r["published_pp"] is None
            else f"{r['published_pp']:+.1f} ({r['published_model']})"
        )
        t.add_row(
            _txt(r["model"]),
            _txt(r["factor"]),
            f"{r['from']} → {r['to']}",
            f"{r['k_from']}/{r['n_from']} → {r['k_to']}/{r['n_to']}",
            f"{effect} {_ci(r['ci_pp'], 1.0, '')}",
            _txt(r["odds_ratio"]),
            f"{_p(r['p'])} ({_p(r['p_holm'])})",
            f"{_txt(hl['median_from'])} → {_txt(hl['median_to'])}",
            _txt(hl["rank_biserial"]),
            f"{_p(hl['p'])} ({_p(hl['p_holm'])})",
            pub,
        )
    console.print(t)


def _print_blocks(s: dict[str, Any]) -> None:
    d = s["distress_while_complying"]
    o = s["overridden_refusals"]
    t = _table(
        "Distress while complying, and refusals overridden by a retry",
        ["measure", "model", "k/n = rate [95% CI]"],
    )
    if d["available"]:
        for r in d["per_model"]:
            t.add_row(
                f"distress while complying ({_txt(d['classifier'])})", _txt(r["model"]), _prop(r)
            )
    else:
        t.add_row("distress while complying", "—", "no labels: run obedience annotate")
    for r in o["per_model"]:
        t.add_row("refusal overridden by retry", _txt(r["model"]), _prop(r))
    by = o.get("by_classifier")
    if by:
        for r in by["per_model"]:
            t.add_row(
                f"… by refusal-intent label ({_txt(by['classifier'])})", _txt(r["model"]), _prop(r)
            )
    console.print(t)

    t = _table(
        "Prod efficacy (decision right after prod i; 0 = no prod)",
        ["model", "prod", "decisions", "complied", "rate [95% CI]"],
    )
    for r in s["prod_efficacy"]:
        t.add_row(
            _txt(r["model"]),
            _txt(r["prod"]),
            _txt(r["decisions"]),
            _txt(r["complied"]),
            f"{_pct(r['rate'])} {_ci(r['ci'])}",
        )
    console.print(t)

    labels = s.get("labels") or {}
    if labels.get("available"):
        t = _table(
            f"Reply labels ({_txt(labels['classifier'])}; all counted replies)",
            [
                "model",
                "replies",
                "frame-break",
                "recognition",
                "incoherent",
                "refusal intent while complying",
            ],
        )
        for r in labels["per_model"]:
            t.add_row(
                _txt(r["model"]),
                _txt(r["replies"]),
                _prop(r.get("frame_break")),
                _prop(r.get("recognition")),
                _prop(r.get("incoherent")),
                _prop(r.get("refusal_intent_while_complying")),
            )
        console.print(t)

    e = s["errors"]
    tot = e["totals"]
    console.print(
        f"Errors (not refusals, excluded from rates): {tot['error']} error and "
        f"{tot['content_filter']} content-filter trials of {tot['trials']}; "
        f"{tot['transport_errors']} transport faults; {tot['filtered_replies']} filtered replies; "
        f"{tot['invalid_abort']} invalid-aborts (counted as break-offs)."
    )


def _print_baselines(s: dict[str, Any]) -> None:
    b = s["baselines"]
    mapped = {m: p for m, p in b["model_map"].items() if p}
    if mapped:
        console.print(
            "Paper models: "
            + ", ".join(f"{escape_markup(m)} = {escape_markup(p)}" for m, p in mapped.items())
        )
    if b["paper"]:
        t = _table(
            "Versus the paper's table (k/30; Fisher exact, Holm over the list)",
            ["model", "condition", "run", "paper", "difference pp (95% CI)", "p", "p (Holm)"],
        )
        for r in b["paper"]:
            diff = "—" if r["difference"] is None else f"{100 * r['difference']:+.1f}"
            t.add_row(
                _txt(r["model"]),
                _txt(r["condition"]),
                f"{r['k']}/{r['n']}",
                f"{r['published_k']}/{r['published_n']}",
                f"{diff} {_ci(r['difference_ci'], 100.0, '')}",
                _p(r["p"]),
                _p(r["p_holm"]),
            )
        console.print(t)
    if b["rates"]:
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
        for r in b["rates"]:
            pub = _pct(r["published_rate"])
            if r["published_k"] is not None:
                pub += f" ({r['published_k']}/{r['published_n']})"
            if r["unconfirmed"]:
                pub += " UNCONFIRMED"
            t.add_row(
                _txt(r["model"]),
                _txt(r["condition"]),
                _txt(r["metric"]),
                f"{r['k']}/{r['n']} = {_pct(r['rate'])}",
                pub,
                _txt(r["label"]),
                _txt(r["test"]),
                _p(r["p"]),
                _p(r["p_holm"]),
            )
        console.print(t)
    if b["survival"]:
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
        for r in b["survival"]:
            t.add_row(
                _txt(r["model"]),
                _txt(r["condition"]),
                _txt(r["label"]),
                f"{r['n']} ({r['events']})",
                f"{r['reference_n']} ({r['reference_events']})",
                _txt(r["chi2"]),
                _p(r["p"]),
                _p(r["p_holm"]),
            )
        console.print(t)
    if b["context"]:
        t = _table(
            "Context (summary numbers, no test)",
            ["model", "metric", "run", "published", "reference"],
        )
        for r in b["context"]:
            run = _prop(r) if "n" in r else _txt(r.get("value"))
            pub = r["published"]
            t.add_row(
                _txt(r["model"]),
                _txt(r["metric"]),
                run,
                _pct(pub) if isinstance(pub, float) and pub <= 1 else _txt(pub),
                _txt(r["reference"]),
            )
        console.print(t)


@app.command()
def stats(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
) -> None:
    """Rates with Wilson intervals, survival, log-rank and factor tests, published baselines."""
    from obedience.analysis import statistics

    store = _open(run_dir)
    try:
        if not store.trials(status="done"):
            fail(f"{run_dir} holds no finished trials")
        result = statistics(store)
    finally:
        store.close()
    if as_json:
        print(json.dumps(result, indent=2, allow_nan=False))
        return
    meta = result["tests"]
    console.print(
        f"protocol {escape_markup(str(meta['protocol']))}; {meta['completed']} of {meta['trials']} "
        f"trials completed; labels: {escape_markup(str(meta['classifier'] or 'none'))}"
    )
    _print_rates(result)
    _print_survival(result)
    _print_logrank(result)
    _print_factors(result)
    _print_blocks(result)
    _print_baselines(result)
    from obedience.cli._paper import print_paper_cells

    print_paper_cells(result.get("paper_metrics", {}).get("cells", []))


@app.command()
def annotate(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    judge: str | None = typer.Option(
        None,
        "--judge",
        help="Label with an LLM judge on this model spec (openai:MODEL, gguf:PATH, ...) "
        "instead of the offline rule classifier.",
    ),
    base_url: str | None = typer.Option(None, "--base-url", help="Judge server URL (openai:)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds per judge request."),
    concurrency: int | None = typer.Option(None, "--concurrency", help="Judge requests in flight."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Judge output tokens."),
) -> None:
    """Label every reply in the run (discarded and superseded ones too) and store the labels."""
    from obedience.analysis._annotate import JudgeError, annotate_run, judge_prepare, make_judge

    store = _open(run_dir)
    try:
        if judge is None:
            from obedience.analysis.classifiers import RuleClassifier

            classifier = RuleClassifier()
            count = annotate_run(store, classifier)
            name = classifier.name
        else:
            from obedience.backends import BackendOptions

            try:
                judge_cls, transport = make_judge(
                    judge,
                    BackendOptions(base_url=base_url, timeout=timeout),
                    concurrency=concurrency,
                    max_tokens=max_tokens,
                )
            except JudgeError as exc:
                fail(str(exc))
            try:
                transport.preflight()
                count = annotate_run(store, judge_cls, prepare=judge_prepare(judge_cls, transport))
            except JudgeError as exc:
                fail(str(exc))
            finally:
                transport.close()
            name = judge_cls.name
            err_console.print(f"judge calls: {judge_cls.calls}", highlight=False)
        labels = Counter(
            label for a in store.annotations(name) for label, value in a["labels"].items() if value
        )
    except StoreError as exc:
        fail(str(exc))
    finally:
        store.close()
    console.print(f"labelled {count} replies with {escape_markup(name)}")
    if count:
        t = _table("Positive labels", ["label", "replies"])
        for label, n in sorted(labels.items()):
            t.add_row(escape_markup(label), str(n))
        console.print(t)
