//! CONTRACT STUB — being implemented by a helper; signatures are fixed.
#![allow(missing_docs)] // stub only: the real module documents everything
use std::path::Path;

use uuid::Uuid;

use crate::env::Environment;
use crate::profile::Profile;

/// The install id and the secret of the keyed hash.
#[derive(Clone)]
pub struct Identity {
    install_id: Uuid,
    secret: [u8; 32],
}

impl Identity {
    /// A fresh random identity kept only in memory.
    pub fn ephemeral() -> Identity {
        unimplemented!()
    }
    /// An identity from known parts (tests, vectors).
    pub fn from_parts(install_id: Uuid, secret: [u8; 32]) -> Identity {
        Identity { install_id, secret }
    }
    /// The install id sent as `distinct_id`.
    pub fn install_id(&self) -> Uuid {
        self.install_id
    }
    /// The keyed-hash secret; never sent.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
    /// Where it is stored, if it is.
    pub fn stored_at(&self) -> Option<&Path> {
        None
    }
}

/// Loads the profile's identity, creating it if needed. Call only when telemetry is on.
/// Returns a warning when it had to fall back to an in-memory identity.
pub fn load_or_create(_profile: &Profile, _env: &dyn Environment) -> (Identity, Option<String>) {
    unimplemented!()
}

/// The stored install id, if one exists; never creates anything.
pub fn peek(_profile: &Profile, _env: &dyn Environment) -> Option<Uuid> {
    unimplemented!()
}

/// Deletes the stored id and secret; true when something was deleted.
pub fn reset(_profile: &Profile, _env: &dyn Environment) -> std::io::Result<bool> {
    unimplemented!()
}
