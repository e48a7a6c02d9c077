"""HTTPS to the real collector serving a certificate that an internal CA signed, both made
here with the ``openssl`` command: ``Settings(ca_file=...)`` delivers; without it the
certificate is refused, the event dropped and counted once (no retry) and a warning names
the certificate; a bad CA file raises ``ConfigurationError`` naming it; the Chroma
integration reads ``TELEMETRY_CORE_CA_FILE``."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from telemetry_core import Client, ConfigurationError, Settings

from conftest import Collector, running_collector


def openssl(*args: str) -> None:
    # `make deps` (deps-system) installs Debian's openssl; without it the test
    # fails saying so rather than being skipped unseen.
    assert shutil.which("openssl"), "the openssl command is needed: apt-get install openssl"
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """ca.pem, and server.pem/server.key for 127.0.0.1 and localhost signed by it."""
    d = tmp_path / "pki"
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"),
            "-days", "2", "-subj", "/CN=telemetry-core Python test internal CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    openssl("req", *ec, "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"),
            "-subj", "/CN=telemetry.corp.internal")  # fmt: skip
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(d / "ext.cnf"), "-out", str(d / "leaf.pem"))  # fmt: skip
    (d / "server.pem").write_text((d / "leaf.pem").read_text() + (d / "ca.pem").read_text())
    return d


@pytest.fixture
def tls_collector(pki: Path, tmp_path: Path) -> Iterator[Collector]:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with running_collector(
        tmp_path / "e.db",
        "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
        context=context,
    ) as c:  # fmt: skip
        assert c.url.startswith("https://127.0.0.1:")
        yield c


def client_for(collector: Collector, home: Path, **kw: object) -> Client:
    return Client(
        Settings(  # type: ignore[arg-type]
            product="pytls",
            version="1.0.0",
            endpoint=collector.url,
            api_key="phc_tls",
            working_dir=home,
            backoff_base=0.01,
            **kw,
        )
    )


def test_ca_file_reaches_a_collector_signed_by_an_internal_ca(
    tls_collector: Collector, pki: Path, home: Path
) -> None:
    client = client_for(tls_collector, home, ca_file=pki / "ca.pem")
    client.capture("server_start", tls=True)
    assert client.flush(10)
    stats = client.shutdown(2)
    assert (stats.sent, stats.failed_requests) == (1, 0), stats
    events = tls_collector.events("server_start")
    assert [e["properties"]["tls"] for e in events] == [True]


def test_without_the_ca_the_certificate_is_refused_once_and_logged(
    tls_collector: Collector, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="telemetry_core")
    client = client_for(tls_collector, home, max_retries=3)
    client.capture("untrusted")
    started = time.monotonic()
    assert not client.flush(5)
    assert time.monotonic() - started < 3
    stats = client.shutdown(1)
    # Not retried: another attempt cannot make the certificate trusted.
    assert (stats.dropped_failed, stats.failed_requests, stats.retries) == (1, 1, 0), stats
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(tls_collector.url in w and "certificate" in w for w in warnings), warnings
    assert tls_collector.events() == []


def test_platform_roots_with_the_ca_file_reach_the_collector(
    tls_collector: Collector, pki: Path, home: Path
) -> None:
    client = client_for(tls_collector, home, tls_roots="platform", ca_file=str(pki / "ca.pem"))
    client.capture("platform")
    assert client.flush(10)
    client.shutdown(1)
    assert len(tls_collector.events("platform")) == 1


def test_a_bad_ca_file_raises_configuration_error_naming_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("# the CA goes here\n")
    for path, says in [
        (tmp_path / "missing.pem", "cannot be read"),
        (empty, "holds no certificate"),
    ]:
        with pytest.raises(ConfigurationError, match="ca_file") as e:
            Client(Settings(product="pytls", sink="memory", environment={}, ca_file=path))
        assert str(path) in str(e.value)
        assert says in str(e.value)
    with pytest.raises(ConfigurationError, match="tls_roots"):
        Settings(product="pytls", tls_roots="system")
    with pytest.raises(TypeError):
        Settings(product="pytls", ca_file=3)  # type: ignore[arg-type]


def test_trace_config_shows_the_certificate_from_ca_file(pki: Path) -> None:
    client = Client(
        Settings(
            product="pytls",
            sink="memory",
            anonymized_telemetry=False,
            environment={"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.corp.internal:4318"},
            ca_file=pki / "ca.pem",
        )
    )
    got = client.trace_config()
    assert got["certificate"] == str(pki / "ca.pem")
    assert got["tls_roots"] == "bundled"
    assert got["origins"]["certificate"] == {"kind": "code"}
    client.shutdown(0)


def test_chroma_reads_the_ca_file_from_telemetry_core_ca_file(
    tls_collector: Collector, pki: Path, home: Path
) -> None:
    if importlib.util.find_spec("chromadb") is None:
        pytest.skip("chromadb is not installed here (the abi3 check's venvs)")
    from test_chroma import run_session

    report = run_session(
        home,
        TELEMETRY_CORE_ENDPOINT=tls_collector.url,
        TELEMETRY_CORE_API_KEY="k",
        TELEMETRY_CORE_CA_FILE=str(pki / "ca.pem"),
    )
    assert report["enabled"] is True
    assert tls_collector.wait_for(1)["events"] >= 1
    assert "ClientStartEvent" in {e["event"] for e in tls_collector.events()}

    # A CA file that is not there: Chroma starts, telemetry is not sent, and says why.
    missing = home / "missing-ca.pem"
    report = run_session(
        home,
        TELEMETRY_CORE_ENDPOINT=tls_collector.url,
        TELEMETRY_CORE_API_KEY="k",
        TELEMETRY_CORE_CA_FILE=str(missing),
    )
    assert report["enabled"] is False
    assert "Chroma telemetry is not sent" in str(report["stderr"])
    assert str(missing) in str(report["stderr"])
