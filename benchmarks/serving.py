"""Serving throughput: the runner against an OpenAI-compatible server with fixed latency.

A loopback server (tests/helpers/fake_openai.py, in its own process so it does not share
the GIL with the runner) answers every chat completion after exactly LATENCY seconds with
an obedient reply. With CONCURRENCY trials in flight the ideal rate is
CONCURRENCY / LATENCY decisions per second (32 / 0.1 s = 320/s); anything below that is
overhead of the runner, the engine, the store or the HTTP client.

The runner sends each request with the OpenAI client's plain ``post`` and reads the reply
as bytes: ``chat.completions.create`` type-walks every message of a long trial and builds
a model of the response, which alone capped this benchmark at ~0.35 of the ideal.

Usage: python benchmarks/serving.py [--trials N] [--concurrency C] [--latency S] [--repeats R]
Last line of output: {"achieved_over_ideal": ...} (target >= 0.85).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import obedience
from obedience import RunConfig
from obedience import RunProgress as Progress

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "tests" / "helpers" / "fake_openai.py"
CONDITION = "PC-NS-NF"  # an obedient subject makes exactly 12 decisions per trial


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", str(latency), "--subject", "obedient"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT":
        proc.kill()
        raise SystemExit(f"fake server did not start: {line}")
    return proc, f"http://127.0.0.1:{line[1]}/v1"


async def run_once(base_url: str, trials: int, concurrency: int, run_dir: Path) -> Progress:
    config = RunConfig(
        models=["openai:fake-model"],
        conditions=[CONDITION],
        trials=trials,
        concurrency=concurrency,
        base_url=base_url,
        timeout=30,
    )
    seen: list[Progress] = []
    # No labels or report: the benchmark times preflight, store and the trials.
    await obedience.run_async(
        config, run_dir, progress=lambda p: seen.append(p) if not seen else None,
        label=False, report=False,
    )  # fmt: skip
    return seen[0] if seen else Progress()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=320)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=2, help="measured runs; best is kept")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the run")
    args = parser.parse_args()

    proc, base_url = start_server(args.latency)
    ideal = args.concurrency / args.latency
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # Warm-up: imports, connection pool, first-request costs.
            asyncio.run(run_once(base_url, args.concurrency, args.concurrency, Path(tmp) / "w"))
            profiler = cProfile.Profile() if args.profile else None
            runs = []
            for i in range(args.repeats):
                started = time.perf_counter()
                if profiler:
                    profiler.enable()
                progress = asyncio.run(
                    run_once(base_url, args.trials, args.concurrency, Path(tmp) / f"run{i}")
                )
                if profiler:
                    profiler.disable()
                runs.append((progress.decisions / (time.perf_counter() - started), progress))
    finally:
        proc.kill()
        proc.wait()
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    rate, progress = max(runs, key=lambda r: r[0])
    elapsed = progress.decisions / rate
    ratio = rate / ideal
    print(
        f"{args.trials} trials of {CONDITION} through openai:fake-model at concurrency "
        f"{args.concurrency}; the loopback server answers each request after "
        f"{args.latency * 1000:.0f} ms."
    )
    print(
        f"best of {args.repeats} runs: {progress.decisions} decisions in {elapsed:.2f} s = "
        f"{rate:.1f} decisions/s (all runs: {', '.join(f'{r:.1f}' for r, _ in runs)}); "
        f"ideal {ideal:.0f}/s (concurrency / latency); errors {progress.errors}."
    )
    print(
        "The gap to the ideal is the per-decision cost of the runner, engine, store commit "
        "and HTTP client, plus the server's own parsing, and the tail of the run when fewer "
        "than CONCURRENCY trials are left."
    )
    print(f"target: achieved/ideal >= 0.85 -> {'met' if ratio >= 0.85 else 'MISSED'}")
    print(json.dumps({"achieved_over_ideal": round(ratio, 4)}))


if __name__ == "__main__":
    main()
