"""Error reports from Python: uncaught exceptions as crashes, handled ones on request.

* ``Client.report_crashes()`` installs ``sys.excepthook`` and ``threading.excepthook`` once
  per process, each chained to the hook that was there before (which still runs, after
  the report, so the usual traceback still prints), and registers the client if its
  telemetry is on: every registered client gets every uncaught exception, each under its
  own consent. Opted out, installing the hooks changes nothing but the chaining.
* ``Client.capture_exception(exc)`` queues a report of an exception the host handled; it
  never waits.
* A report is built here, once per crash: the exception's type (``module.QualName``, the
  module left out for builtins and ``__main__``, as the traceback's last line shows it),
  its message (``str(exc)``), its frames from the traceback (function, file, line, column,
  in_app) outermost first, and its causes (``__cause__``, or ``__context__`` unless
  suppressed, and an exception group's members), bounded and cycle-free. Never locals,
  never source lines. The core scrubs it (messages, file names reduced to their last
  component), fingerprints it, applies the rate limits and sends PostHog's ``$exception``.
* A crash waits for its report (the first of its fingerprint, up to the deadline counted
  from the hook's entry, one deadline for every client), with the GIL released.
* Never a second crash: nothing in a hook raises (whatever fails while building or sending
  a report is swallowed), an exception raised while this thread is reporting one is not
  reported again, and the previous hook runs whatever happened. ``KeyboardInterrupt``,
  ``SystemExit`` and ``GeneratorExit`` are not crashes: not reported.
* When a crash's report could not be delivered within the deadline, the exit's shutdown
  of that client takes only what is left of that deadline, unless the endpoint took
  something in between: a dead endpoint delays a dying process once, not twice.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import sysconfig
import threading
import time
from _weakref import ref  # built in: `weakref` itself would import more
from collections import deque

from telemetry_core._native import MAX_ERROR_CAUSES, MAX_ERROR_FRAMES, _prepare_error_reports

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType
    from typing import Any, Callable, Optional

    from telemetry_core._client import Client

    #: (function, file, line, column, in_app), as the core's Frame.
    Frame = tuple[str, str, Optional[int], Optional[int], bool]
    #: (type, message, frames), as the core's Exception.
    Exception_ = tuple[str, str, list[Frame]]
    #: The exception, then its causes, nearest first.
    Report = tuple[Exception_, list[Exception_]]

__all__ = ["capture", "install", "report_exception", "will_report"]

#: What Python's own traceback prints for a message that cannot be made.
STR_FAILED = "<exception str() failed>"
#: Not crashes: the user's Ctrl-C, a requested exit, a closed generator.
NOT_CRASHES = (KeyboardInterrupt, SystemExit, GeneratorExit)
#: Traceback entries looked at at most (a traceback is as deep as the recursion limit).
MAX_WALK = 100_000

_lock = threading.Lock()
_installed = False
_previous_excepthook: Callable[..., Any] | None = None
_previous_threading_excepthook: Callable[..., Any] | None = None
#: Clients that asked for crash reports (telemetry on), held weakly, in the order they
#: asked. Replaced, never changed in place: a hook reads it without a lock.
_clients: tuple[ref[Client], ...] = ()
#: Threads inside a hook or a report right now (by ident): an exception raised meanwhile
#: (by a message that fails, or a hook further down the chain) is not reported.
_reporting: set[int] = set()
#: Directories of code that is not the host's own (see `_library_dirs`).
_library: tuple[str, ...] = ()


def install(client: Client) -> None:
    """Installs the hooks once per process; registers `client` if its telemetry is on."""
    global _installed, _previous_excepthook, _previous_threading_excepthook, _clients
    with _lock:
        _prepare()
        if not _installed:
            _previous_excepthook = sys.excepthook
            _previous_threading_excepthook = threading.excepthook
            sys.excepthook = _excepthook
            threading.excepthook = _threading_excepthook
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_reporting.clear)
            _installed = True
        live = tuple(r for r in _clients if r() is not None)
        if client.enabled and not any(r() is client for r in live):
            live += (ref(client),)
            _prepare_error_reports()  # not while a crash waits
        _clients = live


def capture(client: Client, exc: BaseException | None) -> bool:
    """``Client.capture_exception``: queues a report of a handled exception, never waits.

    False when it was not queued (the rate limits, or a report that could not be built).
    """
    if exc is None:
        exc = sys.exc_info()[1]
        if exc is None:
            raise TypeError(
                "capture_exception() needs an exception: pass one, or call it in an except block"
            )
    elif not isinstance(exc, BaseException):
        raise TypeError(f"capture_exception() takes an exception, not {type(exc).__name__}")
    ident = threading.get_ident()
    if ident in _reporting:
        return False  # raised while this thread reports another one
    _reporting.add(ident)
    try:
        _prepare()
        top, causes = report_exception(exc, exc.__traceback__, client.settings.app_packages)
        return client._native.capture_error(top, causes)
    except Exception:
        # Building or queueing failed: the host's own error handling goes on undisturbed.
        # (KeyboardInterrupt and SystemExit are the host's and propagate.)
        return False
    finally:
        _reporting.discard(ident)


def will_report(client: Client, exc: BaseException) -> bool:
    """Whether the hooks would report `exc` to `client`, if it is not caught."""
    return not isinstance(exc, NOT_CRASHES) and any(r() is client for r in _clients)


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """sys.excepthook: reports the uncaught exception, then runs the previous hook."""
    started = time.monotonic()
    previous = _previous_excepthook or sys.__excepthook__
    ident = threading.get_ident()
    if ident in _reporting:
        # Raised while this thread reports another one (a message that fails, a hook
        # further down the chain): printed as before, not reported.
        previous(exc_type, exc, tb)
        return
    _reporting.add(ident)
    try:
        try:
            if isinstance(exc, BaseException) and not isinstance(exc, NOT_CRASHES):
                _report_crash(exc, tb, started)
        except BaseException:  # never a second crash
            pass
        previous(exc_type, exc, tb)
    finally:
        _reporting.discard(ident)


def _threading_excepthook(args: Any) -> None:
    """threading.excepthook: reports the thread's uncaught exception, then runs the
    previous hook (the default one ignores SystemExit, and so do we)."""
    started = time.monotonic()
    previous = _previous_threading_excepthook or threading.__excepthook__
    ident = threading.get_ident()
    if ident in _reporting:
        previous(args)
        return
    _reporting.add(ident)
    try:
        try:
            exc = args.exc_value
            if isinstance(exc, BaseException) and not isinstance(exc, NOT_CRASHES):
                _report_crash(exc, args.exc_traceback, started)
        except BaseException:  # never a second crash
            pass
        previous(args)
    finally:
        _reporting.discard(ident)


def _report_crash(exc: BaseException, tb: TracebackType | None, started: float) -> None:
    """Reports `exc` as a crash to every registered client, all within one deadline
    counted from `started` (the hook's entry)."""
    clients = [c for c in (r() for r in _clients) if c is not None]
    # Built once for each set of the host's packages (usually one for all clients).
    built: dict[tuple[str, ...], Report] = {}
    for client in clients:
        try:
            packages = client.settings.app_packages
            report = built.get(packages)
            if report is None:
                report = built[packages] = report_exception(exc, tb, packages)
            elapsed = time.monotonic() - started
            outcome, sent = client._native.report_crash(report[0], report[1], elapsed)
            if outcome == "timed_out":
                # The endpoint did not take the report within the deadline: unless it
                # takes something before the exit, the exit's shutdown gets only what is
                # left of this deadline (nothing, by then), not a second one.
                end = started + client._native.crash_deadline
                client._exit_bound = (end, sent)
        except Exception:  # the next client still gets its report
            continue


def report_exception(
    exc: BaseException, tb: TracebackType | None, app_packages: Iterable[str] = ()
) -> Report:
    """The report of `exc` (with the traceback `tb`) as the core takes it: the exception,
    then its causes, nearest first. Never raises for what the exception holds."""
    packages = tuple(app_packages)
    top = (_type_name(exc), _message(exc), _frames(tb, packages))
    causes = [
        (_type_name(c), _message(c), _frames(_traceback_of(c), packages)) for c in _causes(exc)
    ]
    return top, causes


def _type_name(exc: BaseException) -> str:
    """``module.QualName``; builtins and ``__main__`` without the module, as Python's own
    traceback prints them."""
    t = type(exc)
    try:
        name = t.__qualname__
    except Exception:
        name = None
    if not isinstance(name, str) or not name:
        name = getattr(t, "__name__", None)
        if not isinstance(name, str) or not name:
            return "<unknown>"
    try:
        module = t.__module__
    except Exception:
        module = None
    if module in ("builtins", "__main__"):
        return name
    if not isinstance(module, str):
        module = "<unknown>"
    return f"{module}.{name}"


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        return STR_FAILED
    return text if isinstance(text, str) else STR_FAILED


def _traceback_of(exc: BaseException) -> TracebackType | None:
    try:
        tb = exc.__traceback__
    except Exception:
        return None
    return tb


def _frames(tb: TracebackType | None, packages: tuple[str, ...]) -> list[Frame]:
    """The traceback's frames, outermost first; only the innermost MAX_ERROR_FRAMES are
    kept. A frame that cannot be read is left out."""
    out: deque[Frame] = deque(maxlen=MAX_ERROR_FRAMES)
    walked = 0
    while tb is not None and walked < MAX_WALK:
        walked += 1
        with contextlib.suppress(Exception):  # a frame that cannot be read is left out
            out.append(_frame(tb, packages))
        try:
            tb = tb.tb_next
        except Exception:
            break
    return list(out)


def _frame(tb: TracebackType, packages: tuple[str, ...]) -> Frame:
    frame = tb.tb_frame
    code = frame.f_code
    function = getattr(code, "co_qualname", None) or code.co_name  # co_qualname: 3.11+
    file = code.co_filename
    lineno = tb.tb_lineno
    line = lineno if isinstance(lineno, int) and lineno > 0 else None
    module = frame.f_globals.get("__name__") if packages else None
    return (
        function if isinstance(function, str) else "<unknown>",
        file if isinstance(file, str) else "",
        line,
        _column(code, tb.tb_lasti),
        _in_app(file, module, packages),
    )


def _column(code: Any, lasti: int) -> int | None:
    """The 1-based column of the instruction that raised (3.11+; None before)."""
    positions = getattr(code, "co_positions", None)
    if positions is None or not isinstance(lasti, int) or lasti < 0:
        return None
    try:
        entry = next(itertools.islice(positions(), lasti // 2, None), None)
    except Exception:
        return None
    if entry is None or not isinstance(entry[2], int) or entry[2] < 0:
        return None
    return entry[2] + 1


def _in_app(file: object, module: object, packages: tuple[str, ...]) -> bool:
    """The host's own code: a module of `packages` (``Settings.app_packages``, for a
    product installed with pip), or else a file outside the standard library,
    site-packages or dist-packages, and telemetry_core. Code made at run time
    (``<string>``, ``<stdin>``) is the host's; frozen modules are the standard library."""
    if isinstance(module, str) and any(module == p or module.startswith(p + ".") for p in packages):
        return True
    if not isinstance(file, str) or not file:
        return False
    if file.startswith("<"):
        return not file.startswith("<frozen")
    path = os.path.normcase(file)
    if path.startswith(_library):
        return False
    slashed = path.replace("\\", "/")
    return "/site-packages/" not in slashed and "/dist-packages/" not in slashed


def _causes(exc: BaseException) -> list[BaseException]:
    """What is behind `exc`, nearest first, depth first: the chained exception
    (``__cause__``, or ``__context__`` unless ``__suppress_context__``), then an exception
    group's members; each exception once (chains may loop), at most MAX_ERROR_CAUSES."""
    out: list[BaseException] = []
    seen = {id(exc)}
    stack = _behind(exc)[::-1]
    while stack and len(out) < MAX_ERROR_CAUSES:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        out.append(e)
        stack.extend(_behind(e)[::-1])
    return out


def _behind(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    try:
        chained = exc.__cause__
        if chained is None and not exc.__suppress_context__:
            chained = exc.__context__
        if isinstance(chained, BaseException):
            found.append(chained)
        if _is_group(exc):
            members = exc.exceptions  # type: ignore[attr-defined]
            if isinstance(members, tuple):
                found.extend(m for m in members[:MAX_ERROR_CAUSES] if isinstance(m, BaseException))
    except Exception:  # what cannot be read is left out
        pass
    return found


def _is_group(exc: BaseException) -> bool:
    """An exception group: 3.11's BaseExceptionGroup, or the ``exceptiongroup`` backport's
    (found by name, so the backport is never imported here)."""
    return any(c.__name__ == "BaseExceptionGroup" for c in type(exc).__mro__)


def _prepare() -> None:
    """What a hook needs, found before any crash: a hook imports nothing, reads no file."""
    global _library
    if not _library:
        _library = _library_dirs()


def _library_dirs() -> tuple[str, ...]:
    """The standard library's directories (``sysconfig``'s stdlib and platstdlib), this
    environment's site-packages (purelib, platlib) and telemetry_core's own, each as
    given and resolved, ending with a separator."""
    dirs: set[str] = set()
    paths = sysconfig.get_paths()
    found = [paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    found.append(os.path.dirname(os.path.abspath(__file__)))
    for d in found:
        if isinstance(d, str) and d:
            for variant in (d, os.path.realpath(d)):
                dirs.add(os.path.join(os.path.normcase(variant), ""))
    return tuple(sorted(dirs))
