"""Every way into capture delivers the same event and refuses the same mistakes.

An enabled ``client.capture(name, **props)`` is a native builtin that writes the
properties as JSON text for the worker to parse (vectorcall on 3.10+, a dict on 3.9);
``TelemetryEvent`` and ``Client.capture(client, ...)`` go through the native method. These
tests hold all of them to one behaviour.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any

import pytest

from telemetry_core import Client, InvalidEventError, Settings, TelemetryEvent

Capture = Callable[..., None]

SECRET = "11a245dd53334a50626b2356ccff3083922976f8016efbfb387ac3ab23a0dcf7"


class Color(str, enum.Enum):
    RED = "red"


class Shape(enum.Enum):  # not a str: refused
    ROUND = "round"


class Level(enum.IntEnum):
    HIGH = 3


class Index:
    def __index__(self) -> int:
        return 42


class Ratio:
    def __float__(self) -> float:
        return 0.25


# Values whose JSON text is easy to get subtly wrong: escapes, non-BMP characters, floats
# that the default serde_json parser reads one ulp off, the edges of 64-bit integers.
PROPERTIES: dict[str, object] = {
    "text": 'quote " backslash \\ newline \n nul \x00 é 🎉',
    "empty": "",
    "f1": 0.011399999999999999,
    "f2": 1.0715660391465826e-75,
    "f3": -0.0,
    "f4": 1.7976931348623157e308,
    "nan": math.nan,
    "inf": -math.inf,
    "i_min": -(2**63),
    "i_max": 2**63 - 1,
    "u_max": 2**64 - 1,
    "big": 2**70,
    "yes": True,
    "none": None,
    "list": ["a", 1, 2.5, None, (True, [{"k": "v"}])],
    "dict": {"nested": {"x": [1, 2]}, "y": "z"},
    "color": Color.RED,
    "level": Level.HIGH,
    "index": Index(),
    "ratio": Ratio(),
}


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


def entry_points(client: Client) -> dict[str, Capture]:
    """Each way an enabled capture can be called, as `f(name, **properties)`."""
    native = client._native

    def method(name: str, **properties: object) -> None:
        Client.capture(client, name, **properties)

    def declared(name: str, **properties: object) -> None:
        client.capture(TelemetryEvent(name, properties))

    return {
        "instance": client.capture,
        "vectorcall": native.capture_function(vectorcall=True),
        "varargs": native.capture_function(vectorcall=False),
        "method": method,
        "declared": declared,
    }


def delivered_properties(client: Client) -> list[dict[str, Any]]:
    client.shutdown(5)
    out = []
    for event in client.delivered():
        props = dict(event["properties"])
        assert event["event"] == "e"
        out.append(props)
    return out


def normalized(value: object) -> object:
    """NaN != NaN; compare it by name."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def test_every_entry_point_delivers_the_same_anonymized_event() -> None:
    results = {}
    for name in entry_points(memory_client()):
        client = memory_client()
        entry_points(client)[name]("e", **PROPERTIES)
        (props,) = delivered_properties(client)
        results[name] = normalized(props)
    reference = results.pop("declared")
    for name, props in results.items():
        assert props == reference, name
    # Spot checks that the values went through the anonymizer, not around it.
    assert reference["text"] != PROPERTIES["text"]
    assert reference["nan"] is None
    assert reference["inf"] is None
    assert reference["yes"] is True
    assert reference["none"] is None


def test_floats_cross_to_the_worker_exactly() -> None:
    # Keyword properties travel to the worker as JSON text. Parsed one ulp off, the first
    # would read as 0.0114 and truncate to 0.0114 instead of 0.0113.
    client = memory_client()
    client.capture("e", f=0.011399999999999999, g=0.0114)
    (props,) = delivered_properties(client)
    assert (props["f"], props["g"]) == (0.0113, 0.0114)


def test_declared_exact_floats_arrive_unchanged() -> None:
    floats = {k: v for k, v in PROPERTIES.items() if isinstance(v, float) and math.isfinite(v)}
    client = memory_client()
    client.capture(TelemetryEvent("e", floats, kinds=dict.fromkeys(floats, "exact")))
    (props,) = delivered_properties(client)
    for key, value in floats.items():
        assert props[key] == value, key
        assert math.copysign(1, props[key]) == math.copysign(1, value), key


def test_values_convert_as_python_reads_them() -> None:
    # Declared safe or exact, the delivered value is the converted value itself.
    converted = {
        "list": ["a", 1, 2.5, None, [True, [{"k": "v"}]]],
        "dict": {"nested": {"x": [1, 2]}, "y": "z"},
        "color": "red",
        "level": 3,
        "index": 42,
        "ratio": 0.25,
        "big": float(2**70),
        "u_max": 2**64 - 1,
        "i_min": -(2**63),
    }
    client = memory_client()
    sent = {k: PROPERTIES[k] for k in converted}
    kinds = {k: "exact" if k in ("level", "index", "ratio", "big", "u_max", "i_min") else "safe"
             for k in converted}  # fmt: skip
    client.capture(TelemetryEvent("e", sent, kinds=kinds))
    (props,) = delivered_properties(client)
    assert {k: props[k] for k in converted} == converted


def test_a_property_may_be_named_event() -> None:
    # `event` is positional-only: as a keyword it is just a property.
    client = memory_client()
    for name, capture in entry_points(client).items():
        if name != "declared":
            capture("e", event="x")
    props = delivered_properties(client)
    assert len(props) == 4
    assert len({p["event"] for p in props}) == 1


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((), {}, TypeError, r"one positional argument \(0 given\)"),
        (("e", "f"), {}, TypeError, r"one positional argument \(2 given\)"),
        ((b"e",), {}, TypeError, "TelemetryEvent or an event name"),
        (("",), {}, InvalidEventError, "event name is empty"),
        (("x" * 201,), {}, InvalidEventError, "at most 200"),
        (("e",), {"when": object()}, TypeError, 'property "when" has type object'),
        (("e",), {"shape": Shape.ROUND}, TypeError, 'property "shape" has type Shape'),
        (("e",), {"deep": [{"k": [object()]}]}, TypeError, r'property "deep"\[0\]\["k"\]\[0\]'),
        (("e",), {"d": {1: "x"}}, TypeError, 'property "d" has a key of type int'),
        (("e",), {"huge": 2**1100}, OverflowError, 'property "huge" is too large'),
        (("e",), {"s": "\ud800"}, UnicodeEncodeError, "surrogate"),
        (("\ud800",), {}, UnicodeEncodeError, "surrogate"),
        ((TelemetryEvent("e"),), {"x": 1}, TypeError, "not both"),
    ],
)
def test_mistakes_raise_the_same_clear_error_everywhere(
    args: tuple[object, ...], kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    client = memory_client()
    for name, capture in entry_points(client).items():
        if name in ("method", "declared") and len(args) != 1:
            continue  # a Python signature refuses these before telemetry_core sees them
        if name == "declared" and not isinstance(args[0], str):
            continue
        with pytest.raises(error, match=message):
            capture(*args, **kwargs)
    assert client.stats.captured == 0


def test_nesting_is_bounded() -> None:
    deep: list[object] = []
    deep.append(deep)  # refers to itself
    client = memory_client()
    for capture in entry_points(client).values():
        with pytest.raises(ValueError, match="nested deeper than 32 levels"):
            capture("e", loop=deep)
    assert client.stats.captured == 0


def test_an_exception_from_a_value_reaches_the_caller_unchanged() -> None:
    class Broken:
        def __float__(self) -> float:
            raise ZeroDivisionError("broken __float__")

    client = memory_client()
    for capture in entry_points(client).values():
        with pytest.raises(ZeroDivisionError, match="broken __float__"):
            capture("e", x=Broken())
    assert client.stats.captured == 0


def test_the_enabled_capture_is_one_native_call_and_the_disabled_one_stays_python() -> None:
    on = memory_client()
    assert type(on.capture).__name__ == "builtin_function_or_method"
    assert on.capture.__doc__ is not None
    assert "Queues an event" in on.capture.__doc__
    off = Client(Settings(product="acme", sink="memory", anonymized_telemetry=False))
    assert type(off.capture).__name__ == "method"
    off.capture("e", anything=object())  # off: arguments are not even looked at
    assert off.stats.captured == 0


def test_a_subclass_overriding_capture_keeps_its_override() -> None:
    class Tagged(Client):
        def capture(self, event: TelemetryEvent | str, /, **properties: object) -> None:
            super().capture(event, tagged=True, **properties)

    client = Tagged(memory_client().settings)
    client.capture("e", n=1)
    (props,) = delivered_properties(client)
    assert props["tagged"] is True
