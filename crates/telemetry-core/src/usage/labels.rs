//! A family's label sets: an append-only table from label values to a cell, lock-free.
//!
//! In: the label values of one recording (`["GET /collections", "200"]`). Out: the cell
//! that key records into, made on its first use. Looking a key up takes no lock and
//! allocates nothing; only the first use of a key allocates. The table never shrinks and
//! holds at most its family's `max_keys` label sets: later new keys all record into one
//! overflow cell (labels `"__other__"`), so a host that labels by an unbounded value (a
//! user id, say) gets a bounded table and a visible sign, not unbounded memory.
//!
//! ```
//! use telemetry_core::usage::labels::LabelTable;
//! let table: LabelTable<std::sync::atomic::AtomicU64> = LabelTable::new(2, 4);
//! let a = table.get_or_insert(&["GET /a", "200"]);
//! assert!(std::ptr::eq(a, table.get_or_insert(&["GET /a", "200"])));
//! assert_eq!(table.len(), 1);
//! ```

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The label value every position of the overflow key holds.
pub const OVERFLOW_LABEL: &str = "__other__";

/// One label set and its cell.
#[derive(Debug)]
pub struct Keyed<C> {
    /// The label values, in the family's label order.
    pub values: Box<[String]>,
    /// The cell recordings with these values go to.
    pub cell: Arc<C>,
}

/// One place in the table: empty, or a key set once and never changed.
type Slot<C> = OnceLock<Box<Keyed<C>>>;

/// Label values to cells; see the module documentation.
#[derive(Debug)]
pub struct LabelTable<C> {
    arity: usize,
    max_keys: usize,
    slots: OnceLock<Box<[Slot<C>]>>,
    len: AtomicUsize,
    overflow: Slot<C>,
}

impl<C: Default> LabelTable<C> {
    /// A table for label sets of `arity` values, holding at most `max_keys` of them. The
    /// slots are allocated on the first insert (twice `max_keys`, so probes stay short).
    pub fn new(arity: usize, max_keys: usize) -> Self {
        LabelTable {
            arity,
            max_keys: max_keys.max(1),
            slots: OnceLock::new(),
            len: AtomicUsize::new(0),
            overflow: OnceLock::new(),
        }
    }

    /// How many label values each key has.
    pub fn arity(&self) -> usize {
        self.arity
    }

    /// The number of distinct label sets held (the overflow key not included).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire).min(self.max_keys)
    }

    /// Whether no label set was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.overflow.get().is_none()
    }

    /// The cell of `values`, made on first use. `values` must have the table's arity
    /// (the family checks it before calling).
    pub fn get_or_insert(&self, values: &[&str]) -> &Arc<C> {
        debug_assert_eq!(values.len(), self.arity);
        let slots = self.slots.get_or_init(|| {
            (0..self.max_keys * 2)
                .map(|_| OnceLock::new())
                .collect::<Vec<_>>()
                .into_boxed_slice()
        });
        let mask = slots.len();
        let mut i = (hash(values) as usize) % mask;
        for _ in 0..mask {
            let slot = &slots[i];
            if let Some(k) = slot.get() {
                if same(&k.values, values) {
                    return &k.cell;
                }
            } else {
                // Claim a key's place only while there is room; past that, the overflow.
                if self.len.fetch_add(1, Ordering::AcqRel) >= self.max_keys {
                    self.len.fetch_sub(1, Ordering::AcqRel);
                    return self.overflow();
                }
                let mut inserted = false;
                let k = slot.get_or_init(|| {
                    inserted = true;
                    Box::new(Keyed {
                        values: values.iter().map(|v| v.to_string()).collect(),
                        cell: Arc::new(C::default()),
                    })
                });
                if !inserted {
                    // Another thread filled this slot first: our claim was not used.
                    self.len.fetch_sub(1, Ordering::AcqRel);
                }
                if same(&k.values, values) {
                    return &k.cell;
                }
            }
            i = (i + 1) % mask;
        }
        self.overflow()
    }

    fn overflow(&self) -> &Arc<C> {
        &self
            .overflow
            .get_or_init(|| {
                Box::new(Keyed {
                    values: vec![OVERFLOW_LABEL.to_string(); self.arity].into_boxed_slice(),
                    cell: Arc::new(C::default()),
                })
            })
            .cell
    }

    /// Every label set with its cell, in no particular order; the overflow key last.
    /// Recorders may add keys meanwhile: they are seen or not, never half made.
    pub fn entries(&self) -> impl Iterator<Item = &Keyed<C>> {
        self.slots
            .get()
            .into_iter()
            .flat_map(|s| s.iter().filter_map(|slot| slot.get().map(|b| &**b)))
            .chain(self.overflow.get().map(|b| &**b))
    }
}

fn same(stored: &[String], values: &[&str]) -> bool {
    stored.len() == values.len() && stored.iter().zip(values).all(|(a, b)| a == b)
}

fn hash(values: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for v in values {
        v.hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    #[test]
    fn keys_beyond_the_limit_share_the_overflow_cell() {
        let t: LabelTable<AtomicU64> = LabelTable::new(1, 3);
        for v in ["a", "b", "c", "d", "e"] {
            t.get_or_insert(&[v]).fetch_add(1, Ordering::Relaxed);
        }
        assert_eq!(t.len(), 3);
        let over = t
            .entries()
            .find(|k| &*k.values[0] == OVERFLOW_LABEL)
            .unwrap();
        assert_eq!(over.cell.load(Ordering::Relaxed), 2);
        // A key already held still gets its own cell.
        assert_eq!(t.get_or_insert(&["a"]).load(Ordering::Relaxed), 1);
    }

    #[test]
    fn racing_threads_agree_on_one_cell_per_key() {
        let t: Arc<LabelTable<AtomicU64>> = Arc::new(LabelTable::new(2, 64));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        let k = format!("k{}", i % 50);
                        t.get_or_insert(&[&k, "x"]).fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        assert_eq!(t.len(), 50);
        let total: u64 = t.entries().map(|k| k.cell.load(Ordering::Relaxed)).sum();
        assert_eq!(total, 8000);
    }
}
