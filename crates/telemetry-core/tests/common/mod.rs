//! Helpers shared by the integration tests.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Every path under `root`, without following symbolic links: tests compare it before
/// and after to prove that something wrote nothing.
#[allow(dead_code)] // not every test binary that includes this module uses it
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

/// A client builder that reads nothing of this machine's environment but `HOME` (a test's
/// temporary directory, which also serves as working directory) and delivers to `memory`.
#[allow(dead_code)] // not every test binary that includes this module builds clients
pub fn isolated_builder(
    product: &str,
    version: &str,
    home: &Path,
    memory: &telemetry_core::sink::MemorySink,
) -> telemetry_core::ClientBuilder {
    telemetry_core::Client::builder(product, version)
        .environment(telemetry_core::env::MapEnvironment::new().with("HOME", home))
        .working_dir(home)
        .sink(telemetry_core::sink::SinkConfig::Memory(memory.clone()))
}
