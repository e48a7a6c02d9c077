"""Property tests (hypothesis) over the native conversion of Python values into events.

Whatever a host passes as properties, every way into capture behaves the same: it
delivers the event or refuses it with ``InvalidEventError`` or ``TypeError`` saying why,
and never raises anything else or takes the interpreter down. Declared ``safe``, a
JSON-shaped value arrives as Python reads it (tuples as lists, NaN and infinities as
null). atheris would not instrument the Rust extension, so hypothesis drives it.
"""

from __future__ import annotations

import math
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry_core import Client, InvalidEventError, Settings, TelemetryEvent

SECRET = "11a245dd53334a50626b2356ccff3083922976f8016efbfb387ac3ab23a0dcf7"

# Enough examples to find the odd value, few enough for `make test` (a client each).
# Derandomized, so CI sees the same examples every run (no flakes), and with no example
# database written into the checkout; HYPOTHESIS_SEARCH=1 searches afresh instead.
FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("HYPOTHESIS_SEARCH") != "1",
    database=None,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
names = st.text(min_size=1, max_size=20)


def memory_client() -> Client:
    return Client(
        Settings(
            product="acme",
            version="1.0",
            sink="memory",
            environment={},
            install_id="6f3c8a1e-2b4d-4e5f-9a0b-1c2d3e4f5a6b",
            secret_hex=SECRET,
        )
    )


def delivered(client: Client) -> list[dict[str, Any]]:
    client.shutdown(5)
    return [dict(e["properties"]) for e in client.delivered()]


def encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def all_text(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in all_text(v)]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in [k, *all_text(v)]]
    return []


def as_read(value: object) -> object:
    """What a declared-safe value arrives as."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value)
    if isinstance(value, (list, tuple)):
        return [as_read(v) for v in value]
    if isinstance(value, dict):
        return {k: as_read(v) for k, v in value.items()}
    return value


def outcome(capture: Any, name: str, properties: dict[str, object]) -> str:
    """`delivered`, or the refusal's message (which must say something)."""
    try:
        capture(name, properties)
    except (InvalidEventError, TypeError) as e:
        return f"refused: {type(e).__name__}" if str(e) else "refused without a reason"
    return "delivered"


@FAST
@given(name=names, properties=st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=4))
def test_every_entry_point_delivers_or_refuses_alike(
    name: str, properties: dict[str, object]
) -> None:
    client = memory_client()
    native = client._native
    entry_points = {
        "instance": lambda n, p: client.capture(n, **p),
        "vectorcall": lambda n, p: native.capture_function(vectorcall=True)(n, **p),
        "varargs": lambda n, p: native.capture_function(vectorcall=False)(n, **p),
        "declared": lambda n, p: client.capture(TelemetryEvent(n, p)),
    }
    outcomes = {k: outcome(f, name, properties) for k, f in entry_points.items()}
    assert len(set(outcomes.values())) == 1, outcomes
    assert "refused without a reason" not in outcomes.values()
    texts = [name, *all_text(properties)]
    if all(encodable(t) for t in texts) and name.strip():
        assert outcomes["declared"] == "delivered", (name, properties)
    events = delivered(client)
    assert len(events) == (4 if outcomes["declared"] == "delivered" else 0)
    # The anonymized results agree too (same secret, same install; NaN arrives as null).
    assert all(e == events[0] for e in events[1:]), events


@FAST
# Prefixed: a property named like a context property (`runtime`, `os`) is the context's.
@given(
    properties=st.dictionaries(
        st.text(max_size=12).map("p_".__add__), values, min_size=1, max_size=4
    )
)
def test_declared_safe_values_arrive_as_python_reads_them(properties: dict[str, object]) -> None:
    if not all(encodable(t) for t in all_text(properties)):
        return
    client = memory_client()
    client.capture(TelemetryEvent("e", properties, kinds=dict.fromkeys(properties, "safe")))
    (props,) = delivered(client)
    for key, value in properties.items():
        assert props[key] == as_read(value), key
