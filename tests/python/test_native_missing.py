"""Without its native module (no wheel for the platform, a broken install) the package
still imports, every client is off and says why, nothing raises into the host, and the
``telemetry`` command prints the reason and exits 1.

Each case runs in a child process: one where importing ``telemetry_core._native`` fails
(a meta path finder raising ImportError), one on a copy of the package without the
extension module (``python -S``: no site-packages, so the installed package is not seen).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import telemetry_core

HIDE = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "telemetry_core._native":
            raise ImportError("no wheel for this platform (hidden by the test)")
        return None
sys.meta_path.insert(0, Hide())
"""

# A host using every part of the package, as it would with the module present.
HOST = """
import threading, warnings
warnings.simplefilter("error")  # nothing may even warn
import telemetry_core as t
from telemetry_core import Client, Settings, TelemetryEvent
assert t.NATIVE_IMPORT_ERROR and "ImportError" in t.NATIVE_IMPORT_ERROR, t.NATIVE_IMPORT_ERROR
c = Client(Settings(product="acme", version="1.0", endpoint="https://t.example.com",
                    api_key="phc_x", otel_collection_endpoint="http://127.0.0.1:9"))
assert not c.enabled and not c.tracing
d = c.decision
assert d.decided_by["kind"] == "native_module", d.decided_by
assert t.NATIVE_IMPORT_ERROR in d.decided_by["value"]
assert "could not be loaded" in str(d) and t.NATIVE_IMPORT_ERROR in str(d), str(d)
assert d.to_dict()["enabled"] is False and d.warnings
c.capture("started", mode="server")
c.capture(TelemetryEvent("opened", {"db": "x"}, kinds={"db": "hashed"}))
assert c.flush(1.0) and c.stats.captured == 0
u = c.usage
search = u.timing("search", labels={"collection": "hashed"})
with search.labels("notes"):
    pass
@search
def f(x):
    return x * 2
assert f(2) == 4
u.counter("points", labels=["collection"]).labels("notes").inc(3)
u.set_section("collections", {"n": 1})
assert u.report(details_level=2) == {} and u.prometheus() == ""
assert u.handle("/metrics").status == 503
with u.serve("127.0.0.1:0") as server:
    assert server.closed
from telemetry_core import opentelemetry as ot, usage
with ot.start_span("op") as span:
    span.set_attribute("k", 1)
@ot.trace_method("m", ot.OpenTelemetryGranularity.OPERATION)
def g(x):
    return x + 1
assert g(1) == 2
parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
assert ot.extract({"traceparent": parent}) is None
usage.wsgi_app(c)
c.report_crashes()
assert c.capture_exception(ValueError("x")) is False
m = Client(Settings(product="acme", sink="memory"))
assert m.delivered() == [] and m.preview(TelemetryEvent("e", {})) == {}
from telemetry_core.integrations.cli import CliTelemetry
assert c.shutdown().sent == 0
assert threading.active_count() == 1, "nothing started"
print("host ok")
"""

CLI = """
import sys
from telemetry_core.cli import command, main
print(main(["telemetry", "status", "--profile", "acme"]),
      command(profile="acme")(["acme-telemetry", "disable"]), flush=True)
"""


def _child(
    code: str,
    *,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )


@pytest.fixture
def sandbox_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}


def test_a_host_runs_with_telemetry_off_when_importing_the_module_fails(
    sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    ran = _child(HIDE + HOST, env=sandbox_env)
    assert ran.stdout == "host ok\n", ran.stderr
    assert ran.stderr == ""
    assert not (tmp_path / "home/.local").exists(), "no file was written"


def test_the_command_says_why_and_exits_1(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    ran = _child(HIDE + CLI, env=sandbox_env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "1 1\n"
    lines = ran.stderr.splitlines()
    assert len(lines) == 2, ran.stderr
    for line, program in zip(lines, ["telemetry", "acme-telemetry"]):
        assert line.startswith(
            f"{program}: cannot run: the native module telemetry_core._native could not be "
            "loaded (ImportError: no wheel for this platform (hidden by the test))."
        ), line
        assert "Reinstall telemetry-core" in line
    assert not (tmp_path / "home/.local").exists(), "disable saved nothing it cannot honour"


def test_a_copy_of_the_package_without_the_extension_module(
    sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    package = Path(telemetry_core.__file__).parent
    copy = tmp_path / "site"
    shutil.copytree(
        package,
        copy / "telemetry_core",
        ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"),
    )
    env = {**sandbox_env, "PYTHONPATH": str(copy)}
    ran = _child(
        "import telemetry_core as t; print(t.__file__); print(t.NATIVE_IMPORT_ERROR)",
        args=("-S",),
        env=env,
    )
    assert ran.returncode == 0, ran.stderr
    where, error = ran.stdout.splitlines()
    assert where.startswith(str(copy))
    assert error.startswith("ImportError: cannot import name '_native'") or error.startswith(
        "ModuleNotFoundError"
    ), error
    host = _child(HOST.replace('"ImportError" in', '"Error" in'), args=("-S",), env=env)
    assert host.stdout == "host ok\n", host.stderr
    module = subprocess.run(
        [sys.executable, "-S", "-m", "telemetry_core", "status", "--profile", "acme"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (module.returncode, module.stdout) == (1, "")
    assert "-m telemetry_core: cannot run" in module.stderr
