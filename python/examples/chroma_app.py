"""A small Chroma app whose product telemetry goes through telemetry_core.

    TELEMETRY_CORE_ENDPOINT=http://127.0.0.1:8765 TELEMETRY_CORE_API_KEY=phc_demo \\
        python python/examples/chroma_app.py

It stores a few notes in an in-memory Chroma collection and searches them; Chroma's own
events (ClientStartEvent, CollectionAddEvent, ...) go to the endpoint, anonymized and
batched by Chroma's rules. Set ANONYMIZED_TELEMETRY=False to see nothing sent at all.
"""

from __future__ import annotations

import chromadb
from chromadb.config import Settings
from chromadb.telemetry.product import ProductTelemetryClient

from telemetry_core.integrations.chroma import ProductTelemetry

NOTES = {
    "n1": ("buy milk", [0.9, 0.1, 0.0]),
    "n2": ("call the plumber", [0.1, 0.9, 0.0]),
    "n3": ("milk the cows", [0.8, 0.2, 0.1]),
}


def main() -> None:
    client = chromadb.Client(
        Settings(
            chroma_product_telemetry_impl="telemetry_core.integrations.chroma.ProductTelemetry"
        )
    )
    # Explicit embeddings: Chroma's default embedding function would download a model.
    notes = client.create_collection("notes", embedding_function=None)
    for note_id, (text, vector) in NOTES.items():
        notes.add(ids=[note_id], documents=[text], embeddings=[vector])
    hits = notes.query(query_embeddings=[[1.0, 0.0, 0.0]], n_results=2)
    notes.get(ids=["n1"])
    notes.update(ids=["n2"], documents=["call the electrician"], embeddings=[[0.1, 0.8, 0.1]])
    notes.delete(ids=["n3"])

    telemetry = client._system.instance(ProductTelemetryClient)
    assert isinstance(telemetry, ProductTelemetry)
    core = telemetry.client
    if core is None:
        print("python chroma app: no telemetry endpoint configured, nothing sent")
        return
    verdict = str(core.decision).splitlines()[0]
    # Partial batches would go out at exit anyway; flushing now lets us report them.
    core.flush(5)
    stats = core.stats
    print(
        f"python chroma app: found {hits['ids'][0]}; {stats.captured} Chroma events, "
        f"{stats.sent} delivered as {stats.captured - stats.merged} anonymized events "
        f"({stats.merged} merged by Chroma's batch rules), {stats.queued} pending; {verdict}"
    )


if __name__ == "__main__":
    main()
