//! Rust `log` records into Python's `logging`, through `pyo3-log`, handed over by Python's
//! own threads.
//!
//! Four things shape this file:
//! * The worker thread never takes the GIL. Its records (a delivery failure, say) wait in
//!   a small queue here until a thread that already holds the GIL calls into
//!   telemetry_core: every native entry point hands them over first ([`emit_pending`]).
//!   So the worker never competes with the host's threads for the GIL, and at exit it can
//!   never be caught taking the GIL while CPython finalizes, which CPython answers with
//!   `pthread_exit`: unwinding through PyO3 then releases a GIL state the thread no longer
//!   has, a fatal error that aborts the host (seen in a test, when an abandoned worker's
//!   request timed out just as the interpreter exited).
//! * Importing `logging` costs ~25 ms, more than the whole budget for importing
//!   `telemetry_core`; records are rare (failures, configuration warnings), so the Python
//!   side is set up when the first record is handed over, not at import.
//! * Levels are filtered here: the core's records from info, its dependencies' (the HTTP
//!   stack logs every request at debug) from warn.
//! * After our `atexit` hook (which runs after the clients' shutdown), records are dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, OnceLock};

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3_log::{Caching, Logger};

/// Records waiting for a Python thread; more than this between two calls are dropped
/// (one failure streak logs one warning, so this is far more than a host ever sees).
const MAX_PENDING: usize = 64;

static PYTHON_EXITING: AtomicBool = AtomicBool::new(false);
/// Set when a record is queued: the one thing the hot path reads.
static HAS_PENDING: AtomicBool = AtomicBool::new(false);
static QUEUE: OnceLock<(SyncSender<Pending>, Mutex<Receiver<Pending>>)> = OnceLock::new();
// GIL-aware: a plain OnceLock could deadlock, one thread initializing (and releasing the
// GIL while `logging` imports) while another waits holding it.
static PYTHON: PyOnceLock<Option<Logger>> = PyOnceLock::new();

/// A record kept until a Python thread logs it.
struct Pending {
    level: Level,
    target: String,
    message: String,
}

fn queue() -> &'static (SyncSender<Pending>, Mutex<Receiver<Pending>>) {
    QUEUE.get_or_init(|| {
        let (tx, rx) = sync_channel(MAX_PENDING);
        (tx, Mutex::new(rx))
    })
}

fn wanted(metadata: &Metadata<'_>) -> bool {
    let floor = if metadata.target().starts_with("telemetry_core") {
        Level::Info
    } else {
        Level::Warn
    };
    metadata.level() <= floor && !PYTHON_EXITING.load(Ordering::Acquire)
}

/// The logger every record of this module's Rust code goes to: it only queues.
struct Bridge;

impl Log for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        wanted(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !wanted(record.metadata()) {
            return;
        }
        let pending = Pending {
            level: record.level(),
            target: record.target().to_string(),
            message: record.args().to_string(),
        };
        // Never waits: a full queue drops the record.
        if queue().0.try_send(pending).is_ok() {
            HAS_PENDING.store(true, Ordering::Release);
        }
    }

    fn flush(&self) {}
}

/// Hands queued records to Python's `logging`. Every native entry point calls this with
/// the GIL held; when nothing is queued it is one atomic load.
///
/// ```ignore
/// logging::emit_pending(py); // first thing in a #[pymethods] body
/// ```
#[inline]
pub fn emit_pending(py: Python<'_>) {
    if HAS_PENDING.load(Ordering::Acquire) {
        emit_pending_now(py);
    }
}

#[cold]
fn emit_pending_now(py: Python<'_>) {
    let mut records = Vec::new();
    {
        // try_lock: another Python thread draining (its handler released the GIL) will
        // log these too; and a child forked while the lock was held must not wait forever.
        let Ok(rx) = queue().1.try_lock() else {
            return;
        };
        // Cleared before taking: a record queued meanwhile sets it again.
        HAS_PENDING.store(false, Ordering::Release);
        records.extend(rx.try_iter());
    }
    if PYTHON_EXITING.load(Ordering::Acquire) {
        return;
    }
    let Some(logger) = python_logger(py) else {
        return;
    };
    for r in records {
        logger.log(
            &Record::builder()
                .level(r.level)
                .target(&r.target)
                .args(format_args!("{}", r.message))
                .build(),
        );
        // A failing handler must not surface as an exception from capture().
        drop(PyErr::take(py));
    }
}

fn python_logger(py: Python<'_>) -> Option<&'static Logger> {
    PYTHON
        .get_or_init(py, || {
            // A library's logger gets only a NullHandler, as the logging docs advise:
            // records reach the host's handlers once it configures logging, and stderr
            // otherwise stays quiet.
            let setup = || -> PyResult<Logger> {
                let logging = py.import("logging")?;
                let null = logging.getattr("NullHandler")?.call0()?;
                logging
                    .call_method1("getLogger", ("telemetry_core",))?
                    .call_method1("addHandler", (null,))?;
                // No caching: level and handler changes made later are honoured.
                Logger::new(py, Caching::Nothing)
            };
            setup().ok()
        })
        .as_ref()
}

/// Installs the bridge once per process; costs nothing until the first record.
pub fn install() {
    if log::set_boxed_logger(Box::new(Bridge)).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// Called from the `atexit` hook, after every client was shut down: hands over what is
/// queued, then drops every later record.
#[pyfunction]
pub fn _python_exiting(py: Python<'_>) {
    emit_pending(py);
    PYTHON_EXITING.store(true, Ordering::Release);
}
