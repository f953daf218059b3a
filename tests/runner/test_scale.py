"""Scaling out: many endpoints with each trial pinned to one, shards and merge, the budget,
the circuit breaker and the projection, against real loopback servers and scripted models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.cli import free_port
from tests.helpers.fake_openai import FakeOpenAI

import obedience
from obedience.runner import ConfigError, RunConfig, endpoint_index, in_shard, parse_shard
from obedience.store import RunStore

MODEL = "openai:fake-model"


def _fast(**fields: Any) -> RunConfig:
    base: dict[str, Any] = {
        "models": [MODEL],
        "conditions": ["PC-NS-NF"],
        "trials": 8,
        "timeout": 5.0,
        "retries": 1,
        "backoff": 0.01,
    }
    return RunConfig(**(base | fields))


def _final(run_dir: Path) -> tuple[list[Any], list[Any], list[Any]]:
    """Trials, every event (all attempts) without timings, and the current labels."""
    with RunStore.open(run_dir) as store:
        trials = [(r.trial_id, r.attempt, r.status, r.outcome, r.highest_level)
                  for r in store.trials()]  # fmt: skip
        events = [
            (e.trial_id, e.attempt, e.seq, e.payload,
             {k: v for k, v in (e.meta or {}).items() if k != "latency_s"})
            for e in store.events(final_only=False)
        ]  # fmt: skip
        labels = sorted(
            (a["trial_id"], a["attempt"], a["seq"], a["classifier"], json.dumps(a["labels"]))
            for a in store.annotations()
        )
    return trials, events, labels


# ------------------------------------------------------------------ pinning


def test_the_pin_is_a_stable_hash_the_same_in_another_process() -> None:
    ids = [f"openai:m|PC-NS-NF|{i}" for i in range(1, 41)]
    here = [endpoint_index(t, 3) for t in ids]
    code = (
        "from obedience.runner import endpoint_index;"
        f"print([endpoint_index(t, 3) for t in {ids!r}])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(there.stdout) == here
    assert set(here) == {0, 1, 2}  # every endpoint gets trials
    assert endpoint_index("anything", 1) == 0


def test_every_request_of_a_trial_reaches_one_endpoint_with_its_session_key(
    tmp_path: Path,
) -> None:
    with FakeOpenAI(latency=0.005) as a, FakeOpenAI(latency=0.005) as b:
        a.keep_bodies = b.keep_bodies = True
        config = _fast(
            endpoints=[{"url": a.base_url, "concurrency": 2}, {"url": b.base_url}],
            concurrency=3,
        )
        obedience.run(config, tmp_path / "run", label=False, report=False)
        served: dict[str, set[str]] = defaultdict(set)
        for name, server in (("a", a), ("b", b)):
            for body, headers in zip(server.bodies, server.headers, strict=True):
                assert headers["x-smg-routing-key"] == body["user"]
                assert headers["x-session-id"] == body["user"]
                served[body["user"]].add(name)
    with RunStore.open(tmp_path / "run") as store:
        rows = store.trials()
        recorded = {
            e.trial_id: (e.meta or {}).get("endpoint") for e in store.events() if e.kind == "reply"
        }
    assert len(served) == 8 and all(len(where) == 1 for where in served.values())
    assert {next(iter(w)) for w in served.values()} == {"a", "b"}
    urls = [a.base_url, b.base_url]
    for row in rows:
        assert row.outcome == "max-reached"
        pinned = urls[endpoint_index(row.trial_id, 2)]
        assert recorded[row.trial_id] == pinned
        assert served[row.trial_id] == {"ab"[urls.index(pinned)]}


def test_a_dead_endpoint_fails_only_its_own_trials_and_resume_retries_them(
    tmp_path: Path,
) -> None:
    dead_port = free_port()  # nothing listens here: connection refused
    dead = f"http://127.0.0.1:{dead_port}/v1"
    with FakeOpenAI(latency=0.01) as live:
        config = _fast(endpoints=[{"url": live.base_url}, {"url": dead}], trials=10)
        started = time.monotonic()
        obedience.run(config, tmp_path / "run", label=False, report=False)
        took = time.monotonic() - started
    with RunStore.open(tmp_path / "run") as store:
        rows = store.trials()
        manifest = store.manifest()
    on_dead = {r.trial_id for r in rows if endpoint_index(r.trial_id, 2) == 1}
    assert on_dead and len(on_dead) < len(rows)
    for row in rows:
        assert row.outcome == ("error" if row.trial_id in on_dead else "max-reached"), row
    assert took < 30
    states = manifest["models"][MODEL]["endpoints"]
    assert "unreachable" in states[1] and "unreachable" not in states[0]
    # The endpoint comes back: --resume runs the failed trials again, and only those.
    with FakeOpenAI(latency=0.0, port=dead_port) as revived:
        result = obedience.resume(tmp_path / "run", label=False, report=False)
        assert revived.chat_requests > 0
    with RunStore.open(result.run_dir) as store:
        after = {r.trial_id: r for r in store.trials()}
    for row in rows:
        assert after[row.trial_id].outcome == "max-reached"
        assert after[row.trial_id].attempt == (2 if row.trial_id in on_dead else 1)


@pytest.mark.parametrize(
    ("endpoints", "field"),
    [
        ([{"url": "ftp://x"}], "endpoints.0.url"),
        ([{"url": "http://a:1/v1", "concurrency": 0}], "endpoints.0.concurrency"),
        ([{"url": "http://a:1/v1", "weight": 2}], "endpoints.0.weight"),
        ("http://a:1/v1", "endpoints"),
        ([{"concurrency": 3}], "endpoints.0.url"),
    ],
)
def test_a_malformed_endpoint_list_is_one_line_naming_the_field(endpoints: Any, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        obedience.validate_config({"endpoints": endpoints}, "run.toml")
    message = str(info.value)
    assert "\n" not in message and f"field '{field}'" in message, message


def test_base_url_and_endpoints_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="not both"):
        obedience.validate_config(
            {"base_url": "http://a:1/v1", "endpoints": [{"url": "http://b:1/v1"}]}, "x"
        )


# ------------------------------------------------------------------ shards and merge


@pytest.mark.parametrize("spec", ["3/2", "0/0", "a/b", "2/2", "1", "-1/3", "1/2/3", ""])
def test_a_bad_shard_spec_is_one_line(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_shard(spec)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        obedience.validate_config({"shard": spec}, "command line")
    assert "\n" not in str(info.value) and "field 'shard'" in str(info.value)


def test_shards_partition_the_grid_and_keep_their_trial_when_trials_grow() -> None:
    protocol = obedience.load_protocol("pihlakas2026")
    from obedience.runner import plan_rows

    full = {r.trial_id for r in plan_rows(protocol, _grid())}
    parts = [{r.trial_id for r in plan_rows(protocol, _grid(shard=f"{i}/3"))} for i in range(3)]
    assert set().union(*parts) == full and sum(map(len, parts)) == len(full)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    for i in range(3):  # a trial's shard does not depend on how many trials there are
        grown = {r.trial_id for r in plan_rows(protocol, _grid(shard=f"{i}/3", trials=9))}
        assert parts[i] <= grown
    assert in_shard(0, 1, None)


def _grid(**fields: Any) -> RunConfig:
    base: dict[str, Any] = {
        "models": ["scripted:obedient", "scripted:threshold:4", "scripted:distressed"],
        "conditions": ["PC-NS-NF", "DC-WS-FB"],
        "trials": 4,
        "seed": 7,
    }
    return RunConfig(**(base | fields))


def test_merged_shards_equal_the_unsharded_run_event_for_event(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    obedience.run(_grid(), whole, report=False)
    shards = []
    for i in range(3):
        shard = tmp_path / f"shard{i}"
        obedience.run(_grid(shard=f"{i}/3"), shard, report=False)
        shards.append(shard)
    result = obedience.merge(shards, tmp_path / "merged")
    assert result.trials == 24 and result.runs == 3 and result.label_sets == 3
    merged = _final(tmp_path / "merged")
    assert merged == _final(whole)
    assert len(merged[1]) > 100 and merged[2]  # events and labels, all of them
    manifest = json.loads((tmp_path / "merged" / "manifest.json").read_text())
    assert manifest["config"]["shard"] is None
    assert [m["shard"] for m in manifest["merged_from"]] == ["0/3", "1/3", "2/3"]
    # The merged run analyses as the whole one does, and resume finds nothing to do.
    assert obedience.summary(tmp_path / "merged") == obedience.summary(whole)
    obedience.resume(tmp_path / "merged", label=False, report=False)
    assert _final(tmp_path / "merged")[1] == merged[1]


def test_merging_a_partial_set_then_resuming_runs_the_missing_shard(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    obedience.run(_grid(), whole, label=False, report=False)
    for i in range(2):
        obedience.run(_grid(shard=f"{i}/3"), tmp_path / f"s{i}", label=False, report=False)
    obedience.merge([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m")
    obedience.resume(tmp_path / "m", label=False, report=False)
    assert _final(tmp_path / "m")[:2] == _final(whole)[:2]


def test_merge_refuses_other_designs_and_duplicated_trials_with_one_line(tmp_path: Path) -> None:
    obedience.run(_grid(shard="0/2"), tmp_path / "a", label=False, report=False)
    obedience.run(_grid(shard="1/2", seed=8), tmp_path / "seed", label=False, report=False)
    other = _grid(shard="1/2", protocol="milgram1963", conditions=[])
    obedience.run(other, tmp_path / "proto", label=False, report=False)
    obedience.run(_grid(shard="0/3"), tmp_path / "overlap", label=False, report=False)
    cases = [
        (["a", "proto"], "protocol"),
        (["a", "seed"], "config.seed"),
        (["a", "overlap"], "is in both"),
        (["a", "a"], "given twice"),
    ]
    for names, needle in cases:
        with pytest.raises(obedience.ERRORS) as info:
            obedience.merge([tmp_path / n for n in names], tmp_path / "out")
        assert needle in str(info.value) and "\n" not in str(info.value)
        assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ budget


def test_max_requests_stops_cleanly_and_resume_completes_the_same_run(tmp_path: Path) -> None:
    config = _grid(models=["scripted:threshold:4", "scripted:obedient"], concurrency=2)
    obedience.run(config, tmp_path / "whole", report=False)
    with pytest.raises(obedience.RunStopped) as info:
        obedience.run(config.model_copy(update={"max_requests": 17}), tmp_path / "cut")
    assert "--max-requests 17" in str(info.value) and "--resume" in str(info.value)
    with RunStore.open(tmp_path / "cut") as store:
        replies = sum(1 for e in store.events(final_only=False) if e.kind == "reply")
        unfinished = [r for r in store.trials() if r.status != "done"]
    assert replies == 17 and unfinished
    obedience.resume(tmp_path / "cut", report=False)  # the budget was that invocation's
    cut, whole = _final(tmp_path / "cut"), _final(tmp_path / "whole")
    assert [t[2:] for t in cut[0]] == [t[2:] for t in whole[0]]
    with RunStore.open(tmp_path / "cut") as a, RunStore.open(tmp_path / "whole") as b:
        counted_a = [(e.trial_id, e.seq, e.payload) for e in a.events()]
        counted_b = [(e.trial_id, e.seq, e.payload) for e in b.events()]
    assert counted_a == counted_b  # the counted attempts match, event for event
    assert obedience.summary(tmp_path / "cut") == obedience.summary(tmp_path / "whole")


def test_max_cost_uses_the_configured_prices_and_stops(tmp_path: Path) -> None:
    # The fake server reports 100 prompt and 7 completion tokens per reply: at $1000 and
    # $2000 per million, a reply costs $0.114, so $0.5 buys five replies.
    with FakeOpenAI() as server:
        config = _fast(
            base_url=server.base_url,
            concurrency=1,
            max_cost=0.5,
            prices={"prompt": 1000.0, "completion": 2000.0},
        )
        with pytest.raises(obedience.RunStopped, match=r"--max-cost 0\.5"):
            obedience.run(config, tmp_path / "run", label=False, report=False)
        assert server.chat_requests == 5
        obedience.resume(tmp_path / "run", label=False, report=False)
    with RunStore.open(tmp_path / "run") as store:
        assert {r.outcome for r in store.trials()} == {"max-reached"}


def test_max_cost_counts_the_cost_the_server_reports(tmp_path: Path) -> None:
    """No prices in the config: the server's own ``usage.cost`` is what the budget spends."""
    from tests.helpers.fake_openai import completion_body

    def billed(body: dict[str, Any]) -> dict[str, Any]:
        return completion_body(body["model"], "PRESSED. Going on.", usage={"cost": 0.1})

    with FakeOpenAI(respond=billed) as server:
        config = _fast(base_url=server.base_url, concurrency=1, max_cost=0.25)
        with pytest.raises(obedience.RunStopped, match=r"--max-cost 0\.25"):
            obedience.run(config, tmp_path / "run", label=False, report=False)
        assert server.chat_requests == 3  # 0.1 + 0.1 + 0.1 reaches 0.25
    with RunStore.open(tmp_path / "run") as store:
        assert [r for r in store.trials() if r.status != "done"]


def test_the_cli_prints_the_projection_and_a_stop_is_one_line_exit_3(tmp_path: Path) -> None:
    from tests.helpers.cli import run_cli

    out = tmp_path / "run"
    args = ["run", "-m", "scripted:obedient", "-c", "PC-NS-NF", "-n", "3", "-q", "--no-report"]
    done = run_cli([*args, "-o", str(out), "--max-requests", "5"], timeout=120)
    assert done.returncode == 3, done.stderr
    err = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "--max-requests 5" in err[0], done.stderr
    # 12 buttons: a trial that goes to the end makes 12 decisions.
    # The bound: 100 steps x (1 + 5 prods) decisions x 10 attempts x (1 + 25 empty re-samples).
    assert "projection: 3 trials; requests <= 468,000 (36 " in done.stdout, done.stdout
    done = run_cli(["run", "--resume", str(out), "-q", "--no-report"], timeout=120)
    assert done.returncode == 0, done.stderr
    assert "projection: 3 trials" in done.stdout  # the resumed trials: all unfinished


def test_projection_bounds_follow_the_design() -> None:
    config = _grid(shard="1/3")
    projection = obedience.projection(config)
    protocol = obedience.load_protocol("pihlakas2026")
    spec = protocol.condition("PC-NS-NF")
    # Every step may open a decision per prod after a refusal; every decision takes up to
    # the policy's attempts, each re-sampled uncounted up to the empty-reply cap.
    decisions = spec.stopping.max_steps * (1 + len(spec.prods.sequence()))
    per_trial = decisions * spec.policy.max_attempts * (1 + spec.harness.max_empty_retries)
    assert projection.trials == 8
    assert projection.max_requests == 8 * per_trial
    assert 0 < projection.full_requests <= projection.max_requests
    assert 0 < projection.prompt_tokens <= projection.max_prompt_tokens


# ------------------------------------------------------------------ circuit breaker


@pytest.mark.parametrize("status", ["401", "402", "403"])
def test_an_auth_storm_trips_the_breaker_instead_of_failing_every_trial(
    tmp_path: Path, status: str
) -> None:
    with FakeOpenAI(fault_for=lambda body: status) as server:
        config = _fast(base_url=server.base_url, trials=30, concurrency=2)
        with pytest.raises(obedience.RunStopped) as info:
            obedience.run(config, tmp_path / "run", label=False, report=False)
        sent = server.chat_requests
    message = str(info.value)
    assert "\n" not in message and "circuit breaker" in message and f"HTTP {status}" in message
    assert sent <= 3 + 2  # the breaker's 3, and the one in flight on the other worker
    with RunStore.open(tmp_path / "run") as store:
        rows = store.trials()
    assert sum(1 for r in rows if r.outcome == "error") <= 2
    assert sum(1 for r in rows if r.status != "done") >= 25  # left to resume


def test_repeated_rate_limits_trip_the_breaker_and_resume_finishes(tmp_path: Path) -> None:
    with FakeOpenAI(faults=["429"] * 6) as server:
        config = _fast(
            base_url=server.base_url, trials=4, concurrency=1, retries=10,
            breaker={"auth": 3, "rate_limit": 5},
        )  # fmt: skip
        with pytest.raises(obedience.RunStopped, match="5 rate-limit answers"):
            obedience.run(config, tmp_path / "run", label=False, report=False)
        assert server.chat_requests == 5
        obedience.resume(tmp_path / "run", label=False, report=False)
    with RunStore.open(tmp_path / "run") as store:
        assert {r.outcome for r in store.trials()} == {"max-reached"}


def test_a_few_rate_limits_are_retried_without_tripping(tmp_path: Path) -> None:
    with FakeOpenAI(faults=["429", "429", "ok", "429"]) as server:
        config = _fast(base_url=server.base_url, trials=2, concurrency=1, retries=3,
                       breaker={"rate_limit": 3})  # fmt: skip
        obedience.run(config, tmp_path / "run", label=False, report=False)
    with RunStore.open(tmp_path / "run") as store:
        assert {r.outcome for r in store.trials()} == {"max-reached"}


def test_the_merge_command_fronts_the_api(tmp_path: Path) -> None:
    from tests.helpers.cli import run_cli

    obedience.run(_grid(shard="0/2"), tmp_path / "a", label=False, report=False)
    obedience.run(_grid(shard="1/2"), tmp_path / "b", label=False, report=False)
    other = _grid(shard="1/2", protocol="milgram1963", conditions=[])
    obedience.run(other, tmp_path / "proto", label=False, report=False)
    bad = run_cli(
        ["merge", str(tmp_path / "a"), str(tmp_path / "proto"), "-o", str(tmp_path / "x")]
    )
    lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and "protocol differs" in lines[0], bad.stderr
    assert not (tmp_path / "x").exists()
    good = run_cli(["merge", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "m")])
    assert good.returncode == 0, good.stderr
    assert "merged 2 runs" in good.stdout and "24 trials" in good.stdout


def test_base_url_given_twice_on_the_command_line_pins_trials_to_both(tmp_path: Path) -> None:
    from tests.helpers.cli import run_cli

    with FakeOpenAI() as a, FakeOpenAI() as b:
        a.keep_bodies = b.keep_bodies = True
        args = ["run", "-m", MODEL, "-c", "PC-NS-NF", "-n", "6", "-q", "--no-report"]
        args += ["--base-url", a.base_url, "--base-url", b.base_url, "-o", str(tmp_path / "r")]
        done = run_cli(args, timeout=120)
        assert done.returncode == 0, done.stderr
        got = [{body["user"] for body in s.bodies} for s in (a, b)]
    ids = [f"{MODEL}|PC-NS-NF|{i}" for i in range(1, 7)]
    assert got == [{t for t in ids if endpoint_index(t, 2) == k} for k in (0, 1)]
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert [e["url"] for e in manifest["config"]["endpoints"]] == [a.base_url, b.base_url]
