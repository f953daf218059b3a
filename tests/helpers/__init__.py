"""Shared test utilities: a fault-injecting OpenAI-compatible server, CLI and store helpers.

Test files import them as ``tests.helpers.*`` after putting the repository root on
``sys.path`` (see ``tests.helpers.paths`` and the ``conftest.py`` files that use it).
"""
