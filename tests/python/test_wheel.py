"""The wheel as an end user gets it: installed into a fresh venv (nothing from this
checkout on its path), with the ``telemetry`` console script and ``python -m
telemetry_core`` compared with the Rust binary, an integrator's package declaring its own
``acme-telemetry`` command, and an install whose native module is missing.

``make test-python-wheel`` runs this with ``TELEMETRY_WHEEL`` naming the wheel (the
dev-profile abi3 wheel ``test-python-abi3`` also installs) and ``TELEMETRY_CLI_BIN`` the
Rust binary; without them it is skipped. Every command runs in a sandbox: its own HOME
and XDG directories, an empty working directory, and no variable but PATH and those.
Nothing here touches the network: wheels are installed with ``--no-index``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

WHEEL = os.environ.get("TELEMETRY_WHEEL", "")
CLI_BIN = os.environ.get("TELEMETRY_CLI_BIN", "")
FIXTURE = Path(__file__).parent / "fixtures" / "acme"

pytestmark = pytest.mark.skipif(
    not (WHEEL and Path(WHEEL).is_file() and CLI_BIN and Path(CLI_BIN).is_file()),
    reason="needs TELEMETRY_WHEEL and TELEMETRY_CLI_BIN (make test-python-wheel)",
)


def _pip(venv: Path, *args: str) -> None:
    # The runner's pip installs into the new venv (`--python`): a venv without pip of its
    # own is made in a fraction of the time.
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), *args],
        check=True,
        capture_output=True,
    )


def _fresh_venv(root: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    _pip(root, "install", "-q", "--no-index", "--no-deps", WHEEL)
    return root


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fresh_venv(tmp_path_factory.mktemp("wheel") / "venv")


@dataclass
class Ran:
    code: int
    out: str
    err: str


class Sandbox:
    """A HOME of its own; commands run with only PATH and the XDG variables set."""

    def __init__(self, root: Path, venv: Path | None = None) -> None:
        self.root = root
        for d in ("home", "work", "share"):
            (root / d).mkdir(parents=True, exist_ok=True)
        self.venv = venv

    def env(self, **extra: str) -> dict[str, str]:
        path = os.environ.get("PATH", "/usr/bin:/bin")
        if self.venv is not None:
            path = f"{self.venv / 'bin'}:{path}"
        home = self.root / "home"
        return {
            "PATH": path,
            "HOME": str(home),
            "XDG_STATE_HOME": str(home / ".local/state"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local/share"),
            "XDG_DATA_DIRS": str(self.root / "share"),
            **extra,
        }

    def run(self, argv: list[str], stdin: str | None = None, **extra: str) -> Ran:
        p = subprocess.run(
            argv,
            env=self.env(**extra),
            cwd=self.root / "work",
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        # Paths differ between sandboxes; the rest must not.
        return Ran(
            p.returncode,
            p.stdout.replace(str(self.root), "<SANDBOX>"),
            p.stderr.replace(str(self.root), "<SANDBOX>"),
        )

    def store_identity(self, profile: str) -> None:
        """An install id and hashing secret, as an enabled run would have stored them."""
        d = self.root / "home/.local/state" / profile
        d.mkdir(parents=True, exist_ok=True)
        (d / "telemetry_user_id").write_text("6a1c7c5e-8f0b-4d7e-9a63-2f4b8d1e0c55\n")
        (d / "telemetry_secret").write_text("ab" * 32 + "\n")


# What an end user types, in order (each step sees the state the previous ones left).
SESSION: list[tuple[list[str], dict[str, str]]] = [
    (["status", "--profile", "acme"], {}),
    (["status", "--profile", "acme", "--json"], {}),
    (["disable", "--profile", "acme"], {}),
    (["status", "--profile", "acme"], {}),
    (["enable", "--profile", "acme"], {}),
    # Off beats on: the saved "enabled" is not enough, and the command says so.
    (["enable", "--profile", "acme"], {"DO_NOT_TRACK": "1"}),
    (["id", "--profile", "acme"], {}),
    (["reset", "--profile", "acme"], {}),
    (["preview", "--profile", "acme"], {}),
    (["status", "--json"], {"TELEMETRY_PROFILE": "qdrant"}),
    (["id", "--profile", "qdrant"], {}),
    (["reset", "--profile", "qdrant"], {}),
    (["status", "--profile", "evidently", "--mode", "library"], {}),
    (["disable", "--profile", "chroma"], {}),
    (["status", "--profile", "chroma", "--json"], {}),
    # Usage errors and help: clap's text and exit statuses, the same bytes.
    (["status"], {}),
    (["frobnicate", "--profile", "acme"], {}),
    (["status", "--profile", "../etc"], {}),
    ([], {}),
    (["--help"], {}),
    (["preview", "--help"], {}),
    (["--version"], {}),
]

# With an install id stored: the id, a preview hashed with its secret, the reset.
WITH_ID: list[list[str]] = [
    ["id", "--profile", "acme"],
    ["preview", "--profile", "acme"],
    ["preview", "--profile", "acme", "--event", "-"],
    ["reset", "--profile", "acme"],
    ["id", "--profile", "acme"],
]
EVENT = '{"event": "query", "properties": {"n_results": 10, "collection": "notes"}}'


def _comparable(args: list[str], ran: Ran, program: str, id_stored: bool) -> Ran:
    out, err = ran.out, ran.err
    if program != "telemetry":
        out, err = out.replace(program, "telemetry"), err.replace(program, "telemetry")
    if args and args[0] == "preview" and ran.code == 0 and "--help" not in args:
        payload = json.loads(out)
        # Each preview makes a new event uuid and takes the time; without a stored
        # secret, the hashes and the id are made up for each run too.
        random = {"uuid", "timestamp"} | (set() if id_stored else {"distinct_id"})
        for key in random:
            payload.pop(key)
        if not id_stored:
            payload["properties"].pop("item_id")
        out = json.dumps(payload, sort_keys=True)
    return Ran(ran.code, out, err)


def _session(sb: Sandbox, command: list[str]) -> list[tuple[list[str], Ran]]:
    program = "telemetry" if command[-1] != "telemetry_core" else "python -m telemetry_core"
    results = []
    for args, extra in SESSION:
        results.append(
            (args, _comparable(args, sb.run([*command, *args], **extra), program, False))
        )
    sb.store_identity("acme")
    for args in WITH_ID:
        ran = sb.run([*command, *args], stdin=EVENT if "-" in args else None)
        results.append((args, _comparable(args, ran, program, True)))
    return results


@pytest.mark.parametrize("how", ["console script", "python -m"])
def test_the_wheels_command_prints_what_the_rust_binary_prints(
    venv: Path, tmp_path: Path, how: str
) -> None:
    rust = _session(Sandbox(tmp_path / "rust"), [CLI_BIN])
    command = (
        [str(venv / "bin" / "telemetry")]
        if how == "console script"
        else [str(venv / "bin" / "python"), "-m", "telemetry_core"]
    )
    ours = _session(Sandbox(tmp_path / "py", venv), command)
    codes = {r.code for _, r in rust}
    assert codes == {0, 1, 2}, "the session covers every exit status"
    for (args, expected), (_, got) in zip(rust, ours):
        assert got == expected, f"{how} {args}"


def test_python_output_and_the_commands_keep_their_order(venv: Path, tmp_path: Path) -> None:
    sb = Sandbox(tmp_path, venv)
    out = tmp_path / "out.txt"
    code = (
        "import sys\n"
        "from telemetry_core.cli import main\n"
        "print('before')\n"
        "code = main(['telemetry', 'id', '--profile', 'qdrant'])\n"
        "print('after', code, flush=True)\n"
        "print('stderr after', file=sys.stderr)\n"
    )
    with out.open("w") as f:
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", code],
            env=sb.env(),
            stdout=f,
            stderr=subprocess.STDOUT,
            check=True,
        )
    lines = out.read_text().splitlines()
    assert lines[0] == "before"
    assert lines[1].startswith("telemetry: qdrant makes a new install id in every process")
    assert lines[2:] == ["after 1", "stderr after"]


@pytest.fixture(scope="module")
def acme_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and the fixture integrator package, built from a copy
    (setuptools writes into the source tree) by the runner's setuptools, offline."""
    root = tmp_path_factory.mktemp("acme")
    pytest.importorskip("setuptools", reason="the fixture package is built with setuptools")
    src = root / "src"
    shutil.copytree(FIXTURE, src)
    dist = root / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(dist),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # acme depends on telemetry-core: pip resolves it from the wheel's directory.
    _pip(
        venv,
        "install",
        "-q",
        "--no-index",
        "--find-links",
        str(dist),
        "--find-links",
        str(Path(WHEEL).parent),
        "acme",
    )
    return venv


def test_an_integrators_command_acts_on_its_profile_with_no_flag(
    acme_venv: Path, tmp_path: Path
) -> None:
    sb = Sandbox(tmp_path, acme_venv)
    status = sb.run(["acme-telemetry", "status", "--json"], TELEMETRY_PROFILE="chroma")
    assert status.code == 0, status.err
    assert json.loads(status.out)["profile"] == "acme"  # TELEMETRY_PROFILE is not acme's
    text = sb.run(["acme-telemetry", "status"])
    assert "Turn it off: acme-telemetry disable (or DO_NOT_TRACK=1" in text.out
    assert "--profile" not in text.out

    off = sb.run(["acme-telemetry", "disable"])
    assert (off.code, off.err) == (0, "")
    choice = "<SANDBOX>/home/.local/state/acme/telemetry_choice"
    assert off.out == f"telemetry disabled for acme: saved in {choice}\n"
    # The same choice every client and the general command read.
    rust = sb.run([CLI_BIN, "status", "--profile", "acme", "--json"])
    assert json.loads(rust.out)["enabled"] is False
    assert json.loads(rust.out)["decided_by"]["kind"] == "user_choice"
    client = sb.run(
        [
            "python",
            "-c",
            "import acme; c = acme.telemetry_client(); print(c.enabled, "
            "c.decision.decided_by['kind'])",
        ]
    )
    assert client.out == "False user_choice\n", client.err
    assert "acme-telemetry status" in sb.run(["acme-telemetry", "enable"], DO_NOT_TRACK="1").err

    other = sb.run(["acme-telemetry", "status", "--profile", "chroma"])
    assert other.code == 2
    assert "acme-telemetry is acme's own command" in other.err
    help_text = sb.run(["acme-telemetry", "--help"])
    assert help_text.code == 0
    assert "Usage: acme-telemetry <COMMAND>" in help_text.out
    assert "acme's anonymous usage telemetry" in help_text.out


def test_an_integrators_opt_in_profile_shows_its_own_default(
    acme_venv: Path, tmp_path: Path
) -> None:
    sb = Sandbox(tmp_path, acme_venv)
    before = json.loads(sb.run(["acme-beta-telemetry", "status", "--json"]).out)
    assert (before["profile"], before["enabled"]) == ("acme-beta", False)
    assert before["decided_by"]["kind"] == "default"
    assert sb.run(["acme-beta-telemetry", "enable"]).code == 0
    after = json.loads(sb.run(["acme-beta-telemetry", "status", "--json"]).out)
    assert (after["enabled"], after["decided_by"]["kind"]) == (True, "user_choice")


def test_a_broken_install_keeps_the_host_running_and_the_command_says_why(
    tmp_path: Path,
) -> None:
    venv = _fresh_venv(tmp_path / "venv")
    (module,) = venv.glob("lib/python*/site-packages/telemetry_core/_native*.so")
    module.unlink()
    sb = Sandbox(tmp_path / "sb", venv)
    ran = sb.run(["telemetry", "status", "--profile", "acme"])
    assert (ran.code, ran.out) == (1, "")
    assert (
        "telemetry: cannot run: the native module telemetry_core._native could not be "
        "loaded (ModuleNotFoundError" in ran.err
    )
    assert sb.run(["python", "-m", "telemetry_core", "id", "--profile", "acme"]).code == 1
    host = sb.run(
        [
            "python",
            "-c",
            "import telemetry_core as t; c = t.Client(t.Settings(product='acme', "
            "endpoint='https://telemetry.example.com', api_key='k')); c.capture('started'); "
            "print(c.enabled, c.decision.decided_by['kind'], t.NATIVE_IMPORT_ERROR is not None)",
        ]
    )
    assert (host.code, host.out) == (0, "False native_module True\n"), host.err
    assert not (tmp_path / "sb/home/.local").exists(), "nothing was written"
