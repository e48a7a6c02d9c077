//! Helpers shared by the integration tests.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Every path under `root`, without following symbolic links: tests compare it before
/// and after to prove that something wrote nothing.
pub fn listing(root: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            }
            found.insert(entry.path());
        }
    }
    found
}
