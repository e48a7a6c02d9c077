"""The client: consent decided once, a capture that costs nothing when off, bounded exit."""

from __future__ import annotations

import sys as _sys

from telemetry_core import _exit
from telemetry_core._context import python_context, python_version
from telemetry_core._event import TelemetryEvent
from telemetry_core._native import NativeClient
from telemetry_core._settings import MissingProductWarning, Settings

# `typing` costs milliseconds to import; annotations are strings here, so it is only
# imported for type checkers (mypy treats any TYPE_CHECKING name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any

    from telemetry_core._native import Tracer, Usage

__all__ = ["Client", "Decision", "Stats"]


class Decision:
    """Whether telemetry is on, which source decided, what every source said, and warnings.

    ``str(decision)`` explains it for people (as ``telemetry status`` does);
    ``to_dict()`` and ``to_json()`` give the same facts for programs.

    >>> c = Client(Settings(product="acme", sink="memory", environment={"DO_NOT_TRACK": "1"}))
    >>> c.decision.enabled, c.decision.decided_by["kind"]
    (False, 'do_not_track')
    >>> str(c.decision).splitlines()[0]
    'telemetry is off: decided by do_not_track DO_NOT_TRACK = "1"'
    """

    __slots__ = ("_data", "_text")

    def __init__(self, data: dict[str, Any], text: str) -> None:
        self._data = data
        self._text = text

    @property
    def enabled(self) -> bool:
        """Whether telemetry may run."""
        return bool(self._data["enabled"])

    @property
    def decided_by(self) -> dict[str, Any] | None:
        """The deciding source: ``{"kind", "name", "value"}``."""
        by = self._data.get("decided_by")
        return dict(by) if by is not None else None

    @property
    def sources(self) -> list[dict[str, Any]]:
        """Every source read, in resolution order: ``{"kind", "name", "value", "says"}``."""
        return [dict(s) for s in self._data["sources"]]

    @property
    def warnings(self) -> list[str]:
        """Problems met while reading sources (an unrecognized value means off)."""
        return list(self._data["warnings"])

    def to_dict(self) -> dict[str, Any]:
        """The decision as plain data (``enabled``, ``decided_by``, ``sources``, ``warnings``)."""
        return {
            "enabled": self.enabled,
            "decided_by": self.decided_by,
            "sources": self.sources,
            "warnings": self.warnings,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The decision as JSON, with the same keys as the core's and the CLI's."""
        import json  # only here: importing telemetry_core stays cheap

        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        by = self.decided_by
        who = f"{by['kind']} {by['name']}" if by else "nothing"
        return f"<Decision enabled={self.enabled} decided_by={who!r}>"


class Stats:
    """Delivery counters at one moment.

    ``captured == sent + dropped_queue_full + dropped_shutdown + dropped_failed + queued``.
    """

    __slots__ = (
        "captured",
        "dropped_failed",
        "dropped_queue_full",
        "dropped_shutdown",
        "failed_requests",
        "merged",
        "queued",
        "retries",
        "sent",
    )

    #: Events offered to an enabled client.
    captured: int
    #: Events merged into another by a batch rule.
    merged: int
    #: Captured events delivered (a merged event counts every event inside it).
    sent: int
    #: Events refused because the queue was full.
    dropped_queue_full: int
    #: Events that could not go out before the shutdown deadline.
    dropped_shutdown: int
    #: Events given up after the last retry or a permanent refusal.
    dropped_failed: int
    #: Events neither sent nor dropped yet.
    queued: int
    #: Failed requests (each attempt counts).
    failed_requests: int
    #: Retried attempts.
    retries: int

    def __init__(self, counters: dict[str, int]) -> None:
        for name in self.__slots__:
            setattr(self, name, int(counters.get(name, 0)))

    def to_dict(self) -> dict[str, int]:
        """The counters as a dict."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stats):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Stats(" + ", ".join(f"{k}={v}" for k, v in self.to_dict().items()) + ")"


class Client:
    """Captures events and delivers them in the background.

    Consent is decided once, here: ``decision`` says why. Opted out, the client starts
    nothing (no thread, no file, no socket) and ``capture`` returns at once. Thread-safe
    and fork-safe; at exit, live clients are shut down within their deadline.

    >>> with Client(Settings(product="acme", sink="memory", environment={})) as client:
    ...     client.capture("started", mode="server", workers=4)
    ...     client.capture(TelemetryEvent("opened", {"db": "x"}, kinds={"db": "hashed"}))
    >>> [e["event"] for e in client.delivered()]
    ['started', 'opened']

    Settings that name no product make a Chroma client (product ``chromadb``, the
    ``chroma`` profile) and warn once per process with :class:`MissingProductWarning`.

    ``capture`` never raises for a telemetry failure (those are logged on the
    ``telemetry_core`` logger); it raises ``TypeError`` for arguments of the wrong type
    and ``InvalidEventError`` for an event the core refuses (an empty name). When
    telemetry is off it returns before looking at its arguments, so run your tests with
    telemetry on (``sink="memory"``) to catch those.
    """

    # `__dict__` holds one entry, and only when telemetry is on: `capture` (see __init__).
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_decision",
        "_enabled",
        "_exit_bound",
        "_native",
        "_tracer",
        "_usage",
        "settings",
    )

    def __init__(self, settings: Settings | None = None) -> None:
        if settings is None:
            settings = Settings()
        elif not isinstance(settings, Settings):
            raise TypeError(f"Client needs a Settings, not {type(settings).__name__}")
        if not settings.product_named:
            _warn_no_product(settings)  # first: with `-W error` it raises before any setup
        config = settings.to_config()
        config["runtime"] = "python"
        config["runtime_version"] = python_version()
        # The host's own context may refine ours, never the other way round.
        config["context"] = {**python_context(), **settings.context}
        self.settings = settings
        self._native = NativeClient(config, TelemetryEvent)
        self._decision = Decision(self._native.decision(), self._native.explain())
        self._usage = self._native.usage()
        # Set after a crash whose report could not be delivered in time: when that crash's
        # deadline ends (monotonic) and how many events had been sent by then; the exit's
        # shutdown keeps to that deadline unless more were sent since (telemetry_core._crash).
        self._exit_bound: tuple[float, int] | None = None
        # Cached once: the off path of `capture` (the method below) reads one slot and
        # returns. When on, the instance's `capture` is the native builtin, which shadows
        # the method: an enabled capture is one call into Rust, with no Python frame, and
        # the keyword arguments CPython collects are the properties, read in place.
        self._enabled: bool = self._native.enabled
        if self._enabled:
            # A subclass that overrides `capture` keeps its override.
            if type(self).capture is Client.capture:
                object.__setattr__(self, "capture", self._native.capture_function())
            _exit.register(self)
        # Traces are the operator's, independent of the telemetry consent: a client whose
        # tracing is on is shut down at exit too (its spans within the same deadline), and
        # becomes the tracer of `telemetry_core.opentelemetry` unless one was set there.
        self._tracer = self._native.tracer()
        if self._tracer.level:
            if not self._enabled:
                _exit.register(self)
            from telemetry_core import opentelemetry  # only here: import stays cheap

            opentelemetry._client_started(self)

    def capture(self, event: TelemetryEvent | str, /, **properties: object) -> None:
        """Queues an event and returns at once; it never waits and never does I/O.

        ``capture("name", key=value, ...)`` anonymizes properties by type (strings hashed,
        numbers rounded); a :class:`TelemetryEvent` declares kinds and a batch rule.
        """
        # Reached when off, or when called through the class (`Client.capture(c, ...)`).
        if self._enabled:
            self._native.capture(event, properties)

    def report_crashes(self) -> None:
        """Reports this process's uncaught exceptions to this client, as crash reports.

        Installs ``sys.excepthook`` and ``threading.excepthook`` once per process, each
        chained to the hook that was there before, and registers this client (if its
        telemetry is on; every registered client gets every crash, under its own consent).
        An uncaught exception in the main thread or in a thread is reported first, then
        the previous hook runs: the usual traceback still prints and the exit status is
        unchanged. The first report of a crash waits for its delivery up to
        ``Settings.crash_deadline`` (1 s) with the GIL released; repeats never wait.
        Opted out, the hooks only chain: no thread, no file, no socket. Nothing in the
        hooks raises. ``KeyboardInterrupt`` and ``SystemExit`` are not reported.
        """
        from telemetry_core import _crash  # only here: importing telemetry_core stays cheap

        _crash.install(self)

    def capture_exception(self, exc: BaseException | None = None, /) -> bool:
        """Queues a report of an exception the host handled (``$exception``, level
        ``error``); never waits. Without an argument, the exception being handled (call it
        in an ``except`` block).

        True when the report was queued; False when telemetry is off, when the rate
        limits held it back (one report per kind per minute, 20 an hour: the rest is
        counted and told with the next), or when it could not be built. Raises
        ``TypeError`` for an argument that is not an exception, or when there is none to
        report; when telemetry is off it returns before looking.
        """
        if not self._enabled:
            return False
        from telemetry_core import _crash

        return _crash.capture(self, exc)

    def preview(self, event: TelemetryEvent | str, /, **properties: object) -> dict[str, Any]:
        """Exactly what would be sent for this event (anonymized, with context), sent
        nowhere, whatever the decision. Uses the stored install identity if there is one
        and creates none."""
        if isinstance(event, str):
            event = TelemetryEvent(str(event), properties)
        elif not isinstance(event, TelemetryEvent):
            raise TypeError(
                f"preview() takes a TelemetryEvent or a str, not {type(event).__name__}"
            )
        elif properties:
            raise TypeError("preview() takes properties in the event or as keywords, not both")
        return self._native.preview(event)

    def flush(self, timeout: float = 5.0) -> bool:
        """Sends everything captured so far, partial batches included, waiting at most
        ``timeout`` seconds with the GIL released.

        True only when every event captured before the call (and since the previous
        flush) was delivered. False when the timeout passed first (what is left stays
        queued and goes out later), or when events were dropped since the previous flush:
        refused by the endpoint, out of retries, the queue full, or captured after
        shutdown. :attr:`stats` counts them (``dropped_failed``, ``dropped_queue_full``,
        ...), and a delivery failure is also logged on the ``telemetry_core`` logger,
        once per failure streak. It never raises for a delivery failure. With telemetry
        off there is nothing to send: True.
        """
        return self._native.flush(_seconds(timeout))

    def shutdown(self, timeout: float | None = None) -> Stats:
        """Flushes what can go out within ``timeout`` seconds (default: the settings'
        ``shutdown_timeout``, 1 s), stops the worker and returns the final counters.
        Spans are exported within the same deadline (``span_stats`` counts the rest as
        ``dropped_shutdown``). Idempotent; later captures and spans are dropped and
        counted. The GIL is released."""
        t = self.shutdown_timeout if timeout is None else _seconds(timeout)
        return Stats(self._native.shutdown(t))

    @property
    def enabled(self) -> bool:
        """Whether telemetry is on for this client."""
        return self._enabled

    @property
    def decision(self) -> Decision:
        """The consent decision with its explanation (``str()`` for people)."""
        return self._decision

    @property
    def usage(self) -> Usage:
        """This client's usage statistics (Qdrant's model): declare operation timings and
        counters, push sections, render the report and the Prometheus text, serve them.

        Recording works whether telemetry is on or off: the numbers are the operator's
        own and the local endpoints always answer. When telemetry is on, the report goes
        home anonymized as a ``usage_report`` event (``Settings.usage_report_delay`` after
        the first recording, then every ``usage_report_interval``, and at shutdown).

        >>> c = Client(Settings(product="acme", sink="memory", anonymized_telemetry=False))
        >>> queries = c.usage.timing("query")
        >>> with queries:
        ...     pass
        >>> queries.count
        1
        """
        return self._usage

    @property
    def stats(self) -> Stats:
        """The delivery counters now (a snapshot)."""
        return Stats(self._native.stats())

    @property
    def tracer(self) -> Tracer:
        """This client's tracer: spans for the operator's OpenTelemetry endpoint, configured
        by ``Settings.otel_*`` (Chroma's ``chroma_otel_*``) and the environment
        (``CHROMA_OTEL_*`` or the product's ``<PREFIX>_OTEL_*``, ``OTEL_*``), independent of
        the telemetry consent. ``tracer.level`` is the granularity recorded (0: none).
        ``telemetry_core.opentelemetry`` has the decorator and the context manager."""
        return self._tracer

    @property
    def tracing(self) -> bool:
        """Whether this client records spans (an endpoint, a granularity above none, not
        disabled)."""
        return self._tracer.level > 0

    def trace_config(self, reveal_headers: bool = False) -> dict[str, Any]:
        """The resolved observability configuration: ``active``, ``endpoint``,
        ``protocol``, ``headers`` (names only unless ``reveal_headers``), ``service_name``,
        ``granularity``, ``level``, ``sampler``, ``disabled``, ``compression``,
        ``certificate`` (the CA file trusted for HTTPS exports, or None), ``tls_roots``,
        ``resource``, ``origins`` (where each setting came from) and ``warnings`` (values
        that could not be understood; also logged on the ``telemetry_core`` logger)."""
        return self._native.trace_config(bool(reveal_headers))

    def span_stats(self) -> dict[str, int]:
        """The span counters now: ``recorded``, ``exported``, ``dropped_queue_full``,
        ``dropped_failed``, ``dropped_shutdown``, ``queued``, ``failed_requests``,
        ``retries``; ``exported + dropped_* + queued == recorded``."""
        return self._native.span_stats()

    def flush_spans(self, timeout: float = 5.0) -> bool:
        """Exports the spans ended so far, waiting at most ``timeout`` seconds with the GIL
        released. True when they all went out and none was dropped since the last call;
        False when the timeout passed first or spans were dropped (``span_stats`` counts
        them). Never raises for an export failure."""
        return self._native.flush_spans(_seconds(timeout))

    @property
    def shutdown_timeout(self) -> float:
        """The deadline used at exit and by ``with``, in seconds."""
        return self._native.shutdown_timeout

    def delivered(self) -> list[dict[str, Any]]:
        """With ``sink="memory"``: every delivered event, as the PostHog batch items sent.

        Raises :class:`ConfigurationError` for other sinks."""
        events = self._native.memory_events()
        if events is None:
            from telemetry_core._native import ConfigurationError

            raise ConfigurationError(f"delivered() needs sink='memory', not {self.settings.sink!r}")
        return events

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An exception leaving the block may be a crash, which the hooks see only after the
        # unwinding: a client reporting crashes stays open for that report, and the exit
        # shuts it down (within its deadline) after the hooks ran.
        if exc is not None and self._enabled:
            crash = _sys.modules.get("telemetry_core._crash")
            if crash is not None and crash.will_report(self, exc):
                return
        self.shutdown()

    def __repr__(self) -> str:
        state = "on" if self._enabled else "off"
        return f"<telemetry_core.Client product={self.settings.product!r} telemetry {state}>"


#: Holds one token until the first client without a product warned: `list.pop` is atomic
#: under the GIL, so two threads building clients at once cannot both warn.
_NO_PRODUCT_WARNING = [True]


def _warn_no_product(settings: Settings) -> None:
    """Warns, once per process, that `settings` name no product and what that means."""
    try:
        _NO_PRODUCT_WARNING.pop()
    except IndexError:
        return
    import sys  # only here: importing telemetry_core stays cheap
    import warnings

    version = f"version {settings.version!r}" if settings.version else "an empty version"
    profile = settings.profile
    if profile is None:
        rules = (
            ", and Chroma's switches decide consent (ANONYMIZED_TELEMETRY, a .env file; "
            "the id is kept in ~/.cache/chroma/telemetry_user_id)"
        )
    else:
        name = profile if isinstance(profile, str) else profile.get("name", "generic")
        rules = f" (consent follows the {name} profile you chose)"
    message = (
        f"Settings names no product, so this client's events are labelled "
        f"{settings.product!r} with {version}{rules}. Name your product: "
        'Settings(product="my-tool", version="1.2.0"); its switches are then '
        "MY_TOOL_TELEMETRY_DISABLED and MY_TOOL_TELEMETRY (profile= picks a known "
        "product's conventions instead). To keep Chroma's defaults without this warning, "
        'pass product="chromadb".'
    )
    # Blame the caller's line: the first frame outside this package (not a Client
    # subclass's __init__ here, nor an integration building the client).
    level, frame = 1, sys._getframe(0)
    while frame.f_back is not None and _in_package(frame.f_globals.get("__name__")):
        frame = frame.f_back
        level += 1
    warnings.warn(message, MissingProductWarning, stacklevel=level)


def _in_package(module: object) -> bool:
    return isinstance(module, str) and (
        module == "telemetry_core" or module.startswith("telemetry_core.")
    )


def _seconds(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    return float(timeout)
