"""The hot path's JSON (orjson with standard-library fallbacks) gives the data the standard
library gave: any text, any number, any key, read back equal; stored NaN stays NaN."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obedience._json import dumps_bytes, dumps_sorted, loads
from obedience.store import RunStore
from obedience.store._sqlite import Appended

TEXT = st.text(
    st.one_of(
        st.characters(min_codepoint=0, max_codepoint=0x10FFFF),
        st.characters(categories=["Cs"]),  # lone surrogates: orjson refuses them
    ),
    max_size=20,
)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),  # beyond 64 bits: orjson refuses
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(TEXT, inner, max_size=4),
    ),
    max_leaves=12,
)


def _stdlib_sorted(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), sort_keys=True)


@settings(max_examples=400, deadline=None)
@given(VALUE)
def test_sorted_text_reads_back_as_the_standard_librarys(value: Any) -> None:
    # Compared as the standard library's text of what was read back: NaN != NaN as floats.
    assert _stdlib_sorted(json.loads(dumps_sorted(value))) == _stdlib_sorted(value)


@settings(max_examples=400, deadline=None)
@given(VALUE)
def test_body_bytes_read_back_as_the_standard_librarys(value: Any) -> None:
    assert _stdlib_sorted(json.loads(dumps_bytes(value))) == _stdlib_sorted(value)


@settings(max_examples=400, deadline=None)
@given(VALUE)
def test_loads_reads_what_the_standard_library_reads(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=True)
    assert _stdlib_sorted(loads(text.encode("ascii"))) == _stdlib_sorted(json.loads(text))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"cost": float("nan")}, '{"cost":NaN}'),
        ({"logprob": float("-inf"), "x": None}, '{"logprob":-Infinity,"x":null}'),
        ({"t": "a\ud800b"}, '{"t":"a\\ud800b"}'),  # a lone surrogate stays an ASCII escape
        ({1: "int key"}, '{"1":"int key"}'),
        ({"n": 2**65}, '{"n":36893488147419103232}'),
    ],
)
def test_what_orjson_would_refuse_or_change_is_written_as_before(value: Any, text: str) -> None:
    assert dumps_sorted(value) == text


def test_a_value_that_is_not_json_is_refused_as_before() -> None:
    import dataclasses
    import datetime

    @dataclasses.dataclass
    class Point:
        x: int

    for value in ({"when": datetime.datetime(2026, 12, 3)}, [Point(1)], {"s": {1, 2}}):
        with pytest.raises(TypeError, match="JSON"):
            dumps_sorted(value)
        with pytest.raises(TypeError, match="JSON"):
            dumps_bytes(value)


def test_subclasses_are_written_as_the_standard_library_writes_them() -> None:
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    class Tag(enum.StrEnum):
        A = "a"

    assert dumps_sorted({"l": Level.HIGH, "t": Tag.A}) == _stdlib_sorted({"l": 3, "t": "a"})


def test_ordinary_values_are_utf8_with_sorted_keys() -> None:
    assert dumps_sorted({"b": "é", "a": [1, 2.5, None]}) == '{"a":[1,2.5,null],"b":"é"}'
    assert dumps_bytes({"b": "é", "a": True}) == '{"b":"é","a":true}'.encode()


def test_not_json_is_a_value_error() -> None:
    for raw in (b"", b"{", b"\xff\xfe", b"<html>502 Bad Gateway</html>"):
        with pytest.raises(ValueError):
            loads(raw)


def test_a_nan_in_a_replys_meta_is_stored_and_read_back(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "run") as store:
        store.plan_trials([])  # an empty plan: the events table alone is written here
        meta = {"cost": float("nan"), "latency_s": 0.25, "note": "ok \ud83d"}
        store.append_many(
            [Appended("t1", 1, [(0, {"kind": "reply", "text": "né"}, meta)], None, start=False)]
        )
        rows = list(store.events(final_only=False))  # read back through the store's loads
    assert rows[0].payload == {"kind": "reply", "text": "né"}
    back = rows[0].meta
    assert back is not None
    assert math.isnan(back["cost"]) and back["latency_s"] == 0.25
    assert back["note"] == "ok \ud83d"
