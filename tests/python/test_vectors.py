"""The shared test vectors (tests/vectors/*.json), run through the Python binding.

The Rust and Go suites run the same files, so the three languages agree on every
decision and every byte that leaves a machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from telemetry_core import Client, Settings, TelemetryEvent
from telemetry_core._native import anonymize_value

from conftest import VECTORS


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return doc


CONSENT = load("consent.json")
ANONYMIZE = load("anonymize.json")
BATCHING = load("batching.json")


def listing(root: Path) -> set[str]:
    return {
        os.path.join(d, n)
        for d, dirs, files in os.walk(root, followlinks=False)
        for n in dirs + files
    }


def build_files(root: Path, files: dict[str, Any]) -> None:
    for relative, spec in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, str):
            path.write_text(spec)
        elif spec.get("directory"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            os.symlink(spec["symlink"].replace("{root}", str(root)), path)


@pytest.mark.parametrize("case", CONSENT["cases"], ids=lambda c: c["name"])
def test_consent_vector(case: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path
    work = root / "work"
    work.mkdir()
    build_files(root, case["files"])
    env: dict[str, str] = {"HOME": str(root / "home")}
    for name, value in case["env"].items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value.replace("{root}", str(root))
    inputs = case["inputs"]
    settings = Settings(
        product="vector-host",
        profile=case["profile"],
        sink="memory",
        anonymized_telemetry=inputs["explicit"],
        args=inputs["args"],
        mode=inputs["mode"],
        config_dir=work,
        working_dir=work,
        environment=env,
    )

    before = listing(root)
    decision = Client(settings).decision
    assert listing(root) == before, "resolving consent created files"

    expect = case["expect"]
    explain = f"\n{decision}"
    assert decision.enabled is expect["enabled"], explain
    want = expect["decided_by"]
    if want is None:
        assert decision.decided_by is None, explain
    else:
        got = decision.decided_by
        assert got is not None, explain
        assert (got["kind"], got["name"]) == (
            want["kind"],
            want["name"].replace("{root}", str(root)),
        ), explain
    assert len(decision.warnings) == expect["warnings"], explain
    for needle in expect.get("warnings_contain", []):
        needle = needle.replace("{root}", str(root))
        assert any(needle in w for w in decision.warnings), f"no warning has {needle!r}{explain}"
    assert decision.sources[-1]["kind"] == "default"


@pytest.mark.parametrize("case", ANONYMIZE["cases"], ids=lambda c: c["name"])
def test_anonymize_vector(case: dict[str, Any]) -> None:
    names = case.get("local_names", ANONYMIZE["local_names"])
    got = anonymize_value(
        case["input"], case["kind"], ANONYMIZE["secret_hex"], case["precision"], names
    )
    if case.get("dropped"):
        assert got is None
    else:
        assert got is not None
        # Integers and floats are distinct in the vectors: compare types too.
        assert json.dumps(got[0], sort_keys=True) == json.dumps(case["expect"], sort_keys=True)


def strip_context(item: dict[str, Any], context_keys: set[str]) -> dict[str, Any]:
    props = {k: v for k, v in item["properties"].items() if k not in context_keys}
    return {"event": item["event"], "properties": props}


@pytest.mark.parametrize("case", BATCHING["cases"], ids=lambda c: c["name"])
def test_batching_vector(case: dict[str, Any]) -> None:
    """A client cannot show single worker steps: compare all emits with what it delivers,
    flushing where the vector drains (and at the end, which drains too)."""
    client = Client(
        Settings(product="vector-host", sink="memory", environment={}, flush_interval=3600)
    )
    context_keys = set(client.preview("context-probe")["properties"])
    expected: list[dict[str, Any]] = []
    for step in case["steps"]:
        if "offer" in step:
            offer = step["offer"]
            batch = offer.get("batch")
            client.capture(
                TelemetryEvent(
                    offer["event"],
                    offer.get("properties", {}),
                    kinds=offer.get("kinds"),
                    batch_key=batch["key"] if batch else None,
                    max_batch_size=batch["max_size"] if batch else 1,
                    summed=batch.get("sum", []) if batch else (),
                )
            )
        else:
            assert client.flush(10)
        expected.extend(step["emits"])
    client.shutdown(10)
    delivered = [strip_context(e, context_keys) for e in client.delivered()]
    assert delivered == expected
