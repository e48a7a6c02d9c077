//! Chroma-style batching, run on the worker thread.
//!
//! The first event of a batch key is sent at once (so a short-lived process still reports
//! it); later ones merge into one pending event whose `batch_size` and summed properties
//! grow, and which is sent when it reaches the rule's maximum. Unlike Chroma, pending
//! merges are also released by [`Batcher::drain`] at each flush interval and at shutdown,
//! so no count is lost when the process exits.
//!
//! ```
//! use telemetry_core::{batch::Batcher, Event};
//! let mut b = Batcher::default();
//! let add = || Event::new("add").exact("n", 2).batched("k", 3, &["n"]);
//! assert!(b.offer(add()).is_some()); // first of its key: sent now
//! assert!(b.offer(add()).is_none()); // merged
//! assert!(b.offer(add()).is_none());
//! let full = b.offer(add()).unwrap(); // third merged event reaches max_size 3
//! assert_eq!(full.event.properties["batch_size"], 3);
//! assert_eq!(full.event.properties["n"], 6);
//! ```

use std::collections::{HashMap, HashSet};

use serde_json::{Number, Value};

use crate::anonymize::PropertyKind;
use crate::event::{Event, BATCH_SIZE};

/// At most this many distinct batch keys are remembered as "seen"; past it the memory is
/// reset, so a process that creates collections forever does not grow without bound.
const MAX_SEEN_KEYS: usize = 10_000;

/// An event ready for anonymization, with how many captured events it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The (possibly merged) event.
    pub event: Event,
    /// Captured events inside it, for exact accounting of `sent`.
    pub captured: u64,
}

/// Merges batched events; see the module docs.
#[derive(Debug, Default)]
pub struct Batcher {
    seen: HashSet<String>,
    pending: HashMap<String, Outgoing>,
    /// Pending keys in arrival order, so drains are deterministic.
    order: Vec<String>,
}

impl Batcher {
    /// Takes one captured event; returns what must be sent now, if anything.
    pub fn offer(&mut self, mut event: Event) -> Option<Outgoing> {
        let Some(rule) = event.batch.clone() else {
            return Some(Outgoing { event, captured: 1 });
        };
        mark_exact(&mut event, &rule.sum);
        if rule.max_size <= 1 || !self.seen.contains(&rule.key) {
            if self.seen.len() >= MAX_SEEN_KEYS {
                self.seen.clear();
            }
            self.seen.insert(rule.key);
            return Some(Outgoing { event, captured: 1 });
        }
        let merged = match self.pending.remove(&rule.key) {
            None => {
                self.order.push(rule.key.clone());
                Outgoing { event, captured: 1 }
            }
            Some(mut pending) => {
                merge_into(&mut pending.event, &event, &rule.sum);
                pending.captured += 1;
                pending
            }
        };
        if batch_size(&merged.event) >= u64::from(rule.max_size) {
            self.order.retain(|k| k != &rule.key);
            Some(merged)
        } else {
            self.pending.insert(rule.key, merged);
            None
        }
    }

    /// Releases every pending merged event (flush interval, flush, shutdown).
    pub fn drain(&mut self) -> Vec<Outgoing> {
        let order = std::mem::take(&mut self.order);
        order
            .into_iter()
            .filter_map(|k| self.pending.remove(&k))
            .collect()
    }

    /// How many captured events wait inside pending merges.
    pub fn pending_captured(&self) -> u64 {
        self.pending.values().map(|p| p.captured).sum()
    }
}

/// `batch_size` and the summed properties must add up, so they are never rounded.
fn mark_exact(event: &mut Event, sum: &[String]) {
    if !event.properties.contains_key(BATCH_SIZE) {
        event.properties.insert(BATCH_SIZE.into(), Value::from(1));
    }
    event.kinds.insert(BATCH_SIZE.into(), PropertyKind::Exact);
    for key in sum {
        event.kinds.insert(key.clone(), PropertyKind::Exact);
    }
}

fn batch_size(event: &Event) -> u64 {
    event
        .properties
        .get(BATCH_SIZE)
        .and_then(Value::as_u64)
        .unwrap_or(1)
}

fn merge_into(into: &mut Event, other: &Event, sum: &[String]) {
    let size = batch_size(into) + batch_size(other);
    into.properties.insert(BATCH_SIZE.into(), Value::from(size));
    for key in sum {
        let total = add(into.properties.get(key), other.properties.get(key));
        if let Some(total) = total {
            into.properties.insert(key.clone(), total);
        }
    }
}

/// Adds two JSON numbers: integers stay integers, anything else becomes a float; a missing
/// or non-numeric side counts as absent.
fn add(a: Option<&Value>, b: Option<&Value>) -> Option<Value> {
    let (a, b) = match (a.and_then(Value::as_number), b.and_then(Value::as_number)) {
        (Some(a), Some(b)) => (a, b),
        (Some(n), None) | (None, Some(n)) => return Some(Value::Number(n.clone())),
        (None, None) => return None,
    };
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        if let Some(s) = x.checked_add(y) {
            return Some(Value::from(s));
        }
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        if let Some(s) = x.checked_add(y) {
            return Some(Value::from(s));
        }
    }
    let s = a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0);
    Number::from_f64(s).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_event(n: i64) -> Event {
        Event::new("add").exact("n", n).batched("k", 3, &["n"])
    }

    #[test]
    fn unbatched_events_pass_straight_through() {
        let mut b = Batcher::default();
        let out = b.offer(Event::new("start")).unwrap();
        assert_eq!(out.captured, 1);
        assert!(!out.event.properties.contains_key(BATCH_SIZE));
    }

    #[test]
    fn drain_releases_partial_merges_with_exact_sums() {
        let mut b = Batcher::default();
        b.offer(add_event(1));
        b.offer(add_event(2));
        b.offer(add_event(3));
        assert_eq!(b.pending_captured(), 2);
        let drained = b.drain();
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].captured, 2);
        assert_eq!(drained[0].event.properties["n"], 5);
        assert_eq!(drained[0].event.properties[BATCH_SIZE], 2);
        assert_eq!(drained[0].event.kinds["n"], PropertyKind::Exact);
        assert!(b.drain().is_empty());
        assert_eq!(b.pending_captured(), 0);
    }

    #[test]
    fn max_size_one_never_merges() {
        let mut b = Batcher::default();
        for _ in 0..3 {
            let e = Event::new("q").batched("k", 1, &[]);
            assert!(b.offer(e).is_some());
        }
    }

    #[test]
    fn sums_overflowing_i64_fall_back_to_floats_instead_of_wrapping() {
        let v = add(Some(&Value::from(i64::MAX)), Some(&Value::from(i64::MAX))).unwrap();
        assert!(v.as_f64().unwrap() > 1.8e19);
    }
}
