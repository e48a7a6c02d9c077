"""Loads ``telemetry_core._native``, or puts ``telemetry_core._unavailable`` in its place.

Imported first by ``telemetry_core/__init__.py``, so every later ``from
telemetry_core._native import ...`` finds either the real module or the stand-in: a host
whose platform has no wheel, or whose install is broken, keeps running with telemetry
off (see ``_unavailable``) instead of failing at import.
"""

from __future__ import annotations

import sys

#: None when the native module loaded; otherwise why not (``"ImportError: ..."``).
NATIVE_IMPORT_ERROR: str | None = None

try:
    import telemetry_core._native  # noqa: F401
except Exception as error:  # ImportError mostly; a failing module init raises others
    NATIVE_IMPORT_ERROR = f"{type(error).__name__}: {error}"
    from telemetry_core import _unavailable

    _unavailable.REASON = NATIVE_IMPORT_ERROR
    sys.modules["telemetry_core._native"] = _unavailable
    sys.modules["telemetry_core"]._native = _unavailable  # type: ignore[attr-defined]
