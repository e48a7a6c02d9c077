//! Events: a name, properties with their declared privacy kinds, and an optional batch rule.
//!
//! Privacy is declared next to the value, as Qdrant's `Anonymize` derive does: a property
//! added with [`Event::property`] is anonymized by its type (strings hashed, numbers
//! rounded), [`Event::safe`] is sent as is, [`Event::exact`] keeps a number exact.
//!
//! ```
//! use telemetry_core::Event;
//! let e = Event::new("collection_add")
//!     .safe("embedding_function", "default")
//!     .exact("add_amount", 20)
//!     .property("collection_uuid", "6c6e...")
//!     .batched("add:6c6e", 3000, &["add_amount"]);
//! assert_eq!(e.batch.as_ref().unwrap().max_size, 3000);
//! ```
//!
//! The same event crosses language boundaries as JSON:
//! `{"event": "...", "properties": {...}, "kinds": {"p": "safe"}, "batch": {"key": "...",
//! "max_size": 3000, "sum": ["add_amount"]}}`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::anonymize::PropertyKind;

/// Chroma's batching rule: events with the same key merge until `max_size` of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRule {
    /// Events with equal keys merge (Chroma: collection id + event name).
    pub key: String,
    /// A merged event is sent once it holds this many events; 1 or 0 means never merge.
    pub max_size: u32,
    /// Numeric properties added up when events merge; they are sent exactly.
    #[serde(default)]
    pub sum: Vec<String>,
}

/// The property that counts how many events a merged event stands for.
pub const BATCH_SIZE: &str = "batch_size";

/// One product-usage event, before anonymization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The event's name, e.g. `client_start`.
    #[serde(rename = "event")]
    pub name: String,
    /// Property values; how each is anonymized comes from `kinds`.
    #[serde(default)]
    pub properties: Map<String, Value>,
    /// Declared privacy kinds; a property not listed is anonymized by its type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kinds: BTreeMap<String, PropertyKind>,
    /// How the event merges with others, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchRule>,
    /// When it happened (sent truncated to the second).
    #[serde(skip, default = "SystemTime::now")]
    pub timestamp: SystemTime,
}

impl Event {
    /// A new event with no properties, stamped now.
    pub fn new(name: impl Into<String>) -> Self {
        Event {
            name: name.into(),
            properties: Map::new(),
            kinds: BTreeMap::new(),
            batch: None,
            timestamp: SystemTime::now(),
        }
    }

    /// Adds a property anonymized by its type: strings hashed, numbers rounded.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        self.kinds.remove(&key);
        self.properties.insert(key, value.into());
        self
    }

    /// Adds a property with a declared privacy kind.
    pub fn with_kind(
        mut self,
        key: impl Into<String>,
        value: impl Into<Value>,
        kind: PropertyKind,
    ) -> Self {
        let key = key.into();
        self.kinds.insert(key.clone(), kind);
        self.properties.insert(key, value.into());
        self
    }

    /// Adds a property sent as is (an enum-like label, a version, a feature flag).
    pub fn safe(self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.with_kind(key, value, PropertyKind::Safe)
    }

    /// Adds a number sent exactly (a count that must add up).
    pub fn exact(self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.with_kind(key, value, PropertyKind::Exact)
    }

    /// Adds a value sent only as its keyed hash.
    pub fn hashed(self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.with_kind(key, value, PropertyKind::Hashed)
    }

    /// Adds free text (an error message), scrubbed of e-mails, addresses, paths and names.
    pub fn text(self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.with_kind(key, value, PropertyKind::Text)
    }

    /// Merges this event with others of the same `key` (Chroma's batching); the `sum`
    /// properties are added up and sent exactly.
    pub fn batched(mut self, key: impl Into<String>, max_size: u32, sum: &[&str]) -> Self {
        self.batch = Some(BatchRule {
            key: key.into(),
            max_size,
            sum: sum.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// Parses the JSON form bindings send; the name must be non-empty.
    pub fn from_json(text: &str) -> Result<Event, String> {
        let event: Event =
            serde_json::from_str(text).map_err(|e| format!("invalid event JSON: {e}"))?;
        event.validate()?;
        Ok(event)
    }

    /// Checks what serde cannot: a usable name and batch rule.
    pub fn validate(&self) -> Result<(), String> {
        validate_name(&self.name)?;
        if let Some(rule) = &self.batch {
            if rule.key.is_empty() {
                return Err("batch key is empty".into());
            }
        }
        Ok(())
    }
}

/// The longest event name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// A usable event name: not blank, at most [`MAX_NAME_BYTES`].
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("event name is empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "event name is {} bytes; at most {MAX_NAME_BYTES}",
            name.len()
        ));
    }
    Ok(())
}
