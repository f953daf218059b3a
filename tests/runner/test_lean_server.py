"""The benchmark's lean fake server: it serves the latency asked for and says how much.

``benchmarks/serving.py`` divides by the ideal rate (in flight / latency), so the server
must not add latency of its own; it aims its timers early by their measured lateness and
reports the latency it served. These checks are about that bookkeeping, with bounds far
too loose to be a speed target.
"""

from __future__ import annotations

import json
import urllib.request

from tests.helpers.fake_openai import FakeOpenAI


def _post(url: str) -> dict[str, object]:
    body = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "x"}]})
    request = urllib.request.Request(
        url + "/chat/completions",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        data: dict[str, object] = json.loads(reply.read())
    return data


def test_lean_server_counts_and_reports_the_latency_it_served() -> None:
    with FakeOpenAI(latency=0.02, lean=True) as server:
        replies = [_post(server.base_url) for _ in range(12)]
        assert all(r["choices"] for r in replies)  # type: ignore[index]
        served = server.served_latency_s / server.chat_requests
    assert server.chat_requests == 12
    # Never more than a few milliseconds early or late on average (the aim moves by a
    # twentieth of each error, and its correction is capped at 5 ms).
    assert 0.010 < served < 0.040
    assert 0.0 <= server._lateness <= 0.005


def test_a_server_that_is_not_lean_keeps_plain_sleeps() -> None:
    with FakeOpenAI(latency=0.01) as server:
        _post(server.base_url)
    assert server.served_latency_s == 0.0  # only the lean path aims early
