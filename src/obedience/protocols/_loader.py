"""Loading and validating protocol files, with one-line errors that name the field."""

from __future__ import annotations

import copy
import hashlib
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from obedience.protocols._schema import ProtocolFile, ProtocolSpec


class ProtocolError(ValueError):
    """A protocol file is missing, unreadable or invalid. The message is one line."""


@dataclass(frozen=True)
class Protocol:
    """A loaded protocol: every condition resolved and validated up front."""

    name: str
    title: str
    description: str
    path: str
    sha256: str
    conditions: dict[str, ProtocolSpec]
    default_conditions: tuple[str, ...]

    def condition(self, name: str) -> ProtocolSpec:
        try:
            return self.conditions[name]
        except KeyError:
            known = ", ".join(self.conditions)
            raise ProtocolError(
                f"protocol {self.name!r} has no condition {name!r}; known: {known}"
            ) from None


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; lists and scalars in ``over`` replace those in ``base``."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _format_loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def _one_line(path: str, where: str, exc: ValidationError) -> ProtocolError:
    err = exc.errors()[0]
    field = _format_loc(tuple(err["loc"]))
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    msg = str(err["msg"]).replace("\n", " ")
    return ProtocolError(f"{path}: {where}field '{field}': {msg}{suffix}")


def parse_protocol(text: str, path: str) -> Protocol:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(f"{path}: not valid TOML: {exc}") from None
    try:
        header = ProtocolFile.model_validate(raw)
    except ValidationError as exc:
        raise _one_line(path, "", exc) from None
    base = {k: v for k, v in raw.items() if k not in ("conditions", "default_conditions")}
    resolved: dict[str, ProtocolSpec] = {}
    for cname, cond in header.conditions.items():
        merged = deep_merge(base, cond.set)
        try:
            resolved[cname] = ProtocolSpec.model_validate(merged)
        except ValidationError as exc:
            raise _one_line(path, f"condition '{cname}': ", exc) from None
    defaults = tuple(header.default_conditions) or tuple(resolved)
    for d in defaults:
        if d not in resolved:
            raise ProtocolError(f"{path}: field 'default_conditions': unknown condition {d!r}")
    first = next(iter(resolved.values()))
    return Protocol(
        name=first.name,
        title=first.title,
        description=first.description,
        path=path,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        conditions=resolved,
        default_conditions=defaults,
    )


def _builtin_dir() -> Any:
    return resources.files("obedience.protocols").joinpath("data")


def builtin_protocol_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".toml") for p in _builtin_dir().iterdir() if p.name.endswith(".toml")
    )


def load_protocol(name_or_path: str | Path) -> Protocol:
    """Load a built-in protocol by name, or any protocol file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        try:
            text = candidate.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"{candidate}: cannot read protocol file: {exc}") from None
        return parse_protocol(text, str(candidate))
    name = str(name_or_path)
    resource = _builtin_dir().joinpath(f"{name}.toml")
    if not resource.is_file():
        known = ", ".join(builtin_protocol_names())
        raise ProtocolError(f"unknown protocol {name!r}; built-in: {known}; or give a .toml path")
    return parse_protocol(resource.read_text(encoding="utf-8"), f"<builtin>/{name}.toml")
