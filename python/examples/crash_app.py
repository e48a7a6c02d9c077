"""A Python program that crashes on purpose, for `make demo` (scripts/demo-parts/30-python.sh).

    python python/examples/crash_app.py --endpoint http://127.0.0.1:8765

It reports its crashes with ``client.report_crashes()``, reports a handled error first,
then dies of an uncaught ``ConnectionRefusedError`` (with a cause) whose message carries an
e-mail address, an IP address and a path under the home directory. The crash report
reaches the endpoint, scrubbed, before the process dies, and it dies as it would without
telemetry: Python's own traceback on stderr, exit status 1. Set DO_NOT_TRACK=1 to see the
same death with nothing sent.
"""

from __future__ import annotations

import argparse
import os
import sys

from telemetry_core import Client, Settings


class Database:
    def __init__(self, host: str) -> None:
        self.host = host

    def connect(self) -> None:
        raise ConnectionRefusedError(
            f"cannot connect to {self.host}:5432 as alice@example.com from 10.20.30.40"
        )


def load_config() -> dict[str, str]:
    path = os.path.join(os.path.expanduser("~"), ".pycrash", "config.toml")
    try:
        with open(path) as f:
            return {"raw": f.read()}
    except FileNotFoundError:
        client.capture_exception()  # handled: the program goes on with the defaults
        return {"host": "db01.internal"}


def start() -> None:
    config = load_config()
    try:
        Database(config["host"]).connect()
    except OSError as e:
        raise RuntimeError("the sync service could not start") from e


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--endpoint", default="http://127.0.0.1:8765")
args = parser.parse_args()
client = Client(
    Settings(product="pycrash", version="0.3.0", endpoint=args.endpoint, api_key="phc_demo")
)
client.report_crashes()
print(f"pycrash: telemetry {'on' if client.enabled else 'off'}", file=sys.stderr)
start()
print("never printed")
