"""Every request of a trial reaches one server: two real llama-cpp-python servers on
loopback, each behind a small recording proxy, reached directly (the runner pins each
trial to one endpoint) and through a real sglang-router with ``--policy manual`` (which
keeps every request with the same ``x-smg-routing-key`` on one worker).

Kept short with the budget: each run stops cleanly after a dozen requests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.cli import cli_env, free_port, wait_http

import obedience
from obedience.backends import embedded_chat_model_path
from obedience.runner import endpoint_index
from obedience.store import RunStore

pytestmark = pytest.mark.slow

REQUESTS = 12


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=log.open("wb"),
        env=cli_env(),
    )  # fmt: skip


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], list[Path]]]:
    """Two llama-cpp-python servers, each behind a recording proxy: (proxy URLs, logs)."""
    work = tmp_path_factory.mktemp("workers")
    model = str(embedded_chat_model_path())
    procs: list[subprocess.Popen[bytes]] = []
    urls, logs = [], []
    try:
        for name in ("a", "b"):
            port, proxy_port = free_port(), free_port()
            server = ["tests.helpers.llama_server", "--model", model, "--host", "127.0.0.1"]
            server += ["--port", str(port), "--n_ctx", "4096"]
            procs.append(_start(server, work / f"server-{name}.log"))
            log = work / f"requests-{name}.jsonl"
            log.touch()
            proxy = ["tests.helpers.recording_proxy", "--port", str(proxy_port)]
            proxy += ["--upstream", f"http://127.0.0.1:{port}", "--log", str(log)]
            procs.append(_start(proxy, work / f"proxy-{name}.log"))
            wait_http(f"http://127.0.0.1:{port}/v1/models", timeout=180, proc=procs[-2])
            wait_http(f"http://127.0.0.1:{proxy_port}/health", timeout=30, proc=procs[-1])
            urls.append(f"http://127.0.0.1:{proxy_port}")
            logs.append(log)
        yield urls, logs
    finally:
        _stop(procs)


def _chat_requests(logs: list[Path]) -> list[list[dict[str, Any]]]:
    out = []
    for log in logs:
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        out.append([r for r in rows if r["path"].endswith("/chat/completions")])
    return out


def _run_briefly(config: obedience.RunConfig, run_dir: Path) -> int:
    """Run until the budget stops it; returns the requests the run recorded."""
    with pytest.raises(obedience.RunStopped, match="--max-requests"):
        obedience.run(config, run_dir, label=False, report=False)
    with RunStore.open(run_dir) as store:
        return sum(1 for e in store.events(final_only=False) if e.kind == "reply")


def _servers_by_trial(per_server: list[list[dict[str, Any]]], key: str) -> dict[str, set[int]]:
    seen: dict[str, set[int]] = defaultdict(set)
    for index, rows in enumerate(per_server):
        for row in rows:
            seen[row[key]].add(index)
    return seen


def test_pinned_endpoints_keep_every_request_of_a_trial_on_one_server(
    tmp_path: Path, workers: tuple[list[str], list[Path]]
) -> None:
    urls, logs = workers
    before = [len(r) for r in _chat_requests(logs)]
    model = f"openai:{embedded_chat_model_path()}"
    # Enough trials that both endpoints get some (trial ids hold the model's path).
    trials = next(
        n
        for n in range(4, 64)
        if {endpoint_index(f"{model}|PC-NS-NF|{i}", 2) for i in range(1, n)} == {0, 1}
    )
    config = obedience.RunConfig(
        models=[model], conditions=["PC-NS-NF"], trials=trials, max_tokens=4,
        endpoints=[{"url": f"{u}/v1", "concurrency": 2} for u in urls],
        max_requests=REQUESTS, timeout=120, seed=3,
    )  # fmt: skip
    recorded = _run_briefly(config, tmp_path / "run")
    per_server = [rows[n:] for rows, n in zip(_chat_requests(logs), before, strict=True)]
    assert sum(map(len, per_server)) == recorded == REQUESTS
    where = _servers_by_trial(per_server, "user")
    assert len(where) >= 2
    for trial, servers in where.items():
        assert servers == {endpoint_index(trial, 2)}, (trial, servers)
    assert all(per_server), "both servers served trials"


def test_sglang_router_manual_policy_keeps_every_request_of_a_trial_on_one_worker(
    tmp_path: Path, workers: tuple[list[str], list[Path]]
) -> None:
    smg = shutil.which("smg", path=str(Path(sys.executable).parent)) or shutil.which("smg")
    if smg is None:
        pytest.skip("sglang-router is not installed (pip install sglang-router)")
    urls, logs = workers
    before = [len(r) for r in _chat_requests(logs)]
    port = free_port()
    router = subprocess.Popen(
        [smg, "launch", "--host", "127.0.0.1", "--port", str(port), "--policy", "manual",
         "--assignment-mode", "min_group", "--worker-urls", *urls],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "router.log").open("wb"),
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", timeout=60, proc=router)
        # The router lists the workers' model under the name it found for it.
        with __import__("urllib.request").request.urlopen(
            f"http://127.0.0.1:{port}/v1/models", timeout=10
        ) as resp:
            served = json.load(resp)["data"][0]["id"]
        config = obedience.RunConfig(
            models=[f"openai:{served}"], conditions=["PC-NS-NF"], trials=4, max_tokens=4,
            base_url=f"http://127.0.0.1:{port}/v1", concurrency=4,
            max_requests=REQUESTS, timeout=120, seed=4,
        )  # fmt: skip
        recorded = _run_briefly(config, tmp_path / "run")
    finally:
        _stop([router])
    per_server = [rows[n:] for rows, n in zip(_chat_requests(logs), before, strict=True)]
    assert sum(map(len, per_server)) == recorded == REQUESTS
    where = _servers_by_trial(per_server, "routing_key")
    assert len(where) == 4 and None not in where
    assert all(len(servers) == 1 for servers in where.values()), where
    assert {next(iter(s)) for s in where.values()} == {0, 1}  # min_group: both workers
