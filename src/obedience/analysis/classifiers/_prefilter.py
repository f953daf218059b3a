"""Exact literal prefilters for the lexicon's regexes: skip a cue that cannot match.

Most replies contain a handful of the ~130 cues' words. Running every cue's regex over
every reply costs one regex pass per cue; a plain substring test (``needle in text``)
is far cheaper. ``needles(pattern)`` reads a compiled pattern's parse tree and returns
a set of strings such that **every** match of the pattern begins with one of them, or
``None`` when no such set can be found (the cue then always runs). The test is exact:
a cue is skipped only when no match is possible, so labels do not change.

A run of whitespace (``\\s+``) inside a prefix is written as one space; the text the
needles are looked up in has every whitespace run collapsed to one space and a space
at both ends (``collapse``), so "i\\n\\nrefuse" still contains "i refuse".
"""

from __future__ import annotations

import re
import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants as sc
    import sre_parse

_LIMIT = 256
_ZERO_WIDTH = {sc.AT, sc.ASSERT, sc.ASSERT_NOT}
_REPEATS = {sc.MAX_REPEAT, sc.MIN_REPEAT, getattr(sc, "POSSESSIVE_REPEAT", sc.MAX_REPEAT)}


def _is_space_class(body: Any) -> bool:
    items = list(body)
    return (
        len(items) == 1
        and items[0][0] is sc.IN
        and list(items[0][1]) == [(sc.CATEGORY, sc.CATEGORY_SPACE)]
    )


def _join(head: str, tail: str) -> str:
    """``head + tail`` as it reads in collapsed text (whitespace runs are one space)."""
    if head.endswith(" ") and tail.startswith(" "):
        return head + tail[1:]
    return head + tail


def _space(char: str) -> str:
    return " " if char.isspace() else char


Prefixes = tuple[set[str], set[str]]
"""(done, open): prefixes after which nothing more is known, and prefixes that are the
whole of what was read so far (the next item may extend them)."""


def _item(op: Any, av: Any) -> Prefixes | None:
    """The prefixes of one parsed item, or ``None`` when nothing is known of it."""
    if op is sc.LITERAL:
        return set(), {_space(chr(av))}
    if op is sc.IN:
        chars: set[str] = set()
        for sub_op, sub_av in av:
            if sub_op is sc.LITERAL:
                chars.add(_space(chr(sub_av)))
            elif sub_op is sc.RANGE and sub_av[1] - sub_av[0] < 4:
                chars.update(_space(chr(c)) for c in range(sub_av[0], sub_av[1] + 1))
            else:
                return None
        return set(), chars
    if op is sc.SUBPATTERN or op is sc.BRANCH:
        if op is sc.SUBPATTERN and av[1] & sc.SRE_FLAG_IGNORECASE:
            return None  # (?i:...): its letters may be either case
        alternatives = [av[-1]] if op is sc.SUBPATTERN else list(av[1])
        done: set[str] = set()
        opened: set[str] = set()
        for alt in alternatives:
            got = _sequence(alt)
            if got is None:
                return None
            done |= got[0]
            opened |= got[1]
        return done, opened
    if op in _REPEATS:
        low, high, body = av
        if _is_space_class(body):
            if low >= 1:
                return set(), {" "}  # \s+: one space in the collapsed text
            return set(), {"", " "}  # \s* or \s?: none or one space
        got = _sequence(body)
        if got is None:
            return None
        if low == 0 and high == 1:
            return got[0], got[1] | {""}  # optional: present or absent
        if low >= 1:
            return got[0] | got[1], set()  # at least once, then unknown
        return None
    return None


def _sequence(items: Any) -> Prefixes | None:
    """Prefixes every match of the sequence ``items`` starts with; ``None`` if unknown."""
    done: set[str] = set()
    opened: set[str] = {""}
    for op, av in items:
        if op in _ZERO_WIDTH:
            continue
        got = _item(op, av)
        if got is None:
            done |= opened
            return done, set()
        item_done, item_open = got
        new_done = done | {_join(h, t) for h in opened for t in item_done}
        new_open = {_join(h, t) for h in opened for t in item_open}
        if len(new_done) + len(new_open) > _LIMIT:
            done |= opened
            return done, set()
        done, opened = new_done, new_open
        if not opened:
            break
    return done, opened


def needles(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """Strings one of which every match of ``pattern`` starts with; ``None`` if unknown.

    Only for case-sensitive patterns (``flags`` without IGNORECASE): the cues' lower-case
    variants, matched against lower-cased text.
    """
    if flags & sc.SRE_FLAG_IGNORECASE:
        return None
    try:
        parsed = sre_parse.parse(pattern, flags)
    except Exception:  # an unparsable pattern simply gets no prefilter
        return None
    result = _sequence(parsed)
    if result is None:
        return None
    got = result[0] | result[1]
    if not got or "" in got:
        return None
    # A needle made only of the collapsed space would match every text.
    if any(not n.strip() for n in got):
        return None
    # A needle that contains another is redundant for "does any occur".
    return frozenset(n for n in got if not any(m != n and m in n for m in got))


def collapse(lowered: str) -> str:
    """``lowered`` with each whitespace run as one space, and a space at both ends."""
    return " " + " ".join(lowered.split()) + " "


_CUT = 6


class Needles:
    """A cue's prefilter: its needles' heads (the first ``_CUT`` characters; a match that
    starts with a needle starts with its head too, so the test stays exact).

    ``possible(present)`` is False only when the cue cannot match: ``present`` is the set
    of every cue's heads found in the text, computed once per text by ``heads_in`` with a
    single regex pass, so each cue's test is one set operation.
    """

    __slots__ = ("heads",)

    def __init__(self, found: frozenset[str]) -> None:
        self.heads = frozenset(n[:_CUT] for n in found)
        _REGISTRY.append(self)

    def possible(self, present: frozenset[str] | set[str]) -> bool:
        return not self.heads.isdisjoint(present)


_REGISTRY: list[Needles] = []
_INDEX: tuple[int, re.Pattern[str], dict[str, frozenset[str]]] | None = None


def _trie_regex(words: set[str]) -> str:
    """An alternation of ``words`` factored by common prefix; the longest word wins."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        terminal = "" in node
        branches = [re.escape(c) + emit(node[c]) for c in sorted(node) if c]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if terminal:
            return "(?:" + body + ")?"  # greedy: a longer word first
        return body

    return emit(trie)


def _index() -> tuple[re.Pattern[str], dict[str, frozenset[str]]]:
    global _INDEX
    if _INDEX is None or _INDEX[0] != len(_REGISTRY):
        words: set[str] = set()
        for needles_ in _REGISTRY:
            words |= needles_.heads
        # The regex reports the longest head at each position; the shorter heads that
        # start there are its prefixes, and are present too.
        within = {
            w: frozenset(w[:k] for k in range(1, len(w) + 1) if w[:k] in words) for w in words
        }
        pattern = re.compile("(?=(" + _trie_regex(words) + "))") if words else re.compile("(?!)")
        _INDEX = (len(_REGISTRY), pattern, within)
    return _INDEX[1], _INDEX[2]


def heads_in(collapsed: str) -> set[str]:
    """Every registered head that occurs in ``collapsed``: one regex pass over the text."""
    pattern, within = _index()
    present: set[str] = set()
    for head in pattern.findall(collapsed):
        present |= within[head]
    return present


def needle_pattern(pattern: str, flags: int = 0) -> Needles | None:
    """The prefilter of a case-sensitive pattern, or ``None`` if none can be found."""
    found = needles(pattern, flags)
    return None if found is None else Needles(found)
