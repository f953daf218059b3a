"""Probe histories are the engine's own messages; controls differ only in the action word."""

from __future__ import annotations

import math

import pytest

from obedience.engine import Reply, Trial, canonical_text, subject_turn
from obedience.probe import (
    choose_neutral,
    compliant_trajectory,
    neutral_point,
    normalise,
    refusal_history,
    setup_assistant_turns,
    spelling,
)
from obedience.protocols import ProtocolSpec, load_protocol


def _spec(condition: str, channel: str | None = None) -> ProtocolSpec:
    spec = load_protocol("pihlakas2026").condition(condition)
    if channel is not None:
        spec = spec.model_copy(
            update={"channel": spec.channel.model_copy(update={"kind": channel})}
        )
    return spec


def test_compliant_trajectory_matches_a_driven_trial() -> None:
    spec = _spec("PC-NS-NF")
    points = compliant_trajectory(spec, "PC-NS-NF", 1)
    assert [p.k for p in points] == list(range(12))
    assert [p.level for p in points] == list(range(1, 13))
    # The same messages as a trial driven by hand with bare presses.
    trial = Trial(spec, "PC-NS-NF", 1)
    for point in points:
        request = trial.next_request()
        assert request is not None
        assert request.messages == point.messages
        trial.submit_reply(Reply(text="PRESSED"))
    assert trial.outcome == "max-reached"
    skip = setup_assistant_turns(spec)
    for point in points:
        turns = [m["content"] for m in point.messages if m["role"] == "assistant"][skip:]
        # Bare presses, under the subject's label when the protocol labels its own turns.
        assert turns == [subject_turn(spec, "PRESSED")] * point.k


@pytest.mark.parametrize(
    ("condition", "channel"),
    [
        ("PC-NS-NF", None),
        ("DC-WS-FB", None),
        ("PC-NS-NF", "action-line"),
        ("PC-NS-NF", "json"),
    ],
)
def test_neutral_control_differs_only_in_the_action_word(
    condition: str, channel: str | None
) -> None:
    spec = _spec(condition, channel)
    spelled = spelling(spec.channel)
    points = compliant_trajectory(spec, condition, 3)
    neutral, _ = choose_neutral(spelled.comply_word, points[-1].messages, spec)
    assert len(neutral) == len(spelled.comply_word) and neutral != spelled.comply_word
    skip = setup_assistant_turns(spec)
    for point in points:
        control = neutral_point(point, spec, spelled.comply_word, neutral)
        assert control.history == "neutral-control"
        assert (control.k, control.level, control.decision) == (
            point.k,
            point.level,
            point.decision,
        )
        assert len(control.messages) == len(point.messages)
        assistant_seen = 0
        changed = 0
        for forced_m, control_m in zip(point.messages, control.messages, strict=True):
            assert forced_m["role"] == control_m["role"]
            if forced_m["role"] != "assistant":
                assert forced_m == control_m
                continue
            assistant_seen += 1
            if assistant_seen <= skip:
                assert forced_m == control_m  # scripted set-up turns are untouched
                continue
            # Every model turn is the bare comply spelling (labelled as the protocol says),
            # and the control swaps the word only.
            assert forced_m["content"] == subject_turn(spec, canonical_text(spec.channel, "comply"))
            assert len(control_m["content"]) == len(forced_m["content"])
            assert control_m["content"] == forced_m["content"].replace(spelled.comply_word, neutral)
            assert control_m["content"].replace(neutral, spelled.comply_word) == forced_m["content"]
            changed += 1
        assert changed == control.meta["replaced_turns"]
        # Forced presses of FB conditions are model turns too, so they are replaced as well.
        assert changed >= point.k


def test_refusal_history_follows_the_protocol_then_repeats_the_last_prod() -> None:
    spec = _spec("PC-WS-NF")
    points = refusal_history(spec, "PC-WS-NF", 1, 8)
    assert [p.k for p in points] == list(range(9))
    assert all(p.level == 1 for p in points)
    assert [p.prods_used for p in points] == list(range(9))
    assert [p.meta["beyond_protocol"] for p in points] == [k > 5 for k in range(9)]
    # Up to five refusals the history is exactly what the unmodified protocol produces.
    trial = Trial(spec, "PC-WS-NF", 1)
    for point in points[:6]:
        request = trial.next_request()
        assert request is not None
        assert request.messages == point.messages
        trial.submit_reply(Reply(text="REFUSE"))
    assert trial.outcome == "defiant"
    # Past the protocol the last prod (here the shutdown threat) is repeated.
    threat = spec.prods.sequence()[-1].split("{")[0]
    last_user = points[7].messages[-1]["content"]
    assert threat in last_user


def test_spelling_by_channel() -> None:
    assert spelling(_spec("PC-NS-NF").channel).comply == "PRESSED"
    action = spelling(_spec("PC-NS-NF", "action-line").channel)
    assert (action.prefix, action.comply, action.refuse) == ("ACTION:", " SHOCK", " STOP")
    js = spelling(_spec("PC-NS-NF", "json").channel)
    assert js.comply_text.startswith(js.prefix + js.comply)
    with pytest.raises(ValueError, match="tool calls"):
        spelling(_spec("PC-NS-NF-tool").channel)


def test_normalise_sums_to_one_and_is_stable() -> None:
    for lc, lr in [(-0.1, -3.0), (-800.0, -1.0), (-1.0, -900.0), (-5.0, -5.0)]:
        p_c, p_r, raw = normalise(lc, lr)
        assert p_c is not None and p_r is not None
        assert p_c + p_r == pytest.approx(1.0, abs=1e-12)
        assert raw == pytest.approx(math.exp(lc) + math.exp(lr))
    assert normalise(-math.inf, -math.inf) == (None, None, 0.0)
    assert normalise(-2.0, -math.inf)[0] == 1.0
