"""obedience: Milgram-style authority-pressure experiments for language models.

The curated public API. Everything else lives in private modules behind it.
"""

__version__ = "0.1.0"

from obedience.engine import Reply, Request, Trial, run_with, scripted_subject
from obedience.protocols import Protocol, ProtocolError, load_protocol

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
