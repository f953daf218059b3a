"""Agreement of our action-line readings with the census's own parsed action.

Reads every text-channel reply of the 42-model census (Aksu 2026; hidayetaksu/llm-milgram
@ e43398d, data CC BY 4.0) and compares, reply by reply, the census's parsed action with
(a) the strict last-line reading and (b) the lenient final-line reading
(``obedience.engine._action_line``). Prints the account and, last, one JSON line.

    python benchmarks/census_parser_agreement.py [CENSUS_DIR_OR_TAR_XZ] [--examples N]

Without an argument it looks for ../shared/data/census/llm-milgram-data.tar.xz (or
/work/shared/...) and unpacks it into a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

from obedience.engine._action_line import parse_final_action_line
from obedience.engine._channels import parse_action_line
from obedience.protocols import load_protocol

CENSUS_TO_OURS = {"SHOCK": "comply", "STOP": "refuse", None: "invalid"}
# A quoted mention, defined independently of either parser: "ACTION: X" in quotes inside
# a sentence ('I will not end with "ACTION: SHOCK"'), a word or comma before the quote.
QUOTED = re.compile(r"[A-Za-z0-9,;(][^\S\n]*[\"'“‘]ACTION\s*:\s*(?:SHOCK|STOP)", re.IGNORECASE)


def census_root(arg: str | None, tmp: Path) -> Path:
    candidates = (
        [Path(arg)]
        if arg
        else [
            Path(__file__).resolve().parents[1].parent
            / "shared/data/census/llm-milgram-data.tar.xz",
            Path("/work/shared/data/census/llm-milgram-data.tar.xz"),
        ]
    )
    for c in candidates:
        if c.is_dir():
            return c
        if c.is_file():
            with tarfile.open(c) as tar:
                tar.extractall(tmp, filter="data")
            return tmp
    sys.exit(f"no census data at {', '.join(map(str, candidates))}")


def replies(root: Path):
    for f in sorted((root / "docs/dialogs/data").glob("*.json")):
        if f.name == "index.json":
            continue
        data = json.loads(f.read_text("utf-8"))
        for s in data["sessions"]:
            if s["condition"] == "tool_actuation":
                continue  # tool channel: the census read native tool calls
            for j, t in enumerate(s["turns"]):
                yield s["key"], j, t.get("c") or "", t.get("a")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path", nargs="?")
    ap.add_argument("--examples", type=int, default=3)
    args = ap.parse_args()
    channel = load_protocol("census-milgram").condition("baseline").channel
    with tempfile.TemporaryDirectory() as tmp:
        root = census_root(args.path, Path(tmp))
        rows = list(replies(root))
    strict: Counter[str] = Counter()
    lenient: Counter[str] = Counter()
    examples: dict[str, list[tuple[str, int, str]]] = {}
    t0 = time.perf_counter()
    for key, j, text, census in rows:
        want = CENSUS_TO_OURS[census]
        s = parse_action_line(text, channel).action
        strict["agree" if s == want else f"{want}->{s}"] += 1
        r = parse_final_action_line(text)
        if r.action == want:
            cat = "agree"
        elif r.action == "invalid" and r.mention_only:
            cat = f"{want}->mention"
        else:
            cat = f"{want}->{r.action}"
        lenient[cat] += 1
        if cat != "agree":
            examples.setdefault(cat, [])
            if len(examples[cat]) < args.examples:
                examples[cat].append((key, j, text[-300:]))
    seconds = time.perf_counter() - t0
    n = len(rows)
    mentions = sum(
        v for c, v in lenient.items() if c.endswith("->mention") and not c.startswith("invalid")
    )
    census_parsed = sum(1 for *_, a in rows if a is not None)
    # The target's base: replies the census parsed whose text has no quoted mention.
    base_rows = [(t, a) for _, _, t, a in rows if a is not None and not QUOTED.search(t)]
    base = len(base_rows)
    agree_on_base = sum(
        1 for t, a in base_rows if parse_final_action_line(t).action == CENSUS_TO_OURS[a]
    )
    opposite = lenient.get("comply->refuse", 0) + lenient.get("refuse->comply", 0)
    print(f"text-channel replies: {n}; census parsed {census_parsed}")
    print("strict last-line reading:", dict(strict))
    print(f"  agreement overall {strict['agree'] / n:.4f}")
    print("final-line reading:", dict(lenient))
    print(f"  agreement overall {lenient['agree'] / n:.4f}")
    print(
        f"  on census-parsed replies without a quoted mention: {agree_on_base}/{base}"
        f" = {agree_on_base / base:.5f} (target >= 0.995); opposite actions: {opposite}"
    )
    print(f"  replies the census parsed and we read as mentions: {mentions}")
    print(f"  {seconds:.2f} s for {n} replies")
    for cat, exs in sorted(examples.items()):
        print(f"--- {cat} ({lenient[cat]})")
        for key, j, tail in exs:
            print(f"  {key} turn {j}: {tail!r}")
    print(
        json.dumps(
            {
                "replies": n,
                "census_parsed": census_parsed,
                "mentions": mentions,
                "agreement_parsed_not_quoted": agree_on_base / base,
                "base": base,
                "agreement_overall_final_line": lenient["agree"] / n,
                "agreement_overall_strict": strict["agree"] / n,
                "opposite": opposite,
                "categories": dict(lenient),
            }
        )
    )


if __name__ == "__main__":
    main()
