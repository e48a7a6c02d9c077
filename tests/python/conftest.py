"""Shared fixtures: the real local collector, isolated homes, and subprocess helpers.

The collector is the project's own binary (crates/telemetry-collector), found through
TELEMETRY_COLLECTOR_BIN, which `make test-python` sets. Without it the end-to-end tests
fail rather than skip: a suite that silently skips its end-to-end half proves little.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"


class Collector:
    """A running telemetry-collector on a loopback port, with its HTTP query API."""

    def __init__(
        self, proc: subprocess.Popen[str], url: str, context: ssl.SSLContext | None = None
    ) -> None:
        self.proc = proc
        self.url = url
        self.context = context  # what the query API is trusted by, when it serves HTTPS

    def get(self, path: str, **params: object) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.url}{path}?{query}"
        with urllib.request.urlopen(url, timeout=10, context=self.context) as r:
            return json.load(r)

    def events(self, event: str | None = None, limit: int = 10000) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/events", event=event, limit=limit)
        return result

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/api/summary")
        return result

    def wait_for(self, count: int, timeout: float = 10.0) -> dict[str, Any]:
        """The summary once it holds at least `count` events (or at the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.summary()
            if s["events"] >= count or time.monotonic() > deadline:
                return s
            time.sleep(0.05)


def collector_bin() -> Path:
    value = os.environ.get("TELEMETRY_COLLECTOR_BIN")
    if not value:
        pytest.fail(
            "TELEMETRY_COLLECTOR_BIN is not set: run the suite with `make test-python`, "
            "or set it to target/debug/telemetry-collector after `cargo build --workspace`"
        )
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"TELEMETRY_COLLECTOR_BIN={value} does not exist: build the workspace first")
    return path


@contextlib.contextmanager
def running_collector(
    db: Path, *args: str, context: ssl.SSLContext | None = None
) -> Iterator[Collector]:
    """The collector serving `db` (with more `serve` arguments), stopped on exit."""
    proc = subprocess.Popen(
        [str(collector_bin()), "serve", "--listen", "127.0.0.1:0", "--db", str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        pytest.fail(f"the collector did not start: {line!r}")
    try:
        yield Collector(proc, line.removeprefix("listening on "), context)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    """A fresh collector with its own SQLite file, stopped after the test."""
    with running_collector(tmp_path / "e.db") as c:
        yield c


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME (and working directory) for this test; consent variables unset."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    for var in (
        "ANONYMIZED_TELEMETRY",
        "DO_NOT_TRACK",
        "TELEMETRY_DEBUG",
        "EVIDENTLY_DISABLE_TELEMETRY",
        "TELEMETRY_CORE_ENDPOINT",
        "TELEMETRY_CORE_API_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(h)
    return h


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for a child Python: this one without consent switches, HOME set."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "ANONYMIZED_TELEMETRY",
            "DO_NOT_TRACK",
            "TELEMETRY_DEBUG",
            "EVIDENTLY_DISABLE_TELEMETRY",
            "TELEMETRY_CORE_ENDPOINT",
            "TELEMETRY_CORE_API_KEY",
            "XDG_CACHE_HOME",
            "XDG_CONFIG_HOME",
            "XDG_STATE_HOME",
        }
    }
    env["HOME"] = str(home)
    env.update(extra)
    return env


def run_python(
    code: str, env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh interpreter; the result keeps stdout and stderr apart."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


DEBUG_MARK = "[telemetry debug] would send:\n"


def debug_payloads(stderr: str) -> list[dict[str, Any]]:
    """The event items the debug sink printed on stderr, parsed."""
    decoder = json.JSONDecoder()
    items = []
    start = stderr.find(DEBUG_MARK)
    while start >= 0:
        item, end = decoder.raw_decode(stderr, start + len(DEBUG_MARK))
        items.append(item)
        start = stderr.find(DEBUG_MARK, end)
    return items


class Receiver:
    """A running otlp-receiver (crates/otlp-receiver): OTLP over HTTP (protobuf, JSON) and
    gRPC on loopback, decoded with the official opentelemetry-proto definitions; its HTTP
    port also answers GET/DELETE /spans and POST /fault."""

    def __init__(self, proc: subprocess.Popen[bytes], http: str, grpc: str) -> None:
        self.proc = proc
        self.http = http
        self.grpc = grpc

    @property
    def url(self) -> str:
        """The OTLP/HTTP base URL (the exporter appends /v1/traces)."""
        return f"http://{self.http}"

    @property
    def grpc_url(self) -> str:
        return f"http://{self.grpc}"

    def spans(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/spans", timeout=10) as r:
            result: list[dict[str, Any]] = json.load(r)
        return result

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The spans received, once there are at least `count` (or at the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if len(spans) >= count or time.monotonic() > deadline:
                return spans
            time.sleep(0.05)

    def clear(self) -> None:
        request = urllib.request.Request(f"{self.url}/spans", method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()

    def fault(self, **fault: object) -> None:
        """Makes export requests fail: ``fault(kind="status", http_status=503)``,
        ``fault(kind="delay", ms=3000)``, ``fault(kind="garbage")``, ``fault(kind="none")``;
        ``requests=N`` limits it to the next N requests."""
        request = urllib.request.Request(
            f"{self.url}/fault",
            data=json.dumps(fault).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).close()


def receiver_bin() -> Path:
    value = os.environ.get("OTLP_RECEIVER_BIN")
    if not value:
        pytest.fail(
            "OTLP_RECEIVER_BIN is not set: run the suite with `make test-python`, or set it "
            "to target/debug/otlp-receiver after `cargo build --workspace`"
        )
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"OTLP_RECEIVER_BIN={value} does not exist: build the workspace first")
    return path


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    """A fresh otlp-receiver on free loopback ports, stopped after the test."""
    ready = tmp_path / "receiver.json"
    proc = subprocess.Popen(
        [str(receiver_bin()), "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the otlp-receiver did not start")
        time.sleep(0.02)
    addrs = json.loads(ready.read_text())
    try:
        yield Receiver(proc, addrs["http"], addrs["grpc"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
