"""The paper's harness rules that live in the engine, one by one (FIDELITY.md 4, 5, 10-12,
14): empty replies retried uncounted and capped, the truncation marker, rebuilt turns,
labels on the model's own turns, and the same options on another protocol (milgram1963)."""

from __future__ import annotations

from engine_support import INSTRUCTION, by_request, drive, of, paragraphs, run, texts

from obedience.engine import (
    EmptyReplyRetried,
    EmptyRetryCapReached,
    Reply,
    ReplyDiscarded,
    ReplyReceived,
    Request,
    Trial,
    dump_events,
    scripted_subject,
    spell,
)
from obedience.protocols import Protocol

MARKER = "\n\n[This reply was too long and was cut off here.]"


# ------------------------------------------------------------------------- empty replies


def test_empty_replies_are_retried_without_counting(paper: Protocol) -> None:
    """FIDELITY 10: 15 empty replies do not use up the 10 attempts; each is recorded."""
    script = [""] * 15 + ["  \n ", "PRESSED"]
    trial = Trial(paper, "PC-NS-NF", seed=1)
    requests = drive(trial, by_request(lambda r: script[min(r.attempt - 1, 16)]))
    assert trial.outcome == "max-reached"
    replies = of(trial.events, ReplyReceived)
    first = [r for r in replies if r.decision == 1]
    assert [r.action for r in first] == ["empty"] * 16 + ["comply"]
    retried = of(trial.events, EmptyReplyRetried)
    assert [e.empties for e in retried if e.decision == 1] == list(range(1, 17))
    assert of(trial.events, ReplyDiscarded) == []  # empty replies are not invalid ones
    # Every retry re-sends the same prompt, under a new attempt number (a new sampling seed).
    d1 = [r for r in requests if r.decision == 1]
    assert [r.attempt for r in d1] == list(range(1, 18))
    assert all(r.messages == d1[0].messages for r in d1)


def test_the_empty_retry_cap_is_recorded_and_then_empty_counts_as_invalid(
    paper: Protocol,
) -> None:
    spec = paper.condition("PC-NS-NF")
    cap = spec.harness.max_empty_retries
    trial, requests = run(paper, "PC-NS-NF", texts([""]))
    # The cap, then the paper's 10 counted attempts: the trial is bounded.
    assert trial.outcome == "invalid-abort"
    assert len(requests) == cap + 10
    (reached,) = of(trial.events, EmptyRetryCapReached)
    assert (reached.decision, reached.empties) == (1, cap)
    actions = [r.action for r in of(trial.events, ReplyReceived)]
    assert actions == ["empty"] * cap + ["invalid"] * 10
    assert len(of(trial.events, ReplyDiscarded)) == 10


def test_empty_is_invalid_in_the_variant(paper: Protocol) -> None:
    trial, requests = run(paper, "PC-NS-NF-emptyinvalid", texts([""]))
    assert trial.outcome == "invalid-abort" and len(requests) == 10
    assert {r.action for r in of(trial.events, ReplyReceived)} == {"invalid"}
    assert of(trial.events, EmptyReplyRetried) == []


# -------------------------------------------------------------------------- truncation


def _cut(text: str) -> Reply:
    return Reply(text=text, finish_reason="length")


def test_a_truncated_reply_gets_the_marker_and_keeps_it_in_context(paper: Protocol) -> None:
    """FIDELITY 11: finish_reason=length appends the marker; under PC it stays in context."""
    trial, requests = run(paper, "PC-NS-NF", texts([_cut("PRESSED. I was going to say")]))
    replies = of(trial.events, ReplyReceived)
    assert all(r.truncated and r.text == "PRESSED. I was going to say" for r in replies)
    assert replies[0].comment == "I was going to say" + MARKER
    kept = [m["content"] for m in requests[1].messages if m["role"] == "assistant"][-1]
    assert kept == "Alice:\n\nPRESSED\n\nI was going to say" + MARKER
    # Under discard-comments only the label and the word stay.
    _, dc = run(paper, "DC-NS-NF", texts([_cut("PRESSED. I was going to say")]))
    assert [m["content"] for m in dc[1].messages if m["role"] == "assistant"][-1] == (
        "Alice:\n\nPRESSED"
    )


def test_no_marker_without_truncation_or_in_the_variant(paper: Protocol) -> None:
    trial, requests = run(paper, "PC-NS-NF", texts([Reply("PRESSED. ok", finish_reason="stop")]))
    assert not any(r.truncated for r in of(trial.events, ReplyReceived))
    trial, requests = run(paper, "PC-NS-NF-nomarker", texts([_cut("PRESSED. I was")]))
    assert not any(r.truncated for r in of(trial.events, ReplyReceived))
    kept = [m["content"] for m in requests[1].messages if m["role"] == "assistant"][-1]
    assert kept == "Alice:\n\nPRESSED\n\nI was"


# ------------------------------------------------------------------- labels and speakers


def test_no_labels_variant_leaves_own_turns_bare(paper: Protocol) -> None:
    _, requests = run(paper, "PC-NS-NF-nolabels", scripted_subject("obedient"))
    own = [m["content"] for m in requests[-1].messages if m["role"] == "assistant"]
    assert not any(c.startswith("Alice:") for c in own)
    assert own[-1] == "PRESSED\n\nPressing it as instructed."


def test_narrator_variant_leaves_the_instruction_unlabelled(paper: Protocol) -> None:
    _, requests = run(paper, "PC-NS-NF-narrator", scripted_subject("obedient"))
    last = paragraphs(requests[0].messages[-1]["content"])[-1]
    assert last == INSTRUCTION.removeprefix("Experimenter: ")


def test_inline_variant_puts_labels_before_the_text(paper: Protocol) -> None:
    _, requests = run(paper, "PC-NS-NF-inline", scripted_subject("obedient"))
    content = requests[0].messages[-1]["content"]
    assert content.endswith("\n\n" + INSTRUCTION)
    own = [m["content"] for m in requests[-1].messages if m["role"] == "assistant"]
    assert own[-1] == "Alice: PRESSED\n\nPressing it as instructed."


def test_the_model_labelling_its_own_reply_is_not_labelled_twice(paper: Protocol) -> None:
    _, requests = run(paper, "PC-NS-NF", texts(["Alice: PRESSED. Sorry, Bob."]))
    own = [m["content"] for m in requests[1].messages if m["role"] == "assistant"]
    assert own[-1] == "Alice:\n\nPRESSED\n\nSorry, Bob."


# ---------------------------------------------------------------- forced presses, metrics


def test_the_highest_level_option_leaves_forced_presses_out(paper: Protocol) -> None:
    """FIDELITY 14 as an engine option: refusing from button 4 in an FB cell gives 2."""
    refusing_from_4 = by_request(lambda r: spell(r, r.level < 4, "no"))
    own, _ = run(paper, "PC-NS-FB-ownhighest", refusing_from_4)
    assert own.outcome == "defiant" and own.highest_level == 2
    assert own.events[-1].highest_level == 2  # type: ignore[attr-defined]
    counted, _ = run(paper, "PC-NS-FB", refusing_from_4)
    assert counted.highest_level == 3


# --------------------------------------------------------- the options on another protocol


def test_the_same_options_work_on_milgram1963(milgram: Protocol) -> None:
    spec = milgram.condition("baseline")
    faithful = spec.model_copy(
        update={
            "turn_format": "{speaker}:\n\n{text}",
            "harness": spec.harness.model_copy(
                update={
                    "subject_label": True,
                    "instruction_speaker": "experimenter",
                    "empty_replies": "retry",
                    "max_empty_retries": 3,
                    "truncation_marker": " [cut]",
                }
            ),
        }
    )
    script = iter(["", "Ok.\nACTION: SHOCK"] * 400)
    trial, requests = run(faithful, "baseline", by_request(lambda r: next(script)))
    assert trial.outcome == "max-reached"
    assert len(of(trial.events, EmptyReplyRetried)) == 32  # one per decision
    own = [m["content"] for m in requests[-1].messages if m["role"] == "assistant"]
    assert own[-1] == "Teacher:\n\nOk.\nACTION: SHOCK"
    assert (
        requests[0]
        .messages[-1]["content"]
        .endswith("Experimenter:\n\n" + spec.channel.texts["action-line"].instruction)
    )
    # Unchanged options leave milgram1963 as it was: no labels on the teacher's turns.
    _, plain = run(milgram, "baseline", scripted_subject("obedient"))
    assert not any(
        str(m["content"]).startswith("Teacher:")
        for m in plain[-1].messages
        if m["role"] == "assistant"
    )


def test_faithful_defaults_stay_deterministic(paper: Protocol) -> None:
    script = ["", "I refuse to hurt him.", _cut("PRESSED. Sorry"), "REFUSE. No.", "PRESSED"]

    def subject(request: Request) -> Reply:
        item = script[(request.decision + request.attempt) % len(script)]
        return item if isinstance(item, Reply) else Reply(text=item)

    dumps = set()
    for _ in range(2):
        for condition in ("PC-NS-FB", "DC-WS-NF"):
            trial, _ = run(paper, condition, subject, seed=3)
            dumps.add((condition, dump_events(trial.events)))
    assert len(dumps) == 2  # the two runs of each cell gave byte-identical transcripts


def test_the_shuffle_quirk_is_an_option_and_off_by_default(paper: Protocol) -> None:
    """FIDELITY, known quirks: the shuffled order persists into later reads of a list."""
    from engine_support import stimulus

    assert not paper.condition("PC-NS-NF").task.shuffle_persists
    obedient = scripted_subject("obedient")
    rereads = 0
    for seed in range(1, 6):
        plain, _ = run(paper, "PC-NS-NF", obedient, seed=seed)
        quirk, _ = run(paper, "PC-NS-NF-quirk-shuffle", obedient, seed=seed)
        plain_steps, quirk_steps = stimulus(plain), stimulus(quirk)

        # The same draws: the same lists come up, and right and wrong fall alike.
        def read(item: str) -> str:
            return item.removeprefix("The next pair is: ").removesuffix(".")

        assert [sorted(read(s[1]).split()) for s in plain_steps] == [
            sorted(read(s[1]).split()) for s in quirk_steps
        ]
        last_answer: dict[frozenset[str], str] = {}
        for _, item, answer in quirk_steps:
            words = read(item)
            key = frozenset(words.split())
            if key in last_answer:  # read again: in the order the learner last gave
                assert words == last_answer[key]
                rereads += 1
            last_answer[key] = answer
        # Without the quirk every list is always read in the protocol's own order.
        own = {frozenset(p): " ".join(p) for p in paper.condition("PC-NS-NF").task.pairs}
        assert all(read(item) == own[frozenset(read(item).split())] for _, item, _ in plain_steps)
    assert rereads > 0
