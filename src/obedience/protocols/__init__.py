"""Protocols as data: TOML files validated on load."""

from obedience.protocols._loader import (
    Protocol,
    ProtocolError,
    builtin_protocol_names,
    deep_merge,
    load_protocol,
    parse_protocol,
)
from obedience.protocols._schema import (
    Channel,
    ChannelKind,
    Policy,
    PolicyKind,
    ProtocolSpec,
)

__all__ = [
    "Channel",
    "ChannelKind",
    "Policy",
    "PolicyKind",
    "Protocol",
    "ProtocolError",
    "ProtocolSpec",
    "builtin_protocol_names",
    "deep_merge",
    "load_protocol",
    "parse_protocol",
]
