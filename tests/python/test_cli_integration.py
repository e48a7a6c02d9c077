"""telemetry_core.integrations.cli: one usage event per command, only as a CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from telemetry_core import Settings
from telemetry_core.integrations.cli import CliTelemetry, invoked_as_cli

from conftest import Collector, clean_env, run_python

MODULE = textwrap.dedent(
    """
    import os
    from telemetry_core import Settings
    from telemetry_core.integrations.cli import CliTelemetry

    telemetry = CliTelemetry(Settings(
        product="evidently", version="0.7.0", profile="evidently",
        endpoint=os.environ["TEST_ENDPOINT"], api_key="k",
    ))

    @telemetry.command()
    def ui(port=8000, demo_projects=""):
        return port

    @telemetry.command("report")
    def report(path):
        raise FileNotFoundError(path)  # the message (a path) must never be sent
    """
)

SCRIPT = textwrap.dedent(
    """\
    #!{python}
    import sys
    import evidently_cli
    if sys.argv[1] == "ui":
        evidently_cli.ui(port=int(sys.argv[2]))
    else:
        evidently_cli.report(sys.argv[2])
    """
)


@pytest.fixture
def program(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "evidently_cli.py").write_text(MODULE)
    script = bin_dir / "evidently"
    script.write_text(SCRIPT.format(python=sys.executable))
    script.chmod(0o755)
    return script


def run_cli(program: Path, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(program), *args],
        env=clean_env(home, PYTHONPATH=str(program.parent), **env),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_cli_run_sends_one_usage_event(collector: Collector, home: Path, program: Path) -> None:
    result = run_cli(program, home, "ui", "9000", TEST_ENDPOINT=collector.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    collector.wait_for(1)
    (event,) = collector.events()
    p = event["properties"]
    assert event["event"] == "cli_command"
    assert (p["command"], p["parts"], p["ok"]) == ("ui", ["port"], True)
    assert "9000" not in str(p)  # option names, never values
    assert p["product"] == "evidently"
    assert p["runtime"] == "python"
    assert "os" in p
    assert "in_ci" in p
    assert "in_container" in p


def test_a_failing_command_reports_the_error_type_only(
    collector: Collector, home: Path, program: Path
) -> None:
    result = run_cli(
        program, home, "report", "/home/alice/secret.html", TEST_ENDPOINT=collector.url
    )
    assert result.returncode == 1
    collector.wait_for(1)
    (event,) = collector.events()
    p = event["properties"]
    assert (p["command"], p["ok"], p["error_type"]) == ("report", False, "FileNotFoundError")
    assert "secret" not in str(event)


@pytest.mark.parametrize(
    "switch", [{"EVIDENTLY_DISABLE_TELEMETRY": "1"}, {"DO_NOT_TRACK": "1"}], ids=str
)
def test_evidently_switches_turn_it_off(
    collector: Collector, home: Path, program: Path, switch: dict[str, str]
) -> None:
    result = run_cli(program, home, "ui", "1", TEST_ENDPOINT=collector.url, **switch)
    assert result.returncode == 0, result.stderr
    assert collector.summary()["events"] == 0


def test_used_as_a_library_it_sends_nothing(
    collector: Collector, home: Path, program: Path
) -> None:
    env = clean_env(home, PYTHONPATH=str(program.parent), TEST_ENDPOINT=collector.url)
    result = run_python("import evidently_cli; print(evidently_cli.ui(port=1))", env, home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    assert collector.summary()["events"] == 0
    assert list(home.iterdir()) == []


def test_the_core_also_refuses_library_mode_for_evidently(home: Path) -> None:
    telemetry = CliTelemetry(
        Settings(product="evidently", profile="evidently", sink="memory", environment={}),
        cli=True,
    )
    with telemetry.usage("ui") as usage:
        usage.parts.append("port")
    assert telemetry.client is not None
    assert telemetry.client.enabled
    library = telemetry.client.settings.replace(mode="library")
    from telemetry_core import Client

    decision = Client(library).decision
    assert not decision.enabled
    assert decision.decided_by["kind"] == "mode"  # type: ignore[index]


def test_invoked_as_cli_recognizes_scripts_and_dash_m(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [os.path.join("usr", "bin", "evidently")])
    assert invoked_as_cli("evidently")
    monkeypatch.setattr(sys, "argv", ["evidently.exe"])
    assert invoked_as_cli("evidently")
    monkeypatch.setattr(sys, "argv", ["pytest"])
    assert not invoked_as_cli("evidently")
