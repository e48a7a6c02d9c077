"""Error reports built from Python exceptions, in process: ``capture_exception`` with a
memory sink shows exactly what the core received from the binding (type, message, frames,
causes) and what it made of it (scrubbed, fingerprinted, rate-limited, never waiting).

The hooks are process-wide, so uncaught exceptions are tested in child processes
(test_crash_process.py); everything here goes through ``capture_exception``, which builds
the same report.
"""

from __future__ import annotations

import json
import socket
import sys
import textwrap
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from telemetry_core import Client, Settings
from telemetry_core._native import MAX_ERROR_CAUSES, MAX_ERROR_FRAMES


def memory_client(**kw: object) -> Client:
    settings: dict[str, object] = {
        "product": "acme",
        "version": "1.0",
        "sink": "memory",
        "environment": {},
        "usage_reports": False,
    }
    settings.update(kw)
    return Client(Settings(**settings))  # type: ignore[arg-type]


def reports(client: Client) -> list[dict[str, Any]]:
    assert client.flush(5)
    return [e["properties"] for e in client.delivered() if e["event"] == "$exception"]


def only_report(client: Client) -> dict[str, Any]:
    (report,) = reports(client)
    return report


def frames(entry: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = entry["stacktrace"]["frames"]
    return result


class StorageError(Exception):
    """An exception of this module: its type is reported with the module's name."""


class Repository:
    def load(self, key: str) -> None:
        raise StorageError(f"no row {key} for bob@example.org on 192.168.7.9")


def test_a_handled_exception_is_reported_with_type_message_frames_and_scrubbed() -> None:
    client = memory_client()

    def fetch() -> None:
        Repository().load("k1")

    try:
        fetch()
    except StorageError as e:
        queued = client.capture_exception(e)
    assert queued is True
    report = only_report(client)
    (entry,) = report["$exception_list"]
    assert entry["type"] == "test_crash.StorageError"
    assert entry["value"] == "no row k1 for <email> on <ip>"
    assert entry["mechanism"]["handled"] is True
    assert (report["$exception_level"], report["$exception_handled"]) == ("error", True)
    names = [f["function"] for f in frames(entry)]
    if sys.version_info >= (3, 11):  # co_qualname
        assert names == [
            "test_a_handled_exception_is_reported_with_type_message_frames_and_scrubbed",
            "test_a_handled_exception_is_reported_with_type_message_frames_and_scrubbed.<locals>.fetch",
            "Repository.load",
        ]
    else:
        assert names == [
            "test_a_handled_exception_is_reported_with_type_message_frames_and_scrubbed",
            "fetch",
            "load",
        ]
    for f in frames(entry):
        assert f["filename"] == "test_crash.py"
        assert f["in_app"] is True
        assert f["platform"] == "python"
        assert isinstance(f["lineno"], int)
        assert f["lineno"] > 0
        if sys.version_info >= (3, 11):
            assert isinstance(f["colno"], int)
            assert f["colno"] > 0
    inner = frames(entry)[-1]
    assert inner["lineno"] == Repository.load.__code__.co_firstlineno + 1
    assert len(report["$exception_fingerprint"]) == 16


def test_builtins_have_no_module_and_the_standard_library_is_not_the_apps() -> None:
    client = memory_client()
    try:
        json.loads("{not json")
    except ValueError as e:
        client.capture_exception(e)
    try:
        {}["missing"]  # raises on purpose
    except KeyError as e:
        client.capture_exception(e)
    decode, key = (r["$exception_list"][0] for r in reports(client))
    assert decode["type"] == "json.decoder.JSONDecodeError"
    assert decode["value"].startswith("Expecting property name")
    files = [(f["filename"], f["in_app"]) for f in frames(decode)]
    assert files[0] == ("test_crash.py", True)
    assert ("decoder.py", False) in files
    assert ("__init__.py", False) in files
    assert key["type"] == "KeyError"
    assert key["value"] == "'missing'"


def test_frames_of_telemetry_core_itself_are_not_the_apps() -> None:
    client = memory_client()
    try:
        Settings(product="acme", sink=1)  # type: ignore[arg-type]
    except TypeError as e:
        client.capture_exception(e)
    entry = only_report(client)["$exception_list"][0]
    assert [(f["filename"], f["in_app"]) for f in frames(entry)] == [
        ("test_crash.py", True),
        ("_settings.py", False),
    ]


def test_without_an_argument_the_exception_being_handled_is_reported() -> None:
    client = memory_client()
    try:
        raise LookupError("inside except")
    except LookupError:
        assert client.capture_exception() is True
    assert only_report(client)["$exception_list"][0]["value"] == "inside except"
    with pytest.raises(TypeError, match="in an except block"):
        client.capture_exception()
    with pytest.raises(TypeError, match="not str"):
        client.capture_exception("boom")  # type: ignore[arg-type]


def test_opted_out_capture_exception_does_nothing_and_looks_at_nothing() -> None:
    off = memory_client(anonymized_telemetry=False)
    assert off.capture_exception(ValueError("x")) is False
    assert off.capture_exception("not even an exception") is False  # type: ignore[arg-type]
    assert off.delivered() == []


def test_explicit_causes_implicit_context_and_suppressed_context() -> None:
    client = memory_client(crash_per_fingerprint=0)

    def explicit() -> None:
        try:
            raise ConnectionRefusedError("refused by 10.0.0.7:5432")
        except OSError as e:
            raise RuntimeError("sync failed") from e

    def implicit() -> None:
        try:
            raise KeyError("k")
        except KeyError:
            raise ValueError("while handling") from None

    def context() -> None:
        try:
            raise KeyError("first")
        except KeyError:
            raise ValueError("second")  # noqa: B904 - an implicit context on purpose

    for f in (explicit, implicit, context):
        try:
            f()
        except Exception as e:
            client.capture_exception(e)
    a, b, c = (r["$exception_list"] for r in reports(client))
    assert [(x["type"], x["value"]) for x in a] == [
        ("RuntimeError", "sync failed"),
        ("ConnectionRefusedError", "refused by <ip>:5432"),
    ]
    # The cause's own frames: where it was raised, inside `explicit`.
    assert [f["function"].rsplit(".", 1)[-1] for f in frames(a[1])] == ["explicit"]
    assert [x["type"] for x in b] == ["ValueError"]  # `from None`: no context
    assert [(x["type"], x["value"]) for x in c] == [
        ("ValueError", "second"),
        ("KeyError", "'first'"),
    ]


def test_cause_chains_are_bounded_and_cycles_end() -> None:
    client = memory_client(crash_per_fingerprint=0)
    a, b = ValueError("a"), TypeError("b")
    a.__cause__, b.__cause__ = b, a  # a cycle
    client.capture_exception(a)
    top = RuntimeError("top")
    e: BaseException = top
    for i in range(50):
        e.__cause__ = OSError(f"cause {i}")
        e = e.__cause__
    client.capture_exception(top)
    cycle, chain = (r["$exception_list"] for r in reports(client))
    assert [x["value"] for x in cycle] == ["a", "b"]
    assert len(chain) == 1 + MAX_ERROR_CAUSES
    assert [x["value"] for x in chain[1:3]] == ["cause 0", "cause 1"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is Python 3.11+")
def test_exception_group_members_follow_as_causes() -> None:
    client = memory_client()
    group = ExceptionGroup("two failed", [ValueError("one"), KeyError("two")])  # noqa: F821
    client.capture_exception(group)
    entries = only_report(client)["$exception_list"]
    assert [(x["type"], x["value"]) for x in entries] == [
        ("ExceptionGroup", "two failed (2 sub-exceptions)"),
        ("ValueError", "one"),
        ("KeyError", "'two'"),
    ]


def test_an_exception_whose_str_raises_is_still_reported() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    class Odd(Exception):
        pass

    Odd.__module__ = None  # type: ignore[assignment]
    client = memory_client()
    assert client.capture_exception(Unprintable()) is True
    assert client.capture_exception(Odd("odd")) is True
    unprintable, odd = (r["$exception_list"][0] for r in reports(client))
    assert unprintable["value"] == "<exception str() failed>"
    assert unprintable["type"].endswith("Unprintable")
    assert odd["type"].startswith("<unknown>.test_an_exception_whose_str_raises")
    assert odd["type"].endswith(".<locals>.Odd")


def test_odd_tracebacks_and_strings_never_fail_a_report() -> None:
    client = memory_client(crash_per_fingerprint=0)
    frame = sys._getframe()
    # A synthetic traceback: an impossible line and instruction offset.
    bogus = types.TracebackType(None, frame, 10**9, -5)
    assert client.capture_exception(ValueError("bogus").with_traceback(bogus))
    # A traceback whose frames were cleared (locals dropped), as traceback.clear_frames does.
    try:
        Repository().load("k")
    except StorageError as e:
        cleared_exc = e
    import traceback

    traceback.clear_frames(cleared_exc.__traceback__)
    assert client.capture_exception(cleared_exc)
    # Lone surrogates, as an undecodable file name carries them.
    assert client.capture_exception(FileNotFoundError(2, "No such file", "caf\udce9.txt"))
    # A frame's file name that is not a str.
    code = compile("raise ValueError('compiled')", "<generated>", "exec")
    try:
        exec(code)
    except ValueError as e:
        generated_exc = e
    assert client.capture_exception(generated_exc)
    bogus_r, cleared, surrogates, generated = (r["$exception_list"][0] for r in reports(client))
    (f,) = frames(bogus_r)
    assert f["lineno"] is None
    assert f["colno"] is None
    assert [x["function"].rsplit(".", 1)[-1] for x in frames(cleared)][-1] == "load"
    assert "caf" in surrogates["value"]
    assert frames(generated)[-1]["filename"] == "<generated>"
    assert frames(generated)[-1]["in_app"] is True


def test_deep_recursion_keeps_the_innermost_frames() -> None:
    client = memory_client()

    def down(n: int) -> None:
        if n == 0:
            raise RecursionError("bottom")
        down(n - 1)

    try:
        down(300)
    except RecursionError as e:
        client.capture_exception(e)
    entry = only_report(client)["$exception_list"][0]
    got = frames(entry)
    assert len(got) == MAX_ERROR_FRAMES
    assert all(f["function"].endswith("down") for f in got)
    assert got[-1]["lineno"] == down.__code__.co_firstlineno + 2


def test_a_package_in_site_packages_is_the_apps_only_when_named(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "site-packages" / "acmepkg"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text(
        textwrap.dedent(
            """
            def run():
                raise ValueError("from a pip-installed product")
            """
        )
    )
    sys.path.insert(0, str(site.parent))
    try:
        import acmepkg  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(site.parent))
    seen = []
    for packages in ((), ("acmepkg",)):
        client = memory_client(app_packages=packages)
        try:
            acmepkg.run()
        except ValueError as e:
            client.capture_exception(e)
        entry = only_report(client)["$exception_list"][0]
        seen.append([(f["filename"], f["in_app"]) for f in frames(entry)])
    assert seen == [
        [("test_crash.py", True), ("__init__.py", False)],
        [("test_crash.py", True), ("__init__.py", True)],
    ]
    del sys.modules["acmepkg"]


def test_the_same_error_twice_a_minute_is_held_back_and_counted() -> None:
    client = memory_client()
    results = []
    for _ in range(3):
        try:
            Repository().load("again")
        except StorageError as e:
            results.append(client.capture_exception(e))
    assert results == [True, False, False]
    try:
        raise KeyError("another place")
    except KeyError as e:
        results.append(client.capture_exception(e))
    assert results[-1] is True
    first, other = reports(client)
    assert (first["$exception_suppressed"], other["$exception_suppressed"]) == (0, 2)


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
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
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        done.set()
        t.join()
        for c in accepted:
            c.close()
        server.close()


def test_a_handled_error_never_waits_even_for_a_silent_endpoint(silent_endpoint: str) -> None:
    client = Client(Settings(product="acme", endpoint=silent_endpoint, api_key="k", environment={}))
    slowest = 0.0
    for i in range(5):
        t = time.monotonic()
        try:
            raise type(f"Kind{i}", (Exception,), {})("x")
        except Exception as e:
            queued = client.capture_exception(e)
        assert queued
        slowest = max(slowest, time.monotonic() - t)
    assert slowest < 0.05, slowest
    client.shutdown(0.2)
