"""The shared observability vectors (tests/vectors/otel.json) through the Python binding.

"config" cases go through a real client: the case's environment through the
``environment`` override map, its settings through ``Settings`` (the generic ``otel_*``
names, and Chroma's ``chroma_otel_*`` names for the four settings Chroma has), compared
with the resolved configuration the client exposes (``Client.trace_config``, the core's
``OtelConfig::to_status_json`` plus ``level``). Only the keys a case expects are checked;
``warnings: []`` means none, ``warnings_contain`` lists substrings one warning must all
hold. "traceparent" cases go through ``extract``, "sampling" cases through the core's
sampler. The Rust and Go suites run the same file.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from telemetry_core import Client, Settings
from telemetry_core._native import should_sample
from telemetry_core.opentelemetry import extract

from conftest import VECTORS

OTEL: dict[str, Any] = json.loads((VECTORS / "otel.json").read_text())
LEVELS = {"none": 0, "operation": 1, "operation_and_segment": 2, "all": 3}

#: A vector's settings key -> the Settings field (generic name, Chroma's name or None).
FIELDS = {
    "endpoint": ("otel_collection_endpoint", "chroma_otel_collection_endpoint"),
    "service_name": ("otel_service_name", "chroma_otel_service_name"),
    "headers": ("otel_collection_headers", "chroma_otel_collection_headers"),
    "granularity": ("otel_granularity", "chroma_otel_granularity"),
    "protocol": ("otel_protocol", None),
    "sampler": ("otel_sampler", None),
    "sampler_arg": ("otel_sampler_arg", None),
    "resource_attributes": ("otel_resource_attributes", None),
    "disabled": ("otel_disabled", None),
    "compression": ("otel_compression", None),
}


def paths(value: Any) -> Any:
    """``{vectors}`` in a case's paths: the absolute path of tests/vectors."""
    return value.replace("{vectors}", str(VECTORS)) if isinstance(value, str) else value


def settings_for(case: dict[str, Any], chroma_names: bool) -> Settings:
    fields: dict[str, Any] = {}
    # The client's own TLS settings, which trace exports follow.
    for key in ("ca_file", "tls_roots"):
        if key in case:
            fields[key] = paths(case[key])
    for key, value in case["settings"].items():
        generic, chroma = FIELDS[key]
        fields[chroma if chroma_names and chroma else generic] = value
    return Settings(
        product=case["product"],
        profile=case["profile"],
        sink="memory",
        anonymized_telemetry=False,
        environment={k: paths(v) for k, v in case["env"].items()},
        **fields,
    )


def check(case: dict[str, Any], got: dict[str, Any]) -> None:
    name = case["name"]
    for key, want in case["expect"].items():
        want = [paths(p) for p in want] if key == "warnings_contain" else paths(want)
        if key == "warnings_contain":
            assert any(all(part in w for part in want) for w in got["warnings"]), (
                f"{name}: no warning holds {want}: {got['warnings']}"
            )
        elif key == "headers":
            assert [list(h) for h in got["headers"]] == want, f"{name}: headers"
        else:
            assert got[key] == want, f"{name}: {key} is {got[key]!r}, expected {want!r}"
    # What the wrappers compare with: the level is the granularity when active, else 0.
    level = LEVELS[got["granularity"]] if got["active"] else 0
    assert got["level"] == level, f"{name}: level {got['level']}"


CONFIG = OTEL["config"]
CHROMA_CASES = [c for c in CONFIG if c["profile"] == "chroma" and c["settings"]]


def test_the_vectors_are_there() -> None:
    assert len(CONFIG) >= 40
    assert CHROMA_CASES, "no chroma case sets anything in code"


@pytest.mark.parametrize("case", CONFIG, ids=lambda c: c["name"])
def test_config_vector(case: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    client = Client(settings_for(case, chroma_names=False))
    try:
        got = client.trace_config(reveal_headers=True)
        check(case, got)
        # The status form never shows a header's value.
        shown = json.dumps(client.trace_config())
        for _, value in got["headers"]:
            assert len(value) < 2 or f'"{value}"' not in shown
        # Every warning the core gave reached Python's logging, once.
        logged = [r.getMessage() for r in caplog.records]
        for w in got["warnings"]:
            assert sum(w in m for m in logged) == 1, f"{w!r} not logged once: {logged}"
        assert client.tracing == (got["level"] > 0)
    finally:
        client.shutdown(0)


@pytest.mark.parametrize("case", CHROMA_CASES, ids=lambda c: c["name"])
def test_config_vector_with_chromas_names(case: dict[str, Any]) -> None:
    client = Client(settings_for(case, chroma_names=True))
    try:
        check(case, client.trace_config(reveal_headers=True))
    finally:
        client.shutdown(0)


@pytest.mark.parametrize("case", OTEL["traceparent"], ids=lambda c: c["traceparent"] or "empty")
def test_traceparent_vector(case: dict[str, Any]) -> None:
    headers = {"traceparent": case["traceparent"]}
    if case["tracestate"] is not None:
        headers["tracestate"] = case["tracestate"]
    got = extract(headers)
    want = case["expect"]
    if want is None:
        assert got is None, f"{case['traceparent']!r} should be refused: {got}"
        return
    assert got is not None, f"{case['traceparent']!r} should parse"
    assert (got.trace_id, got.span_id, got.sampled) == (
        want["trace_id"],
        want["span_id"],
        want["sampled"],
    )
    assert got.remote
    if "tracestate" in want:
        assert got.tracestate == want["tracestate"]
    # Formatted again: the canonical version-00 header.
    assert len(got.traceparent) == 55
    assert got.traceparent.startswith("00-")
    assert got.traceparent.split("-")[1:3] == [want["trace_id"], want["span_id"]]


@pytest.mark.parametrize("case", OTEL["sampling"], ids=lambda c: json.dumps(c))
def test_sampling_vector(case: dict[str, Any]) -> None:
    got = should_sample(case["sampler"], case["trace_id"], case["parent_sampled"])
    assert got is case["expect"]
