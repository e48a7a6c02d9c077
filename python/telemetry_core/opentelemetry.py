"""OpenTelemetry traces in the shape of Chroma's ``chromadb.telemetry.opentelemetry``:
Chroma-style code moves over by changing its import.

>>> from telemetry_core.opentelemetry import OpenTelemetryGranularity, trace_method
>>> @trace_method("collection.add", OpenTelemetryGranularity.OPERATION)
... def add(ids: list[str]) -> int:
...     add_attributes_to_current_span({"ids_count": len(ids), "tenant": None})
...     return len(ids)
>>> add(["a", "b"])  # no client traces: the call costs one int comparison more
2

Which tracer: the spans of ``trace_method``, ``start_span`` and the middleware go to the
*default* client, which is the most recent :class:`~telemetry_core.Client` built with
tracing on (an endpoint configured in ``Settings.otel_*``/``chroma_otel_*`` or in
``CHROMA_OTEL_*``, ``<PREFIX>_OTEL_*``, ``OTEL_*``), unless :func:`set_tracer` (or
:func:`otel_init`) named one; ``tracer=`` names a client for one decorator or span. While
no client traces, every span is filtered out at the cost of an int comparison.

The current span lives in one ``contextvars.ContextVar`` for the whole process, shared by
every client: nested spans are children of the enclosing one across clients, asyncio tasks
inherit the span current where they were created, and a thread starts with none (run it
in ``contextvars.copy_context().run`` to carry the span over). Each span is exported by
the client that started it. With no span of ours current, a span whose host uses
OpenTelemetry itself (``opentelemetry.trace`` imported, a valid span current there)
becomes the child of the host's span.

Granularity is Chroma's: a span declared at a finer granularity than the client's
(``operation`` < ``operation_and_segment`` < ``all``) is not recorded, and one declared
``NONE`` never is.
"""

from __future__ import annotations

import sys as _sys
from enum import Enum

from telemetry_core import _native
from telemetry_core._native import Attributes, Span, SpanContext, Tracer

# `typing` costs milliseconds to import; annotations are strings here, so it is only
# imported for type checkers (mypy treats any TYPE_CHECKING name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Awaitable,
        Callable,
        Generator,
        Iterator,
        Mapping,
        MutableMapping,
        Sequence,
    )
    from types import TracebackType
    from typing import Any, TypeVar, Union

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from telemetry_core._client import Client

    T = TypeVar("T", bound=Callable[..., Any])
    #: What an attribute may hold, as in Chroma's annotations.
    AttributeValue = Union[
        str, bool, float, int, Sequence[str], Sequence[bool], Sequence[float], Sequence[int]
    ]
    Attributes_ = dict[str, Union[AttributeValue, None]]
    GranularityLike = Union["OpenTelemetryGranularity", str, int]
    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = [
    "ASGIMiddleware",
    "OpenTelemetryGranularity",
    "Span",
    "SpanContext",
    "Tracer",
    "WSGIMiddleware",
    "add_attributes_to_current_span",
    "extract",
    "get_current_span",
    "get_tracer",
    "inject",
    "otel_init",
    "set_tracer",
    "start_span",
    "trace_method",
]


class OpenTelemetryGranularity(Enum):
    """How fine the recorded spans are (Chroma's enum, with Chroma's values and order).

    ``OpenTelemetryGranularity("operation")`` works as in Chroma; ``level`` is the int the
    core uses (0 to 3).
    """

    NONE = "none"
    """No spans are emitted."""

    OPERATION = "operation"
    """Spans are emitted for each operation."""

    OPERATION_AND_SEGMENT = "operation_and_segment"
    """Spans are emitted for each operation and segment."""

    ALL = "all"
    """Spans are emitted for almost every method call."""

    # Members are singletons compared by identity: their C-level identity hash makes a
    # lookup by member (``_DECLARED``) run no Python code, unlike Enum's own __hash__.
    __hash__ = object.__hash__

    def __lt__(self, other: object) -> bool:
        """Chroma's order: greater is more restrictive (``ALL < OPERATION < NONE``)."""
        if not isinstance(other, OpenTelemetryGranularity):
            return NotImplemented
        return _RESTRICTION[self] < _RESTRICTION[other]

    @property
    def level(self) -> int:
        """0 none, 1 operation, 2 operation and segment, 3 all."""
        return _CONFIGURED[self.value]


_CONFIGURED = {"none": 0, "operation": 1, "operation_and_segment": 2, "all": 3}
_RESTRICTION = {
    OpenTelemetryGranularity.ALL: 0,
    OpenTelemetryGranularity.OPERATION_AND_SEGMENT: 1,
    OpenTelemetryGranularity.OPERATION: 2,
    OpenTelemetryGranularity.NONE: 3,
}
#: The level a span *declared* at a granularity needs: one declared none is never
#: recorded (above every configured level).
_NEVER = 4
_DECLARED: dict[object, int] = {
    OpenTelemetryGranularity.NONE: _NEVER,
    OpenTelemetryGranularity.OPERATION: 1,
    OpenTelemetryGranularity.OPERATION_AND_SEGMENT: 2,
    OpenTelemetryGranularity.ALL: 3,
    "none": _NEVER,
    "operation": 1,
    "operation_and_segment": 2,
    "all": 3,
}
_KINDS = {None: 0, "internal": 0, "server": 1, "client": 2, "producer": 3, "consumer": 4}


def _declared(granularity: object) -> int:
    level = _DECLARED.get(granularity)
    if level is not None:
        return level
    if isinstance(granularity, str):
        name = granularity.strip().lower().replace("-", "_")
        if name in _DECLARED:
            return _DECLARED[name]
    if isinstance(granularity, int) and not isinstance(granularity, bool):
        if 1 <= granularity <= 3:
            return granularity
        if granularity == 0:
            return _NEVER
    raise ValueError(
        f"unknown granularity {granularity!r}: use OpenTelemetryGranularity.NONE, "
        "OPERATION, OPERATION_AND_SEGMENT or ALL (or their names)"
    )


def _kind(kind: object) -> int:
    if kind is None:
        return 0
    if isinstance(kind, int) and not isinstance(kind, bool) and 0 <= kind <= 4:
        return kind
    name = getattr(kind, "name", kind)  # also opentelemetry.trace.SpanKind.SERVER
    if isinstance(name, str) and name.lower() in _KINDS:
        return _KINDS[name.lower()]
    if kind is None:
        return 0
    raise ValueError(f"unknown span kind {kind!r}: internal, server, client, producer, consumer")


# -- the default tracer --------------------------------------------------------------------

#: A tracer that records nothing, used while no client traces.
_DISABLED = Tracer.disabled()
#: The default client's tracer and its level (0 when none traces). The wrappers read
#: `_level` on every call: a module global, compared with an int.
_tracer: Tracer = _DISABLED
_level = 0
_default: Client | None = None
#: Set by set_tracer/otel_init: new clients no longer become the default.
_explicit = False

_current = _native.CURRENT_SPAN
#: The span that is never recorded and never current: what a filtered span is.
_NOOP = Span()


def _use(client: Client | None) -> None:
    global _tracer, _level, _default
    tracer = _DISABLED if client is None else client.tracer
    _default = client
    _tracer = tracer  # first, so a wrapper that sees the new level finds its tracer
    _level = tracer.level


def _client_started(client: Client) -> None:
    """Called by every Client built with tracing on: the most recent one is the default
    unless one was set explicitly."""
    if not _explicit:
        _use(client)


def set_tracer(client: Client | None) -> None:
    """Makes `client` the default tracer of this module (its spans go to its endpoint),
    whatever clients are built later. ``None`` goes back to the automatic rule: the next
    client built with tracing on becomes the default (until then nothing is recorded)."""
    global _explicit
    from telemetry_core._client import Client

    if client is not None and not isinstance(client, Client):
        raise TypeError(f"set_tracer() takes a telemetry_core.Client or None, not {client!r}")
    _explicit = client is not None
    _use(client)


def get_tracer() -> Client | None:
    """The client whose tracer the module-level functions use, or None."""
    return _default


def otel_init(
    otel_service_name: str | None,
    otel_collection_endpoint: str | None,
    otel_collection_headers: Mapping[str, str] | None,
    otel_granularity: OpenTelemetryGranularity | str | None,
    *,
    product: str = "chromadb",
    version: str = "",
) -> Client:
    """Chroma's ``otel_init``: a client that only traces (its product telemetry is off),
    configured by these values (each beats the environment; None leaves a setting to
    the environment), made the default tracer. Returns the client (``span_stats()``,
    ``flush_spans()``, ``shutdown()``)."""
    from telemetry_core._client import Client
    from telemetry_core._settings import Settings

    client = Client(
        Settings(
            product=product,
            version=version,
            anonymized_telemetry=False,
            sink="memory",
            otel_service_name=otel_service_name,
            otel_collection_endpoint=otel_collection_endpoint,
            otel_collection_headers=otel_collection_headers,
            otel_granularity=otel_granularity,
        )
    )
    set_tracer(client)
    return client


# -- spans -----------------------------------------------------------------------------------


def start_span(
    name: str,
    granularity: GranularityLike = OpenTelemetryGranularity.OPERATION,
    attributes: Attributes_ | None = None,
    *,
    kind: object = None,
    parent: Span | SpanContext | None = None,
    root: bool = False,
    tracer: Client | None = None,
) -> Span:
    """A span to use as a context manager: ``with start_span("query", OPERATION) as
    span:`` makes it current for the block, records an exception leaving the block (an
    ``exception`` event, status error; the exception goes on unchanged) and ends it.

    `parent`: a :class:`Span` or the :class:`SpanContext` from :func:`extract`; by default
    the current span (else the host's OpenTelemetry span); ``root=True`` starts a new
    trace. `kind`: ``"internal"`` (default), ``"server"``, ``"client"``, ``"producer"``,
    ``"consumer"``. A span filtered out by granularity is a shared span that records
    nothing and never becomes current. Without ``with``, call ``span.end()``.
    """
    g = _DECLARED.get(granularity) or _declared(granularity)
    t = _tracer if tracer is None else tracer.tracer
    if g > t.level:
        return _NOOP
    return t.start(name, g, attributes, parent, 0 if kind is None else _kind(kind), root)


def get_current_span() -> Span | None:
    """The current span of this thread or task, or None."""
    return _current.get()


def add_attributes_to_current_span(attributes: Attributes_) -> None:
    """Sets attributes on the current span, leaving out None values (as Chroma's does);
    nothing when no span is current."""
    span = _current.get()
    if span is not None:
        span.set_attributes(attributes)


def trace_method(
    trace_name: str,
    trace_granularity: GranularityLike,
    attributes: Attributes_ | None = None,
    *,
    kind: object = None,
    tracer: Client | None = None,
) -> Callable[[T], T]:
    """Chroma's decorator: every call of the function runs in a span named `trace_name`,
    declared at `trace_granularity`, with `attributes`. Plain functions, ``async def``
    coroutine functions, generator and async generator functions (their span covers the
    iteration and is current only while their body runs). An exception is recorded on
    the span and raised unchanged. The wrapper keeps the function's name, docstring and
    signature (``functools.wraps``; ``inspect.iscoroutinefunction`` still holds).

    A span filtered out by granularity (or while no client traces) costs one int
    comparison in the wrapper. `tracer` names the client for these spans instead of the
    default one.
    """
    g = _declared(trace_granularity)
    attrs = Attributes(attributes) if attributes else None
    k = _kind(kind)
    name = str(trace_name)

    def decorator(f: T) -> T:
        import functools
        import inspect

        if not callable(f):
            raise TypeError(f"@trace_method decorates a function, not {type(f).__name__}")
        if inspect.isasyncgenfunction(f):
            wrapper: Any = _async_generator(f, name, g, attrs, k, tracer)
        elif inspect.isgeneratorfunction(f):
            wrapper = _generator(f, name, g, attrs, k, tracer)
        elif inspect.iscoroutinefunction(f):
            wrapper = _coroutine(f, name, g, attrs, k, tracer)
        else:
            wrapper = _plain(f, name, g, attrs, k, tracer)
        wrapped: Any = functools.wraps(f)(wrapper)
        return wrapped  # type: ignore[no-any-return]

    return decorator


def _plain(
    f: Callable[..., Any],
    name: str,
    g: int,
    attrs: Attributes | None,
    k: int,
    client: Client | None,
) -> Callable[..., Any]:
    if client is None:

        def traced(*args: Any, **kwargs: Any) -> Any:
            if g > _level:
                return f(*args, **kwargs)
            return _tracer.run(name, g, attrs, k, f, args, kwargs)

        return traced
    tracer = client.tracer

    def traced_by(*args: Any, **kwargs: Any) -> Any:
        if g > tracer.level:
            return f(*args, **kwargs)
        return tracer.run(name, g, attrs, k, f, args, kwargs)

    return traced_by


def _coroutine(
    f: Callable[..., Awaitable[Any]],
    name: str,
    g: int,
    attrs: Attributes | None,
    k: int,
    client: Client | None,
) -> Callable[..., Awaitable[Any]]:
    if client is None:

        async def traced(*args: Any, **kwargs: Any) -> Any:
            if g > _level:
                return await f(*args, **kwargs)
            with _tracer.start(name, g, attrs, None, k):
                return await f(*args, **kwargs)

        return traced
    tracer = client.tracer

    async def traced_by(*args: Any, **kwargs: Any) -> Any:
        if g > tracer.level:
            return await f(*args, **kwargs)
        with tracer.start(name, g, attrs, None, k):
            return await f(*args, **kwargs)

    return traced_by


def _tracer_for(client: Client | None) -> Tracer:
    return _tracer if client is None else client.tracer


def _generator(
    f: Callable[..., Iterator[Any]],
    name: str,
    g: int,
    attrs: Attributes | None,
    k: int,
    client: Client | None,
) -> Callable[..., Iterator[Any]]:
    def traced(*args: Any, **kwargs: Any) -> Any:
        tracer = _tracer_for(client)
        if g > tracer.level:
            return (yield from f(*args, **kwargs))
        span = tracer.start(name, g, attrs, None, k)
        return (yield from _stepped(span, f(*args, **kwargs)))

    return traced


def _stepped(span: Span, gen: Any) -> Generator[Any, Any, Any]:
    """Runs `gen` with `span` current while its body runs (not while its consumer does),
    passing sent values and thrown exceptions through; the span ends with the
    iteration, recording an exception that ends it."""
    sent: Any = None
    thrown: BaseException | None = None
    try:
        while True:
            token = _current.set(span)
            try:
                item = gen.send(sent) if thrown is None else gen.throw(thrown)
            finally:
                _current.reset(token)
            thrown = None
            try:
                sent = yield item
            except GeneratorExit:
                token = _current.set(span)
                try:
                    gen.close()
                finally:
                    _current.reset(token)
                raise
            except BaseException as e:  # thrown in by the consumer: passed on to gen
                thrown, sent = e, None
    except StopIteration as stop:
        return stop.value
    except GeneratorExit:
        raise
    except BaseException as e:
        span.record_exception(e)
        raise
    finally:
        span.end()


def _async_generator(
    f: Callable[..., AsyncIterator[Any]],
    name: str,
    g: int,
    attrs: Attributes | None,
    k: int,
    client: Client | None,
) -> Callable[..., AsyncIterator[Any]]:
    async def traced(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        tracer = _tracer_for(client)
        agen: Any = f(*args, **kwargs)
        span = None if g > tracer.level else tracer.start(name, g, attrs, None, k)
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                token = None if span is None else _current.set(span)
                try:
                    if thrown is None:
                        item = await agen.asend(sent)
                    else:
                        item = await agen.athrow(thrown)
                finally:
                    if token is not None:
                        _current.reset(token)
                thrown = None
                try:
                    sent = yield item
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as e:
                    thrown, sent = e, None
        except StopAsyncIteration:
            return
        except GeneratorExit:
            raise
        except BaseException as e:
            if span is not None:
                span.record_exception(e)
            raise
        finally:
            if span is not None:
                span.end()

    return traced


def _describe_exception(exc: BaseException, tb: TracebackType | None) -> tuple[str, str, str]:
    """(``exception.type``, ``exception.message``, ``exception.stacktrace``) of `exc`, as
    OpenTelemetry's semantic conventions name them. Called by the native span."""
    import traceback

    cls = type(exc)
    module = getattr(cls, "__module__", None)
    kind = cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}"
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {cls.__name__}>"
    try:
        stack = "".join(traceback.format_exception(cls, exc, tb))
    except Exception:
        stack = ""
    return kind, message, stack


# -- the host's OpenTelemetry ----------------------------------------------------------------


def _host_parent(context: object = None) -> SpanContext | None:
    """The host's current OpenTelemetry span context (in `context`, an OpenTelemetry
    ``Context``, or the current one), when the host imported ``opentelemetry.trace`` and
    a valid span is current there. The native side calls it only when no span of ours is
    current and the host's context is not empty."""
    trace = _sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    try:
        sc = trace.get_current_span(context).get_span_context()
        if not sc.is_valid:
            return None
        state = sc.trace_state.to_header() if sc.trace_state else ""
        return SpanContext.from_ints(
            sc.trace_id, sc.span_id, int(sc.trace_flags), state, bool(sc.is_remote)
        )
    except Exception:  # a host's odd OpenTelemetry must never break a traced call
        return None


_native._set_host_parent(_host_parent)
if hasattr(_sys.modules.get("os"), "register_at_fork"):
    import os as _os

    _os.register_at_fork(after_in_child=_native._after_fork)


# -- W3C Trace Context -----------------------------------------------------------------------


def inject(
    headers: MutableMapping[str, str], span: Span | SpanContext | None = None
) -> MutableMapping[str, str]:
    """Writes ``traceparent`` (and ``tracestate`` when there is one) for `span` (default:
    the current span, else the host's OpenTelemetry span) into `headers` and returns
    them; with no span, `headers` stay as they were. Put them on an outgoing request so
    the service it reaches joins this trace."""
    s: Span | SpanContext | None = _current.get() if span is None else span
    if s is None:
        s = _host_parent()
    if s is None or s.traceparent is None:
        return headers
    headers["traceparent"] = s.traceparent
    state = s.tracestate
    if state:
        headers["tracestate"] = state
    return headers


def _header(headers: object, name: str) -> str | None:
    """A header from a dict, an ``email.message.Message`` (``http.server``'s headers), a
    WSGI environ (``HTTP_TRACEPARENT``) or a list of pairs (ASGI's bytes included), by
    name, case-insensitively; repeated values joined with commas."""
    found: list[str] = []
    getter = getattr(headers, "get_all", None)  # email.message.Message
    items = getattr(headers, "items", None)
    if callable(getter):
        found = [str(v) for v in getter(name) or ()]
    elif callable(items):
        if isinstance(headers, dict):  # the common case: an exact key
            for key in (name, "HTTP_" + name.upper()):
                if key in headers:
                    found = _values(headers[key])
                    if found:
                        return ",".join(found)
        cgi = "HTTP_" + name.upper().replace("-", "_")
        for k, v in items():
            key = k.decode("latin-1") if isinstance(k, bytes) else k
            if isinstance(key, str) and (key.lower() == name or key == cgi):
                found.extend(_values(v))
    else:
        for pair in headers or ():  # type: ignore[attr-defined]
            k, v = pair
            key = k.decode("latin-1") if isinstance(k, bytes) else k
            if isinstance(key, str) and key.lower() == name:
                found.extend(_values(v))
    return ",".join(found) if found else None


def _values(v: object) -> list[str]:
    if isinstance(v, bytes):
        return [v.decode("latin-1")]
    if isinstance(v, str):
        return [v]
    if isinstance(v, (list, tuple)):
        return [x.decode("latin-1") if isinstance(x, bytes) else str(x) for x in v]
    return []


def extract(headers: object) -> SpanContext | None:
    """The remote parent in `headers`' ``traceparent`` (and ``tracestate``), or None when
    there is none or it is not valid W3C Trace Context (the core's strict rules: two,
    32, 16 and two lowercase hex digits, no all-zero id, no version ``ff``). `headers`: a
    dict, ``http.server``'s headers, a WSGI environ, or ASGI's list of byte pairs. Pass
    the result as ``parent=``."""
    traceparent = _header(headers, "traceparent")
    if traceparent is None or "," in traceparent:  # a repeated traceparent is invalid
        return None
    return _native.extract_traceparent(traceparent, _header(headers, "tracestate"))


# -- server spans: WSGI and ASGI middleware -------------------------------------------------


def _status_code(status: str) -> int:
    try:
        return int(status.split(" ", 1)[0])
    except ValueError:
        return 0


class WSGIMiddleware:
    """Wraps a WSGI application: each request runs in a server span, the child of the
    caller's span when the request carries a valid ``traceparent``, named ``"{METHOD}
    {path}"`` (or ``span_name(environ)``), with ``http.request.method``, ``url.path``,
    ``url.scheme`` and ``http.response.status_code``; a 5xx status or an exception is an
    error. The span is current while the application runs and while its body is
    produced, and ends when the server closes the body. Declared at `granularity`
    (default operation); `tracer` names a client instead of the default one.

    ``app.wsgi_app = WSGIMiddleware(app.wsgi_app)`` for Flask.
    """

    __slots__ = ("_g", "_span_name", "app", "client")

    def __init__(
        self,
        app: WSGIApplication,
        tracer: Client | None = None,
        *,
        granularity: GranularityLike = OpenTelemetryGranularity.OPERATION,
        span_name: Callable[[WSGIEnvironment], str] | None = None,
    ) -> None:
        self.app = app
        self.client = tracer
        self._g = _declared(granularity)
        self._span_name = span_name

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        tracer = _tracer_for(self.client)
        if self._g > tracer.level:
            return self.app(environ, start_response)
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", "") or "/")
        name = self._span_name(environ) if self._span_name else f"{method} {path}"
        attributes = {
            "http.request.method": method,
            "url.path": path,
            "url.scheme": environ.get("wsgi.url_scheme"),
        }
        span = tracer.start(name, self._g, attributes, extract(environ), 1)

        def traced_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            code = _status_code(status)
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.set_status("error", status)
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        token = _current.set(span)
        try:
            body = self.app(environ, traced_start_response)
        except BaseException as e:
            span.record_exception(e)
            span.end()
            raise
        finally:
            _current.reset(token)
        return _TracedBody(body, span)


class _TracedBody:
    """A WSGI response body produced with its request's span current; closing it ends the
    span (servers close every body, PEP 3333)."""

    __slots__ = ("_body", "_span")

    def __init__(self, body: Any, span: Span) -> None:
        self._body = body
        self._span = span

    def __iter__(self) -> Iterator[bytes]:
        it = iter(self._body)
        while True:
            token = _current.set(self._span)
            try:
                chunk = next(it)
            except StopIteration:
                return
            except BaseException as e:
                self._span.record_exception(e)
                raise
            finally:
                _current.reset(token)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._span.end()


class ASGIMiddleware:
    """Wraps an ASGI application as :class:`WSGIMiddleware` wraps a WSGI one: each HTTP
    request runs in a server span (``traceparent`` from the request's headers), current
    while the application handles it; lifespan and websocket traffic pass untouched.

    ``app.add_middleware(ASGIMiddleware)`` for Starlette and FastAPI, or
    ``ASGIMiddleware(app)``.
    """

    __slots__ = ("_g", "_span_name", "app", "client")

    def __init__(
        self,
        app: ASGIApp,
        tracer: Client | None = None,
        *,
        granularity: GranularityLike = OpenTelemetryGranularity.OPERATION,
        span_name: Callable[[Scope], str] | None = None,
    ) -> None:
        self.app = app
        self.client = tracer
        self._g = _declared(granularity)
        self._span_name = span_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = _tracer_for(self.client)
        if scope.get("type") != "http" or self._g > tracer.level:
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        path = str(scope.get("path", "") or "/")
        name = self._span_name(scope) if self._span_name else f"{method} {path}"
        attributes = {
            "http.request.method": method,
            "url.path": path,
            "url.scheme": scope.get("scheme"),
        }
        span = tracer.start(name, self._g, attributes, extract(scope.get("headers") or ()), 1)

        async def traced_send(message: Message) -> None:
            if message.get("type") == "http.response.start":
                code = int(message.get("status", 0))
                span.set_attribute("http.response.status_code", code)
                if code >= 500:
                    span.set_status("error", f"HTTP {code}")
            await send(message)

        with span:
            await self.app(scope, receive, traced_send)
