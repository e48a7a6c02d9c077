"""``python -m telemetry_core``: the ``telemetry`` command (see ``telemetry_core.cli``)."""

from __future__ import annotations

import os
import sys

from telemetry_core.cli import main

if __name__ == "__main__":
    # As pip does: usage and remarks name the command the way it was typed.
    program = f"{os.path.basename(sys.executable) or 'python'} -m telemetry_core"
    sys.exit(main([program, *sys.argv[1:]]))
