"""The usage endpoints over real HTTP: the WSGI app under the standard library's server
and Flask, the ASGI app under uvicorn, FastAPI and Starlette, the core's loopback server,
/metrics read by prometheus_client's own parser, and the example service. Loopback only.

The frameworks are in the project's venv (tests/python/requirements.txt); the abi3 runs
under other Pythons install only pytest and prometheus_client, and skip the framework
tests.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from telemetry_core import Client, Settings, UsageError
from telemetry_core.usage import ASGIApp, Usage, WSGIApp, asgi_app, wsgi_app

from conftest import ROOT, clean_env, debug_payloads

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

# (path, query, a word the 400's message must hold), as the core's own test has them.
BAD_QUERIES = [
    ("/telemetry", "details_level=-1", "details_level"),
    ("/telemetry", "details_level=abc", "details_level"),
    ("/telemetry", "details_level=", "details_level"),
    ("/telemetry", "details_level=1.5", "details_level"),
    ("/telemetry", "anonymize=maybe", "anonymize"),
    ("/telemetry", "anonymize=true&anonymize=false", "twice"),
    ("/telemetry", "detail=1", "unknown parameter"),
    ("/metrics", "details_level=1", "unknown parameter"),
    ("/metrics", "anonymize=%ff%fe", "anonymize"),
]


def recorded_client() -> Client:
    """An opted-out client with known numbers: 3 searches of "books" (2 ms, 4 ms, 8 ms),
    one failed, and 7 documents returned."""
    client = Client(
        Settings(product="acme", version="1.0", sink="memory", anonymized_telemetry=False)
    )
    searches = client.usage.timing("searches", labels={"collection": "hashed"}, help="Searches")
    books = searches.labels("books")
    for seconds in (0.002, 0.004, 0.008):
        books.record(seconds)
    books.record_failure()
    client.usage.counter("documents_returned").inc(7)
    return client


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def fetch(url: str, method: str = "GET") -> Answer:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return Answer(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        with e:
            return Answer(e.code, e.headers, e.read())


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def wsgi_server(app: Any) -> Iterator[str]:
    """`app` under the standard library's WSGI server, on a loopback port."""
    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def check_metrics(text: str) -> None:
    """/metrics as Prometheus's reference client parses it holds the recorded numbers."""
    parser = pytest.importorskip("prometheus_client.parser")
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    hist = families["acme_searches_seconds"]
    assert hist.type == "histogram"
    assert hist.documentation == "Searches"
    samples = {(s.name, s.labels.get("le")): s for s in hist.samples}
    assert samples[("acme_searches_seconds_count", None)].value == 3
    assert samples[("acme_searches_seconds_count", None)].labels == {"collection": "books"}
    assert samples[("acme_searches_seconds_sum", None)].value == pytest.approx(0.014)
    assert samples[("acme_searches_seconds_bucket", "0.001")].value == 0
    assert samples[("acme_searches_seconds_bucket", "0.005")].value == 2
    assert samples[("acme_searches_seconds_bucket", "0.01")].value == 3
    assert samples[("acme_searches_seconds_bucket", "+Inf")].value == 3
    failures = families["acme_searches_failures"]
    assert failures.type == "counter"
    assert [(s.labels, s.value) for s in failures.samples] == [({"collection": "books"}, 1)]
    [returned] = families["acme_documents_returned"].samples
    assert returned.value == 7


def check_endpoints(base: str) -> None:
    """What every mount of the endpoints answers, over HTTP, at `base`."""
    report = fetch(f"{base}/telemetry?details_level=2&anonymize=true")
    assert report.status == 200
    assert report.headers["Content-Type"] == "application/json"
    assert int(report.headers["Content-Length"]) == len(report.body)
    doc = report.json()
    op = doc["operations"]["searches"]
    assert (op["count"], op["fail_count"]) == (3, 1)
    label = op["by_labels"][0]["labels"]["collection"]
    assert len(label) == 16
    assert label != "books"
    assert fetch(f"{base}/telemetry").json()["counters"]["documents_returned"] == {"total": 7}
    for path, query, says in BAD_QUERIES:
        bad = fetch(f"{base}{path}?{query}")
        assert bad.status == 400, (path, query)
        assert says in bad.json()["error"], (path, query, bad.text)
    metrics = fetch(f"{base}/metrics")
    assert metrics.status == 200
    assert metrics.headers["Content-Type"] == PROMETHEUS_TEXT
    check_metrics(metrics.text)
    head = fetch(f"{base}/metrics", method="HEAD")
    assert (head.status, head.body) == (200, b"")
    assert head.headers["Content-Type"] == PROMETHEUS_TEXT
    post = fetch(f"{base}/metrics", method="POST")
    assert post.status == 405
    assert post.headers["Allow"] == "GET, HEAD"
    assert fetch(f"{base}/elsewhere").status == 404


def test_handle_is_the_cores_answer() -> None:
    usage = recorded_client().usage
    r = usage.handle("/telemetry", "details_level=1")
    assert (r.status, r.content_type) == (200, "application/json")
    assert json.loads(r.body)["operations"]["searches"]["count"] == 3
    assert r.headers == [("Content-Type", "application/json"), ("Content-Length", str(len(r.body)))]
    for path, query, says in BAD_QUERIES:
        bad = usage.handle(path, query)
        assert bad.status == 400, (path, query)
        assert says in json.loads(bad.body)["error"], (path, query)
    assert usage.handle("/metrics").content_type == PROMETHEUS_TEXT
    assert usage.handle("/metrics", method="DELETE").status == 405
    assert usage.handle("/nope").status == 404
    assert "404" in repr(usage.handle("/nope"))


def test_the_wsgi_app_under_the_standard_librarys_server() -> None:
    client = recorded_client()
    app = wsgi_app(client)
    assert isinstance(app, WSGIApp)
    assert app.usage is client.usage
    assert isinstance(wsgi_app(client.usage), WSGIApp)
    with wsgi_server(app) as base:
        check_endpoints(base)
    with pytest.raises(TypeError, match="Client or its usage"):
        wsgi_app("acme")  # type: ignore[arg-type]


def test_the_wsgi_app_mounted_in_flask_beside_a_timed_view() -> None:
    flask = pytest.importorskip("flask")
    dispatcher = pytest.importorskip("werkzeug.middleware.dispatcher")
    client = recorded_client()
    views = client.usage.timing("views", labels={"view": "safe"})
    web = flask.Flask("service")

    @web.get("/hello")
    @views.labels("hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    web.wsgi_app = dispatcher.DispatcherMiddleware(web.wsgi_app, {"/usage": wsgi_app(client)})
    with wsgi_server(web) as base:
        assert fetch(f"{base}/hello").json() == {"hello": "world"}
        check_endpoints(f"{base}/usage")
    assert views.labels("hello").count == 1


async def call_asgi(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_the_asgi_app_takes_the_path_below_its_mount_point() -> None:
    import asyncio

    app = asgi_app(recorded_client())
    assert isinstance(app, ASGIApp)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/usage/telemetry",
        "root_path": "/usage",
        "query_string": b"details_level=x",
        "headers": [],
    }
    start, body = asyncio.run(call_asgi(app, scope))
    assert start["status"] == 400
    assert (b"content-type", b"application/json") in start["headers"]
    assert b"details_level" in body["body"]
    # Servers that keep the mount point out of `path` are understood too.
    start, _ = asyncio.run(call_asgi(app, {**scope, "path": "/telemetry", "query_string": b""}))
    assert start["status"] == 200
    [close] = asyncio.run(call_asgi(app, {"type": "websocket", "path": "/metrics"}))
    assert close["type"] == "websocket.close"


def test_the_asgi_app_mounted_in_fastapi_beside_timed_endpoints() -> None:
    fastapi = pytest.importorskip("fastapi")
    testclient = pytest.importorskip("starlette.testclient")
    client = recorded_client()
    endpoints = client.usage.timing("endpoints", labels={"name": "safe"})
    api = fastapi.FastAPI()

    @api.get("/async")
    @endpoints.labels("async")
    async def asynchronous(q: str = "") -> dict[str, str]:
        return {"q": q}

    @api.get("/sync")
    @endpoints.labels("sync")
    def synchronous(limit: int = 10) -> dict[str, int]:
        return {"limit": limit}

    api.mount("/usage", asgi_app(client))
    with testclient.TestClient(api) as http:
        # FastAPI reads the wrapped signatures: query parameters still arrive typed.
        assert http.get("/async", params={"q": "x"}).json() == {"q": "x"}
        assert http.get("/sync", params={"limit": 3}).json() == {"limit": 3}
        metrics = http.get("/usage/metrics")
        assert metrics.headers["content-type"] == PROMETHEUS_TEXT
        check_metrics(metrics.text)
        report = http.get("/usage/telemetry", params={"details_level": 2}).json()
        by_name = report["operations"]["endpoints"]["by_labels"]
        assert {i["labels"]["name"]: i["count"] for i in by_name} == {"async": 1, "sync": 1}
        assert http.get("/usage/telemetry?details_level=-1").status_code == 400
        assert http.head("/usage/metrics").content == b""


def test_the_asgi_app_mounted_in_starlette() -> None:
    routing = pytest.importorskip("starlette.routing")
    applications = pytest.importorskip("starlette.applications")
    testclient = pytest.importorskip("starlette.testclient")
    app = applications.Starlette(routes=[routing.Mount("/stats", app=asgi_app(recorded_client()))])
    with testclient.TestClient(app) as http:
        assert http.get("/stats/telemetry").json()["operations"]["searches"]["count"] == 3
        assert http.get("/stats/metrics?anonymize=sometimes").status_code == 400
        assert http.post("/stats/metrics").status_code == 405
        check_metrics(http.get("/stats/metrics").text)


def test_the_asgi_app_under_uvicorn() -> None:
    uvicorn = pytest.importorskip("uvicorn")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi_app(recorded_client()), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "uvicorn did not start"
        check_endpoints(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def test_the_cores_loopback_server() -> None:
    usage: Usage = recorded_client().usage
    with usage.serve("127.0.0.1:0") as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.host == "127.0.0.1"
        metrics = fetch(f"{server.url}/metrics")
        assert metrics.headers["Content-Type"] == PROMETHEUS_TEXT
        check_metrics(metrics.text)
        assert fetch(f"{server.url}/telemetry?details_level=x").status == 400
        assert fetch(f"{server.url}/telemetry").json()["operations"]["searches"]["count"] == 3
        assert fetch(f"{server.url}/metrics", method="POST").status == 405
        assert "serving" in repr(server)
    assert server.closed
    # Nothing answers any more: refused, or reset when the port's listener (which the
    # HTTP library closes from a thread of its own) had not quite closed yet.
    with pytest.raises((urllib.error.URLError, ConnectionResetError)):
        urllib.request.urlopen(f"{server.url}/metrics", timeout=5)
    server.close()  # idempotent
    for address in ("0.0.0.0:0", "192.0.2.1:9464", "example.com:80", "nonsense"):
        with pytest.raises(UsageError):
            usage.serve(address)


def test_the_example_service(home: Path) -> None:
    """python/examples/usage_app.py serves searches, /usage/metrics and /usage/telemetry,
    and at exit prints (debug sink) the anonymized report it would send."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "python/examples/usage_app.py"), "--port", "0"],
        env=clean_env(home),
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("serving on http://127.0.0.1:"), line
        base = line.removeprefix("serving on ")
        assert fetch(f"{base}/search?collection=books&q=ly").json() == ["ulysses"]
        assert fetch(f"{base}/search?collection=books&q=").json() == ["dune", "emma", "ulysses"]
        assert fetch(f"{base}/search?collection=films&q=a").json() == ["alien", "heat"]
        parser = pytest.importorskip("prometheus_client.parser")
        text = fetch(f"{base}/usage/metrics").text
        families = {f.name: f for f in parser.text_string_to_metric_families(text)}
        counts = {
            s.labels["collection"]: s.value
            for s in families["acme_search_searches_seconds"].samples
            if s.name.endswith("_count")
        }
        assert counts == {"books": 2, "films": 1}
        assert families["acme_search_documents_returned"].samples[0].value == 6
        report = fetch(f"{base}/usage/telemetry?details_level=2").json()
        assert report["index"] == {"collections": 2, "documents": 5}
        assert fetch(f"{base}/usage/telemetry?details_level=two").status == 400
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    [sent] = [p for p in debug_payloads(stderr) if p["event"] == "usage_report"]
    searches = sent["properties"]["operations"]["searches"]
    assert searches["count"] == 3
    assert {i["labels"]["collection"] for i in searches["by_labels"]}.isdisjoint({"books", "films"})
