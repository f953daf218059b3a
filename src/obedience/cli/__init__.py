"""The ``obedience`` command line: thin wrappers over the library.

Each sub-module registers its commands on the shared Typer app.
"""

from __future__ import annotations

from obedience.cli import _protocols, _run  # noqa: F401  (they register commands)
from obedience.cli._app import app, install_warning_filter

for _optional in ("_classify", "_annotate", "_stats", "_report", "_probe", "_import"):
    try:
        __import__(f"obedience.cli.{_optional}")
    except ModuleNotFoundError as _exc:  # a command group not built yet
        if _exc.name != f"obedience.cli.{_optional}":
            raise


def main() -> None:
    install_warning_filter()
    app()


__all__ = ["app", "main"]
