"""Drop-in telemetry for host products, each imported by name (never by ``telemetry_core``).

* :mod:`telemetry_core.integrations.chroma`: a Chroma ``ProductTelemetryClient``.
* :mod:`telemetry_core.integrations.cli`: one usage event per CLI command (Evidently's model).
"""
