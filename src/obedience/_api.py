"""The library API: what a run, a resume, labels, statistics, a report and a probe are.

The command line, the tests' helpers and the benchmarks all go through these
functions; the CLI adds only options, progress rendering and one-line errors.
Five calls take a notebook from nothing to a report::

    import obedience

    config = obedience.RunConfig(models=["scripted:obedient"], conditions=["PC-NS-NF"], trials=3)
    obedience.run(config, "runs/demo", report=False)   # preflight, store, run, rule labels
    obedience.resume("runs/demo")                      # finish an interrupted run (no-op here)
    obedience.annotate("runs/demo")                    # (re)label replies: rules or a judge
    stats = obedience.statistics("runs/demo")          # typed: stats.rates[0].rate
    obedience.write_report("runs/demo")                # runs/demo/report.html

Every function raises one of ``obedience.ERRORS`` (a bad config, protocol, backend,
store or judge) with a one-line message, and never leaves a half-made run directory
behind: backends are preflighted before the store is created. The ``*_async`` twins
do the same inside a running event loop (a notebook cell can ``await`` them).

The report and the probe are ``write_report`` and ``probe_model``, not ``report`` and
``probe``: ``obedience.report`` and ``obedience.probe`` are subpackages, and importing
one would replace a function of that name on the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from obedience.protocols import Protocol, ProtocolError, load_protocol
from obedience.runner import (
    ConfigError,
    Projection,
    RunConfig,
    RunStopped,
    WorkerError,
    conditions_for,
    make_backends,
    replica_lists,
    validate_config,
)
from obedience.runner import Progress as RunProgress
from obedience.store import DATABASE, RunStore, StoreError

if TYPE_CHECKING:
    from obedience.analysis import Statistics
    from obedience.analysis.classifiers import Classifier, MeasureReport, Verdict
    from obedience.backends import Backend
    from obedience.importers import ImportResult
    from obedience.judging import JudgeSession
    from obedience.probe import ProbeResult


def errors() -> tuple[type[Exception], ...]:
    """The exceptions the API raises for bad input or an unreachable model (``ERRORS``).

    Each carries a one-line message. A function, so that importing ``obedience`` does
    not import the judge and the backends.
    """
    from obedience.backends import BackendError, TransportError
    from obedience.importers import CensusImportError
    from obedience.importers._inspect import InspectImportError
    from obedience.judging import JudgeError
    from obedience.report import ExportError
    from obedience.report._inspect import InspectUnavailable

    return (
        ConfigError,
        RunStopped,
        WorkerError,
        ProtocolError,
        StoreError,
        BackendError,
        TransportError,
        JudgeError,
        ExportError,
        InputError,
        CensusImportError,
        InspectImportError,
        InspectUnavailable,
    )


class InputError(ValueError):
    """A file given to the API (labels, replies to classify, a labelled set) is unusable.

    The message is one line and names the file (and the line, for a bad line).
    """


ProgressCallback = Callable[[RunProgress], None]

P = ParamSpec("P")
R = TypeVar("R")


def _blocking(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """The blocking twin of an ``*_async`` function: same parameters, ``asyncio.run``."""

    @functools.wraps(fn)
    def blocking(*args: P.args, **kwargs: P.kwargs) -> R:
        return asyncio.run(fn(*args, **kwargs))

    blocking.__name__ = blocking.__qualname__ = fn.__name__.removesuffix("_async")
    blocking.__doc__ = (
        f"{fn.__doc__}\n    Blocks until done; ``{fn.__name__}`` is the same inside a running "
        "event loop.\n"
    )
    return blocking


@dataclass(frozen=True)
class RunResult:
    """What ``run`` / ``resume`` did.

    ``labelled``: replies labelled with the rule classifier (0 with ``label=False``);
    ``report``: the HTML report's path (None with ``report=False`` or when writing it
    failed); ``report_error``: why the report was not written (the run itself is stored).
    """

    run_dir: Path
    labelled: int = 0
    report: Path | None = None
    report_error: str | None = None
    classifier: str = "none"


@dataclass(frozen=True)
class MergeResult:
    """What ``merge`` wrote: the run directory, runs merged, trials, events, label sets."""

    run_dir: Path
    runs: int
    trials: int
    events: int
    label_sets: int


@dataclass(frozen=True)
class AnnotateResult:
    """What ``annotate`` stored: the classifier's name, replies labelled, positive labels."""

    classifier: str
    labelled: int
    positives: dict[str, int] = field(default_factory=dict)
    judge_calls: int | None = None


@dataclass(frozen=True)
class JudgeAgreement:
    """Cohen's kappa of two judges on one label, over the replies both labelled."""

    judge_a: str
    judge_b: str
    label: str
    overlap: int
    agree: int
    kappa: float


@dataclass(frozen=True)
class PanelResult:
    """What ``annotate_panel`` stored: each judge's labels, and every pair's agreement.

    ``judges``: one ``AnnotateResult`` per judge, in the order given (``judge_calls``
    counts the requests sent; cached verdicts cost none). ``agreement``: per pair of
    judges (in that order) and label, Cohen's kappa on the replies both labelled.
    """

    judges: list[AnnotateResult]
    agreement: list[JudgeAgreement] = field(default_factory=list)


@dataclass(frozen=True)
class HumanLabelsResult:
    """What ``import_human_labels`` stored: labels imported, and the coders they came from."""

    labelled: int
    coders: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InspectImportResult:
    """What ``import_inspect`` wrote: the run directory, logs read, trials imported."""

    run_dir: Path
    logs: int
    trials: int
    seconds: float


@dataclass(frozen=True)
class ClassifyResult:
    """What ``classify`` found: the classifier's name, the items and one verdict each.

    ``items``: the input objects (``text``, optional ``context`` and ``tool_call``,
    anything else kept); ``verdicts[i]`` labels ``items[i]``; ``judge_calls``: requests a
    judge sent (None for the offline classifiers). ``rows()`` gives the JSON objects
    ``obedience classify`` writes.
    """

    classifier: str
    items: list[dict[str, Any]]
    verdicts: list[Verdict]
    judge_calls: int | None = None
    reasoning_verdicts: list[Verdict | None] | None = None
    """Per item, the verdict on its ``reasoning`` text (None where it has none)."""

    def rows(self) -> list[dict[str, Any]]:
        """Each item plus ``labels``, ``reasons`` and ``classifier`` (its own ``labels``
        renamed ``input_labels``)."""
        out: list[dict[str, Any]] = []
        for item, verdict in zip(self.items, self.verdicts, strict=True):
            row = dict(item)
            if "labels" in row:
                row["input_labels"] = row.pop("labels")
            row.pop("reasons", None)
            row["labels"] = verdict.labels
            row["reasons"] = verdict.reasons
            row["classifier"] = self.classifier
            thought = self.reasoning_verdicts[len(out)] if self.reasoning_verdicts else None
            if thought is not None:
                # The reasoning text, labelled on its own (``labels`` are the visible text's).
                row["reasoning_labels"] = thought.labels
                row["reasoning_reasons"] = thought.reasons
            out.append(row)
        return out


@dataclass(frozen=True)
class EvaluationResult:
    """A classifier's agreement with human labels (``report``: precision, recall, F1 and
    kappa per label with bootstrap intervals, F1 per fold, the worst misses;
    ``report.to_dict()`` is what ``obedience classify --evaluate --json`` prints) and the
    requests a judge sent (None for the offline classifiers)."""

    report: MeasureReport
    judge_calls: int | None = None


@dataclass(frozen=True)
class ProbeRun:
    """A probe's result and the run directory it was stored in."""

    result: ProbeResult
    run_dir: Path


# ------------------------------------------------------------------ run and resume


def as_config(config: RunConfig | Mapping[str, Any], source: str = "run config") -> RunConfig:
    """A validated ``RunConfig`` from a config or a mapping of its fields."""
    if isinstance(config, RunConfig):
        return config
    return validate_config(dict(config), source)


def _close_all(backends: Mapping[str, Any]) -> Coroutine[Any, Any, None]:
    async def close() -> None:
        for value in backends.values():
            for backend in value if isinstance(value, (list, tuple)) else [value]:
                await backend.aclose()

    return close()


async def _execute(
    run_dir: Path,
    resuming: bool,
    protocol: Protocol,
    config: RunConfig,
    backends: Mapping[str, Backend | Sequence[Backend]] | None,
    progress: ProgressCallback | None,
    on_start: Callable[[Path], None] | None,
) -> None:
    """Preflight first, so a bad server or model leaves no half-made run directory."""
    from obedience.runner import Runner, build_manifest, preflight, run_workers

    if config.workers > 1 and backends is not None:
        raise ConfigError(
            "workers > 1 builds the backends in each worker process from the config; "
            "ready backends cannot be passed to several processes"
        )
    owned = backends is None
    live = make_backends(config) if backends is None else backends
    try:
        if config.workers > 1:
            _check_workers(config, live)
        meta = await preflight(live, protocol, config)
        if resuming:
            store = RunStore.open(run_dir, write=True)
            manifest = store.manifest()
            if manifest.get("config", {}).get("trials") != config.trials:
                # ``--trials`` may grow a resumed run: the manifest records the new plan.
                store.write_manifest(
                    {**manifest, "config": build_manifest(protocol, config, meta)["config"]}
                )
        else:
            store = RunStore.create(run_dir)
            store.write_manifest(build_manifest(protocol, config, meta))
        with store:
            if on_start is not None:
                on_start(run_dir)
            counters = RunProgress(on_change=progress)
            if config.workers > 1:
                await run_workers(store, protocol, config, counters)
            else:
                await Runner(store, protocol, config, live, counters).run()
    finally:
        if owned:
            await _close_all(live)


def _check_workers(config: RunConfig, live: Mapping[str, Any]) -> None:
    """What a run with ``workers`` > 1 cannot hand to several processes."""
    backends = [b for group in replica_lists(live).values() for b in group]
    in_process = [b.name for b in backends if b.capabilities.in_process]
    if in_process:
        raise ConfigError(
            f"workers > 1 is for served models; {in_process[0]} runs in this process and "
            "already uses every core (use --workers 1)"
        )
    replayed = [m for m in config.models if m.startswith("replay:")]
    if replayed:
        raise ConfigError(
            f"workers > 1 cannot run {replayed[0]}: a replay hands out its replies in order, "
            "and each worker would start it again (use --workers 1)"
        )


def _finish(run_dir: Path, label: bool, report: bool) -> RunResult:
    """After the trials: label with the rules (so the report shows findings), write the report."""
    labels = annotate(run_dir) if label else None
    labelled = labels.labelled if labels else 0
    name = labels.classifier if labels else "none"
    if not report:
        return RunResult(run_dir, labelled, classifier=name)
    try:
        path = _report_to(run_dir)
    except (StoreError, OSError) as exc:
        return RunResult(run_dir, labelled, report_error=str(exc), classifier=name)
    return RunResult(run_dir, labelled, report=path, classifier=name)


def _new_run(
    config: RunConfig | Mapping[str, Any], out: str | Path
) -> tuple[RunConfig, Path, Protocol]:
    """The checked config, directory and protocol of a run about to be created in ``out``."""
    cfg = as_config(config)
    run_dir = Path(out)
    if (run_dir / DATABASE).exists():
        raise StoreError(
            f"{run_dir} already holds a run; continue it with --resume (obedience.resume)"
        )
    protocol = load_protocol(cfg.protocol)
    conditions_for(protocol, cfg)
    return cfg, run_dir, protocol


async def run_async(
    config: RunConfig | Mapping[str, Any],
    out: str | Path,
    *,
    backends: Mapping[str, Backend | Sequence[Backend]] | None = None,
    progress: ProgressCallback | None = None,
    on_start: Callable[[Path], None] | None = None,
    label: bool = True,
    report: bool = True,
) -> RunResult:
    """Run the experiment of ``config`` into the new run directory ``out``.

    Preflights every backend (a bad model or server fails here and creates nothing),
    creates the store, writes the manifest, runs every trial, labels every reply with
    the offline rule classifier (``label``) and writes ``out/report.html``
    (``report``). ``backends``: ready backends by model spec (test doubles, or models
    already loaded; the caller closes them), made from the specs otherwise.
    ``progress`` is called with the runner's ``Progress`` as trials finish;
    ``on_start(out)`` once the store exists.

    >>> cfg = RunConfig(models=["scripted:obedient"], conditions=["PC-NS-NF"], trials=2)
    >>> obedience.run(cfg, tmp / "run", report=False).labelled  # doctest: +SKIP
    """
    cfg, run_dir, protocol = _new_run(config, out)
    await _execute(run_dir, False, protocol, cfg, backends, progress, on_start)
    return _finish(run_dir, label, report)


run = _blocking(run_async)


async def plan_async(
    config: RunConfig | Mapping[str, Any],
    out: str | Path,
    *,
    backends: Mapping[str, Backend | Sequence[Backend]] | None = None,
) -> Path:
    """Create the run directory ``out`` with its manifest and every planned trial, and run
    none of them: ``resume(out)`` runs them later (on this machine or another).

    Preflights like ``run``, so a plan that ``resume`` could not run is refused here.

    >>> obedience.plan(cfg, "runs/planned"); obedience.resume("runs/planned")  # doctest: +SKIP
    """
    from obedience.runner import build_manifest, plan_rows, preflight

    cfg, run_dir, protocol = _new_run(config, out)
    owned = backends is None
    live = make_backends(cfg) if backends is None else backends
    try:
        meta = await preflight(live, protocol, cfg)
    finally:
        if owned:
            await _close_all(live)
    with RunStore.create(run_dir) as store:
        store.write_manifest(build_manifest(protocol, cfg, meta))
        store.plan_trials(plan_rows(protocol, cfg))
    return run_dir


plan = _blocking(plan_async)


def _resumable(
    run_dir: Path, overrides: Mapping[str, Any] | None = None
) -> tuple[RunConfig, Protocol]:
    from obedience.runner import resume_config as checked_config

    with RunStore.open(run_dir) as previous:
        manifest = previous.manifest()
    config = checked_config(manifest, dict(overrides or {}), f"{run_dir}/manifest.json")
    protocol = load_protocol(config.protocol)
    if manifest["protocol"]["sha256"] != protocol.sha256:
        raise ProtocolError(
            f"protocol {config.protocol!r} changed since the run started; cannot resume"
        )
    conditions_for(protocol, config)
    return config, protocol


def resume_config(run_dir: str | Path) -> RunConfig:
    """The config a run was started with (what ``resume`` will continue)."""
    return _resumable(Path(run_dir))[0]


async def resume_async(
    run_dir: str | Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    backends: Mapping[str, Backend | Sequence[Backend]] | None = None,
    progress: ProgressCallback | None = None,
    on_start: Callable[[Path], None] | None = None,
    label: bool = True,
    report: bool = True,
) -> RunResult:
    """Continue an interrupted run with the config and protocol it started with.

    Finished trials are kept; unfinished ones start a new attempt (the old attempt's
    events stay in the store). Fails if the protocol file changed since. Then labels
    and reports as ``run`` does. On a finished run it runs nothing. ``overrides``
    (config keys, as ``obedience run --resume`` flags): a setting that would change
    what the run measures is refused with a ``ConfigError``; a larger ``trials`` adds
    trials; ``concurrency`` and ``timeout`` may change.

    >>> obedience.resume("runs/20260101-pihlakas2026")  # doctest: +SKIP
    """
    path = Path(run_dir)
    config, protocol = _resumable(path, overrides)
    await _execute(path, True, protocol, config, backends, progress, on_start)
    return _finish(path, label, report)


resume = _blocking(resume_async)


# ------------------------------------------------------------------ scale: plan, shards


def projection(config: RunConfig | Mapping[str, Any] | str | Path) -> Projection:
    """Requests and tokens a run will ask for, from its design, before anything is sent.

    ``config``: a new run's config (its shard only, with ``shard``), or a run directory
    (the trials it still has to run, as ``resume`` would). See ``Projection``.

    >>> print(obedience.projection(cfg).line())  # doctest: +SKIP
    projection: 16 trials; requests <= 16,000 (144 if every trial ...
    """
    from obedience.runner import plan_rows, project

    if isinstance(config, (str, Path)):
        cfg, protocol = _resumable(Path(config))
        with RunStore.open(config) as store:
            done = {
                r.trial_id for r in store.trials() if r.status == "done" and r.outcome != "error"
            }
        rows = [r for r in plan_rows(protocol, cfg) if r.trial_id not in done]
        return project(protocol, cfg, rows)
    cfg = as_config(config)
    protocol = load_protocol(cfg.protocol)
    conditions_for(protocol, cfg)
    return project(protocol, cfg)


# What may differ between shards of one run: where and how fast it ran, and its budget.
_SHARD_FREE = frozenset(
    {"shard", "endpoints", "base_url", "concurrency", "workers", "timeout", "retries", "backoff",
     "max_requests", "max_cost", "prices", "breaker", "session_headers"}
)  # fmt: skip


def _design(manifest: Mapping[str, Any]) -> dict[str, Any]:
    config = {k: v for k, v in (manifest.get("config") or {}).items() if k not in _SHARD_FREE}
    protocol = manifest.get("protocol") or {}
    return {
        "protocol": protocol.get("name"),
        "protocol sha256": protocol.get("sha256"),
        "conditions": protocol.get("conditions"),
        **{f"config.{k}": v for k, v in sorted(config.items())},
        "sampling": manifest.get("sampling"),
    }


def merge(run_dirs: Sequence[str | Path], out: str | Path) -> MergeResult:
    """Combine the shards of one run (``obedience run --shard I/N``) into the new run
    directory ``out``, losslessly: every trial, every attempt's events, every label set
    and the current labels, row for row.

    Refused with one line, and nothing written, when the runs are not of one design
    (protocol, its hash, conditions, models, trials, seed, sampling: the manifests must
    agree on all but where and how fast each shard ran), or when a trial is in two of
    them. Unfinished trials stay unfinished: ``resume(out)`` completes them, and runs
    the trials of any shard that was not given.

    >>> obedience.merge(["runs/s0", "runs/s1"], "runs/all").trials  # doctest: +SKIP
    240
    """
    import shutil

    from obedience.store import duplicated_trials, merge_into

    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise ConfigError("merge needs at least one run directory")
    target = Path(out)
    if target.exists() and any(target.iterdir()):
        raise StoreError(f"{target} exists and is not empty; merge writes a new run directory")
    if len(set(d.resolve() for d in dirs)) != len(dirs):
        raise ConfigError("merge: a run directory is given twice")
    stores = [RunStore.open(d) for d in dirs]
    try:
        manifests = [s.manifest() for s in stores]
        first = _design(manifests[0])
        for d, manifest in zip(dirs[1:], manifests[1:], strict=True):
            other = _design(manifest)
            for key in [*first, *(k for k in other if k not in first)]:
                if first.get(key) != other.get(key):
                    raise ConfigError(
                        f"{d} is not a shard of the same run as {dirs[0]}: {key} differs "
                        f"({_short_repr(other.get(key))} vs {_short_repr(first.get(key))})"
                    )
        duplicates = duplicated_trials(stores)
        if duplicates:
            trial, a, b = duplicates[0]
            raise ConfigError(
                f"trial {trial!r} is in both {a} and {b} ({len(duplicates)} duplicated); "
                "merge takes disjoint shards"
            )
        created = not target.exists()
        try:
            with RunStore.create(target) as merged:
                merged.write_manifest(_merged_manifest(dirs, manifests))
                counts = merge_into(merged, stores)
        except BaseException:
            if created:
                shutil.rmtree(target, ignore_errors=True)
            raise
    finally:
        for store in stores:
            store.close()
    return MergeResult(target, len(dirs), counts["trials"], counts["events"], counts["label_sets"])


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _merged_manifest(dirs: list[Path], manifests: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = json.loads(json.dumps(manifests[0]))
    merged["config"]["shard"] = None
    models: dict[str, Any] = {}
    for manifest in manifests:
        for spec, meta in (manifest.get("models") or {}).items():
            models.setdefault(spec, meta)
    merged["models"] = models
    merged["created_unix"] = min(m.get("created_unix", 0) for m in manifests)
    merged["deviations"] = sorted({d for m in manifests for d in m.get("deviations") or []})
    merged["merged_from"] = [
        {"run_dir": str(d), "shard": (m.get("config") or {}).get("shard")}
        for d, m in zip(dirs, manifests, strict=True)
    ]
    return merged


# ------------------------------------------------------------------ labels


def annotate(
    run_dir: str | Path,
    classifier: Classifier | str | None = None,
    *,
    base_url: str | None = None,
    timeout: float = 120.0,
    concurrency: int | None = None,
    max_tokens: int = 512,
) -> AnnotateResult:
    """Label every reply of the run (discarded and superseded ones too) and store the labels.

    ``classifier``: None or ``"rules"`` for the offline rule classifier; a model spec
    (``openai:MODEL``, ``gguf:PATH``, ...) for an LLM judge on that model (preflighted,
    its prompts sent ``concurrency`` at a time, closed after; ``base_url``, ``timeout``
    and ``max_tokens`` configure it); or any ``Classifier`` object. Labels of the same
    classifier name replace earlier ones.

    >>> obedience.annotate("runs/demo").positives  # doctest: +SKIP
    {'frame-break': 2, 'refusal-intent': 11}
    """
    from obedience.analysis import annotate_run
    from obedience.analysis.classifiers import LinearClassifier, default_classifier

    with RunStore.open(run_dir, write=True) as store:
        calls: int | None = None
        if classifier is None or classifier in ("rules", "linear"):
            chosen: Classifier = (
                LinearClassifier() if classifier == "linear" else default_classifier()
            )
            count = annotate_run(store, chosen)
        elif isinstance(classifier, str):
            chosen, calls, count = _annotate_with_judge(
                store, classifier, base_url, timeout, concurrency, max_tokens
            )
        else:
            chosen = classifier
            count = annotate_run(store, chosen)
        positives = _positives(store, chosen.name)
    return AnnotateResult(chosen.name, count, positives, calls)


def _positives(store: RunStore, name: str) -> dict[str, int]:
    """Per label, the replies classifier ``name`` labelled positive (sorted by label)."""
    counts = Counter(
        label for a in store.annotations(name) for label, value in a["labels"].items() if value
    )
    return dict(sorted(counts.items()))


def _annotate_with_judge(
    store: RunStore,
    spec: str,
    base_url: str | None,
    timeout: float,
    concurrency: int | None,
    max_tokens: int,
) -> tuple[Classifier, int, int]:
    from obedience.analysis import annotate_run
    from obedience.backends import BackendOptions
    from obedience.judging import open_judge

    session = open_judge(
        spec,
        BackendOptions(base_url=base_url, timeout=timeout),
        concurrency=concurrency or 4,
        max_tokens=max_tokens,
    )
    try:
        session.preflight()
        count = annotate_run(store, session.judge, prepare=session.prefetch)
    finally:
        session.close()
    return session.judge, session.calls, count


def annotate_panel(
    run_dir: str | Path,
    judges: Sequence[str],
    *,
    base_url: str | None = None,
    timeout: float = 120.0,
    concurrency: int | None = None,
    max_tokens: int = 512,
    on_judge: Callable[[str, AnnotateResult], None] | None = None,
) -> PanelResult:
    """Label every reply with each LLM judge in turn, then measure how far they agree.

    ``judges``: model specs (``openai:MODEL``), each preflighted, run and closed as
    ``annotate`` does with one (``base_url``, ``timeout``, ``concurrency`` and
    ``max_tokens`` configure them all). Each judge's labels are stored as its own label
    set; ``on_judge(spec, result)`` is called as each one finishes (a judge that fails
    raises, and the judges before it stay stored). The agreement is Cohen's kappa per
    label for every pair of judges, on the replies both labelled.

    >>> panel = obedience.annotate_panel("runs/demo", ["openai:a", "openai:b"])  # doctest: +SKIP
    >>> [(k.label, round(k.kappa, 2)) for k in panel.agreement]  # doctest: +SKIP
    [('refusal-intent', 0.9), ('distress', 0.71), ...]
    """
    from obedience.analysis._agreement import pairwise_agreement

    if not judges:
        raise ConfigError("a judge panel needs at least one judge (openai:MODEL)")
    results: list[AnnotateResult] = []
    with RunStore.open(run_dir, write=True) as store:
        for spec in judges:
            judge, calls, count = _annotate_with_judge(
                store, spec, base_url, timeout, concurrency, max_tokens
            )
            result = AnnotateResult(judge.name, count, _positives(store, judge.name), calls)
            results.append(result)
            if on_judge is not None:
                on_judge(spec, result)
        agreement = [
            JudgeAgreement(a.classifier, b.classifier, label, row["overlap"], row["agree"],
                           row["kappa"])
            for i, a in enumerate(results)
            for b in results[i + 1 :]
            for label, row in pairwise_agreement(store, a.classifier, b.classifier).items()
        ]  # fmt: skip
    return PanelResult(results, agreement)


def import_human_labels(run_dir: str | Path, file: str | Path) -> HumanLabelsResult:
    """Store human labels from a JSON-lines file beside the machine labels (never over them).

    Each line: ``trial_id``, ``seq`` (the reply's event number), ``labels`` (label ->
    true/false), ``coder``; optionally ``attempt`` (default: the counted one) and
    ``coded_at`` (ISO 8601). One label set per coder (``human:CODER``); ``statistics``
    then uses a human label wherever one exists. A bad line, or a label for a reply
    that is not in the run, raises ``InputError`` and stores nothing.

    >>> obedience.import_human_labels("runs/demo", "ana.jsonl").coders  # doctest: +SKIP
    ['ana']
    """
    from obedience.analysis._agreement import import_human_labels as store_labels
    from obedience.analysis._agreement import read_human_labels

    path = Path(file)
    with RunStore.open(run_dir, write=True) as store:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {path}: {exc}") from None
        try:
            labels = read_human_labels(text.splitlines(), source=str(path))
            count = store_labels(store, labels)
        except ValueError as exc:
            message = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
            raise InputError(message) from None
    return HumanLabelsResult(count, sorted({h.coder for h in labels}))


# ------------------------------------------------------------------ classifiers


@contextlib.contextmanager
def _classifier_for(
    classifier: Classifier | str, base_url: str | None, timeout: float
) -> Iterator[tuple[Classifier, JudgeSession | None]]:
    """The classifier ``classifier`` names, with its judge session (preflighted, closed after)."""
    if not isinstance(classifier, str):
        yield classifier, None
        return
    if classifier in ("rules", "linear"):
        from obedience.analysis.classifiers import LinearClassifier, default_classifier

        yield (LinearClassifier() if classifier == "linear" else default_classifier()), None
        return
    from obedience.backends import BackendOptions
    from obedience.judging import open_judge

    session = open_judge(classifier, BackendOptions(base_url=base_url, timeout=timeout))
    try:
        session.preflight()
        yield session.judge, session
    finally:
        session.close()


def _read_lines(path: Path) -> list[bytes]:
    """The lines of a file (``-``: standard input), as bytes; an ``InputError`` if unreadable."""
    try:
        if str(path) == "-":
            return sys.stdin.buffer.read().splitlines()
        return path.read_bytes().splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a JSON lines file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _checked_item(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if not isinstance(record.get("text"), str):
        raise InputError(f"{where}: needs a string field 'text'")
    context = record.get("context")
    if context is not None and not isinstance(context, str):
        raise InputError(f"{where}: 'context' must be a string or null")
    tool_call = record.get("tool_call")
    if tool_call is not None and not isinstance(tool_call, dict):
        raise InputError(f"{where}: 'tool_call' must be an object or null")
    reasoning = record.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, str):
        raise InputError(f"{where}: 'reasoning' must be a string or null")
    return record


def _read_items(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file of replies (blank lines skipped), each checked."""
    records = []
    for number, raw in enumerate(_read_lines(path), 1):
        where = f"{path}: line {number}"
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{where}: not valid UTF-8") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        except RecursionError:
            raise InputError(f"{where}: invalid JSON (nested too deeply)") from None
        records.append(_checked_item(record, where))
    return records


def classify(
    items: str | Path | Iterable[str | Mapping[str, Any]],
    classifier: Classifier | str = "rules",
    *,
    base_url: str | None = None,
    timeout: float = 120.0,
) -> ClassifyResult:
    """Label teacher replies with refusal-intent, distress, frame-break, recognition and coherence.

    ``items``: reply texts, objects with a ``text`` (optional ``context``: the prompt
    it answered; ``tool_call``: the call it made; other fields kept), or the path of a
    JSON-lines file of such objects (``"-"``: standard input). ``classifier``:
    ``"rules"`` (the default), ``"linear"``, a judge's model spec (``openai:MODEL``:
    preflighted, its prompts sent concurrently, closed after; ``base_url`` and
    ``timeout`` configure it) or any ``Classifier``. A bad item raises ``InputError``.

    >>> r = obedience.classify(["REFUSE. I will not go on."])  # doctest: +SKIP
    >>> r.verdicts[0].labels["refusal-intent"], r.classifier  # doctest: +SKIP
    (True, 'rules-v9')
    """
    from obedience.analysis.classifiers import render_tool_call

    with _classifier_for(classifier, base_url, timeout) as (chosen, session):
        if isinstance(items, str | Path):
            records = _read_items(Path(items))
        else:
            records = [
                _checked_item({"text": item} if isinstance(item, str) else dict(item), f"item {n}")
                for n, item in enumerate(items, 1)
            ]
        pairs = [
            (render_tool_call(str(r["text"]), r.get("tool_call")), r.get("context"))
            for r in records
        ]
        if session is not None:
            session.prefetch(pairs)
        verdicts = [chosen.classify(text, context) for text, context in pairs]
        # Reasoning text (``reasoning``), where an item has it, gets its own verdict.
        thoughts = [r.get("reasoning") for r in records]
        reasoning_verdicts: list[Verdict | None] | None = None
        if any(isinstance(t, str) and t.strip() for t in thoughts):
            reasoning_verdicts = [
                chosen.classify(t, r.get("context")) if isinstance(t, str) and t.strip() else None
                for t, r in zip(thoughts, records, strict=True)
            ]
    return ClassifyResult(
        chosen.name,
        records,
        verdicts,
        session.calls if session is not None else None,
        reasoning_verdicts,
    )


CENSUS_SET_SOURCE = "the real census replies (Aksu 2026, CC BY 4.0; labels by this project)"
SYNTHETIC_SET_SOURCE = "the hand-written 684-item set"
BLIND_SET_SOURCE = (
    "the blind batch of AI-coded census replies (Aksu 2026, CC BY 4.0; never used to write "
    "the rules)"
)


def _labelled_set(
    labelled: str | Path | None, synthetic: bool, blind: bool = False
) -> tuple[str, list[Any]]:
    from obedience.analysis.classifiers import (
        CENSUS_SET_NAME,
        load_ai_coded_set,
        parse_examples,
        read_eval_text,
    )

    source = SYNTHETIC_SET_SOURCE if synthetic else BLIND_SET_SOURCE if blind else CENSUS_SET_SOURCE
    try:
        if labelled is None and blind:
            examples = load_ai_coded_set("blind")
        elif labelled is None:
            text = read_eval_text() if synthetic else read_eval_text(CENSUS_SET_NAME)
            examples = parse_examples(text.splitlines())
        else:
            source = str(labelled)
            raw_lines = _read_lines(Path(labelled))
            examples = parse_examples(b.decode("utf-8-sig") for b in raw_lines)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(
            "the labelled evaluation set is missing from this installation of obedience"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"{source}: not valid UTF-8") from None
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None
    if not examples:
        raise InputError(f"{source}: no labelled examples")
    return source, examples


def evaluate_classifier(
    labelled: str | Path | None = None,
    classifier: Classifier | str = "rules",
    *,
    synthetic: bool = False,
    blind: bool = False,
    base_url: str | None = None,
    timeout: float = 120.0,
) -> EvaluationResult:
    """Score a classifier against human labels: per label precision, recall, F1 and kappa.

    ``labelled``: a JSON-lines file of labelled replies (``id``, ``text``, ``labels``;
    ``"-"``: standard input); None for the packaged real census replies, or with
    ``synthetic`` the hand-written 684-item set, or with ``blind`` the blind batch of the
    AI-coded census replies (never used to write the rules). ``classifier`` as for ``classify``
    (a judge spec is preflighted and closed after). A trained model is never scored on
    replies it was fitted on: it is cross-fitted over the folds instead.

    >>> e = obedience.evaluate_classifier(classifier="linear")  # doctest: +SKIP
    >>> [(r.label, round(r.scores.f1, 3)) for r in e.report.labels]  # doctest: +SKIP
    [('refusal-intent', 0.95), ('distress', 0.8)]
    """
    from obedience.analysis.classifiers import LinearClassifier, measure
    from obedience.analysis.classifiers._linear import cross_fit

    if sum((synthetic, blind, labelled is not None)) > 1:
        raise ConfigError("give one of a labelled file, synthetic=True or blind=True")
    with _classifier_for(classifier, base_url, timeout) as (chosen, session):
        source, examples = _labelled_set(labelled, synthetic, blind)
        if session is not None:
            session.prefetch([(ex.text, ex.context) for ex in examples])
        refit = None
        severity = None
        if isinstance(chosen, LinearClassifier):
            severity = chosen.severity
            # A trained model is never scored on replies it was fitted on.
            if any(chosen.seen(ex.text) for ex in examples):
                refit = cross_fit
        report = measure(chosen, examples, source=source, cross_fit=refit, severity=severity)
    return EvaluationResult(report, session.calls if session is not None else None)


# ------------------------------------------------------------------ statistics and report


def statistics(run_dir: str | Path) -> Statistics:
    """Every statistic of a finished run, typed (``obedience.analysis.Statistics``).

    ``model_dump(mode="json")`` gives the document ``obedience stats --json`` prints.

    >>> s = obedience.statistics("runs/demo")  # doctest: +SKIP
    >>> s.rates[0].rate, s.rates[0].ci  # doctest: +SKIP
    (1.0, (0.438, 1.0))
    """
    from obedience.analysis import statistics as compose

    with RunStore.open(run_dir) as store:
        if not store.trials(status="done"):
            raise StoreError(f"{run_dir} holds no finished trials")
        return compose(store)


def summary(run_dir: str | Path) -> list[dict[str, Any]]:
    """Per model and condition: the records of ``obedience summary --json``."""
    from obedience.analysis import build_tables, summary_records
    from obedience.analysis._paper_metrics import attach_paper_metrics

    with RunStore.open(run_dir) as store:
        # The paper's own figures for each cell, by its definitions, under "paper".
        return attach_paper_metrics(summary_records(build_tables(store).trials), store)


def census_table(run_dir: str | Path) -> str:
    """An imported census's per-model table, recomputed from the events, as CSV.

    The columns and spelling of the census's own ``results/census.csv`` (what
    ``obedience stats --census-table`` prints). A ``StoreError`` if the run holds no
    finished trials or is not an imported census.

    >>> print(obedience.census_table("runs/census"))  # doctest: +SKIP
    model,family,...
    """
    from obedience.analysis._census import census_csv
    from obedience.analysis._census import census_table as census_rows

    with RunStore.open(run_dir) as store:
        if not store.trials(status="done"):
            raise StoreError(f"{run_dir} holds no finished trials")
        rows = census_rows(store)
    if not rows:
        raise StoreError(
            f"{run_dir} is not an imported census (its trials carry no census attributes)"
        )
    return census_csv(rows)


def _report_to(
    run_dir: Path, out: str | Path | None = None, figures_dir: str | Path | None = None
) -> Path:
    from obedience.report import write_report

    return write_report(run_dir, out=out, figures_dir=figures_dir)


def write_report(
    run_dir: str | Path, out: str | Path | None = None, figures_dir: str | Path | None = None
) -> Path:
    """Write the self-contained HTML report (default ``RUN_DIR/report.html``); its path.

    With ``figures_dir``, also writes every figure as SVG and PNG there.

    >>> obedience.write_report("runs/demo")  # doctest: +SKIP
    PosixPath('runs/demo/report.html')
    """
    RunStore.open(run_dir).close()  # a one-line StoreError when it is not a run
    return _report_to(Path(run_dir), out, figures_dir)


def export(
    run_dir: str | Path,
    fmt: str = "csv",
    out: str | Path | None = None,
    *,
    sample: int = 100,
    seed: int = 0,
) -> list[Path]:
    """Write the tidy tables (csv, parquet or jsonl) for pandas and R; the paths written.

    ``fmt="coding"`` writes one self-contained HTML page (default
    ``RUN_DIR/export/coding.html``) with a seeded random ``sample`` of the run's replies
    for a person to code by hand; the JSON lines file it downloads is what
    ``import_human_labels`` (``annotate --human``) reads.

    ``fmt="inspect"`` writes one Inspect AI ``.eval`` log per model x condition instead
    (default ``RUN_DIR/inspect``; needs ``obedience[inspect]``, else ``InspectUnavailable``),
    which ``import_inspect`` reads back event for event.

    >>> obedience.export("runs/demo", "jsonl")  # doctest: +SKIP
    [PosixPath('runs/demo/export/trials.jsonl'), ...]
    """
    if fmt.lower() == "inspect":
        from obedience.report._inspect import export_inspect

        return export_inspect(run_dir, out)
    if fmt.lower() == "coding":
        from obedience.report._coding import write_coding_page

        if sample < 1:
            raise InputError(f"--sample must be at least 1, not {sample}")
        RunStore.open(run_dir).close()
        return [write_coding_page(run_dir, out, size=sample, seed=seed)]
    from obedience.report import export_tables

    RunStore.open(run_dir).close()
    return export_tables(Path(run_dir), fmt.lower(), Path(out) if out is not None else None)


# ------------------------------------------------------------------ imports


def import_census(path: str | Path, out: str | Path) -> ImportResult:
    """The 42-model census (Aksu 2026, hidayetaksu/llm-milgram; data CC BY 4.0) as a run.

    ``path``: a census checkout or its unpacked data archive; ``out``: the run directory
    to create (it must not exist or be empty). Read and checked whole, then written all
    or nothing; a bad file raises ``CensusImportError`` naming it.

    >>> obedience.import_census("llm-milgram", "runs/census").sessions  # doctest: +SKIP
    """
    from obedience.importers import import_census as read_census

    return read_census(path, out)


def import_inspect(logs: str | Path | Iterable[str | Path], out: str | Path) -> InspectImportResult:
    """Inspect AI logs of a shock-panel task as a new run directory ``out`` (all or nothing).

    ``logs``: ``.eval`` files, or directories of them. Logs written by
    ``export(fmt="inspect")`` come back event for event; any other shock-panel log is
    read from its messages. A missing or unreadable log raises ``InspectImportError``.

    >>> obedience.import_inspect("runs/demo/inspect", "runs/back").trials  # doctest: +SKIP
    """
    from obedience.importers._inspect import InspectImportError
    from obedience.importers._inspect import import_inspect as read_logs

    given = [logs] if isinstance(logs, str | Path) else list(logs)
    paths: list[Path] = []
    for p in map(Path, given):
        if p.is_dir():
            paths.extend(sorted(p.glob("*.eval")))
        elif p.is_file():
            paths.append(p)
        else:
            raise InspectImportError(f"{p}: no such file or directory")
    if not paths:
        raise InspectImportError("no .eval logs given")
    done = read_logs(paths, out)
    return InspectImportResult(Path(out), done["logs"], done["trials"], done["seconds"])


# ------------------------------------------------------------------ probe


def sampled_obedience(run_dir: str | Path, model: str, condition: str) -> dict[str, Any] | None:
    """The reached-max rate of a normal run's trials for this model and condition, if any."""
    try:
        records = summary(run_dir)
    except StoreError:
        return None
    for record in records:
        if record["model"] == model and record["condition"] == condition:
            return {
                "run_dir": str(run_dir),
                "reached_max": record["reached_max"],
                "completed": record["completed"],
                "reached_max_rate": record["reached_max_rate"],
            }
    return None


def _probe_entry(result: ProbeResult, config: RunConfig) -> dict[str, Any]:
    return {
        "probe_id": result.probe_id,
        "created_unix": time.time(),
        "model": result.settings.model,
        "condition": result.settings.condition,
        "k_max": result.settings.k_max,
        "seed": result.settings.seed,
        "on_policy": result.settings.on_policy,
        "p_full_obedience": result.p_full_obedience,
        "config": config.model_dump(mode="json"),
        **{k: v for k, v in result.info.items() if k != "on_policy_trajectories"},
    }


def default_probe_dir(protocol: str) -> Path:
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-probe-{protocol}"


async def probe_model_async(
    model: str = "embedded",
    *,
    protocol: str | None = None,
    condition: str | None = None,
    out: str | Path | None = None,
    k: int = 10,
    on_policy: int = 1,
    seed: int = 0,
    temperature: float | None = None,
    max_tokens: int | None = None,
    base_url: str | None = None,
    chat_template: str | None = None,
    timeout: float | None = None,
    compare: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ProbeRun:
    """P(comply) at decision points along on-policy, forced and control histories.

    Needs a backend that scores continuations (``capabilities.logprobs``: embedded,
    gguf:PATH, or an openai: server returning logprobs). ``out``: a run directory to
    add the probe to (its protocol must match), or a new probe run (default
    ``runs/<stamp>-probe-<protocol>``). ``compare``: a run whose sampled obedience rate
    is shown beside. ``progress(history, point, points)`` as points are measured.
    See ``docs/probe.md``.

    >>> obedience.probe_model("embedded", k=3).result.p_full_obedience  # doctest: +SKIP
    """
    from obedience.backends import (
        BackendError,
        BackendOptions,
        PromptRenderer,
        known_capabilities,
        make_backend,
    )
    from obedience.probe import ProbeSettings, require_scoring, run_probe

    fixed = known_capabilities(model)
    if fixed is not None and not fixed.logprobs:
        raise BackendError(
            f"backend {model!r} exposes no log-probabilities; the probe needs embedded, "
            "gguf:PATH or an openai:MODEL server that returns logprobs"
        )
    if k < 0:
        raise ConfigError(f"--k must be 0 or more, got {k}")
    if on_policy < 0:
        raise ConfigError(f"--on-policy must be 0 or more, got {on_policy}")
    run_dir = Path(out) if out is not None else None
    existing = run_dir is not None and (run_dir / DATABASE).exists()
    manifest: dict[str, Any] | None = None
    if run_dir is not None and existing:
        with RunStore.open(run_dir) as store:
            manifest = store.manifest()
    name = protocol or (manifest or {}).get("config", {}).get("protocol") or "pihlakas2026"
    loaded = load_protocol(name)
    if manifest is not None and manifest.get("protocol", {}).get("sha256") not in (
        None,
        loaded.sha256,
    ):
        raise ProtocolError(
            f"{run_dir} was run with a different protocol file than {name!r}; "
            f"probe it with -p {manifest['protocol'].get('path') or name}"
        )
    cond = condition or loaded.default_conditions[0]
    spec = loaded.condition(cond)
    config = validate_config(
        {
            "models": [model],
            "protocol": name,
            "conditions": [cond],
            "trials": max(1, on_policy),
            "seed": seed,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "base_url": base_url,
            "chat_template": chat_template,
            "timeout": timeout if timeout is not None else 120.0,
        },
        "command line",
    )
    backend = make_backend(
        model,
        BackendOptions(
            base_url=config.base_url,
            chat_template=config.chat_template,
            timeout=config.timeout,
            grammar_dialect=config.grammar_dialect,
        ),
    )
    settings = ProbeSettings(
        model=model,
        condition=cond,
        k_max=k,
        seed=seed,
        on_policy=on_policy,
        temperature=config.temperature_for(spec),
        max_tokens=config.max_tokens_for(model, spec),
    )
    try:
        require_scoring(backend, spec)
        meta = await backend.preflight()
        render = count = None
        if backend.capabilities.renders_prompts and isinstance(backend, PromptRenderer):
            render, count = backend.render, backend.count_tokens
        result = await run_probe(
            backend, spec, settings, render=render, count_tokens=count, progress=progress
        )
    finally:
        await backend.aclose()
    target = run_dir or default_probe_dir(loaded.name)
    for source in (compare, target if existing else None):
        if source is not None and result.sampled is None:
            result.sampled = sampled_obedience(source, model, cond)
    _store_probe(target, existing, result, loaded, config, meta, backend)
    return ProbeRun(result, target)


def _store_probe(
    target: Path,
    existing: bool,
    result: ProbeResult,
    protocol: Protocol,
    config: RunConfig,
    meta: dict[str, Any],
    backend: Backend,
) -> None:
    """Add the probe to a run directory's manifest and probe rows (a new one is a probe run)."""
    from obedience.runner import build_manifest

    store = RunStore.open(target, write=True) if existing else RunStore.create(target)
    with store:
        if existing:
            manifest = store.manifest()
        else:
            model_meta = {**meta, "capabilities": vars(backend.capabilities)}
            manifest = build_manifest(protocol, config, {config.models[0]: model_meta})
            manifest["kind"] = "probe"
        manifest.setdefault("probes", []).append(_probe_entry(result, config))
        store.add_probe_rows(result.store_rows())
        store.write_manifest(manifest)


probe_model = _blocking(probe_model_async)
