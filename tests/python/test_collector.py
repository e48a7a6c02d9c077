"""End to end against the real local collector: what arrives is what the core promises."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from telemetry_core import Client, Settings, TelemetryEvent

from conftest import Collector


def client_for(collector: Collector, home: Path, **kw: object) -> Client:
    return Client(
        Settings(  # type: ignore[arg-type]
            product="chromadb",
            version="1.5.9",
            endpoint=collector.url,
            api_key="phc_e2e",
            working_dir=home,
            **kw,
        )
    )


def test_events_arrive_anonymized_with_exact_sums(collector: Collector, home: Path) -> None:
    with client_for(collector, home) as client:
        client.capture("client_start", is_persistent=False)
        for _ in range(7):
            client.capture(
                TelemetryEvent(
                    "collection_add",
                    {"collection_uuid": "2b1f-secret-uuid", "add_amount": 3},
                    kinds={"collection_uuid": "hashed"},
                    batch_key="2b1f:add",
                    max_batch_size=3,
                    summed=["add_amount"],
                )
            )
    summary = collector.wait_for(4)
    adds = summary["by_event"]["collection_add"]
    assert adds["batch_size_total"] == 7
    events = collector.events("collection_add")
    assert sum(e["properties"]["add_amount"] for e in events) == 21
    assert all(e["properties"]["collection_uuid"] != "2b1f-secret-uuid" for e in events)
    assert all(e["properties"]["product"] == "chromadb" for e in events)
    # The chroma profile's id, reused by Chroma itself: plain UUID text.
    id_file = home / ".cache" / "chroma" / "telemetry_user_id"
    assert {e["distinct_id"] for e in events} == {id_file.read_text().strip()}


def test_many_threads_capture_concurrently_and_nothing_is_lost(
    collector: Collector, home: Path
) -> None:
    client = client_for(collector, home, queue_capacity=100_000)
    threads, per_thread = 8, 500

    def work(t: int) -> None:
        for i in range(per_thread):
            client.capture("thread_event", thread=t, i=i)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stats = client.shutdown(30)
    assert (stats.captured, stats.sent) == (threads * per_thread, threads * per_thread)
    assert collector.wait_for(threads * per_thread)["events"] == threads * per_thread


def test_flush_releases_the_gil(home: Path) -> None:
    """While flush waits on an endpoint that never answers, other Python threads run."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    client = Client(
        Settings(
            product="acme",
            endpoint=f"http://127.0.0.1:{port}",
            api_key="k",
            working_dir=home,
            request_timeout=5,
            max_retries=0,
        )
    )
    client.capture("stuck")
    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    spinner = threading.Thread(target=spin)
    spinner.start()
    start = time.monotonic()
    assert client.flush(0.5) is False  # the request is still hanging
    waited = time.monotonic() - start
    stop.set()
    spinner.join()
    assert 0.4 <= waited < 2
    assert ticks > 50, "another Python thread could not run while flush waited"
    stats = client.shutdown(0.2)
    assert stats.dropped_shutdown == 1
    silent.close()


def test_delivery_failure_is_logged_once_never_raised(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Bound and never listening: connections are refused, and the port stays ours (closed,
    # the OS could hand it to another process's server meanwhile).
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    client = Client(
        Settings(
            product="acme",
            endpoint=f"http://127.0.0.1:{port}",
            api_key="k",
            working_dir=home,
            max_retries=1,
            backoff_base=0.01,
        )
    )
    with caplog.at_level(logging.INFO, logger="telemetry_core"):
        for i in range(3):
            client.capture("lost", i=i)
            client.flush(5)
        stats = client.shutdown(2)
    assert stats.dropped_failed == 3
    assert stats.sent == 0
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]
    assert failures[0].name.startswith("telemetry_core")
    assert failures[0].levelno == logging.WARNING
    # Logged by the host's thread on its next call: the worker never runs Python code
    # (it would compete for the GIL, and could be caught holding it at exit).
    assert failures[0].thread == threading.get_ident()
    closed.close()


def test_flush_is_false_when_events_were_dropped_and_the_warning_says_so(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Bound and never listening, and held for the whole test: connections are refused,
    # and no parallel test can be handed the port meanwhile.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    try:
        port = closed.getsockname()[1]
        client = Client(
            Settings(
                product="acme",
                endpoint=f"http://127.0.0.1:{port}",
                api_key="k",
                working_dir=home,
                max_retries=1,
                backoff_base=0.01,
            )
        )
        with caplog.at_level(logging.INFO, logger="telemetry_core"):
            for i in range(3):
                client.capture("lost", i=i)
            delivered = client.flush()
            stats = client.stats
        assert delivered is False
        assert (stats.captured, stats.sent, stats.dropped_failed, stats.queued) == (3, 0, 3, 0)
        assert stats.retries >= 1  # it did retry, quietly, before giving up
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
        (warning,) = warnings
        message = warning.getMessage()
        assert warning.name.startswith("telemetry_core")
        assert re.search(r"dropped [1-3] events?", message), message
        assert "retrying" not in message
        assert f"127.0.0.1:{port}" in message

        # A flush answers for what was captured since the previous one: nothing lost now.
        assert client.flush() is True
        client.capture("lost_again")
        assert client.flush() is False
        assert client.stats.dropped_failed == 4
        client.shutdown(2)
    finally:
        closed.close()
