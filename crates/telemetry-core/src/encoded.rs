//! Events whose properties are already JSON text, written on the caller's thread and
//! parsed by the worker.
//!
//! A binding that converts host values (Python objects) into an [`Event`] allocates a
//! string per key and per string value and a map node, on the caller's thread, and every
//! one of those allocations is then read and freed on the worker's: on a 2-core machine
//! that cross-thread traffic cost more than the conversion itself. An `EncodedEvent`
//! writes all the properties into one buffer with serde_json, so one allocation crosses
//! instead of a dozen, and the parsing happens in the background.
//!
//! ```
//! use telemetry_core::EncodedEvent;
//! let props = serde_json::json!({"add_amount": 20, "with_documents": true});
//! let encoded = EncodedEvent::new("collection_add", &props).unwrap();
//! let event = encoded.decode().unwrap();
//! assert_eq!(event.properties["add_amount"], 20);
//! ```
//!
//! Anything `Serialize` that serializes as a map will do; the Python binding serializes
//! its keyword-argument dict directly, reading strings in place.

use std::fmt;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::event::{validate_name, Event};

/// A named event with its properties as a JSON object, stamped when it was made.
///
/// Anonymization, batching and delivery are as for an [`Event`] without declared kinds
/// or a batch rule: properties are anonymized by their type.
#[derive(Debug, Clone)]
pub struct EncodedEvent {
    /// The name's UTF-8 bytes, then the properties as a JSON object written by serde_json:
    /// one allocation for the whole event.
    buffer: Vec<u8>,
    name_len: usize,
    timestamp: SystemTime,
}

/// Why an [`EncodedEvent`] could not be made.
#[derive(Debug)]
pub enum EncodeError {
    /// The name is empty or too long (as [`Event::validate`] says).
    InvalidName(String),
    /// Serializing the properties failed (the `Serialize` impl reported an error).
    Properties(serde_json::Error),
    /// The properties did not serialize as a map.
    NotAnObject,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::InvalidName(why) => f.write_str(why),
            EncodeError::Properties(e) => write!(f, "event properties: {e}"),
            EncodeError::NotAnObject => f.write_str("event properties must be a map"),
        }
    }
}

impl std::error::Error for EncodeError {}

// Room for a handful of short properties without growing the buffer.
const INITIAL_CAPACITY: usize = 256;

impl EncodedEvent {
    /// Checks the name and writes `properties` (which must serialize as a map) as JSON.
    pub fn new<P: Serialize + ?Sized>(name: &str, properties: &P) -> Result<Self, EncodeError> {
        validate_name(name).map_err(EncodeError::InvalidName)?;
        let mut buffer = Vec::with_capacity(INITIAL_CAPACITY.max(name.len() + 2));
        buffer.extend_from_slice(name.as_bytes());
        serde_json::to_writer(&mut buffer, properties).map_err(EncodeError::Properties)?;
        if buffer.get(name.len()) != Some(&b'{') {
            return Err(EncodeError::NotAnObject);
        }
        Ok(EncodedEvent {
            buffer,
            name_len: name.len(),
            timestamp: SystemTime::now(),
        })
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        // Copied from a &str in `new`.
        std::str::from_utf8(&self.buffer[..self.name_len]).unwrap_or_default()
    }

    /// The properties as JSON text.
    pub fn properties_json(&self) -> &str {
        // serde_json writes UTF-8 only.
        std::str::from_utf8(&self.buffer[self.name_len..]).unwrap_or("{}")
    }

    /// Parses the properties back into an [`Event`] (the worker does this).
    pub fn decode(self) -> Result<Event, String> {
        let properties: Map<String, Value> = serde_json::from_slice(&self.buffer[self.name_len..])
            .map_err(|e| format!("encoded event {:?}: {e}", self.name()))?;
        let mut event = Event::new(self.name());
        event.properties = properties;
        event.timestamp = self.timestamp;
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_to_the_event_built_directly() {
        let props = json!({"s": "x\"y\n", "i": -3, "u": u64::MAX, "f": 0.1, "b": false,
                           "n": null, "l": [1, "two"], "d": {"k": 1.5e300}});
        let encoded = EncodedEvent::new("e", &props).unwrap();
        assert_eq!(encoded.name(), "e");
        assert_eq!(encoded.properties_json(), props.to_string());
        let event = encoded.clone().decode().unwrap();
        assert_eq!(Value::Object(event.properties), props);
        assert_eq!(event.name, "e");
        assert_eq!(event.timestamp, encoded.timestamp);
    }

    #[test]
    fn floats_survive_exactly() {
        // Without serde_json's float_roundtrip the first two come back one ulp off
        // (0.0114 and ...825e-75), which can change how the anonymizer truncates them.
        let cases = [
            0.011399999999999999,
            1.0715660391465826e-75,
            0.1,
            2.0 / 3.0,
            f64::MAX,
        ];
        for f in cases.into_iter().chain([5e-324, -0.0]) {
            let event = EncodedEvent::new("e", &json!({"f": f}))
                .unwrap()
                .decode()
                .unwrap();
            assert_eq!(event.properties["f"].as_f64(), Some(f), "{f:e}");
        }
    }

    #[test]
    fn refuses_bad_names_and_non_maps() {
        assert!(matches!(
            EncodedEvent::new(" ", &json!({})),
            Err(EncodeError::InvalidName(_))
        ));
        assert!(matches!(
            EncodedEvent::new(&"x".repeat(201), &json!({})),
            Err(EncodeError::InvalidName(_))
        ));
        assert!(matches!(
            EncodedEvent::new("e", &json!([1])),
            Err(EncodeError::NotAnObject)
        ));
        let err = EncodedEvent::new("e", &json!("text")).unwrap_err();
        assert_eq!(err.to_string(), "event properties must be a map");
    }

    #[test]
    fn reports_serialize_errors() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("not today"))
            }
        }
        let err = EncodedEvent::new("e", &Refuses).unwrap_err();
        assert!(matches!(err, EncodeError::Properties(_)));
        assert!(err.to_string().contains("not today"), "{err}");
    }
}
