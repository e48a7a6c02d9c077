"""Usage statistics (Qdrant's model): operation timings, counters and sections of a
client, its report at a details level, the Prometheus text, and the local endpoints.

>>> from telemetry_core import Client, Settings
>>> client = Client(Settings(product="acme", sink="memory", anonymized_telemetry=False))
>>> search = client.usage.timing("search", labels={"collection": "hashed"})
>>> with search.labels("my_collection"):
...     pass
>>> client.usage.report(details_level=2)["operations"]["search"]["count"]
1

The core does the work (recording, rendering, anonymizing, answering the endpoints);
this module adds what only Python has: the ``async def`` wrapper of ``@timing`` and the
WSGI and ASGI apps that serve ``/telemetry`` and ``/metrics`` from any Python server.
"""

from __future__ import annotations

from telemetry_core._client import Client
from telemetry_core._native import (
    Counter,
    CounterFamily,
    Response,
    TimedFunction,
    Timing,
    TimingFamily,
    TimingScope,
    TimingSnapshot,
    Usage,
    UsageError,
    UsageServer,
)

# `typing` costs milliseconds to import; annotations are strings here, so it is only
# imported for type checkers (mypy treats any TYPE_CHECKING name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping
    from typing import Any, TypeVar, Union

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    F = TypeVar("F", bound=Callable[..., Any])
    #: What the apps take: a client, or its registry.
    Source = Union[Client, Usage]
    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

__all__ = [
    "ASGIApp",
    "Counter",
    "CounterFamily",
    "Response",
    "TimedFunction",
    "Timing",
    "TimingFamily",
    "TimingScope",
    "TimingSnapshot",
    "Usage",
    "UsageError",
    "UsageServer",
    "WSGIApp",
    "asgi_app",
    "wsgi_app",
]


def _usage_of(source: object) -> Usage:
    if isinstance(source, Usage):
        return source
    if isinstance(source, Client):
        return source.usage
    raise TypeError(f"expected a telemetry_core.Client or its usage, not {type(source).__name__}")


class WSGIApp:
    """A WSGI application answering ``GET /telemetry?details_level=N&anonymize=...`` and
    ``GET /metrics`` with the core's answers (status, content type, body; 400 for a bad
    query, 404 for other paths, 405 for other methods). Mount it under a prefix with your
    framework's dispatcher; the paths are matched after the prefix (``PATH_INFO``).

    The report is rendered on the calling thread with the GIL released.
    """

    __slots__ = ("usage",)

    def __init__(self, source: Client | Usage) -> None:
        self.usage = _usage_of(source)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        r = self.usage.handle(
            environ.get("PATH_INFO", "") or "/",
            environ.get("QUERY_STRING", ""),
            method,
        )
        start_response(f"{r.status} {_reason(r.status)}", list(r.headers))
        return [b""] if method == "HEAD" else [r.body.encode("utf-8")]

    def __repr__(self) -> str:
        return f"<telemetry_core.usage.WSGIApp product={self.usage.product!r}>"


class ASGIApp:
    """An ASGI application answering ``/telemetry`` and ``/metrics`` as :class:`WSGIApp`
    does; mount it with ``app.mount("/usage", asgi_app(client))`` (FastAPI, Starlette) or
    serve it alone (it answers the lifespan protocol). The path is matched after the
    mount's ``root_path``.

    The report is rendered on the event loop's thread with the GIL released, as
    ``prometheus_client``'s ASGI app renders its text: a few milliseconds at most.
    """

    __slots__ = ("usage",)

    def __init__(self, source: Client | Usage) -> None:
        self.usage = _usage_of(source)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if kind != "http":
            # A websocket: refused before it is accepted (the server answers 403).
            await send({"type": "websocket.close"})
            return
        method = scope.get("method", "GET")
        r = self.usage.handle(
            _route_path(scope), bytes(scope.get("query_string", b"")).decode("latin-1"), method
        )
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in r.headers]
        await send({"type": "http.response.start", "status": r.status, "headers": headers})
        body = b"" if method == "HEAD" else r.body.encode("utf-8")
        await send({"type": "http.response.body", "body": body})

    def __repr__(self) -> str:
        return f"<telemetry_core.usage.ASGIApp product={self.usage.product!r}>"


def wsgi_app(source: Client | Usage) -> WSGIApp:
    """The WSGI app serving `source`'s ``/telemetry`` and ``/metrics`` (see
    :class:`WSGIApp`). With Flask::

        from werkzeug.middleware.dispatcher import DispatcherMiddleware
        app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/usage": wsgi_app(client)})
    """
    return WSGIApp(source)


def asgi_app(source: Client | Usage) -> ASGIApp:
    """The ASGI app serving `source`'s ``/telemetry`` and ``/metrics`` (see
    :class:`ASGIApp`). With FastAPI or Starlette: ``app.mount("/usage", asgi_app(client))``.
    """
    return ASGIApp(source)


def _route_path(scope: Scope) -> str:
    """The path below the mount point, as Starlette computes it: ASGI servers and routers
    keep the mount point in ``root_path`` and, depending on their version, in ``path``."""
    path: str = scope.get("path", "") or "/"
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        return path[len(root) :] or "/"
    return path


def _reason(status: int) -> str:
    from http import HTTPStatus  # only here: importing telemetry_core stays cheap

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _decorate(timing: Timing, func: F) -> F:
    """What ``@timing`` makes of `func` (called by ``Timing.__call__``): a native
    :class:`TimedFunction` for a plain function, an ``async def`` wrapper for a coroutine
    function (frameworks look for one with ``inspect.iscoroutinefunction``). Each keeps the
    function's metadata (``functools.wraps``)."""
    import functools
    import inspect

    if not callable(func):
        raise TypeError(f"@timing decorates a function, not {type(func).__name__}")
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise TypeError(
            f"@timing times a call, and {getattr(func, '__qualname__', func)!r} is a "
            "generator function: its call returns at once. Time the code consuming it "
            "with `with timing:` instead."
        )
    if inspect.iscoroutinefunction(func):
        coroutine_function: Callable[..., Awaitable[Any]] = func

        @functools.wraps(func)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            scope = timing.start()
            try:
                result = await coroutine_function(*args, **kwargs)
            except BaseException:
                scope.fail()
                raise
            scope.stop()
            return result

        return timed  # type: ignore[return-value]
    wrapper = functools.update_wrapper(TimedFunction(timing, func), func)
    return wrapper  # type: ignore[return-value]
