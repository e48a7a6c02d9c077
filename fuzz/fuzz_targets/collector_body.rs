//! The collector's request-body decoding and validation (`ingest::decode_request`
//! then `ingest::parse`) on arbitrary bytes, with arbitrary encoding flags and
//! endpoint: never a panic, only the documented statuses, and whatever is
//! accepted is an event the stores can keep.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_collector::ingest::{decode_request, parse, Encoding, Endpoint};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the endpoint and the encoding the request claims.
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let endpoint = [Endpoint::Batch, Endpoint::Capture, Endpoint::Event][usize::from(flags % 3)];
    let encoding = Encoding {
        content_type: (flags & 0x04 != 0).then_some("application/x-www-form-urlencoded"),
        content_encoding: (flags & 0x08 != 0).then_some("gzip"),
        compression: match (flags >> 4) & 0x03 {
            0 => None,
            1 => Some("gzip-js"),
            2 => Some("base64"),
            _ => Some("lz64"),
        },
    };
    let query_key = (flags & 0x40 != 0).then_some("phc_query");
    let events =
        match decode_request(body, &encoding).and_then(|json| parse(endpoint, &json, query_key)) {
            Ok(events) => events,
            Err(rejection) => {
                assert!(
                    matches!(rejection.status, 400 | 413 | 415),
                    "undocumented status {} ({})",
                    rejection.status,
                    rejection.message
                );
                assert!(!rejection.message.is_empty());
                return;
            }
        };
    for e in &events {
        assert!(!e.event.is_empty() && !e.distinct_id.is_empty() && !e.api_key.is_empty());
        assert!(
            uuid::Uuid::parse_str(&e.uuid).is_ok(),
            "stored uuid {:?}",
            e.uuid
        );
        assert_eq!(e.uuid, e.uuid.to_lowercase());
        assert_eq!(e.api_key_hash.len(), 12);
        // NUL is refused everywhere: PostgreSQL could keep none of it.
        let text = serde_json::to_string(&e.properties).expect("properties serialise");
        assert!(
            !text.contains("\\u0000") && !e.event.contains('\0') && !e.distinct_id.contains('\0')
        );
    }
});
