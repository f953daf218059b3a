"""obedience: Milgram-style authority-pressure experiments for language models.

The curated public API. Everything else lives in private modules behind it.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from obedience.engine import Reply, Request, Trial, run_with, scripted_subject
    from obedience.protocols import Protocol, ProtocolError, load_protocol

# Imported on first use, so that ``import obedience.cli`` (every command's start-up) does
# not pay for pydantic and the protocol schema.
_LAZY = {
    "Reply": "obedience.engine",
    "Request": "obedience.engine",
    "Trial": "obedience.engine",
    "run_with": "obedience.engine",
    "scripted_subject": "obedience.engine",
    "Protocol": "obedience.protocols",
    "ProtocolError": "obedience.protocols",
    "load_protocol": "obedience.protocols",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'obedience' has no attribute {name!r}")


__all__ = [
    "Protocol",
    "ProtocolError",
    "Reply",
    "Request",
    "Trial",
    "__version__",
    "load_protocol",
    "run_with",
    "scripted_subject",
]
