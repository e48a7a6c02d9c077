"""telemetry_core: honest, opt-out, anonymous usage telemetry over one Rust core.

>>> from telemetry_core import Client, Settings
>>> client = Client(Settings(product="acme", version="1.0", sink="memory", environment={}))
>>> client.capture("started", mode="server", workers=4)
>>> client.shutdown().sent
1

Consent (``anonymized_telemetry``, environment variables, ``.env``, ``DO_NOT_TRACK``,
the user's saved choice), anonymization, batching and delivery all live in the core;
this package converts values and maps errors. ``client.usage`` holds the client's usage
statistics (timings, counters, the report, ``/metrics``); ``telemetry_core.usage`` has
their classes and the WSGI and ASGI apps that serve them. ``telemetry_core.opentelemetry``
has traces for the operator's OpenTelemetry collector in the shape of Chroma's module
(``trace_method``, ``OpenTelemetryGranularity``, ``add_attributes_to_current_span``).
Importing this package imports nothing else: integrations
(``telemetry_core.integrations.chroma``, ``.cli``), ``telemetry_core.usage`` and
``telemetry_core.opentelemetry`` are imported by name.

Where the native module cannot be loaded (no wheel for the platform, a broken install),
the package still imports and every client is off: ``NATIVE_IMPORT_ERROR`` says why
(None when it loaded), and so does every client's ``decision``.
"""

# First: the native module, or the stand-in that keeps every client off without it. The
# split keeps isort from moving it after the modules that import `_native`.
from telemetry_core._load import NATIVE_IMPORT_ERROR

# isort: split
from telemetry_core._client import Client, Decision, Stats
from telemetry_core._event import KINDS, TelemetryEvent
from telemetry_core._native import (
    CORE_VERSION,
    ConfigurationError,
    InvalidEventError,
    TelemetryError,
    Usage,
    UsageError,
)
from telemetry_core._settings import MissingProductWarning, Settings

__all__ = [
    "CORE_VERSION",
    "KINDS",
    "NATIVE_IMPORT_ERROR",
    "Client",
    "ConfigurationError",
    "Decision",
    "InvalidEventError",
    "MissingProductWarning",
    "Settings",
    "Stats",
    "TelemetryError",
    "TelemetryEvent",
    "Usage",
    "UsageError",
]
