//! Rust `log` records into Python's `logging`, through `pyo3-log`, installed lazily.
//!
//! Three things shape this file:
//! * Importing `logging` costs ~25 ms, more than the whole budget for importing
//!   `telemetry_core`; records are rare (failures, configuration warnings), so the Python
//!   side is set up when the first record arrives, not at import.
//! * Levels are filtered here, without the GIL: the core's records from info, its
//!   dependencies' (the HTTP stack logs every request at debug) from warn.
//! * At interpreter exit, a worker still stuck in a request could take the GIL while
//!   Python finalizes, which CPython answers by ending the thread under Rust's feet. Once
//!   our `atexit` hook has run (after the clients' shutdown), records are dropped.

use std::sync::atomic::{AtomicBool, Ordering};

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3_log::{Caching, Logger};

static PYTHON_EXITING: AtomicBool = AtomicBool::new(false);

/// The logger every record of this module's Rust code goes to.
struct Bridge {
    // GIL-aware: a plain OnceLock could deadlock, one thread initializing (and
    // releasing the GIL while `logging` imports) while another waits holding it.
    python: PyOnceLock<Option<Logger>>,
}

impl Bridge {
    fn python(&self, py: Python<'_>) -> Option<&Logger> {
        self.python
            .get_or_init(py, || {
                // A library's logger gets only a NullHandler, as the logging docs advise:
                // records reach the host's handlers once it configures logging, and
                // stderr otherwise stays quiet.
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
}

fn wanted(metadata: &Metadata<'_>) -> bool {
    let floor = if metadata.target().starts_with("telemetry_core") {
        Level::Info
    } else {
        Level::Warn
    };
    metadata.level() <= floor && !PYTHON_EXITING.load(Ordering::Acquire)
}

impl Log for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        wanted(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !wanted(record.metadata()) {
            return;
        }
        // try_attach: never initialize, and never attach to an interpreter shutting down.
        Python::try_attach(|py| {
            if let Some(logger) = self.python(py) {
                logger.log(record);
            }
        });
    }

    fn flush(&self) {}
}

/// Installs the bridge once per process; costs nothing until the first record.
pub fn install() {
    let bridge = Bridge {
        python: PyOnceLock::new(),
    };
    if log::set_boxed_logger(Box::new(bridge)).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// Called from the `atexit` hook, after every client was shut down.
#[pyfunction]
pub fn _python_exiting() {
    PYTHON_EXITING.store(true, Ordering::Release);
}
