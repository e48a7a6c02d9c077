//! Rust `log` records into Python's `logging`, through `pyo3-log`, with one guard.
//!
//! The worker thread logs delivery failures. At interpreter exit, a worker still stuck in
//! a request could try to take the GIL while Python finalizes, which CPython answers by
//! ending the thread under Rust's feet. So once our `atexit` hook has run (after the
//! clients' shutdown, see `telemetry_core/_exit.py`), records are dropped instead.

use std::sync::atomic::{AtomicBool, Ordering};

use log::{LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;
use pyo3_log::{Caching, Logger};

static PYTHON_EXITING: AtomicBool = AtomicBool::new(false);

struct Bridge(Logger);

impl Log for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        !PYTHON_EXITING.load(Ordering::Acquire) && self.0.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !PYTHON_EXITING.load(Ordering::Acquire) {
            self.0.log(record);
        }
    }

    fn flush(&self) {}
}

/// Installs the bridge once per process. The core's records (`telemetry_core::worker`
/// becomes the `telemetry_core.worker` logger) pass from info; dependencies' (the HTTP
/// stack logs every request at debug) only from warn, so logging never costs a GIL
/// round trip per request.
pub fn install(py: Python<'_>) -> PyResult<()> {
    // No caching: Python-side level and handler changes made later (tests, hosts that
    // configure logging after import) are honoured. Records are rare, so lookups are cheap.
    let logger = Logger::new(py, Caching::Nothing)?
        .filter(LevelFilter::Warn)
        .filter_target("telemetry_core".to_owned(), LevelFilter::Info);
    if log::set_boxed_logger(Box::new(Bridge(logger))).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
    Ok(())
}

/// Called from the `atexit` hook, after every client was shut down.
#[pyfunction]
pub fn _python_exiting() {
    PYTHON_EXITING.store(true, Ordering::Release);
}
