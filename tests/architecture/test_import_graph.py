"""The layering holds in the code: the CLI fronts the public API, analysis calls no models,
and no module imports itself in a circle (lazy imports inside functions included).

The graph is read from the source (every ``import`` statement, at module level or inside a
function; those under ``if TYPE_CHECKING:`` are left out, as they never run).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import obedience

SRC = Path(obedience.__file__).resolve().parent
PACKAGE = "obedience"


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, *, runtime_only: bool = True) -> set[str]:
    """The project modules ``module`` imports (a ``from pkg import sub`` names ``pkg.sub``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if runtime_only and isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


CLI_MODULES = sorted(m for m in MODULES if _within(m, "obedience.cli"))
# Modules whose owners move them onto the public API on their own branches.
CLI_PENDING: dict[str, str] = {}


@pytest.mark.parametrize(
    "module",
    [
        pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=CLI_PENDING[m]))
        if m in CLI_PENDING
        else m
        for m in CLI_MODULES
    ],
)
def test_the_cli_imports_only_the_public_api(module: str) -> None:
    # Type-only imports count too: the CLI's types are the public API's.
    public = {PACKAGE, "obedience.events"}
    outside = {
        m
        for m in _imports(module, runtime_only=False)
        if m not in public and not _within(m, "obedience.cli")
    }
    assert not outside, f"{module} imports {sorted(outside)}; use `obedience` instead"


def test_analysis_calls_no_models() -> None:
    forbidden = (
        "obedience.backends",
        "obedience.judging",
        "obedience.runner",
        "obedience.probe",
        "obedience.cli",
    )
    offenders = {
        module: sorted(m for m in _imports(module) if any(_within(m, f) for f in forbidden))
        for module in MODULES
        if _within(module, "obedience.analysis")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_analysis_imports_only_the_store_the_event_vocabulary_and_itself() -> None:
    """Analysis reads the store, the engine's event vocabulary and pure text parsers.

    The engine's event vocabulary (``engine._events``: plain frozen dataclasses) is what
    the store's rows decode to, so analysis may read it.
    """
    allowed = (
        "obedience.analysis",
        "obedience.store",
        "obedience.engine._events",
        # The census reanalysis reads replies with the engine's own pure text parsers
        # (no I/O, no model): our reading beside the census's.
        "obedience.engine._action_line",
        "obedience.engine._intent",
    )
    for module in MODULES:
        if not _within(module, "obedience.analysis"):
            continue
        outside = sorted(m for m in _imports(module) if not any(_within(m, a) for a in allowed))
        assert not outside, f"{module} imports {outside}"


def test_backends_know_nothing_of_the_experiment() -> None:
    """Backends take their own ``ChatRequest``: no engine request, runner, store or analysis.

    The one tie to the engine is ``scripted:NAME``, whose subjects are the engine's own
    (it reads the engine's request passed through as ``ChatRequest.origin``).
    """
    # ``_text`` and ``_json``: text safety and the hot path's JSON, shared helpers that
    # know nothing of the experiment either.
    allowed = ("obedience.backends", "obedience._text", "obedience._json")
    for module in MODULES:
        if not _within(module, "obedience.backends"):
            continue
        outside = sorted(m for m in _imports(module) if not any(_within(m, a) for a in allowed))
        if module == "obedience.backends._simple":
            assert outside == ["obedience.engine"], outside
            source = MODULES[module].read_text(encoding="utf-8")
            assert "from obedience.engine import scripted_subject\n" in source
        else:
            assert not outside, f"{module} imports {outside}"


def test_the_judge_reaches_models_only_through_a_backend() -> None:
    allowed = ("obedience.judging", "obedience.backends", "obedience.analysis.classifiers")
    for module in MODULES:
        if not _within(module, "obedience.judging"):
            continue
        outside = sorted(m for m in _imports(module) if not any(_within(m, a) for a in allowed))
        assert not outside, f"{module} imports {outside}"
        source = MODULES[module].read_text(encoding="utf-8")
        assert "import openai" not in source, f"{module} calls the SDK itself"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a self-import (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_no_import_cycle() -> None:
    graph = {m: _imports(m) & set(MODULES) for m in MODULES}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"a"}}) == [["a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_lazy_and_relative_imports() -> None:
    # _api imports the runner inside functions; the analysis package imports _stats.
    assert "obedience.runner" in _imports("obedience._api")
    assert "obedience.analysis._stats" in _imports("obedience.analysis")


def test_only_the_api_wires_a_run() -> None:
    """Preflight and building the manifest are the API's: no command, helper or benchmark repeats
    the run sequence (unit tests of the runner drive ``Runner`` alone, without them)."""
    root = SRC.parents[1]
    wiring = re.compile(r"(?<![\w.])(preflight|build_manifest)\(")
    places = sorted(
        {
            path.relative_to(root).as_posix()
            for folder in ("src", "tests", "benchmarks")
            for path in (root / folder).rglob("*.py")
            if path.name != "test_import_graph.py"
            # The runner's own unit tests may build a manifest to test it, never preflight.
            and not (path.parent.name == "runner" and "preflight(" not in path.read_text())
            for line in path.read_text(encoding="utf-8").splitlines()
            if wiring.search(line) and not line.lstrip().startswith(("def ", "async def "))
        }
    )
    assert places == ["src/obedience/_api.py"], places
