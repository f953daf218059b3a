"""One run in several processes (``workers``): every core drives trials.

A single runner process spends most of its CPU per decision on the HTTP client, the
engine and the store; at thousands of trials in flight its one event loop is the limit,
and the replies that arrive together wait for each other. With ``workers = N`` the
parent plans the trials, deals the unfinished ones round N spawned processes (trial
``i`` of the to-do list to worker ``i mod N``), and each worker runs its share with its
own event loop, HTTP connections and backends, writing to the same store: SQLite in WAL
mode takes one commit at a time, and each worker commits once per turn of its loop.

What is shared out: the trials in flight per endpoint (the N parts add up to the
concurrency, so N is at most the concurrency), and a ``max_requests`` (N at most that) or
``max_cost`` budget; the circuit breaker
trips in every worker that sees the storm. Transcripts do not depend on which worker ran
a trial (its seeds are its own), so a run with workers equals one without, event for
event. The parent holds the directory's writer lock for the run; a worker notices a
parent that died (its pipe closes) and stops at once, leaving its trials to ``resume``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from obedience.backends import BackendError
from obedience.protocols import Protocol, load_protocol
from obedience.runner._config import RunConfig
from obedience.runner._runner import (
    Progress,
    Runner,
    RunStopped,
    make_backends,
    plan_rows,
    todo_rows,
)
from obedience.store import RunStore, StoreError, StoreFullError, TrialRow

# How often (seconds) a worker reports its counters to the parent, at most.
PROGRESS_EVERY = 0.1
_COUNTERS = ("total", "done", "decisions", "errors", "transport_retries")
# Exceptions a worker reports by name, raised again as themselves in the parent.
_RAISED_AGAIN: dict[str, type[Exception]] = {
    "StoreFullError": StoreFullError,
    "StoreError": StoreError,
    "RunStopped": RunStopped,
    "BackendError": BackendError,
}


class WorkerError(RuntimeError):
    """A worker process failed in a way that is not a store, backend or budget error
    (it crashed, was killed, or raised something unexpected). One line."""


def deal(rows: Sequence[TrialRow], count: int) -> list[list[str]]:
    """The trial ids of each worker: row ``i`` to worker ``i mod count``, empty shares dropped."""
    shares = [[r.trial_id for r in rows[i::count]] for i in range(count)]
    return [s for s in shares if s]


def worker_count(config: RunConfig) -> int:
    """``workers``, but no more than a budget of requests or a concurrency can share out:
    every worker gets at least one request and one trial in flight per endpoint."""
    limits = [config.workers, config.max_requests, config.concurrency]
    limits += [e.concurrency for e in config.endpoints]
    return max(1, min(n for n in limits if n is not None))


def worker_config(config: RunConfig, index: int, count: int) -> RunConfig:
    """Worker ``index``'s config: its share of the budgets (requests dealt as evenly as
    integers allow, cost split equally), one worker of its own."""
    update: dict[str, Any] = {"workers": 1}
    if config.max_requests is not None:
        base, extra = divmod(config.max_requests, count)
        update["max_requests"] = base + (1 if index < extra else 0)
    if config.max_cost is not None:
        update["max_cost"] = config.max_cost / count
    return config.model_copy(update=update)


async def run_workers(
    store: RunStore, protocol: Protocol, config: RunConfig, progress: Progress
) -> None:
    """Run ``config``'s unfinished trials in ``config.workers`` processes; return when all
    are done, or raise the first worker's error (the others are stopped first)."""
    store.plan_trials(plan_rows(protocol, config))
    todo = todo_rows(store)
    progress.total = len(store.trials())
    progress.bump(done=progress.total - len(todo))
    shares = deal(todo, worker_count(config))
    if not shares:
        return
    pool = _Pool(store.run_dir, config, shares, progress)
    try:
        await pool.wait()
    finally:
        pool.stop()
    pool.raise_first_error()


# What a worker needs, imported once by the fork server rather than by every worker.
_PRELOAD = ["obedience.runner._workers", "obedience.backends._openai"]


def _context() -> Any:
    """Workers start from a fork server that has imported the library once (a fresh
    process per worker, forked from one without threads or open stores, so no lock of
    this process is inherited); ``spawn`` where there is no fork server (Windows)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


class _Pool:
    """The worker processes of one run, their pipes, and what they reported."""

    def __init__(
        self, run_dir: Path, config: RunConfig, shares: list[list[str]], progress: Progress
    ) -> None:
        context = _context()
        self.progress = progress
        self.base = {name: getattr(progress, name) for name in _COUNTERS}
        self.latest: list[dict[str, int]] = [dict.fromkeys(_COUNTERS, 0) for _ in shares]
        self.errors: list[tuple[int, str, str]] = []
        self.heard = [False] * len(shares)
        self.procs: list[Any] = []
        self.reports: list[Connection] = []
        self.lifelines: list[Connection] = []
        count = len(shares)
        for index, ids in enumerate(shares):
            report_r, report_w = context.Pipe(duplex=False)
            life_r, life_w = context.Pipe(duplex=False)
            proc = context.Process(
                target=worker_main,
                args=(
                    str(run_dir),
                    worker_config(config, index, count).model_dump_json(),
                    ids,
                    (index, count),
                    dict(os.environ),  # this run's (the fork server keeps its first one's)
                    report_w,
                    life_r,
                ),
                name=f"obedience-worker-{index}",
                daemon=True,
            )
            proc.start()
            report_w.close()  # the parent keeps only its own ends
            life_r.close()
            self.procs.append(proc)
            self.reports.append(report_r)
            self.lifelines.append(life_w)

    async def wait(self) -> None:
        """Until every worker has ended, or one has failed (then the others are stopped)."""
        loop = asyncio.get_running_loop()
        closed = {loop.create_future(): index for index in range(len(self.procs))}
        for ended, index in closed.items():
            loop.add_reader(self.reports[index].fileno(), self._read, index, ended)
        pending = set(closed)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for ended in done:
                    index = closed[ended]
                    await loop.run_in_executor(None, self.procs[index].join)
                    self._check_exit(index)
                if any(kind != "RunStopped" for _, kind, _ in self.errors):
                    return  # a real failure: ``stop`` ends the others, then it is raised
        finally:
            for index in closed.values():
                loop.remove_reader(self.reports[index].fileno())

    def _check_exit(self, index: int) -> None:
        proc = self.procs[index]
        if proc.exitcode == 0 or any(e[0] == index for e in self.errors):
            return
        text = f"it ended with exit code {proc.exitcode}"
        if not self.heard[index]:
            # Silent from the start: a worker imports the program's main module first,
            # and a script that runs unguarded starts itself again there.
            text += (
                " before it reported anything (a script that runs workers must call"
                " obedience from under `if __name__ == '__main__':`)"
            )
        self.errors.append((index, "WorkerError", text))

    def _read(self, index: int, ended: asyncio.Future[None]) -> None:
        conn = self.reports[index]
        try:
            message = conn.recv()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(conn.fileno())
            if not ended.done():
                ended.set_result(None)
            return
        self.heard[index] = True
        if message[0] == "progress":
            self.latest[index] = message[1]
            self._publish()
        elif message[0] == "error":
            self.errors.append((index, message[1], message[2]))
        elif message[0] == "usage":
            self.progress.worker_cpu_s += message[1]
            self.progress.worker_peak_rss_mb += message[2]

    def _publish(self) -> None:
        for name in _COUNTERS:
            if name == "total":
                continue
            value = self.base[name] + sum(w[name] for w in self.latest)
            setattr(self.progress, name, value)
        self.progress.bump()

    def stop(self) -> None:
        """End every worker still running (a failure elsewhere, or the parent is stopping)."""
        for life in self.lifelines:
            life.close()  # a worker reads its lifeline's end: it stops at once
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=10)
        for conn in self.reports:
            conn.close()

    def raise_first_error(self) -> None:
        if not self.errors:
            return
        failures = [e for e in self.errors if e[1] != "RunStopped"]
        index, kind, text = (failures or self.errors)[0]
        cls = _RAISED_AGAIN.get(kind)
        if cls is RunStopped:  # the budget in its message is this worker's share
            raise RunStopped(f"worker {index + 1} of {len(self.procs)}: {text}")
        if cls is not None:
            raise cls(text)
        what = text if kind == "WorkerError" else f"{kind}: {text}"
        raise WorkerError(f"worker {index + 1} of {len(self.procs)} failed: {what}")


def worker_main(
    run_dir: str,
    config_json: str,
    trial_ids: list[str],
    share: tuple[int, int],
    environment: dict[str, str],
    report: Connection,
    lifeline: Connection,
) -> None:
    """The body of one worker process (spawned): run ``trial_ids`` into the run's store."""
    # The parent's environment now (API keys, base URLs), not the fork server's, which is
    # that of the parent when its first workers started.
    os.environ.clear()
    os.environ.update(environment)
    # Ctrl-C reaches every process of the terminal's group: the parent alone handles it
    # (it closes the lifelines, which ends the workers without a traceback of their own).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(lifeline,), daemon=True).start()
    try:
        config = RunConfig.model_validate_json(config_json)
        asyncio.run(_run_share(Path(run_dir), config, frozenset(trial_ids), share, report))
    except Exception as exc:  # reported by name, raised again by the parent
        report.send(("error", type(exc).__name__, " ".join(str(exc).split())[:2000]))
        _send_usage(report)
        report.close()
        raise SystemExit(1) from None
    _send_usage(report)
    report.close()


def _send_usage(report: Connection) -> None:
    """This worker's CPU seconds and peak memory (MB; 0 where it cannot be read)."""
    try:
        import resource  # POSIX only
    except ImportError:
        peak_mb = 0.0
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mb = peak / (1024 * 1024 if sys.platform == "darwin" else 1024)  # bytes, or KiB
    report.send(("usage", time.process_time(), peak_mb))


def _watch_parent(lifeline: Connection) -> None:
    """Stop this worker at once when the parent closes the lifeline or dies."""
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv()
    os._exit(1)  # unfinished trials stay 'running': ``resume`` runs them again


async def _run_share(
    run_dir: Path,
    config: RunConfig,
    trial_ids: frozenset[str],
    share: tuple[int, int],
    report: Connection,
) -> None:
    protocol = load_protocol(config.protocol)
    last = [0.0]
    loop = asyncio.get_running_loop()

    def send(progress: Progress, force: bool = False) -> None:
        now = loop.time()
        if force or now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            report.send(("progress", {name: getattr(progress, name) for name in _COUNTERS}))

    progress = Progress(on_change=send)
    backends = make_backends(config)
    try:
        with RunStore.open_worker(run_dir) as store:
            runner = Runner(
                store, protocol, config, backends, progress, only=trial_ids, share=share
            )
            try:
                await runner.run()
            finally:
                send(progress, force=True)
    finally:
        for value in backends.values():
            for backend in value if isinstance(value, list) else [value]:
                await backend.aclose()
