"""Processes: fork, multiprocessing, exit within the deadline, and an opt-out that leaves
no trace. Each scenario runs in a fresh interpreter, as a host would."""

from __future__ import annotations

import contextlib
import json
import socket
import textwrap
import threading
import time
from pathlib import Path

from conftest import Collector, clean_env, run_python


def test_os_fork_child_delivers_its_own_events_and_never_the_parents(
    collector: Collector, home: Path
) -> None:
    code = textwrap.dedent(
        f"""
        import os
        from telemetry_core import Client, Settings
        client = Client(Settings(product="acme", endpoint={collector.url!r}, api_key="k",
                                 flush_interval=3600))
        for _ in range(3):
            client.capture("parent_before")
        assert client.flush(10)
        client.capture("parent_queued")  # still queued when the process forks
        client.capture("parent_queued")
        pid = os.fork()
        if pid == 0:
            client.capture("child")
            # A normal exit: atexit shuts the child's client down and delivers.
            raise SystemExit(0)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        stats = client.shutdown(10)
        print(stats.captured, stats.sent)
        """
    )
    result = run_python(code, clean_env(home), home, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["5", "5"]
    collector.wait_for(6)
    names = [e["event"] for e in collector.events()]
    assert sorted(names) == ["child"] + ["parent_before"] * 3 + ["parent_queued"] * 2


def test_multiprocessing_fork_children_deliver_without_deadlock(
    collector: Collector, home: Path
) -> None:
    code = textwrap.dedent(
        f"""
        import multiprocessing as mp, threading
        from telemetry_core import Client, Settings
        client = Client(Settings(product="acme", endpoint={collector.url!r}, api_key="k"))
        client.capture("parent")
        # Another thread captures while the pool forks: the children must not inherit a
        # held lock or the parent's queue.
        stop = threading.Event()
        def busy():
            while not stop.is_set():
                client.capture("parent_busy")
                stop.wait(0.001)
        t = threading.Thread(target=busy); t.start()
        def work(i):
            client.capture("child", i=i)
            return i
        pool = mp.get_context("fork").Pool(3)
        assert sorted(pool.map(work, range(6))) == list(range(6))
        pool.close()  # not terminate(): SIGTERM would kill the workers before they report
        pool.join()
        p = mp.get_context("fork").Process(target=work, args=(99,))
        p.start(); p.join(30)
        assert p.exitcode == 0, p.exitcode
        stop.set(); t.join()
        stats = client.shutdown(10)
        print(json.dumps(stats.to_dict()))
        """
    ).replace("import multiprocessing", "import json, multiprocessing")
    result = run_python(code, clean_env(home), home, timeout=90)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["sent"] == stats["captured"], stats
    total = 7 + stats["captured"]
    summary = collector.wait_for(total)
    # Pool workers and the Process leave through multiprocessing's finalizers (no atexit
    # there): all seven children's events arrive, and the parent's are not sent twice.
    assert summary["by_event"]["child"]["events"] == 7
    assert summary["events"] == total


def test_exit_is_bounded_by_the_deadline_when_the_endpoint_never_answers(home: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    accepted: list[socket.socket] = []

    def accept() -> None:
        silent.settimeout(0.2)
        while not done.is_set():
            with contextlib.suppress(OSError):  # the accept timeout: look at `done` again
                accepted.append(silent.accept()[0])  # and never reply

    done = threading.Event()
    acceptor = threading.Thread(target=accept)
    acceptor.start()
    port = silent.getsockname()[1]
    code = textwrap.dedent(
        f"""
        from telemetry_core import Client, Settings
        client = Client(Settings(product="acme", endpoint="http://127.0.0.1:{port}",
                                 api_key="k", shutdown_timeout=0.5))
        for i in range(10_000):
            client.capture("queued", i=i)
        """
    )
    start = time.monotonic()
    result = run_python(code, clean_env(home), home, timeout=60)
    elapsed = time.monotonic() - start
    done.set()
    acceptor.join()
    silent.close()
    assert result.returncode == 0, result.stderr
    assert accepted, "the client never reached the endpoint"
    # Interpreter start and import included; the wait itself is the 0.5 s deadline.
    assert elapsed < 0.5 + 1.5, elapsed
    assert result.stdout == ""


def threads_of_this_process_snippet() -> str:
    return textwrap.dedent(
        """
        import os, threading
        def os_threads():
            return len(os.listdir("/proc/self/task"))
        """
    )


def test_opted_out_process_has_no_thread_file_or_socket(home: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    code = threads_of_this_process_snippet() + textwrap.dedent(
        f"""
        import json
        before = (os_threads(), len(threading.enumerate()))
        from telemetry_core import Client, Settings
        client = Client(Settings(product="chromadb", anonymized_telemetry=False,
                                 endpoint="http://127.0.0.1:{port}", api_key="k"))
        for i in range(1000):
            client.capture("x", i=i)
        client.flush(1)
        after = (os_threads(), len(threading.enumerate()))
        print(json.dumps({{"before": before, "after": after, "enabled": client.enabled,
                           "stats": client.shutdown().to_dict()}}))
        """
    )
    result = run_python(code, clean_env(home), home)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["enabled"] is False
    assert report["before"] == report["after"], "a thread was started while opted out"
    assert report["stats"]["captured"] == 0
    assert list(home.iterdir()) == [], "files were written to HOME while opted out"
    try:
        conn, _ = listener.accept()
    except socket.timeout:
        pass
    else:
        conn.close()
        raise AssertionError("an opted-out client connected to the endpoint")
    finally:
        listener.close()


def test_enabled_client_writes_nothing_on_stdout(collector: Collector, home: Path) -> None:
    code = textwrap.dedent(
        f"""
        from telemetry_core import Client, Settings
        ok = Client(Settings(product="acme", endpoint={collector.url!r}, api_key="k"))
        bad = Client(Settings(product="acme", endpoint="http://127.0.0.1:9", api_key="k",
                              max_retries=0))
        for c in (ok, bad):
            c.capture("x", y="z")
            c.flush(5)
        """
    )
    result = run_python(code, clean_env(home, ACME_TELEMETRY_DISABLED=""), home)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert collector.wait_for(1)["events"] == 1
