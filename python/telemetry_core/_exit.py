"""Shutting clients down at exit, bounded by their deadlines, in every kind of process.

* A normal exit runs ``atexit``: every live enabled client is shut down, all of them
  within the longest deadline, so a host never waits longer than that for telemetry.
* After an uncaught exception whose crash report could not be delivered within the crash
  deadline (telemetry_core._crash), that client's shutdown takes only what is left of the
  deadline, unless the endpoint took something since: a dead endpoint delays a dying
  process once, not twice.
* A ``multiprocessing`` child started by fork leaves through ``os._exit`` without running
  ``atexit``; its finalizers do run, so a forked child registers one there.
* A child of a bare ``os.fork()`` that ends with ``os._exit`` skips every cleanup by
  definition; call ``client.flush()`` before it.
"""

from __future__ import annotations

import atexit
import os
import sys
import time

# The set class behind weakref.WeakSet, already loaded by `abc` at startup; `weakref`
# itself would pull in more modules.
from _weakrefset import WeakSet

from telemetry_core import _native

# `typing` costs milliseconds to import; annotations are strings here, so it is only
# imported for type checkers (mypy treats any TYPE_CHECKING name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from telemetry_core._client import Client

__all__ = ["register", "shutdown_all"]

_clients: WeakSet[Client] = WeakSet()
_hooked = False


class _Token:
    """A weak-referenceable object for multiprocessing's after-fork registry."""


_token = _Token()


def register(client: Client) -> None:
    """Remember an enabled client so it is shut down at exit (hooks installed once)."""
    global _hooked
    _clients.add(client)
    if not _hooked:
        _hooked = True
        atexit.register(_at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)


def shutdown_all() -> None:
    """Shuts every live enabled client down, within the longest of their deadlines."""
    clients = list(_clients)
    if not clients:
        return
    deadline = time.monotonic() + max(c.shutdown_timeout for c in clients)
    for client in clients:
        now = time.monotonic()
        left = max(0.0, deadline - now)
        bound = client._exit_bound
        if bound is not None and client.stats.sent == bound[1]:
            # A crash's report timed out and the endpoint took nothing since: only what is
            # left of that crash's deadline (usually nothing), not a second wait.
            left = min(left, max(0.0, bound[0] - now))
        client.shutdown(min(client.shutdown_timeout, left))


def _at_exit() -> None:
    shutdown_all()
    # From here on, Rust log records are dropped: a worker abandoned in a request must not
    # take the GIL while the interpreter finalizes.
    _native._python_exiting()


def _after_fork_in_child() -> None:
    # multiprocessing's child bootstrap clears its finalizer registry after fork hooks run,
    # then runs its after-fork callbacks: register through those.
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        mp_util.register_after_fork(_token, _add_multiprocessing_finalizer)


def _add_multiprocessing_finalizer(_: object) -> None:
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        # Negative priority: after the process's own finalizers (queues, pools) have run.
        mp_util.Finalize(None, shutdown_all, exitpriority=-100)
