"""A judge-verdict cache in one SQLite file: a rerun of the same judge costs no calls."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from obedience.analysis.classifiers import Verdict


def default_cache_path() -> Path:
    """``$OBEDIENCE_CACHE_DIR/judge-cache.sqlite``, else ``~/.cache/obedience/...``."""
    root = os.environ.get("OBEDIENCE_CACHE_DIR") or str(Path.home() / ".cache" / "obedience")
    return Path(root) / "judge-cache.sqlite"


class JudgeCache(MutableMapping[str, Verdict]):
    """Verdicts by cache key (see ``JudgeClassifier.cache_key``), written through to disk."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict TEXT NOT NULL)"
        )

    def __getitem__(self, key: str) -> Verdict:
        row = self._conn.execute("SELECT verdict FROM verdicts WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return Verdict.from_dict(json.loads(row[0]))

    def __setitem__(self, key: str, value: Verdict) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO verdicts VALUES (?, ?)",
            (key, json.dumps(value.to_dict(), ensure_ascii=True, sort_keys=True)),
        )

    def __delitem__(self, key: str) -> None:
        self._conn.execute("DELETE FROM verdicts WHERE key = ?", (key,))

    def __iter__(self) -> Iterator[str]:
        return iter([k for (k,) in self._conn.execute("SELECT key FROM verdicts")])

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def close(self) -> None:
        self._conn.close()
