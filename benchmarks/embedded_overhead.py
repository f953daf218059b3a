"""Overhead of the runner stack over calling llama.cpp directly, for the embedded model.

A whole trial (pihlakas2026, PC-NS-NF, the real embedded Gemma 3 270M) is run through the
Runner: engine, prompt rendering, asyncio.to_thread, the store committing every reply.
The prompts and sampling settings the backend sent are recorded, and the same requests
(same prompts, max_tokens, temperature and seeds, same stop strings) are then sent by a
minimal hand-written loop over ``Llama.create_completion`` on the same loaded model. Both
start from an empty KV cache; the two are alternated REPEATS times and the fastest of each
is kept (the machine may be shared).

Usage: python benchmarks/embedded_overhead.py [--repeats N] [--max-tokens K]
Last line of output: {"trial_over_direct_loop": ...} (target <= 1.10).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_cpp import StoppingCriteriaList

from obedience.backends import ChatRequest, LlamaCppBackend, Message, Sampling, embedded_model_path
from obedience.backends._llama import GEMMA_STOPS
from obedience.protocols import load_protocol
from obedience.runner import RunConfig, Runner
from obedience.store import RunStore

CONDITION = "PC-NS-NF"


class RecordingBackend(LlamaCppBackend):
    """The embedded backend, noting each prompt it renders and each sampling it uses."""

    def __init__(self) -> None:
        super().__init__("embedded", embedded_model_path(), chat_template="gemma")
        self.sent: list[tuple[str, Sampling]] = []
        self._sampling: Sampling | None = None

    def render(self, messages: Sequence[Message]) -> str:
        prompt = super().render(messages)
        if self._sampling is not None:
            self.sent.append((prompt, self._sampling))
        return prompt

    def complete_sync(self, request: ChatRequest) -> Any:
        self._sampling = request.sampling
        try:
            return super().complete_sync(request)
        finally:
            self._sampling = None


def run_trial(backend: RecordingBackend, max_tokens: int, tmp: Path) -> tuple[float, list[str]]:
    config = RunConfig(
        models=["embedded"], conditions=[CONDITION], trials=1, max_tokens=max_tokens, seed=0
    )
    protocol = load_protocol(config.protocol)
    backend.sent.clear()
    backend.llama.reset()  # start from an empty KV cache
    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    with RunStore.create(run_dir) as store:
        started = time.perf_counter()
        asyncio.run(Runner(store, protocol, config, {"embedded": backend}).run())
        elapsed = time.perf_counter() - started
        texts = [str(e.payload["text"]) for e in store.events() if e.kind == "reply"]
    return elapsed, texts


def _opened_turn(llm: Any, prompt: str, stop_token: int) -> Any:
    n_prompt = len(llm.tokenize(prompt.encode("utf-8"), special=True))
    return lambda ids, _logits: len(ids) > n_prompt and int(ids[-1]) == stop_token


def direct_loop(
    llm: Any, sent: list[tuple[str, Sampling]], stop_token: int
) -> tuple[float, list[str]]:
    llm.reset()
    texts = []
    started = time.perf_counter()
    for prompt, s in sent:
        out = llm.create_completion(
            prompt,
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            seed=s.seed,
            stop=GEMMA_STOPS,
            # The backend also stops where the model opens a new turn (a silent token).
            stopping_criteria=StoppingCriteriaList([_opened_turn(llm, prompt, stop_token)]),
        )
        texts.append(out["choices"][0]["text"])
    return time.perf_counter() - started, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()

    backend = RecordingBackend()
    backend.load()
    # The same loaded model: a second instance's idle threads would compete for the cores.
    direct = backend.llama
    (turn_marker,) = direct.tokenize(b"<start_of_turn>", add_bos=False, special=True)
    runner_times: list[float] = []
    direct_times: list[float] = []
    same_requests = True
    same_texts = True
    reference: list[tuple[str, Sampling]] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            elapsed, runner_texts = run_trial(backend, args.max_tokens, Path(tmp))
            runner_times.append(elapsed)
            sent = list(backend.sent)
            if reference is None:
                reference = sent
            same_requests &= sent == reference
            elapsed, direct_texts = direct_loop(direct, sent, turn_marker)
            direct_times.append(elapsed)
            same_texts &= direct_texts == runner_texts
    assert reference is not None
    ratio = min(runner_times) / min(direct_times)
    tokens = sum(s.max_tokens for _p, s in reference)
    print(
        f"One {CONDITION} trial of the embedded model, {len(reference)} model calls "
        f"(max_tokens={args.max_tokens}, at most {tokens} generated tokens)."
    )
    print(f"Runner + backend + store: {', '.join(f'{t:.2f}' for t in runner_times)} s")
    print(f"direct llama.cpp loop:    {', '.join(f'{t:.2f}' for t in direct_times)} s")
    print(
        f"identical requests in every runner repeat: {same_requests}; "
        f"direct loop produced the same replies: {same_texts}"
    )
    print(
        "The ratio compares the fastest of each. What the runner adds: the engine, prompt "
        "rendering, a thread hop per call and one SQLite commit per reply."
    )
    print(f"ratio {ratio:.3f}; target <= 1.10 -> {'met' if ratio <= 1.10 else 'MISSED'}")
    print(json.dumps({"trial_over_direct_loop": round(ratio, 4)}))


if __name__ == "__main__":
    main()
