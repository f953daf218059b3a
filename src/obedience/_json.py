"""JSON on a run's hot path: orjson where it gives the same data, the standard library
where it would not.

Every decision encodes a request body (the whole transcript so far, kilobytes), decodes
the server's answer and encodes about a dozen stored events. With the standard library
that was 60-120 us of the runner's CPU per decision (``benchmarks/serving.py``); orjson
does the same work 4-8 times faster. Its output differs only in form (UTF-8 instead of
``\\u`` escapes, ``1e-07`` spelled ``1e-7``), never in the data read back, because every
case where orjson would change or refuse the data goes to the standard library:

- a lone surrogate (valid JSON, not UTF-8) or a key that is not a string, which orjson
  refuses: the standard library writes them as before (ASCII escapes);
- a NaN or an infinity, which orjson would silently write as ``null``: the standard
  library keeps them (``NaN``, ``Infinity``), as the store always has;
- a datetime, a dataclass or a subclass of a JSON type, which the standard library
  refuses or writes its own way: it still does (a value that is not JSON fails the
  write, as before; only a UUID or an Enum member, which orjson writes as text or its
  value, is stored where the standard library would refuse it);
- answers orjson does not read (lone surrogate escapes, ``NaN``) or would read as
  something else (integers beyond 64 bits, which it makes floats): the standard
  library reads them as before.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

_SORTED = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), sort_keys=True)
_COMPACT = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def _has_non_finite(value: Any) -> bool:
    """Whether a NaN or an infinity is anywhere in ``value``, which orjson has encoded, so
    it holds exact JSON types only (subclasses went to the standard library). A loop:
    this runs for most payloads, and a recursive walk cost four times the encoding."""
    todo = [value]
    while todo:
        item = todo.pop()
        kind = type(item)
        if kind is dict:
            todo.extend(item.values())
        elif kind is list or kind is tuple:
            todo.extend(item)
        elif kind is float and not math.isfinite(item):
            return True
    return False


# Values the standard library refuses (datetimes, dataclasses) or writes its own way
# (subclasses of str, int, dict and list) go to it: orjson would write them silently.
_AS_BEFORE = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _fast(value: Any, option: int) -> bytes | None:
    """orjson's encoding, or None where it would refuse or change the data."""
    try:
        encoded = orjson.dumps(value, option=option | _AS_BEFORE)
    except orjson.JSONEncodeError:
        return None
    # orjson writes NaN and infinities as null: look for them only when a null is there.
    if b"null" in encoded and _has_non_finite(value):
        return None
    return encoded


def dumps_sorted(value: Any) -> str:
    """Compact JSON with sorted keys (the store's payloads): one text for one value."""
    encoded = _fast(value, orjson.OPT_SORT_KEYS)
    return _SORTED.encode(value) if encoded is None else encoded.decode()


def dumps_bytes(value: Any) -> bytes:
    """Compact JSON as bytes (a request body)."""
    encoded = _fast(value, 0)
    return _COMPACT.encode(value).encode("ascii") if encoded is None else encoded


# 19 digits in a row: the shortest number that can be an integer beyond 64 bits, which
# orjson reads as a float (the standard library keeps it exact).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def loads(raw: bytes | str) -> Any:
    """The value of a JSON text; raises ``ValueError`` on text that is not JSON."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if _LONG_DIGITS.search(data) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)
