"""Per-decision cost of the embedded model as a trial's conversation grows.

A PC-NS-NF trial of pihlakas2026 asks for 12 decisions; each prompt is the previous one
plus the model's turn and a few scripted lines, so decision 12's prompt is ~4.5 times as
long as decision 1's. The backend renders the prompt itself and llama.cpp keeps the tokens
it last evaluated, so each decision should only evaluate the new suffix (KV prefix reuse,
which for Gemma 3's sliding-window layers needs ``swa_full``). Then decision 12 costs about
what decision 1 costs.

Method: the real embedded model (Gemma 3 270M Q4_K_M, the backend the CLI uses) is called
at every decision with a fixed ``max_tokens`` (so generation cost is constant), and the
trial is fed the scripted obedient reply so that it reaches decision 12 whatever the model
says. Trials run back to back on one loaded model, as in a run: one warm-up trial, then
TRIALS measured ones (stimulus seeds 1..TRIALS). For each measured trial the ratio
latency(decision 12) / latency(decision 1) is taken; the median is reported.

Usage: python benchmarks/embedded_turn_cost.py [--trials N] [--max-tokens K]
Last line of output: {"decision12_over_decision1": ...} (target <= 1.3).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from obedience.backends import LlamaCppBackend, Sampling, embedded_model_path
from obedience.engine import Trial, scripted_subject
from obedience.protocols import load_protocol
from obedience.runner import derive_seed

CONDITION = "PC-NS-NF"


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def run_trial(backend: LlamaCppBackend, seed: int, max_tokens: int) -> list[dict[str, Any]]:
    protocol = load_protocol("pihlakas2026")
    spec = protocol.condition(CONDITION)
    trial = Trial(protocol, CONDITION, seed)
    subject = scripted_subject("obedient")
    llm = backend.llama
    rows = []
    while (request := trial.next_request()) is not None:
        prompt = backend.render(request.messages)
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        cached = common_prefix(list(llm._input_ids[: llm.n_tokens]), tokens)
        sampling = Sampling(
            temperature=spec.sampling_temperature,
            max_tokens=max_tokens,
            seed=derive_seed(seed, request.decision, request.attempt),
        )
        started = time.perf_counter()
        completion = backend.complete_sync(request, sampling)
        latency = time.perf_counter() - started
        rows.append(
            {
                "decision": request.decision,
                "latency_s": latency,
                "prompt_tokens": completion.prompt_tokens,
                "evaluated_tokens": len(tokens) - cached,
                "completion_tokens": completion.completion_tokens,
            }
        )
        trial.submit_reply(subject(request))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=8)
    args = parser.parse_args()

    backend = LlamaCppBackend("embedded", embedded_model_path(), chat_template="gemma")
    backend.load()
    run_trial(backend, 0, args.max_tokens)  # warm-up: caches, threads, page faults
    ratios = []
    table = []
    for seed in range(1, args.trials + 1):
        rows = run_trial(backend, seed, args.max_tokens)
        assert len(rows) == 12, f"expected 12 decisions, got {len(rows)}"
        first, last = rows[0], rows[11]
        ratios.append(last["latency_s"] / first["latency_s"])
        table.append((seed, first, last))

    print(
        f"Embedded model, {CONDITION}, max_tokens={args.max_tokens}, {args.trials} trials "
        "after a warm-up trial, model loaded once (as in a run)."
    )
    print("seed  decision  prompt tokens  evaluated  generated  latency")
    for seed, first, last in table:
        for row in (first, last):
            print(
                f"{seed:>4}  {row['decision']:>8}  {row['prompt_tokens']:>13}  "
                f"{row['evaluated_tokens']:>9}  {row['completion_tokens']:>9}  "
                f"{row['latency_s'] * 1000:7.1f} ms"
            )
    print(
        "'evaluated' is the prompt suffix llama.cpp had to process: the rest was reused from "
        "the KV cache. Without reuse decision 12 would evaluate its whole prompt."
    )
    ratio = statistics.median(ratios)
    print(f"decision 12 / decision 1 per trial: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"median {ratio:.3f}; target <= 1.3 -> {'met' if ratio <= 1.3 else 'MISSED'}")
    print(json.dumps({"decision12_over_decision1": round(ratio, 4)}))


if __name__ == "__main__":
    main()
