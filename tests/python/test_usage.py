"""Usage statistics through the Python binding: the shared report vectors, recording from
threads, tasks and decorators, the errors, and the report going home only with consent.

The HTTP side (WSGI, ASGI, the frameworks, the loopback server, /metrics) is in
test_usage_http.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import pickle
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from telemetry_core import Client, Settings, TelemetryError, UsageError
from telemetry_core.usage import TimedFunction, Timing, TimingFamily, Usage

from conftest import VECTORS, Collector, clean_env, run_python

USAGE_VECTORS: dict[str, Any] = json.loads((VECTORS / "usage.json").read_text())


def local_client(**kw: Any) -> Client:
    """An opted-out client: it records and renders, and sends nothing."""
    settings: dict[str, Any] = {
        "product": "acme",
        "version": "1.0",
        "sink": "memory",
        "anonymized_telemetry": False,
        **kw,
    }
    return Client(Settings(**settings))


def strict(value: Any) -> str:
    """JSON text that tells 1 from 1.0, as the vectors do."""
    return json.dumps(value, sort_keys=True)


# -- the shared vectors ------------------------------------------------------------------


@pytest.mark.parametrize("case", USAGE_VECTORS["cases"], ids=lambda c: c["name"])
def test_usage_vector(case: dict[str, Any]) -> None:
    """As crates/telemetry-core/tests/usage_vectors.rs: the client built from the case's
    config, its declarations, recordings and sections, then each expected report (the
    machine-dependent `system` only checked to be there when expected)."""
    client = Client(Settings(**case["config"]))
    usage = client.usage
    timings: dict[str, TimingFamily] = {}
    counters = {}
    for d in case["declare"]:
        if d["type"] == "timing":
            bounds = d.get("bounds_millis")
            timings[d["name"]] = usage.timing(
                d["name"],
                labels=d["labels"],
                bounds=None if bounds is None else [b / 1000 for b in bounds],
            )
        else:
            counters[d["name"]] = usage.counter(d["name"], labels=d["labels"])
    for r in case["record"]:
        if "add" in r:
            counters[r["family"]].labels(*r["labels"]).inc(r["add"])
            continue
        timing = timings[r["family"]].labels(*r["labels"])
        if r["ok"]:
            timing.record(r["duration_micros"] / 1e6, at=r["at"])
        else:
            timing.record_failure(at=r["at"])
    for s in case["sections"]:
        usage.set_section(s["name"], s["value"], kinds=s["kinds"], level=s["level"])
    for expect in case["expect"]:
        got = usage.report(
            details_level=expect["details_level"],
            anonymize=expect["anonymize"],
            histograms=expect["histograms"],
        )
        system = got.pop("system", None)
        want = dict(expect["report"])
        wants_system = want.pop("system", None) is not None
        where = f"{case['name']}: {expect['details_level']=}, {expect['anonymize']=}"
        assert isinstance(system, dict) is wants_system, where
        assert strict(got) == strict(want), where
    client.shutdown(0)


# -- recording ---------------------------------------------------------------------------


def test_with_times_the_block_and_an_exception_counts_a_failure_and_goes_on() -> None:
    usage = local_client().usage
    query = usage.timing("query")
    with query as entered:
        time.sleep(0.01)
    assert entered is query
    with pytest.raises(KeyError), query:
        raise KeyError("boom")
    s = query.snapshot()
    assert (s.count, s.fail_count) == (1, 1)
    assert 0.01 <= s.min_seconds == s.max_seconds == s.total_seconds < 5
    assert s.last_responded is not None
    assert abs(s.last_responded - time.time()) < 5
    rest = usage.timing("rest", labels={"route": "safe", "status": "safe"})
    with rest.labels("GET /a", 200):
        pass
    with rest.labels(route="GET /a", status="200"):  # by name, the same label set
        pass
    assert rest.labels("GET /a", "200").count == 2
    assert rest.labels("GET /a", 200).label_values == ("GET /a", "200")


def test_record_and_the_histogram_follow_the_declared_bounds() -> None:
    usage = local_client().usage
    jobs = usage.timing("jobs", bounds=[0.01, 0.1, 1])
    assert jobs.bounds == (0.01, 0.1, 1.0)
    for seconds in (0.0015, 0.01, 0.010001, 2.5, 0):
        jobs.record(seconds)
    jobs.record_failure()
    s = jobs.snapshot()
    assert (s.count, s.fail_count) == (5, 1)
    assert s.cumulative_counts == [3, 4, 4]  # a duration on a bound falls in its bucket
    assert s.bounds == [0.01, 0.1, 1.0]
    assert s.total_seconds == pytest.approx(2.521501)
    assert s.avg_seconds == pytest.approx(2.521501 / 5)
    assert (s.min_seconds, s.max_seconds) == (0.0, 2.5)
    # Micro-second inputs are exact to the nanosecond (0.0015 s is not 1,499,999 ns).
    exact = usage.timing("exact")
    exact.record(0.0015)
    exact.record(123.456789)
    report = usage.report(details_level=1)["operations"]["exact"]
    assert (report["min_duration_micros"], report["max_duration_micros"]) == (1500.0, 123456789.0)


class Boom(Exception):
    pass


def test_start_gives_a_measurement_to_stop_or_fail_later() -> None:
    usage = local_client().usage
    t = usage.timing("upload")
    scope = t.start()
    time.sleep(0.005)
    assert not scope.done
    assert scope.elapsed >= 0.005
    assert scope.stop() >= 0.005
    with pytest.raises(UsageError, match="already"):
        scope.stop()
    t.start().fail()
    with t.start() as inside:
        inside.fail()  # the end of the block records nothing more
    with pytest.raises(Boom), t.start():
        raise Boom
    t.start()  # never stopped: nothing recorded
    assert (t.count, t.fail_count) == (1, 3)


def test_counters_add_up_by_label_set() -> None:
    usage = local_client().usage
    points = usage.counter("points", labels=["collection"], help="Points written")
    points.labels("a").inc(10)
    points.labels(collection="a").inc()
    points.labels("b").inc(0)
    starts = usage.counter("starts")
    starts.inc()
    starts.inc(2)
    assert (points.labels("a").value, starts.value) == (11, 3)
    report = usage.report(details_level=2)["counters"]
    assert report["points"]["total"] == 11
    assert report["points"]["by_labels"] == [
        {"labels": {"collection": "a"}, "value": 11},
        {"labels": {"collection": "b"}, "value": 0},
    ]
    assert report["starts"] == {"total": 3}
    with pytest.raises(UsageError, match="only goes up"):
        starts.inc(-1)
    with pytest.raises(TypeError):
        starts.inc(1.5)  # type: ignore[arg-type]


def test_one_handle_shared_by_threads_times_each_block_from_its_own_start() -> None:
    """Thread A enters, B enters 0.2 s later, A leaves 0.05 s after that and B 0.25 s
    later: one record of starts for the whole process, last in first out, would give A
    0.05 s (B's start) and B 0.5 s (A's); each block keeps its own, 0.25 s and 0.3 s."""
    t = local_client().usage.timing("shared")
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with t:
            a_in.set()
            b_in.wait(10)
            time.sleep(0.05)
        a_out.set()

    def second() -> None:
        a_in.wait(10)
        time.sleep(0.2)
        with t:
            b_in.set()
            a_out.wait(10)
            time.sleep(0.25)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    s = t.snapshot()
    assert s.count == 2
    assert s.min_seconds >= 0.25
    assert s.max_seconds < 0.5


def test_tasks_interleaving_on_one_thread_time_each_block_from_its_own_start() -> None:
    """Task A enters, task B enters, A leaves before B: a per-thread last-in-first-out
    record of starts would give A B's start and B A's; each block keeps its own."""
    t = local_client().usage.timing("handler")

    async def a() -> None:
        with t:
            await asyncio.sleep(0.5)

    async def b() -> None:
        await asyncio.sleep(0.2)
        with t:
            await asyncio.sleep(0.5)

    async def main() -> None:
        await asyncio.gather(a(), b())

    asyncio.run(main())
    s = t.snapshot()
    assert s.count == 2
    assert s.min_seconds >= 0.49  # mixed up, A would get 0.3 s
    assert s.max_seconds < 0.69  # and B 0.7 s


def test_generators_interleaving_keep_their_own_starts() -> None:
    """As the tasks: `slow` enters, `fast` enters 0.1 s later, `slow` leaves 0.05 s after
    that and `fast` 0.25 s later (0.15 s and 0.3 s; mixed up, 0.05 s and 0.4 s)."""
    t = local_client().usage.timing("gen")

    def block() -> Any:
        with t:
            yield

    def finish(g: Any) -> None:
        with contextlib.suppress(StopIteration):
            next(g)

    slow, fast = block(), block()
    next(slow)
    time.sleep(0.1)
    next(fast)
    time.sleep(0.05)
    finish(slow)
    time.sleep(0.25)
    finish(fast)
    s = t.snapshot()
    assert s.count == 2
    assert s.min_seconds >= 0.15
    assert s.max_seconds < 0.39


def test_recursion_and_nesting_close_blocks_in_order() -> None:
    t = local_client().usage.timing("tree")

    def walk(depth: int) -> None:
        with t:
            time.sleep(0.01)
            if depth:
                walk(depth - 1)

    walk(3)
    s = t.snapshot()
    assert s.count == 4
    assert s.max_seconds >= 0.04
    assert s.min_seconds >= 0.01
    with t, t:
        pass
    assert t.count == 6


def test_enter_and_exit_from_different_frames_still_pair() -> None:
    t = local_client().usage.timing("stacked")
    with contextlib.ExitStack() as stack:
        stack.enter_context(t)
        time.sleep(0.01)
    assert t.count == 1
    assert t.snapshot().min_seconds >= 0.01
    with pytest.raises(UsageError, match="without a matching __enter__"):
        t.__exit__(None, None, None)


def test_an_unlabeled_family_is_its_own_handle() -> None:
    usage = local_client().usage
    with usage.timing("startup"):
        pass
    usage.timing("startup").record(0.5)
    assert usage.timing("startup").count == 2  # declaring again finds the same family
    labeled = usage.timing("by_route", labels={"route": "safe"})
    with pytest.raises(UsageError, match=r"takes 1 label value.*labels\(\.\.\.\)"), labeled:
        pass
    with pytest.raises(UsageError, match="label"):
        labeled.record(0.1)


# -- the decorator -----------------------------------------------------------------------

USAGE = local_client().usage
MODULE_TIMING = USAGE.timing("module_level")


@MODULE_TIMING
def module_level_double(x: int) -> int:
    """Doubles x."""
    return 2 * x


def test_decorating_a_function_times_each_call_and_keeps_its_metadata() -> None:
    before = MODULE_TIMING.count
    assert module_level_double(21) == 42
    assert MODULE_TIMING.count == before + 1
    assert isinstance(module_level_double, TimedFunction)
    assert module_level_double.__name__ == "module_level_double"
    assert module_level_double.__doc__ == "Doubles x."
    assert module_level_double.__wrapped__(1) == 2  # type: ignore[attr-defined]
    assert str(inspect.signature(module_level_double)) == "(x: 'int') -> 'int'"
    assert not inspect.iscoroutinefunction(module_level_double)
    # Pickled by name, as the function it replaces (multiprocessing needs that).
    assert pickle.loads(pickle.dumps(module_level_double)) is module_level_double
    assert "module_level_double" in repr(module_level_double)


def test_a_decorated_call_that_raises_counts_a_failure_and_the_error_goes_on() -> None:
    t = local_client().usage.timing("parse")

    @t
    def parse(text: str, *, base: int = 10) -> int:
        return int(text, base)

    assert parse("ff", base=16) == 255
    with pytest.raises(ValueError, match="invalid literal"):
        parse("nope")
    assert (t.count, t.fail_count) == (1, 1)


def test_a_decorated_method_binds_its_instance() -> None:
    t = local_client().usage.timing("method")

    class Index:
        def __init__(self) -> None:
            self.size = 3

        @t
        def search(self, k: int) -> int:
            return self.size * k

        @staticmethod
        @t
        def static(k: int) -> int:
            return k

    assert Index().search(2) == 6
    assert Index.search(Index(), 1) == 3
    assert Index.static(5) == 5
    assert t.count == 3


def test_decorating_a_coroutine_function_times_the_await() -> None:
    t = local_client().usage.timing("fetch")

    @t
    async def fetch(pause: float, fail: bool = False) -> str:
        await asyncio.sleep(pause)
        if fail:
            raise ConnectionError("down")
        return "ok"

    assert inspect.iscoroutinefunction(fetch)  # frameworks await it, not run it in a thread
    assert fetch.__name__ == "fetch"
    assert asyncio.run(fetch(0.05)) == "ok"
    with pytest.raises(ConnectionError):
        asyncio.run(fetch(0, fail=True))
    s = t.snapshot()
    assert (s.count, s.fail_count) == (1, 1)
    assert s.min_seconds >= 0.05  # the await, not only making the coroutine


def test_what_cannot_be_decorated_is_refused() -> None:
    usage = local_client().usage
    t = usage.timing("gens")

    def gen() -> Any:
        yield 1

    async def agen() -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator function"):
        t(gen)
    with pytest.raises(TypeError, match="generator function"):
        t(agen)
    with pytest.raises(TypeError, match="decorates a function"):
        t(42)  # type: ignore[type-var]
    labeled = usage.timing("labeled", labels=["route"])
    with pytest.raises(UsageError, match="labels"):
        labeled(lambda: None)


# -- errors ------------------------------------------------------------------------------


def test_declarations_the_core_refuses_raise_usage_error() -> None:
    usage = local_client().usage
    assert issubclass(UsageError, TelemetryError)
    for bad in ("", "Has-Caps", "9lives", "x" * 101):
        with pytest.raises(UsageError, match="invalid name"):
            usage.timing(bad)
    for bounds in ([], [0.1, 0.1], [0.5, 0.1], [0], [0.001] * 16):
        with pytest.raises(UsageError, match="bounds"):
            usage.timing("b", bounds=bounds)
    with pytest.raises(UsageError, match="non-negative"):
        usage.timing("b", bounds=[-1])
    with pytest.raises(UsageError, match="unknown"):
        usage.timing("k", labels={"route": "secretive"})
    with pytest.raises(UsageError, match="twice"):
        usage.timing("k", labels=["a", "a"])
    usage.timing("shape", labels=["a"])
    with pytest.raises(UsageError, match="other labels"):
        usage.timing("shape", labels=["b"])
    with pytest.raises(UsageError, match="already a timing"):
        usage.counter("shape")
    with pytest.raises(TypeError, match="not a str"):
        usage.timing("s", labels="route")
    with pytest.raises(TypeError):
        usage.timing("s", labels=[("a", "safe", "extra")])  # type: ignore[list-item]


def test_recordings_the_core_refuses_raise_usage_error() -> None:
    usage = local_client().usage
    rest = usage.timing("rest", labels={"route": "safe", "status": "safe"})
    with pytest.raises(UsageError, match=r"rest takes 2 label value\(s\) \(route, status\), got 1"):
        rest.labels("GET /")
    with pytest.raises(UsageError, match='unknown label "method"'):
        rest.labels(route="GET /", method="GET")
    with pytest.raises(UsageError, match='label "status" has no value'):
        rest.labels(route="GET /")
    with pytest.raises(TypeError, match="either by position or by name"):
        rest.labels("GET /", status=200)
    with pytest.raises(TypeError, match="str or int"):
        rest.labels("GET /", 2.5)  # type: ignore[arg-type]
    handle = rest.labels("GET /", 200)
    for seconds in (-0.1, float("nan"), float("inf"), 10**30):
        with pytest.raises(UsageError, match="non-negative number of seconds"):
            handle.record(seconds)
    with pytest.raises(TypeError, match="number of seconds"):
        handle.record("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="number of seconds"):
        handle.record(True)
    with pytest.raises(UsageError, match="Unix time"):
        handle.record(1, at=-5)
    assert handle.count == 0


# -- sections and the report -------------------------------------------------------------


def test_sections_app_fields_and_the_data_dir_shape_the_report(tmp_path: Path) -> None:
    usage = local_client().usage
    usage.set_section(
        "collections",
        {"number": 2, "names": ["my_collection", "other"], "config": {"on_disk": True}},
        kinds={"number": "exact", "config": "safe"},
    )
    usage.set_section("cluster", {"peers": 3}, kinds={"peers": "exact"}, level=3)
    usage.set_app_fields({"features": ["gpu"], "startup_ms": 1234}, kinds={"features": "safe"})
    usage.set_data_dir(tmp_path)
    plain = usage.report(details_level=2)
    assert plain["collections"]["names"] == ["my_collection", "other"]
    assert "cluster" not in plain  # declared at level 3
    assert plain["app"]["features"] == ["gpu"]
    assert plain["app"]["name"] == "acme"
    assert isinstance(plain["system"]["disk_bytes"], int)
    assert str(tmp_path) not in json.dumps(plain)  # the size of the disk, never its path
    sent = usage.report(details_level=2, anonymize=True)
    assert sent["collections"]["number"] == 2
    assert sent["collections"]["config"] == {"on_disk": True}
    names = sent["collections"]["names"]
    assert len(names) == 2
    assert all(len(n) == 16 and n not in ("my_collection", "other") for n in names)
    assert sent["app"]["startup_ms"] == 1230  # rounded to 3 digits
    assert usage.report(details_level=3)["cluster"] == {"peers": 3}
    assert usage.remove_section("cluster")
    assert not usage.remove_section("cluster")
    for reserved in ("id", "app", "system", "counters", "operations"):
        with pytest.raises(UsageError, match="core's own"):
            usage.set_section(reserved, {})
    with pytest.raises(UsageError, match="from 0"):
        usage.report(details_level=-1)
    with pytest.raises(UsageError, match="from 0"):
        usage.set_section("x", {}, level=-1)
    with pytest.raises(TypeError, match="has type object"):
        usage.set_section("x", {"k": object()})
    with pytest.raises(TypeError, match="must be a dict"):
        usage.set_app_fields(["not", "a", "dict"])  # type: ignore[arg-type]


def test_levels_above_four_mean_four() -> None:
    usage = local_client().usage
    usage.timing("op", labels=["k"]).labels("a").record(0.002)
    usage.set_section("deep", {"x": True}, level=4)

    def without_volatile(report: dict[str, Any]) -> dict[str, Any]:
        report["system"]["resident_bytes"] = None
        return report

    assert without_volatile(usage.report(details_level=9)) == without_volatile(
        usage.report(details_level=4)
    )
    assert usage.report(details_level=4)["deep"] == {"x": True}
    assert "deep" not in usage.report(details_level=3)


def test_two_clients_keep_their_own_numbers() -> None:
    a, b = local_client(product="alpha").usage, local_client(product="beta").usage
    a.counter("requests").inc(3)
    b.counter("requests").inc(5)
    assert a.report()["counters"]["requests"]["total"] == 3
    assert b.report()["counters"]["requests"]["total"] == 5
    assert "alpha_requests_total 3" in a.prometheus()
    assert "beta" not in a.prometheus()
    assert isinstance(a, Usage)
    assert repr(a) == '<telemetry_core.Usage product="alpha">'


# -- many threads ------------------------------------------------------------------------


def test_64_threads_on_one_key_give_exact_counts_and_buckets() -> None:
    usage = local_client().usage
    rest = usage.timing("rest", labels={"route": "safe"})
    blocks = usage.timing("blocks")
    points = usage.counter("points")
    threads, per_thread = 64, 400
    start = threading.Barrier(threads)

    def work() -> None:
        timing = rest.labels("GET /a")  # every thread: the same label set
        start.wait(30)
        for i in range(per_thread):
            # 0.5 ms (first bucket), 7 ms (third), failures and timed blocks, in a fixed mix.
            kind = i % 4
            if kind == 0:
                timing.record(0.0005)
            elif kind == 1:
                timing.record(0.007)
            elif kind == 2:
                timing.record_failure()
            else:
                # One handle for all: how long a block takes depends on the GIL's switches,
                # so only its count is known.
                with blocks:
                    pass
            points.inc(2)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    quarter = threads * per_thread // 4
    report = usage.report(details_level=3)
    op = report["operations"]["rest"]
    assert (op["count"], op["fail_count"]) == (2 * quarter, quarter)
    cumulative = op["duration_histogram"]["cumulative_counts"]
    assert cumulative[0] == quarter  # le 1 ms: the 0.5 ms ones
    assert cumulative[1] == quarter  # le 5 ms
    assert cumulative[2] == 2 * quarter  # le 10 ms: the 7 ms ones too
    assert cumulative[-1] == 2 * quarter
    assert op["total_duration_micros"] == pytest.approx(quarter * 7500)
    assert op["by_labels"][0]["count"] == 2 * quarter
    timed = report["operations"]["blocks"]
    assert (timed["count"], timed["fail_count"]) == (quarter, 0)
    assert timed["duration_histogram"]["cumulative_counts"][-1] == quarter
    assert report["counters"]["points"]["total"] == threads * per_thread * 2


# -- consent -----------------------------------------------------------------------------


def test_opted_out_recording_works_and_nothing_is_sent() -> None:
    client = Client(
        Settings(
            product="acme",
            sink="memory",
            anonymized_telemetry=False,
            usage_report_delay=0.05,
        )
    )
    assert not client.enabled
    q = client.usage.timing("query")
    for _ in range(100):
        with q:
            pass
    time.sleep(0.3)
    assert client.usage.report()["operations"]["query"]["count"] == 100
    assert "acme_query_seconds_count 100" in client.usage.prometheus()
    stats = client.shutdown(1)
    assert stats.captured == 0
    assert client.delivered() == []


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_opted_out_recording_starts_no_thread(home: Path) -> None:
    code = textwrap.dedent(
        """
        import os, time
        from telemetry_core import Client, Settings
        threads = lambda: len(os.listdir("/proc/self/task"))
        # Were it on, it would send to a closed port here; it is off.
        client = Client(Settings(product="acme", anonymized_telemetry=False,
                                 endpoint="http://127.0.0.1:9", api_key="k",
                                 usage_report_delay=0.01))
        before = threads()
        t = client.usage.timing("q")
        for _ in range(1000):
            with t:
                pass
        client.usage.counter("c").inc()
        client.usage.set_section("s", {"a": 1})
        client.usage.report(details_level=4)
        client.usage.prometheus()
        time.sleep(0.2)
        print(before, threads(), t.count)
        """
    )
    result = run_python(code, clean_env(home), home)
    assert result.returncode == 0, result.stderr
    before, after, count = map(int, result.stdout.split())
    assert (after, count) == (before, 1000)
    assert list(home.rglob("*")) == [], "a file was written"


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_enabled_the_report_goes_home_anonymized_after_the_delay(home: Path) -> None:
    client = Client(
        Settings(
            product="qdrant",
            version="1.19.0",
            sink="memory",
            environment={},
            install_id="6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b",
            secret_hex="11a245dd53334a50626b2356ccff3083922976f8016efbfb387ac3ab23a0dcf7",
            usage_report_delay=0.2,
            usage_report_interval=3600,
        )
    )
    assert client.enabled
    rest = client.usage.timing("rest_responses", labels={"collection": "hashed", "status": "safe"})
    started = time.monotonic()
    rest.labels("my_collection", 200).record(0.003)
    client.usage.set_section(
        "collections", {"number": 1, "names": ["my_collection"]}, kinds={"number": "exact"}
    )
    wait_for(lambda: client.delivered())
    assert time.monotonic() - started >= 0.15, "sent before the delay"
    [report] = client.delivered()
    assert report["event"] == "usage_report"
    props = report["properties"]
    # The properties are the anonymized report, as the local endpoint renders it, beside
    # the context every event carries.
    local = client.usage.report(details_level=2, anonymize=True, histograms=True)
    for doc in (props, local):
        doc["system"].pop("resident_bytes")
    assert strict({k: props[k] for k in local}) == strict(local)
    assert props["$geoip_disable"] is True
    item = props["operations"]["rest_responses"]["by_labels"][0]
    hashed = item["labels"]["collection"]
    assert len(hashed) == 16
    assert hashed != "my_collection"
    assert item["labels"]["status"] == "200"
    assert props["collections"] == {"number": 1, "names": [hashed]}
    assert props["id"] == report["distinct_id"] == "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"
    rest.labels("my_collection", 500).record_failure()
    stats = client.shutdown(2)
    reports = client.delivered()
    assert len(reports) == 2, "one more at shutdown"
    assert reports[1]["properties"]["operations"]["rest_responses"]["fail_count"] == 1
    assert (stats.captured, stats.sent) == (2, 2)


def test_the_report_reaches_the_real_collector(collector: Collector, home: Path) -> None:
    client = Client(
        Settings(
            product="acme",
            version="2.0",
            endpoint=collector.url,
            api_key="phc_usage",
            environment={"HOME": str(home)},
            usage_report_delay=0.1,
        )
    )
    searches = client.usage.timing("searches", labels={"collection": "hashed"})
    for _ in range(3):
        with searches.labels("books"):
            pass
    collector.wait_for(1)
    client.shutdown(5)
    events = collector.events("usage_report")
    assert events, collector.summary()
    props = events[-1]["properties"]
    assert props["app"]["name"] == "acme"
    op = props["operations"]["searches"]
    assert op["count"] == 3
    assert op["by_labels"][0]["labels"]["collection"] != "books"
    assert len(op["duration_histogram"]["cumulative_counts"]) == 11


def test_usage_reports_false_keeps_the_report_local() -> None:
    client = Client(
        Settings(
            product="acme", sink="memory", environment={}, usage_reports=False,
            usage_report_delay=0.01,
        )
    )  # fmt: skip
    assert client.enabled
    client.usage.counter("c").inc()
    client.capture("started")
    stats = client.shutdown(2)
    assert [e["event"] for e in client.delivered()] == ["started"]
    assert stats.captured == 1
    with pytest.raises(TypeError, match="usage_reports"):
        Settings(usage_reports="yes")  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_records_its_own_and_closes_a_server_it_did_not_start() -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    usage = local_client().usage
    t = usage.timing("work")
    t.record(0.001)
    server = usage.serve("127.0.0.1:0")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its copy of the server has no thread behind it
        code = 1
        try:
            t.record(0.001)
            server.close()  # must not wait for the parent's thread
            os.write(write, str(t.count).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    deadline = time.monotonic() + 20
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the child hung closing the server")
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.read(read, 100) == b"2"
    os.close(read)
    assert not server.closed
    assert t.count == 1
    server.close()
    assert server.closed


def test_handles_are_the_public_types() -> None:
    usage = local_client().usage
    family = usage.timing("typed", labels=["k"])
    assert isinstance(family, TimingFamily)
    assert isinstance(family.labels("v"), Timing)
    assert family.name == "typed"
    assert family.label_names == ("k",)
    assert repr(family.labels("v")) == '<Timing typed("v") count=0 fail_count=0>'
