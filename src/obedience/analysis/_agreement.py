"""Agreement between labellers of a run's replies, and human labels as an input.

* ``read_human_labels(lines)`` validates a JSON-lines file of human labels
  (``trial_id``, ``seq``, optional ``attempt``, ``labels``, ``coder``, optional
  ``coded_at``); ``import_human_labels(store, labels)`` stores them as a human label
  set beside the machine labels, never over them.
* ``overlay_human_labels(replies, humans)`` makes the analysis use a human label
  wherever one exists, and records machine-human agreement on the overlap (the
  machine's label before the overlay against the human's) in ``replies.attrs``.
* ``pairwise_agreement(store, a, b)``: Cohen's kappa per label between two
  classifiers' (judges') current labels, on the replies both labelled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from obedience.analysis.classifiers import LABELS, cohen_kappa
from obedience.store import REASONING_SUFFIX, HumanLabel, RunStore, add_label_set

HUMAN_PREFIX = "human:"


def read_human_labels(lines: Iterable[str], source: str = "input") -> list[HumanLabel]:
    """Parse human label lines; a bad line raises ValueError naming the line and field."""
    out: list[HumanLabel] = []
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}: line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: invalid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object")
        trial_id, seq = record.get("trial_id"), record.get("seq")
        if not isinstance(trial_id, str) or not trial_id:
            raise ValueError(f"{where}: needs a string 'trial_id'")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError(f"{where}: needs an integer 'seq' (the reply's event number)")
        attempt = record.get("attempt", -1)
        if not isinstance(attempt, int) or isinstance(attempt, bool):
            raise ValueError(f"{where}: 'attempt' must be an integer")
        labels = record.get("labels")
        if not isinstance(labels, dict) or not labels:
            raise ValueError(f"{where}: needs a non-empty 'labels' object")
        unknown = [k for k in labels if k not in LABELS]
        if unknown:
            raise ValueError(f"{where}: unknown labels {unknown} (known: {list(LABELS)})")
        if not all(isinstance(v, bool) for v in labels.values()):
            raise ValueError(f"{where}: label values must be true or false")
        coder = record.get("coder")
        if not isinstance(coder, str) or not coder.strip():
            raise ValueError(f"{where}: needs the coder's name in 'coder'")
        part = record.get("text_part", "visible")
        if part not in ("visible", "reasoning"):
            raise ValueError(f'{where}: \'text_part\' must be "visible" or "reasoning"')
        coded_at = record.get("coded_at", now)
        if not isinstance(coded_at, str):
            raise ValueError(f"{where}: 'coded_at' must be a string (ISO 8601 time)")
        out.append(
            HumanLabel(trial_id, attempt, seq, dict(labels), coder.strip(), coded_at, str(part))
        )
    return out


def import_human_labels(store: RunStore, labels: Sequence[HumanLabel]) -> int:
    """Store human labels (one label set per coder); returns how many were stored.

    ``attempt`` -1 means the trial's counted attempt. A label for a reply that is not
    in the store raises ValueError, and nothing is stored.
    """
    attempts = {t.trial_id: t.attempt for t in store.trials()}
    replies = {(e.trial_id, e.attempt, e.seq) for e in store.events(final_only=False)
               if e.kind == "reply"}  # fmt: skip
    resolved: list[HumanLabel] = []
    for h in labels:
        attempt = attempts.get(h.trial_id, -1) if h.attempt == -1 else h.attempt
        if (h.trial_id, attempt, h.seq) not in replies:
            raise ValueError(
                f"no reply at trial {h.trial_id!r} attempt {attempt} seq {h.seq} in this run"
            )
        resolved.append(
            HumanLabel(h.trial_id, attempt, h.seq, h.labels, h.coder, h.coded_at, h.text_part)
        )
    for part, coder in sorted({(h.text_part, h.coder) for h in resolved}):
        mine = [h for h in resolved if h.coder == coder and h.text_part == part]
        suffix = REASONING_SUFFIX if part == "reasoning" else ""
        add_label_set(
            store,
            f"{HUMAN_PREFIX}{coder}{suffix}",
            [(h.trial_id, h.attempt, h.seq, h.labels, {}) for h in mine],
            kind="human",
            identity={"coder": coder, "text_part": part},
            coder=coder,
            coded_at=[h.coded_at for h in mine],
        )
    return len(resolved)


def overlay_human_labels(
    replies: pd.DataFrame, humans: Sequence[HumanLabel], counted: Mapping[str, int]
) -> pd.DataFrame:
    """Human labels replace machine ones where they exist (counted attempts only)."""
    chosen = {(h.trial_id, h.seq): h.labels for h in humans if counted.get(h.trial_id) == h.attempt}
    if replies.empty or not chosen:
        return replies
    out = replies.copy()
    keys = list(zip(out["trial_id"], out["seq"], strict=True))
    agreement: dict[str, Any] = {}
    for label in LABELS:
        col = f"label_{label.replace('-', '_')}"
        if col not in out.columns:
            continue
        machine = list(out[col])
        pairs = [
            (bool(chosen[k][label]), bool(machine[i]))
            for i, k in enumerate(keys)
            if k in chosen and label in chosen[k] and machine[i] is not None
        ]
        if pairs:
            agreement[label] = {
                "overlap": len(pairs),
                "agree": sum(1 for a, b in pairs if a == b),
                "kappa": cohen_kappa(pairs),
            }
        out[col] = [
            chosen[k][label] if k in chosen and label in chosen[k] else machine[i]
            for i, k in enumerate(keys)
        ]
    out["label_source"] = ["human" if k in chosen else "machine" for k in keys]
    machine_name = replies.attrs.get("classifier")
    out.attrs["classifier"] = f"{machine_name}, human labels where given"
    out.attrs["machine_human_agreement"] = {
        "machine": machine_name,
        "human_labelled_replies": sum(1 for k in keys if k in chosen),
        "per_label": agreement,
    }
    return out


def pairwise_agreement(store: RunStore, a: str, b: str) -> dict[str, dict[str, Any]]:
    """Cohen's kappa per label between classifiers ``a`` and ``b`` on shared replies."""
    first = {(x["trial_id"], x["attempt"], x["seq"]): x["labels"] for x in store.annotations(a)}
    second = {(x["trial_id"], x["attempt"], x["seq"]): x["labels"] for x in store.annotations(b)}
    shared = sorted(set(first) & set(second))
    out: dict[str, dict[str, Any]] = {}
    for label in LABELS:
        pairs = [
            (bool(first[k][label]), bool(second[k][label]))
            for k in shared
            if label in first[k] and label in second[k]
        ]
        if pairs:
            out[label] = {
                "overlap": len(pairs),
                "agree": sum(1 for x, y in pairs if x == y),
                "kappa": cohen_kappa(pairs),
            }
    return out
