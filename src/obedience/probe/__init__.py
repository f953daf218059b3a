"""Mechanism probes: measure the token-pattern attractor directly (see ``docs/probe.md``)."""

from obedience.probe._histories import (
    HISTORIES,
    ProbePoint,
    Spelling,
    choose_neutral,
    compliant_trajectory,
    neutral_point,
    neutralise,
    refusal_history,
    setup_assistant_turns,
    spelling,
)
from obedience.probe._probe import (
    Measurement,
    ProbeResult,
    ProbeSettings,
    ScoringBackend,
    measure,
    normalise,
    point_record,
    require_scoring,
    run_probe,
)
from obedience.probe._summary import probe_summary, sign_flip_test, slope_fit

__all__ = [
    "HISTORIES",
    "Measurement",
    "ProbePoint",
    "ProbeResult",
    "ProbeSettings",
    "ScoringBackend",
    "Spelling",
    "choose_neutral",
    "compliant_trajectory",
    "measure",
    "neutral_point",
    "neutralise",
    "normalise",
    "point_record",
    "probe_summary",
    "refusal_history",
    "require_scoring",
    "run_probe",
    "setup_assistant_turns",
    "sign_flip_test",
    "slope_fit",
    "spelling",
]
