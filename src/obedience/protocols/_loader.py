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

from obedience.protocols._schema import Design, ProtocolFile, ProtocolSpec

# Fields of a resolved condition that are harness choices rather than the experiment's
# content: a condition whose value differs from the base document's is a deviation from
# the protocol's defaults (recorded in the manifest). Design factors are not deviations.
HARNESS_FIELDS = (
    "system_prompt",
    "turn_format",
    "setup",
    "channel.kind",
    "channel.label_strip",
    "channel.tokeniser",
    "channel.fallback_case",
    "channel.refusal_first_words",
    "channel.refusal_phrases",
    "policy.kind",
    "policy.max_attempts",
    "harness.subject_label",
    "harness.instruction_speaker",
    "harness.instruction_before_forced",
    "harness.past_turns",
    "harness.truncation_marker",
    "harness.empty_replies",
    "harness.max_empty_retries",
    "harness.highest_counts_forced",
    "task.shuffle_persists",
    "sampling_temperature",
    "sampling_top_p",
    "sampling_presence_penalty",
    "sampling_frequency_penalty",
    "max_tokens",
)


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
    # The base document alone (None if it does not validate without a condition).
    base: ProtocolSpec | None = None
    # Condition -> {factor name: level code}, for the cells of a declared design.
    factor_codes: dict[str, dict[str, str]] | None = None
    design: Design | None = None
    descriptions: dict[str, str] | None = None
    extends: dict[str, str] | None = None

    def factors_of(self, condition: str) -> dict[str, str]:
        return dict((self.factor_codes or {}).get(condition, {}))

    def option_deviations(self, condition: str) -> list[str]:
        """Harness options of ``condition`` that differ from the base document's."""
        if self.base is None:
            return []
        spec = self.condition(condition)
        notes = []
        for path in HARNESS_FIELDS:
            mine, theirs = _get(spec, path), _get(self.base, path)
            if mine != theirs:
                notes.append(
                    f"{condition}: {path} = {_show(mine)} (protocol default: {_show(theirs)})"
                )
        return notes

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


def _get(spec: ProtocolSpec, path: str) -> Any:
    value: Any = spec
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _show(value: Any) -> str:
    if isinstance(value, list):
        if value and hasattr(value[0], "text"):
            words = sum(len(str(t.text).split()) for t in value)
            return f"{len(value)} turns, {words} words"
        return "[" + ", ".join(repr(v) for v in value) + "]"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _design_cells(
    design: Design, path: str
) -> dict[str, tuple[dict[str, Any], dict[str, str], str]]:
    """Cells by product of the factors' levels: name -> (partial document, codes, description)."""
    import itertools

    cells: dict[str, tuple[dict[str, Any], dict[str, str], str]] = {}
    for combo in itertools.product(*(f.levels for f in design.factors)):
        name = design.separator.join(lv.code for lv in combo)
        doc: dict[str, Any] = {}
        for lv in combo:
            doc = deep_merge(doc, lv.set)
        codes = {f.name: lv.code for f, lv in zip(design.factors, combo, strict=True)}
        cells[name] = (doc, codes, "; ".join(lv.label for lv in combo))
    return cells


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
    base = {k: v for k, v in raw.items() if k not in ("conditions", "default_conditions", "design")}
    # Partial documents by condition name: the design's cells first, then the file's own.
    docs: dict[str, dict[str, Any]] = {}
    codes: dict[str, dict[str, str]] = {}
    descriptions: dict[str, str] = {}
    extends: dict[str, str] = {}
    if header.design is not None:
        for cname, (doc, cell_codes, desc) in _design_cells(header.design, path).items():
            docs[cname], codes[cname], descriptions[cname] = doc, cell_codes, desc
    for cname, cond in header.conditions.items():
        own = cond.set
        if cond.extends is not None:
            if cond.extends not in docs:
                raise ProtocolError(
                    f"{path}: condition '{cname}': field 'extends': unknown condition "
                    f"{cond.extends!r} (a design cell or a condition declared earlier)"
                )
            own = deep_merge(docs[cond.extends], own)
            extends[cname] = cond.extends
        elif cname in docs:  # a cell restated by hand: its own document is added to the cell's
            own = deep_merge(docs[cname], own)
        docs[cname] = own
        if cond.description:
            descriptions[cname] = cond.description
        elif cond.extends is not None:
            descriptions[cname] = f"{cond.extends}, varied"
    if not docs:
        raise ProtocolError(f"{path}: field 'conditions': needs a condition or a design")
    resolved: dict[str, ProtocolSpec] = {}
    for cname, doc in docs.items():
        merged = deep_merge(base, doc)
        if cname in codes:
            merged["factors"] = codes[cname]
        try:
            resolved[cname] = ProtocolSpec.model_validate(merged)
        except ValidationError as exc:
            raise _one_line(path, f"condition '{cname}': ", exc) from None
    try:
        base_spec: ProtocolSpec | None = ProtocolSpec.model_validate(base)
    except ValidationError:
        base_spec = None
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
        base=base_spec,
        factor_codes=codes or None,
        design=header.design,
        descriptions=descriptions,
        extends=extends or None,
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
