"""Shared fixtures for the engine tests: the two built-in protocols, loaded once."""

import pytest

from obedience.protocols import Protocol, load_protocol


@pytest.fixture(scope="session")
def paper() -> Protocol:
    return load_protocol("pihlakas2026")


@pytest.fixture(scope="session")
def milgram() -> Protocol:
    return load_protocol("milgram1963")
