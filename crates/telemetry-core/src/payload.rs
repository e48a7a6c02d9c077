//! Shapes one event into a PostHog batch item: anonymized properties, the context, and
//! PostHog's privacy flags.
//!
//! ```
//! use telemetry_core::{context::ClientContext, identity::Identity, payload::PayloadBuilder};
//! use telemetry_core::{env::MapEnvironment, profile::Profile, Event};
//! let ctx = ClientContext {
//!     product: "app".into(), product_version: "1".into(),
//!     runtime: "rust".into(), runtime_version: "1.95".into(), extra: Default::default(),
//! };
//! let builder = PayloadBuilder::new(&Identity::ephemeral(), &Profile::Chroma, &MapEnvironment::new(), &ctx);
//! let item = builder.build(Event::new("start"));
//! assert_eq!(item["properties"]["$geoip_disable"], true);
//! ```

use serde_json::{Map, Value};

use crate::anonymize::{self, Anonymizer, LocalNames};
use crate::context::{ClientContext, CORE_VERSION};
use crate::env::Environment;
use crate::event::Event;
use crate::identity::Identity;
use crate::profile::Profile;

/// Builds batch items for one install (its secret and id) and one client's context.
#[derive(Clone)]
pub struct PayloadBuilder {
    anonymizer: Anonymizer,
    distinct_id: String,
    context: Map<String, Value>,
}

impl PayloadBuilder {
    /// Prepares the anonymizer (with this machine's names to scrub) and the context once.
    pub fn new(
        identity: &Identity,
        profile: &Profile,
        env: &dyn Environment,
        context: &ClientContext,
    ) -> Self {
        let anonymizer = Anonymizer::new(*identity.secret(), profile.precision())
            .with_local_names(LocalNames::detect(env));
        let mut context = context.properties();
        context.insert("$lib".into(), "telemetry-core".into());
        context.insert("$lib_version".into(), CORE_VERSION.into());
        context.insert("$process_person_profile".into(), false.into());
        context.insert("$geoip_disable".into(), true.into());
        context.insert("$ip".into(), Value::Null);
        PayloadBuilder {
            anonymizer,
            distinct_id: identity.install_id().to_string(),
            context,
        }
    }

    /// The PostHog batch item for `event`.
    pub fn build(&self, event: Event) -> Value {
        let mut properties = Map::with_capacity(event.properties.len() + self.context.len());
        for (key, value) in event.properties {
            let kind = event.kinds.get(&key).copied();
            if let Some(value) = self.anonymizer.value(kind, value) {
                properties.insert(key, value);
            }
        }
        // Context last: an event property cannot disguise itself as context.
        for (k, v) in &self.context {
            properties.insert(k.clone(), v.clone());
        }
        // Built field by field: `json!` would serialize `properties` into a second copy.
        let mut item = Map::with_capacity(5);
        item.insert("event".into(), Value::String(event.name));
        item.insert(
            "distinct_id".into(),
            Value::String(self.distinct_id.clone()),
        );
        item.insert("properties".into(), Value::Object(properties));
        item.insert(
            "timestamp".into(),
            Value::String(anonymize::timestamp(event.timestamp)),
        );
        item.insert(
            "uuid".into(),
            Value::String(event_uuid(event.timestamp).to_string()),
        );
        Value::Object(item)
    }
}

/// The event's uuid: a UUIDv7 whose time part is the event's second, the same
/// precision its `timestamp` is sent with, and 74 random bits after it.
///
/// Time-ordered ids let a receiver's unique index grow at its right edge
/// instead of touching a random page per event (our collector's SQLite store
/// ingests about twice as fast with them), while saying nothing the timestamp
/// does not already say; a millisecond v7 would reveal sub-second timing.
///
/// ```ignore
/// let id = event_uuid(std::time::SystemTime::now());
/// assert_eq!(id.get_version_num(), 7);
/// ```
fn event_uuid(t: std::time::SystemTime) -> uuid::Uuid {
    let seconds = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, 0))
}

#[cfg(test)]
mod event_uuid_tests {
    use super::event_uuid;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn v7_at_the_second_and_unique() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_581_234_567);
        let a = event_uuid(t);
        let b = event_uuid(t);
        assert_eq!(a.get_version_num(), 7);
        assert_ne!(a, b);
        let (secs, nanos) = a.get_timestamp().unwrap().to_unix();
        assert_eq!(
            (secs, nanos),
            (1_764_581_234, 0),
            "no sub-second time in the id"
        );
        // Later seconds sort after earlier ones.
        assert!(event_uuid(t + Duration::from_secs(1)) > a.max(b));
    }
}
