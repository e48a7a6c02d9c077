//! The span queue: a bounded buffer between the threads that end spans and the one thread
//! that exports them, in the role of OpenTelemetry's batch span processor, with what the
//! SDK's does not give: counted drops, one warning per failure streak, retries on the
//! specification's terms, and a shutdown that keeps its deadline.
//!
//! Ending a span never blocks: a full queue drops the span and counts it. The export thread
//! starts with the first span queued (never before), and again after a `fork()`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use serde::Serialize;

use super::config::OtelConfig;
use super::export::{Attempt, Exporter};
use crate::client::fork_generation;

/// Counters of one client's spans. `exported + dropped_* + queued = recorded` always.
///
/// ```
/// let s = telemetry_core::otel::SpanStats::default();
/// assert_eq!(s.exported + s.dropped() + s.queued, s.recorded);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SpanStats {
    /// Spans ended and offered for export (sampled, not filtered by granularity).
    pub recorded: u64,
    /// Spans the receiver accepted.
    pub exported: u64,
    /// Dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Dropped because export failed for good (out of retries or time, refused, or
    /// rejected by the receiver).
    pub dropped_failed: u64,
    /// Dropped because the client was shut down (ended after, or not sent by the deadline).
    pub dropped_shutdown: u64,
    /// Waiting in the queue or being sent.
    pub queued: u64,
    /// Export requests that failed (each retry counts).
    pub failed_requests: u64,
    /// Retries made.
    pub retries: u64,
}

impl SpanStats {
    /// Every span dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_failed + self.dropped_shutdown
    }
}

#[derive(Default)]
struct Counters {
    recorded: AtomicU64,
    exported: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_failed: AtomicU64,
    dropped_shutdown: AtomicU64,
    failed_requests: AtomicU64,
    retries: AtomicU64,
}

struct State {
    spans: VecDeque<SpanData>,
    /// Spans taken by the export thread and not yet counted as exported or dropped.
    in_flight: u64,
    /// Flush requests made and flushes finished: a flush waits until `flushed` catches up.
    flush_asked: u64,
    flushed: u64,
    shutdown_by: Option<Instant>,
    /// The fork generation whose export thread is running, if one is.
    worker: Option<u64>,
    /// A warning was given for the current failure streak.
    warned: bool,
    /// The batch being sent was counted as dropped at shutdown when the deadline passed;
    /// the export thread, still waiting on it, must not count it again.
    abandoned: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    counters: Counters,
    closed: AtomicBool,
    config: OtelConfig,
    resource: opentelemetry_sdk::Resource,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The processor a client's tracer provider hands its ended spans to. Cheap to clone;
/// clones share one queue.
#[derive(Clone)]
pub struct SpanQueue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SpanQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanQueue")
            .field("stats", &self.stats())
            .finish()
    }
}

impl SpanQueue {
    /// A queue exporting to `config`'s endpoint with `resource` on every request.
    pub fn new(config: OtelConfig, resource: opentelemetry_sdk::Resource) -> SpanQueue {
        SpanQueue {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    spans: VecDeque::new(),
                    in_flight: 0,
                    flush_asked: 0,
                    flushed: 0,
                    shutdown_by: None,
                    worker: None,
                    warned: false,
                    abandoned: false,
                }),
                changed: Condvar::new(),
                counters: Counters::default(),
                closed: AtomicBool::new(false),
                config,
                resource,
            }),
        }
    }

    /// Offers an ended span for export; never blocks.
    pub fn push(&self, span: SpanData) {
        let s = &self.shared;
        s.counters.recorded.fetch_add(1, Ordering::Relaxed);
        if s.closed.load(Ordering::Acquire) {
            s.counters.dropped_shutdown.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut st = s.lock();
        if st.spans.len() >= s.config.max_queue_size {
            drop(st);
            if s.counters
                .dropped_queue_full
                .fetch_add(1, Ordering::Relaxed)
                == 0
            {
                log::warn!(
                    "telemetry: the span queue is full ({} spans); spans are dropped and counted",
                    s.config.max_queue_size
                );
            }
            return;
        }
        st.spans.push_back(span);
        let generation = fork_generation();
        if st.worker != Some(generation) {
            // After a fork the parent's queued spans belong to the parent: the child
            // exports only its own.
            if st.worker.is_some() {
                let inherited = st.spans.len() as u64 - 1 + st.in_flight;
                let keep_from = st.spans.len() - 1;
                st.spans.drain(..keep_from);
                st.in_flight = 0;
                s.counters
                    .dropped_shutdown
                    .fetch_add(inherited, Ordering::Relaxed);
            }
            st.worker = Some(generation);
            let shared = Arc::clone(s);
            let started = std::thread::Builder::new()
                .name("telemetry-spans".into())
                .spawn(move || export_loop(shared));
            if started.is_err() {
                st.worker = None;
            }
        }
        if st.spans.len() >= s.config.max_export_batch_size {
            s.changed.notify_all();
        }
    }

    /// The counters now.
    pub fn stats(&self) -> SpanStats {
        let c = &self.shared.counters;
        let st = self.shared.lock();
        SpanStats {
            recorded: c.recorded.load(Ordering::Relaxed),
            exported: c.exported.load(Ordering::Relaxed),
            dropped_queue_full: c.dropped_queue_full.load(Ordering::Relaxed),
            dropped_failed: c.dropped_failed.load(Ordering::Relaxed),
            dropped_shutdown: c.dropped_shutdown.load(Ordering::Relaxed),
            queued: st.spans.len() as u64 + st.in_flight,
            failed_requests: c.failed_requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
        }
    }

    /// Exports what is queued now and waits up to `timeout`; true when it all went out
    /// (or nothing was queued).
    pub fn flush(&self, timeout: Duration) -> bool {
        let s = &self.shared;
        let by = Instant::now() + timeout;
        let mut st = s.lock();
        if st.worker != Some(fork_generation()) || (st.spans.is_empty() && st.in_flight == 0) {
            return st.spans.is_empty() && st.in_flight == 0;
        }
        st.flush_asked += 1;
        let ticket = st.flush_asked;
        let failed_before = s.counters.dropped_failed.load(Ordering::Relaxed);
        s.changed.notify_all();
        while st.flushed < ticket {
            let left = by.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = s
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        s.counters.dropped_failed.load(Ordering::Relaxed) == failed_before
    }

    /// Starts shutting down: no span is accepted after this, and the export thread gives
    /// up at `by`. Returns at once; [`SpanQueue::wait_closed`] waits.
    pub fn begin_shutdown(&self, by: Instant) {
        let s = &self.shared;
        s.closed.store(true, Ordering::Release);
        let mut st = s.lock();
        if st.shutdown_by.is_none_or(|b| by < b) {
            st.shutdown_by = Some(by);
        }
        s.changed.notify_all();
    }

    /// Waits until the export thread is done or the deadline passes: `by`, or the earlier
    /// deadline of a shutdown already under way (a second shutdown, such as a drop after
    /// an explicit one, never waits again). What is still queued or being sent then is
    /// counted as dropped at shutdown; the export thread finishes its request in the
    /// background and counts nothing more.
    pub fn wait_closed(&self, by: Instant) {
        let s = &self.shared;
        let mut st = s.lock();
        let by = st.shutdown_by.map_or(by, |first| first.min(by));
        if st.worker != Some(fork_generation()) {
            let left = st.spans.len() as u64;
            st.spans.clear();
            s.counters
                .dropped_shutdown
                .fetch_add(left, Ordering::Relaxed);
            return;
        }
        while !st.spans.is_empty() || st.in_flight > 0 {
            let left = by.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let n = st.spans.len() as u64 + st.in_flight;
                st.spans.clear();
                if st.in_flight > 0 {
                    st.in_flight = 0;
                    st.abandoned = true;
                }
                s.counters.dropped_shutdown.fetch_add(n, Ordering::Relaxed);
                return;
            }
            st = s
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl SpanProcessor for SpanQueue {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.push(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        if self.flush(self.shared.config.export_timeout) {
            Ok(())
        } else {
            Err(opentelemetry_sdk::error::OTelSdkError::Timeout(
                self.shared.config.export_timeout,
            ))
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        // The client shut the queue down within its own deadline already; the provider's
        // drop must not wait a second time.
        if self.shared.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let by = Instant::now() + timeout;
        self.begin_shutdown(by);
        self.wait_closed(by);
        Ok(())
    }
}

/// The export thread: waits for a full batch, the schedule delay, a flush or shutdown;
/// sends; repeats until shut down and empty.
fn export_loop(shared: Arc<Shared>) {
    let config = &shared.config;
    let mut exporter = Exporter::new(config, &shared.resource);
    let generation = fork_generation();
    let mut first_queued: Option<Instant> = None;
    // Double buffering: when the whole queue is one batch, the export thread swaps its
    // empty buffer in (keeping its capacity) instead of moving spans under the lock,
    // where the threads ending spans would wait for it.
    let mut spare: VecDeque<SpanData> = VecDeque::new();
    loop {
        let mut st = shared.lock();
        if st.worker != Some(generation) {
            return; // a fork's child took the queue over
        }
        let (flush_ticket, shutdown_by) = loop {
            let shutting = st.shutdown_by;
            let flush_wanted = st.flush_asked > st.flushed;
            if st.spans.is_empty() {
                first_queued = None;
                if flush_wanted {
                    st.flushed = st.flush_asked;
                    shared.changed.notify_all();
                }
                if shutting.is_some() {
                    shared.changed.notify_all();
                    return;
                }
                st = shared
                    .changed
                    .wait_timeout(st, Duration::from_secs(3600))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            let since = *first_queued.get_or_insert_with(Instant::now);
            let due = since + config.schedule_delay;
            if flush_wanted
                || shutting.is_some()
                || st.spans.len() >= config.max_export_batch_size
                || Instant::now() >= due
            {
                let n = st.spans.len().min(config.max_export_batch_size);
                if n == st.spans.len() {
                    std::mem::swap(&mut st.spans, &mut spare);
                } else {
                    spare.extend(st.spans.drain(..n));
                }
                st.in_flight = n as u64;
                first_queued = if st.spans.is_empty() {
                    None
                } else {
                    Some(Instant::now())
                };
                break (st.flush_asked, shutting);
            }
            let left = due.saturating_duration_since(Instant::now());
            st = shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        };
        drop(st);

        let batch: Vec<SpanData> = spare.drain(..).collect();
        let n = batch.len() as u64;
        let outcome = send_with_retries(&shared, &mut exporter, batch, shutdown_by);
        let c = &shared.counters;
        let mut st = shared.lock();
        st.in_flight = 0;
        if std::mem::take(&mut st.abandoned) {
            // Counted as dropped at shutdown already; whatever the answer was, it came too
            // late for the host.
            shared.changed.notify_all();
            continue;
        }
        match outcome {
            Ok(rejected) => {
                c.exported.fetch_add(n - rejected.min(n), Ordering::Relaxed);
                c.dropped_failed
                    .fetch_add(rejected.min(n), Ordering::Relaxed);
                st.warned = false;
            }
            Err((why, at_shutdown)) => {
                if at_shutdown {
                    c.dropped_shutdown.fetch_add(n, Ordering::Relaxed);
                } else {
                    c.dropped_failed.fetch_add(n, Ordering::Relaxed);
                }
                if !st.warned {
                    st.warned = true;
                    log::warn!("telemetry: dropped {n} spans: {why}");
                } else {
                    log::debug!("telemetry: dropped {n} spans: {why}");
                }
            }
        }
        // A flush asked before this batch was taken is done once the queue holds nothing
        // older than it; the loop above marks it when the queue runs empty.
        let _ = flush_ticket;
        shared.changed.notify_all();
    }
}

/// Sends one batch, retrying what the specification calls retryable, with exponential
/// backoff (or the receiver's delay) inside the export timeout and the shutdown deadline.
/// `Ok(rejected)` on acceptance; `Err((why, at_shutdown))` when the batch is dropped.
fn send_with_retries(
    shared: &Shared,
    exporter: &mut Exporter,
    batch: Vec<SpanData>,
    shutdown_by: Option<Instant>,
) -> Result<u64, (String, bool)> {
    let config = &shared.config;
    let c = &shared.counters;
    let prepared = exporter.prepare(batch);
    let started = Instant::now();
    let budget_end = started + config.export_timeout;
    let mut backoff = Duration::from_millis(100);
    loop {
        // The shutdown deadline may arrive while this batch is being sent.
        let shutdown_by = shutdown_by.or(shared.lock().shutdown_by);
        let end = match shutdown_by {
            Some(s) if s < budget_end => s,
            _ => budget_end,
        };
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err((
                "out of time before the receiver accepted them".into(),
                shutdown_by.is_some(),
            ));
        }
        match exporter.attempt(&prepared, left) {
            Attempt::Accepted { rejected } => return Ok(rejected),
            Attempt::Fail(why) => {
                c.failed_requests.fetch_add(1, Ordering::Relaxed);
                return Err((why, false));
            }
            Attempt::Retry { after, why } => {
                c.failed_requests.fetch_add(1, Ordering::Relaxed);
                let wait = after.unwrap_or(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                let resume = Instant::now() + wait;
                if resume >= end {
                    return Err((why, shutdown_by.is_some()));
                }
                c.retries.fetch_add(1, Ordering::Relaxed);
                log::debug!("telemetry: span export will be retried: {why}");
                // Sleep on the condition variable so a shutdown cuts the wait short.
                let mut st = shared.lock();
                loop {
                    let now = Instant::now();
                    if now >= resume {
                        break;
                    }
                    if let Some(s) = st.shutdown_by {
                        if s <= now {
                            break;
                        }
                    }
                    let until = st.shutdown_by.map_or(resume, |s| s.min(resume));
                    st = shared
                        .changed
                        .wait_timeout(st, until.saturating_duration_since(now))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }
}
