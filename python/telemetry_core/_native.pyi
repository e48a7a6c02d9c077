"""telemetry_core._native: the PyO3 module under the telemetry_core package.

A thin binding over the Rust core: it converts Python values to the core's types and maps
errors to one exception root. Users import ``telemetry_core``, never this module.
"""

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Literal, TypeVar, final

from telemetry_core._event import TelemetryEvent

__all__ = [
    "CORE_VERSION",
    "CURRENT_SPAN",
    "MAX_ERROR_CAUSES",
    "MAX_ERROR_FRAMES",
    "Attributes",
    "ConfigurationError",
    "Counter",
    "CounterFamily",
    "InvalidEventError",
    "NativeClient",
    "Response",
    "Span",
    "SpanContext",
    "TelemetryError",
    "TimedFunction",
    "Timing",
    "TimingFamily",
    "TimingScope",
    "TimingSnapshot",
    "Tracer",
    "Usage",
    "UsageError",
    "UsageServer",
    "_after_fork",
    "_prepare_error_reports",
    "_python_exiting",
    "_set_host_parent",
    "anonymize_value",
    "extract_traceparent",
    "parse_bool",
    "run_cli",
    "should_sample",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

#: How labels are declared: a mapping of names to kinds, or a sequence of names and
#: (name, kind) pairs; a kind left out (or None) is "hashed".
_Labels = Mapping[str, str | None] | Iterable[str | tuple[str, str | None]]
#: A label value: a str, or an int written in decimal (a status code).
_LabelValue = str | int

CORE_VERSION: str
"""The version of the Rust core, sent as ``core_version`` and ``$lib_version``."""

MAX_ERROR_FRAMES: int
"""Frames an error report keeps per exception (the innermost ones)."""

MAX_ERROR_CAUSES: int
"""Causes an error report keeps behind the exception."""

#: One stack frame of an error report: (function, file, line, column, in_app).
_Frame = tuple[str, str, int | None, int | None, bool]
#: One exception of an error report: (type, message, frames outermost first).
_Exception = tuple[str, str, Iterable[_Frame]]

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

class UsageError(TelemetryError):
    """A usage-statistics declaration or recording the core refuses.

    A bad family or section name, a wrong number of label values, bounds that are not
    increasing positive durations, an unknown kind, a negative duration or count.
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

    @property
    def crash_deadline(self) -> float:
        """How long a crash waits at most for its report's delivery, in seconds."""

    def capture_error(self, exception: _Exception, causes: Iterable[_Exception]) -> bool:
        """Queues a report of an error the host handled; never waits. `exception` is
        `(type, message, frames)`, each frame `(function, file, line, column, in_app)`
        outermost first; `causes` are such tuples, nearest cause first. False when
        telemetry is off or the rate limits held the report back."""

    def report_crash(
        self, exception: _Exception, causes: Iterable[_Exception], elapsed: float
    ) -> tuple[Literal["delivered", "timed_out", "queued", "suppressed", "disabled"], int]:
        """Reports a crash (an uncaught exception) whose hook was entered `elapsed` seconds
        ago: the first report of its fingerprint waits for delivery until the deadline
        counted from then, with the GIL released. Returns what became of it: `delivered`,
        `timed_out`, `queued` (a repeat, which never waits), `suppressed` (the rate
        limits) or `disabled`, with the count of events sent so far (the exit compares it
        with its own to tell whether the endpoint took anything since). Calls no Python
        code (no logging) on the way."""

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

    def usage(self) -> Usage:
        """This client's usage statistics (one registry per client, shared by every call)."""

    def tracer(self) -> Tracer:
        """This client's tracer (spans for the operator's OTLP endpoint, independent of the
        telemetry consent)."""

    def trace_config(self, reveal_headers: bool = False) -> dict[str, Any]:
        """The resolved observability configuration, as `telemetry status --json` shows it
        (the core's `OtelConfig::to_status_json`: active, endpoint, protocol, headers'
        names, service_name, granularity, sampler, disabled, compression, certificate,
        tls_roots, origins, warnings), plus `level` (the granularity spans are recorded
        at, 0 when nothing is) and `resource` (the resource attributes besides
        `service.name`). With `reveal_headers`, `headers` holds `[name, value]` pairs
        instead of names."""

    def span_stats(self) -> dict[str, int]:
        """The span counters now: recorded, exported, dropped_queue_full, dropped_failed,
        dropped_shutdown, queued, failed_requests, retries."""

    def flush_spans(self, timeout: float) -> bool:
        """Exports the queued spans, waiting at most `timeout` seconds with the GIL released.
        True when every span recorded before the call was exported and none was dropped
        since; False when the timeout passed first or spans were dropped."""

@final
class Usage:
    """The usage statistics of one client: declare timings and counters, push sections,
    render the report and the Prometheus text, serve them.

    Recording works whether telemetry is on or off (the numbers are the operator's own,
    and the local endpoints always answer); only sending the report home follows consent."""

    def timing(
        self,
        name: str,
        *,
        labels: _Labels | None = None,
        help: str = "",
        bounds: Iterable[float] | None = None,
        max_keys: int = 1024,
    ) -> TimingFamily:
        """Declares (or finds again) the operation timing family `name`.

        `labels`: names with their kinds, as a dict (``{"route": "safe"}``) or a sequence
        of names and ``(name, kind)`` pairs; a kind left out is ``hashed``. `bounds`: the
        histogram's bucket bounds in seconds (default Qdrant's, 1 ms to 50 s). `max_keys`:
        most label sets kept; later new ones share one overflow key (``__other__``)."""

    def counter(
        self,
        name: str,
        *,
        labels: _Labels | None = None,
        help: str = "",
        max_keys: int = 1024,
    ) -> CounterFamily:
        """Declares (or finds again) the counter family `name`; `labels` and `max_keys` as for
        ``timing``."""

    def set_section(
        self,
        name: str,
        value: object,
        *,
        kinds: Mapping[str, str] | None = None,
        level: int = 2,
    ) -> None:
        """Sets (or replaces) the section `name` of the report to `value` (JSON-like data as
        it is now: push a new value when it changes). `kinds` declares how fields are
        anonymized (``{"number": "exact"}``; others go by their type: strings hashed,
        numbers rounded); `level` is the lowest details level that shows it (0 to 4)."""

    def remove_section(self, name: str) -> bool:
        """Removes the section `name`; True if it was there."""

    def set_app_fields(
        self, fields: Mapping[str, object], *, kinds: Mapping[str, str] | None = None
    ) -> None:
        """Fields added to the report's ``app`` object (features, startup time, ...), with
        their `kinds` as for ``set_section``; ``name`` and ``version`` stay the core's."""

    def set_data_dir(self, path: str | os.PathLike[str]) -> None:
        """The directory the host keeps its data in: the report gives the size and type of
        the disk holding it (from details level 1), never its path."""

    def report(
        self, details_level: int = 0, anonymize: bool = False, histograms: bool | None = None
    ) -> dict[str, Any]:
        """The report as a dict. `details_level` 0 to 4 (higher means 4): 0 totals, 1 adds
        system information and extremes, 2 per label set and sections, 3 histograms.
        `anonymize`: as sent home (label values by kind, durations rounded, counts exact).
        `histograms`: include them whatever the level (None: from level 3)."""

    def prometheus(self, anonymize: bool = False) -> str:
        """The Prometheus text exposition (version 0.0.4) of every declared family;
        `anonymize` as for ``report``."""

    def handle(self, path: str, query: str = "", method: str = "GET") -> Response:
        """Answers one HTTP request for ``/telemetry`` or ``/metrics``, for any host server:
        `query` is the raw query string (without ``?``). The status, content type and body
        are the core's: 400 for a bad query, 404 for another path, 405 for a method other
        than GET and HEAD (send no body for HEAD)."""

    def serve(self, address: str) -> UsageServer:
        """Serves ``/telemetry`` and ``/metrics`` on `address`, a loopback address such as
        ``"127.0.0.1:9464"`` (port 0 picks a free one), on a thread of the core's until
        ``close()``. Raises UsageError for other addresses: serving further is the host's
        decision, with its own server (see ``telemetry_core.usage.wsgi_app``)."""

    @property
    def product(self) -> str:
        """The product whose statistics these are."""

@final
class TimingFamily:
    """A declared timing family: ``labels(...)`` gives the handle of one label set. A family
    declared without labels is itself a handle: ``with family:``, ``@family``,
    ``family.record(seconds)``."""

    def labels(self, *values: _LabelValue, **named: _LabelValue) -> Timing:
        """The handle of one label set, given by position in the declared order or by name
        (``labels("GET /", 200)``, ``labels(route="GET /", status=200)``); values are str
        or int. Made on first use; cheap to keep and share between threads."""

    @property
    def name(self) -> str:
        """The family's name."""

    @property
    def label_names(self) -> tuple[str, ...]:
        """The declared label names, in order."""

    @property
    def bounds(self) -> tuple[float, ...]:
        """The histogram's bucket bounds, in seconds."""

    def __enter__(self) -> TimingFamily:
        """As ``Timing.__enter__``, for a family without labels."""

    def __exit__(self, exc_type: object, exc: object, traceback: object, /) -> bool:
        """As ``Timing.__exit__``, for a family without labels."""

    def __call__(self, func: _F, /) -> _F:
        """As ``Timing.__call__`` (``@family``), for a family without labels."""

    def start(self) -> TimingScope:
        """As ``Timing.start``, for a family without labels."""

    def record(self, seconds: float, *, at: float | None = None) -> None:
        """As ``Timing.record``, for a family without labels."""

    def record_failure(self, *, at: float | None = None) -> None:
        """As ``Timing.record_failure``, for a family without labels."""

    def snapshot(self) -> TimingSnapshot:
        """As ``Timing.snapshot``, for a family without labels."""

    @property
    def count(self) -> int:
        """As ``Timing.count``, for a family without labels."""

    @property
    def fail_count(self) -> int:
        """As ``Timing.fail_count``, for a family without labels."""

@final
class Timing:
    """Records one operation's duration into one label set of a timing family; shared by many
    threads and tasks at once.

    ``with timing:`` times the block (an exception leaving it counts a failure and goes on);
    ``@timing`` times every call of a function or ``async def`` coroutine function (an
    exception raised counts a failure); ``record(seconds)`` and ``record_failure()`` record
    what the host measured itself; ``start()`` starts a measurement to stop later."""

    def __enter__(self) -> Timing:
        """Starts timing the block; returns this handle."""

    def __exit__(self, exc_type: object, exc: object, traceback: object, /) -> bool:
        """Records the block: its duration when it ended normally, a failure when an exception
        is leaving it (the exception goes on). Returns False."""

    def __call__(self, func: _F, /) -> _F:
        """``@timing``: times every call of `func` (a function or an ``async def`` coroutine
        function); a call that raises counts a failure. The wrapper keeps the function's
        name, docstring and signature (``functools.wraps``)."""

    def start(self) -> TimingScope:
        """Starts a measurement now: stop it with ``stop()`` (or ``fail()``), or use it as a
        context manager. One that is never stopped records nothing."""

    def record(self, seconds: float, *, at: float | None = None) -> None:
        """Records one operation that worked and took `seconds`. `at`, a Unix time in
        seconds, says when it ended (default: now)."""

    def record_failure(self, *, at: float | None = None) -> None:
        """Counts one operation that failed (counted, not timed). `at`, a Unix time in seconds,
        says when it ended (default: now)."""

    def snapshot(self) -> TimingSnapshot:
        """The numbers of this label set now."""

    @property
    def count(self) -> int:
        """Operations that worked (each one timed)."""

    @property
    def fail_count(self) -> int:
        """Operations that failed (counted, not timed)."""

    @property
    def name(self) -> str:
        """The family's name."""

    @property
    def label_values(self) -> tuple[str, ...]:
        """The label values of this handle, in the family's label order."""

@final
class TimingScope:
    """A measurement started by ``timing.start()``: ``stop()`` records it as an operation
    that worked, ``fail()`` as one that failed; as a context manager it is stopped (or
    failed, when an exception leaves the block) at the end of the block, unless it was
    already. One that is never stopped records nothing."""

    def stop(self) -> float:
        """Records the operation as one that worked; returns its duration in seconds."""

    def fail(self) -> None:
        """Counts the operation as failed (not timed)."""

    @property
    def elapsed(self) -> float:
        """Seconds since the measurement started."""

    @property
    def done(self) -> bool:
        """Whether ``stop()`` or ``fail()`` was called (or the ``with`` block ended)."""

    def __enter__(self) -> TimingScope: ...
    def __exit__(self, exc_type: object, exc: object, traceback: object, /) -> bool:
        """Stops the measurement (a failure when an exception is leaving the block) unless it
        was stopped already. Returns False."""

@final
class TimedFunction:
    """A plain function timed by ``@timing``: each call is measured, and a call that raises
    counts a failure. It keeps the function's ``__name__``, ``__doc__``, ``__wrapped__``
    (so ``inspect.signature`` sees the original's), binds as a method, and pickles by
    name as the function would."""

    def __new__(cls, timing: Timing, func: Callable[..., Any]) -> TimedFunction:
        """Wraps `func`, recording into `timing` (``functools.update_wrapper`` is applied by
        ``@timing``, not here)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __get__(self, instance: object, owner: type | None = None, /) -> Any:
        """Binds to an instance as a function does, so a timed method gets its `self`."""

    def __reduce__(self) -> str:
        """Pickled by its qualified name, as the function it replaces."""

@final
class TimingSnapshot:
    """One label set's numbers at one moment (seconds as floats)."""

    @property
    def count(self) -> int:
        """Operations that worked (each one timed)."""

    @property
    def fail_count(self) -> int:
        """Operations that failed (counted, not timed)."""

    @property
    def total_seconds(self) -> float:
        """The sum of the timed durations."""

    @property
    def min_seconds(self) -> float:
        """The shortest timed duration (0.0 before the first)."""

    @property
    def max_seconds(self) -> float:
        """The longest timed duration."""

    @property
    def avg_seconds(self) -> float:
        """The exact average, ``total_seconds / count`` (0.0 before the first)."""

    @property
    def last_responded(self) -> int | None:
        """The Unix second of the last response (worked or failed), or None before it."""

    @property
    def bounds(self) -> list[float]:
        """The histogram's bucket bounds."""

    @property
    def cumulative_counts(self) -> list[int]:
        """Per bound, the operations that took at most that long (the `+Inf` count is `count`)."""

@final
class CounterFamily:
    """A declared counter family: ``labels(...)`` gives the counter of one label set; a
    family declared without labels is itself a counter (``family.inc()``)."""

    def labels(self, *values: _LabelValue, **named: _LabelValue) -> Counter:
        """The counter of one label set, by position or by name as ``TimingFamily.labels``."""

    def inc(self, n: int | None = None) -> None:
        """Adds `n` (default 1), for a family without labels."""

    @property
    def value(self) -> int:
        """The total now, for a family without labels."""

    @property
    def name(self) -> str:
        """The family's name."""

    @property
    def label_names(self) -> tuple[str, ...]:
        """The declared label names, in order."""

@final
class Counter:
    """The counter of one label set; shared by many threads at once."""

    def inc(self, n: int | None = None) -> None:
        """Adds `n` (default 1; counters only go up)."""

    @property
    def value(self) -> int:
        """The total now."""

    @property
    def label_values(self) -> tuple[str, ...]:
        """The label values of this counter, in the family's label order."""

@final
class Response:
    """An HTTP answer from ``Usage.handle``, for the host's server to send."""

    @property
    def status(self) -> int:
        """200, 400 (a bad query), 404 (another path) or 405 (a method other than GET, HEAD)."""

    @property
    def content_type(self) -> str:
        """``application/json``, or the Prometheus text format's."""

    @property
    def body(self) -> str:
        """The body (send it UTF-8 encoded; nothing for HEAD)."""

    @property
    def headers(self) -> list[tuple[str, str]]:
        """``Content-Type``, ``Content-Length`` of the UTF-8 body, and ``Allow`` with a 405."""

@final
class UsageServer:
    """``/telemetry`` and ``/metrics`` served on a loopback port by a thread of the core's
    (it renders without the GIL and never calls into Python) until ``close()``, the end of
    a ``with`` block, or garbage collection."""

    @property
    def url(self) -> str:
        """``http://HOST:PORT``."""

    @property
    def host(self) -> str:
        """The address it listens on."""

    @property
    def port(self) -> int:
        """The port it listens on (the one picked when port 0 was asked for)."""

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""

    def close(self) -> None:
        """Stops serving (idempotent); returns once the serving thread has stopped, so
        nothing is answered after it (the port itself closes a moment later)."""

    def __enter__(self) -> UsageServer: ...
    def __exit__(self, exc_type: object, exc: object, traceback: object, /) -> bool:
        """Closes the server. Returns False."""

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

def run_cli(argv: Sequence[str], profile: str | None = None) -> int:
    """Runs the `telemetry` command line `argv` (`argv[0]` is the program name shown in
    usage and remarks) on the process's stdout and stderr and returns its exit status: 0
    success, 1 failure, 2 usage error. `profile` fixes the profile (a name, or a generic
    profile's JSON) for an integrator's own command. Raises ConfigurationError for a
    profile the core refuses. The GIL is released while the command runs."""

def _python_exiting() -> None:
    """Called from the `atexit` hook, after every client was shut down."""

def _prepare_error_reports() -> None:
    """Makes the error scrubber ready (its patterns compiled, this machine's names read), so
    that a crash does not pay for it while the process waits. Called when an enabled
    client asks for error reports; the GIL is released meanwhile."""

CURRENT_SPAN: ContextVar[Span | None]
"""The context variable holding the current span (one per process, shared by every
client)."""

@final
class Tracer:
    """A client's tracer: starts spans that its client exports."""

    @staticmethod
    def disabled() -> Tracer:
        """A tracer that records nothing (what spans use while no client traces)."""

    @property
    def level(self) -> int:
        """The granularity spans are recorded at, as an int: 0 none (nothing is recorded),
        1 operation, 2 operation and segment, 3 all."""

    def start(
        self,
        name: str,
        level: int = 1,
        attributes: Mapping[str, object] | Attributes | None = None,
        parent: Span | SpanContext | None = None,
        kind: int = 0,
        root: bool = False,
    ) -> Span:
        """Starts a span named `name` declared at granularity `level` (1 to 3; 4 or more is
        never recorded). `parent`: a `Span` or `SpanContext`, or None for the current span
        (else the host's current OpenTelemetry span, else none); `root=True` starts a new
        trace whatever is current. `kind`: 0 internal, 1 server, 2 client, 3 producer,
        4 consumer."""

    def run(
        self,
        name: str,
        level: int,
        attributes: Mapping[str, object] | Attributes | None,
        kind: int,
        func: Callable[..., _T],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any] | None = None,
    ) -> _T:
        """Calls `func(*args, **kwargs)` in a new span (as `with tracer.start(name, level,
        attributes, kind=kind):` would, parent the current span): the span is current
        while it runs; an exception it raises is recorded and raised unchanged. What
        `trace_method` does for a plain function, in one call."""

@final
class Span:
    """A span: started by `Tracer.start`, ended by `end()` or by leaving its `with` block
    (which also makes it the current span while the block runs and records an exception
    that leaves the block). A span that is not recorded (filtered, not sampled, no
    endpoint) accepts every call and does nothing; it still carries its trace for
    `traceparent` when it has one."""

    def __new__(cls) -> Span:
        """A span that records nothing and never becomes current: what a filtered span is."""

    def __enter__(self) -> Span:
        """Makes this span the current one until the block ends, then ends it. Returns the
        span."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        """Restores the previous current span, records an exception leaving the block (the
        exception goes on), and ends the span. Returns False."""

    def end(self) -> None:
        """Ends the span now (again: nothing). An ended span is queued for export."""

    def set_attribute(self, key: str, value: object) -> None:
        """Sets an attribute (replacing one of the same name); None removes nothing and is
        ignored. Values: str, bool, int, float, or a list or tuple of one of those."""

    def set_attributes(self, attributes: Mapping[str, object] | Attributes) -> None:
        """Sets every attribute of a dict; None values are left out."""

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, object] | Attributes | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Adds an event with attributes; `timestamp` in Unix seconds (default now)."""

    def record_exception(self, exception: BaseException) -> None:
        """Records an exception as an `exception` event (`exception.type`,
        `exception.message`, `exception.stacktrace`) and sets the status to error."""

    def set_status(
        self, status: Literal["ok", "error", "unset"], description: str | None = None
    ) -> None:
        """Sets the status: `"ok"`, `"error"` (with a description) or `"unset"`."""

    def update_name(self, name: str) -> None:
        """Renames the span."""

    def is_recording(self) -> bool:
        """Whether the span is recorded and not ended yet."""

    @property
    def name(self) -> str:
        """The span's name (empty once ended, or when not recorded)."""

    @property
    def trace_id(self) -> str:
        """The trace id, 32 lowercase hex digits (all zeros for a filtered span)."""

    @property
    def span_id(self) -> str:
        """The span id, 16 lowercase hex digits (all zeros for a filtered span)."""

    @property
    def sampled(self) -> bool:
        """Whether the trace is sampled."""

    @property
    def context(self) -> SpanContext | None:
        """The span's identity, for `parent=` or for comparison; None for a filtered span."""

    @property
    def traceparent(self) -> str | None:
        """The `traceparent` header naming this span as the parent; None for a filtered span."""

    @property
    def tracestate(self) -> str | None:
        """The `tracestate` header this span carries, or None."""

@final
class SpanContext:
    """A span's identity without the span: what `extract` returns for a valid
    `traceparent`, and the host's OpenTelemetry span. Pass it as a span's `parent`."""

    @staticmethod
    def from_ints(
        trace_id: int, span_id: int, trace_flags: int, tracestate: str = "", remote: bool = False
    ) -> SpanContext | None:
        """From OpenTelemetry's `SpanContext` fields: the ids as ints, the trace flags, the
        `tracestate` header (may be empty), whether it came from another process."""

    @property
    def trace_id(self) -> str:
        """The trace id, 32 lowercase hex digits."""

    @property
    def span_id(self) -> str:
        """The span id, 16 lowercase hex digits."""

    @property
    def sampled(self) -> bool:
        """Whether the trace is sampled (the `traceparent` flag)."""

    @property
    def remote(self) -> bool:
        """Whether the span is in another process (it came in a `traceparent`)."""

    @property
    def traceparent(self) -> str:
        """The `traceparent` header that names this span as the parent."""

    @property
    def tracestate(self) -> str | None:
        """The `tracestate` header, or None when it is empty."""

    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Attributes:
    """Attributes converted once, for a decorator that adds the same ones to every span:
    its strings are shared, so each span copies pointers rather than text."""

    def __new__(cls, attributes: Mapping[str, object] | Attributes) -> Attributes: ...
    def __len__(self) -> int: ...

def extract_traceparent(traceparent: str, tracestate: str | None = None) -> SpanContext | None:
    """The remote parent in a W3C `traceparent` header (and `tracestate`), with the core's
    strict rules (`telemetry_core::otel::propagation`); None when it is not valid."""

def should_sample(
    sampler: Mapping[str, object], trace_id: str, parent_sampled: bool | None = None
) -> bool:
    """Whether `sampler` (the core's JSON form, e.g. `{"kind": "trace_id_ratio", "ratio":
    0.5}`) keeps a span of the trace `trace_id` (32 hex digits) whose parent was sampled
    (`parent_sampled`; None for a root). The shared vectors check it."""

def _set_host_parent(hook: Callable[[], SpanContext | None]) -> None:
    """Registers the function that reads the host's current OpenTelemetry span (called only
    when the host imported `opentelemetry.trace` and no span of ours is current)."""

def _after_fork() -> None:
    """Called in a forked child (registered with `os.register_at_fork`): ids are drawn from
    fresh seeds from now on."""
