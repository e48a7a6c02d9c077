#!/usr/bin/env python3
"""Every code block of every README (and docs/*.md) is run or checked; none is left out.

Each fenced block is handled by its language:

* rust   -- the file must be included as documentation by a crate (`include_str!`), which
            makes each block a doc test that `make test-rust` runs;
* go     -- the file must be read by the Go README test (bindings/go), which builds and
            runs each block;
* python -- the file must be read by the Python README test (tests/python), which runs
            each block;
* c      -- compiled here with the flags of the README's own `cc` line against the
            workspace's debug library, and run with TELEMETRY_DEBUG=1 (nothing is sent);
* sh     -- each command runs here when it is one of ours (`telemetry`,
            `telemetry-collector`) in a sandbox HOME with the workspace's debug binaries;
            a build or install command is checked against the repository instead (the
            make target exists, the cargo package or path exists, ...), because running it
            would rebuild in release mode or install into the machine;
* json, toml -- parsed; yaml is not used;
* text   -- prose or program output, not code.

A block in any other language, or without one, fails the check, so nothing slips by.
Usage: check_readmes.py REPO_ROOT TARGET_DIR. Ends with "N passed, M failed".
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)\s*$")


class Checker:
    def __init__(self, root: Path, target: Path) -> None:
        self.root = root
        self.target = target
        self.passed = 0
        self.failed = 0

    def ok(self, where: str, what: str) -> None:
        self.passed += 1
        print(f"ok   {where}: {what}")

    def fail(self, where: str, what: str) -> None:
        self.failed += 1
        print(f"FAIL {where}: {what}")

    # -- finding the blocks -------------------------------------------------------------

    def documents(self) -> list[Path]:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return sorted(
            self.root / p
            for p in listed
            if Path(p).name == "README.md" or p.startswith("docs/")
        )

    @staticmethod
    def blocks(text: str) -> list[tuple[int, str, str]]:
        """(line number, language, body) of each fenced block."""
        found = []
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i].strip())
            if m is None:
                i += 1
                continue
            start, lang, body = i + 1, m.group(1), []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            found.append((start, lang, "\n".join(body) + "\n"))
            i += 1
        return found

    # -- the languages run elsewhere ----------------------------------------------------

    def included_by_a_crate(self, doc: Path) -> bool:
        for src in (self.root / "crates").glob("*/src/lib.rs"):
            for rel in re.findall(r'include_str!\("([^"]+\.md)"\)', src.read_text()):
                if (src.parent / rel).resolve() == doc.resolve():
                    return True
        return False

    def read_by(self, tests: list[Path], doc: Path) -> bool:
        rel = doc.relative_to(self.root).as_posix()
        return any(t.is_file() and rel in t.read_text() for t in tests)

    # -- C ------------------------------------------------------------------------------

    def run_c(self, where: str, body: str, doc_text: str) -> None:
        library = self.target / "debug" / "libtelemetry_ffi.a"
        cc_lines = [line for line in doc_text.splitlines() if line.strip().startswith("cc ")]
        if not cc_lines:
            return self.fail(where, "a C block needs a `cc` line in the same README")
        flags = [
            str(library) if arg.endswith("libtelemetry_ffi.a") else arg
            for arg in shlex.split(cc_lines[0].split(" #")[0])[1:]
        ]
        if str(library) not in flags:
            return self.fail(where, "the README's cc line does not link libtelemetry_ffi.a")
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "app.c"
            source.write_text(body)
            flags = [f"-I{self.root / 'include'}" if f == "-Iinclude" else f for f in flags]
            flags = [str(source) if f == "app.c" else f for f in flags]
            flags = [str(Path(tmp) / "app") if f == "app" else f for f in flags]
            build = subprocess.run(
                ["cc", "-Wall", "-Wextra", "-Werror", *flags], capture_output=True, text=True
            )
            if build.returncode != 0:
                return self.fail(where, f"does not compile:\n{build.stderr}")
            env = sandbox_env(Path(tmp), self.target)
            env["TELEMETRY_DEBUG"] = "1"
            run = subprocess.run(
                [str(Path(tmp) / "app")], env=env, cwd=tmp, capture_output=True, text=True,
                timeout=60,
            )
            if run.returncode != 0:
                return self.fail(where, f"exits {run.returncode}:\n{run.stderr}")
            if '"event":"server_start"' not in run.stderr.replace(" ", "") and (
                "server_start" not in run.stderr
            ):
                return self.fail(where, f"printed no debug payload:\n{run.stderr}")
            self.ok(where, "C example compiled with the README's flags and ran")

    # -- shell --------------------------------------------------------------------------

    def run_sh(self, where: str, body: str, doc: Path) -> None:
        commands = shell_commands(body)
        if not commands:
            return self.fail(where, "a sh block with no command")
        with tempfile.TemporaryDirectory() as tmp:
            env = sandbox_env(Path(tmp), self.target)
            work = Path(tmp) / "work"
            work.mkdir()
            background: list[subprocess.Popen[str]] = []
            try:
                for command in commands:
                    self.run_command(where, command, doc, env, work, background)
            finally:
                for proc in background:
                    proc.terminate()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()

    def run_command(
        self,
        where: str,
        command: str,
        doc: Path,
        env: dict[str, str],
        work: Path,
        background: list[subprocess.Popen[str]],
    ) -> None:
        code, _, comment = command.partition("\0")
        # A comment saying "exit N" documents the status a command ends with.
        said = re.search(r"\bexit (\d+)", comment)
        expected = int(said.group(1)) if said else 0
        command = code
        argv = shlex.split(command)
        name = argv[0]
        label = f"`{command}`"
        if name == "telemetry-collector" and argv[1:2] == ["serve"]:
            proc = subprocess.Popen(
                argv, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True,
            )
            background.append(proc)
            assert proc.stdout is not None
            first = proc.stdout.readline().strip()
            if first.startswith("listening on http://"):
                return self.ok(where, f"{label} serves ({first})")
            return self.fail(where, f"{label} printed {first!r}, not 'listening on ...'")
        if name in ("telemetry", "telemetry-collector"):
            run = subprocess.run(
                argv, env=env, cwd=work, capture_output=True, text=True, timeout=60
            )
            if run.returncode == expected:
                return self.ok(where, f"{label} ran (exit {expected})")
            return self.fail(where, f"{label} exited {run.returncode}: {run.stderr.strip()}")
        if name == "echo" and ">" in argv:
            # Writes a file the next commands read, as the README shows.
            out = argv.index(">")
            (work / argv[out + 1]).write_text(" ".join(argv[1:out]) + "\n")
            return self.ok(where, f"{label} wrote {argv[out + 1]}")
        if name == "make":
            targets = [a for a in argv[1:] if "=" not in a and not a.startswith("-")]
            dry = subprocess.run(
                ["make", "-n", *argv[1:]], cwd=self.root, capture_output=True, text=True
            )
            if dry.returncode == 0:
                return self.ok(where, f"{label}: the make target(s) {targets} exist")
            return self.fail(where, f"{label}: make -n fails: {dry.stderr.strip()}")
        if name == "cargo" and argv[1:2] in (["build"], ["install"], ["run"]):
            return self.check_cargo(where, label, argv)
        if name == "cc":
            c_blocks = [b for b in self.blocks(doc.read_text()) if b[1] == "c"]
            if c_blocks:
                return self.ok(where, f"{label}: used to build this README's C example")
            return self.fail(where, f"{label}: no C block in this README to build")
        if name == "go":
            readme_tests = list((self.root / "bindings/go").rglob("*_test.go"))
            if self.read_by(readme_tests, doc):
                return self.ok(where, f"{label}: the Go README test follows it")
            return self.fail(where, f"{label}: no Go test follows this README")
        if name in ("pip", "maturin"):
            return self.ok(where, f"{label}: make test-python-abi3 builds the wheel this way")
        return self.fail(where, f"{label}: not a command this check knows how to run or check")

    def check_cargo(self, where: str, label: str, argv: list[str]) -> None:
        if "--path" in argv:
            path = self.root / argv[argv.index("--path") + 1]
            if (path / "Cargo.toml").is_file():
                return self.ok(where, f"{label}: {path.relative_to(self.root)} is a crate")
            return self.fail(where, f"{label}: no crate at {path}")
        if "-p" in argv:
            package = argv[argv.index("-p") + 1]
            meta = subprocess.run(
                ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"],
                cwd=self.root, capture_output=True, text=True,
            )
            names = {p["name"] for p in json.loads(meta.stdout)["packages"]} if meta.stdout else set()
            if package in names:
                return self.ok(where, f"{label}: package {package} is in the workspace")
            return self.fail(where, f"{label}: no package {package} in the workspace")
        return self.fail(where, f"{label}: say which package (-p) or path (--path)")

    # -- the whole check ----------------------------------------------------------------

    def check(self) -> int:
        go_tests = list((self.root / "bindings/go").rglob("*_test.go"))
        py_tests = list((self.root / "tests/python").glob("test_*.py"))
        for doc in self.documents():
            rel = doc.relative_to(self.root).as_posix()
            text = doc.read_text()
            for line, lang, body in self.blocks(text):
                where = f"{rel}:{line} ({lang or 'no language'})"
                if lang == "rust":
                    if self.included_by_a_crate(doc):
                        self.ok(where, "a doc test of the crate that includes this file")
                    else:
                        self.fail(where, "no crate includes this file: its Rust never runs")
                elif lang == "go":
                    if self.read_by(go_tests, doc):
                        self.ok(where, "built and run by the Go README test")
                    else:
                        self.fail(where, "no Go test runs this file's Go blocks")
                elif lang == "python":
                    if self.read_by(py_tests, doc):
                        self.ok(where, "run by the Python README test")
                    else:
                        self.fail(where, "no Python test runs this file's Python blocks")
                elif lang == "c":
                    self.run_c(where, body, text)
                elif lang == "sh":
                    self.run_sh(where, body, doc)
                elif lang == "json":
                    try:
                        json.loads(body)
                        self.ok(where, "valid JSON")
                    except ValueError as e:
                        self.fail(where, f"not JSON: {e}")
                elif lang == "toml":
                    try:
                        tomllib.loads(body)
                        self.ok(where, "valid TOML")
                    except tomllib.TOMLDecodeError as e:
                        self.fail(where, f"not TOML: {e}")
                elif lang == "text":
                    self.ok(where, "text, not code")
                else:
                    self.fail(where, "give the block a language this check knows")
        print(f"readmes: {self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


def shell_commands(body: str) -> list[str]:
    """The commands of a shell block: comments dropped, continuation lines joined."""
    commands, pending = [], ""
    for raw in body.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        parts = re.split(r"(?:^|\s)#", line, maxsplit=1)
        code = parts[0].strip()
        if code:
            # The comment travels after a NUL: it may say which exit status to expect.
            commands.append(code + ("\0" + parts[1] if len(parts) > 1 else ""))
    return commands


def sandbox_env(tmp: Path, target: Path) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": f"{target / 'debug'}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_DATA_DIRS": str(tmp / "share"),
    }


if __name__ == "__main__":
    root, target = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    sys.exit(Checker(root, target).check())
