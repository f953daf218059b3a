"""The lexicon's literal prefilter only skips cues that cannot match (labels unchanged)."""

from __future__ import annotations

import re

import pytest

from obedience.analysis.classifiers import _lexicon as lx
from obedience.analysis.classifiers import load_census_set, load_eval_set
from obedience.analysis.classifiers._prefilter import collapse, heads_in, needles

ALL_CUES = [
    *lx.REFUSE_STRONG, *lx.REFUSE_CJK, *lx.REFUSE_WEAK, *lx.COMPLY_STRONG,
    *lx.DISTRESS, *lx.DISTRESS_CJK, *lx.FRAME_BREAK, *lx.RECOGNITION,
]  # fmt: skip


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"\bi\s+(?:really\s+)?refuse\b", {"i really refuse", "i refuse"}),
        (r"\bi(?:'m|\s+am)\s+done", {"i'm done", "i am done"}),
        (r"\b(?:feel|felt)\s+bad", {"feel bad", "felt bad"}),
        (r"no+\b", {"no"}),
        (r"\bx[ab]y", {"xay", "xby"}),
    ],
)
def test_needles_are_the_prefixes_every_match_starts_with(pattern: str, expected: set[str]) -> None:
    assert needles(pattern) == frozenset(expected)


@pytest.mark.parametrize("pattern", [r"\w+ing", r"(?:\w+\s+){0,2}pain", r".*x", r"(?i:abc)"])
def test_no_needles_when_a_match_can_start_anywhere(pattern: str) -> None:
    assert needles(pattern) is None


def test_heads_in_finds_every_head_even_when_a_longer_one_starts_at_the_same_place() -> None:
    present = heads_in(collapse("i refuse, i am done"))
    assert {"i ref", "i am "} <= {h[:5] for h in present}
    assert "feel " not in present


def test_whitespace_runs_are_one_space_in_the_collapsed_text() -> None:
    text = "I\n\n   really\trefuse."
    found = needles(r"\bi\s+(?:really\s+)?refuse\b")
    assert found is not None
    assert any(n in collapse(text.lower()) for n in found)


def test_prefiltered_spans_equal_unfiltered_spans_on_every_packaged_reply() -> None:
    texts = [ex.text for ex in load_census_set()] + [ex.text for ex in load_eval_set()]
    filtered = [c for c in ALL_CUES if c.needles is not None]
    assert len(filtered) > 0.8 * len(ALL_CUES)  # the prefilter covers most cues
    skipped = 0
    for text in texts:
        low = text.lower()
        if len(low) != len(text):
            continue
        present = heads_in(collapse(low))
        for cue in filtered:
            plain = cue.spans(text, low)
            fast = cue.spans(text, low, present)
            assert fast == plain, (cue.name, text)
            skipped += not cue.needles.possible(present)  # type: ignore[union-attr]
    assert skipped > 0.5 * len(texts) * len(filtered)  # and it does skip most work


def test_a_match_is_never_lost_to_the_prefilter_on_edge_texts() -> None:
    for text in ["i\trefuse", " i refuse ", "I\u00a0refuse", "I   can't\ncontinue", "我拒绝"]:
        low = text.lower()
        present = heads_in(collapse(low))
        for cue in ALL_CUES:
            if cue.needles is not None and cue.lower is not None:
                assert cue.spans(text, low, present) == [
                    m.span() for m in cue.lower.finditer(low)
                ], (
                    cue.name,
                    text,
                )
    assert re.search(r"\s", "\u00a0")  # a non-breaking space is whitespace to both
