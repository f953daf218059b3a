"""Engine overhead per model decision, with an instant scripted subject.

Drives whole trials (construction included) of both built-in protocols with scripted
subjects whose replies are precomputed, so that nearly all the time measured is the
engine's own: message assembly, parsing, events. Single-threaded, so one core.

A *decision* is one prompt that asks the model to act (``TrialEnded.decisions``); a
*call* is one sampling request, counting the re-sampled attempts of a decision. The
headline figure is microseconds per decision over all subjects of a protocol (the
obedient subject and a mix of format-breaker, threshold and defiant ones); each cell is
the median of many short rounds. Time is the process's CPU time, which is what one core
spends on the engine, so other load on the machine does not inflate it; the wall-clock
figure is shown beside it.

Usage: python benchmarks/engine.py [--seconds S] [--profile]
Last line of output: {"pihlakas2026_us_per_decision": ..., "milgram1963_us_per_decision": ...}
(target <= 100).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from obedience.engine import (
    Reply,
    Request,
    RequestIssued,
    Trial,
    TrialEnded,
    scripted_subject,
)
from obedience.protocols import Protocol, load_protocol

Subject = Callable[[Request], Reply]

CELLS: dict[str, tuple[str, list[str]]] = {
    "pihlakas2026": (
        "PC-NS-NF",
        ["obedient", "format-breaker", "threshold:6", "defiant", "distressed"],
    ),
    "milgram1963": (
        "baseline",
        ["obedient", "format-breaker", "threshold:20", "defiant", "distressed"],
    ),
}
ROUND_SECONDS = 0.05


def instant(subject: Subject) -> Subject:
    """The subject with its replies memoised: a scripted reply depends only on these."""
    cache: dict[tuple[str, str, str, int, int], Reply] = {}

    def answer(request: Request) -> Reply:
        key = (
            request.channel,
            request.comply_word,
            request.refuse_word,
            request.level,
            request.attempt,
        )
        reply = cache.get(key)
        if reply is None:
            reply = cache[key] = subject(request)
        return reply

    return answer


@dataclass
class Cell:
    protocol: str
    condition: str
    subject: str
    seconds: float = 0.0
    wall: float = 0.0
    trials: int = 0
    decisions: int = 0
    calls: int = 0
    round_us: list[float] | None = None

    @property
    def us_per_decision(self) -> float:
        return statistics.median(self.round_us or [0.0])

    @property
    def us_per_call(self) -> float:
        return self.seconds / self.calls * 1e6 if self.calls else 0.0

    @property
    def wall_us_per_decision(self) -> float:
        return self.wall / self.decisions * 1e6 if self.decisions else 0.0


def run_trial(protocol: Protocol, condition: str, seed: int, subject: Subject) -> Trial:
    trial = Trial(protocol, condition, seed=seed)
    while (request := trial.next_request()) is not None:
        trial.submit_reply(subject(request))
    return trial


def measure(protocol: Protocol, condition: str, name: str, budget: float) -> Cell:
    subject = instant(scripted_subject(name))
    cell = Cell(protocol.name, condition, name, round_us=[])
    seed = 0
    run_trial(protocol, condition, seed, subject)  # warm the reply cache
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline:
        decisions = calls = 0
        start, wall_start = time.process_time(), time.perf_counter()
        while True:
            seed += 1
            trial = run_trial(protocol, condition, seed, subject)
            end = trial.events[-1]
            assert isinstance(end, TrialEnded)
            decisions += end.decisions
            calls += sum(1 for e in trial.events if isinstance(e, RequestIssued))
            cell.trials += 1
            elapsed = time.process_time() - start
            if elapsed >= ROUND_SECONDS:
                break
        cell.wall += time.perf_counter() - wall_start
        cell.seconds += elapsed
        cell.decisions += decisions
        cell.calls += calls
        assert cell.round_us is not None
        cell.round_us.append(elapsed / decisions * 1e6)
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="total measuring time")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    args = parser.parse_args()

    protocols = {name: load_protocol(name) for name in CELLS}
    budget = args.seconds / sum(len(subjects) for _, subjects in CELLS.values())
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    cells = [
        measure(protocols[name], condition, subject, budget)
        for name, (condition, subjects) in CELLS.items()
        for subject in subjects
    ]
    if profiler:
        profiler.disable()

    header = (
        f"{'protocol':<14} {'condition':<10} {'subject':<15} {'trials':>7} "
        f"{'decisions':>9} {'calls':>7} {'us/decision':>11} {'us/call':>8} {'wall us/dec':>11}"
    )
    print(header)
    print("-" * len(header))
    for c in cells:
        print(
            f"{c.protocol:<14} {c.condition:<10} {c.subject:<15} {c.trials:>7} "
            f"{c.decisions:>9} {c.calls:>7} {c.us_per_decision:>11.1f} {c.us_per_call:>8.1f} "
            f"{c.wall_us_per_decision:>11.1f}"
        )
    print("-" * len(header))
    summary: dict[str, float] = {}
    for name in CELLS:
        mine = [c for c in cells if c.protocol == name]
        # Every subject weighs the same: the mean of the per-subject medians.
        overall = statistics.fmean(c.us_per_decision for c in mine)
        obedient = next(c for c in mine if c.subject == "obedient").us_per_decision
        verdict = "ok" if overall <= 100 else "OVER TARGET"
        print(
            f"{name}: {overall:.1f} us per decision over all subjects "
            f"(obedient alone {obedient:.1f}); target <= 100: {verdict}"
        )
        summary[f"{name}_us_per_decision"] = round(overall, 2)
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
