"""Crashes for real: a Python program (APP below) with an uncaught exception in its main
thread or in a thread, as a child process reporting to the real collector. Its report
(scrubbed) is stored before the child has exited: the collector is asked right after the
child's exit, without waiting. Its exit status and its own traceback on stderr are what
they are without the hooks; a dead endpoint delays the crash by at most the deadline;
opted out, nothing is sent and nothing is started.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Collector, clean_env

APP = textwrap.dedent(
    '''
    """A host that crashes on purpose, the way argv[1] says."""
    import json, os, sys, threading

    if os.environ.get("REPORT_THREADS"):
        # The host's own hooks, installed first: they run after telemetry_core's report
        # and count this process's threads then.
        before = len(os.listdir("/proc/self/task"))

        def counted(previous):
            def hook(*args):
                now = len(os.listdir("/proc/self/task"))
                print(json.dumps({"threads_before": before, "threads_in_hook": now}))
                previous(*args)
            return hook

        sys.excepthook = counted(sys.excepthook)
        threading.excepthook = counted(threading.excepthook)

    from telemetry_core import Client, Settings


    def client(product="crashy"):
        return Client(Settings(product=product, version="2.0.0",
                               endpoint=os.environ["ENDPOINT"], api_key="phc_test",
                               crash_deadline=float(os.environ.get("DEADLINE", "1.0")),
                               usage_reports=False))


    class Database:
        def connect(self, host):
            raise ConnectionRefusedError(
                f"cannot connect to {host}:5432 as alice@example.com from 10.20.30.40, "
                f"see {os.path.expanduser('~')}/.crashy/config.toml")


    def start():
        Database().connect("db01.internal")


    def start_chained():
        try:
            start()
        except OSError as e:
            raise RuntimeError("the service could not start") from e


    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("str() fails too")


    class Reentrant(Exception):
        """Its message makes another exception reach sys.excepthook while reporting."""
        def __str__(self):
            try:
                raise LookupError("raised while reporting")
            except LookupError:
                sys.excepthook(*sys.exc_info())
            return "the outer one"


    mode = sys.argv[1]
    main = client()
    if mode == "host-hook":
        def host_hook(t, v, tb):
            sys.stderr.write(f"host hook saw {t.__name__}\\n")
            sys.__excepthook__(t, v, tb)
        sys.excepthook = host_hook
    elif mode == "host-hook-exits":
        sys.excepthook = lambda t, v, tb: os._exit(3)
    if os.environ.get("HOOKS", "1") == "1" and mode != "with-block":
        main.report_crashes()

    if mode in ("main", "host-hook", "host-hook-exits"):
        start()
    elif mode == "thread":
        t = threading.Thread(target=start, name="worker")
        t.start()
        t.join()
        print("the main thread goes on")
    elif mode == "chained":
        start_chained()
    elif mode == "unprintable":
        raise Unprintable()
    elif mode == "reentrant":
        raise Reentrant()
    elif mode == "interrupt":
        raise KeyboardInterrupt
    elif mode == "two-clients":
        library = client("crashy-lib")
        quiet = client("quiet")  # QUIET_TELEMETRY_DISABLED=1: opted out
        assert not quiet.enabled
        for c in (library, quiet):
            c.report_crashes()
        start()
    elif mode == "with-block":
        with client() as c:
            c.report_crashes()
            start()
    elif mode == "storm":
        def fail(i):
            raise type(f"Storm{i}", (Exception,), {})(f"storm {i}")
        threads = [threading.Thread(target=fail, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("the storm is over")
    '''
)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "app" / "crashy.py"
    path.parent.mkdir()
    path.write_text(APP)
    return path


def run(
    app: Path, mode: str, home: Path, endpoint: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    t = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(app), mode],
        env=clean_env(home, ENDPOINT=endpoint, **env),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, time.monotonic() - t


def exceptions(collector: Collector) -> list[dict[str, Any]]:
    return [e["properties"] for e in collector.events("$exception")]


def fatal(collector: Collector, product: str = "crashy") -> list[dict[str, Any]]:
    return [
        e["properties"]
        for e in collector.events("$exception")
        if e["properties"]["$exception_level"] == "fatal" and e["properties"]["product"] == product
    ]


def test_an_uncaught_exception_is_reported_before_the_process_dies_as_it_would(
    app: Path, collector: Collector, home: Path
) -> None:
    baseline, _ = run(app, "main", home, collector.url, HOOKS="0")
    assert baseline.returncode == 1
    result, _ = run(app, "main", home, collector.url)
    # The host's own behaviour: exit status 1 and the same traceback, word for word.
    assert result.returncode == 1, result.stderr
    assert result.stderr == baseline.stderr
    assert "ConnectionRefusedError: cannot connect to db01.internal" in result.stderr
    assert result.stdout == ""
    # Asked at once: the report was stored before the child exited.
    (report,) = fatal(collector)
    assert (report["$exception_handled"], report["$exception_suppressed"]) == (False, 0)
    (entry,) = report["$exception_list"]
    assert entry["type"] == "ConnectionRefusedError"
    assert entry["mechanism"]["handled"] is False
    value = entry["value"]
    for private in ("alice@example.com", "10.20.30.40", str(home)):
        assert private not in value, value
    assert "config.toml" in value, value
    got = [(f["function"], f["filename"], f["in_app"]) for f in entry["stacktrace"]["frames"]]
    connect = "Database.connect" if sys.version_info >= (3, 11) else "connect"
    assert got == [
        ("<module>", "crashy.py", True),
        ("start", "crashy.py", True),
        (connect, "crashy.py", True),
    ]
    assert all(isinstance(f["lineno"], int) for f in entry["stacktrace"]["frames"])
    # The collector groups it by fingerprint.
    groups = collector.get("/api/errors", product="crashy")
    assert [g["fingerprint"] for g in groups] == [report["$exception_fingerprint"]]
    # The same crash again groups with it: the fingerprint ignores lines and messages.
    run(app, "main", home, collector.url)
    assert [g["count"] for g in collector.get("/api/errors", product="crashy")] == [2]


def test_an_uncaught_exception_in_a_thread_is_reported_and_the_process_goes_on(
    app: Path, collector: Collector, home: Path
) -> None:
    baseline, _ = run(app, "thread", home, collector.url, HOOKS="0")
    result, _ = run(app, "thread", home, collector.url)
    assert result.returncode == baseline.returncode == 0, result.stderr
    assert result.stdout == baseline.stdout == "the main thread goes on\n"
    assert result.stderr == baseline.stderr
    assert "Exception in thread worker" in result.stderr
    (report,) = fatal(collector)
    frames = report["$exception_list"][0]["stacktrace"]["frames"]
    # The thread's bootstrap is the standard library's; the rest is the host's.
    assert [f["in_app"] for f in frames] == [False, False, True, True]
    assert frames[0]["filename"] == "threading.py"


def test_chained_causes_are_reported_with_their_own_frames(
    app: Path, collector: Collector, home: Path
) -> None:
    result, _ = run(app, "chained", home, collector.url)
    assert result.returncode == 1
    assert "The above exception was the direct cause" in result.stderr
    (report,) = fatal(collector)
    top, cause = report["$exception_list"]
    assert (top["type"], top["value"]) == ("RuntimeError", "the service could not start")
    assert cause["type"] == "ConnectionRefusedError"
    assert "alice@example.com" not in cause["value"]
    assert [f["function"].rsplit(".", 1)[-1] for f in cause["stacktrace"]["frames"]] == [
        "start_chained",
        "start",
        "connect",
    ]


def test_an_exception_whose_str_raises_is_reported_and_printed_as_python_does(
    app: Path, collector: Collector, home: Path
) -> None:
    baseline, _ = run(app, "unprintable", home, collector.url, HOOKS="0")
    result, _ = run(app, "unprintable", home, collector.url)
    assert result.returncode == baseline.returncode == 1
    assert result.stderr == baseline.stderr
    (report,) = fatal(collector)
    assert report["$exception_list"][0]["value"] == "<exception str() failed>"


def test_an_exception_raised_while_reporting_is_not_reported_again(
    app: Path, collector: Collector, home: Path
) -> None:
    baseline, _ = run(app, "reentrant", home, collector.url, HOOKS="0")
    result, _ = run(app, "reentrant", home, collector.url)
    assert result.returncode == baseline.returncode == 1
    # Both tracebacks still print (the outer one's message is made after its type is
    # written, so the inner one lands in between).
    assert "LookupError: raised while reporting" in result.stderr
    assert "Reentrant" in result.stderr
    assert result.stderr.endswith(": the outer one\n")
    reports = exceptions(collector)
    assert [r["$exception_list"][0]["value"] for r in reports] == ["the outer one"]


def test_the_previous_hook_runs_after_the_report_even_one_that_exits(
    app: Path, collector: Collector, home: Path
) -> None:
    result, _ = run(app, "host-hook", home, collector.url)
    assert result.returncode == 1
    assert result.stderr.startswith("host hook saw ConnectionRefusedError\nTraceback")
    assert len(fatal(collector)) == 1
    result, _ = run(app, "host-hook-exits", home, collector.url)
    assert (result.returncode, result.stderr) == (3, "")
    assert len(fatal(collector)) == 2  # the report went out before the host's os._exit


def test_a_client_leaving_its_with_block_by_a_crash_still_reports_it(
    app: Path, collector: Collector, home: Path
) -> None:
    result, _ = run(app, "with-block", home, collector.url)
    assert result.returncode == 1
    assert len(fatal(collector)) == 1


def test_keyboard_interrupt_is_not_a_crash(app: Path, collector: Collector, home: Path) -> None:
    baseline, _ = run(app, "interrupt", home, collector.url, HOOKS="0")
    result, _ = run(app, "interrupt", home, collector.url)
    assert (result.returncode, result.stderr) == (baseline.returncode, baseline.stderr)
    assert "KeyboardInterrupt" in result.stderr
    assert exceptions(collector) == []


def test_every_client_that_asked_gets_the_crash_under_its_own_consent(
    app: Path, collector: Collector, home: Path
) -> None:
    result, _ = run(app, "two-clients", home, collector.url, QUIET_TELEMETRY_DISABLED="1")
    assert result.returncode == 1, result.stderr
    assert len(fatal(collector, "crashy")) == 1
    assert len(fatal(collector, "crashy-lib")) == 1
    assert fatal(collector, "quiet") == []
    assert {e["properties"]["product"] for e in collector.events()} == {"crashy", "crashy-lib"}


def test_a_storm_of_crashing_threads_sends_at_most_the_hourly_limit(
    app: Path, collector: Collector, home: Path
) -> None:
    result, took = run(app, "storm", home, collector.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "the storm is over\n"
    assert result.stderr.count("Exception in thread") == 50
    reports = fatal(collector)
    assert len(reports) == 20, len(reports)
    assert len({r["$exception_fingerprint"] for r in reports}) == 20
    # Each crashing thread waited for its own report at most; they did not queue up.
    assert took < 15, took


def test_opted_out_the_hooks_only_chain(app: Path, collector: Collector, home: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.3)
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    baseline, _ = run(app, "main", home, endpoint, HOOKS="0", DO_NOT_TRACK="1")
    try:
        for mode in ("main", "thread"):
            result, _ = run(app, mode, home, endpoint, DO_NOT_TRACK="1", REPORT_THREADS="1")
            counts = json.loads(result.stdout.splitlines()[0])
            # In the thread mode, the crashing thread itself is running its hook.
            crashing = 1 if mode == "thread" else 0
            assert counts["threads_in_hook"] == counts["threads_before"] + crashing, (mode, counts)
            if mode == "main":
                assert result.returncode == 1
                assert result.stderr == baseline.stderr
        assert list(home.iterdir()) == [], "files were written to HOME while opted out"
        with pytest.raises(socket.timeout):
            listener.accept()[0].close()
    finally:
        listener.close()
    # The same check sees the worker of a client that is on (so it can fail).
    result, _ = run(app, "main", home, collector.url, REPORT_THREADS="1")
    counts = json.loads(result.stdout.splitlines()[0])
    assert counts["threads_in_hook"] == counts["threads_before"] + 1, counts  # the worker
    assert exceptions(collector) != []


@pytest.fixture
def silent_endpoint() -> Iterator[tuple[str, list[socket.socket]]]:
    """A loopback endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.1)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    finally:
        done.set()
        t.join()
        for c in accepted:
            c.close()
        server.close()


def refused_endpoint() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("kind", ["silent", "refused"])
@pytest.mark.parametrize("mode", ["main", "thread", "two-clients"])
def test_a_dead_endpoint_delays_a_crash_by_at_most_the_deadline(
    app: Path,
    home: Path,
    silent_endpoint: tuple[str, list[socket.socket]],
    kind: str,
    mode: str,
) -> None:
    endpoint = silent_endpoint[0] if kind == "silent" else refused_endpoint()
    deadline = 0.8
    env = {"DEADLINE": str(deadline), "QUIET_TELEMETRY_DISABLED": "1"}
    quick = min(run(app, mode, home, endpoint, DO_NOT_TRACK="1", **env)[1] for _ in range(2))
    result, slow = run(app, mode, home, endpoint, **env)
    assert result.returncode == (0 if mode == "thread" else 1), result.stderr
    assert "ConnectionRefusedError" in result.stderr
    added = slow - quick
    # The crash waited for its report (the endpoint never took it), once: the exit did not
    # wait a second deadline (after a crash in a thread neither), and two clients shared one.
    assert added >= deadline * 0.75, f"the crash did not wait for its report: {added:.3f} s"
    assert added <= deadline + 0.4, f"the crash was delayed by {added:.3f} s"
    if kind == "silent":
        assert silent_endpoint[1], "the child never reached the endpoint"


def test_a_live_endpoint_delays_a_crash_by_its_delivery_only(
    app: Path, collector: Collector, home: Path
) -> None:
    quick = min(run(app, "main", home, collector.url, DO_NOT_TRACK="1")[1] for _ in range(2))
    slow = min(run(app, "main", home, collector.url)[1] for _ in range(2))
    assert len(fatal(collector)) == 2
    assert slow - quick < 0.5, f"the crash was delayed by {slow - quick:.3f} s"


def test_installing_the_hooks_chains_once_per_process(home: Path) -> None:
    code = textwrap.dedent(
        """
        import sys, threading
        from telemetry_core import Client, Settings, _crash
        before = (sys.excepthook, threading.excepthook)
        off = Client(Settings(product="acme", sink="memory", anonymized_telemetry=False))
        off.report_crashes()
        assert sys.excepthook is _crash._excepthook
        assert threading.excepthook is _crash._threading_excepthook
        assert (_crash._previous_excepthook, _crash._previous_threading_excepthook) == before
        assert not _crash.will_report(off, ValueError())
        on = Client(Settings(product="acme", sink="memory"))
        on.report_crashes()
        on.report_crashes()
        assert [r() for r in _crash._clients] == [on]
        assert _crash.will_report(on, ValueError())
        assert not _crash.will_report(on, KeyboardInterrupt())
        # Once per process: a second client does not chain the hooks to themselves.
        Client(Settings(product="acme", sink="memory")).report_crashes()
        assert _crash._previous_excepthook is before[0]
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_env(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


def test_the_demos_crash_app_reports_its_handled_error_and_its_crash(
    collector: Collector, home: Path
) -> None:
    example = Path(__file__).resolve().parents[2] / "python" / "examples" / "crash_app.py"
    result = subprocess.run(
        [sys.executable, str(example), "--endpoint", collector.url],
        env=clean_env(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.endswith("RuntimeError: the sync service could not start\n")
    levels = sorted(r["$exception_level"] for r in exceptions(collector))
    assert levels == ["error", "fatal"]
    (crash,) = fatal(collector, "pycrash")
    cause = crash["$exception_list"][1]
    assert cause["value"].startswith("cannot connect to ")
    assert "<email>" in cause["value"]
    assert "<ip>" in cause["value"]
    (handled,) = [r for r in exceptions(collector) if r["$exception_level"] == "error"]
    assert str(home) not in handled["$exception_list"][0]["value"]
