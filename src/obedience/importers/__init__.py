"""Importers: published data and other harnesses' logs as ordinary run directories."""

from obedience.importers._census import CensusImportError, ImportResult, import_census

__all__ = ["CensusImportError", "ImportResult", "import_census"]
