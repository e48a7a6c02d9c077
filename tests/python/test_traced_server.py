"""python/examples/traced_server.py, the demo's traced server, run as the demo runs it:
configured by Chroma's variables, exporting over gRPC to the real otlp-receiver, called
with a ``traceparent`` as the Go chromalike client sends it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, Receiver, clean_env

SERVER = ROOT / "python" / "examples" / "traced_server.py"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Server:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url

    def call(self, path: str, body: object = None, traced: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if traced:
            headers["traceparent"] = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.load(r)


def start(home: Path, receiver: Receiver, granularity: str) -> Iterator[Server]:
    env = clean_env(
        home,
        ANONYMIZED_TELEMETRY="False",
        CHROMA_OTEL_COLLECTION_ENDPOINT=receiver.grpc_url,
        CHROMA_OTEL_SERVICE_NAME="python-server",
        CHROMA_OTEL_GRANULARITY=granularity,
    )
    proc = subprocess.Popen(
        [sys.executable, str(SERVER)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on http://127.0.0.1:"), line
    try:
        yield Server(proc, line.removeprefix("listening on "))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def server_all(home: Path, receiver: Receiver) -> Iterator[Server]:
    yield from start(home, receiver, "all")


def test_each_request_is_a_server_span_under_the_callers(
    server_all: Server, receiver: Receiver
) -> None:
    assert "nanosecond heartbeat" in server_all.call("/api/v1/heartbeat")
    collection = server_all.call("/api/v1/collections", {"name": "docs"})["id"]
    added = server_all.call(
        f"/api/v1/collections/{collection}/add", {"documents": ["a cat", "a dog"]}
    )
    assert added == {"added": 2}
    found = server_all.call(
        f"/api/v1/collections/{collection}/query", {"query_texts": ["cat"], "n_results": 5}
    )
    assert found == {"ids": ["doc-0"]}
    # Exported within the server's 0.2 s schedule: no flush needed.
    spans = receiver.wait_for(4 + 1 + 5 + 5, timeout=15)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_name.setdefault(s["name"], []).append(s)
    servers = [s for s in spans if s["kind"] == "server"]
    assert sorted(s["name"] for s in servers) == [
        "GET /api/v1/heartbeat",
        "POST /api/v1/collections",
        "POST /api/v1/collections/{id}/add",
        "POST /api/v1/collections/{id}/query",
    ]
    for s in servers:
        assert s["trace_id"] == CALLER_TRACE
        assert s["parent_span_id"] == CALLER_SPAN
        assert s["attributes"]["http.response.status_code"] == 200
        assert s["resource"]["service.name"] == "python-server"
        assert s["protocol"] == "grpc"
    (add_server,) = by_name["POST /api/v1/collections/{id}/add"]
    (add_op,) = by_name["Collection.add"]
    assert add_op["parent_span_id"] == add_server["span_id"]
    assert add_op["attributes"] == {"collection_id": collection, "add_amount": 2}
    segments = {s["name"]: s for s in spans if s["parent_span_id"] == add_op["span_id"]}
    assert set(segments) == {"MetadataSegment.write", "VectorSegment.write"}
    tokens = [s for s in by_name["Tokenizer.words"] if s["trace_id"] == CALLER_TRACE]
    assert any(t["parent_span_id"] == segments["VectorSegment.write"]["span_id"] for t in tokens)


def test_granularity_operation_keeps_the_operations(home: Path, receiver: Receiver) -> None:
    for server in start(home, receiver, "operation"):
        collection = server.call("/api/v1/collections", {"name": "docs"}, traced=False)["id"]
        server.call(f"/api/v1/collections/{collection}/add", {"documents": ["x"]}, traced=False)
        spans = receiver.wait_for(4, timeout=15)
        time.sleep(0.5)  # nothing more arrives
        names = sorted(s["name"] for s in receiver.spans())
        assert names == [
            "Client.create_collection",
            "Collection.add",
            "POST /api/v1/collections",
            "POST /api/v1/collections/{id}/add",
        ], names
        roots = [s for s in spans if s["parent_span_id"] == ""]
        assert len(roots) == 2  # no traceparent: each request starts a trace


def test_granularity_none_records_nothing(home: Path, receiver: Receiver) -> None:
    for server in start(home, receiver, "none"):
        server.call("/api/v1/heartbeat")
        server.call("/api/v1/collections", {"name": "docs"})
        time.sleep(0.6)
        assert receiver.spans() == []
