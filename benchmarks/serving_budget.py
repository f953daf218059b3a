"""What CPU per decision the serving targets leave a client, on this machine.

``serving.py`` measures the runner. This measures the room it has: a bare aiohttp client
(no runner, engine or store) keeps CONCURRENCY requests in flight against the same lean
loopback server, with fixed LATENCY, and after each reply spends WORK microseconds of CPU
in the event loop (a busy wait standing in for what a runner does with a reply) before it
sends the next request. achieved / ideal at each WORK shows how much CPU per decision a
single event loop may spend and still reach a target: replies that arrive while the loop
is busy wait, and that wait is added to every round trip.

Usage: python benchmarks/serving_budget.py [--cell 32,0.1] [--work 0,100,200,400,600]
       [--rounds 30] [--servers 2]
Last line, JSON: {"cell": "c32_100ms", "ratio_by_work_us": {"0": r, ...},
"work_us_at_0.95": w} (w interpolated; null if even no work misses 0.95).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # the sibling benchmark: its server start and stop

TARGET = 0.95


async def _client(url: str, concurrency: int, rounds: int, work_s: float) -> float:
    import aiohttp

    # A request the size of a mid-trial one: a few thousand characters of transcript.
    message = {"role": "user", "content": "x" * 3000}
    body = json.dumps({"model": "fake-model", "messages": [message]})
    data = body.encode()
    headers = {"content-type": "application/json"}

    async def trial(session: aiohttp.ClientSession, n: int) -> None:
        for _ in range(n):
            async with session.post(url + "/chat/completions", data=data, headers=headers) as r:
                await r.read()
            until = time.perf_counter() + work_s
            while time.perf_counter() < until:  # the loop is busy, as a runner's would be
                pass

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(trial(session, 2) for _ in range(concurrency)))  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(trial(session, rounds) for _ in range(concurrency)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="32,0.1", help="CONCURRENCY,LATENCY_S")
    parser.add_argument("--work", default="0,100,200,400,600", help="µs of CPU per reply")
    parser.add_argument("--rounds", type=int, default=30, help="requests per client task")
    parser.add_argument("--servers", type=int, default=2)
    args = parser.parse_args()
    concurrency_s, latency_s = args.cell.split(",")
    concurrency, latency = int(concurrency_s), float(latency_s)
    cell = serving.Cell(concurrency, latency, concurrency, "obedient")
    name = f"c{concurrency}_{latency * 1000:g}ms"
    ideal = concurrency / latency
    ratios: dict[str, float] = {}
    for work in (int(w) for w in args.work.split(",")):
        procs, url = serving.start_servers(cell, args.servers)
        try:
            elapsed = asyncio.run(_client(url, concurrency, args.rounds, work / 1e6))
        finally:
            serving.stop_servers(procs)
        ratio = concurrency * args.rounds / elapsed / ideal
        ratios[str(work)] = round(ratio, 4)
        print(f"{name}: {work:5d} us of CPU per reply -> {ratio:.3f} of ideal")
    print(json.dumps({"cell": name, "ratio_by_work_us": ratios, "work_us_at_0.95": _at(ratios)}))


def _at(ratios: dict[str, float], target: float = TARGET) -> float | None:
    """The work (µs) at which the ratio falls to ``target``, by linear interpolation."""
    points = sorted((int(w), r) for w, r in ratios.items())
    if not points or points[0][1] < target:
        return None
    for (w0, r0), (w1, r1) in itertools.pairwise(points):
        if r1 < target <= r0:
            return round(w0 + (r0 - target) / (r0 - r1) * (w1 - w0), 1)
    return None  # the target holds at every work tried


if __name__ == "__main__":
    main()
