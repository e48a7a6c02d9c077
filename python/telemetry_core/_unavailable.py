"""What stands in for ``telemetry_core._native`` when it cannot be loaded.

A platform without a wheel (``pip install`` fell back to the sdist and could not build
it, or the files were copied from another machine), a broken install, a module built for
another ABI: ``import telemetry_core`` still works, and so does every host that uses it.
``telemetry_core._load`` puts this module in the native module's place, so the rest of
the package runs unchanged on names that do nothing:

* every client is off: ``enabled`` is False, ``capture`` returns at once, and
  ``decision`` says the native module could not be loaded, naming the import error;
* usage statistics record nothing (counts stay 0, the report is empty, the endpoints
  answer 503), spans are never recorded, and nothing starts: no thread, file or socket;
* nothing raises into the host: ``serve()`` returns a server that is already closed,
  ``preview()`` an empty dict. Only the ``telemetry`` command refuses to run (it prints
  the reason and exits with status 1), since it has nothing to show.

No telemetry policy lives here: consent is the core's, and without the core the only
honest answer is "off".
"""

from __future__ import annotations

import contextvars
import functools
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

#: The import error, set by ``telemetry_core._load`` (``"ImportError: ..."``).
REASON = "the native module was not loaded"

#: What the real module says; the Python side only needs a value.
CORE_VERSION = "unavailable"
MAX_ERROR_FRAMES = 64
MAX_ERROR_CAUSES = 8


class TelemetryError(Exception):
    """The root of every exception telemetry_core raises."""


class ConfigurationError(TelemetryError):
    """The settings cannot make a client."""


class InvalidEventError(TelemetryError):
    """An event the core refuses."""


class UsageError(TelemetryError):
    """A usage-statistics declaration or recording the core refuses."""


def parse_bool(value: str) -> bool | None:
    """The consent sources' boolean rule, for ``Settings`` (the same words as the core's):
    ``1 true yes on`` / ``0 false no off``, case-insensitive and trimmed; empty is None."""
    word = value.strip().lower()
    if not word:
        return None
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r} (expected 1/true/yes/on or 0/false/no/off)")


def _python_exiting() -> None:
    pass


def _prepare_error_reports() -> None:
    pass


def explanation() -> str:
    """The decision's text, as ``str(client.decision)`` shows it."""
    return (
        "telemetry is off: the native module telemetry_core._native could not be loaded "
        f"({REASON}); nothing is collected or sent. Reinstall telemetry-core from a wheel "
        "for this platform, or build it from source with a Rust toolchain."
    )


def decision() -> dict[str, Any]:
    """The decision's data, in the core's shape: one source, the missing module."""
    source = {"kind": "native_module", "name": "telemetry_core._native", "value": REASON}
    return {
        "enabled": False,
        "decided_by": dict(source),
        "sources": [{**source, "says": "off"}],
        "warnings": [f"telemetry_core._native could not be loaded: {REASON}"],
    }


_STATS = (
    "captured",
    "merged",
    "sent",
    "dropped_queue_full",
    "dropped_shutdown",
    "dropped_failed",
    "queued",
    "failed_requests",
    "retries",
)
_SPAN_STATS = (
    "recorded",
    "exported",
    "dropped_queue_full",
    "dropped_failed",
    "dropped_shutdown",
    "queued",
    "failed_requests",
    "retries",
)


class NativeClient:
    """A client that is off and starts nothing."""

    def __init__(self, config: Mapping[str, object], event_type: type[object]) -> None:
        self._product = str(config.get("product") or "")
        self._memory = config.get("sink") == "memory"
        timeout = config.get("shutdown_timeout")
        self._shutdown_timeout = float(timeout) if isinstance(timeout, (int, float)) else 1.0

    enabled = False
    crash_deadline = 1.0

    @property
    def shutdown_timeout(self) -> float:
        return self._shutdown_timeout

    def capture_error(self, exception: object, causes: Iterable[object]) -> bool:
        return False

    def report_crash(self, exception: object, causes: object, elapsed: float) -> tuple[str, bool]:
        return ("DISABLED", False)

    def capture(self, event: object, properties: dict[str, object]) -> None:
        pass

    def capture_function(self, vectorcall: bool | None = None) -> Callable[..., None]:
        return lambda *args, **kwargs: None

    def preview(self, event: object) -> dict[str, Any]:
        return {}

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self, timeout: float) -> dict[str, int]:
        return dict.fromkeys(_STATS, 0)

    def stats(self) -> dict[str, int]:
        return dict.fromkeys(_STATS, 0)

    def decision(self) -> dict[str, Any]:
        return decision()

    def explain(self) -> str:
        return explanation()

    def memory_events(self) -> list[dict[str, Any]] | None:
        return [] if self._memory else None

    def usage(self) -> Usage:
        return Usage(self._product)

    def tracer(self) -> Tracer:
        return Tracer.disabled()

    def trace_config(self, reveal_headers: bool = False) -> dict[str, Any]:
        return {"active": False, "level": 0, "warnings": [explanation()]}

    def span_stats(self) -> dict[str, int]:
        return dict.fromkeys(_SPAN_STATS, 0)

    def flush_spans(self, timeout: float) -> bool:
        return True


# -- usage statistics: record nothing -------------------------------------------------------


class TimingSnapshot:
    count = 0
    fail_count = 0
    total_seconds = 0.0
    min_seconds = 0.0
    max_seconds = 0.0
    avg_seconds = 0.0
    last_responded: int | None = None
    bounds: list[float] = []  # noqa: RUF012 - never mutated
    cumulative_counts: list[int] = []  # noqa: RUF012


class TimingScope:
    elapsed = 0.0
    done = False

    def stop(self) -> float:
        return 0.0

    def fail(self) -> None:
        pass

    def __enter__(self) -> TimingScope:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object, /) -> None:
        return None


class Timing:
    def __init__(self, name: str = "", values: tuple[str, ...] = ()) -> None:
        self.name = name
        self.label_values = values

    count = 0
    fail_count = 0

    def __enter__(self) -> Timing:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object, /) -> None:
        return None

    def __call__(self, func: _F, /) -> _F:
        return func

    def start(self) -> TimingScope:
        return TimingScope()

    def record(self, seconds: float, *, at: float | None = None) -> None:
        pass

    def record_failure(self, *, at: float | None = None) -> None:
        pass

    def snapshot(self) -> TimingSnapshot:
        return TimingSnapshot()


class TimingFamily(Timing):
    def __init__(self, name: str = "", label_names: tuple[str, ...] = ()) -> None:
        super().__init__(name)
        self.label_names = label_names
        self.bounds: tuple[float, ...] = ()

    def labels(self, *values: object, **named: object) -> Timing:
        return Timing(self.name, tuple(str(v) for v in (*values, *named.values())))


class TimedFunction:
    def __init__(self, timing: Timing, func: Callable[..., Any]) -> None:
        self._func = func
        functools.update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._func(*args, **kwargs)


class Counter:
    def __init__(self, values: tuple[str, ...] = ()) -> None:
        self.label_values = values

    value = 0

    def inc(self, n: int | None = None) -> None:
        pass


class CounterFamily(Counter):
    def __init__(self, name: str = "", label_names: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.name = name
        self.label_names = label_names

    def labels(self, *values: object, **named: object) -> Counter:
        return Counter(tuple(str(v) for v in (*values, *named.values())))


class Response:
    status = 503
    content_type = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = []  # noqa: RUF012

    @property
    def body(self) -> str:
        return f"telemetry_core._native could not be loaded: {REASON}\n"


class UsageServer:
    url = ""
    host = ""
    port = 0
    closed = True

    def close(self) -> None:
        pass

    def __enter__(self) -> UsageServer:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object, /) -> None:
        return None


def _names(labels: object) -> tuple[str, ...]:
    if labels is None:
        return ()
    if isinstance(labels, dict):
        return tuple(str(k) for k in labels)
    if isinstance(labels, (list, tuple)):
        return tuple(str(x[0] if isinstance(x, tuple) else x) for x in labels)
    return ()


class Usage:
    def __init__(self, product: str = "") -> None:
        self.product = product

    def timing(
        self,
        name: str,
        *,
        labels: object = None,
        help: str = "",
        bounds: Iterable[float] | None = None,
        max_keys: int = 1024,
    ) -> TimingFamily:
        return TimingFamily(name, _names(labels))

    def counter(
        self, name: str, *, labels: object = None, help: str = "", max_keys: int = 1024
    ) -> CounterFamily:
        return CounterFamily(name, _names(labels))

    def set_section(
        self, name: str, value: object, *, kinds: object = None, level: int = 2
    ) -> None:
        pass

    def remove_section(self, name: str) -> bool:
        return False

    def set_app_fields(self, fields: object, *, kinds: object = None) -> None:
        pass

    def set_data_dir(self, path: object) -> None:
        pass

    def report(
        self, details_level: int = 0, anonymize: bool = False, histograms: bool | None = None
    ) -> dict[str, Any]:
        return {}

    def prometheus(self, anonymize: bool = False) -> str:
        return ""

    def handle(self, path: str, query: str = "", method: str = "GET") -> Response:
        return Response()

    def serve(self, address: str) -> UsageServer:
        return UsageServer()


# -- traces: never recorded -----------------------------------------------------------------


class SpanContext:
    """Never made here: no traceparent is parsed without the core."""

    @staticmethod
    def from_ints(*args: object) -> None:
        return None


class Attributes:
    def __init__(self, attributes: object) -> None:
        self._n = len(attributes) if isinstance(attributes, dict) else 0

    def __len__(self) -> int:
        return self._n


class Span:
    """A span that records nothing and never becomes current."""

    name = ""
    trace_id = ""
    span_id = ""
    sampled = False
    context = None
    traceparent = None
    tracestate = None

    def __enter__(self) -> Span:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object, /) -> None:
        return None

    def end(self) -> None:
        pass

    def set_attribute(self, key: str, value: object) -> None:
        pass

    def set_attributes(self, attributes: object) -> None:
        pass

    def add_event(self, *args: object, **kwargs: object) -> None:
        pass

    def record_exception(self, exception: BaseException) -> None:
        pass

    def set_status(self, *args: object, **kwargs: object) -> None:
        pass

    def update_name(self, name: str) -> None:
        pass

    def is_recording(self) -> bool:
        return False


CURRENT_SPAN: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "telemetry_core_current_span", default=None
)


class Tracer:
    """A tracer at level 0: the package never asks it to record."""

    level = 0

    @staticmethod
    def disabled() -> Tracer:
        return Tracer()

    def start(self, *args: object, **kwargs: object) -> Span:
        return Span()

    def run(
        self,
        name: str,
        level: int,
        attributes: object,
        kind: int,
        func: Callable[..., _T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> _T:
        return func(*args, **kwargs)


def extract_traceparent(traceparent: str, tracestate: str | None = None) -> None:
    return None


def should_sample(*args: object, **kwargs: object) -> bool:
    return False


def anonymize_value(*args: object, **kwargs: object) -> None:
    return None


def _set_host_parent(hook: object) -> None:
    pass


def _after_fork() -> None:
    pass


def run_cli(argv: object, profile: object = None) -> int:
    raise ImportError(f"telemetry_core._native could not be loaded: {REASON}")
