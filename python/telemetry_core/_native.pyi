"""telemetry_core._native: the PyO3 module under the telemetry_core package.

A thin binding over the Rust core: it converts Python values to the core's types and maps
errors to one exception root. Users import ``telemetry_core``, never this module.
"""

from collections.abc import Callable, Mapping
from typing import Any, final

from telemetry_core._event import TelemetryEvent

__all__ = [
    "CORE_VERSION",
    "ConfigurationError",
    "InvalidEventError",
    "NativeClient",
    "TelemetryError",
    "_python_exiting",
    "anonymize_value",
    "parse_bool",
]

CORE_VERSION: str
"""The version of the Rust core, sent as ``core_version`` and ``$lib_version``."""

class TelemetryError(Exception):
    """The root of every exception telemetry_core raises.

    Wrong argument types raise TypeError instead, as everywhere in Python.
    """

class ConfigurationError(TelemetryError):
    """The settings cannot make a client.

    An unknown sink or profile, a missing endpoint or API key, plain HTTP to a
    non-loopback host.
    """

class InvalidEventError(TelemetryError):
    """An event the core refuses.

    An empty or over-long name, an empty batch key, an unknown property kind.
    """

@final
class NativeClient:
    """The native client; `telemetry_core.Client` wraps it. Thread-safe: every method takes
    `&self`, and the core's client is `Sync`."""

    def __new__(
        cls, config: Mapping[str, object], event_type: type[TelemetryEvent]
    ) -> NativeClient:
        """Builds a client from the JSON form of the core's `ClientConfig` (as a dict).
        Resolves consent; starts nothing (no thread, file or socket) until the first
        enabled capture.

        `event_type` is the class `capture` accepts besides an event name
        (`telemetry_core.TelemetryEvent`)."""

    @property
    def enabled(self) -> bool:
        """Whether telemetry is on for this client (fixed at construction)."""

    @property
    def shutdown_timeout(self) -> float:
        """The shutdown deadline in seconds, used at exit and by the context manager."""

    def capture(self, event: TelemetryEvent | str, properties: dict[str, object]) -> None:
        """Queues an event and returns at once; it never waits and never does I/O.

        `event` is an event name, whose `properties` are anonymized by type (strings
        hashed, numbers rounded), or a `TelemetryEvent` (declared kinds, a batch rule),
        with `properties` empty. Does nothing when telemetry is off."""

    def capture_function(self, vectorcall: bool | None = None) -> Callable[..., None]:
        """`capture(event, /, **properties)` as a builtin bound to this client: what
        `telemetry_core.Client.capture` becomes when telemetry is on: one call into Rust,
        no Python frame.

        `vectorcall` picks the calling convention (tests try both); by default, the
        fastest the running Python has."""

    def preview(self, event: TelemetryEvent) -> dict[str, Any]:
        """Exactly what would be sent for a `TelemetryEvent`, built here and sent nowhere."""

    def flush(self, timeout: float) -> bool:
        """Sends what was captured, partial batches included; waits at most `timeout`
        seconds with the GIL released.

        True only when every event captured before the call (and since the previous flush)
        was delivered; False when the timeout passed first or when events were dropped
        since the previous flush (the stats count them). Never raises for a delivery
        failure."""

    def shutdown(self, timeout: float) -> dict[str, int]:
        """Flushes within `timeout` seconds (GIL released), stops the worker, returns the
        final counters. Idempotent; later captures are dropped and counted."""

    def stats(self) -> dict[str, int]:
        """The delivery counters now, as a dict."""

    def decision(self) -> dict[str, Any]:
        """The consent decision as a dict: enabled, decided_by, sources, warnings."""

    def explain(self) -> str:
        """The consent decision explained for people, as `telemetry status` prints it."""

    def memory_events(self) -> list[dict[str, Any]] | None:
        """The events a memory sink received (PostHog batch items), or None for other sinks."""

def anonymize_value(
    value: object,
    kind: str | None,
    secret_hex: str,
    precision: int,
    local_names: Mapping[str, str | None] | None = None,
) -> tuple[object] | None:
    """Anonymizes one property value exactly as the worker would, for the shared test vectors
    and for people checking what a value becomes.

    Returns None when the property is dropped, else a 1-tuple holding the anonymized value
    (which may itself be None)."""

def parse_bool(value: str) -> bool | None:
    """Parses a boolean the way every consent source does: `1 true yes on` / `0 false no off`,
    case-insensitive and trimmed; empty means None (unset); anything else raises ValueError."""

def _python_exiting() -> None:
    """Called from the `atexit` hook, after every client was shut down."""
