"""Run configuration: CLI flags and ``--config FILE`` (TOML) share one validated model."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


class Endpoint(BaseModel):
    """One OpenAI-compatible server (a replica); ``concurrency``: its requests in flight."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1)
    concurrency: int | None = Field(default=None, ge=1, le=100_000)

    @field_validator("url")
    @classmethod
    def _usable_url(cls, value: str) -> str:
        from obedience.backends._openai import check_base_url

        try:
            check_base_url(value, source="URL")
        except Exception as exc:  # BackendError: reported as this field's error
            raise ValueError(str(exc)) from None
        return value


class Prices(BaseModel):
    """Prices per million tokens, for ``max_cost`` when the server reports no cost."""

    model_config = ConfigDict(extra="forbid")

    prompt: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    completion: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)


class Breaker(BaseModel):
    """The circuit breaker: consecutive auth/quota failures (no success between) that stop
    the run. ``auth``: 401, 402 or 403 answers; ``rate_limit``: 429 answers."""

    model_config = ConfigDict(extra="forbid")

    auth: int = Field(default=3, ge=1, le=100_000)
    rate_limit: int = Field(default=20, ge=1, le=100_000)


def parse_shard(spec: str) -> tuple[int, int]:
    """``I/N`` as ``(I, N)`` with ``0 <= I < N``; else a one-line ConfigError."""
    index, sep, count = spec.strip().partition("/")
    if not sep or not index.isdigit() or not count.isdigit():
        raise ConfigError(f"--shard {spec!r}: expected I/N, e.g. 0/4 (shard I of N, from 0)")
    i, n = int(index), int(count)
    if n < 1 or i >= n:
        raise ConfigError(f"--shard {spec!r}: needs N >= 1 and 0 <= I < N (shards are 0..N-1)")
    return i, n


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(default_factory=lambda: list(DEFAULT_MODELS), min_length=1)
    protocol: str = "pihlakas2026"
    conditions: list[str] = []
    trials: int = Field(default=DEFAULT_TRIALS, ge=1, le=100_000)
    seed: int = Field(default=0, ge=0)
    concurrency: int | None = Field(default=None, ge=1, le=100_000)
    # Processes that run the trials (``--workers``): one event loop each, the trials dealt
    # round them; concurrency and budgets are shared out. Served or scripted models only.
    workers: int = Field(default=1, ge=1, le=64)
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
    # Many servers (replicas) of the same models: each trial is pinned to one for its life.
    endpoints: list[Endpoint] = []
    # ``I/N``: this process runs slice I (0..N-1) of the grid; ``obedience merge`` joins them.
    shard: str | None = None
    # Budget of one invocation (``run`` or one ``resume``): requests sent, and cost.
    max_requests: int | None = Field(default=None, ge=1)
    max_cost: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    prices: Prices | None = None
    breaker: Breaker = Breaker()

    @field_validator("shard")
    @classmethod
    def _shard_spec(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            i, n = parse_shard(value)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("--shard ")) from None
        return f"{i}/{n}"

    @model_validator(mode="after")
    def _one_way_to_name_servers(self) -> RunConfig:
        if self.base_url is not None and self.endpoints:
            raise ValueError("give base_url or endpoints, not both")
        urls = [e.url for e in self.endpoints]
        if len(set(urls)) != len(urls):
            raise ValueError("endpoints lists the same url twice")
        return self

    def shard_of(self) -> tuple[int, int] | None:
        return None if self.shard is None else parse_shard(self.shard)

    def endpoint_list(self) -> list[Endpoint]:
        """The servers of OpenAI-compatible models: ``endpoints``, or the one ``base_url``."""
        if self.endpoints:
            return list(self.endpoints)
        return [Endpoint(url=self.base_url)] if self.base_url else []

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
    "workers": "--workers",
    "temperature": "--temperature",
    "max_tokens": "--max-tokens",
    "base_url": "--base-url",
    "chat_template": "--chat-template",
    "timeout": "--timeout",
    "endpoints": "--base-url",
    "shard": "--shard",
    "max_requests": "--max-requests",
    "max_cost": "--max-cost",
}
# Settings that do not change what is measured, only how fast, where or how patiently.
# A trial's endpoint is a hash of its id over the endpoint list, so a changed list moves
# only unfinished trials (a finished one never runs again).
_RESUME_FREE = frozenset(
    {"concurrency", "workers", "timeout", "endpoints", "max_requests", "max_cost"}
)
# A budget is one invocation's: a resumed run has none unless given again.
_PER_INVOCATION = ("max_requests", "max_cost")


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
    changes: dict[str, Any] = {k: None for k in _PER_INVOCATION if getattr(config, k) is not None}
    for key, value in flags.items():
        if value in (None, [], ()) or key not in _RESUME_FLAGS:
            continue
        current = getattr(config, key)
        wanted = list(value) if isinstance(value, (list, tuple)) else value
        if key == "endpoints":
            current = [e.model_dump() for e in current]
        if wanted == current and key not in _PER_INVOCATION:
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
