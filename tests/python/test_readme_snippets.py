"""Every ```python block of the READMEs runs as a newcomer would paste it.

Each block runs in a fresh interpreter (this Python) with ``TELEMETRY_DEBUG=1``, which
replaces any sink by one that prints each payload to stderr and sends nothing, so the
endpoints the snippets name are never contacted; HOME and the working directory are an
empty temporary directory. A small runner executes the block as ``__main__``, then shuts
down every ``Client`` the block built (its own or an integration's) and reports their
counters. A block passes when it exits 0, names its product (no ``MissingProductWarning``),
loses no event, writes no id file, and prints exactly one debug payload per event item its
enabled clients delivered: a block that captures while enabled shows its payloads, and a
block whose clients are off prints none.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from conftest import ROOT, clean_env, debug_payloads

# Spelled as paths from the root: tests/docs/check_readmes.py looks for them in this file
# to know that these READMEs' Python blocks are run.
READMES = (ROOT / "README.md", ROOT / "python/README.md")

# A fenced block: its opening fence (with the info string) up to the next bare fence.
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[^\s`]*)[^\n]*\n(?P<body>.*?)^[ \t]*```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
PYTHON = {"python", "py", "python3"}
# Third-party packages a block may show (tests/python/requirements.txt installs them in the
# venv); the abi3 runs under other Pythons do without, and skip the blocks that need them.
OPTIONAL = ("chromadb", "fastapi", "flask", "werkzeug", "starlette", "uvicorn", "opentelemetry")
LOST = ("dropped_queue_full", "dropped_shutdown", "dropped_failed", "queued")

RUNNER = textwrap.dedent(
    """
    import json, runpy, sys

    import telemetry_core

    clients = []
    _init = telemetry_core.Client.__init__

    def _recording_init(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        clients.append(self)

    # Observes every client, including those an integration builds; changes nothing.
    telemetry_core.Client.__init__ = _recording_init
    runpy.run_path(sys.argv[1], run_name="__main__")
    report = []
    for client in clients:
        stats = client.shutdown(10.0)  # what atexit would do, but counted
        report.append({"enabled": client.enabled, **stats.to_dict()})
    with open(sys.argv[2], "w") as f:
        json.dump(report, f)
    """
)


class Block(NamedTuple):
    readme: Path
    line: int
    code: str

    @property
    def where(self) -> str:
        return f"{self.readme.relative_to(ROOT)}:{self.line}"


def python_blocks(readme: Path) -> list[Block]:
    text = readme.read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        if m["lang"].lower() in PYTHON:
            line = text.count("\n", 0, m.start()) + 1
            blocks.append(Block(readme, line, textwrap.dedent(m["body"])))
    return blocks


ALL_BLOCKS = [b for readme in READMES for b in python_blocks(readme)]


class Run(NamedTuple):
    result: subprocess.CompletedProcess[str]
    clients: list[dict[str, Any]]
    home: Path


def run_block(code: str, tmp_path: Path) -> Run:
    home = tmp_path / "home"
    home.mkdir()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "snippet.py").write_text(code, encoding="utf-8")
    (scripts / "runner.py").write_text(RUNNER, encoding="utf-8")
    report = scripts / "report.json"
    result = subprocess.run(
        [sys.executable, str(scripts / "runner.py"), str(scripts / "snippet.py"), str(report)],
        env=clean_env(home, TELEMETRY_DEBUG="1"),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    clients = json.loads(report.read_text()) if report.exists() else []
    return Run(result, clients, home)


def check(run: Run, where: str) -> None:
    """Raises AssertionError, saying why, unless the block ran as a README block must."""
    result = run.result
    assert result.returncode == 0, f"{where} exits {result.returncode}:\n{result.stderr}"
    assert "MissingProductWarning" not in result.stderr, f"{where} names no product"
    for client in run.clients:
        lost = {k: client[k] for k in LOST if client[k]}
        assert not lost, f"{where}: events were not delivered: {lost}"
    payloads = debug_payloads(result.stderr)
    delivered = sum(c["sent"] - c["merged"] for c in run.clients)
    if any(c["captured"] for c in run.clients):
        assert payloads, f"{where} captures while enabled but printed no payload"
    assert len(payloads) == delivered, (
        f"{where}: {len(payloads)} debug payloads printed, {delivered} delivered:\n{result.stderr}"
    )
    assert all("event" in p and "distinct_id" in p for p in payloads), payloads
    ids = list(run.home.rglob("telemetry_user_id"))
    assert not ids, f"{where}: a debug sink wrote an id file: {ids}"


def test_every_python_fence_of_the_readmes_is_found() -> None:
    for readme in READMES:
        text = readme.read_text(encoding="utf-8")
        fences = len(re.findall(r"^[ \t]*```(?:python|py|python3)[ \t]*$", text, re.M))
        assert fences >= 1, f"{readme} has no python block"
        assert len(python_blocks(readme)) == fences, f"{readme}: a python block was not parsed"


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.where for b in ALL_BLOCKS])
def test_readme_python_block_runs(block: Block, tmp_path: Path) -> None:
    missing = [
        m
        for m in OPTIONAL
        if re.search(rf"^\s*(import|from)\s+{m}\b", block.code, re.M)
        and importlib.util.find_spec(m) is None
    ]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed in this Python (the abi3 runs leave it out)"
        )
    check(run_block(block.code, tmp_path), block.where)


def test_a_block_that_raises_fails(tmp_path: Path) -> None:
    run = run_block("from telemetry_core import Client\nClient(uid)\n", tmp_path)
    with pytest.raises(AssertionError, match="exits 1"):
        check(run, "raising block")
    assert "NameError: name 'uid' is not defined" in run.result.stderr


def test_a_block_that_names_no_product_fails(tmp_path: Path) -> None:
    code = "from telemetry_core import Client, Settings\nClient(Settings(sink='debug'))\n"
    with pytest.raises(AssertionError, match="names no product"):
        check(run_block(code, tmp_path), "block without a product")


def test_a_block_whose_capture_is_lost_fails(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        from telemetry_core import Client, Settings
        client = Client(Settings(product="acme", sink="memory"))
        client.shutdown()
        client.capture("too_late")
        """
    )
    with pytest.raises(AssertionError, match="dropped_shutdown"):
        check(run_block(code, tmp_path), "block losing an event")


def test_payloads_are_counted_per_delivered_item_batches_included(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        from telemetry_core import Client, Settings, TelemetryEvent
        client = Client(Settings(product="acme", sink="memory", flush_interval=3600))
        for _ in range(5):
            client.capture(TelemetryEvent("add", {"n": 1}, batch_key="k", max_batch_size=3,
                                          summed=("n",)))
        off = Client(Settings(product="acme", sink="memory", anonymized_telemetry=False))
        off.capture("never")
        """
    )
    run = run_block(code, tmp_path)
    check(run, "batched block")
    # First at once, then 3 merged into one, the last at shutdown; the off client: none.
    assert [p["properties"]["batch_size"] for p in debug_payloads(run.result.stderr)] == [1, 3, 1]
    assert [c["enabled"] for c in run.clients] == [True, False]


def test_check_refuses_a_capture_without_a_printed_payload(tmp_path: Path) -> None:
    # The counters say an enabled client delivered one event; stderr shows none.
    home = tmp_path / "home"
    home.mkdir()
    silent = subprocess.CompletedProcess(["python"], 0, stdout="", stderr="")
    stats = dict.fromkeys(("merged", *LOST), 0)
    run = Run(silent, [{"enabled": True, "captured": 1, "sent": 1, **stats}], home)
    with pytest.raises(AssertionError, match="printed no payload"):
        check(run, "silent block")
