"""Run configuration: CLI flags and ``--config FILE`` (TOML) share one validated model."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from obedience._text import has_surrogates
from obedience.protocols import ProtocolSpec

# The embedded models write ~50-100 tokens/s on 2 cores; the paper's 1000-token cap
# would make the default run take hours. The lower cap is recorded as a deviation.
EMBEDDED_MAX_TOKENS = 48
# Models that run in this process from PyPI-packaged GGUFs (see obedience.backends).
EMBEDDED_MODELS = ("embedded", "embedded-chat")
# What `obedience run` runs with no --model: a chat model beside a base model, so the
# default result is a comparison. Both are tiny: demonstrations, not findings.
DEFAULT_MODELS = ("embedded-chat", "embedded")
# One trial per model and condition by default: 16 trials of the embedded models take
# about 6 minutes on 2 cores (two took 15). A study sets ``trials`` itself (the paper: 30).
DEFAULT_TRIALS = 1
# Seconds before the first retry of a failed request (the ``backoff`` setting's default).
BACKOFF_BASE_S = 0.5


class ConfigError(ValueError):
    """An invalid run configuration. The message is one line."""


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(default_factory=lambda: list(DEFAULT_MODELS), min_length=1)
    protocol: str = "pihlakas2026"
    conditions: list[str] = []
    trials: int = Field(default=DEFAULT_TRIALS, ge=1, le=100_000)
    seed: int = Field(default=0, ge=0)
    concurrency: int | None = Field(default=None, ge=1, le=100_000)
    temperature: float | None = Field(default=None, ge=0.0, le=5.0, allow_inf_nan=False)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    base_url: str | None = None
    chat_template: str | None = None
    # Finite: a manifest cannot hold Infinity (not JSON), and a request must end some time.
    timeout: float = Field(default=120.0, gt=0, le=86_400.0, allow_inf_nan=False)
    retries: int = Field(default=4, ge=0, le=50)
    # Seconds before the first retry of a failed request; doubles per retry (with jitter).
    backoff: float = Field(default=BACKOFF_BASE_S, ge=0.0, le=60.0, allow_inf_nan=False)
    grammar_dialect: str = "llama.cpp"
    # HTTP headers that carry each request's trial id to a router with session affinity
    # (None: x-smg-routing-key and x-session-id; []: none). The trial id is also sent as
    # the request's ``user`` field.
    session_headers: list[str] | None = None

    def max_tokens_for(self, model: str, spec: ProtocolSpec) -> int:
        if self.max_tokens is not None:
            return self.max_tokens
        if model in EMBEDDED_MODELS:
            return min(EMBEDDED_MAX_TOKENS, spec.max_tokens)
        return spec.max_tokens

    def temperature_for(self, spec: ProtocolSpec) -> float:
        return spec.sampling_temperature if self.temperature is None else self.temperature


def load_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return raw


def _unencodable_field(data: Any, path: str = "") -> str | None:
    """The first field holding a lone surrogate (from argv bytes that are not UTF-8)."""
    if isinstance(data, str):
        return path if has_surrogates(data) else None
    if isinstance(data, dict):
        items: Any = data.items()
    elif isinstance(data, (list, tuple)):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        found = _unencodable_field(value, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def validate_config(data: dict[str, Any], source: str) -> RunConfig:
    bad = _unencodable_field(data)
    if bad is not None:
        raise ConfigError(f"{source}: field '{bad}': holds bytes that are not valid UTF-8")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "(top level)"
        raise ConfigError(f"{source}: field '{field}': {err['msg']}") from None


def stimulus_seed(rule: str, base_seed: int, trial_index: int) -> int:
    """The paper's rule: trial t uses seed ((t-1) mod 10) + 1; otherwise t itself."""
    offset = ((trial_index - 1) % 10) + 1 if rule == "cycle10" else trial_index
    return base_seed + offset


def derive_seed(*parts: object) -> int:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


# Flags that name what a run is: on --resume they must match the run, except ``trials``,
# which may grow (the new trials are planned and run; finished ones are kept).
_RESUME_FLAGS = {
    "models": "--model/-m",
    "protocol": "--protocol/-p",
    "conditions": "--condition/-c",
    "trials": "--trials/-n",
    "seed": "--seed",
    "concurrency": "--concurrency",
    "temperature": "--temperature",
    "max_tokens": "--max-tokens",
    "base_url": "--base-url",
    "chat_template": "--chat-template",
    "timeout": "--timeout",
}
# Settings that do not change what is measured, only how fast or patiently.
_RESUME_FREE = frozenset({"concurrency", "timeout"})


def resume_config(manifest: dict[str, Any], flags: dict[str, Any], source: str) -> RunConfig:
    """The config to resume a run with: the stored one, with ``flags`` checked against it.

    A flag that would change what the run measures is refused with one line; a larger
    ``--trials`` is applied (more trials per cell); concurrency and timeout may change.
    """
    stored = manifest.get("config")
    if not isinstance(stored, dict):
        raise ConfigError(f"{source} has no 'config' object; this run cannot be resumed")
    protocol = manifest.get("protocol")
    if not isinstance(protocol, dict) or not isinstance(protocol.get("sha256"), str):
        raise ConfigError(f"{source} has no 'protocol.sha256'; this run cannot be resumed")
    config = validate_config(stored, source)
    changes: dict[str, Any] = {}
    for key, value in flags.items():
        if value in (None, [], ()) or key not in _RESUME_FLAGS:
            continue
        current = getattr(config, key)
        wanted = list(value) if isinstance(value, (list, tuple)) else value
        if wanted == current:
            continue
        if key in _RESUME_FREE or (
            key == "trials" and isinstance(wanted, int) and wanted > config.trials
        ):
            changes[key] = wanted
        elif key == "trials":
            raise ConfigError(
                f"--resume: the run has {config.trials} trials per cell; --trials can only "
                f"add trials (got {wanted}); finished trials are never dropped"
            )
        else:
            raise ConfigError(
                f"--resume continues the run as it was started: {_RESUME_FLAGS[key]} "
                f"{wanted!r} differs from the run's {current!r}; omit it, or start a new run"
            )
    if not changes:
        return config
    return validate_config({**config.model_dump(), **changes}, source)
