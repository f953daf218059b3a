"""The probe on the real embedded model: exactness, controls, the CLI within its time budget."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from obedience.backends import LlamaCppBackend, embedded_model_path, format_gemma, make_backend
from obedience.cli import app
from obedience.probe import (
    choose_neutral,
    compliant_trajectory,
    measure,
    neutral_point,
    probe_summary,
    spelling,
)
from obedience.protocols import load_protocol
from obedience.store import RunStore

pytestmark = pytest.mark.slow

CONDITION = "PC-NS-NF"


@pytest.fixture(scope="module")
def backend() -> LlamaCppBackend:
    b = make_backend("embedded")
    assert isinstance(b, LlamaCppBackend)
    b.load()
    return b


def _reference_logprob(llm: Any, prompt_tokens: list[int], cont_tokens: list[int]) -> float:
    """Token by token with Llama.eval and a float64 log-softmax of each logits row."""
    llm.reset()
    for tok in prompt_tokens:
        llm.eval([tok])
    total = 0.0
    for tok in cont_tokens:
        row = np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        top = row.max()
        total += float(row[tok] - top - np.log(np.exp(row - top).sum()))
        llm.eval([tok])
    return total


def test_p_comply_matches_an_independent_llama_computation(backend: LlamaCppBackend) -> None:
    from obedience.backends._llama_runtime import new_llama

    spec = load_protocol("pihlakas2026").condition(CONDITION)
    point = compliant_trajectory(spec, CONDITION, 1)[1]  # one earlier press: P(comply) ~ 0.96
    m = asyncio.run(measure(backend, point.messages, spelling(spec.channel)))

    # The faithful opening is about 900 tokens long: room for it and the continuation.
    ref = new_llama(embedded_model_path(), n_ctx=2048, logits_all=True, n_threads=2, verbose=False)
    try:
        prompt = format_gemma(point.messages)
        prompt_tokens = ref.tokenize(prompt.encode(), add_bos=True, special=True)
        logps = {}
        for word in ("PRESSED", "REFUSE"):
            full = ref.tokenize((prompt + word).encode(), add_bos=True, special=True)
            assert full[: len(prompt_tokens)] == prompt_tokens
            cont = full[len(prompt_tokens) :]
            pieces = [ref.detokenize([t]).decode() for t in cont]
            assert pieces == (m.comply if word == "PRESSED" else m.refuse).tokens
            logps[word] = _reference_logprob(ref, prompt_tokens, cont)
    finally:
        ref.close()

    ref_p = 1.0 / (1.0 + math.exp(logps["REFUSE"] - logps["PRESSED"]))
    ref_raw = math.exp(logps["PRESSED"]) + math.exp(logps["REFUSE"])
    assert m.p_comply is not None and m.p_refuse is not None
    assert abs(m.p_comply - ref_p) < 1e-4
    assert m.p_comply + m.p_refuse == pytest.approx(1.0, abs=1e-12)
    assert abs(m.raw_mass - ref_raw) < 1e-4
    assert m.comply.logprob == pytest.approx(logps["PRESSED"], abs=1e-3)
    assert m.refuse.logprob == pytest.approx(logps["REFUSE"], abs=1e-3)
    assert m.exact and 0.0 < m.raw_mass <= 1.0


def test_controls_differ_only_in_the_action_tokens(backend: LlamaCppBackend) -> None:
    spec = load_protocol("pihlakas2026").condition(CONDITION)
    points = compliant_trajectory(spec, CONDITION, 1)[:11]
    neutral, matched = choose_neutral(
        "PRESSED", points[-1].messages, spec, backend.render, backend.count_tokens
    )
    assert matched
    llm = backend.llama
    pressed = llm.tokenize(b"PRESSED", add_bos=False, special=False)
    replaced = llm.tokenize(neutral.encode(), add_bos=False, special=False)
    for point in points:
        control = neutral_point(point, spec, "PRESSED", neutral)
        a = llm.tokenize(backend.render(point.messages).encode(), add_bos=True, special=True)
        b = llm.tokenize(backend.render(control.messages).encode(), add_bos=True, special=True)
        assert len(a) == len(b)
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        # One differing token per earlier press, and those are exactly the action tokens.
        assert len(diff) == point.k * len(pressed)
        assert [a[i] for i in diff] == pressed * point.k
        assert [b[i] for i in diff] == replaced * point.k


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], float]:
    """``obedience probe --k 10`` into the run directory of an earlier (scripted) run."""
    out = tmp_path_factory.mktemp("probe") / "run"
    runner = CliRunner()
    made = runner.invoke(
        app, ["run", "-m", "scripted:obedient", "-c", CONDITION, "-n", "2", "-o", str(out),
              "--no-report", "-q"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    started = time.monotonic()
    result = runner.invoke(app, ["probe", "-c", CONDITION, "--k", "10", "-o", str(out), "--json"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout), elapsed


def test_cli_probe_k10_within_budget(cli_run: tuple[Path, dict[str, Any], float]) -> None:
    _, data, elapsed = cli_run
    assert elapsed < 600, f"probe took {elapsed:.0f} s"
    assert set(data["histories"]) == {
        "on-policy",
        "forced-compliance",
        "forced-refusal",
        "neutral-control",
    }
    assert [r["k"] for r in data["histories"]["forced-compliance"]] == list(range(11))
    assert [r["k"] for r in data["histories"]["neutral-control"]] == list(range(11))
    assert [r["k"] for r in data["histories"]["forced-refusal"]] == list(range(11))
    assert data["histories"]["on-policy"][0]["k"] == 0
    for rows in data["histories"].values():
        for r in rows:
            assert {"k", "p_comply", "p_refuse", "raw_mass", "level"} <= set(r)
            assert r["p_comply"] + r["p_refuse"] == pytest.approx(1.0)
            assert 0.0 <= r["raw_mass"] <= 1.0
    steps = data["full_obedience_steps"]
    assert len(steps) == 12
    assert data["p_full_obedience"] == pytest.approx(math.prod(s["p_comply"] for s in steps))
    assert data["info"]["neutral_token_count_matched"]


def test_cli_probe_results_are_stored_beside_the_run(
    cli_run: tuple[Path, dict[str, Any], float],
) -> None:
    out, data, _ = cli_run
    with RunStore.open(out) as store:
        rows = store.probe_rows()
        manifest = store.manifest()
        assert len(store.trials()) == 2  # the earlier run is intact
    n_points = sum(len(v) for v in data["histories"].values())
    assert len(rows) == n_points + 1
    assert manifest["probes"][0]["probe_id"] == data["probe_id"]
    assert manifest["probes"][0]["k_max"] == 10
    assert {r["history"] for r in rows} == {
        "on-policy",
        "forced-compliance",
        "forced-refusal",
        "neutral-control",
        "full-obedience",
    }
    cell = probe_summary(rows)["cells"][0]
    assert cell["p_full_obedience"] == pytest.approx(data["p_full_obedience"])
    assert cell["forced_vs_neutral"]["n_pairs"] == 11
