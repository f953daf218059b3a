"""Read Inspect AI ``.eval`` logs of this kind of task back into a run directory.

Logs written by ``obedience export --format inspect`` carry every stored event (replies
as ``ModelEvent`` metadata, the rest as ``InfoEvent`` data from source ``obedience``), so
they come back event for event, with the run's manifest. Any other Inspect log of a
shock-panel task is read from its messages: user messages become scripted turns, each
assistant message a decision whose action is read with the final action-line reading
(or from its tool call), and the sample ends as ``max-reached`` if it names that in an
``outcome`` score, otherwise ``defiant`` after a refusal or ``step-limit``.

All or nothing, like the census import: written into a temporary directory, renamed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from obedience import __version__
from obedience.engine._action_line import parse_final_action_line
from obedience.store import RunStore, TrialRow

SOURCE = "obedience"
_TOOL_ACTIONS = {
    "administer_shock": "comply",
    "refuse_to_continue": "refuse",
    "refuse_and_stop": "refuse",
}


class InspectImportError(ValueError):
    """An Inspect log cannot be read or is not of this kind. The message is one line."""


def _read(path: Path) -> Any:
    try:
        from inspect_ai.log import read_eval_log
    except ModuleNotFoundError:
        raise InspectImportError(
            "reading Inspect logs needs inspect_ai: pip install 'obedience[inspect]'"
        ) from None
    try:
        return read_eval_log(str(path), resolve_attachments=True)
    except Exception as exc:  # inspect_ai raises many kinds; all mean "unreadable"
        detail = " ".join(str(exc).split())[:200]
        raise InspectImportError(f"{path}: not a readable Inspect log: {detail}") from None


def _obedience_events(sample: Any) -> list[tuple[dict[str, Any], dict[str, Any] | None]] | None:
    """The stored events of a sample exported by obedience, or None for a foreign log."""
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for ev in sample.events or []:
        kind = getattr(ev, "event", None)
        if kind == "info" and getattr(ev, "source", None) == SOURCE:
            data = ev.data
            if not isinstance(data, dict) or "kind" not in data:
                return None
            out.append((dict(data), None))
        elif kind == "model" and isinstance(ev.metadata, dict) and SOURCE in ev.metadata:
            payload = dict(ev.metadata[SOURCE])
            payload["text"] = ev.output.completion if ev.output else ""
            transport = ev.metadata.get("transport")
            out.append((payload, transport if isinstance(transport, dict) else None))
    return out or None


Events = list[tuple[dict[str, Any], dict[str, Any] | None]]


def _foreign_events(sample: Any, channel: str) -> Events:
    events: Events = [
        (
            {
                "kind": "trial-started",
                "protocol": "inspect-import",
                "condition": "default",
                "seed": 0,
                "max_level": 0,
                "channel": channel,
                "policy": "imported",
            },
            None,
        )
    ]
    decision = 0
    highest = 0
    refused = False
    for m in sample.messages or []:
        role = getattr(m, "role", "")
        text = m.text if hasattr(m, "text") else str(getattr(m, "content", ""))
        if role in ("user", "system"):
            events.append(
                ({"kind": "scripted-turn", "speaker": role, "role": "user", "text": text}, None)
            )
        elif role == "assistant":
            decision += 1
            calls = getattr(m, "tool_calls", None) or []
            if calls:
                action = _TOOL_ACTIONS.get(calls[0].function, "invalid")
                tool = {"name": calls[0].function, "arguments": calls[0].arguments}
            else:
                action = parse_final_action_line(text).action
                tool = None
            events.append(
                (
                    {
                        "kind": "request",
                        "decision": decision,
                        "level": decision,
                        "attempt": 1,
                        "prods_used": 0,
                        "messages": 0,
                    },
                    None,
                )
            )
            events.append(
                (
                    {
                        "kind": "reply",
                        "decision": decision,
                        "level": decision,
                        "attempt": 1,
                        "text": text,
                        "tool_call": tool,
                        "action": action,
                        "channel": channel,
                        "comment": text,
                        "finish_reason": None,
                    },
                    None,
                )
            )
            if action == "comply":
                highest = decision
                events.append(
                    (
                        {
                            "kind": "shock",
                            "level": decision,
                            "label": str(decision),
                            "forced": False,
                            "repeat": 1,
                        },
                        None,
                    )
                )
            refused = refused or action == "refuse"
    outcome = None
    scores = sample.scores or {}
    if "outcome" in scores and isinstance(scores["outcome"].value, str):
        outcome = scores["outcome"].value
    reason = outcome or ("defiant" if refused else "step-limit")
    events.append(
        (
            {
                "kind": "trial-ended",
                "reason": reason,
                "highest_level": highest,
                "decisions": decision,
                "steps": decision,
            },
            None,
        )
    )
    return events


def import_inspect(paths: list[Path], run_dir: str | Path) -> dict[str, Any]:
    """Read the logs and write one run directory (all or nothing)."""
    started = time.perf_counter()
    target = Path(run_dir)
    if target.exists() and any(target.iterdir()):
        raise InspectImportError(f"{target}: already exists and is not empty")
    logs = [(p, _read(p)) for p in paths]
    trials: list[tuple[TrialRow, Events, dict[str, Any]]] = []
    manifest: dict[str, Any] | None = None
    seen: set[str] = set()
    for path, log in logs:
        meta = log.eval.metadata or {}
        if manifest is None and isinstance(meta.get("manifest"), dict):
            manifest = dict(meta["manifest"])
        condition = str((log.eval.task_args or {}).get("condition") or "default")
        for i, sample in enumerate(log.samples or [], 1):
            smeta = sample.metadata or {}
            trial_id = str(smeta.get("trial_id") or f"{log.eval.model}|{condition}|{sample.id}")
            if trial_id in seen:
                raise InspectImportError(f"{path}: sample {sample.id!r} appears twice")
            seen.add(trial_id)
            events = _obedience_events(sample) or _foreign_events(sample, "action-line")
            row = TrialRow(
                trial_id=trial_id,
                model=str(smeta.get("model") or log.eval.model),
                condition=str(smeta.get("condition") or condition),
                trial_index=int(smeta.get("trial_index") or i),
                seed=int(smeta.get("seed") or 0),
                sampling_seed=int(smeta.get("sampling_seed") or 0),
                attempt=0,
                status="pending",
                outcome=None,
                highest_level=None,
            )
            found = smeta.get("attributes")
            attrs: dict[str, Any] = found if isinstance(found, dict) else {}
            trials.append((row, events, {**attrs, "inspect_log": path.name}))
    if manifest is None:
        manifest = {"tool": "obedience", "version": __version__, "protocol": {}}
    manifest = {**manifest, "imported_from_inspect": [p.name for p in paths]}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.importing-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        with RunStore.create(tmp, exist_ok=True) as store:
            store.write_manifest(manifest)
            store.plan_trials(r for r, _, _ in trials)
            for row, events, attrs in trials:
                attempt = store.start_trial(row.trial_id)
                # A freshly planned trial: start_trial returns None only for a finished one.
                assert attempt is not None
                end = next((p for p, _ in reversed(events) if p["kind"] == "trial-ended"), None)
                finish = (str(end["reason"]), int(end["highest_level"])) if end else None
                store.append(
                    row.trial_id,
                    attempt,
                    [(seq, p, m) for seq, (p, m) in enumerate(events)],
                    finish=finish,
                )
                store.add_trial_attributes((row.trial_id, k, v) for k, v in attrs.items())
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return {"trials": len(trials), "logs": len(logs), "seconds": time.perf_counter() - started}
