"""Serving throughput: the runner against an OpenAI-compatible server with fixed latency.

A loopback server (tests/helpers/fake_openai.py) answers every chat completion after
exactly LATENCY seconds. It runs in ``--servers`` processes (4 by default) sharing one port
(SO_REUSEPORT), apart from the runner, so it does not share the runner's GIL, and lean
(``--lean``: one prepared answer, request bodies not parsed), so it takes little of the
CPU the runner shares with it. With
CONCURRENCY trials in flight the ideal rate is CONCURRENCY / LATENCY decisions per
second; achieved / ideal is what is left after the runner, the engine, the store commit
and the HTTP client take their share. Each cell runs in a fresh child process (imports
and a short warm-up are not timed), timed from the API call to the end of the run
(preflight, planning, starting every trial and the tail included), and the child's
peak RSS is the runner's.

Cells (trials all start at once, so CONCURRENCY trials are in flight):

* ``c32_100ms``:  32 in flight at 100 ms, obedient subject (12 decisions a trial), 320
  trials (ten waves);
* ``c256_500ms``: 256 at 500 ms, obedient (12 decisions), 1,024 trials (four waves);
* ``c1024_2s``:   1,024 at 2 s, defiant subject (6 decisions a trial: it refuses, is
  prodded and ends, which keeps the cell short);
* ``c10000_5s``:  10,000 trials in flight at 5 s, defiant (6 decisions).

The server's own ceiling is printed from the CPU time each server process used per
request it served, and so is the latency it served on average (its timers fire late, so it
aims early by their measured lateness: the latency served is the latency asked for, not
0.5-1 ms more of the server's own), and the number of connections its listen queues dropped during
the cell (Linux; it should be 0: a dropped connection is retried a second later).
``--compare`` also runs the 32 and 256 cells with the openai SDK's transports
(``openai-aiohttp``: the SDK's ``DefaultAioHttpClient``; ``openai-httpx``: its default
httpx pool), side by side with the backend's direct aiohttp session.

Each cell runs with one runner process and with ``workers`` processes (``--workers``,
default ``1,<cores>``; the run's ``workers`` setting), side by side.

Usage: python benchmarks/serving.py [--quick] [--compare] [--cells c32_100ms,...]
       [--servers N] [--profile CELL] [--workers 1,2]
The machine is often shared: the numbers move with its load; compare cells of one run.
Last line of output, for the first ``--workers`` value (1 by default): {"c32_100ms": r,
"c256_500ms": r, "c1024_2s": r, "c10000_5s": r, "rss_mb_at_10000": mb} (targets 0.95,
0.95, 0.9, 0.85 and 2,048 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "tests" / "helpers" / "fake_openai.py"
CONDITION = "PC-NS-NF"
DECISIONS = {"obedient": 12, "defiant": 6}
TARGETS = {"c32_100ms": 0.95, "c256_500ms": 0.95, "c1024_2s": 0.9, "c10000_5s": 0.85}
RSS_TARGET_MB = 2048


@dataclass(frozen=True)
class Cell:
    concurrency: int
    latency: float
    trials: int
    subject: str


# The 32 and 256 cells run ten and four waves of trials: a cell of one to three waves
# (96 and 256 trials before 2026-12-04) timed mostly its start and its last wave's
# stragglers, and its trials, all started at once against a server of constant latency,
# stayed in lockstep, their replies arriving in bursts of the whole cell.
CELLS = {
    "c32_100ms": Cell(32, 0.1, 320, "obedient"),
    "c256_500ms": Cell(256, 0.5, 1024, "obedient"),
    "c1024_2s": Cell(1024, 2.0, 1024, "defiant"),
    "c10000_5s": Cell(10_000, 5.0, 10_000, "defiant"),
}
QUICK = {
    "c32_100ms": Cell(32, 0.1, 32, "obedient"),
    "c256_500ms": Cell(256, 0.5, 256, "defiant"),
    "c1024_2s": Cell(1024, 2.0, 1024, "defiant"),
    "c10000_5s": Cell(10_000, 5.0, 10_000, "defiant"),
}


# --------------------------------------------------------------------------- servers


def start_servers(cell: Cell, processes: int) -> tuple[list[subprocess.Popen[str]], str]:
    def spawn(port: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(SERVER), "--latency", str(cell.latency), "--subject",
             cell.subject, "--port", str(port), "--reuse-port", "--lean"],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    first = spawn(0)
    assert first.stdout is not None
    line = first.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT":
        first.kill()
        raise SystemExit(f"fake server did not start: {line}")
    port = int(line[1])
    procs = [first] + [spawn(port) for _ in range(processes - 1)]
    for proc in procs[1:]:
        assert proc.stdout is not None
        proc.stdout.readline()
    return procs, f"http://127.0.0.1:{port}/v1"


def listen_overflows() -> int | None:
    """The kernel's count of connections dropped because a listen queue was full (Linux's
    TcpExt ListenOverflows; None where it cannot be read). A dropped connection costs the
    client a retransmit a second later: the server's limit, not the runner's."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table["ListenOverflows"]) if "ListenOverflows" in table else None
    return None


def stop_servers(procs: list[subprocess.Popen[str]]) -> tuple[int, float, float]:
    """(requests served, CPU seconds used, seconds of latency served) summed over the
    server processes."""
    served, cpu, waited = 0, 0.0, 0.0
    for proc in procs:
        proc.terminate()
    for proc in procs:
        out, _ = proc.communicate(timeout=30)
        for line in out.splitlines():
            if line.startswith("STATS "):
                stats = json.loads(line[6:])
                served += int(stats["chat_requests"])
                cpu += float(stats["cpu_s"])
                waited += float(stats["served_latency_s"])
    return served, cpu, waited


# ----------------------------------------------------------------------------- child


async def run_once(
    base_url: str, trials: int, concurrency: int, client: str, out: Path, workers: int = 1
) -> Any:
    import obedience
    from obedience import RunConfig
    from obedience.backends import BackendOptions, make_backend

    spec = "openai:fake-model"
    config = RunConfig(
        models=[spec],
        conditions=[CONDITION],
        trials=trials,
        concurrency=concurrency,
        base_url=base_url,
        timeout=120,
        workers=workers,
    )
    # With workers, each makes its own backend (the default aiohttp client).
    backend = (
        None
        if workers > 1
        else make_backend(spec, BackendOptions(base_url=base_url, http_client=client))
    )
    seen: list[Any] = []
    try:
        # No labels or report: the benchmark times preflight, store and the trials.
        await obedience.run_async(
            config, out, backends=None if backend is None else {spec: backend},
            label=False, report=False,
            progress=lambda p: seen.append(p) if not seen else None,
        )  # fmt: skip
    finally:
        if backend is not None:
            await backend.aclose()
    return seen[0]


def child(args: argparse.Namespace) -> None:
    cell = CELLS[args.child] if not args.quick else QUICK[args.child]

    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up: imports, the first connections, first-request costs.
        # With workers, the warm-up also starts the fork server they are forked from (its
        # imports are not timed); the workers themselves are new processes in each run.
        asyncio.run(
            run_once(
                args.base_url, min(cell.concurrency, 32), 32, args.client, Path(tmp) / "w",
                args.workers,
            )
        )  # fmt: skip
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        cpu0 = time.process_time()
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        progress = asyncio.run(
            run_once(
                args.base_url, cell.trials, cell.concurrency, args.client, Path(tmp) / "r",
                args.workers,
            )
        )  # fmt: skip
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        cpu += progress.worker_cpu_s  # the workers' own CPU, as they reported it
    if profiler:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(30)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_mb += progress.worker_peak_rss_mb  # the sum of the workers' peaks (an upper bound)
    print(json.dumps({"decisions": progress.decisions, "errors": progress.errors,
                      "elapsed": elapsed, "cpu": cpu, "rss_mb": rss_mb}))  # fmt: skip


# ---------------------------------------------------------------------------- parent


def measure(
    name: str, cell: Cell, args: argparse.Namespace, client: str, workers: int
) -> dict[str, Any]:
    procs, base_url = start_servers(cell, args.servers)
    overflows = listen_overflows()
    try:
        cmd = [sys.executable, __file__, "--child", name, "--base-url", base_url,
               "--client", client, "--workers", str(workers)]  # fmt: skip
        if args.quick:
            cmd.append("--quick")
        if args.profile == name:
            cmd += ["--profile", name]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    finally:
        served, server_cpu, waited = stop_servers(procs)
        after = listen_overflows()
        dropped = None if overflows is None or after is None else after - overflows
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"{name} ({client}) failed:\n{done.stderr[-3000:]}")
    if args.profile == name:
        print(done.stderr, file=sys.stderr)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    ideal = cell.concurrency / cell.latency
    rate = result["decisions"] / result["elapsed"]
    result.update(
        rate=rate,
        ideal=ideal,
        ratio=rate / ideal,
        runner_us=1e6 * result["cpu"] / max(1, result["decisions"]),
        server_us=1e6 * server_cpu / max(1, served),
        served=served,
        served_ms=1000 * waited / max(1, served),
        dropped=dropped,
    )
    return result


def describe(
    name: str, cell: Cell, client: str, r: dict[str, Any], servers: int, workers: int
) -> str:
    ceiling = servers * 1e6 / r["server_us"] if r["server_us"] else float("inf")
    return (
        f"{name:<11} {client:<14} workers {workers}: {cell.trials:>6} trials x "
        f"{DECISIONS[cell.subject]:>2} decisions, {cell.concurrency:>5} in flight at "
        f"{cell.latency * 1000:>4.0f} ms: "
        f"{r['rate']:7.1f}/s of ideal {r['ideal']:6.0f}/s = {r['ratio']:.3f}; "
        f"runner {r['runner_us']:4.0f} us CPU/decision, peak RSS {r['rss_mb']:6.0f} MB; "
        f"server {r['server_us']:4.0f} us CPU/request (ceiling ~{ceiling:,.0f}/s on "
        f"{servers} free cores), latency served {r['served_ms']:.1f} ms; errors {r['errors']}; "
        f"connections the server's listen "
        f"queues dropped: {'?' if r['dropped'] is None else r['dropped']}"
    )


def verdict(results: dict[str, float | None], rss: float | None) -> str:
    missed = [n for n, t in TARGETS.items() if results[n] is not None and results[n] < t]
    if rss is not None and rss > RSS_TARGET_MB:
        missed.append("rss_mb_at_10000")
    return "met" if not missed else "MISSED " + ", ".join(missed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="shorter cells (CI-ish)")
    parser.add_argument("--compare", action="store_true", help="also time the SDK transports")
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated cell names")
    # Four: each process's listen queue holds at most net.core.somaxconn (4,096 here)
    # connections, and 10,000 trials open theirs at once; with two processes the queues
    # overflowed (hundreds of connections dropped per run, each retried a second later).
    parser.add_argument("--servers", type=int, default=4, help="fake server processes")
    parser.add_argument("--profile", default=None, help="print a cProfile of this cell")
    parser.add_argument(
        "--workers",
        default=None,
        help="runner processes, comma-separated to compare (default: 1 and every core)",
    )
    parser.add_argument("--client", default="aiohttp", help=argparse.SUPPRESS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.workers = int(args.workers or 1)
        child(args)
        return
    table = QUICK if args.quick else CELLS
    names = [n.strip() for n in args.cells.split(",") if n.strip()]
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"unknown cell {unknown[0]!r}; cells: {', '.join(table)}")
    cores = os.cpu_count() or 1
    worker_counts = [int(w) for w in (args.workers or f"1,{cores}").split(",")]
    worker_counts = list(dict.fromkeys(worker_counts))
    print(f"{cores} cores; fake server in {args.servers} processes; "
          f"load average {os.getloadavg()[0]:.1f} at the start")  # fmt: skip
    by_workers: dict[int, tuple[dict[str, float | None], float | None]] = {}
    for name in names:
        cell = table[name]
        for workers in worker_counts:
            clients = ["aiohttp"]
            if args.compare and cell.concurrency <= 256 and workers == 1:
                clients += ["openai-aiohttp", "openai-httpx"]
            results, rss = by_workers.setdefault(workers, (dict.fromkeys(TARGETS), None))
            for client in clients:
                r = measure(name, cell, args, client, workers)
                print(describe(name, cell, client, r, args.servers, workers), flush=True)
                if client == "aiohttp":
                    results[name] = round(r["ratio"], 4)
                    if name == "c10000_5s":
                        rss = round(r["rss_mb"], 1)
            by_workers[workers] = (results, rss)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    for workers, (results, rss) in by_workers.items():
        line = json.dumps({**results, "rss_mb_at_10000": rss})
        print(f"workers {workers}: targets {TARGETS}, RSS <= {RSS_TARGET_MB} MB: "
              f"{verdict(results, rss)}; {line}")  # fmt: skip
    # The last line: the first runner measured (one process, the default, by default).
    results, rss = by_workers[worker_counts[0]]
    print(json.dumps({**results, "rss_mb_at_10000": rss}))


if __name__ == "__main__":
    main()
