"""Traces end to end: spans made through telemetry_core.opentelemetry (and a client's
tracer), exported by the core over OTLP to the real otlp-receiver (crates/otlp-receiver),
which decodes them with the official opentelemetry-proto definitions; what it received is
compared with what the code did. Faults and exits run in child processes."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from telemetry_core import Client, Settings
from telemetry_core import opentelemetry as otel
from telemetry_core.opentelemetry import (
    OpenTelemetryGranularity,
    add_attributes_to_current_span,
    extract,
    get_current_span,
    inject,
    start_span,
    trace_method,
)

from conftest import Receiver

OPERATION = OpenTelemetryGranularity.OPERATION
SEGMENT = OpenTelemetryGranularity.OPERATION_AND_SEGMENT
ALL = OpenTelemetryGranularity.ALL
NONE = OpenTelemetryGranularity.NONE


@pytest.fixture(autouse=True)
def no_default_tracer() -> Iterator[None]:
    """Every test starts and ends with no default tracer (it is process-wide state)."""
    otel.set_tracer(None)
    yield
    otel.set_tracer(None)


def tracing(
    receiver: Receiver,
    granularity: object = "all",
    protocol: str = "http/protobuf",
    **settings: Any,
) -> Client:
    """A client that only traces, to `receiver`, becoming the default tracer."""
    endpoint = receiver.grpc_url if protocol == "grpc" else receiver.url
    fields: dict[str, Any] = {
        "product": "acme",
        "version": "1.2.3",
        "sink": "memory",
        "anonymized_telemetry": False,
        "environment": {},
        "otel_collection_endpoint": endpoint,
        "otel_protocol": protocol,
        "otel_granularity": granularity,
    }
    fields.update(settings)
    return Client(Settings(**fields))


def exported(client: Client, receiver: Receiver, count: int) -> dict[str, dict[str, Any]]:
    """Flushes and returns the received spans by name (names are unique in these tests)."""
    assert client.flush_spans(10), client.span_stats()
    spans = receiver.wait_for(count)
    assert len(spans) == count, [s["name"] for s in spans]
    by_name = {s["name"]: s for s in spans}
    assert len(by_name) == count, "span names repeat"
    return by_name


# -- names, parents, attributes, resource, headers ------------------------------------------


def test_nested_spans_attributes_resource_and_headers(receiver: Receiver) -> None:
    client = tracing(receiver, otel_collection_headers={"x-honeycomb-team": "abc"})
    assert client.tracing
    assert otel.get_tracer() is client

    @trace_method("collection.add", OPERATION, {"collection": "docs", "static": True})
    def add(ids: list[str]) -> int:
        add_attributes_to_current_span(
            {"ids_count": len(ids), "ratio": 0.5, "tenant": None, "tags": ["a", "b"]}
        )
        with start_span("segment.write", SEGMENT, {"rows": [1, 2, 3]}) as span:
            span.set_attribute("flags", (True, False))
            span.set_attribute("big", 2**70)
            span.set_attribute("path", Path("/x"))
            span.add_event("flushed", {"bytes": 10})
            helper()
        return len(ids)

    @trace_method("helper", ALL)
    def helper() -> None:
        assert get_current_span() is not None

    assert add(["a", "b"]) == 2
    spans = exported(client, receiver, 3)
    outer, inner, leaf = spans["collection.add"], spans["segment.write"], spans["helper"]
    assert outer["parent_span_id"] == ""
    assert inner["parent_span_id"] == outer["span_id"]
    assert leaf["parent_span_id"] == inner["span_id"]
    assert {outer["trace_id"], inner["trace_id"], leaf["trace_id"]} == {outer["trace_id"]}
    assert outer["kind"] == "internal"
    assert outer["attributes"] == {
        "collection": "docs",
        "static": True,
        "ids_count": 2,
        "ratio": 0.5,
        "tags": ["a", "b"],
    }
    assert inner["attributes"] == {
        "rows": [1, 2, 3],
        "flags": [True, False],
        "big": str(2**70),
        "path": "/x",
    }
    assert [(e["name"], e["attributes"]) for e in inner["events"]] == [("flushed", {"bytes": 10})]
    assert outer["start_time_unix_nano"] <= inner["start_time_unix_nano"]
    assert inner["end_time_unix_nano"] <= outer["end_time_unix_nano"]
    for s in spans.values():
        assert s["resource"]["service.name"] == "acme"
        assert s["resource"]["service.version"] == "1.2.3"
        assert s["resource"]["telemetry.sdk.language"] == "python"
        assert s["headers"]["x-honeycomb-team"] == "abc"
        assert s["protocol"] == "http/protobuf"
        assert s["gzip"]
        assert s["scope_name"] == "telemetry-core"
        assert s["status"]["code"] == "unset"
    stats = client.span_stats()
    assert (stats["recorded"], stats["exported"], stats["queued"]) == (3, 3, 0)


@pytest.mark.parametrize("protocol", ["http/json", "grpc"])
def test_other_protocols(receiver: Receiver, protocol: str) -> None:
    client = tracing(receiver, protocol=protocol, chroma_otel_collection_headers={"k": "v"})
    with start_span("outer", OPERATION), start_span("inner", OPERATION):
        pass
    spans = exported(client, receiver, 2)
    assert spans["inner"]["parent_span_id"] == spans["outer"]["span_id"]
    assert {s["protocol"] for s in spans.values()} == {protocol}
    assert spans["inner"]["headers"]["k"] == "v"


def test_chromas_settings_and_variables(receiver: Receiver) -> None:
    # Chroma's four variables, as its operators set them (through the environment map).
    env = {
        "CHROMA_OTEL_COLLECTION_ENDPOINT": receiver.grpc_url,
        "CHROMA_OTEL_SERVICE_NAME": "my-chroma",
        "CHROMA_OTEL_COLLECTION_HEADERS": '{"x-honeycomb-team": "abc"}',
        "CHROMA_OTEL_GRANULARITY": "operation_and_segment",
    }
    client = Client(Settings(product="chromadb", sink="memory", environment=env))
    config = client.trace_config()
    assert (config["protocol"], config["level"], config["headers"]) == (
        "grpc",
        2,
        ["x-honeycomb-team"],
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(start_span("FastAPI.add", OPERATION))
        stack.enter_context(start_span("SegmentAPI._add", SEGMENT))
        stack.enter_context(start_span("fine", ALL))
    spans = exported(client, receiver, 2)
    assert spans["FastAPI.add"]["resource"]["service.name"] == "my-chroma"
    assert spans["FastAPI.add"]["headers"]["x-honeycomb-team"] == "abc"
    # Settings in code beat the variables.
    coded = Client(
        Settings(
            product="chromadb",
            sink="memory",
            environment=env,
            chroma_otel_service_name="coded",
            chroma_otel_granularity=OpenTelemetryGranularity.OPERATION,
        )
    )
    assert coded.trace_config()["service_name"] == "coded"
    assert coded.tracer.level == 1
    client.shutdown(0)
    coded.shutdown(0)


def test_telemetry_opt_out_does_not_stop_traces(receiver: Receiver) -> None:
    env = {"ANONYMIZED_TELEMETRY": "False", "CHROMA_OTEL_COLLECTION_ENDPOINT": receiver.grpc_url}
    client = Client(Settings(product="chromadb", sink="memory", environment=env))
    assert not client.enabled
    assert client.tracing
    with start_span("still traced", OPERATION):
        pass
    assert "still traced" in exported(client, receiver, 1)


# -- exceptions and status -----------------------------------------------------------------


class Boom(Exception):
    pass


def test_exceptions_are_recorded_and_raised_unchanged(receiver: Receiver) -> None:
    client = tracing(receiver)
    raised = Boom("the disk is full")

    @trace_method("sync", OPERATION)
    def sync() -> None:
        raise raised

    @trace_method("async", OPERATION)
    async def coroutine() -> None:
        await asyncio.sleep(0)
        raise KeyError("k")

    with pytest.raises(Boom) as info:
        sync()
    assert info.value is raised
    assert info.value.__traceback__ is not None
    with pytest.raises(KeyError):
        asyncio.run(coroutine())
    with pytest.raises(ValueError, match="bad"), start_span("block", SEGMENT):
        raise ValueError("bad")
    with start_span("manual", SEGMENT) as span:
        try:
            raise RuntimeError("handled")
        except RuntimeError as e:
            span.record_exception(e)
    with start_span("ok", SEGMENT) as span:
        span.set_status("ok")

    spans = exported(client, receiver, 5)
    s = spans["sync"]
    assert s["status"] == {"code": "error", "message": "test_traces.Boom: the disk is full"}
    (event,) = s["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "test_traces.Boom"
    assert event["attributes"]["exception.message"] == "the disk is full"
    stack = event["attributes"]["exception.stacktrace"]
    assert stack.startswith("Traceback (most recent call last):")
    assert "raise raised" in stack
    assert stack.rstrip().endswith("Boom: the disk is full")
    assert spans["async"]["events"][0]["attributes"]["exception.type"] == "KeyError"
    assert spans["block"]["status"]["message"] == "ValueError: bad"
    assert spans["manual"]["status"]["code"] == "error"
    assert spans["manual"]["events"][0]["attributes"]["exception.message"] == "handled"
    assert spans["ok"]["status"]["code"] == "ok"
    assert not spans["ok"]["events"]


# -- granularity ---------------------------------------------------------------------------


def test_granularity_filters_and_children_join_the_nearest_recorded_span(
    receiver: Receiver,
) -> None:
    client = tracing(receiver, granularity="operation")
    assert client.tracer.level == 1

    @trace_method("segment", SEGMENT)
    def segment() -> None:
        assert get_current_span() is outer_span  # a filtered span is never current
        with start_span("operation inside", OPERATION):
            pass

    @trace_method("never", NONE)
    def never() -> None:
        pass

    with start_span("outer", OPERATION) as outer_span:
        segment()
        never()
        with start_span("all", "all") as filtered:
            assert not filtered.is_recording()
            assert filtered.traceparent is None
    spans = exported(client, receiver, 2)
    assert spans["operation inside"]["parent_span_id"] == spans["outer"]["span_id"]
    assert client.span_stats()["recorded"] == 2


def test_nothing_is_recorded_without_a_tracing_client() -> None:
    silent = Client(Settings(product="acme", sink="memory", environment={}))
    assert not silent.tracing
    assert otel.get_tracer() is None

    @trace_method("op", OPERATION)
    def op() -> int:
        assert get_current_span() is None
        add_attributes_to_current_span({"a": 1})  # nothing current: nothing happens
        return 7

    assert op() == 7
    with start_span("op", OPERATION) as span:
        assert not span.is_recording()
        assert get_current_span() is None
    assert silent.span_stats()["recorded"] == 0
    # An endpoint with granularity none is off, and never becomes the default either.
    none = Client(
        Settings(
            product="acme",
            sink="memory",
            environment={},
            otel_collection_endpoint="http://127.0.0.1:9",
            otel_granularity="none",
        )
    )
    assert not none.tracing
    assert otel.get_tracer() is None


def test_bad_values_warn_and_never_raise(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    client = Client(
        Settings(
            product="acme",
            sink="memory",
            environment={"ACME_OTEL_COLLECTION_HEADERS": "{not json"},
            otel_collection_endpoint="http://127.0.0.1:9",
            otel_granularity="verbose",
            otel_protocol="carrier-pigeon",
            otel_max_queue_size=-1,
            otel_schedule_delay=float("nan"),
        )
    )
    warnings = client.trace_config()["warnings"]
    assert any("ACME_OTEL_COLLECTION_HEADERS" in w for w in warnings)
    assert any("verbose" in w for w in warnings)
    assert any("carrier-pigeon" in w for w in warnings)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for needle in ("verbose", "carrier-pigeon", "otel_max_queue_size=-1", "otel_schedule_delay"):
        assert needle in logged
    assert client.tracer.level == 1  # the default granularity applies
    client.shutdown(0)


def test_settings_names_and_their_checks() -> None:
    s = Settings(
        product="acme",
        chroma_otel_collection_endpoint="http://c:4317",
        chroma_otel_collection_headers={"x-key": "secret"},
        chroma_otel_granularity=OpenTelemetryGranularity.ALL,
        otel_sampler_arg=0.25,
    )
    assert s.otel_collection_endpoint == "http://c:4317" == s.chroma_otel_collection_endpoint
    assert s.otel_granularity == "all"
    assert s.to_config()["otel"] == {
        "endpoint": "http://c:4317",
        "headers": {"x-key": "secret"},
        "granularity": "all",
        "sampler_arg": "0.25",
    }
    assert "secret" not in repr(s)
    assert "x-key" in repr(s)
    assert s.replace(chroma_otel_service_name="svc").otel_service_name == "svc"
    assert Settings(product="acme").to_config().get("otel") is None
    with pytest.raises(TypeError, match="both"):
        Settings(otel_service_name="a", chroma_otel_service_name="b")
    with pytest.raises(TypeError):
        Settings(otel_collection_headers={"k": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        Settings(otel_granularity=3)  # type: ignore[arg-type]


# -- decorators ----------------------------------------------------------------------------


def test_wrappers_keep_what_frameworks_look_at(receiver: Receiver) -> None:
    client = tracing(receiver)

    @trace_method("plain", OPERATION)
    def plain(a: int, b: str = "x") -> str:
        """Docs."""
        return f"{a}{b}"

    @trace_method("coroutine", OPERATION)
    async def coroutine(a: int) -> int:
        return a + 1

    @trace_method("generator", OPERATION)
    def generator(n: int) -> Iterator[int]:
        yield from range(n)

    @trace_method("async generator", OPERATION)
    async def agen(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    assert plain.__name__ == "plain"
    assert plain.__doc__ == "Docs."
    assert str(inspect.signature(plain)) == "(a: 'int', b: 'str' = 'x') -> 'str'"
    assert inspect.iscoroutinefunction(coroutine)
    assert inspect.isgeneratorfunction(generator)
    assert inspect.isasyncgenfunction(agen)
    assert plain(1, b="y") == "1y"
    assert asyncio.run(coroutine(1)) == 2
    assert list(generator(3)) == [0, 1, 2]

    async def consume() -> list[int]:
        return [i async for i in agen(2)]

    assert asyncio.run(consume()) == [0, 1]
    assert set(exported(client, receiver, 4)) == {
        "plain",
        "coroutine",
        "generator",
        "async generator",
    }
    with pytest.raises(ValueError, match="granularity"):
        trace_method("x", "verbose")


def test_a_generators_span_is_current_only_while_its_body_runs(receiver: Receiver) -> None:
    client = tracing(receiver)
    seen: list[str | None] = []

    @trace_method("produce", OPERATION)
    def produce() -> Iterator[int]:
        current = get_current_span()
        seen.append(current.name if current else None)
        got = yield 1
        assert got == "sent"
        try:
            yield 2
        except KeyError:
            yield 3
        with start_span("inside", OPERATION):
            yield 4

    with start_span("consumer", OPERATION) as consumer:
        g = produce()
        assert next(g) == 1
        assert get_current_span() is consumer
        assert g.send("sent") == 2
        assert g.throw(KeyError("k")) == 3
        assert next(g) == 4
        assert get_current_span() is consumer
        assert list(g) == []
    assert seen == ["produce"]

    @trace_method("closed early", OPERATION)
    def endless() -> Iterator[int]:
        while True:
            yield 0

    e = endless()
    next(e)
    e.close()
    spans = exported(client, receiver, 4)
    assert spans["produce"]["parent_span_id"] == spans["consumer"]["span_id"]
    assert spans["inside"]["parent_span_id"] == spans["produce"]["span_id"]
    assert spans["closed early"]["status"]["code"] == "unset"  # closing is no error


# -- threads, asyncio, several clients ------------------------------------------------------


def test_threads(receiver: Receiver) -> None:
    client = tracing(receiver)
    errors: list[BaseException] = []

    @trace_method("inner", SEGMENT)
    def inner(i: int) -> None:
        time.sleep(0.001)

    def worker(i: int) -> None:
        try:
            # A new thread has no current span: this is a root.
            assert get_current_span() is None
            with start_span(f"thread {i}", OPERATION):
                for _ in range(3):
                    inner(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors

    # A thread run in a copy of the context carries the span over.
    def child() -> None:
        with start_span("in copied context", OPERATION):
            pass

    with start_span("spawner", OPERATION):
        t = threading.Thread(target=contextvars.copy_context().run, args=(child,))
        t.start()
        t.join()

    assert client.flush_spans(10)
    spans = receiver.wait_for(8 * 4 + 2)
    roots = {s["span_id"]: s for s in spans if s["name"].startswith("thread ")}
    assert len(roots) == 8
    assert all(s["parent_span_id"] == "" for s in roots.values())
    inners = [s for s in spans if s["name"] == "inner"]
    assert len(inners) == 24
    per_root: dict[str, int] = {}
    for s in inners:
        root = roots[s["parent_span_id"]]
        assert s["trace_id"] == root["trace_id"]
        per_root[s["parent_span_id"]] = per_root.get(s["parent_span_id"], 0) + 1
    assert sorted(per_root.values()) == [3] * 8
    by_name = {s["name"]: s for s in spans}
    assert by_name["in copied context"]["parent_span_id"] == by_name["spawner"]["span_id"]


def test_asyncio_tasks(receiver: Receiver) -> None:
    client = tracing(receiver)

    @trace_method("step", SEGMENT)
    async def step(i: int) -> int:
        await asyncio.sleep(0.001 * (i % 3))
        return i

    @trace_method("request", OPERATION)
    async def request(i: int) -> list[int]:
        return [await step(i) for _ in range(2)]

    async def main() -> None:
        with start_span("batch", OPERATION):
            # Tasks copy the context where they are created: children of "batch".
            results = await asyncio.gather(*(request(i) for i in range(6)))
            assert results == [[i, i] for i in range(6)]
            await asyncio.to_thread(lambda: start_span("to_thread", OPERATION).end())

    asyncio.run(main())
    assert client.flush_spans(10)
    spans = receiver.wait_for(1 + 6 + 12 + 1)
    (batch,) = [s for s in spans if s["name"] == "batch"]
    requests = {s["span_id"]: s for s in spans if s["name"] == "request"}
    assert len(requests) == 6
    assert all(r["parent_span_id"] == batch["span_id"] for r in requests.values())
    steps = [s for s in spans if s["name"] == "step"]
    assert len(steps) == 12
    counts: dict[str, int] = {}
    for s in steps:
        assert s["parent_span_id"] in requests  # each step under its own task's request
        counts[s["parent_span_id"]] = counts.get(s["parent_span_id"], 0) + 1
    assert sorted(counts.values()) == [2] * 6
    (thread_span,) = [s for s in spans if s["name"] == "to_thread"]
    assert thread_span["parent_span_id"] == batch["span_id"]
    assert {s["trace_id"] for s in spans} == {batch["trace_id"]}


def test_several_clients_share_the_current_span(tmp_path: Path) -> None:
    from conftest import receiver_bin

    procs, receivers = [], []
    for name in ("a", "b"):
        ready = tmp_path / f"{name}.json"
        procs.append(subprocess.Popen([str(receiver_bin()), "--ready-file", str(ready)]))
        while not ready.exists():
            time.sleep(0.02)
        addrs = json.loads(ready.read_text())
        receivers.append(Receiver(procs[-1], addrs["http"], addrs["grpc"]))
    try:
        a = tracing(receivers[0], otel_service_name="service-a")
        b = tracing(receivers[1], otel_service_name="service-b")
        assert otel.get_tracer() is b  # the most recent tracing client is the default

        @trace_method("by a", OPERATION, tracer=a)
        def by_a() -> None:
            with start_span("by default (b)", OPERATION):
                pass

        by_a()
        (span_a,) = exported(a, receivers[0], 1).values()
        (span_b,) = exported(b, receivers[1], 1).values()
        assert span_a["resource"]["service.name"] == "service-a"
        assert span_b["resource"]["service.name"] == "service-b"
        assert span_b["trace_id"] == span_a["trace_id"]
        assert span_b["parent_span_id"] == span_a["span_id"]
        # set_tracer wins over later clients until reset.
        otel.set_tracer(a)
        tracing(receivers[1])
        assert otel.get_tracer() is a
        otel.set_tracer(None)
        c = tracing(receivers[1])
        assert otel.get_tracer() is c
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def test_otel_init_is_chromas(receiver: Receiver) -> None:
    client = otel.otel_init("init-svc", receiver.url, {"h": "1"}, OPERATION)
    assert otel.get_tracer() is client
    assert not client.enabled
    assert client.trace_config()["protocol"] == "grpc"  # Chroma's setting means gRPC
    http = otel.otel_init("init-svc", receiver.url + "/v1/traces", None, "operation")
    assert http.trace_config()["protocol"] == "grpc"
    client.shutdown(0)
    http.shutdown(0)


# -- propagation ---------------------------------------------------------------------------


def test_inject_and_extract_join_a_trace(receiver: Receiver) -> None:
    client = tracing(receiver)
    headers: dict[str, str] = {}
    assert inject(headers) == {}  # nothing current
    upstream = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    parent = extract({"Traceparent": upstream, "tracestate": "congo=t61rcWkgMzE"})
    assert parent is not None
    assert parent.remote
    with start_span("GET /items", OPERATION, kind="server", parent=parent) as server:
        inject(headers)
        with start_span("db", SEGMENT, kind="client"):
            pass
    assert headers["traceparent"] == f"00-4bf92f3577b34da6a3ce929d0e0e4736-{server.span_id}-01"
    assert headers["tracestate"] == "congo=t61rcWkgMzE"
    back = extract(headers)
    assert back is not None
    assert server.context is not None
    assert (back.trace_id, back.span_id, back.remote) == (server.trace_id, server.span_id, True)
    assert not server.context.remote
    spans = exported(client, receiver, 2)
    s = spans["GET /items"]
    assert (s["trace_id"], s["parent_span_id"], s["kind"]) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        "server",
    )
    assert s["trace_state"] == "congo=t61rcWkgMzE"
    assert s["flags"] & 0x300 == 0x300  # the parent is remote (OTLP span flags)
    assert spans["db"]["parent_span_id"] == s["span_id"]
    assert spans["db"]["kind"] == "client"
    # Headers of every shape a server hands over.
    import email.message

    message = email.message.Message()
    message["TraceParent"] = upstream
    assert extract(message) is not None
    assert extract({"HTTP_TRACEPARENT": upstream}) is not None  # a WSGI environ
    assert extract([(b"traceparent", upstream.encode())]) is not None  # ASGI
    assert extract({"traceparent": [upstream, upstream]}) is None  # repeated: invalid
    assert extract({}) is None


def test_sampling(receiver: Receiver) -> None:
    client = tracing(receiver, otel_sampler="always_off")
    with start_span("unsampled", OPERATION) as span:
        assert not span.is_recording()
        assert not span.sampled
        headers = inject({})
        assert headers["traceparent"].endswith("-00")
        with start_span("child", OPERATION) as child:
            assert child.trace_id == span.trace_id
            assert not child.is_recording()
    assert client.span_stats()["recorded"] == 0
    on = tracing(receiver)  # parent-based: an unsampled remote parent is followed
    not_sampled = extract(
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}
    )
    with start_span("follows", OPERATION, parent=not_sampled) as s:
        assert not s.is_recording()
    with start_span("root", OPERATION, parent=not_sampled, root=True) as r:
        assert r.is_recording()
        assert r.trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"
    assert set(exported(on, receiver, 1)) == {"root"}


# -- the host's OpenTelemetry --------------------------------------------------------------


def test_spans_join_the_hosts_opentelemetry_trace(receiver: Receiver) -> None:
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    host_spans = memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(host_spans))
    host = provider.get_tracer("host")
    client = tracing(receiver)

    @trace_method("ours", OPERATION)
    def ours() -> dict[str, str]:
        with start_span("ours inside", OPERATION):
            pass
        return inject({})

    with host.start_as_current_span("host request") as host_span:
        headers = ours()
        sc = host_span.get_span_context()
        # With only the host's span current, inject carries the host's.
        assert inject({})["traceparent"] == f"00-{sc.trace_id:032x}-{sc.span_id:016x}-01"
    with start_span("after", OPERATION):  # the host's span ended: a root again
        pass
    provider.shutdown()
    spans = exported(client, receiver, 3)
    (host_finished,) = host_spans.get_finished_spans()
    trace_id = f"{host_finished.context.trace_id:032x}"
    host_id = f"{host_finished.context.span_id:016x}"
    assert spans["ours"]["trace_id"] == trace_id
    assert spans["ours"]["parent_span_id"] == host_id
    assert spans["ours inside"]["parent_span_id"] == spans["ours"]["span_id"]
    assert headers["traceparent"].split("-")[1:3] == [trace_id, spans["ours"]["span_id"]]
    assert spans["after"]["parent_span_id"] == ""
    assert spans["after"]["trace_id"] != trace_id


# -- WSGI and ASGI -------------------------------------------------------------------------


def test_wsgi_middleware(receiver: Receiver) -> None:
    client = tracing(receiver)

    @trace_method("handler", OPERATION)
    def handle(path: str) -> bytes:
        return path.encode()

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        if environ["PATH_INFO"] == "/fail":
            start_response("500 Internal Server Error", [])
            return iter([b"no"])
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterator[bytes]:
            yield handle(environ["PATH_INFO"])
            with start_span("while streaming", SEGMENT):
                yield b"!"

        return body()

    wrapped = otel.WSGIMiddleware(app)
    statuses: list[str] = []
    upstream = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    for path in ("/items", "/fail"):
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "wsgi.url_scheme": "http",
            "HTTP_TRACEPARENT": upstream,
        }
        body = wrapped(environ, lambda status, headers, exc_info=None: statuses.append(status))
        assert b"".join(body) in (b"/items!", b"no")
        body.close()
    assert statuses == ["200 OK", "500 Internal Server Error"]
    spans = exported(client, receiver, 4)
    server = spans["GET /items"]
    assert server["kind"] == "server"
    assert server["parent_span_id"] == "00f067aa0ba902b7"
    assert server["attributes"] == {
        "http.request.method": "GET",
        "url.path": "/items",
        "url.scheme": "http",
        "http.response.status_code": 200,
    }
    assert spans["handler"]["parent_span_id"] == server["span_id"]
    assert spans["while streaming"]["parent_span_id"] == server["span_id"]
    assert spans["GET /fail"]["status"]["code"] == "error"


def test_asgi_middleware(receiver: Receiver) -> None:
    client = tracing(receiver)

    @trace_method("async handler", OPERATION)
    async def handle() -> bytes:
        return b"ok"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await handle()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": body})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/collections/docs/add",
        "scheme": "http",
        "headers": [(b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")],
    }
    asyncio.run(otel.ASGIMiddleware(app)(scope, receive, send))
    asyncio.run(otel.ASGIMiddleware(app)({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent][:2] == ["http.response.start", "http.response.body"]
    spans = exported(client, receiver, 2)
    server = spans["POST /api/v1/collections/docs/add"]
    assert server["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server["attributes"]["http.response.status_code"] == 201
    assert spans["async handler"]["parent_span_id"] == server["span_id"]


# -- a Chroma-style module, unchanged but for its import -----------------------------------

CHROMA_STYLE = """
from typing import Dict, Sequence

from telemetry_core.opentelemetry import (
    OpenTelemetryGranularity,
    add_attributes_to_current_span,
    trace_method,
)


class SegmentAPI:
    @trace_method("SegmentAPI._add", OpenTelemetryGranularity.OPERATION)
    def _add(self, ids: Sequence[str], collection_id: str) -> bool:
        add_attributes_to_current_span(
            {"collection_id": collection_id, "add_amount": len(ids), "tenant": None}
        )
        self._write(ids)
        return True

    @trace_method(
        "SegmentAPI._write",
        OpenTelemetryGranularity.OPERATION_AND_SEGMENT,
        attributes={"segment": "metadata"},
    )
    def _write(self, ids: Sequence[str]) -> None:
        pass

    @trace_method("SegmentAPI._query", OpenTelemetryGranularity.OPERATION)
    async def _query(self, n_results: int) -> Dict[str, int]:
        add_attributes_to_current_span({"n_results": n_results})
        return {"n": n_results}
"""


def test_chroma_style_code_moves_over_by_its_import(receiver: Receiver, tmp_path: Path) -> None:
    (tmp_path / "chroma_style.py").write_text(CHROMA_STYLE)
    sys.path.insert(0, str(tmp_path))
    try:
        import chroma_style  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    api = chroma_style.SegmentAPI()
    assert api._add(["a"], "c1") is True  # no client traces yet: plain calls
    client = Client(
        Settings(
            product="chromadb",
            sink="memory",
            anonymized_telemetry=False,
            environment={},
            chroma_otel_collection_endpoint=receiver.grpc_url,
            chroma_otel_service_name="chroma-style",
            chroma_otel_granularity="operation_and_segment",
        )
    )
    assert api._add(["a", "b"], "c1") is True
    assert asyncio.run(api._query(3)) == {"n": 3}
    spans = exported(client, receiver, 3)
    add = spans["SegmentAPI._add"]
    assert add["attributes"] == {"collection_id": "c1", "add_amount": 2}
    assert spans["SegmentAPI._write"]["parent_span_id"] == add["span_id"]
    assert spans["SegmentAPI._write"]["attributes"] == {"segment": "metadata"}
    assert spans["SegmentAPI._query"]["attributes"] == {"n_results": 3}
    assert add["resource"]["service.name"] == "chroma-style"
    assert add["protocol"] == "grpc"


# -- faults and exit, in child processes ---------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from telemetry_core import Client, Settings
    from telemetry_core.opentelemetry import start_span, OpenTelemetryGranularity as G

    client = Client(Settings(product="acme", sink="memory", anonymized_telemetry=False,
                             environment={}, otel_collection_endpoint=sys.argv[1],
                             otel_protocol=sys.argv[2], otel_export_timeout=30,
                             shutdown_timeout=1.0))
    for i in range(50):
        with start_span(f"span {i}", G.OPERATION):
            pass
    mode = sys.argv[3]
    if mode == "flush":
        ok = client.flush_spans(float(sys.argv[4]))
        print(json.dumps({"flushed": ok, **client.span_stats()}), flush=True)
    elif mode == "shutdown":
        t = time.monotonic()
        client.shutdown()
        took = time.monotonic() - t
        at_return = client.span_stats()
        time.sleep(0.5)  # a batch in flight at the deadline is counted when its request ends
        later = client.span_stats()
        print(json.dumps({"took": took, "at_return": at_return, **later}), flush=True)
    print("exiting", flush=True)
    """
)


def run_child(
    endpoint: str, protocol: str, mode: str, wait: str = "0"
) -> tuple[dict[str, Any] | None, float, subprocess.CompletedProcess[str]]:
    """Runs the child; returns its printed stats, the seconds from its "exiting" line to
    its exit, and the process."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, endpoint, protocol, mode, wait],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    stats = None
    while True:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            stats = json.loads(line)
        if line.strip() == "exiting":
            break
    left = time.monotonic()
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - left
    return stats, took, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def dead_endpoint() -> str:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_dead_endpoint_drops_counts_and_exits_within_the_deadline(protocol: str) -> None:
    stats, _, run = run_child(dead_endpoint(), protocol, "shutdown")
    assert run.returncode == 0, run.stderr
    assert stats is not None
    assert stats["recorded"] == 50
    assert stats["exported"] == 0
    assert stats["queued"] == 0
    assert stats["dropped_failed"] + stats["dropped_shutdown"] == 50
    assert stats["took"] < 1.5, stats
    # The atexit shutdown of an unshut client also keeps the deadline.
    _, took, run = run_child(dead_endpoint(), protocol, "exit")
    assert run.returncode == 0, run.stderr
    assert took < 2.0, f"exit took {took:.2f} s"


def test_the_exit_exports_a_tracing_clients_spans(receiver: Receiver) -> None:
    # Telemetry is off in the child; its tracing client is still shut down at exit.
    _, took, run = run_child(receiver.url, "http/protobuf", "exit")
    assert run.returncode == 0, run.stderr
    assert len(receiver.wait_for(50)) == 50
    assert took < 2.0


def test_a_slow_endpoint_cannot_hold_the_exit(receiver: Receiver) -> None:
    receiver.fault(kind="delay", ms=20_000)
    _, took, run = run_child(receiver.url, "http/protobuf", "exit")
    assert run.returncode == 0, run.stderr
    assert took < 2.0, f"exit took {took:.2f} s"
    stats, _, run = run_child(receiver.url, "http/protobuf", "shutdown")
    assert stats is not None
    assert stats["exported"] == 0
    assert stats["took"] < 1.5, stats
    assert stats["dropped_shutdown"] == 50, stats
    # At shutdown's return the batch stuck in its request may still count as queued.
    r = stats["at_return"]
    dropped = r["dropped_failed"] + r["dropped_shutdown"] + r["dropped_queue_full"]
    assert r["exported"] + dropped + r["queued"] == r["recorded"] == 50


def test_503_is_retried_and_counted(receiver: Receiver) -> None:
    receiver.fault(kind="status", http_status=503, retry_after_secs=0, requests=1)
    stats, _, run = run_child(receiver.url, "http/protobuf", "flush", "20")
    assert run.returncode == 0, run.stderr
    assert stats is not None
    assert stats["flushed"], stats
    assert stats["exported"] == 50, stats
    assert stats["retries"] >= 1
    assert stats["failed_requests"] >= 1
    assert len(receiver.spans()) == 50
    # Refused for good: dropped and counted. The warning goes to the telemetry_core
    # logger, which the child did not configure: nothing on stderr.
    receiver.clear()
    receiver.fault(kind="status", http_status=400)
    stats, _, run = run_child(receiver.url, "http/protobuf", "flush", "20")
    assert stats is not None
    assert not stats["flushed"]
    assert stats["dropped_failed"] == 50
    assert stats["exported"] == 0
    assert run.stderr == ""


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_ids_differ_after_fork(receiver: Receiver) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    from telemetry_core._native import Tracer

    tracing(receiver)
    with start_span("before fork", OPERATION):  # seeds this thread's id generator
        pass
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        # A tracer that records nothing still draws ids, and takes no lock the parent's
        # export thread might have held at the fork.
        os.write(w, Tracer.disabled().start("child").span_id.encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_id = os.read(r, 16).decode()
    # Without the reseed after fork, the child's next id would be the parent's next one.
    assert child_id != Tracer.disabled().start("parent").span_id


def test_filtered_spans_never_call_the_native_side() -> None:
    """The filtered path is the wrapper's int comparison: with no tracer at all, a
    decorated call runs the function without touching the span machinery."""
    calls: list[str] = []

    class Spy:
        level = 0

        def run(self, *a: object) -> None:
            calls.append("run")

        def start(self, *a: object) -> None:
            calls.append("start")

    original = otel._tracer
    otel._tracer = Spy()  # type: ignore[assignment]
    try:

        @trace_method("op", ALL)
        def op() -> int:
            return 1

        assert op() == 1
        assert start_span("op", ALL) is otel._NOOP
    finally:
        otel._tracer = original
    assert calls == []
