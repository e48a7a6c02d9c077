//! A small Chroma-like application that reports its usage through telemetry-core, the
//! way chromadb does: client start, collection create, add/query/get with Chroma's batch
//! rules. Opt-outs come from the real environment (`ANONYMIZED_TELEMETRY`, `.env`,
//! `DO_NOT_TRACK`).
//!
//! Run: `TELEMETRY_ENDPOINT=http://127.0.0.1:PORT cargo run -p telemetry-core --example chroma_app`

use std::time::Duration;

use telemetry_core::profile::Profile;
use telemetry_core::{Client, Event};

fn main() {
    let endpoint =
        std::env::var("TELEMETRY_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9".into());
    let client = match Client::builder("chromadb", "1.3.0")
        .profile(Profile::Chroma)
        .endpoint(endpoint)
        .api_key("phc_local_demo")
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chroma_app: {e}");
            std::process::exit(1);
        }
    };

    // The application's own work would happen between these captures.
    client.capture(
        Event::new("client_start")
            .safe("is_persistent", true)
            .safe("api_impl", "segment"),
    );
    let collections = ["3f0c9a4e-docs", "8b2d1e7f-images"];
    for uuid in collections {
        client.capture(
            Event::new("client_create_collection")
                .hashed("collection_uuid", uuid)
                .safe("embedding_function", "default"),
        );
        for batch in 0..12 {
            client.capture(
                Event::new("collection_add")
                    .hashed("collection_uuid", uuid)
                    .exact("add_amount", 100 + batch)
                    .exact("with_documents", 100 + batch)
                    .exact("with_metadata", 50)
                    .batched(
                        format!("{uuid}collection_add"),
                        3000,
                        &["add_amount", "with_documents", "with_metadata"],
                    ),
            );
        }
        for _ in 0..25 {
            client.capture(
                Event::new("collection_query")
                    .hashed("collection_uuid", uuid)
                    .exact("query_amount", 1)
                    .safe("n_results", 10)
                    .safe("include_metadatas", 1)
                    .batched(format!("{uuid}collection_query"), 3000, &["query_amount"]),
            );
        }
        client.capture(
            Event::new("collection_get")
                .hashed("collection_uuid", uuid)
                .exact("ids_count", 5)
                .batched(format!("{uuid}collection_get"), 300, &["ids_count"]),
        );
    }
    let stats = client.shutdown(Duration::from_secs(1));
    let decision = client.decision();
    let why = decision
        .decided_by
        .as_ref()
        .map(|d| format!("{} {}", d.kind.as_str(), d.name))
        .unwrap_or_default();
    println!(
        "rust chroma_app: telemetry {} ({why}); captured {}, delivered {}, merged {}",
        if decision.enabled { "on" } else { "off" },
        stats.captured,
        stats.sent,
        stats.merged
    );
}
