"""A small search service that times its operations and serves its usage statistics.

    python python/examples/usage_app.py [--port 8000]

    curl 'http://127.0.0.1:8000/search?collection=books&q=dune'
    curl http://127.0.0.1:8000/usage/metrics                      # for Prometheus
    curl 'http://127.0.0.1:8000/usage/telemetry?details_level=2'  # the report

Any WSGI server works (gunicorn, uwsgi, Flask's); this one is the standard library's.
The debug sink prints the anonymized usage report that would be sent home (10 s after
the first search, then hourly, and at exit) instead of sending it: pass endpoint= and
api_key= to send it.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from telemetry_core import Client, Settings
from telemetry_core.usage import wsgi_app

client = Client(Settings(product="acme-search", version="1.0.0", sink="debug"))
# Declared once; the handles record from any thread. Collection names are hashed when
# the report goes home; the counts stay exact.
searches = client.usage.timing("searches", labels={"collection": "hashed"}, help="Searches")
returned = client.usage.counter("documents_returned", help="Documents returned by searches")
usage_endpoints = wsgi_app(client)  # /telemetry and /metrics
INDEX = {"books": ["dune", "emma", "ulysses"], "films": ["alien", "heat"]}


def search(collection: str, query: str) -> list[str]:
    time.sleep(0.002)  # the work being timed
    return [title for title in INDEX.get(collection, []) if query in title]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path.startswith("/usage/"):
        # Mounted under /usage: what follows the prefix is the endpoint's path.
        environ = {**environ, "SCRIPT_NAME": "/usage", "PATH_INFO": path[len("/usage") :]}
        return usage_endpoints(environ, start_response)
    if path == "/search":
        params = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        collection = params.get("collection", ["books"])[0]
        with searches.labels(collection):  # an exception here would count a failure
            hits = search(collection, params.get("q", [""])[0])
        returned.inc(len(hits))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(hits).encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]


def main() -> None:
    parser = argparse.ArgumentParser(description="A search service with usage statistics")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    # The collections the service holds, as a section of the report (from level 2).
    client.usage.set_section(
        "index",
        {"collections": len(INDEX), "documents": sum(map(len, INDEX.values()))},
        kinds={"collections": "exact", "documents": "exact"},
    )
    with make_server("127.0.0.1", args.port, app) as server:
        # Ctrl-C and SIGTERM stop the loop from a thread of their own. (A
        # KeyboardInterrupt would be swallowed by wsgiref's error handling when it
        # lands while a request is being answered, and the service would go on.)
        def stop(_signum: int, _frame: object) -> None:
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        print(f"serving on http://127.0.0.1:{server.server_port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
