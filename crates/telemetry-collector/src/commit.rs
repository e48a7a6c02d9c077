//! Group commit: the requests that arrive while one transaction is being
//! written share the next one.
//!
//! Every ingest request hands its validated [`Batch`] to one writer thread and
//! waits for the answer. The writer takes *everything* queued, stores it in one
//! transaction (one commit, one fsync) and answers each request. Under light
//! load a group is one request, so latency stays one commit; under heavy load a
//! group is hundreds, so throughput grows with load while "200 means on disk"
//! still holds for every one of them.
//!
//! A group that fails for a reason a retry can cure (database unreachable,
//! locked, full) fails every request in it with a transient error (503). A group
//! that fails otherwise is retried request by request, so one request the
//! database refuses cannot fail its neighbours.
//!
//! The queue is bounded (in events): beyond [`MAX_QUEUED_EVENTS`] new requests
//! are refused at once as overloaded, so memory stays bounded when the database
//! is slower than the senders.
//!
//! ```
//! use std::sync::Arc;
//! use telemetry_collector::store::{Batch, Store};
//! use telemetry_collector::commit::GroupCommit;
//! use telemetry_collector::ingest::{parse, Endpoint};
//!
//! let store = Arc::new(Store::open(":memory:").unwrap());
//! let commit = GroupCommit::start(Arc::clone(&store)).unwrap();
//! let events = parse(Endpoint::Capture,
//!     br#"{"api_key": "k", "event": "started", "distinct_id": "i-1"}"#, None).unwrap();
//! let answer = commit.submit(Batch { events, received_at: "2024-05-01T10:00:00.000Z".into() })
//!     .unwrap().blocking_recv().unwrap();
//! assert_eq!(answer.unwrap().stored, 1);
//! commit.shutdown();
//! assert_eq!(store.summary().unwrap().events, 1);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use log::{error, warn};
use tokio::sync::oneshot;

use crate::error::Error;
use crate::store::{Batch, Inserted, Store};

/// Events waiting for the writer beyond which new requests are refused (503).
pub const MAX_QUEUED_EVENTS: usize = 500_000;

/// Events one transaction takes at most; the rest wait for the next one, so a
/// commit's latency stays bounded.
pub const MAX_GROUP_EVENTS: usize = 50_000;

/// Why a request's events were not stored, as the writer tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    /// Whether a retry can succeed (answer 503 with `Retry-After`) or not (500).
    pub transient: bool,
    /// What went wrong, for the response and the log.
    pub message: String,
}

impl From<&Error> for WriteFailure {
    fn from(e: &Error) -> Self {
        WriteFailure {
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }
}

/// The answer a submitted batch gets once its transaction is done.
pub type WriteResult = Result<Inserted, WriteFailure>;

/// Figures about the groups written so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Transactions committed (or attempted).
    pub commits: u64,
    /// Requests (batches) answered.
    pub batches: u64,
    /// Events in those batches.
    pub events: u64,
}

struct Pending {
    batch: Batch,
    reply: oneshot::Sender<WriteResult>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    queued_events: usize,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    commits: AtomicU64,
    batches: AtomicU64,
    events: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer thread and its queue. See the module documentation.
pub struct GroupCommit {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl GroupCommit {
    /// Starts the writer thread over `store`.
    pub fn start(store: Arc<Store>) -> Result<GroupCommit, Error> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            commits: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            events: AtomicU64::new(0),
        });
        let writer_shared = Arc::clone(&shared);
        let writer = thread::Builder::new()
            .name("collector-commit".into())
            .spawn(move || write_loop(&store, &writer_shared))?;
        Ok(GroupCommit {
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Queues `batch` for the next transaction; the receiver gets its answer.
    ///
    /// Refused at once (nothing queued) when the queue is full
    /// ([`Error::Overloaded`]) or the writer is shutting down
    /// ([`Error::ShuttingDown`]).
    pub fn submit(&self, batch: Batch) -> Result<oneshot::Receiver<WriteResult>, Error> {
        let (reply, answer) = oneshot::channel();
        let mut queue = self.shared.lock();
        if queue.closed {
            return Err(Error::ShuttingDown);
        }
        let n = batch.events.len();
        // One batch is always let in when the queue is empty, however large, so
        // a request under the body limits can never be refused forever.
        if queue.queued_events > 0 && queue.queued_events + n > MAX_QUEUED_EVENTS {
            return Err(Error::Overloaded);
        }
        queue.queued_events += n;
        queue.pending.push(Pending { batch, reply });
        drop(queue);
        self.shared.wake.notify_one();
        Ok(answer)
    }

    /// Groups, requests and events written so far.
    pub fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            commits: self.shared.commits.load(Ordering::Relaxed),
            batches: self.shared.batches.load(Ordering::Relaxed),
            events: self.shared.events.load(Ordering::Relaxed),
        }
    }

    /// Refuses new batches, writes and answers every queued one, then stops the
    /// writer thread.
    pub fn shutdown(&self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = writer {
            if writer.join().is_err() {
                error!("the group-commit thread panicked");
            }
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_loop(store: &Store, shared: &Shared) {
    loop {
        let group = {
            let mut queue = shared.lock();
            while queue.pending.is_empty() && !queue.closed {
                queue = shared.wake.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
            if queue.pending.is_empty() {
                return; // closed and drained
            }
            take_group(&mut queue)
        };
        let events: usize = group.iter().map(|p| p.batch.events.len()).sum();
        write_group(store, shared, group);
        shared.lock().queued_events -= events;
    }
}

/// The oldest queued batches, up to [`MAX_GROUP_EVENTS`] events (at least one batch).
fn take_group(queue: &mut Queue) -> Vec<Pending> {
    let mut events = 0;
    let mut n = 0;
    for pending in &queue.pending {
        let size = pending.batch.events.len();
        if n > 0 && events + size > MAX_GROUP_EVENTS {
            break;
        }
        events += size;
        n += 1;
    }
    queue.pending.drain(..n).collect()
}

fn write_group(store: &Store, shared: &Shared, group: Vec<Pending>) {
    shared.commits.fetch_add(1, Ordering::Relaxed);
    shared
        .batches
        .fetch_add(group.len() as u64, Ordering::Relaxed);
    shared.events.fetch_add(
        group.iter().map(|p| p.batch.events.len() as u64).sum(),
        Ordering::Relaxed,
    );
    let batches: Vec<&Batch> = group.iter().map(|p| &p.batch).collect();
    match store.insert_all(&batches) {
        Ok(results) => {
            for (pending, inserted) in group.into_iter().zip(results) {
                // The sender may have hung up meanwhile; its events are stored
                // anyway, and its retry will find them there.
                let _ = pending.reply.send(Ok(inserted));
            }
        }
        Err(e) if e.is_transient() || group.len() == 1 => {
            warn!("could not store {} request(s): {e}", group.len());
            let failure = WriteFailure::from(&e);
            for pending in group {
                let _ = pending.reply.send(Err(failure.clone()));
            }
        }
        Err(e) => {
            warn!(
                "a group of {} requests failed ({e}); storing them one by one",
                group.len()
            );
            for pending in group {
                shared.commits.fetch_add(1, Ordering::Relaxed);
                let result = store
                    .insert_all(&[&pending.batch])
                    .map(|mut r| r.pop().unwrap_or_default())
                    .map_err(|e| WriteFailure::from(&e));
                let _ = pending.reply.send(result);
            }
        }
    }
}
