"""The sdist builds with ``pip install`` into a fresh venv, as on a platform without a
wheel: pip unpacks it, fetches maturin (PEP 517 build isolation) and compiles the
extension with the Rust toolchain.

``make test-python-sdist`` (and ``make wheel``) run this with ``TELEMETRY_SDIST`` naming
the sdist; without it, it is skipped. ``MATURIN_PEP517_ARGS="--profile dev"`` and the
shared ``CARGO_TARGET_DIR`` keep it to a debug build of this project's own crates (the
unpacked sources are new paths to cargo; the registry crates are reused).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SDIST = os.environ.get("TELEMETRY_SDIST", "")

pytestmark = pytest.mark.skipif(
    not (SDIST and Path(SDIST).is_file()), reason="needs TELEMETRY_SDIST (make test-python-sdist)"
)


def test_the_sdist_builds_with_pip_install_and_works(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    env = {
        **os.environ,
        "MATURIN_PEP517_ARGS": os.environ.get("MATURIN_PEP517_ARGS", "--profile dev"),
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin/python"),
            "install",
            "-q",
            "--no-deps",
            SDIST,
        ],
        check=True,
        env=env,
    )
    home = tmp_path / "home"
    home.mkdir()
    clean = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home)}
    check = (
        "import telemetry_core as t\n"
        "assert t.NATIVE_IMPORT_ERROR is None, t.NATIVE_IMPORT_ERROR\n"
        "c = t.Client(t.Settings(product='acme', sink='memory', environment={}))\n"
        "c.capture('started')\n"
        "assert c.shutdown().sent == 1\n"
        "print('ok')\n"
    )
    ran = subprocess.run(
        [str(venv / "bin/python"), "-c", check], env=clean, capture_output=True, text=True
    )
    assert ran.stdout == "ok\n", ran.stderr
    status = subprocess.run(
        [str(venv / "bin/telemetry"), "status", "--profile", "acme", "--json"],
        env=clean,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0, status.stderr
    assert '"profile": "acme"' in status.stdout
