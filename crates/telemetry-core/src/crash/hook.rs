//! The Rust panic hook: installed once per process, chained to the hook that was there
//! before, reporting to every client that asked, each under its own consent.
//!
//! In: a panic (message, location, backtrace). Out: a scrubbed `$exception` report queued
//! on each registered client, and, for a fingerprint new to the process, a wait of at most
//! the client's deadline for its delivery; then the previous hook runs, so the host's own
//! output and behaviour (unwinding, or `panic = "abort"`) stay as they were.
//!
//! A panic raised while this thread is already reporting one is not reported again (the
//! thread-local guard), and nothing in the reporting path panics: a panic inside a panic
//! hook would abort the process.

use std::cell::Cell;
use std::sync::{Arc, Mutex, Once, OnceLock, Weak};
use std::time::Instant;

use super::frames;
use super::report::{ErrorReport, Frame};
use super::CrashReporter;

thread_local! {
    static REPORTING: Cell<bool> = const { Cell::new(false) };
}

static INSTALL: Once = Once::new();
static CLIENTS: OnceLock<Mutex<Vec<Weak<dyn CrashReporter>>>> = OnceLock::new();

fn clients() -> &'static Mutex<Vec<Weak<dyn CrashReporter>>> {
    CLIENTS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Installs the hook (once per process) and, when `reporter` is given, adds it to the
/// clients that receive panic reports.
pub(crate) fn install(reporter: Option<Weak<dyn CrashReporter>>) {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // `try_with`: during a thread's teardown its locals may be gone.
            let first = REPORTING.try_with(|r| !r.replace(true)).unwrap_or(false);
            if first {
                report(info);
                let _ = REPORTING.try_with(|r| r.set(false));
            }
            previous(info);
        }));
    });
    if let Some(r) = reporter {
        let mut list = clients().lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.push(r);
    }
}

fn message(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

fn report(info: &std::panic::PanicHookInfo<'_>) {
    // The deadline counts from here: capturing and symbolizing the backtrace is part of
    // what a crashing process waits for.
    let started = Instant::now();
    let reporters: Vec<Arc<dyn CrashReporter>> = {
        let list = clients().lock().unwrap_or_else(|p| p.into_inner());
        list.iter().filter_map(Weak::upgrade).collect()
    };
    if reporters.is_empty() {
        return;
    }
    let mut frames = frames::parse(&std::backtrace::Backtrace::force_capture().to_string());
    if frames.is_empty() {
        if let Some(l) = info.location() {
            frames.push(
                Frame::new("<unknown>", l.file(), l.line())
                    .column(l.column())
                    .in_app(true),
            );
        }
    }
    let mut report = ErrorReport::new("panic", message(info))
        .handled(false)
        .platform("rust");
    report.frames = frames;
    // One deadline for all clients: several clients must not multiply the wait.
    for r in &reporters {
        r.report_crash(&report, started);
    }
}
