"""Published baselines: the shipped data, the model-name map and the comparisons."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers.runs import make_run

from obedience.analysis import (
    build_tables,
    compare_baselines,
    load_baselines,
    normalise_model_name,
    paper_model_for,
    statistics,
)
from obedience.analysis._baselines import BaselineDataError, parse_baselines
from obedience.analysis._estimators import logrank_test
from obedience.analysis._sections import factor_effect_rows
from obedience.analysis._tables import TRIAL_COLUMNS
from obedience.runner import RunConfig
from obedience.store import RunStore

PAPER_CONDITIONS = [
    "DC-NS-FB",
    "DC-NS-NF",
    "DC-WS-FB",
    "DC-WS-NF",
    "PC-NS-FB",
    "PC-NS-NF",
    "PC-WS-FB",
    "PC-WS-NF",
]


# ---------------------------------------------------------------- the data


def test_milgram_exp1_distribution_as_published() -> None:
    b = load_baselines()
    exp1 = b.milgram_exp1
    assert exp1.n == 40 and exp1.reached_max == 26 and exp1.condition == "remote"
    assert exp1.breakoffs == {300: 5, 315: 4, 330: 2, 345: 1, 360: 1, 375: 1, 450: 26}
    times, events = exp1.records()
    # 300 V is switch 20: those five gave 300 V last and broke off at switch 21.
    assert times.count(21.0) == 5 and times.count(30.0) == 26
    assert sum(events) == 14 and not any(e for t, e in zip(times, events, strict=True) if t == 30)
    assert "Milgram" in exp1.source


def test_variant_rates_and_unconfirmed_flag() -> None:
    b = load_baselines()
    rates = {r.id: r for r in b.milgram_variants}
    assert rates["milgram-exp2-voice"].unconfirmed is True
    assert (rates["milgram-exp2-voice"].k, rates["milgram-exp2-voice"].n) == (25, 40)
    assert sum(r.unconfirmed for r in b.milgram_variants) == 1
    expected = {
        "milgram-exp1-remote": 0.65,
        "milgram-exp5-new-baseline": 0.65,
        "milgram-proximity": 0.40,
        "milgram-touch-proximity": 0.30,
        "milgram-telephone": 0.205,
        "milgram-ordinary-man": 0.20,
        "milgram-two-peers-rebel": 0.10,
        "milgram-bridgeport": 0.475,
    }
    for key, rate in expected.items():
        assert rates[key].rate == rate and rates[key].source
    past = {r.id: r.rate for r in b.past_150v}
    assert past == {"burger2009": 0.70, "milgram-exp5-past-150v": 0.825}


def test_aher_and_aksu() -> None:
    b = load_baselines()
    assert b.aher.n == 100 and b.aher.reached_max == 75
    assert b.aher.breakoffs == {0: 1, 285: 1, 300: 18, 330: 2, 405: 1, 420: 2, 450: 75}
    times, _ = b.aher.records()
    assert min(times) == 1.0  # stopped at 0 V: never shocked, broke off at switch 1
    assert b.aksu["baseline_full_obedience_mean"] == 0.429
    assert b.aksu["first_prod_rescue_rate"] == 0.305


def test_paper_table_as_published() -> None:
    paper = load_baselines().paper
    assert paper.trials_per_cell == 30 and list(paper.conditions) == PAPER_CONDITIONS
    assert len(paper.models) == 11
    table = {m.name: [m.reached[c] for c in PAPER_CONDITIONS] for m in paper.models}
    assert table["DeepSeek-V3"] == [14, 18, 18, 16, 3, 0, 5, 0]
    assert table["gemma-3n-E4B"] == [30, 30, 30, 29, 27, 15, 27, 14]
    assert table["LFM2-24B-A2B"] == [30, 29, 29, 29, 30, 28, 29, 26]
    assert table["Llama-3.1-8B"] == [4, 0, 7, 0, 0, 0, 0, 0]
    assert table["MiniMax-M2.5"] == [0, 0, 0, 0, 0, 1, 0, 0]
    assert table["Mistral-Small-24B"] == [2, 0, 3, 0, 0, 0, 2, 0]
    assert table["Kimi-K2.5"] == [0] * 8
    assert table["gpt-oss-120b"] == [9, 7, 10, 7, 9, 1, 14, 4]
    assert table["gpt-oss-20b"] == [29, 20, 26, 24, 25, 20, 23, 16]
    assert table["Qwen2.5-7B"] == [4, 1, 8, 5, 7, 0, 3, 0]
    assert table["GLM-4.5-Air"] == [1, 0, 1, 0, 0, 0, 0, 1]
    assert "arXiv 2605.21401" in paper.source


def test_malformed_data_is_rejected() -> None:
    import tomllib

    text = (Path(__file__).parents[2] / "src/obedience/analysis/data/baselines.toml").read_text()
    data = tomllib.loads(text.replace("450 = 26 }", "450 = 25 }"))
    with pytest.raises(BaselineDataError, match="sum to 39"):
        parse_baselines(data)
    data = tomllib.loads(text)
    del data["paper"]["models"][0]["reached"]
    with pytest.raises(BaselineDataError):
        parse_baselines(data)


# ------------------------------------------------------------- the name map


@pytest.mark.parametrize(
    ("served", "paper"),
    [
        ("Qwen/Qwen2.5-7B-Instruct", "Qwen2.5-7B"),
        ("qwen2.5:7b", "Qwen2.5-7B"),
        ("qwen2.5-7b-instruct", "Qwen2.5-7B"),
        ("openai:Qwen/Qwen2.5-7B-Instruct", "Qwen2.5-7B"),
        ("openai:qwen2.5:7b-instruct-q4_K_M", "Qwen2.5-7B"),
        ("gguf:/models/Qwen2.5-7B-Instruct-Q4_K_M.gguf", "Qwen2.5-7B"),
        ("gguf:~/m/qwen2.5-7b-instruct-q8_0-00001-of-00002.gguf", "Qwen2.5-7B"),
        ("qwen2.5:latest", "Qwen2.5-7B"),
        ("meta-llama/Llama-3.1-8B-Instruct", "Llama-3.1-8B"),
        ("meta-llama/Meta-Llama-3.1-8B-Instruct", "Llama-3.1-8B"),
        ("llama3.1:8b", "Llama-3.1-8B"),
        ("openai:meta-llama/llama-3.1-8b-instruct", "Llama-3.1-8B"),
        ("openai/gpt-oss-20b", "gpt-oss-20b"),
        ("gpt-oss:20b", "gpt-oss-20b"),
        ("openai:gpt-oss-120b", "gpt-oss-120b"),
        ("gpt-oss:120b", "gpt-oss-120b"),
        ("deepseek-ai/DeepSeek-V3", "DeepSeek-V3"),
        ("deepseek-v3:671b", "DeepSeek-V3"),
        ("LiquidAI/LFM2-24B-A2B", "LFM2-24B-A2B"),
        ("google/gemma-3n-E4B-it", "gemma-3n-E4B"),
        ("gemma3n:e4b", "gemma-3n-E4B"),
        ("mistralai/Mistral-Small-24B-Instruct-2501", "Mistral-Small-24B"),
        ("mistral-small:24b", "Mistral-Small-24B"),
        ("zai-org/GLM-4.5-Air-FP8", "GLM-4.5-Air"),
        ("zai-org/GLM-4.5-Air", "GLM-4.5-Air"),
        ("glm-4.5-air", "GLM-4.5-Air"),
        ("moonshotai/Kimi-K2.5", "Kimi-K2.5"),
        ("kimi-k2.5:cloud", "Kimi-K2.5"),
        ("MiniMaxAI/MiniMax-M2.5", "MiniMax-M2.5"),
        ("minimax/minimax-m2.5", "MiniMax-M2.5"),
    ],
)
def test_served_names_map_to_paper_names(served: str, paper: str) -> None:
    assert paper_model_for(served) == paper


@pytest.mark.parametrize(
    "served",
    [
        "qwen2.5:72b",
        "Qwen/Qwen2.5-72B-Instruct",
        "Qwen/Qwen2.5-7B",  # the base checkpoint, not the instruct model tested
        "qwen2.5:7b-base",
        "llama3.1:70b",
        "llama3.2:3b",
        "gpt-oss:20b-extra",
        "embedded",
        "scripted:obedient",
        "replay:/tmp/qwen2.5-7b-instruct.jsonl",
        "DeepSeek-V3-Base",
    ],
)
def test_other_models_do_not_match(served: str) -> None:
    assert paper_model_for(served) is None


def test_every_paper_model_is_reachable() -> None:
    for model in load_baselines().paper.models:
        assert model.aliases, model.name
        for alias in model.aliases:
            assert paper_model_for(alias) == model.name, alias


def test_normalisation() -> None:
    assert normalise_model_name("openai:Qwen/Qwen2.5-7B-Instruct-GGUF") == "qwen2.5-7b-instruct"
    assert normalise_model_name("gemma3n:e4b-it-q4_K_M") == "gemma3n:e4b-it"
    assert normalise_model_name("qwen2.5:7b") == "qwen2.5:7b"  # the size stays


# ------------------------------------------------------------ comparisons


def _trials(rows: list[tuple[str, str, int, int]], max_level: int = 12) -> pd.DataFrame:
    """rows: (model, condition, reached, broke off at level) -> one trial each."""
    records = []
    for i, (model, condition, reached, level) in enumerate(rows):
        r = dict.fromkeys(TRIAL_COLUMNS)
        r.update(
            trial_id=f"{model}|{condition}|{i}",
            model=model,
            condition=condition,
            outcome="max-reached" if reached else "defiant",
            highest_level=max_level if reached else level - 1,
            max_level=max_level,
            reached_max=bool(reached),
            completed=True,
            error=False,
            content_filter=False,
            broke_off=not reached,
        )
        records.append(r)
    return pd.DataFrame(records, columns=TRIAL_COLUMNS)


def _fisher_by_hand(a: int, b: int, c: int, d: int) -> float:
    r1, c1, n = a + b, a + c, a + b + c + d

    def prob(x: int) -> float:
        return math.comb(c1, x) * math.comb(n - c1, r1 - x) / math.comb(n, r1)

    lo, hi = max(0, r1 + c1 - n), min(r1, c1)
    return sum(prob(x) for x in range(lo, hi + 1) if prob(x) <= prob(a) * (1 + 1e-7))


def test_paper_comparison_fisher_per_condition() -> None:
    model = "openai:Qwen/Qwen2.5-7B-Instruct"
    rows = [(model, "DC-WS-FB", 1, 0)] * 20 + [(model, "DC-WS-FB", 0, 5)] * 10
    rows += [(model, "PC-NS-NF", 0, 3)] * 10
    rows += [("scripted:obedient", "DC-WS-FB", 1, 0)] * 3
    out = compare_baselines(_trials(rows), pd.DataFrame(), "pihlakas2026")
    assert out["model_map"] == {model: "Qwen2.5-7B", "scripted:obedient": None}
    by = {r["condition"]: r for r in out["paper"]}
    assert set(by) == {"DC-WS-FB", "PC-NS-NF"}
    row = by["DC-WS-FB"]
    # Run 20/30 vs paper 8/30.
    assert (row["k"], row["n"], row["published_k"], row["published_n"]) == (20, 30, 8, 30)
    assert row["difference"] == pytest.approx(12 / 30)
    assert row["p"] == pytest.approx(_fisher_by_hand(20, 10, 8, 22), rel=1e-9)
    assert row["paper_model"] == "Qwen2.5-7B" and row["test"] == "fisher-exact"
    # Run 0/10 vs paper 0/30: no difference at all.
    assert by["PC-NS-NF"]["p"] == 1.0
    assert [r["p_holm"] for r in out["paper"]] == pytest.approx([min(1.0, 2 * row["p"]), 1.0])
    # A milgram run is not compared with the paper's table.
    assert compare_baselines(_trials(rows), pd.DataFrame(), "milgram1963")["paper"] == []


def test_published_factor_effect_beside_run() -> None:
    model = "qwen2.5:7b"
    rows = [(model, c, 1, 0) for c in PAPER_CONDITIONS for _ in range(2)]
    effects = {r["factor"]: r for r in factor_effect_rows(_trials(rows), _published(model))}
    comments = effects["comments"]
    # Paper: DC 4+1+8+5 = 18/120, PC 7+0+3+0 = 10/120 -> (10 - 18)/120 = -6.67 pp.
    assert comments["published_model"] == "Qwen2.5-7B"
    assert comments["published_pp"] == pytest.approx(-800 / 120)
    assert comments["published"]["k_from"] == 18 and comments["published"]["n_to"] == 120
    # Forced presses: FB 4+8+7+3 = 22, NF 1+5+0+0 = 6 -> (22 - 6)/120 = +13.3 pp.
    assert effects["forced presses"]["published_pp"] == pytest.approx(1600 / 120)


def _published(model: str) -> dict[str, tuple[str, dict[str, int], int]]:
    from obedience.analysis._baselines import published_by_run_model

    return published_by_run_model([model])


def test_milgram_comparison_against_human_records() -> None:
    # A model that always stops after 300 V (switch 20), 10 trials in "remote".
    rows = [("m", "remote", 0, 21)] * 10 + [("m", "proximity", 1, 0)] * 5
    rows += [("m", "fiction", 1, 0)] * 5
    trials = _trials(rows, max_level=30)
    out = compare_baselines(trials, pd.DataFrame(), "milgram1963")
    surv = {r["reference"]: r for r in out["survival"]}
    exp1 = surv["milgram1963-exp1"]
    times, events = load_baselines().milgram_exp1.records()
    expected = logrank_test([21.0] * 10, [True] * 10, times, events)
    assert exp1["chi2"] == pytest.approx(expected["chi2"])
    assert exp1["p"] == pytest.approx(expected["p"])
    assert exp1["z"] > 0  # the model breaks off earlier than Milgram's subjects
    assert (exp1["n"], exp1["events"], exp1["reference_n"], exp1["reference_events"]) == (
        10,
        10,
        40,
        14,
    )
    assert "aher2023" in surv
    rates = {(r["condition"], r["reference"]): r for r in out["rates"]}
    remote = rates[("remote", "milgram-exp1-remote")]
    assert (remote["k"], remote["n"], remote["published_k"], remote["published_n"]) == (
        0,
        10,
        26,
        40,
    )
    assert remote["p"] == pytest.approx(_fisher_by_hand(0, 10, 26, 14), rel=1e-9)
    prox = rates[("proximity", "milgram-proximity")]
    assert prox["test"] == "binomial-vs-published-rate"
    # Exact binomial, 5/5 against 0.40: two-sided p = P(X = 5) = 0.4^5 (nothing rarer).
    assert prox["p"] == pytest.approx(0.4**5)
    assert not any(r["condition"] == "fiction" for r in out["rates"])
    curves = out["reference_curves"]
    human = curves["milgram1963-exp1"]["survival"]
    assert human[20] == 1.0 and human[21] == pytest.approx(35 / 40)
    assert human[30] == pytest.approx(26 / 40)
    assert curves["milgram1963-exp1"]["volts"][20] == 300


def test_milgram_self_comparison_is_null() -> None:
    b = load_baselines()
    times, events = b.milgram_exp1.records()
    res = logrank_test(times, events, times, events)
    assert res["chi2"] == pytest.approx(0.0, abs=1e-12) and res["p"] == pytest.approx(1.0)


def test_milgram_run_end_to_end(tmp_path: Path) -> None:
    config = RunConfig(
        models=["scripted:threshold:20", "scripted:obedient"],
        protocol="milgram1963",
        conditions=["remote", "baseline"],
        trials=2,
    )
    make_run(tmp_path / "run", config)
    store = RunStore.open(tmp_path / "run")
    try:
        s = statistics(store).to_json()
        trials = build_tables(store).trials
    finally:
        store.close()
    assert set(trials["max_level"]) == {30}
    b = s["baselines"]
    assert b["paper"] == []
    refs = {(r["model"], r["reference"]) for r in b["survival"]}
    assert ("scripted:threshold:20", "milgram1963-exp1") in refs
    past = [r for r in b["rates"] if r["metric"] == "past 150 V"]
    assert {r["reference"] for r in past} == {"burger2009", "milgram-exp5-past-150v"}
    # threshold:20 gives 300 V and no more: past 150 V, never 450 V.
    t20 = [r for r in past if r["model"] == "scripted:threshold:20"]
    assert all(r["k"] == r["n"] == 2 for r in t20)
    assert any(r["metric"] == "first prod followed by compliance" for r in b["context"])
