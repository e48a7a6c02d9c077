"""One usage event per CLI command, Evidently's model.

A command line tool wraps its entry points; each run sends one ``cli_command`` event
(the command, the names of the options used — never their values — whether it
succeeded, how long it took, and the context every event carries: OS, Python,
container, CI...) only when the program really runs as a command line tool. The same
functions called from Python, as a library, send nothing.

>>> from telemetry_core import Settings
>>> from telemetry_core.integrations.cli import CliTelemetry
>>> telemetry = CliTelemetry(Settings(
...     product="evidently", version="0.7.0", profile="evidently",
...     endpoint="https://eu.i.posthog.com", api_key="phc_...",
... ))
>>> @telemetry.command()
... def ui(port: int = 8000, demo_projects: str = "") -> None:
...     ...
>>> with telemetry.usage("report") as usage:
...     usage.parts.append("html")

With the ``evidently`` profile, ``EVIDENTLY_DISABLE_TELEMETRY`` and ``DO_NOT_TRACK`` turn
it off, and the core itself allows telemetry only in CLI mode; the client is built, and
consent decided, on the first command, never at import.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from telemetry_core import Client, Settings

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

__all__ = ["EVENT", "CliTelemetry", "Usage", "invoked_as_cli"]

#: The name of the usage event.
EVENT = "cli_command"

F = TypeVar("F", bound=Callable[..., Any])

_SCRIPT_SUFFIXES = ("-script.pyw", "-script.py", ".exe", ".pyw", ".py")


def invoked_as_cli(program: str) -> bool:
    """Whether this process is the command line program ``program``.

    True when ``sys.argv[0]`` is the program (a console script, ``program.exe`` or
    ``program.py``) or when it runs as ``python -m program``. An interactive session, a
    notebook, a test runner or another program importing the package is not.
    """
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    for suffix in _SCRIPT_SUFFIXES:
        if argv0.endswith(suffix):
            argv0 = argv0[: -len(suffix)]
            break
    if argv0 and argv0 == program:
        return True
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    package = program.replace("-", "_")
    return spec is not None and spec.name.split(".")[0] == package


class Usage:
    """What one command run reports; ``parts`` may be extended while it runs."""

    __slots__ = ("command", "parts")

    def __init__(self, command: str, parts: Iterable[str] = ()) -> None:
        self.command = command
        self.parts: list[str] = list(parts)


class CliTelemetry:
    """Usage events for a command line program's commands.

    ``settings`` name the product, the profile (``evidently`` for Evidently's rules) and
    where events go; their ``mode`` is replaced by what this process is. ``cli`` forces
    the answer of :func:`invoked_as_cli`, which by default compares the program name
    (``program``, default the product's name) with how the process was started.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        cli: bool | None = None,
        program: str | None = None,
    ) -> None:
        if not isinstance(settings, Settings):
            raise TypeError(f"CliTelemetry needs a Settings, not {type(settings).__name__}")
        self._settings = settings
        self._cli = cli
        self._program = program or settings.product
        self._client: Client | None = None

    @property
    def is_cli(self) -> bool:
        """Whether this process runs as the command line program."""
        if self._cli is None:
            self._cli = invoked_as_cli(self._program)
        return self._cli

    @property
    def client(self) -> Client | None:
        """The client, once a command ran as a CLI; None before and in library use."""
        return self._client

    def _get_client(self) -> Client | None:
        # A command function called from Python is not a use of the command line tool:
        # in library use no client is built, so nothing is decided, stored or sent.
        if not self.is_cli:
            return None
        if self._client is None:
            self._client = Client(self._settings.replace(mode="cli"))
        return self._client

    def usage(self, command: str, parts: Iterable[str] = ()) -> _UsageContext:
        """A context manager reporting one run of ``command`` when it ends."""
        if not isinstance(command, str):
            raise TypeError(f"command must be a str, not {type(command).__name__}")
        return _UsageContext(self, Usage(command, parts))

    def command(self, name: str | None = None) -> Callable[[F], F]:
        """A decorator reporting each run of a command function.

        The parts reported are the names of the arguments the caller passed (for click or
        typer commands: the options given), never their values.
        """

        def decorate(func: F) -> F:
            command: str = name or getattr(func, "__name__", None) or "command"

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.usage(command, _passed(func, args, kwargs)):
                    return func(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        return decorate

    def _report(self, usage: Usage, ok: bool, error: str | None, seconds: float) -> None:
        client = self._get_client()
        if client is None or not client.enabled:
            return
        properties: dict[str, object] = {
            "command": usage.command,
            "parts": sorted(set(usage.parts)),
            "ok": ok,
            "duration_ms": round(seconds * 1000),
        }
        kinds = {"command": "safe", "parts": "safe", "ok": "safe"}
        if error is not None:
            properties["error_type"] = error  # an exception class name, never its message
            kinds["error_type"] = "safe"
        from telemetry_core import TelemetryEvent

        client.capture(TelemetryEvent(EVENT, properties, kinds=kinds))


def _passed(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    import inspect  # only when a command runs: importing the host stays cheap

    try:
        bound = inspect.signature(func).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return sorted(kwargs)
    return [name for name in bound.arguments if name not in ("self", "cls")]


class _UsageContext:
    __slots__ = ("_owner", "_start", "_usage")

    def __init__(self, owner: CliTelemetry, usage: Usage) -> None:
        self._owner = owner
        self._usage = usage
        self._start = 0.0

    def __enter__(self) -> Usage:
        self._start = time.monotonic()
        return self._usage

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # SystemExit(0) is how click and typer end a successful command.
        ok = exc_type is None or (exc_type is SystemExit and getattr(exc, "code", 1) in (0, None))
        error = None if ok or exc_type is None else exc_type.__name__
        try:
            self._owner._report(self._usage, ok, error, time.monotonic() - self._start)
        except Exception:
            # Never let telemetry change a command's outcome.
            import logging

            logging.getLogger("telemetry_core.integrations.cli").debug(
                "could not report %s", self._usage.command, exc_info=True
            )
