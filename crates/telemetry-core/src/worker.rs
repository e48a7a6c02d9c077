//! The background worker: everything slow happens here, never on the caller's thread.
//!
//! It drains the bounded queue, batches (Chroma's rule), anonymizes, encodes and delivers
//! with retries, and keeps the counters exact. It is started by the first enabled capture
//! and stops on shutdown within a deadline.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::batch::{Batcher, Outgoing};
use crate::context::ClientContext;
use crate::encoded::EncodedEvent;
use crate::env::Environment;
use crate::event::Event;
use crate::identity::{self, Identity};
use crate::payload::PayloadBuilder;
use crate::profile::Profile;
use crate::sink::{SendError, Sink};
use crate::stats::Counters;
use crate::usage::{ReportOptions, Usage};

/// What travels through the queue.
pub(crate) enum Msg {
    /// Boxed so a queue slot stays one cache line: each slot the caller writes is one the
    /// worker's core read last, and every line moved between cores costs the caller.
    Event(Box<Event>),
    /// Properties still as JSON text; parsed here rather than on the caller's thread.
    Encoded(EncodedEvent),
    /// Wakes the worker to look at its control state.
    Wake,
}

// A queue slot is a message plus the channel's 8-byte stamp: keep it within a cache line.
const _: () = assert!(std::mem::size_of::<Msg>() <= 56);

/// Delivery knobs (docs/ARCHITECTURE.md, "Delivery").
#[derive(Debug, Clone)]
pub(crate) struct Tuning {
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
    pub flush_interval: Duration,
    pub request_timeout: Duration,
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

/// Everything the worker needs, fixed when the client is built.
pub(crate) struct WorkerSetup {
    pub profile: Profile,
    pub env: Arc<dyn Environment>,
    pub identity: Option<Identity>,
    pub context: ClientContext,
    pub tuning: Tuning,
    pub make_sink: Arc<dyn Fn() -> Box<dyn Sink> + Send + Sync>,
    pub endpoint_label: String,
    /// False for sinks that send nothing anywhere (memory, debug): no id file is written.
    pub store_identity: bool,
    /// The client's usage statistics, whose report the worker sends home.
    pub usage: Usage,
    pub reports: ReportSchedule,
}

/// When usage reports are sent home (docs/ARCHITECTURE.md, "Usage statistics").
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReportSchedule {
    pub enabled: bool,
    /// From the worker's start to the first report.
    pub delay: Duration,
    /// Between reports.
    pub interval: Duration,
}

impl Default for ReportSchedule {
    fn default() -> Self {
        ReportSchedule {
            enabled: true,
            delay: Duration::from_secs(10),
            interval: Duration::from_secs(3600),
        }
    }
}

/// Requests from the client to the worker, and the worker's progress.
#[derive(Debug, Default)]
pub(crate) struct Control {
    pub flush_requested: u64,
    pub flush_done: u64,
    pub shutdown_by: Option<Instant>,
    pub finished: bool,
    /// Set when shutdown gave up waiting: the worker must not count anything after this.
    pub abandoned: bool,
}

/// Control state shared between one pipeline's client side and its worker.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub control: Mutex<Control>,
    pub changed: Condvar,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A prepared event with its size and the captured events it stands for.
struct Ready {
    json: Value,
    bytes: usize,
    captured: u64,
}

pub(crate) struct Worker {
    setup: Arc<WorkerSetup>,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
    rx: Receiver<Msg>,
    batcher: Batcher,
    ready: Vec<Ready>,
    ready_bytes: usize,
    payload: Option<PayloadBuilder>,
    sink: Option<Box<dyn Sink>>,
    failing: bool,
    /// A usage report was sent (the install id is logged once, with the first).
    reported: bool,
}

impl Worker {
    pub fn new(
        setup: Arc<WorkerSetup>,
        counters: Arc<Counters>,
        shared: Arc<Shared>,
        rx: Receiver<Msg>,
    ) -> Self {
        Worker {
            setup,
            counters,
            shared,
            rx,
            batcher: Batcher::default(),
            ready: Vec::new(),
            ready_bytes: 0,
            payload: None,
            sink: None,
            failing: false,
            reported: false,
        }
    }

    pub fn run(mut self) {
        // Identity files, the context and the sink are made here, off the caller's thread.
        self.init();
        let tuning = self.setup.tuning.clone();
        let reports = self.setup.reports;
        let mut next_flush = Instant::now() + tuning.flush_interval;
        let mut next_report = reports.enabled.then(|| Instant::now() + reports.delay);
        loop {
            let wake = next_report.map_or(next_flush, |r| r.min(next_flush));
            let wait = wake.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(msg) => self.accept(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.shared.lock().shutdown_by.get_or_insert(Instant::now());
                }
            }
            // Take what is already queued, up to a full batch, before looking at control.
            while self.ready.len() < tuning.max_batch_events {
                match self.rx.try_recv() {
                    Ok(msg) => self.accept(msg),
                    Err(_) => break,
                }
            }
            while self.ready.len() >= tuning.max_batch_events
                || self.ready_bytes >= tuning.max_batch_bytes
            {
                self.send_one_batch(None);
            }
            let (flush_ticket, shutdown_by) = {
                let c = self.shared.lock();
                (
                    (c.flush_requested > c.flush_done).then_some(c.flush_requested),
                    c.shutdown_by,
                )
            };
            if let Some(deadline) = shutdown_by {
                if reports.enabled {
                    // The last numbers go out with the rest, within the same deadline.
                    self.queue_usage_report();
                }
                self.finish(deadline);
                return;
            }
            if next_report.is_some_and(|r| Instant::now() >= r) {
                next_report = Some(Instant::now() + reports.interval);
                if self.queue_usage_report() {
                    self.send_ready(None);
                }
            }
            if flush_ticket.is_some() || Instant::now() >= next_flush {
                self.flush_all(None);
                next_flush = Instant::now() + tuning.flush_interval;
                if let Some(ticket) = flush_ticket {
                    let mut c = self.shared.lock();
                    c.flush_done = c.flush_done.max(ticket);
                    self.shared.changed.notify_all();
                }
            }
        }
    }

    fn init(&mut self) {
        let identity = match self.setup.identity.clone() {
            Some(id) => id,
            None if !self.setup.store_identity => {
                identity::reuse_without_storing(&self.setup.profile, &*self.setup.env)
            }
            None => {
                let (id, warning) = identity::load_or_create(&self.setup.profile, &*self.setup.env);
                if let Some(w) = warning {
                    log::warn!("telemetry: {w}");
                }
                id
            }
        };
        // The local endpoints now render with the identity the reports are sent under.
        let _ = self
            .setup
            .usage
            .shared
            .worker_identity
            .set(identity.clone());
        self.payload = Some(PayloadBuilder::new(
            &identity,
            &self.setup.profile,
            &*self.setup.env,
            &self.setup.context,
        ));
        self.sink = Some((self.setup.make_sink)());
    }

    fn accept(&mut self, msg: Msg) {
        let event = match msg {
            Msg::Event(event) => *event,
            Msg::Encoded(encoded) => match encoded.decode() {
                Ok(event) => event,
                Err(e) => {
                    // Cannot happen for what EncodedEvent::new wrote; were it to, counting the
                    // event as failed keeps the counters adding up.
                    log::debug!("telemetry: dropped an event: {e}");
                    Counters::add(&self.counters.dropped_failed, 1);
                    return;
                }
            },
            Msg::Wake => return,
        };
        if let Some(out) = self.batcher.offer(event) {
            self.push_ready(out);
        }
    }

    fn push_ready(&mut self, out: Outgoing) {
        if out.captured > 1 {
            Counters::add(&self.counters.merged, out.captured - 1);
        }
        let json = self
            .payload
            .as_ref()
            .expect("initialized in run")
            .build(out.event);
        // The encoded size decides the 500 KB batch limit; encoding twice is cheap next to
        // a request, and only the worker pays it.
        let bytes = serde_json::to_vec(&json).map(|v| v.len()).unwrap_or(0);
        self.ready_bytes += bytes;
        self.ready.push(Ready {
            json,
            bytes,
            captured: out.captured,
        });
    }

    /// Adds the usage report (level 2, anonymized, with histograms) to the ready events,
    /// counted as one captured event. Nothing when the host never used usage statistics.
    fn queue_usage_report(&mut self) -> bool {
        let usage = &self.setup.usage;
        if !usage.shared.in_use() {
            return false;
        }
        let report = usage.report(&ReportOptions::sent_home());
        let Value::Object(fields) = report else {
            return false;
        };
        if !self.reported {
            self.reported = true;
            log::info!(
                "telemetry: sending {}'s usage report to {} every {:?}; this install's id is {} \
                 (quote it to ask for the data's deletion)",
                usage.shared.product,
                self.setup.endpoint_label,
                self.setup.reports.interval,
                fields
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown"),
            );
        }
        // Already anonymized by the report's own rules: sent as it is.
        let mut event = Event::new(crate::usage::REPORT_EVENT);
        for (k, v) in fields {
            event = event.safe(k, v);
        }
        Counters::add(&self.counters.captured, 1);
        self.push_ready(Outgoing { event, captured: 1 });
        true
    }

    /// Sends what is ready now, batch by batch.
    fn send_ready(&mut self, deadline: Option<Instant>) {
        while !self.ready.is_empty() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            self.send_one_batch(deadline);
        }
    }

    /// Moves everything queued and pending into `ready` and sends it all.
    fn flush_all(&mut self, deadline: Option<Instant>) {
        while let Ok(msg) = self.rx.try_recv() {
            self.accept(msg);
        }
        for out in self.batcher.drain() {
            self.push_ready(out);
        }
        while !self.ready.is_empty() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            self.send_one_batch(deadline);
        }
        if let Some(sink) = self.sink.as_mut() {
            sink.sync();
        }
    }

    fn finish(&mut self, deadline: Instant) {
        self.flush_all(Some(deadline));
        let mut c = self.shared.lock();
        if !c.abandoned {
            // Whatever could not go out in time is counted, never silently lost.
            let left: u64 = self.ready.iter().map(|r| r.captured).sum::<u64>()
                + self.batcher.pending_captured();
            Counters::add(&self.counters.dropped_shutdown, left);
            c.finished = true;
        }
        self.ready.clear();
        self.shared.changed.notify_all();
    }

    /// Sends the oldest batch-worth of ready events, retrying as docs/ARCHITECTURE.md, "Delivery", says.
    fn send_one_batch(&mut self, deadline: Option<Instant>) {
        let tuning = self.setup.tuning.clone();
        let mut count = 0;
        let mut bytes = 0;
        for r in &self.ready {
            if count > 0
                && (count >= tuning.max_batch_events || bytes + r.bytes > tuning.max_batch_bytes)
            {
                break;
            }
            count += 1;
            bytes += r.bytes;
        }
        let batch: Vec<Ready> = self.ready.drain(..count).collect();
        self.ready_bytes -= bytes;
        let captured: u64 = batch.iter().map(|r| r.captured).sum();
        let payload: Vec<Value> = batch.into_iter().map(|r| r.json).collect();

        let shared = self.shared.clone();
        let mut attempt = 0;
        loop {
            let shutdown_by = deadline.or_else(|| shared.lock().shutdown_by);
            let mut timeout = tuning.request_timeout;
            if let Some(d) = shutdown_by {
                timeout = timeout.min(d.saturating_duration_since(Instant::now()));
                if timeout.is_zero() {
                    return self.give_up(captured, true, None);
                }
            }
            let sink = self.sink.as_mut().expect("initialized in run");
            let result = sink.send(&payload, timeout);
            let mut c = shared.lock();
            if c.abandoned {
                return;
            }
            match result {
                Ok(()) => {
                    Counters::add(&self.counters.sent, captured);
                    drop(c);
                    if std::mem::take(&mut self.failing) {
                        log::info!(
                            "telemetry: delivery to {} works again",
                            self.setup.endpoint_label
                        );
                    }
                    return;
                }
                Err(err) => {
                    Counters::add(&self.counters.failed_requests, 1);
                    if !err.retryable || attempt >= tuning.max_retries {
                        drop(c);
                        return self.give_up(captured, false, Some(err));
                    }
                    let delay = err
                        .retry_after
                        .unwrap_or_else(|| backoff(tuning.backoff_base, attempt))
                        .min(tuning.backoff_cap);
                    let until = Instant::now() + delay;
                    if shutdown_by.is_some_and(|d| until >= d) {
                        drop(c);
                        return self.give_up(captured, true, Some(err));
                    }
                    // Retries are quiet: only an outcome (events lost) is worth a warning.
                    log::debug!(
                        "telemetry: delivery to {} failed ({}); retry {} of {} in {:?}",
                        self.setup.endpoint_label,
                        err.message,
                        attempt + 1,
                        tuning.max_retries,
                        delay
                    );
                    Counters::add(&self.counters.retries, 1);
                    attempt += 1;
                    // Sleep, but wake at once if shutdown is asked for meanwhile.
                    while Instant::now() < until && c.shutdown_by.is_none() && deadline.is_none() {
                        let left = until.saturating_duration_since(Instant::now());
                        c = shared
                            .changed
                            .wait_timeout(c, left)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                }
            }
        }
    }

    fn give_up(&mut self, captured: u64, at_shutdown: bool, err: Option<SendError>) {
        let c = self.shared.lock();
        if c.abandoned {
            return;
        }
        let counter = if at_shutdown {
            &self.counters.dropped_shutdown
        } else {
            &self.counters.dropped_failed
        };
        Counters::add(counter, captured);
        drop(c);
        self.warn_once(captured, at_shutdown, err.as_ref());
    }

    /// One warning per failure streak: a host offline for a day logs one line, not 17,000.
    /// It is written when events are lost, and says so; retries alone stay at debug level.
    fn warn_once(&mut self, captured: u64, at_shutdown: bool, err: Option<&SendError>) {
        if self.failing {
            return;
        }
        self.failing = true;
        let events = if captured == 1 { "event" } else { "events" };
        let why = match (err, at_shutdown) {
            (Some(e), true) => format!("{}; the shutdown deadline came before a retry", e.message),
            (None, _) => "the shutdown deadline came first".to_string(),
            (Some(e), false) if e.retryable => {
                format!(
                    "{} after {} retries",
                    e.message, self.setup.tuning.max_retries
                )
            }
            (Some(e), false) => format!("{}, which a retry cannot fix", e.message),
        };
        log::warn!(
            "telemetry: delivery to {} failed ({why}): dropped {captured} {events}; \
             further failures are not logged until delivery works again",
            self.setup.endpoint_label,
        );
    }
}

/// Exponential backoff from `base` with full jitter: a random delay in [d/2, d].
fn backoff(base: Duration, attempt: u32) -> Duration {
    let d = base.saturating_mul(1u32 << attempt.min(16));
    let mut b = [0u8; 2];
    let _ = getrandom::getrandom(&mut b);
    let frac = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX);
    d.mul_f64(0.5 + 0.5 * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_jitter_bounds() {
        let base = Duration::from_millis(200);
        for attempt in 0..4 {
            let full = base * (1 << attempt);
            let d = backoff(base, attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
    }
}
