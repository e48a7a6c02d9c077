"""The ``telemetry`` command, and an integrator's own command with the profile fixed.

``telemetry status --profile chroma`` (the console script this package installs) and
``python -m telemetry_core status --profile chroma`` run the Rust command's own code
through the native module: the same commands, output and exit status as the
``telemetry`` binary (0 success, 1 failure, 2 usage error).

An integrator gives their users a command named after the product, with no
``--profile`` to remember, in two lines. In ``acme/_telemetry.py``::

    from telemetry_core.cli import command

    main = command(profile="acme")

and in acme's ``pyproject.toml``::

    [project.scripts]
    acme-telemetry = "acme._telemetry:main"

``pip install acme`` then gives ``acme-telemetry status`` and ``acme-telemetry
disable``. `profile` is what ``Settings(profile=...)`` takes: a name, or a generic
profile's form (``{"generic": {"name": "acme", "default_enabled": False}}`` for an
opt-in product), so the command shows the decision acme's clients make.
"""

from __future__ import annotations

import contextlib
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Callable, Union

    Profile = Union[str, Mapping[str, object]]

__all__ = ["command", "main"]


def _flush() -> None:
    # The native command writes to file descriptors 1 and 2 itself: whatever Python holds
    # in its own buffers goes out first, so the order on a shared terminal or file is kept.
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            # Closed, or a reader that went away: nothing to keep in order then.
            with contextlib.suppress(OSError, ValueError):
                stream.flush()


def _profile_spec(profile: Profile | None) -> str | None:
    if profile is None or isinstance(profile, str):
        return profile
    if not hasattr(profile, "items"):
        raise TypeError(f"profile must be a str, a mapping or None, not {profile!r}")
    import json  # only here: importing the package stays cheap

    return json.dumps(dict(profile))


def _run(argv: Sequence[str], profile: str | None) -> int:
    import telemetry_core

    program = argv[0] if argv else "telemetry"
    if telemetry_core.NATIVE_IMPORT_ERROR is not None:
        name = program.rsplit("/", 1)[-1] or "telemetry"
        _flush()
        print(
            f"{name}: cannot run: the native module telemetry_core._native could not be "
            f"loaded ({telemetry_core.NATIVE_IMPORT_ERROR}). Reinstall telemetry-core from "
            "a wheel for this platform (pip install --force-reinstall telemetry-core), or "
            "build it from source with a Rust toolchain. Telemetry is off meanwhile.",
            file=sys.stderr,
        )
        return 1
    from telemetry_core import _native

    _flush()
    try:
        return _native.run_cli([str(a) for a in argv], profile)
    finally:
        _flush()


def main(argv: Sequence[str] | None = None) -> int:
    """The ``telemetry`` console script: runs ``argv`` (default ``sys.argv``, whose first
    item is the program) and returns the exit status."""
    return _run(list(sys.argv if argv is None else argv), None)


def command(profile: Profile, name: str | None = None) -> Callable[[], int]:
    """A console-script entry point for one product: ``main = command(profile="acme")``.

    The returned ``main()`` runs the ``telemetry`` command with the profile fixed: no
    ``--profile`` needed or shown, ``TELEMETRY_PROFILE`` not read, and remarks name the
    command as it was run (``acme-telemetry disable``), or `name` when given. A profile
    the core refuses is reported when the command runs, with exit status 1.
    """
    spec = _profile_spec(profile)

    def product_main(argv: Sequence[str] | None = None) -> int:
        args = list(sys.argv if argv is None else argv)
        if name is not None:
            args[:1] = [name]
        try:
            return _run(args, spec)
        except Exception as error:  # ConfigurationError: the integrator's profile
            program = (args[0] if args else "telemetry").rsplit("/", 1)[-1]
            print(f"{program}: {error}", file=sys.stderr)
            return 1

    product_main.__qualname__ = product_main.__name__ = "main"
    product_main.__doc__ = f"The telemetry command for the {profile!r} profile."
    return product_main
