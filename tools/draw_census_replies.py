"""Draw a fresh, seeded batch of real census replies for hand-coding.

The census of Hidayet Aksu (``hidayetaksu/llm-milgram``, CC BY 4.0) publishes every turn
of its 42 models in ``docs/dialogs/data/*.json``. This draws replies that are in none of
the project's labelled sets (compared after whitespace is collapsed), stratified by the
census's own parsed action in the proportions of the double-coded set (about 40% SHOCK,
40% STOP, 20% unparsed) and spread over the models, and writes them without labels, for
coders to label blind (see ``../shared/data/LABELLING.md``).

Usage: python tools/draw_census_replies.py CENSUS_DIR --prefix fresh3 --n 150 --seed 3
       [--exclude more.jsonl ...] -o batch.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "src/obedience/analysis/classifiers/data"
LABELLED = [
    DATA / "census_replies_labelled.jsonl",
    DATA / "census_replies_single_coded.jsonl",
    DATA / "census_replies_ai_coded.jsonl",
    DATA / "classifier_eval.jsonl",  # short replies can coincide with hand-written ones
]
SHARES = {"SHOCK": 0.4, "STOP": 0.4, None: 0.2}
MIN_CHARS, MAX_CHARS = 10, 2000


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _known(paths: list[Path]) -> set[str]:
    known: set[str] = set()
    for path in paths:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    known.add(_key(json.loads(line)["text"]))
    return known


def _replies(census: Path) -> list[dict[str, Any]]:
    """Every teacher reply of the census, with where it came from."""
    out: list[dict[str, Any]] = []
    for path in sorted((census / "docs/dialogs/data").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):  # index.json
            continue
        for session in data["sessions"]:
            for turn in session["turns"]:
                text = turn.get("c")
                if not isinstance(text, str) or not MIN_CHARS <= len(text) <= MAX_CHARS:
                    continue
                action = turn.get("a") if turn.get("a") in ("SHOCK", "STOP") else None
                out.append(
                    {
                        "text": text,
                        "source": {
                            "model": data["model"],
                            "condition": session.get("condition"),
                            "voltage": turn.get("v"),
                            "census_parsed_action": action,
                        },
                    }
                )
    return out


def draw(census: Path, n: int, seed: int, prefix: str, exclude: list[Path]) -> list[dict[str, Any]]:
    known = _known(LABELLED + exclude)
    pool: dict[str | None, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    seen: set[str] = set()
    for reply in _replies(census):
        key = _key(reply["text"])
        if key in known or key in seen:
            continue
        seen.add(key)
        source = reply["source"]
        pool[source["census_parsed_action"]][source["model"]].append(reply)
    rng = random.Random(seed)
    chosen: list[dict[str, Any]] = []
    for action, share in SHARES.items():
        by_model = pool[action]
        models = sorted(by_model)
        rng.shuffle(models)
        for replies in by_model.values():
            replies.sort(key=lambda r: hashlib.sha256(r["text"].encode()).hexdigest())
            rng.shuffle(replies)
        want = round(n * share)
        # Round-robin over the models, so that no one model's style dominates the batch.
        picked: list[dict[str, Any]] = []
        while len(picked) < want and any(by_model[m] for m in models):
            for model in models:
                if by_model[model] and len(picked) < want:
                    picked.append(by_model[model].pop())
        chosen.extend(picked)
    rng.shuffle(chosen)
    return [{"id": f"{prefix}-{i:03d}", **reply} for i, reply in enumerate(chosen)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("census", type=Path)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude", type=Path, action="append", default=[])
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    batch = draw(args.census, args.n, args.seed, args.prefix, args.exclude)
    with args.out.open("w", encoding="utf-8") as fh:
        for row in batch:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{args.out}: {len(batch)} replies")


if __name__ == "__main__":
    main()
