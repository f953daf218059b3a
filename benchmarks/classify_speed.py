"""Replies per second of each offline classifier, and the time to label the whole census.

Labels real model text: the 320 packaged census replies (Aksu 2026, CC BY 4.0), each
classified cold, round after round, for about ``--seconds`` per classifier. Time is the
process's CPU time (what one core spends; other load on the shared machine does not
inflate it), shown beside wall-clock. The census has 102,511 replies; the projection is
that count over the measured rate, on one core (``classify`` is single-threaded).

The labelled set over-samples long compliant replies (mean 326 characters; the census's
102,511 replies average 170), so its rates are conservative. ``--census DIR`` (the
census's ``docs/dialogs/data`` folder, unpacked from its CC BY 4.0 archive) measures on a
seeded random sample of 3,000 of the census's own replies instead.

``--against SRC`` (another checkout's ``src`` folder, e.g. the main branch's) measures
the rules of that checkout side by side with these: both run in turn, round after round,
in child processes on the same replies, and the ratio of the medians is printed (the
shared machine's noise hits both alike).

Usage: python benchmarks/classify_speed.py [--seconds S] [--census DIR] [--against SRC]
Last line: {"rules_replies_per_s": ..., "linear_replies_per_s": ..., ...} (real text), and
"rules_handwritten_replies_per_s" on the short hand-written replies for scale
(targets: rules >= 2000/s, linear >= 200/s).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from obedience.analysis.classifiers import (
    Classifier,
    LinearClassifier,
    RuleClassifier,
    load_census_set,
    load_eval_set,
)

CENSUS_REPLIES = 102_511
TARGETS = {"rules": 2000.0, "linear": 200.0}


def rate(classifier: Classifier, texts: list[str], seconds: float) -> tuple[float, float]:
    """(replies per CPU second, replies per wall second): medians over rounds."""
    cpu_rates: list[float] = []
    wall_rates: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(cpu_rates) < 3:
        c0, w0 = time.process_time(), time.perf_counter()
        for text in texts:
            classifier.classify(text)
        c1, w1 = time.process_time(), time.perf_counter()
        cpu_rates.append(len(texts) / max(c1 - c0, 1e-9))
        wall_rates.append(len(texts) / max(w1 - w0, 1e-9))
    return statistics.median(cpu_rates), statistics.median(wall_rates)


def census_sample(folder: Path, size: int = 3000, seed: int = 7) -> list[str]:
    """A seeded random sample of the teacher replies in the census's dialog files."""
    texts = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            continue  # index.json
        for session in data.get("sessions", []):
            for turn in session.get("turns", []):
                if isinstance(turn, dict) and isinstance(turn.get("c"), str):
                    texts.append(turn["c"])
    return random.Random(seed).sample(texts, min(size, len(texts)))


_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from obedience.analysis.classifiers import RuleClassifier
texts = json.load(open(sys.argv[2], encoding="utf-8"))
c = RuleClassifier()
for t in texts[:200]:
    c.classify(t)
c0 = time.process_time()
for t in texts:
    c.classify(t)
print(len(texts) / max(time.process_time() - c0, 1e-9))
"""


def side_by_side(texts: list[str], other_src: Path, rounds: int) -> tuple[float, float]:
    """Median replies/s of (this checkout's rules, ``other_src``'s rules), interleaved."""
    import subprocess
    import tempfile

    here = str(Path(__file__).resolve().parents[1] / "src")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(texts, fh)
    ours: list[float] = []
    theirs: list[float] = []
    try:
        for _ in range(rounds):
            for src, out in ((here, ours), (str(other_src), theirs)):
                done = subprocess.run(
                    [sys.executable, "-c", _CHILD, src, fh.name],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                out.append(float(done.stdout.strip().splitlines()[-1]))
    finally:
        Path(fh.name).unlink()
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--census", type=Path, default=None, help="docs/dialogs/data folder")
    parser.add_argument("--against", type=Path, default=None, help="another checkout's src/")
    parser.add_argument("--rounds", type=int, default=5, help="with --against: rounds each")
    args = parser.parse_args()
    if args.census is not None:
        texts = census_sample(args.census)
        what = "sampled from the census's own replies"
    else:
        texts = [ex.text for ex in load_census_set()]
        what = "labelled census replies (packaged)"
    mean_chars = sum(map(len, texts)) / len(texts)
    print(f"{len(texts)} real replies, {what}, mean {mean_chars:.0f} characters")
    result: dict[str, float | bool] = {}
    if args.against is not None:
        ours, theirs = side_by_side(texts, args.against, args.rounds)
        print(
            f"side by side, {args.rounds} interleaved rounds: these rules {ours:.0f}/s CPU, "
            f"{args.against}'s {theirs:.0f}/s CPU: ratio {ours / theirs:.2f}"
        )
        result["rules_replies_per_s_side_by_side"] = round(ours, 1)
        result["against_replies_per_s"] = round(theirs, 1)
        result["speedup_over_against"] = round(ours / theirs, 3)
    for name, classifier in (("rules", RuleClassifier()), ("linear", LinearClassifier())):
        cpu, wall = rate(classifier, texts, args.seconds)
        projected = CENSUS_REPLIES / cpu
        met = cpu >= TARGETS[name]
        print(
            f"{classifier.name:>22}: {cpu:8.0f} replies/s CPU ({wall:.0f}/s wall); "
            f"census {CENSUS_REPLIES:,} replies in {projected:.0f} s on one core; "
            f"target >= {TARGETS[name]:.0f}/s: {'met' if met else 'MISSED'}"
        )
        result[f"{name}_replies_per_s"] = round(cpu, 1)
        result[f"{name}_census_seconds"] = round(projected, 1)
        result[f"{name}_target_met"] = met
    # For scale: the short replies of this project's own protocols (the hand-written set).
    short = [ex.text for ex in load_eval_set()]
    cpu, _ = rate(RuleClassifier(), short, args.seconds)
    mean_short = sum(map(len, short)) / len(short)
    print(f"rules on the hand-written set (mean {mean_short:.0f} characters): {cpu:.0f}/s CPU")
    result["rules_handwritten_replies_per_s"] = round(cpu, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
