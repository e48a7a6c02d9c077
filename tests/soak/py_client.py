"""The soak's Python client (tests/soak/README.md).

Threads capture plain and batched events for SOAK_SECONDS while the main thread flushes
every SOAK_FLUSH_EVERY seconds and forks a child (os.fork) every SOAK_FORK_EVERY seconds;
the child captures with the client it inherited, flushes, shuts down, writes its counters
and leaves with os._exit. Every event carries ``soak_client`` (the process's tag), so the
driver can count what the collector stored for each process.

Protocol with the driver (tests/soak/soak.py): ``ready`` on stdout once the client is
built (nothing started yet: the baseline), ``done`` after the final shutdown and once the
results file (SOAK_RESULTS/<tag>.json) is written; the process exits when stdin closes.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from telemetry_core import Client, Settings, TelemetryEvent

# os.fork in a process with threads warns (3.12+); forking such a process is the point.
warnings.simplefilter("ignore", DeprecationWarning)


def env_float(name: str, default: float) -> float:
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return default


def resources() -> dict[str, int]:
    rss = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    # listdir holds the directory's own descriptor while it reads: not counted.
    fds = len(os.listdir("/proc/self/fd")) - 1
    tasks = os.listdir("/proc/self/task")
    named = 0
    for t in tasks:
        try:
            with open(f"/proc/self/task/{t}/comm") as f:
                named += f.read().startswith("telemetry-")
        except OSError:
            pass
    return {"fds": fds, "threads": len(tasks), "lib_threads": named, "rss_kb": rss}


def settle(before: dict[str, int]) -> tuple[dict[str, int], float]:
    """Waits (at most SOAK_SETTLE seconds) until the process is back at `before`: the
    library's threads gone, as many descriptors and threads. A shutdown that reached its
    deadline returns while the worker may still wait for the request it had sent (up to
    the request timeout); that thread and its socket end by themselves."""
    limit = env_float("SOAK_SETTLE", 7.0)
    started = time.monotonic()
    while True:
        now = resources()
        back = (
            now["lib_threads"] == 0
            and now["fds"] == before["fds"]
            and now["threads"] == before["threads"]
        )
        if back or time.monotonic() - started >= limit:
            return now, time.monotonic() - started
        time.sleep(0.02)


class Counts:
    def __init__(self) -> None:
        self.plain = 0
        self.batched = 0
        self.lock = threading.Lock()


def capture_one(client: Client, tag: str, n: int, counts: Counts) -> None:
    if n % 2 == 0:
        client.capture(
            TelemetryEvent(
                "soak_batched",
                {"soak_client": tag, "amount": 1},
                kinds={"soak_client": "safe", "amount": "exact"},
                batch_key=f"{tag}-b{n % 3}",
                max_batch_size=50,
                summed=("amount",),
            )
        )
        with counts.lock:
            counts.batched += 1
    else:
        client.capture(
            TelemetryEvent(
                "soak_plain",
                {"soak_client": tag, "seq": n, "note": "soak from /home/someone/work at 10.1.2.3"},
                kinds={"soak_client": "safe", "seq": "exact", "note": "text"},
            )
        )
        with counts.lock:
            counts.plain += 1


def write_results(tag: str, value: dict[str, Any]) -> None:
    out = Path(os.environ.get("SOAK_RESULTS", "."))
    tmp = out / f".{tag}.json.tmp"
    tmp.write_text(json.dumps(value))
    tmp.rename(out / f"{tag}.json")


def child(client: Client, tag: str) -> None:
    """The forked child; never returns."""
    code = 1
    try:
        before = resources()
        counts = Counts()
        for n in range(int(env_float("SOAK_CHILD_EVENTS", 40))):
            capture_one(client, tag, n, counts)
            if n % 10 == 9:
                time.sleep(0.02)
        flushed = client.flush(3.0)
        deadline = env_float("SOAK_CHILD_SHUTDOWN", 2.0)
        started = time.monotonic()
        stats = client.shutdown(deadline)
        took = time.monotonic() - started
        after, settled = settle(before)
        write_results(
            tag,
            {
                "tag": tag,
                "lang": "python",
                "role": "child",
                "pid": os.getpid(),
                "enabled": client.enabled,
                "captured_plain": counts.plain,
                "captured_batched": counts.batched,
                "stats": stats.to_dict(),
                "shutdown_seconds": took,
                "shutdown_deadline": deadline,
                "settle_seconds": settled,
                "flushes": {"ok": int(flushed), "not_delivered": int(not flushed)},
                "before": before,
                "after": after,
            },
        )
        code = 0
    finally:
        os._exit(code)


def main() -> None:
    tag = os.environ.get("SOAK_TAG", "python")
    home = os.environ.get("SOAK_HOME", ".")
    seconds = env_float("SOAK_SECONDS", 60)
    rate = env_float("SOAK_RATE", 100)
    threads = int(env_float("SOAK_THREADS", 2))
    fork_every = env_float("SOAK_FORK_EVERY", 5)
    flush_every = env_float("SOAK_FLUSH_EVERY", 5)
    deadline = env_float("SOAK_SHUTDOWN", 5)
    client = Client(
        Settings(
            product="soak",
            version="1.0.0",
            endpoint=os.environ.get("SOAK_ENDPOINT", "http://127.0.0.1:9"),
            api_key="phc_soak",
            environment={"HOME": home},
            working_dir=home,
            anonymized_telemetry=True,
            usage_reports=False,
            flush_interval=1.0,
            shutdown_timeout=deadline,
        )
    )
    before = resources()
    print("ready", os.getpid(), flush=True)

    counts = Counts()
    stop = threading.Event()

    def load(t: int) -> None:
        period = 1.0 / max(rate, 1.0)
        nxt = time.monotonic()
        n = t
        while not stop.is_set():
            capture_one(client, tag, n, counts)
            n += threads
            nxt += period
            wait = nxt - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -1.0:
                nxt = time.monotonic()  # fell behind: do not burst to catch up

    workers = [threading.Thread(target=load, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    rng = random.Random(os.getpid())
    begin = time.monotonic()
    next_fork = begin + fork_every / 2
    next_flush = begin + flush_every
    forks = fork_failures = failed = flush_ok = flush_not = 0
    children: list[int] = []

    def reap(block: bool) -> None:
        nonlocal failed
        for pid in list(children):
            done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
            if done == 0:
                continue
            children.remove(pid)
            if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
                failed += 1

    while time.monotonic() - begin < seconds:
        now = time.monotonic()
        if now >= next_fork:
            next_fork = now + fork_every
            forks += 1
            child_tag = f"{tag}-c{forks}"
            try:
                pid = os.fork()
            except OSError:
                fork_failures += 1
            else:
                if pid == 0:
                    child(client, child_tag)
                children.append(pid)
        if now >= next_flush:
            if client.flush(rng.uniform(1.0, 4.0)):
                flush_ok += 1
            else:
                flush_not += 1
            next_flush = time.monotonic() + flush_every
        reap(False)
        time.sleep(0.05)
    stop.set()
    for w in workers:
        w.join()
    started = time.monotonic()
    stats = client.shutdown(deadline)
    took = time.monotonic() - started
    reap(True)
    after, settled = settle(before)
    write_results(
        tag,
        {
            "tag": tag,
            "lang": "python",
            "role": "main",
            "pid": os.getpid(),
            "enabled": client.enabled,
            "captured_plain": counts.plain,
            "captured_batched": counts.batched,
            "stats": stats.to_dict(),
            "shutdown_seconds": took,
            "shutdown_deadline": deadline,
            "settle_seconds": settled,
            "flushes": {"ok": flush_ok, "not_delivered": flush_not},
            "children": {"started": forks, "start_failures": fork_failures, "failed": failed},
            "before": before,
            "after": after,
        },
    )
    print("done", flush=True)
    sys.stdin.read()  # until the driver has sampled the end state


if __name__ == "__main__":
    main()
