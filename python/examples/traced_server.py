"""A small Chroma-like HTTP API whose requests are traced, configured as Chroma is.

    CHROMA_OTEL_COLLECTION_ENDPOINT=http://127.0.0.1:4317 \\
    CHROMA_OTEL_SERVICE_NAME=my-server CHROMA_OTEL_GRANULARITY=operation_and_segment \\
        python python/examples/traced_server.py [--port 0]

    curl http://127.0.0.1:PORT/api/v1/heartbeat
    curl -d '{"name": "docs"}' http://127.0.0.1:PORT/api/v1/collections
    curl -d '{"documents": ["a cat", "a dog"]}' http://127.0.0.1:PORT/api/v1/collections/ID/add
    curl -d '{"query_texts": ["cat"], "n_results": 1}' \\
        http://127.0.0.1:PORT/api/v1/collections/ID/query

It prints ``listening on http://127.0.0.1:PORT`` once it serves. Each request is a server
span (``telemetry_core.opentelemetry.WSGIMiddleware``), the child of the caller's span
when the request carries a ``traceparent`` (the Go ``chromalike`` example's client
sends one); inside it, ``trace_method`` spans at Chroma's granularities: the operation
(``Collection.add``, ``Collection.query``) and its segments (``MetadataSegment.write``,
``VectorSegment.query``, ...), and at ``all`` the finest helpers. The same endpoints
speak the Go example's API: collections of documents, a word match for a query.

Observability is the operator's and independent of telemetry: the client below only
traces (``ANONYMIZED_TELEMETRY`` decides the rest, and it captures nothing). SIGTERM or
Ctrl-C stops it; the spans still queued are exported within the shutdown deadline.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from telemetry_core import Client, Settings
from telemetry_core.opentelemetry import (
    OpenTelemetryGranularity,
    WSGIMiddleware,
    add_attributes_to_current_span,
    trace_method,
)

OPERATION = OpenTelemetryGranularity.OPERATION
SEGMENT = OpenTelemetryGranularity.OPERATION_AND_SEGMENT
ALL = OpenTelemetryGranularity.ALL

# Chroma's variables (CHROMA_OTEL_*) configure it, read by the core's chroma profile; the
# standard OTEL_* ones work too. Exported spans leave within a fifth of a second, so a
# demo sees them at once (the default batches for five seconds).
client = Client(
    Settings(
        product="chroma-like-server",
        version="0.1.0",
        profile="chroma",
        sink="memory",
        otel_schedule_delay=0.2,
    )
)

_lock = threading.Lock()
_collections: dict[str, list[str]] = {}


class NotFound(Exception):
    pass


@trace_method("Tokenizer.words", ALL)
def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


@trace_method("MetadataSegment.write", SEGMENT)
def write_metadata(collection: str, documents: list[str]) -> None:
    add_attributes_to_current_span({"records": len(documents)})
    with _lock:
        if collection not in _collections:
            raise NotFound(f"no collection {collection}")
        _collections[collection].extend(documents)


@trace_method("VectorSegment.write", SEGMENT)
def write_vectors(documents: list[str]) -> None:
    for d in documents:
        words(d)
    time.sleep(0.002)  # stands in for the index update


@trace_method("Collection.add", OPERATION)
def add(collection: str, documents: list[str]) -> int:
    add_attributes_to_current_span({"collection_id": collection, "add_amount": len(documents)})
    write_metadata(collection, documents)
    write_vectors(documents)
    return len(documents)


@trace_method("VectorSegment.query", SEGMENT)
def nearest(collection: str, texts: list[str], n: int) -> list[str]:
    with _lock:
        if collection not in _collections:
            raise NotFound(f"no collection {collection}")
        documents = list(_collections[collection])
    wanted = [words(t) for t in texts]
    ids = [f"doc-{i}" for i, d in enumerate(documents) if any(w & words(d) for w in wanted)]
    return sorted(ids)[:n]


@trace_method("Collection.query", OPERATION)
def query(collection: str, texts: list[str], n: int) -> list[str]:
    add_attributes_to_current_span(
        {"collection_id": collection, "query_amount": len(texts), "n_results": n}
    )
    return nearest(collection, texts, n)


@trace_method("Client.create_collection", OPERATION)
def create_collection(name: str) -> str:
    collection = secrets.token_hex(16)
    add_attributes_to_current_span({"collection_id": collection})
    with _lock:
        _collections[collection] = []
    return collection


ROUTES = [
    ("GET", re.compile(r"/api/v1/heartbeat"), "/api/v1/heartbeat"),
    ("POST", re.compile(r"/api/v1/collections"), "/api/v1/collections"),
    ("POST", re.compile(r"/api/v1/collections/([^/]+)/add"), "/api/v1/collections/{id}/add"),
    ("POST", re.compile(r"/api/v1/collections/([^/]+)/query"), "/api/v1/collections/{id}/query"),
]


def route(environ: dict[str, Any]) -> tuple[str, str, tuple[str, ...]] | None:
    method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
    for want, pattern, template in ROUTES:
        m = pattern.fullmatch(path)
        if m and method == want:
            return template, method, m.groups()
    return None


def span_name(environ: dict[str, Any]) -> str:
    """The server span's name: the method and the route template, not the raw path
    (whose ids would make every span name different)."""
    found = route(environ)
    method = environ.get("REQUEST_METHOD", "GET")
    return f"{method} {found[0]}" if found else f"{method} (unknown route)"


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    def reply(status: str, value: object) -> list[bytes]:
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(value).encode()]

    found = route(environ)
    if found is None:
        return reply("404 Not Found", {"error": "no such route"})
    template, _, args = found
    if template == "/api/v1/heartbeat":
        return reply("200 OK", {"nanosecond heartbeat": time.time_ns()})
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(size) or b"{}")
        if template == "/api/v1/collections":
            name = str(body.get("name") or "")
            if not name:
                return reply("400 Bad Request", {"error": "a collection needs a name"})
            return reply("200 OK", {"id": create_collection(name), "name": name})
        if template.endswith("/add"):
            return reply("200 OK", {"added": add(args[0], list(body.get("documents") or []))})
        texts = list(body.get("query_texts") or [])
        return reply("200 OK", {"ids": query(args[0], texts, int(body.get("n_results", 10)))})
    except NotFound as e:
        return reply("404 Not Found", {"error": str(e)})
    except (ValueError, TypeError, AttributeError) as e:
        return reply("400 Bad Request", {"error": f"bad body: {e}"})


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown the demo's output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    traced = WSGIMiddleware(app, span_name=span_name)
    server = make_server(
        "127.0.0.1", args.port, traced, server_class=ThreadingServer, handler_class=QuietHandler
    )
    # SIGTERM ends the process like Ctrl-C: atexit then exports what is queued.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config = client.trace_config()
    print(
        f"traces: {'on' if config['active'] else 'off'}, granularity {config['granularity']},"
        f" to {config['endpoint']} over {config['protocol']}",
        file=sys.stderr,
    )
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print(f"spans: {client.span_stats()}", file=sys.stderr)


if __name__ == "__main__":
    main()
