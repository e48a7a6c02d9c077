"""`make bench` for Python: telemetry_core beside the latest posthog-python, in one run.

Every figure is printed beside a floor measured in the same run on the same machine (a
pure-Python no-op method taking the same five keyword arguments), because this machine
is slow and noisy and absolute figures mean little. Everything stays on loopback: the
endpoint "up" is the project's local collector, the endpoint that "never answers" is a
socket here that accepts and never replies. posthog-python points only at those.

Rows: capture with telemetry off (posthog: disabled=True); capture on, with the local
collector up and the worker sending while the loop runs (on 2 cores the caller shares
them with the worker and the collector); the caller's work alone; import in a fresh
interpreter; shutdown() with 10,000 events queued for an endpoint that never answers.

A second table times usage statistics beside prometheus_client's Histogram: a `with`
block (ours `with timing:`, theirs `with histogram.time():`), the same with the label set
looked up per block, and a decorated call. Each block runs in a function call of its own,
as in a request handler; the floors are a no-op context manager written in Python and a
plain call.

A third table times traces beside opentelemetry-sdk in the same run, both exporting over
OTLP/HTTP to the project's otlp-receiver on loopback: a span with 3 attributes started and
ended (ours ``with start_span(...)`` and ``@trace_method``; theirs
``start_as_current_span`` with a BatchSpanProcessor and the OTLP/HTTP exporter, as a
context manager and as a decorator), and a span filtered out by granularity beside a
no-op decorator. The traced functions are methods taking two arguments, as Chroma's are.

    python tests/python/bench_python.py --collector target/debug/telemetry-collector \
        --otlp-receiver target/debug/otlp-receiver
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROUNDS = 7
PROPS = {
    "collection_uuid": "2b1f6c0e-9a3e-4c53-8f0e-0d7c1b2f3a4b",
    "add_amount": 20,
    "with_documents": True,
    "embedding_function": "default",
    "ratio": 0.5,
}


class Floor:
    """The floor: what a call with these arguments costs when the method does nothing."""

    def capture(self, event: object, /, **properties: object) -> None:
        return None


def per_call(
    loop: Callable[[int], None], n: int, between: Callable[[], None] | None = None
) -> float:
    """Median seconds per call over ROUNDS rounds of `n` calls; `between` runs untimed."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        loop(n)
        samples.append((time.perf_counter() - start) / n)
        if between is not None:
            between()
    return statistics.median(samples)


def paired(
    loop_a: Callable[[int], None],
    loop_b: Callable[[int], None],
    n: int,
    rounds: int = 21,
    between: tuple[Callable[[], object], Callable[[], object]] | None = None,
) -> tuple[float, float]:
    """Median seconds per call of two loops timed in alternate rounds (`between` runs
    after each, untimed): a ratio needs both figures measured under the same conditions,
    and this machine's other load comes and goes within seconds."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        for i, (loop, out) in enumerate(((loop_a, a), (loop_b, b))):
            start = time.perf_counter()
            loop(n)
            out.append((time.perf_counter() - start) / n)
            if between is not None:
                between[i]()
    return statistics.median(a), statistics.median(b)


def kwargs_loop(capture: Callable[..., object]) -> Callable[[int], None]:
    def loop(n: int) -> None:
        for _ in range(n):
            capture(
                "collection_add",
                collection_uuid="2b1f6c0e-9a3e-4c53-8f0e-0d7c1b2f3a4b",
                add_amount=20,
                with_documents=True,
                embedding_function="default",
                ratio=0.5,
            )

    return loop


def posthog_loop(capture: Callable[..., object]) -> Callable[[int], None]:
    def loop(n: int) -> None:
        for _ in range(n):
            capture("collection_add", distinct_id="bench", properties=PROPS)

    return loop


def import_time(module: str) -> float:
    """Median seconds to import `module` in a fresh interpreter (interpreter start excluded),
    with bytecode caches as an installed package has them (a first, uncounted run writes
    ours, since PYTHONDONTWRITEBYTECODE would make every run compile the sources)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def once() -> float:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env=env)  # fmt: skip
        return float(run.stdout)

    once()
    return statistics.median(once() for _ in range(ROUNDS))


@contextlib.contextmanager
def collector(binary: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--db", str(Path(d) / "bench.db")],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            proc.kill()
            raise SystemExit(f"the collector did not start: {line!r}")
        try:
            yield line.removeprefix("listening on ")
        finally:
            proc.terminate()
            proc.wait(10)


@contextlib.contextmanager
def silent_endpoint() -> Iterator[str]:
    """A loopback socket that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    srv.settimeout(0.2)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            with contextlib.suppress(OSError):
                held.append(srv.accept()[0])

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        done.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


SHUTDOWN_OURS = textwrap.dedent(
    """
    import time
    from telemetry_core import Client, Settings
    c = Client(Settings(product="bench", endpoint={url!r}, api_key="k", environment={{}}))
    for i in range(10_000):
        c.capture("queued", i=i)
    t = time.perf_counter(); c.shutdown(); print(time.perf_counter() - t)
    """
)
SHUTDOWN_POSTHOG = textwrap.dedent(
    """
    import time
    from posthog import Posthog
    p = Posthog("phc_bench", host={url!r})
    for i in range(10_000):
        p.capture("queued", distinct_id="bench", properties={{"i": i}})
    t = time.perf_counter(); p.shutdown(); print(time.perf_counter() - t)
    """
)


def shutdown_time(template: str, url: str, limit: float) -> float | None:
    """Seconds a fresh process spends in shutdown(); None when it exceeds `limit`."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", template.format(url=url)],
            capture_output=True,
            text=True,
            timeout=limit,
            check=True,
        ).stdout
    except subprocess.TimeoutExpired:
        return None
    return float(out.strip().splitlines()[-1])


class NoopContext:
    """The floor for a `with` block: a context manager that does nothing."""

    __slots__ = ()

    def __enter__(self) -> NoopContext:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def block_loop(block: Callable[[], object]) -> Callable[[int], None]:
    def loop(n: int) -> None:
        for _ in range(n):
            block()

    return loop


def with_block(cm: Any) -> Callable[[], None]:
    def block() -> None:
        with cm:
            pass

    return block


def usage_rows() -> tuple[list[tuple[str, float, float | None, float]], str]:
    """(what, ours, prometheus_client's, floor) per row, in seconds per block."""
    import prometheus_client

    from telemetry_core import Client, Settings

    client = Client(
        Settings(product="bench", sink="memory", environment={}, usage_report_delay=3600)
    )
    registry = prometheus_client.CollectorRegistry()
    histogram = prometheus_client.Histogram("bench_query", "q", registry=registry)
    by_route = prometheus_client.Histogram(
        "bench_rest", "r", ["route", "status"], registry=registry
    )
    timing = client.usage.timing("query")
    routes = client.usage.timing("rest", labels={"route": "safe", "status": "safe"})
    handle = routes.labels("GET /collections", 200)

    def theirs_with() -> None:
        with histogram.time():
            pass

    def ours_labeled() -> None:
        with routes.labels("GET /collections", 200):
            pass

    def theirs_labeled() -> None:
        with by_route.labels("GET /collections", "200").time():
            pass

    def plain() -> None:
        pass

    ours_decorated = timing(plain)
    theirs_decorated = histogram.time()(plain)

    n = 100_000
    noop = per_call(block_loop(with_block(NoopContext())), n)
    call = per_call(block_loop(plain), n)
    rows = [
        ("`with` block", per_call(block_loop(with_block(timing)), n),
         per_call(block_loop(theirs_with), n // 4), noop),
        ("`with` block, a held label set", per_call(block_loop(with_block(handle)), n),
         None, noop),
        ("`with` block, labels looked up", per_call(block_loop(ours_labeled), n),
         per_call(block_loop(theirs_labeled), n // 4), noop),
        ("decorated call", per_call(block_loop(ours_decorated), n),
         per_call(block_loop(theirs_decorated), n // 4), call),
    ]  # fmt: skip
    # Each timed round recorded every block: what was measured is the recording.
    if (timing.count, handle.count) != (2 * ROUNDS * n, 2 * ROUNDS * n):
        raise SystemExit(f"the timing rounds recorded {timing.count}, {handle.count} blocks")
    client.shutdown(1)
    return rows, importlib.metadata.version("prometheus_client")


@contextlib.contextmanager
def otlp_receiver(binary: str) -> Iterator[str]:
    """The OTLP/HTTP base URL of a fresh otlp-receiver on loopback."""
    import json

    with tempfile.TemporaryDirectory() as d:
        ready = Path(d) / "ready.json"
        proc = subprocess.Popen(
            [binary, "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while not ready.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the otlp-receiver did not start")
                time.sleep(0.02)
            yield "http://" + json.loads(ready.read_text())["http"]
        finally:
            proc.terminate()
            proc.wait(10)


TRACE_ATTRIBUTES = {"collection": "docs", "n_results": 10, "include_metadata": True}


def noop_decorator(f: Callable[..., Any]) -> Callable[..., Any]:
    """The floor for a filtered span: a decorator whose wrapper only calls through."""
    import functools

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(*args, **kwargs)

    return wrapper


def trace_rows(receiver_bin: str) -> tuple[list[tuple[str, float, float, str, bool]], str]:
    """(what, ours, theirs or the floor, the ratio shown, target met) per row."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from telemetry_core import Client, Settings
    from telemetry_core.opentelemetry import OpenTelemetryGranularity as G
    from telemetry_core.opentelemetry import start_span, trace_method

    with otlp_receiver(receiver_bin) as url:
        client = Client(
            Settings(product="bench", sink="memory", anonymized_telemetry=False,
                     environment={}, otel_collection_endpoint=url,
                     otel_protocol="http/protobuf", otel_granularity="operation")
        )  # fmt: skip
        provider = TracerProvider()
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces"))
        )
        theirs = provider.get_tracer("bench")

        class Ours:
            @trace_method("Collection.query", G.OPERATION, TRACE_ATTRIBUTES)
            def query(self, collection: str, n: int) -> int:
                return n

            @trace_method("Tokenizer.words", G.ALL)  # finer than configured: filtered
            def filtered(self, collection: str, n: int) -> int:
                return n

            @noop_decorator
            def floor(self, collection: str, n: int) -> int:
                return n

        class Theirs:
            @theirs.start_as_current_span("Collection.query", attributes=TRACE_ATTRIBUTES)
            def query(self, collection: str, n: int) -> int:
                return n

        ours_obj, theirs_obj = Ours(), Theirs()

        def ours_with() -> None:
            with start_span("Collection.query", G.OPERATION, TRACE_ATTRIBUTES):
                pass

        def theirs_with() -> None:
            with theirs.start_as_current_span("Collection.query", attributes=TRACE_ATTRIBUTES):
                pass

        def calls(method: Callable[[str, int], int]) -> Callable[[], object]:
            return lambda: method("docs", 10)

        # Rounds fit in both queues (2048 spans): a round measures spans, not dropping;
        # each exporter sends between rounds, untimed.
        n = 2000
        flush_ours = lambda: client.flush_spans(30)  # noqa: E731
        flush_theirs = lambda: provider.force_flush(30_000)  # noqa: E731
        flushes = (flush_ours, flush_theirs)
        with_block = paired(block_loop(ours_with), block_loop(theirs_with), n, 9, flushes)
        decorated = paired(
            block_loop(calls(ours_obj.query)), block_loop(calls(theirs_obj.query)), n, 9, flushes
        )
        rows_ = [
            ("span, 3 attributes: `with start_span` / `start_as_current_span`", *with_block),
            ("span, 3 attributes: `@trace_method` / `@start_as_current_span`", *decorated),
        ]
        filtered, floor = paired(
            block_loop(calls(ours_obj.filtered)), block_loop(calls(ours_obj.floor)), 100_000
        )
        stats = client.shutdown(10)
        span_stats = client.span_stats()
        provider.shutdown()
    recorded = 2 * 9 * n
    if span_stats["recorded"] != recorded or span_stats["exported"] != recorded:
        raise SystemExit(f"the span rounds lost spans: {span_stats} ({stats})")
    out = [(what, ours, them, f"{them / ours:6.1f}x faster", them >= 10 * ours)
           for what, ours, them in rows_]  # fmt: skip
    out.append(
        ("filtered span (granularity) / no-op decorator", filtered, floor,
         f"{filtered / floor:5.2f}x floor", filtered <= 1.2 * floor)
    )  # fmt: skip
    return out, importlib.metadata.version("opentelemetry-sdk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collector", required=True, help="path to telemetry-collector")
    parser.add_argument("--otlp-receiver", required=True, help="path to otlp-receiver")
    # posthog-python retries each batch with 15 s timeouts: about 100 s here. Waiting for
    # it to the end adds nothing to the comparison, so it is stopped at this limit.
    parser.add_argument("--posthog-shutdown-limit", type=float, default=60.0)
    args = parser.parse_args()

    import posthog
    from posthog import Posthog

    from telemetry_core import Client, Settings

    floor = per_call(kwargs_loop(Floor().capture), 200_000)

    off = Client(Settings(product="bench", sink="memory", anonymized_telemetry=False))
    ours_off = per_call(kwargs_loop(off.capture), 200_000)
    ph_off = Posthog("phc_bench", host="http://127.0.0.1:9", disabled=True)
    posthog_off = per_call(posthog_loop(ph_off.capture), 5_000)

    with collector(args.collector) as url:
        on = Client(Settings(product="bench", endpoint=url, api_key="phc_bench", environment={}))
        # Rounds fit in the queue (10,000): a round measures capture, not dropping; the
        # worker sends while the round runs, as it would in a host.
        ours_on = per_call(kwargs_loop(on.capture), 5_000, between=lambda: on.flush(30))
        stats = on.shutdown(30)
        if stats.dropped_queue_full or stats.sent != stats.captured:
            raise SystemExit(f"the capture rounds lost events: {stats}")
        ph = Posthog("phc_bench", host=url)
        posthog_on = per_call(posthog_loop(ph.capture), 1_000, between=ph.flush)
        ph.shutdown()

    # The caller's work alone, with no worker taking CPU: the worker is stuck in a request
    # to an endpoint that never answers and the queue (one slot) is full, so each capture
    # converts and builds its event, offers it, and drops it on this thread. (Letting the
    # queue grow instead would mostly measure the kernel zeroing fresh pages.)
    with silent_endpoint() as url:
        parked = Client(
            Settings(product="bench", endpoint=url, api_key="k", environment={},
                     queue_capacity=1, max_batch_events=1, max_retries=0)
        )  # fmt: skip
        parked.capture("start the worker")
        parked.capture("stuck in a request")
        time.sleep(0.2)
        ours_caller = per_call(kwargs_loop(parked.capture), 50_000)
        parked.shutdown(0.1)

    ours_import = import_time("telemetry_core")
    posthog_import = import_time("posthog")
    with silent_endpoint() as url:
        ours_shutdown = shutdown_time(SHUTDOWN_OURS, url, 10)
        posthog_shutdown = shutdown_time(SHUTDOWN_POSTHOG, url, args.posthog_shutdown_limit)

    def us(s: float) -> str:
        return f"{s * 1e6:8.2f} µs"

    def secs(s: float | None, limit: float) -> str:
        return f"  > {limit:.0f} s" if s is None else f"{s:8.3f} s"

    rows = [
        ("floor: no-op method, 5 kwargs", us(floor), "", "", "", ""),
        (
            "capture, 5 props, off",
            us(ours_off),
            us(posthog_off),
            f"{ours_off / floor:5.2f}x",
            f"{posthog_off / ours_off:7.0f}x",
            "≤ 1.3x floor, ≥ 50x",
        ),
        (
            "capture, 5 props, on",
            us(ours_on),
            us(posthog_on),
            f"{ours_on / floor:5.2f}x",
            f"{posthog_on / ours_on:7.0f}x",
            "≤ 3x floor, ≥ 50x",
        ),
        (
            "  the caller's work alone",
            us(ours_caller),
            "",
            f"{ours_caller / floor:5.2f}x",
            "",
            "(no worker running)",
        ),
        (
            "import",
            f"{ours_import * 1e3:8.2f} ms",
            f"{posthog_import * 1e3:8.2f} ms",
            "",
            f"{posthog_import / ours_import:7.0f}x",
            "≤ 20 ms",
        ),
        (
            "shutdown, silent endpoint, 10k queued",
            secs(ours_shutdown, 10),
            secs(posthog_shutdown, args.posthog_shutdown_limit),
            "",
            ""
            if ours_shutdown is None or posthog_shutdown is None
            else f"{posthog_shutdown / ours_shutdown:7.0f}x",
            "≤ 1.1 s",
        ),
    ]
    checks = [
        ours_off <= 1.3 * floor and posthog_off >= 50 * ours_off,
        ours_on <= 3 * floor and posthog_on >= 50 * ours_on,
        ours_caller <= 3 * floor,
        ours_import <= 0.020,
        ours_shutdown is not None and ours_shutdown <= 1.1,
    ]
    python = sys.version.split()[0]
    print(f"\nPython {python}: telemetry_core vs posthog-python {posthog.VERSION}")
    header = ("what", "ours", "posthog-python", "ours/floor", "posthog/ours", "target")
    widths = [38, 12, 15, 11, 13, 20]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for i, row in enumerate(rows):
        status = "" if i == 0 else ("ok" if checks[i - 1] else "MISSED")
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + status)

    timing_rows, prometheus_version = usage_rows()
    print(f"\nusage statistics: telemetry_core vs prometheus_client {prometheus_version}")
    header = ("what", "ours", "prometheus_client", "floor", "ours/floor", "prom/ours", "target")
    widths = [34, 12, 18, 12, 11, 10, 24]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for what, ours, theirs, floor_ in timing_rows:
        cells = (
            what,
            us(ours),
            "" if theirs is None else us(theirs),
            us(floor_),
            f"{ours / floor_:5.2f}x",
            "" if theirs is None else f"{theirs / ours:6.1f}x",
            "" if theirs is None else "faster than prometheus",
        )
        status = "" if theirs is None else ("ok" if ours < theirs else "MISSED")
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)) + status)

    rows3, otel_version = trace_rows(args.otlp_receiver)
    print(f"\ntraces: telemetry_core vs opentelemetry-sdk {otel_version} (OTLP/HTTP, loopback)")
    header = ("what", "ours", "theirs / floor", "", "target")
    widths = [66, 12, 15, 16, 24]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for i, (what, ours, theirs, ratio, met) in enumerate(rows3):
        target = "≤ 1.2x no-op decorator" if i == len(rows3) - 1 else "≥ 10x faster"
        cells = (what, us(ours), us(theirs), ratio, target)
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)) + ("ok" if met else "MISSED"))


if __name__ == "__main__":
    main()
