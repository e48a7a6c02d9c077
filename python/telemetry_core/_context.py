"""Facts about the Python process, sent as context with every event.

Computed once per process, when the first client is built, never per capture: reading
files or importing modules on the hot path is what made other SDKs slow when off.
"""

from __future__ import annotations

import os
import sys

__all__ = ["python_context", "python_version"]

_cached: dict[str, object] | None = None


def python_version() -> str:
    """The interpreter's version, e.g. ``3.11.7``."""
    v = sys.version_info
    return f"{v.major}.{v.minor}.{v.micro}"


def python_context() -> dict[str, object]:
    """Interpreter, conda, venv, Jupyter and Colab, as safe context properties.

    >>> sorted(python_context())
    ['in_colab', 'in_conda', 'in_jupyter', 'in_venv', 'python_implementation']
    """
    global _cached
    if _cached is None:
        _cached = {
            # cpython, pypy, ...: the runtime name and version go as runtime/runtime_version.
            "python_implementation": sys.implementation.name,
            # A conda environment (or base install) has conda-meta beside its interpreter.
            "in_conda": os.path.isdir(os.path.join(sys.prefix, "conda-meta")),
            "in_venv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
            # A kernel, not just IPython in a terminal: ipykernel is only loaded by one.
            "in_jupyter": "ipykernel" in sys.modules,
            "in_colab": "google.colab" in sys.modules,
        }
    return dict(_cached)
