//! CONTRACT STUB — being implemented by a helper; signatures are fixed.
#![allow(missing_docs)] // stub only: the real module documents everything
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::env::Environment;

/// How a property is anonymized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyKind {
    Safe,
    Hashed,
    Exact,
    Number,
    Text,
    Dropped,
}

/// Names of this machine that free text must not reveal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalNames {
    pub home: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
}

impl LocalNames {
    /// From `HOME`, `USER`/`LOGNAME`/`USERNAME` and the host name.
    pub fn detect(_env: &dyn Environment) -> Self {
        unimplemented!()
    }
}

/// Applies the anonymization rules with one install's secret.
#[derive(Clone)]
pub struct Anonymizer {
    _secret: [u8; 32],
    _precision: u32,
}

impl Anonymizer {
    pub fn new(secret: [u8; 32], precision: u32) -> Self {
        Anonymizer { _secret: secret, _precision: precision }
    }
    pub fn with_local_names(self, _names: LocalNames) -> Self {
        self
    }
    /// HMAC-SHA256, first 8 bytes as 16 lowercase hex characters.
    pub fn hash(&self, _s: &str) -> String {
        unimplemented!()
    }
    /// Anonymizes one property value; `None` drops it. `kind` None = by value type.
    pub fn value(&self, _kind: Option<PropertyKind>, _value: Value) -> Option<Value> {
        unimplemented!()
    }
    /// Replaces e-mails, IPs, URLs, home dirs, user and host names; paths keep the file name.
    pub fn scrub_text(&self, _s: &str) -> String {
        unimplemented!()
    }
}

/// RFC 3339 UTC, truncated to the second: `2026-11-23T09:14:52Z`.
pub fn timestamp(_t: SystemTime) -> String {
    unimplemented!()
}
