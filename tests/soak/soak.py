"""make soak: mixed load against a collector that is killed and restarted, behind a
flapping proxy, with every client's memory, descriptors and threads sampled each second.

Run through `make soak` (SOAK_SECONDS=60 for the short mode); tests/soak/README.md says
what runs, what is checked and why the defaults are what they are. Exit status 0 when
every condition holds, 1 with the failed conditions listed otherwise.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
DEBUG = TARGET / "debug"
RSS_GROWTH_LIMIT_KB = 2048
SPARK = "▁▂▃▄▅▆▇█"


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        sys.exit(f"soak: {name}={value!r} is not a number")


SECONDS = env_float("SOAK_SECONDS", 600)
# The collector is killed every RESTART seconds: 30 by default, a quarter of the run
# when that is shorter, so a 60 s run kills it three times.
RESTART = env_float("SOAK_RESTART_EVERY", min(30.0, SECONDS / 4))
# Warm-up: long enough to include a whole kill-restart cycle and a proxy storm (every
# 20 s), so the queue, the connection pools and the allocators have met an outage before
# the RSS baseline is taken: 10 % of the run, at least one restart interval plus 5 s.
WARMUP = env_float("SOAK_WARMUP", max(RESTART + 5.0, SECONDS / 10))
RATE = env_float("SOAK_RATE", 25)  # events per second per capture thread
SHUTDOWN = env_float("SOAK_SHUTDOWN", 5)  # the clients' final shutdown deadline
# A shutdown may take its deadline plus this much (debug builds, a busy machine).
SHUTDOWN_SLACK = env_float("SOAK_SHUTDOWN_SLACK", 1.5)
WINDOW = 10.0  # seconds of samples that make the RSS start and end figures

CLIENT_ENV_DROP = {
    "DO_NOT_TRACK",
    "TELEMETRY_DEBUG",
    "ANONYMIZED_TELEMETRY",
    "SOAK_TELEMETRY",
    "SOAK_TELEMETRY_DISABLED",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
}


def log(msg: str) -> None:
    print(f"[soak {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


T0 = time.monotonic()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def first_line(stream: IO[str], timeout: float) -> str | None:
    """The first line a child prints, or None when none comes within `timeout`."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        return None


# ---------------------------------------------------------------------------------------
# /proc sampling


@dataclass
class Sample:
    t: float  # seconds since the load started
    rss_kb: int
    fds: int
    threads: int


def read_proc(pid: int) -> Sample | None:
    try:
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("State:") and line.split()[1] == "Z":
                    return None
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return Sample(time.monotonic() - LOAD_START[0], rss, fds, threads)


def children_of(pids: set[int]) -> set[int]:
    """Processes whose parent is in `pids` (the forked and spawned children)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid in pids:
            found.add(int(entry))
    return found


LOAD_START = [time.monotonic()]


# ---------------------------------------------------------------------------------------
# The processes


class CollectorRunner:
    """The collector on one port and one database, killed and started again."""

    def __init__(self, port: int, db: Path, logfile: Path) -> None:
        self.port, self.db, self.logfile = port, db, logfile
        self.proc: subprocess.Popen[str] | None = None
        self.kills = 0
        self.starts = 0
        self.start_seconds: list[float] = []

    def start(self) -> None:
        began = time.monotonic()
        for attempt in range(50):
            with open(self.logfile, "a") as err:
                proc = subprocess.Popen(
                    [
                        str(DEBUG / "telemetry-collector"),
                        "serve",
                        "--listen",
                        f"127.0.0.1:{self.port}",
                        "--db",
                        str(self.db),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
            assert proc.stdout is not None
            line = first_line(proc.stdout, 30)
            if line and line.startswith("listening on "):
                self.proc = proc
                self.starts += 1
                self.start_seconds.append(time.monotonic() - began)
                return
            proc.kill()
            proc.wait()
            time.sleep(0.1 * (attempt + 1))  # the port may still be held a moment
        raise SystemExit(
            f"soak: the collector did not start on port {self.port} (see {self.logfile})"
        )

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None
            self.kills += 1

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@dataclass
class ClientProc:
    tag: str
    lang: str
    argv: list[str]
    proc: subprocess.Popen[str] | None = None
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    samples: list[Sample] = field(default_factory=list)
    ready: Sample | None = None
    done: Sample | None = None
    child_peak_rss_kb: int = 0
    child_pids: set[int] = field(default_factory=set)
    # Go's runtime share of the RSS, as the Go client prints it each second:
    # (t, heap in use, all the runtime holds, GCs, RSS), in KiB.
    go_mem: list[tuple[float, int, int, int, int]] = field(default_factory=list)

    def launch(self, env: dict[str, str], home: Path, logfile: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        env = dict(env, SOAK_TAG=self.tag, SOAK_HOME=str(home), HOME=str(home))
        with open(logfile, "a") as err:
            self.proc = subprocess.Popen(
                self.argv,
                env=env,
                cwd=home,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        out = self.proc.stdout
        assert out is not None
        threading.Thread(
            target=lambda: [self.lines.put(x.strip()) for x in out], daemon=True
        ).start()

    def wait_line(self, prefix: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.lines.get(timeout=0.2).startswith(prefix):
                    return True
            except queue.Empty:
                if self.proc is not None and self.proc.poll() is not None:
                    return False
        return False


# ---------------------------------------------------------------------------------------
# Checks and the report


def median(xs: list[int]) -> int:
    return int(statistics.median(xs)) if xs else 0


def sparkline(values: list[int], width: int = 100) -> str:
    """One character per sample, or per group of samples (their peak) beyond `width`."""
    if not values:
        return ""
    if len(values) > width:
        step = -(-len(values) // width)
        values = [max(values[i : i + step]) for i in range(0, len(values), step)]
    lo, hi = min(values), max(values)
    span = max(hi - lo, 1)
    return "".join(SPARK[min(len(SPARK) - 1, (v - lo) * len(SPARK) // span)] for v in values)


def buckets(samples: list[Sample], width: float) -> list[list[Sample]]:
    out: dict[int, list[Sample]] = {}
    for s in samples:
        out.setdefault(int(s.t // width), []).append(s)
    return [out[k] for k in sorted(out)]


def stored_counts(db: Path) -> dict[str, int]:
    """Occurrences stored per client tag (a merged event counts its batch_size)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT json_extract(properties, '$.soak_client'), SUM(batch_size), COUNT(*),"
            " COUNT(DISTINCT uuid) FROM events GROUP BY 1"
        ).fetchall()
    finally:
        con.close()
    counts: dict[str, int] = {}
    for tag, occurrences, rows_n, uuids in rows:
        counts[str(tag)] = int(occurrences)
        if rows_n != uuids:
            counts.setdefault("__duplicate_uuids__", 0)
            counts["__duplicate_uuids__"] += rows_n - uuids
    return counts


def main() -> int:
    for binary in ("telemetry-collector", "soak-proxy", "soak-rust-client"):
        if not (DEBUG / binary).is_file():
            sys.exit(f"soak: {DEBUG / binary} missing: run `make build`")
    go_client = TARGET / "soak" / "soak-go-client"
    if not go_client.is_file():
        sys.exit(f"soak: {go_client} missing: `make soak` builds it")
    if SECONDS < 30 or WARMUP + 2 * WINDOW > SECONDS or RESTART >= SECONDS:
        sys.exit(
            f"soak: SOAK_SECONDS={SECONDS:g} leaves no room for the warm-up ({WARMUP:g} s), "
            f"two {WINDOW:g} s RSS windows and a restart every {RESTART:g} s: use 60 or more"
        )

    work = TARGET / "soak" / "run"
    shutil.rmtree(work, ignore_errors=True)
    results = work / "results"
    results.mkdir(parents=True)
    logs = work / "logs"
    logs.mkdir()
    db = work / "events.db"
    log(
        f"{SECONDS:g} s of load, warm-up {WARMUP:g} s, collector killed every {RESTART:g} s; "
        f"work dir {work}"
    )

    port = free_port()
    collector = CollectorRunner(port, db, logs / "collector.log")
    collector.start()
    proxy_env = dict(os.environ)
    with open(logs / "proxy.log", "w") as err:
        proxy = subprocess.Popen(
            [str(DEBUG / "soak-proxy"), "127.0.0.1:0", f"127.0.0.1:{port}"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=proxy_env,
        )
    assert proxy.stdout is not None
    line = first_line(proxy.stdout, 10)
    if not line or not line.startswith("listening on "):
        sys.exit(f"soak: the proxy did not start: {line!r}")
    endpoint = line.removeprefix("listening on ")
    log(f"collector on 127.0.0.1:{port}, flapping proxy at {endpoint}")

    base_env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV_DROP}
    base_env.update(
        SOAK_ENDPOINT=endpoint,
        SOAK_SECONDS=f"{SECONDS:g}",
        SOAK_RATE=f"{RATE:g}",
        SOAK_SHUTDOWN=f"{SHUTDOWN:g}",
        SOAK_RESULTS=str(results),
        PYTHONUNBUFFERED="1",
    )
    clients = [
        ClientProc("rust", "rust", [str(DEBUG / "soak-rust-client")]),
        ClientProc("go", "go", [str(go_client)]),
        ClientProc(
            "python", "python", [sys.executable, str(ROOT / "tests" / "soak" / "py_client.py")]
        ),
    ]
    for c in clients:
        c.launch(base_env, work / "homes" / c.tag, logs / f"{c.tag}.log")
    for c in clients:
        if not c.wait_line("ready", 60):
            sys.exit(f"soak: the {c.tag} client did not start (see {logs / (c.tag + '.log')})")
        assert c.proc is not None
        c.ready = read_proc(c.proc.pid)
    LOAD_START[0] = time.monotonic()
    log("clients ready: " + ", ".join(f"{c.tag} pid {c.proc.pid}" for c in clients if c.proc))

    failures: list[str] = []
    next_kill = time.monotonic() + RESTART
    pending = {c.tag for c in clients}
    hard_deadline = LOAD_START[0] + SECONDS + SHUTDOWN + 120
    while pending:
        tick = time.monotonic()
        if tick > hard_deadline:
            failures.append(
                f"clients {sorted(pending)} did not finish within {SECONDS + SHUTDOWN + 120:g} s"
            )
            break
        for c in clients:
            if c.tag not in pending or c.proc is None:
                continue
            s = read_proc(c.proc.pid)
            if s is not None:
                c.samples.append(s)
            kids = children_of({c.proc.pid})
            c.child_pids |= kids
            for kid in kids:
                ks = read_proc(kid)
                if ks is not None:
                    c.child_peak_rss_kb = max(c.child_peak_rss_kb, ks.rss_kb)
            while not c.lines.empty():
                got = c.lines.get()
                if got.startswith("mem "):
                    heap, held, gcs, rss = (int(x) for x in got.split()[1:5])
                    c.go_mem.append((time.monotonic() - LOAD_START[0], heap, held, gcs, rss))
                if got.startswith("done"):
                    c.done = read_proc(c.proc.pid)
                    pending.discard(c.tag)
                    assert c.proc.stdin is not None
                    c.proc.stdin.close()
            if c.proc.poll() is not None and c.tag in pending:
                failures.append(f"{c.tag}: the client exited early with status {c.proc.returncode}")
                pending.discard(c.tag)
        if tick >= next_kill:
            collector.kill()
            # Down for a moment (0.2-1.2 s) like a crashing service, then back on the
            # same port and database.
            time.sleep(0.2 + (collector.kills % 6) * 0.2)
            collector.start()
            log(f"collector killed (SIGKILL) and restarted, #{collector.kills}")
            next_kill = time.monotonic() + RESTART
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

    for c in clients:
        if c.proc is not None:
            try:
                c.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                failures.append(f"{c.tag}: did not exit after stdin closed")
                c.proc.kill()
            if c.proc.returncode not in (0, None) and c.done is not None:
                failures.append(f"{c.tag}: exit status {c.proc.returncode}")
    try:
        with urllib.request.urlopen(f"{endpoint}/__soak/stats", timeout=5) as r:
            proxy_stats = json.load(r)
    except OSError as e:
        proxy_stats = {}
        failures.append(f"the proxy did not answer its stats: {e}")
    proxy.terminate()
    proxy.wait(timeout=10)
    collector.stop()
    stored = stored_counts(db)
    if stored.get("__duplicate_uuids__"):
        failures.append(f"the collector stored {stored['__duplicate_uuids__']} duplicate uuids")

    # Every client's (and child's) own report.
    reports: dict[str, dict[str, Any]] = {}
    for path in sorted(results.glob("*.json")):
        r = json.loads(path.read_text())
        reports[r["tag"]] = r
    rows = []
    for c in clients:
        r = reports.get(c.tag)
        if r is None:
            failures.append(f"{c.tag}: no results file")
            continue
        started = r.get("children", {}).get("started", 0)
        kid_tags = [f"{c.tag}-c{k}" for k in range(1, started + 1)]
        missing = [t for t in kid_tags if t not in reports]
        if missing:
            failures.append(f"{c.tag}: children without results: {missing}")
        if r["children"]["failed"] or r["children"]["start_failures"]:
            failures.append(f"{c.tag}: children failed: {r['children']}")
        for tag in [c.tag] + [t for t in kid_tags if t in reports]:
            failures += check_report(reports[tag], stored.get(tag, 0), c)
        rows.append((c, r, [reports[t] for t in kid_tags if t in reports]))
    failures += check_resources(clients)
    stray = set(stored) - set(reports) - {"__duplicate_uuids__"}
    if stray:
        failures.append(f"stored events of no known client: {sorted(stray)}")

    print_report(rows, stored, clients, collector, proxy_stats)
    wall = time.monotonic() - T0
    if failures:
        print(f"\nsoak FAILED after {wall:.0f} s wall time:")
        for f in failures:
            print(f"  - {f}")
        print(f"(logs, results and the database are in {work})")
        return 1
    print(f"\nsoak passed: every condition held ({wall:.0f} s wall time)")
    return 0


def check_report(r: dict[str, Any], stored: int, c: ClientProc) -> list[str]:
    tag, s = r["tag"], r["stats"]
    out = []
    if not r["enabled"]:
        out.append(f"{tag}: telemetry was off in the client")
    if s["queued"] != 0:
        out.append(f"{tag}: queued = {s['queued']} after the final shutdown (must be 0)")
    dropped = s["dropped_queue_full"] + s["dropped_shutdown"] + s["dropped_failed"]
    if s["captured"] != s["sent"] + dropped + s["queued"]:
        out.append(f"{tag}: captured {s['captured']} != sent + dropped_* + queued ({s})")
    calls = r["captured_plain"] + r["captured_batched"]
    if s["captured"] != calls:
        out.append(f"{tag}: the client captured {calls} events but counts {s['captured']}")
    if not s["sent"] <= stored:
        out.append(f"{tag}: sent {s['sent']} > stored {stored}: an event counted sent is missing")
    upper = s["sent"] + s["dropped_failed"] + s["dropped_shutdown"]
    if not stored <= upper:
        out.append(
            f"{tag}: stored {stored} > sent + dropped_failed + dropped_shutdown = {upper}: "
            "an event was stored twice or one counted dropped before sending was stored"
        )
    limit = r["shutdown_deadline"] + SHUTDOWN_SLACK
    if r["shutdown_seconds"] > limit:
        out.append(
            f"{tag}: shutdown took {r['shutdown_seconds']:.2f} s, "
            f"deadline {r['shutdown_deadline']:g} s"
        )
    b, a = r["before"], r["after"]
    if a["fds"] != b["fds"]:
        out.append(f"{tag}: open descriptors {b['fds']} before, {a['fds']} after the shutdown")
    if a["lib_threads"] != 0:
        out.append(
            f"{tag}: {a['lib_threads']} library threads (telemetry-*) left after the shutdown"
        )
    # Go's runtime keeps the OS threads it made for blocking cgo calls (it never ends idle
    # Ms), so a Go process's total may end above its start; the library's own threads are
    # the ones it names telemetry-*, checked above for every language.
    if a["threads"] != b["threads"] and r["lang"] != "go":
        out.append(f"{tag}: threads {b['threads']} before, {a['threads']} after the shutdown")
    return out


def rss_window(c: ClientProc) -> tuple[int, int, int]:
    """RSS after the warm-up (median of its first window), at the end of the load (median
    of the last window before the shutdown) and its peak after the warm-up."""
    load = [s for s in c.samples if WARMUP <= s.t <= SECONDS]
    if c.go_mem:
        # Go: the RSS less what Go's runtime holds (its heap grows by its own pacing until
        # its first collections, 4 MB of garbage at least); the rest is the library's.
        load = [Sample(m[0], m[4] - m[2], 0, 0) for m in c.go_mem if WARMUP <= m[0] <= SECONDS]
    start = [s.rss_kb for s in load if s.t < WARMUP + WINDOW]
    end = [s.rss_kb for s in load if s.t > SECONDS - WINDOW]
    peak = max((s.rss_kb for s in load), default=0)
    return median(start), median(end), peak


def check_resources(clients: list[ClientProc]) -> list[str]:
    out = []
    for c in clients:
        if c.ready is None or c.done is None:
            out.append(f"{c.tag}: not sampled at start and end")
            continue
        start, end, _ = rss_window(c)
        if end - start > RSS_GROWTH_LIMIT_KB:
            out.append(
                f"{c.tag}: RSS grew {end - start} KiB after the warm-up ({start} -> {end} KiB; "
                f"limit {RSS_GROWTH_LIMIT_KB} KiB)"
            )
    return out


def print_report(
    rows: list[tuple[ClientProc, dict[str, Any], list[dict[str, Any]]]],
    stored: dict[str, int],
    clients: list[ClientProc],
    collector: CollectorRunner,
    proxy_stats: dict[str, int],
) -> None:
    print("\nDelivery (events; a merged event counts its batch_size; children summed per client)")
    head = (
        f"{'client':<14}{'procs':>6}{'captured':>10}{'sent':>9}{'stored':>9}{'drop_fail':>10}"
        f"{'drop_shut':>10}{'drop_full':>10}{'queued':>7}{'retries':>8}{'shutdown':>9}"
    )
    print(head)
    print("-" * len(head))
    for c, r, kids in rows:
        for label, group in ((c.tag, [r]), (f"{c.tag} kids", kids)):
            if not group:
                continue
            tot = {k: sum(g["stats"][k] for g in group) for k in r["stats"]}
            st = sum(stored.get(g["tag"], 0) for g in group)
            shut = max(g["shutdown_seconds"] for g in group)
            print(
                f"{label:<14}{len(group):>6}{tot['captured']:>10}{tot['sent']:>9}{st:>9}"
                f"{tot['dropped_failed']:>10}{tot['dropped_shutdown']:>10}"
                f"{tot['dropped_queue_full']:>10}{tot['queued']:>7}{tot['retries']:>8}"
                f"{shut:>8.2f}s"
            )
    print("\nResources of the long-running clients: RSS in KiB (start and end are the medians")
    print(
        f"of the first {WINDOW:g} s after the warm-up and of the last {WINDOW:g} s of load; Go: the"
    )
    print("RSS less what Go's runtime holds); descriptors and threads as the process counted")
    print("them before its first capture and after its shutdown")
    print("(Go: total threads, the library's own in brackets); settle: how long after the shutdown")
    print("until they were back (a request in flight at the deadline ends by its own timeout)")
    head = (
        f"{'client':<8}{'rss@ready':>10}{'start':>8}{'peak':>8}{'end':>8}{'growth':>8}"
        f"{'fds':>8}{'threads':>11}{'settle':>8}{'kids: rss peak':>16}{'settle max':>11}"
    )
    print(head)
    print("-" * len(head))
    reports = {c.tag: (r, kids) for c, r, kids in rows}
    for c in clients:
        start, end, peak = rss_window(c)
        ready = c.ready.rss_kb if c.ready else 0
        r, kids = reports.get(c.tag, ({}, []))
        b, a = r.get("before", {}), r.get("after", {})
        fds = f"{b.get('fds', '?')}->{a.get('fds', '?')}"
        thr = f"{b.get('threads', '?')}->{a.get('threads', '?')}"
        if c.lang == "go":
            thr += f" ({a.get('lib_threads', '?')})"
        kid_settle = max((k["settle_seconds"] for k in kids), default=0.0)
        print(
            f"{c.tag:<8}{ready:>10}{start:>8}{peak:>8}{end:>8}{end - start:>+8}{fds:>8}{thr:>11}"
            f"{r.get('settle_seconds', 0.0):>7.2f}s{c.child_peak_rss_kb:>16}{kid_settle:>10.2f}s"
        )
    width = 60.0 if SECONDS >= 300 else 10.0
    print(f"\nCurves per {width:g} s (min/median/max), and an RSS sparkline (a sample a character,")
    print("or the peak of each group of samples in long runs)")
    for c in clients:
        print(f"{c.tag}:")
        for name, key in (("rss KiB", "rss_kb"), ("fds", "fds"), ("threads", "threads")):
            parts = []
            for b in buckets(c.samples, width):
                vals = [getattr(s, key) for s in b]
                parts.append(f"{min(vals)}/{median(vals)}/{max(vals)}")
            print(f"  {name:<8} " + "  ".join(parts))
        print(f"  rss      {sparkline([s.rss_kb for s in c.samples])}")
        if c.go_mem:
            parts = []
            for k in sorted({int(m[0] // width) for m in c.go_mem}):
                group = [m for m in c.go_mem if int(m[0] // width) == k]
                parts.append(
                    f"{max(m[1] for m in group)}/{max(m[2] for m in group)}/{group[-1][3]}"
                )
            print(f"  go heap/held KiB/GCs {'  '.join(parts)}")
    print(
        f"\nCollector: killed {collector.kills} times (SIGKILL), started {collector.starts} times "
        f"(start took {min(collector.start_seconds):.2f}-{max(collector.start_seconds):.2f} s)"
    )
    print("Proxy: " + ", ".join(f"{k} {v}" for k, v in proxy_stats.items()))


if __name__ == "__main__":
    sys.exit(main())
