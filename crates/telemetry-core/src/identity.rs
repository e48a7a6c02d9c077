//! Identity: the install id sent as `distinct_id`, and the secret of the keyed hash.
//!
//! The install id is a random UUIDv4 — never derived from hardware, user or host names —
//! and the secret is 32 random bytes that never leave the machine. Profiles that store
//! them keep both side by side (Chroma: `~/.cache/chroma/telemetry_user_id`, reusing an
//! id Chroma already wrote); others make them anew in every process.
//!
//! Nothing here touches the disk unless called: the client calls [`load_or_create`] only
//! once telemetry is on and the first event is captured. Every failure falls back to an
//! in-memory identity and one warning; nothing panics, and a file that does not look
//! right is left alone rather than overwritten.
//!
//! ```
//! use telemetry_core::env::MapEnvironment;
//! use telemetry_core::identity;
//! use telemetry_core::profile::Profile;
//!
//! // Qdrant makes a new id every process and stores nothing.
//! let env = MapEnvironment::new().with("HOME", "/nonexistent");
//! let (id, warning) = identity::load_or_create(&Profile::Qdrant, &env);
//! assert!(warning.is_none());
//! assert!(id.stored_at().is_none());
//! assert_eq!(id.install_id().get_version_num(), 4);
//! assert!(!format!("{id:?}").contains(&format!("{:?}", id.secret())));
//! ```

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::consent::{read_bounded, temp_file_name, Bounded};
use crate::env::Environment;
use crate::profile::{IdLocation, Profile};

/// Largest id or secret file read; both hold one short line.
const MAX_FILE_BYTES: u64 = 1024;

/// The install id and the secret of the keyed hash.
#[derive(Clone)]
pub struct Identity {
    install_id: Uuid,
    secret: [u8; 32],
    stored_at: Option<PathBuf>,
}

impl fmt::Debug for Identity {
    /// Shows the id and where it is stored, never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("install_id", &self.install_id)
            .field("secret", &"<redacted>")
            .field("stored_at", &self.stored_at)
            .finish()
    }
}

impl Identity {
    /// A fresh random identity kept only in memory.
    pub fn ephemeral() -> Identity {
        Identity {
            install_id: new_install_id(),
            secret: random_bytes(),
            stored_at: None,
        }
    }

    /// An identity from known parts (tests, vectors); not stored anywhere.
    pub fn from_parts(install_id: Uuid, secret: [u8; 32]) -> Identity {
        Identity {
            install_id,
            secret,
            stored_at: None,
        }
    }

    /// The install id sent as `distinct_id`.
    pub fn install_id(&self) -> Uuid {
        self.install_id
    }

    /// The keyed-hash secret; never sent.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The id file's path when the identity is stored; `None` for in-memory identities.
    pub fn stored_at(&self) -> Option<&Path> {
        self.stored_at.as_deref()
    }
}

/// Random bytes from the operating system. Should the OS source ever fail (supported
/// systems do not, once booted), std's randomly keyed hasher mixed with the clock is the
/// fallback: weaker, but a panic in the host would be worse.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if getrandom::getrandom(&mut bytes).is_err() {
        use std::hash::{BuildHasher, Hasher};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for chunk in bytes.chunks_mut(8) {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u128(nanos);
            let word = hasher.finish().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
    bytes
}

fn new_install_id() -> Uuid {
    uuid::Builder::from_random_bytes(random_bytes()).into_uuid()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_secret(text: &str) -> Option<[u8; 32]> {
    crate::anonymize::from_hex_secret(text).ok()
}

fn parse_id(text: &str) -> Option<Uuid> {
    Uuid::try_parse(text.trim()).ok()
}

/// Loads the profile's identity, creating it if needed. Call only when telemetry is on.
/// Returns a warning when it had to fall back to an in-memory identity.
///
/// When several processes start at once, each writes its candidate to a temporary file
/// and hard-links it into place; linking fails if the file already exists, so exactly one
/// candidate wins and everyone re-reads the winner. A Chroma id file without a secret
/// keeps its id and gets a secret written beside it (mode 0600 on unix).
pub fn load_or_create(profile: &Profile, env: &dyn Environment) -> (Identity, Option<String>) {
    match profile.id_location(env) {
        IdLocation::PerProcess => (Identity::ephemeral(), None),
        IdLocation::Unavailable => (
            Identity::ephemeral(),
            Some(
                "no home directory is known (set HOME): the install id is kept in memory \
                 for this process only"
                    .to_string(),
            ),
        ),
        IdLocation::Files { id, secret } => match load_files(&id, &secret) {
            Ok(identity) => (identity, None),
            Err(problem) => (
                Identity::ephemeral(),
                Some(format!(
                    "{problem}: the install id is kept in memory for this process only"
                )),
            ),
        },
    }
}

fn load_files(id_path: &Path, secret_path: &Path) -> Result<Identity, String> {
    let install_id = load_or_store(id_path, &|| new_install_id().to_string(), &parse_id, false)?;
    let secret = load_or_store(
        secret_path,
        &|| hex(&random_bytes::<32>()),
        &parse_secret,
        true,
    )?;
    Ok(Identity {
        install_id,
        secret,
        stored_at: Some(id_path.to_path_buf()),
    })
}

/// Reads `path`, or creates it with `make()` when it is missing, and parses the result.
/// Errors are warnings that name the path and the problem.
fn load_or_store<T>(
    path: &Path,
    make: &dyn Fn() -> String,
    parse: &dyn Fn(&str) -> Option<T>,
    private: bool,
) -> Result<T, String> {
    let shown = path.display();
    let parsed = |content: Vec<u8>| {
        let text = String::from_utf8_lossy(&content);
        parse(&text).ok_or_else(|| format!("{shown} is corrupt (left untouched)"))
    };
    match read_bounded(path, MAX_FILE_BYTES) {
        Bounded::Content(content) => return parsed(content),
        Bounded::Problem(problem) => return Err(format!("{shown} {problem}")),
        Bounded::Missing => {}
    }
    let dir = path
        .parent()
        .ok_or_else(|| format!("{shown} has no parent directory"))?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    create_exclusive(path, dir, &make(), private)
        .map_err(|e| format!("cannot write {shown}: {e}"))?;
    // Whether this process or a concurrent one won, the file on disk is the truth.
    match read_bounded(path, MAX_FILE_BYTES) {
        Bounded::Content(content) => parsed(content),
        Bounded::Problem(problem) => Err(format!("{shown} {problem}")),
        Bounded::Missing => Err(format!("{shown} vanished right after it was written")),
    }
}

/// Puts `content` at `path` unless something is already there, atomically: the file is
/// complete before it becomes visible, and of several concurrent writers only one wins
/// (the others see `AlreadyExists`, which is success for them: they read the winner).
fn create_exclusive(path: &Path, dir: &Path, content: &str, private: bool) -> io::Result<()> {
    let base = path.file_name().map_or_else(
        || "telemetry".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let tmp = dir.join(temp_file_name(&base));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The secret is readable by its owner only; the id keeps the usual umask, as
        // Chroma's does.
        if private {
            options.mode(0o600);
        }
    }
    #[cfg(not(unix))]
    let _ = private;
    // Only a file this call created may be removed afterwards: a name clash with another
    // process's temporary file (same pid in another PID namespace) must not delete it.
    let mut file = options.open(&tmp)?;
    let result = file
        .write_all(content.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .and_then(|()| match fs::hard_link(&tmp, path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        });
    // The temporary name is only a stepping stone, linked or not.
    let _ = fs::remove_file(&tmp);
    result
}

/// The stored install id, if the id file exists and holds a UUID; never creates anything.
pub fn peek(profile: &Profile, env: &dyn Environment) -> Option<Uuid> {
    let IdLocation::Files { id, .. } = profile.id_location(env) else {
        return None;
    };
    match read_bounded(&id, MAX_FILE_BYTES) {
        Bounded::Content(content) => parse_id(&String::from_utf8_lossy(&content)),
        Bounded::Missing | Bounded::Problem(_) => None,
    }
}

/// The identity a sink that stores nothing uses (memory, debug): the stored one when both
/// files are valid; the stored id with a secret kept in memory when only the id exists
/// (Chroma's own `telemetry_user_id`, before any secret was made beside it); else a new
/// one in memory. Never creates anything.
pub fn reuse_without_storing(profile: &Profile, env: &dyn Environment) -> Identity {
    load_existing(profile, env)
        .or_else(|| peek(profile, env).map(|id| Identity::from_parts(id, random_bytes())))
        .unwrap_or_else(Identity::ephemeral)
}

/// The stored identity (id and secret) when both files exist and are valid; never creates
/// anything. `telemetry preview` uses it to show the hashes this install really sends.
pub fn load_existing(profile: &Profile, env: &dyn Environment) -> Option<Identity> {
    let IdLocation::Files { id, secret } = profile.id_location(env) else {
        return None;
    };
    let read = |path: &Path| match read_bounded(path, MAX_FILE_BYTES) {
        Bounded::Content(content) => Some(String::from_utf8_lossy(&content).into_owned()),
        Bounded::Missing | Bounded::Problem(_) => None,
    };
    Some(Identity {
        install_id: parse_id(&read(&id)?)?,
        secret: parse_secret(&read(&secret)?)?,
        stored_at: Some(id),
    })
}

/// Deletes the stored id and secret; true when something was deleted. Profiles that
/// store nothing give `Ok(false)`.
pub fn reset(profile: &Profile, env: &dyn Environment) -> io::Result<bool> {
    let IdLocation::Files { id, secret } = profile.id_location(env) else {
        return Ok(false);
    };
    let mut deleted = false;
    for path in [id, secret] {
        match fs::remove_file(&path) {
            Ok(()) => deleted = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}
