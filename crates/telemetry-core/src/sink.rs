//! Where prepared events go: PostHog over HTTP, a JSON-lines file, stderr, or memory.
//!
//! A sink makes one delivery attempt; retries, backoff and accounting live in the worker,
//! so every sink gets the same guarantees.
//!
//! ```
//! use telemetry_core::sink::MemorySink;
//! let memory = MemorySink::new();
//! assert!(memory.events().is_empty());
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// Which sink a client delivers to.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// PostHog's batch API at the client's endpoint.
    PostHog,
    /// Appends each event as one JSON line; synced on flush.
    File(PathBuf),
    /// Prints each payload to stderr and sends nothing (`TELEMETRY_DEBUG=1`).
    Debug,
    /// Keeps payloads in memory, for tests.
    Memory(MemorySink),
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Whether trying again may help (network errors, 408, 429, 5xx).
    pub retryable: bool,
    /// The server's `Retry-After`, if it gave one.
    pub retry_after: Option<Duration>,
    /// What went wrong, without secrets.
    pub message: String,
}

impl SendError {
    /// A failure that retrying will not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        SendError {
            retryable: false,
            retry_after: None,
            message: message.into(),
        }
    }

    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        SendError {
            retryable: true,
            retry_after: None,
            message: message.into(),
        }
    }
}

/// One delivery attempt of a batch of prepared (anonymized, PostHog-shaped) events.
pub trait Sink: Send {
    /// Delivers `batch` within `timeout`.
    fn send(&mut self, batch: &[Value], timeout: Duration) -> Result<(), SendError>;

    /// Makes delivered events durable (file sink); called on flush and shutdown.
    fn sync(&mut self) {}
}

/// A sink that keeps every delivered batch, shareable with the test that reads it.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    batches: Arc<Mutex<Vec<Vec<Value>>>>,
}

impl MemorySink {
    /// An empty memory sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every delivered event, in delivery order.
    pub fn events(&self) -> Vec<Value> {
        self.lock().iter().flatten().cloned().collect()
    }

    /// Every delivered batch, as sent.
    pub fn batches(&self) -> Vec<Vec<Value>> {
        self.lock().clone()
    }

    /// Forgets what was delivered.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Value>>> {
        // A panic while holding this lock cannot leave the Vec half-written.
        self.batches.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Sink for MemorySink {
    fn send(&mut self, batch: &[Value], _timeout: Duration) -> Result<(), SendError> {
        self.lock().push(batch.to_vec());
        Ok(())
    }
}

/// Prints payloads to stderr, never stdout: a host's stdout may be its protocol.
#[derive(Debug, Default)]
pub struct DebugSink;

impl Sink for DebugSink {
    fn send(&mut self, batch: &[Value], _timeout: Duration) -> Result<(), SendError> {
        let mut err = std::io::stderr().lock();
        for event in batch {
            let text = serde_json::to_string_pretty(event).unwrap_or_default();
            // A closed stderr must not become an error of the host.
            let _ = writeln!(err, "[telemetry debug] would send:\n{text}");
        }
        Ok(())
    }
}

/// Appends JSON lines to a file opened on the first delivery.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: Option<File>,
}

impl FileSink {
    /// A sink writing to `path`; nothing is created until an event is delivered.
    pub fn new(path: PathBuf) -> Self {
        FileSink { path, file: None }
    }
}

impl Sink for FileSink {
    fn send(&mut self, batch: &[Value], _timeout: Duration) -> Result<(), SendError> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| {
                    SendError::transient(format!("cannot open {}: {e}", self.path.display()))
                })?;
            self.file = Some(file);
        }
        let mut text = Vec::with_capacity(batch.len() * 256);
        for event in batch {
            serde_json::to_writer(&mut text, event)
                .map_err(|e| SendError::permanent(format!("cannot encode event: {e}")))?;
            text.push(b'\n');
        }
        let file = self.file.as_mut().expect("opened above");
        // One write_all of whole lines keeps concurrent appenders from interleaving lines.
        file.write_all(&text)
            .map_err(|e| SendError::transient(format!("cannot write {}: {e}", self.path.display())))
    }

    fn sync(&mut self) {
        if let Some(file) = &self.file {
            let _ = file.sync_data();
        }
    }
}
