"""Shared test utilities: a fault-injecting OpenAI-compatible server, CLI and store helpers.

Test files import them as ``tests.helpers.*``: pytest puts the repository root on the
import path (``pythonpath = ["."]`` in pyproject.toml), and the package under test is
the installed ``obedience`` (``pip install -e .``), never ``src`` on ``sys.path``.
"""
