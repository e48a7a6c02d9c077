//! The install identity: reuse of existing ids, exactly one id under concurrency, and
//! in-memory fallbacks that never overwrite what is on disk.

mod common;
use common::listing;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use telemetry_core::env::MapEnvironment;
use telemetry_core::identity::{self, Identity};
use telemetry_core::profile::{GenericProfile, Profile};
use uuid::Uuid;

/// Set in child processes started by `child_processes_agree_on_one_id`.
const CHILD_HOME: &str = "TELEMETRY_IDENTITY_TEST_CHILD_HOME";

fn home(root: &Path) -> MapEnvironment {
    MapEnvironment::new().with("HOME", root)
}

fn chroma_dir(root: &Path) -> PathBuf {
    root.join(".cache/chroma")
}

#[test]
fn chroma_reuses_an_existing_id_and_writes_a_secret_beside_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = chroma_dir(root.path());
    fs::create_dir_all(&dir).unwrap();
    // Chroma writes the bare UUID, without a newline.
    let existing = "5f1b9b2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
    fs::write(dir.join("telemetry_user_id"), existing).unwrap();

    let (id, warning) = identity::load_or_create(&Profile::Chroma, &home(root.path()));
    assert_eq!(warning, None);
    assert_eq!(id.install_id().to_string(), existing);
    assert_eq!(
        id.stored_at(),
        Some(dir.join("telemetry_user_id").as_path())
    );
    assert_eq!(
        fs::read_to_string(dir.join("telemetry_user_id")).unwrap(),
        existing
    );

    let secret = fs::read_to_string(dir.join("telemetry_secret")).unwrap();
    let hex = secret.trim_end();
    assert_eq!(hex.len(), 64);
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    let expected: String = id.secret().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, expected);

    let (again, _) = identity::load_or_create(&Profile::Chroma, &home(root.path()));
    assert_eq!(again.install_id(), id.install_id());
    assert_eq!(again.secret(), id.secret());
}

#[cfg(unix)]
#[test]
fn the_secret_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    identity::load_or_create(&Profile::Chroma, &home(root.path()));
    let mode = fs::metadata(chroma_dir(root.path()).join("telemetry_secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_new_id_is_a_random_v4_uuid_in_the_profile_state_dir() {
    let root = tempfile::tempdir().unwrap();
    let profile = Profile::Generic(GenericProfile::new("acme"));
    let (id, warning) = identity::load_or_create(&profile, &home(root.path()));
    assert_eq!(warning, None);
    assert_eq!(id.install_id().get_version_num(), 4);
    let path = root.path().join(".local/state/acme/telemetry_user_id");
    assert_eq!(id.stored_at(), Some(path.as_path()));
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("{}\n", id.install_id())
    );
}

#[test]
fn qdrant_and_unstored_profiles_create_nothing() {
    let root = tempfile::tempdir().unwrap();
    let env = home(root.path());
    let unstored = Profile::Generic(GenericProfile {
        persist_id: false,
        ..GenericProfile::new("acme")
    });
    for profile in [Profile::Qdrant, unstored] {
        let (first, warning) = identity::load_or_create(&profile, &env);
        let (second, _) = identity::load_or_create(&profile, &env);
        assert_eq!(warning, None);
        assert_ne!(first.install_id(), second.install_id());
        assert_ne!(first.secret(), second.secret());
        assert_eq!(first.stored_at(), None);
        assert_eq!(identity::peek(&profile, &env), None);
        assert!(!identity::reset(&profile, &env).unwrap());
    }
    assert!(listing(root.path()).is_empty());
}

#[test]
fn eight_threads_agree_on_one_id() {
    let root = tempfile::tempdir().unwrap();
    let env = home(root.path());
    let barrier = std::sync::Barrier::new(8);
    let identities: Vec<Identity> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let (id, warning) = identity::load_or_create(&Profile::Chroma, &env);
                    assert_eq!(warning, None);
                    id
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for id in &identities {
        assert_eq!(id.install_id(), identities[0].install_id());
        assert_eq!(id.secret(), identities[0].secret());
    }
    // No temporary files are left behind.
    let names: BTreeSet<_> = fs::read_dir(chroma_dir(root.path()))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["telemetry_secret".into(), "telemetry_user_id".into()])
    );
}

/// Not a test of its own: the body of each child process of the test below.
#[test]
fn child_load_or_create() {
    let Ok(root) = std::env::var(CHILD_HOME) else {
        return;
    };
    let (id, warning) = identity::load_or_create(&Profile::Chroma, &home(Path::new(&root)));
    assert_eq!(warning, None);
    println!("install-id={}", id.install_id());
}

#[test]
fn child_processes_agree_on_one_id() {
    let root = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "child_load_or_create", "--nocapture"])
                .env(CHILD_HOME, root.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ids: BTreeSet<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "{output:?}");
            let stdout = String::from_utf8(output.stdout).unwrap();
            let line = stdout
                .lines()
                .find_map(|l| l.strip_prefix("install-id="))
                .unwrap_or_else(|| panic!("no id in {stdout:?}"));
            line.to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let stored = identity::peek(&Profile::Chroma, &home(root.path())).unwrap();
    assert_eq!(ids.first().unwrap(), &stored.to_string());
}

#[test]
fn a_corrupt_id_gives_an_ephemeral_identity_and_is_left_untouched() {
    let root = tempfile::tempdir().unwrap();
    let dir = chroma_dir(root.path());
    fs::create_dir_all(&dir).unwrap();
    let id_path = dir.join("telemetry_user_id");
    fs::write(&id_path, "not-a-uuid\n").unwrap();

    let (id, warning) = identity::load_or_create(&Profile::Chroma, &home(root.path()));
    let warning = warning.expect("a warning");
    assert!(
        warning.contains(&id_path.display().to_string()),
        "{warning}"
    );
    assert!(warning.contains("corrupt"), "{warning}");
    assert_eq!(id.stored_at(), None);
    assert_eq!(fs::read_to_string(&id_path).unwrap(), "not-a-uuid\n");
    assert!(!dir.join("telemetry_secret").exists());
    assert_eq!(identity::peek(&Profile::Chroma, &home(root.path())), None);
}

#[test]
fn a_corrupt_secret_gives_an_ephemeral_identity_and_is_left_untouched() {
    let root = tempfile::tempdir().unwrap();
    let dir = chroma_dir(root.path());
    fs::create_dir_all(&dir).unwrap();
    let stored = Uuid::new_v4();
    fs::write(dir.join("telemetry_user_id"), stored.to_string()).unwrap();
    fs::write(dir.join("telemetry_secret"), "abc123\n").unwrap();

    let (id, warning) = identity::load_or_create(&Profile::Chroma, &home(root.path()));
    let warning = warning.expect("a warning");
    assert!(warning.contains("telemetry_secret"), "{warning}");
    assert_ne!(id.install_id(), stored);
    assert_eq!(
        fs::read_to_string(dir.join("telemetry_secret")).unwrap(),
        "abc123\n"
    );
}

#[test]
fn an_unusable_state_dir_gives_an_ephemeral_identity() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join(".cache");
    fs::create_dir_all(&cache).unwrap();
    let env = home(root.path());

    // A file where the directory should be.
    fs::write(cache.join("chroma"), "a file").unwrap();
    let (id, warning) = identity::load_or_create(&Profile::Chroma, &env);
    let warning = warning.expect("a warning");
    assert!(
        warning.contains(&cache.join("chroma").display().to_string()),
        "{warning}"
    );
    assert_eq!(id.stored_at(), None);
    assert_eq!(fs::read_to_string(cache.join("chroma")).unwrap(), "a file");

    // A dangling symbolic link there instead.
    fs::remove_file(cache.join("chroma")).unwrap();
    std::os::unix::fs::symlink(root.path().join("nowhere"), cache.join("chroma")).unwrap();
    let (_, warning) = identity::load_or_create(&Profile::Chroma, &env);
    assert!(warning.is_some());
    assert!(!root.path().join("nowhere").exists());

    // The id file itself is a directory.
    fs::remove_file(cache.join("chroma")).unwrap();
    fs::create_dir_all(cache.join("chroma/telemetry_user_id")).unwrap();
    let (_, warning) = identity::load_or_create(&Profile::Chroma, &env);
    assert!(warning.unwrap().contains("is a directory"));
}

#[test]
fn no_home_gives_an_ephemeral_identity_with_a_warning() {
    let (id, warning) = identity::load_or_create(&Profile::Chroma, &MapEnvironment::new());
    assert!(warning.unwrap().contains("home"));
    assert_eq!(id.stored_at(), None);
    assert_eq!(
        identity::peek(&Profile::Chroma, &MapEnvironment::new()),
        None
    );
    assert!(!identity::reset(&Profile::Chroma, &MapEnvironment::new()).unwrap());
}

#[test]
fn peek_creates_nothing_and_sees_what_load_stored() {
    let root = tempfile::tempdir().unwrap();
    let env = home(root.path());
    assert_eq!(identity::peek(&Profile::Chroma, &env), None);
    assert!(listing(root.path()).is_empty());
    let (id, _) = identity::load_or_create(&Profile::Chroma, &env);
    assert_eq!(
        identity::peek(&Profile::Chroma, &env),
        Some(id.install_id())
    );
}

#[test]
fn reset_deletes_and_the_next_load_makes_a_new_id() {
    let root = tempfile::tempdir().unwrap();
    let env = home(root.path());
    assert!(!identity::reset(&Profile::Chroma, &env).unwrap());
    let (first, _) = identity::load_or_create(&Profile::Chroma, &env);
    assert!(identity::reset(&Profile::Chroma, &env).unwrap());
    assert_eq!(identity::peek(&Profile::Chroma, &env), None);
    assert!(!chroma_dir(root.path()).join("telemetry_secret").exists());
    let (second, _) = identity::load_or_create(&Profile::Chroma, &env);
    assert_ne!(first.install_id(), second.install_id());
    assert_ne!(first.secret(), second.secret());
}

#[test]
fn debug_never_shows_the_secret() {
    let id = Identity::from_parts(Uuid::nil(), [0xab; 32]);
    let shown = format!("{id:?}");
    assert!(shown.contains("00000000-0000-0000-0000-000000000000"));
    assert!(!shown.contains("171") && !shown.contains("ab"), "{shown}");
    assert_eq!(id.secret(), &[0xab; 32]);
    assert_eq!(id.stored_at(), None);
    let e = Identity::ephemeral();
    assert_eq!(e.install_id().get_version_num(), 4);
    assert_ne!(e.secret(), Identity::ephemeral().secret());
}
