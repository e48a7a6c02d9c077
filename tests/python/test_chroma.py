"""The real chromadb from PyPI with telemetry_core.integrations.chroma as its product
telemetry: Chroma's own events, batch keys and sums, delivered to the local collector.

Each scenario runs in its own interpreter: chromadb caches one System per process, and
the point is what a Chroma process sends before it exits.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

from conftest import Collector, clean_env, run_python

IMPL = "telemetry_core.integrations.chroma.ProductTelemetry"

SESSION = textwrap.dedent(
    """
    import json, sys
    import chromadb
    from chromadb.config import Settings

    settings = {settings}
    client = chromadb.Client(Settings(chroma_product_telemetry_impl={impl!r}, **settings))
    # Explicit embeddings: the default embedding function would download a model.
    col = client.create_collection("my_private_collection", embedding_function=None)
    for n in range(3):
        col.add(ids=[f"a{{n}}", f"b{{n}}"], embeddings=[[1.0, 2.0], [3.0, float(n)]],
                documents=["x", "y"])
    for _ in range(2):
        col.query(query_embeddings=[[1.0, 2.0]], n_results=2)
    col.get(ids=["a0", "b0", "a1"])
    col.get(ids=["a2"])
    col.update(ids=["a0"], embeddings=[[0.5, 0.5]], documents=["z"])
    col.delete(ids=["b1"])
    from telemetry_core.integrations.chroma import ProductTelemetry
    from chromadb.telemetry.product import ProductTelemetryClient
    impl = client._system.instance(ProductTelemetryClient)
    assert isinstance(impl, ProductTelemetry), type(impl)
    import os
    workers = sum(
        open(f"/proc/self/task/{{t}}/comm").read().startswith("telemetry-work")
        for t in os.listdir("/proc/self/task")
    )
    print(json.dumps({{"collection_id": str(col.id), "workers": workers,
                       "enabled": impl.client is not None and impl.client.enabled}}))
    # No flush, no shutdown: partial batches must go out at exit.
    """
)


def run_session(home: Path, settings: str = "{}", **env: str) -> dict[str, object]:
    code = SESSION.format(settings=settings, impl=IMPL)
    result = run_python(code, clean_env(home, **env), home, timeout=300)
    assert result.returncode == 0, result.stderr
    # The integration names its product: Chroma's defaults, without the newcomer's warning.
    assert "MissingProductWarning" not in result.stderr, result.stderr
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    report["stderr"] = result.stderr
    return report


def test_chroma_events_arrive_with_chromas_batching_and_exact_sums(
    collector: Collector, home: Path
) -> None:
    report = run_session(home, TELEMETRY_CORE_ENDPOINT=collector.url, TELEMETRY_CORE_API_KEY="k")
    assert report["enabled"] is True
    assert report["workers"] == 1  # the core's one background thread
    summary = collector.wait_for(1)
    by_event = summary["by_event"]
    # Each kind of operation: the first event at once, the rest merged and sent at exit.
    assert by_event["ClientStartEvent"]["events"] == 1
    assert by_event["ClientCreateCollectionEvent"]["events"] == 1
    assert by_event["CollectionAddEvent"] == {"events": 2, "batch_size_total": 3}
    assert by_event["CollectionQueryEvent"] == {"events": 2, "batch_size_total": 2}
    # Chroma's get key includes the limit; both gets have none, so they share a key.
    assert by_event["CollectionGetEvent"] == {"events": 2, "batch_size_total": 2}
    assert by_event["CollectionUpdateEvent"]["batch_size_total"] == 1
    assert by_event["CollectionDeleteEvent"]["batch_size_total"] == 1

    adds = collector.events("CollectionAddEvent")
    assert sum(e["properties"]["add_amount"] for e in adds) == 6
    assert sum(e["properties"]["with_documents"] for e in adds) == 6
    assert sum(e["properties"]["with_metadata"] for e in adds) == 0
    gets = collector.events("CollectionGetEvent")
    assert sum(e["properties"]["ids_count"] for e in gets) == 4
    queries = collector.events("CollectionQueryEvent")
    assert sum(e["properties"]["query_amount"] for e in queries) == 2

    # Anonymized: the collection id only as a keyed hash, the name nowhere.
    raw = json.dumps(collector.events())
    assert str(report["collection_id"]) not in raw
    assert "my_private_collection" not in raw
    # (chromadb 1.5 sends str(id) of the builtin `id` in ClientCreateCollectionEvent, so
    # only the collection operations carry the real collection id.)
    hashes = {
        e["properties"]["collection_uuid"]
        for e in collector.events()
        if e["event"].startswith("Collection")
    }
    assert len(hashes) == 1
    assert re.fullmatch(r"[0-9a-f]{16}", hashes.pop())
    start = collector.events("ClientStartEvent")[0]["properties"]
    assert start["product"] == "chromadb"
    assert start["runtime"] == "python"
    assert start["is_persistent"] is False
    assert start["in_colab"] is False
    # The id lives where Chroma keeps it, so an existing install keeps its identity.
    user_id = (home / ".cache" / "chroma" / "telemetry_user_id").read_text().strip()
    assert {e["distinct_id"] for e in collector.events()} == {user_id}


def test_an_existing_chroma_user_id_is_reused(collector: Collector, home: Path) -> None:
    cache = home / ".cache" / "chroma"
    cache.mkdir(parents=True)
    (cache / "telemetry_user_id").write_text("0c3f7a52-6f0e-4a39-9f6e-2f1b3d4c5e6f")
    run_session(home, TELEMETRY_CORE_ENDPOINT=collector.url, TELEMETRY_CORE_API_KEY="k")
    collector.wait_for(1)
    ids = {e["distinct_id"] for e in collector.events()}
    assert ids == {"0c3f7a52-6f0e-4a39-9f6e-2f1b3d4c5e6f"}


def test_chroma_opted_out_in_settings_sends_nothing_and_writes_nothing(
    collector: Collector, home: Path
) -> None:
    report = run_session(
        home,
        settings="{'anonymized_telemetry': False}",
        TELEMETRY_CORE_ENDPOINT=collector.url,
        TELEMETRY_CORE_API_KEY="k",
    )
    assert report["enabled"] is False
    assert report["workers"] == 0, "an opted-out Chroma started the telemetry thread"
    assert collector.summary()["events"] == 0
    assert not (home / ".cache" / "chroma").exists()


def test_chroma_opted_out_by_environment(collector: Collector, home: Path) -> None:
    report = run_session(
        home,
        TELEMETRY_CORE_ENDPOINT=collector.url,
        TELEMETRY_CORE_API_KEY="k",
        ANONYMIZED_TELEMETRY="False",
    )
    assert report["enabled"] is False
    assert collector.summary()["events"] == 0


def test_chroma_with_telemetry_debug_prints_its_events_and_writes_no_id(home: Path) -> None:
    report = run_session(home, TELEMETRY_DEBUG="1")
    assert report["enabled"] is True
    printed = re.findall(r'^  "event": "(\w+)",$', str(report["stderr"]), re.M)
    assert {"ClientStartEvent", "CollectionAddEvent", "CollectionDeleteEvent"} <= set(printed)
    assert list(home.rglob("telemetry_user_id")) == []
    assert not (home / ".cache" / "chroma").exists()


def test_without_a_configured_endpoint_nothing_is_sent_anywhere(home: Path) -> None:
    report = run_session(home)
    assert report["enabled"] is False
    assert not (home / ".cache" / "chroma").exists()


def test_importing_telemetry_core_never_imports_chromadb(home: Path) -> None:
    code = "import sys, telemetry_core; print('chromadb' in sys.modules)"
    result = run_python(code, clean_env(home), home)
    assert result.stdout.strip() == "False", result.stderr
