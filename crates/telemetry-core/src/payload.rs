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
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        Value::Object(item)
    }
}
