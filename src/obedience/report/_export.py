"""Tidy tables for pandas and R: trials, decisions and replies (with their labels)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from obedience.analysis import build_tables
from obedience.store import RunStore

FORMATS = ("csv", "parquet", "jsonl")


class ExportError(RuntimeError):
    """The export cannot be written. The message is one line."""


def _annotations_long(store: RunStore) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for a in store.annotations():
        for label, value in sorted(a["labels"].items()):
            rows.append(
                {
                    "trial_id": a["trial_id"],
                    "attempt": a["attempt"],
                    "seq": a["seq"],
                    "classifier": a["classifier"],
                    "label": label,
                    "value": value,
                    "reason": (a.get("reasons") or {}).get(label),
                }
            )
    return pd.DataFrame(
        rows, columns=["trial_id", "attempt", "seq", "classifier", "label", "value", "reason"]
    )


def _for_flat(df: pd.DataFrame) -> pd.DataFrame:
    """Lists (e.g. ``complied_after_prod``) as JSON text, for CSV readers."""
    out = df.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, (list, dict, tuple))).any():
            out[col] = out[col].map(
                lambda v: (
                    json.dumps(list(v) if isinstance(v, tuple) else v)
                    if isinstance(v, (list, dict, tuple))
                    else v
                )
            )
    return out


def export_tables(run_dir: str | Path, fmt: str, out_dir: str | Path | None = None) -> list[Path]:
    """Write trials, decisions, replies and annotations as ``fmt``; return the paths.

    Replies carry one ``label_<name>`` column per label of the chosen classifier (the
    judge if present, else the latest to label); ``annotations`` holds every classifier's labels
    in long form (one row per reply, classifier and label).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ExportError(
                "parquet export needs pyarrow: pip install 'obedience[parquet]' (or use csv/jsonl)"
            ) from None
    run = Path(run_dir)
    target = Path(out_dir) if out_dir is not None else run / "export"
    store = RunStore.open(run)
    try:
        tables = build_tables(store)
        frames = {
            "trials": tables.trials,
            "decisions": tables.decisions,
            "replies": tables.replies,
            "annotations": _annotations_long(store),
        }
    finally:
        store.close()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {target}: {exc.strerror}") from None
    written = []
    for name, df in frames.items():
        path = target / f"{name}.{fmt}"
        try:
            if fmt == "csv":
                _for_flat(df).to_csv(path, index=False)
            elif fmt == "jsonl":
                df.to_json(path, orient="records", lines=True, force_ascii=False)
            else:
                df.to_parquet(path, index=False)
        except OSError as exc:
            raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
        written.append(path)
    return written
