"""`telemetry disable` / `telemetry enable` (the real command) rule a Python client's next start."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from telemetry_core import Client, Settings


def telemetry_cli(home: Path, *args: str) -> None:
    value = os.environ.get("TELEMETRY_CLI_BIN")
    if not value or not Path(value).exists():
        pytest.fail(f"TELEMETRY_CLI_BIN={value!r}: run `make test-python` after `make build`")
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "")}
    subprocess.run([value, *args], env=env, check=True, capture_output=True, timeout=60)


def start(home: Path) -> Client:
    return Client(
        Settings(
            product="chromadb",
            sink="memory",
            environment={"HOME": str(home)},
            working_dir=str(home),
        )
    )


def test_the_users_saved_choice_is_honoured_on_the_next_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert start(home).enabled

    telemetry_cli(home, "disable", "--profile", "chroma")
    off = start(home)
    assert not off.enabled
    assert off.decision.decided_by is not None
    assert off.decision.decided_by["kind"] == "user_choice"

    telemetry_cli(home, "enable", "--profile", "chroma")
    on = start(home)
    assert on.enabled
    assert on.decision.decided_by is not None
    assert on.decision.decided_by["kind"] == "user_choice"
