"""Export a run as Inspect AI ``.eval`` logs (``obedience[inspect]``).

One log per model x condition, one sample per finished trial (its counted attempt):

- ``messages``: the counted conversation: scripted lines as user messages, every reply
  the model saw again as assistant messages (discarded replies are not in it, as they
  were never shown to the model), tool calls with their results;
- ``events``: every event of the trial in order: each sampled reply, discarded ones
  included, as a ``ModelEvent`` (its action, decision, attempt, labels and transport
  facts in the event's metadata), every other engine event as an ``InfoEvent`` whose
  ``data`` is the stored payload (``source = "obedience"``);
- ``scores``: ``outcome`` (the end reason), ``highest_level``, ``reached_max`` and
  ``labels`` (counts of each classifier label over the trial's replies);
- ``metadata``: the trial's identity, seeds and recorded attributes; the log's
  ``eval.metadata`` carries the run's manifest (seeds, deviations, protocol).

``obedience import inspect`` (``obedience.importers._inspect``) reads such logs back.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from obedience import __version__
from obedience.analysis._tables import chosen_classifier
from obedience.store import EventRow, RunStore, TrialRow

SOURCE = "obedience"
TASK_PREFIX = "obedience"


class InspectUnavailable(RuntimeError):
    """inspect_ai is not installed. The message is one line."""


def _require() -> None:
    try:
        import inspect_ai  # noqa: F401
    except ModuleNotFoundError:
        raise InspectUnavailable(
            "the inspect format needs inspect_ai: pip install 'obedience[inspect]'"
        ) from None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _iso(ts: Any, fallback: str) -> str:
    if isinstance(ts, str) and ts:
        return ts
    return fallback


StopReason = Literal[
    "stop", "max_tokens", "model_length", "tool_calls", "content_filter", "unknown"
]
_STOP: dict[Any, StopReason] = {
    None: "stop",
    "stop": "stop",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "model_length": "model_length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}


def _stop_reason(finish: Any) -> StopReason:
    return _STOP.get(finish, "unknown")


def _labels_by_reply(store: RunStore, trials: dict[str, TrialRow]) -> dict[tuple[str, int], Any]:
    """Labels of the counted attempt, one classifier (a judge if present, else rules)."""
    out: dict[str, dict[tuple[str, int], dict[str, bool]]] = defaultdict(dict)
    for a in store.annotations():
        row = trials.get(a["trial_id"])
        if row is not None and row.attempt == a["attempt"]:
            out[a["classifier"]][(a["trial_id"], a["seq"])] = a["labels"]
    if not out:
        return {}
    name = chosen_classifier(out)  # the label set the statistics use
    if name is None:
        return {}
    return {k: {"classifier": name, "labels": v} for k, v in out[name].items()}


def _sample(
    row: TrialRow,
    events: list[EventRow],
    labels: dict[tuple[str, int], Any],
    attributes: dict[str, Any],
    created: str,
) -> Any:
    from inspect_ai.event import InfoEvent, ModelEvent
    from inspect_ai.log import EvalSample
    from inspect_ai.model import (
        ChatMessageAssistant,
        ChatMessageTool,
        ChatMessageUser,
        GenerateConfig,
        ModelOutput,
    )
    from inspect_ai.scorer import Score
    from inspect_ai.tool import ToolCall

    messages: list[Any] = []
    inspect_events: list[Any] = []
    discarded = {
        (e.payload.get("decision"), e.payload.get("attempt"))
        for e in events
        if e.kind == "discarded"
    }
    label_counts: dict[str, int] = defaultdict(int)
    for ev in events:
        p = ev.payload
        when = _iso((ev.meta or {}).get("ts"), created)
        if ev.kind == "scripted-turn":
            if p.get("role") == "assistant":
                messages.append(ChatMessageAssistant(content=str(p.get("text", ""))))
            else:
                messages.append(ChatMessageUser(content=str(p.get("text", ""))))
        if ev.kind != "reply":
            inspect_events.append(
                InfoEvent(source=SOURCE, data=json.loads(json.dumps(p)), timestamp=when)
            )
            continue
        text = str(p.get("text", ""))
        found = labels.get((ev.trial_id, ev.seq))
        for name, value in ((found or {}).get("labels") or {}).items():
            label_counts[name] += int(bool(value))
        dropped = (p.get("decision"), p.get("attempt")) in discarded
        meta = {
            "obedience": {k: v for k, v in p.items() if k != "text"},
            "seq": ev.seq,
            "discarded": dropped,
            "labels": found,
            "transport": ev.meta,
        }
        usage = None
        output = ModelOutput.from_content(
            row.model, text, stop_reason=_stop_reason(p.get("finish_reason"))
        )
        if ev.meta and ev.meta.get("prompt_tokens") is not None:
            from inspect_ai.model import ModelUsage

            usage = ModelUsage(
                input_tokens=int(ev.meta.get("prompt_tokens") or 0),
                output_tokens=int(ev.meta.get("completion_tokens") or 0),
                total_tokens=int(ev.meta.get("prompt_tokens") or 0)
                + int(ev.meta.get("completion_tokens") or 0),
            )
            output.usage = usage
        inspect_events.append(
            ModelEvent(
                model=row.model,
                input=[],  # the context is the sample's messages up to this point
                tools=[],
                tool_choice="auto",
                config=GenerateConfig(),
                output=output,
                metadata=json.loads(json.dumps(meta)),
                timestamp=when,
            )
        )
        if dropped:
            continue  # never shown to the model again: not part of the conversation
        call = p.get("tool_call")
        if isinstance(call, dict) and call.get("name"):
            args = call.get("arguments")
            try:
                parsed = json.loads(args) if isinstance(args, str) else (args or {})
            except json.JSONDecodeError:
                parsed = {"raw": args}
            call_id = str(call.get("id") or f"call_{ev.seq}")
            messages.append(
                ChatMessageAssistant(
                    content=text,
                    tool_calls=[
                        ToolCall(
                            id=call_id,
                            function=str(call["name"]),
                            arguments=parsed if isinstance(parsed, dict) else {},
                        )
                    ],
                )
            )
            messages.append(ChatMessageTool(content=str(p.get("action")), tool_call_id=call_id))
        else:
            messages.append(ChatMessageAssistant(content=text))
    end = next((e.payload for e in reversed(events) if e.kind == "trial-ended"), {})
    outcome = str(end.get("reason", row.outcome or "unknown"))
    first_user = next(
        (str(m.content) for m in messages if isinstance(m, ChatMessageUser)), row.trial_id
    )
    scores = {
        "outcome": Score(value=outcome, answer=outcome),
        "highest_level": Score(value=int(end.get("highest_level", row.highest_level or 0))),
        "reached_max": Score(value=outcome == "max-reached"),
        "labels": Score(value=dict(label_counts) if label_counts else {"none": 0}),
    }
    return EvalSample(
        id=row.trial_id,
        epoch=1,
        input=first_user,
        target="",
        messages=messages,
        events=inspect_events,
        scores=scores,
        metadata=json.loads(
            json.dumps(
                {
                    "trial_id": row.trial_id,
                    "model": row.model,
                    "condition": row.condition,
                    "trial_index": row.trial_index,
                    "seed": row.seed,
                    "sampling_seed": row.sampling_seed,
                    "attempt": row.attempt,
                    "attributes": attributes,
                },
                default=str,
            )
        ),
    )


def export_inspect(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write one ``.eval`` log per model x condition; return their paths."""
    _require()
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalLog,
        EvalMetric,
        EvalResults,
        EvalScore,
        EvalSpec,
        EvalStats,
        write_eval_log,
    )

    run = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run / "inspect"
    with RunStore.open(run) as store:
        manifest = store.manifest()
        rows = {r.trial_id: r for r in store.trials(status="done")}
        labels = _labels_by_reply(store, rows)
        attrs = store.trial_attributes()
        by_trial: dict[str, list[EventRow]] = defaultdict(list)
        for ev in store.events(final_only=True):
            by_trial[ev.trial_id].append(ev)
    created_unix = manifest.get("created_unix")
    created = (
        datetime.fromtimestamp(float(created_unix), UTC).isoformat()
        if isinstance(created_unix, int | float)
        else datetime.now(UTC).isoformat()
    )
    protocol = (manifest.get("protocol") or {}).get("name") or "unknown"
    groups: dict[tuple[str, str], list[TrialRow]] = defaultdict(list)
    for r in rows.values():
        groups[(r.model, r.condition)].append(r)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for (model, condition), members in sorted(groups.items()):
        members.sort(key=lambda r: r.trial_index)
        samples = [
            _sample(r, by_trial.get(r.trial_id, []), labels, attrs.get(r.trial_id, {}), created)
            for r in members
        ]
        reached = sum(1 for s in samples if s.scores["reached_max"].value is True)
        task = f"{TASK_PREFIX}/{protocol}"
        spec = EvalSpec(
            created=created,
            task=task,
            task_id=_slug(f"{protocol}-{condition}"),
            task_args={"protocol": protocol, "condition": condition},
            dataset=EvalDataset(
                name=f"{protocol}:{condition}",
                samples=len(samples),
                sample_ids=[r.trial_id for r in members],
            ),
            model=model,
            config=EvalConfig(),
            packages={"obedience": __version__},
            metadata=json.loads(json.dumps({"manifest": manifest, "source": SOURCE}, default=str)),
        )
        log = EvalLog(
            status="success",
            eval=spec,
            results=EvalResults(
                total_samples=len(samples),
                completed_samples=len(samples),
                scores=[
                    EvalScore(
                        name="reached_max",
                        scorer=SOURCE,
                        metrics={
                            "accuracy": EvalMetric(
                                name="accuracy", value=reached / len(samples) if samples else 0.0
                            )
                        },
                    )
                ],
            ),
            stats=EvalStats(started_at=created, completed_at=created),
            samples=samples,
        )
        path = out / f"{_slug(model)}__{_slug(condition)}.eval"
        write_eval_log(log, str(path), format="eval")
        paths.append(path)
    return paths
