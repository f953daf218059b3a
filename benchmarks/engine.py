"""Engine overhead per model decision, with an instant scripted subject.

Drives whole trials (construction included) of both built-in protocols with scripted
subjects whose replies are precomputed, so that nearly all the time measured is the
engine's own: message assembly, parsing, events. Single-threaded, so one core.

A *decision* is one prompt that asks the model to act (``TrialEnded.decisions``); a
*call* is one sampling request, counting the re-sampled attempts of a decision. The
headline figure is microseconds per decision over all subjects of a protocol (the
obedient subject and a mix of format-breaker, threshold and defiant ones); each cell is
the median of many short rounds. Time is the process's CPU time, which is what one core
spends on the engine (other load on a shared machine still inflates it somewhat, through
caches and shared cores); the wall-clock figure is shown beside it.

With ``--baseline SRC`` (a ``src`` directory holding another copy of the ``obedience``
package, e.g. ``git archive b4600d1 src | tar -x -C /tmp/old`` then ``/tmp/old/src``),
the other engine is loaded beside this one in the same process, each with its own protocol
files. Their rounds alternate, so that both see the same machine load, and the figure
reported is the ratio of the other engine's time over this one's: on a shared machine,
only that ratio is a fair measure.

Before measuring, this engine and a reference copy drive the same trials and the script
says whether their transcripts are byte-identical (they are when the two copies differ
only in speed). The reference is ``--same-as SRC``, or else the baseline. b4600d1 itself
cannot be the reference any more: its events lack the ``factors`` that trial starts carry
now, and its ``pihlakas2026`` is the earlier, less faithful protocol. So a speed-up over
b4600d1 is checked for byte-identity against the engine the speed-up started from
(``--same-as`` a copy of that commit, e.g. 2703d78).

Measured 2026-12-02 on the shared 2-core machine (other agents' jobs running, load
average 3-6), 30 s side by side with b4600d1, transcripts byte-identical to 2703d78:
pihlakas2026 13.3 us a decision against b4600d1's 55.1 (4.16x), milgram1963 11.7 against
43.6 (3.73x); an earlier run of the same code gave 4.02x and 3.79x.

Usage: python benchmarks/engine.py [--seconds S] [--profile] [--baseline SRC] [--same-as SRC]
Last line of output: {"pihlakas2026_us_per_decision": ..., "milgram1963_us_per_decision": ...,
"<protocol>_obedient_us_per_decision": ...} (targets <= 35 and <= 30 on the machines that
measured 125 and 90 before the engine was made faster, i.e. speed-ups over b4600d1 of at
least 3.6 and 3.0, 4 asked for); with --baseline, also "<protocol>_speedup" and the
baseline's figures; with a reference, "transcripts_identical".
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

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
CHECKED_SEEDS = range(1, 31)
TARGETS = {"pihlakas2026": 35.0, "milgram1963": 30.0}

Subject = Callable[[Any], Any]


@dataclass(frozen=True)
class Engine:
    """One copy of the engine and the protocol loader it came with."""

    label: str
    engine: ModuleType
    protocols: ModuleType

    def protocol(self, name: str) -> Any:
        # By path: each copy reads its own built-in file (a name would be looked up in
        # whichever package is imported as obedience when the call is made).
        data = Path(self.protocols.__file__).parent / "data" / f"{name}.toml"
        return self.protocols.load_protocol(data)


def this_engine() -> Engine:
    engine = importlib.import_module("obedience.engine")
    protocols = importlib.import_module("obedience.protocols")
    return Engine("this", engine, protocols)


def engine_from(src: Path) -> Engine:
    """Import another copy of the package from ``src`` without disturbing this one.

    The modules of this copy are set aside, the other copy is imported and kept by
    reference only, and this copy's modules are put back: both then run side by side.
    """
    if not (src / "obedience" / "engine").is_dir():
        raise SystemExit(f"--baseline {src}: no obedience/engine package there")
    this_engine()  # make sure this copy is imported before it is set aside

    def ours(name: str) -> bool:
        return name == "obedience" or name.startswith("obedience.")

    saved = {name: mod for name, mod in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(src))
    try:
        engine = importlib.import_module("obedience.engine")
        protocols = importlib.import_module("obedience.protocols")
    finally:
        sys.path.remove(str(src))
        for name in [n for n in sys.modules if ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)
    return Engine("baseline", engine, protocols)


def instant(subject: Subject) -> Subject:
    """The subject with its replies memoised: a scripted reply depends only on these."""
    cache: dict[tuple[str, str, str, int, int], Any] = {}

    def answer(request: Any) -> Any:
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
    round_us: list[float] = field(default_factory=list)

    @property
    def us_per_decision(self) -> float:
        return statistics.median(self.round_us or [0.0])

    @property
    def us_per_call(self) -> float:
        return self.seconds / self.calls * 1e6 if self.calls else 0.0

    @property
    def wall_us_per_decision(self) -> float:
        return self.wall / self.decisions * 1e6 if self.decisions else 0.0


@dataclass
class Runner:
    """Drives one engine's trials of one cell, a round at a time."""

    engine: Engine
    protocol: Any
    condition: str
    subject: Subject
    cell: Cell
    seed: int = 0

    def trial(self, seed: int) -> Any:
        trial = self.engine.engine.Trial(self.protocol, self.condition, seed=seed)
        subject = self.subject
        while (request := trial.next_request()) is not None:
            trial.submit_reply(subject(request))
        return trial

    def round(self) -> None:
        ended, issued = self.engine.engine.TrialEnded, self.engine.engine.RequestIssued
        cell = self.cell
        finished = []
        start, wall_start = time.process_time(), time.perf_counter()
        while True:
            self.seed += 1
            finished.append(self.trial(self.seed))
            elapsed = time.process_time() - start
            if elapsed >= ROUND_SECONDS:
                break
        cell.wall += time.perf_counter() - wall_start
        # Counted once the clock has stopped: reading the events is no part of the engine.
        decisions = calls = 0
        for trial in finished:
            end = trial.events[-1]
            assert isinstance(end, ended)
            decisions += end.decisions
            calls += sum(1 for e in trial.events if isinstance(e, issued))
        cell.trials += len(finished)
        cell.seconds += elapsed
        cell.decisions += decisions
        cell.calls += calls
        cell.round_us.append(elapsed / decisions * 1e6)


def runner(engine: Engine, protocol_name: str, condition: str, name: str) -> Runner:
    subject = instant(engine.engine.scripted_subject(name))
    cell = Cell(protocol_name, condition, name)
    made = Runner(engine, engine.protocol(protocol_name), condition, subject, cell)
    made.trial(0)  # warm the reply cache and the engine's own
    return made


def first_difference(engines: list[Engine]) -> str | None:
    """Where the engines' transcripts of the benchmark's trials first differ, if anywhere."""
    for name, (condition, subjects) in CELLS.items():
        for subject in subjects:
            runners = [runner(e, name, condition, subject) for e in engines]
            for seed in CHECKED_SEEDS:
                dumps = [r.engine.engine.dump_events(r.trial(seed).events) for r in runners]
                if len(set(dumps)) > 1:
                    return f"{name} {condition} {subject} seed {seed}"
    return None


def measure(
    engines: list[Engine], name: str, condition: str, subject: str, budget: float
) -> list[Cell]:
    """Each engine's cell; with several engines their rounds alternate."""
    runners = [runner(e, name, condition, subject) for e in engines]
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline:
        for r in runners:
            r.round()
    return [r.cell for r in runners]


def print_cells(title: str, cells: list[Cell]) -> None:
    header = (
        f"{'protocol':<14} {'condition':<10} {'subject':<15} {'trials':>7} "
        f"{'decisions':>9} {'calls':>7} {'us/decision':>11} {'us/call':>8} {'wall us/dec':>11}"
    )
    print(title)
    print(header)
    print("-" * len(header))
    for c in cells:
        print(
            f"{c.protocol:<14} {c.condition:<10} {c.subject:<15} {c.trials:>7} "
            f"{c.decisions:>9} {c.calls:>7} {c.us_per_decision:>11.1f} {c.us_per_call:>8.1f} "
            f"{c.wall_us_per_decision:>11.1f}"
        )
    print("-" * len(header))


def overall(cells: list[Cell], name: str) -> float:
    # Every subject weighs the same: the mean of the per-subject medians.
    return statistics.fmean(c.us_per_decision for c in cells if c.protocol == name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="total measuring time")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    parser.add_argument(
        "--baseline", type=Path, help="src directory of another copy of the package to compare"
    )
    parser.add_argument(
        "--same-as",
        type=Path,
        help="src directory of a copy whose transcripts must be byte-identical (default: baseline)",
    )
    args = parser.parse_args()

    engines = [this_engine()]
    if args.baseline:
        engines.append(engine_from(args.baseline.resolve()))
    reference = args.same_as or args.baseline
    summary: dict[str, Any] = {}
    if reference:
        same = engines[1] if reference == args.baseline else engine_from(reference.resolve())
        differs = first_difference([engines[0], same])
        print(f"reference for the transcripts: {reference}")
        print(
            f"transcripts: differ first at {differs}"
            if differs
            else f"transcripts: byte-identical over {len(CHECKED_SEEDS)} seeds of every cell"
        )
        summary["transcripts_identical"] = differs is None

    budget = args.seconds / sum(len(subjects) for _, subjects in CELLS.values())
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    measured = [
        measure(engines, name, condition, subject, budget)
        for name, (condition, subjects) in CELLS.items()
        for subject in subjects
    ]
    if profiler:
        profiler.disable()

    cells = [pair[0] for pair in measured]
    print_cells("this engine", cells)
    base_cells = [pair[1] for pair in measured] if len(engines) > 1 else []
    if base_cells:
        print_cells(f"baseline engine ({args.baseline})", base_cells)
    for name in CELLS:
        mine = overall(cells, name)
        obedient = next(c for c in cells if c.protocol == name and c.subject == "obedient")
        target = TARGETS[name]
        print(
            f"{name}: {mine:.1f} us per decision over all subjects "
            f"(obedient alone {obedient.us_per_decision:.1f}); target <= {target:g} "
            "on the machines that measured the targets' baselines"
        )
        summary[f"{name}_us_per_decision"] = round(mine, 2)
        summary[f"{name}_obedient_us_per_decision"] = round(obedient.us_per_decision, 2)
        if base_cells:
            base = overall(base_cells, name)
            print(f"{name}: baseline {base:.1f} us per decision; speedup {base / mine:.2f}x")
            summary[f"{name}_baseline_us_per_decision"] = round(base, 2)
            base_obedient = next(
                c for c in base_cells if c.protocol == name and c.subject == "obedient"
            )
            summary[f"{name}_baseline_obedient_us_per_decision"] = round(
                base_obedient.us_per_decision, 2
            )
            summary[f"{name}_speedup"] = round(base / mine, 2)
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
