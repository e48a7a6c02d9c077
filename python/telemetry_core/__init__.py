"""telemetry_core: honest, opt-out, anonymous usage telemetry over one Rust core.

>>> from telemetry_core import Client, Settings
>>> client = Client(Settings(product="acme", version="1.0", sink="memory", environment={}))
>>> client.capture("started", mode="server", workers=4)
>>> client.shutdown().sent
1

Consent (``anonymized_telemetry``, environment variables, ``.env``, ``DO_NOT_TRACK``,
the user's saved choice), anonymization, batching and delivery all live in the core;
this package converts values and maps errors. Importing it imports nothing else:
integrations (``telemetry_core.integrations.chroma``, ``.cli``) are imported by name.
"""

import logging as _logging

from telemetry_core._client import Client, Decision, Stats
from telemetry_core._event import KINDS, TelemetryEvent
from telemetry_core._native import (
    CORE_VERSION,
    ConfigurationError,
    InvalidEventError,
    TelemetryError,
)
from telemetry_core._settings import Settings

__all__ = [
    "CORE_VERSION",
    "KINDS",
    "Client",
    "ConfigurationError",
    "Decision",
    "InvalidEventError",
    "Settings",
    "Stats",
    "TelemetryError",
    "TelemetryEvent",
]

# A library's logger gets only a NullHandler (as the logging docs advise): delivery
# warnings reach the host's handlers when it configures logging, and stderr otherwise stays
# quiet. The `logging` module is already loaded by the native module's log bridge.
_logging.getLogger("telemetry_core").addHandler(_logging.NullHandler())
