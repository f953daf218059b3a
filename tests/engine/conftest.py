"""Shared fixtures for the engine tests: the two built-in protocols, loaded once."""

import sys
from pathlib import Path

import pytest

from obedience.protocols import Protocol, load_protocol

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture(scope="session")
def paper() -> Protocol:
    return load_protocol("pihlakas2026")


@pytest.fixture(scope="session")
def milgram() -> Protocol:
    return load_protocol("milgram1963")
