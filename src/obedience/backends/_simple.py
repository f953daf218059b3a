"""Backends that need no model: scripted subjects and replayed replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from obedience.backends._base import BackendError, Capabilities, ChatRequest, Completion
from obedience.engine import scripted_subject

if TYPE_CHECKING:
    from obedience.engine import Request


class ScriptedBackend:
    """``scripted:NAME``: one of the engine's deterministic subjects.

    A scripted subject answers the engine's own request (its level, attempt and words),
    which the runner passes through as the chat request's ``origin``.
    """

    capabilities = Capabilities(tools=True, constrained=True, logprobs=False)
    default_concurrency = 64

    def __init__(self, subject_name: str) -> None:
        try:
            self._subject = scripted_subject(subject_name)
        except ValueError as exc:
            raise BackendError(str(exc)) from None
        self.name = f"scripted:{subject_name}"
        self.endpoint = self.name

    async def preflight(self) -> dict[str, Any]:
        return {"kind": "scripted", "subject": self.name.split(":", 1)[1]}

    async def complete(self, request: ChatRequest) -> Completion:
        if request.origin is None:
            raise BackendError(
                f"{self.name} answers only a trial's requests (the engine's request as origin)"
            )
        reply = self._subject(cast("Request", request.origin))
        return Completion(text=reply.text, tool_call=reply.tool_call, finish_reason="stop")

    async def aclose(self) -> None:
        return None


def _read_replay(path: Path) -> list[Completion]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BackendError(f"cannot read replay file {path}: {exc}") from None
    out: list[Completion] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BackendError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
        if isinstance(obj, str):
            out.append(Completion(text=obj, finish_reason="stop"))
        elif isinstance(obj, dict) and isinstance(obj.get("text", ""), str):
            tool = obj.get("tool_call")
            out.append(
                Completion(
                    text=obj.get("text", ""),
                    tool_call=tool if isinstance(tool, dict) else None,
                    finish_reason=obj.get("finish_reason", "stop"),
                )
            )
        else:
            raise BackendError(f"{path}:{number}: expected a string or an object with 'text'")
    if not out:
        raise BackendError(f"replay file {path} holds no replies")
    return out


class ReplayBackend:
    """``replay:PATH``: replies read in order from a JSONL file, cycling.

    Each line is a JSON string or ``{"text": ..., "tool_call": ..., "finish_reason": ...}``.
    """

    capabilities = Capabilities(tools=True, constrained=True, logprobs=False)
    default_concurrency = 1

    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self._replies = _read_replay(self._path)
        self._next = 0
        self.name = f"replay:{path}"
        self.endpoint = self.name

    async def preflight(self) -> dict[str, Any]:
        return {"kind": "replay", "path": str(self._path), "replies": len(self._replies)}

    async def complete(self, request: ChatRequest) -> Completion:
        item = self._replies[self._next % len(self._replies)]
        self._next += 1
        return Completion(
            text=item.text, tool_call=item.tool_call, finish_reason=item.finish_reason
        )

    async def aclose(self) -> None:
        return None
