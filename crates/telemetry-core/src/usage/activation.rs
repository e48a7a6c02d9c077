//! What a recording does besides counting: on an enabled client, the first recording (in
//! this process, after a fork too) starts the client's worker, which sends the usage
//! report home. Opted out, or without a client, nothing ever starts.
//!
//! In: every recording's touch. Out: at most one call per process generation into the
//! client that owns the registry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, Weak};

/// The client side that a first recording wakes.
pub(crate) trait Starter: Send + Sync {
    /// Starts the pipeline if it is not running in this process (idempotent, lock-free).
    fn start_worker(&self);
}

/// Shared by every handle of one registry.
pub(crate) struct Activation {
    /// True only for a registry owned by an enabled client.
    armed: bool,
    /// The fork generation plus one of the last start; 0 before any.
    started: AtomicU64,
    starter: OnceLock<Weak<dyn Starter>>,
}

impl std::fmt::Debug for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activation")
            .field("armed", &self.armed)
            .finish()
    }
}

impl Activation {
    /// An activation that never starts anything (opted out, or no client).
    pub fn inert() -> Self {
        Activation {
            armed: false,
            started: AtomicU64::new(0),
            starter: OnceLock::new(),
        }
    }

    /// An activation that starts `starter`'s worker on the first recording.
    pub fn armed() -> Self {
        Activation {
            armed: true,
            ..Activation::inert()
        }
    }

    /// Connects the client (once, right after it is built).
    pub fn connect(&self, starter: Weak<dyn Starter>) {
        let _ = self.starter.set(starter);
    }

    /// Called by every recording: two relaxed loads when nothing needs doing.
    #[inline]
    pub fn touch(&self) {
        if self.armed {
            let generation = crate::client::fork_generation() + 1;
            if self.started.load(Ordering::Relaxed) != generation {
                self.activate(generation);
            }
        }
    }

    #[cold]
    fn activate(&self, generation: u64) {
        if let Some(starter) = self.starter.get().and_then(Weak::upgrade) {
            starter.start_worker();
        }
        self.started.store(generation, Ordering::Relaxed);
    }
}
