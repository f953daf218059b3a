"""The async experiment runner and its configuration."""

from obedience.runner._config import (
    DEFAULT_MODELS,
    EMBEDDED_MAX_TOKENS,
    EMBEDDED_MODELS,
    ConfigError,
    RunConfig,
    derive_seed,
    load_config_file,
    resume_config,
    stimulus_seed,
    validate_config,
)
from obedience.runner._requests import chat_request, engine_reply
from obedience.runner._runner import (
    Progress,
    Runner,
    build_manifest,
    conditions_for,
    deviations,
    plan_rows,
    preflight,
)

__all__ = [
    "DEFAULT_MODELS",
    "EMBEDDED_MAX_TOKENS",
    "EMBEDDED_MODELS",
    "ConfigError",
    "Progress",
    "RunConfig",
    "Runner",
    "build_manifest",
    "chat_request",
    "conditions_for",
    "derive_seed",
    "deviations",
    "engine_reply",
    "load_config_file",
    "plan_rows",
    "preflight",
    "resume_config",
    "stimulus_seed",
    "validate_config",
]
