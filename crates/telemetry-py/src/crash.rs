//! Error reports from Python: the plain tuples `telemetry_core._crash` makes of an
//! exception (its type, message and traceback, then its causes) into the core's
//! [`ErrorReport`], queued as a handled error or reported as a crash.
//!
//! The walk over the exception happens in Python, where `sysconfig`, `co_qualname` and
//! `__suppress_context__` are at hand; this side only reads tuples of str, int and bool.
//! Strings are read lossily: a message or a file name may carry lone surrogates (an
//! undecodable file name under `surrogateescape`), and a report must not fail on them.
//!
//! ```python
//! frame = ("main", "/srv/app/main.py", 3, 5, True)  # function, file, line, column, in_app
//! client.report_crash(("ValueError", "bad input", [frame]), [], 0.0)  # -> "delivered"
//! ```

use std::time::{Duration, Instant};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use telemetry_core::crash::{ErrorReport, Exception, Frame, Reported};

/// `(function, file, line, column, in_app)`; line and column may be None.
fn frame(item: &Bound<'_, PyAny>) -> PyResult<Frame> {
    let t = item
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err("a frame is a tuple"))?;
    if t.len() != 5 {
        return Err(PyTypeError::new_err(
            "a frame is (function, file, line, column, in_app)",
        ));
    }
    let number = |i: usize| -> PyResult<Option<u32>> {
        let v = t.get_item(i)?;
        if v.is_none() {
            return Ok(None);
        }
        // Out of range (a negative line of a synthetic traceback): unknown.
        Ok(v.extract::<u32>().ok().filter(|n| *n > 0))
    };
    Ok(Frame {
        function: text(&t.get_item(0)?)?,
        file: text(&t.get_item(1)?)?,
        line: number(2)?,
        column: number(3)?,
        in_app: t.get_item(4)?.is_truthy()?,
    })
}

fn text(v: &Bound<'_, PyAny>) -> PyResult<String> {
    let s = v
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("expected a str"))?;
    Ok(s.to_string_lossy().into_owned())
}

/// `(type, message, [frame, ...])`, frames outermost first.
fn exception(item: &Bound<'_, PyAny>) -> PyResult<Exception> {
    let t = item
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err("an exception is a tuple"))?;
    if t.len() != 3 {
        return Err(PyTypeError::new_err(
            "an exception is (type, message, frames)",
        ));
    }
    let mut frames = Vec::new();
    for f in t.get_item(2)?.try_iter()? {
        frames.push(frame(&f?)?);
    }
    let mut kind = text(&t.get_item(0)?)?;
    if kind.trim().is_empty() {
        kind = "<unknown>".into();
    }
    Ok(Exception {
        kind,
        message: text(&t.get_item(1)?)?,
        frames,
    })
}

/// The core's report from the exception and its causes (nearest first), for Python.
pub(crate) fn report(top: &Bound<'_, PyAny>, causes: &Bound<'_, PyAny>) -> PyResult<ErrorReport> {
    let top = exception(top)?;
    let mut out = ErrorReport::new(top.kind, top.message).platform("python");
    out.frames = top.frames;
    for c in causes.try_iter()? {
        out.causes.push(exception(&c?)?);
    }
    Ok(out)
}

/// When the hook was entered, `elapsed` seconds ago (Python measures it with its own
/// clock, so the two clocks never meet).
pub(crate) fn started(elapsed: f64) -> Instant {
    let now = Instant::now();
    if !(elapsed.is_finite() && elapsed > 0.0) {
        return now;
    }
    Duration::try_from_secs_f64(elapsed)
        .ok()
        .and_then(|d| now.checked_sub(d))
        .unwrap_or(now)
}

/// What became of a crash report, as Python sees it.
pub(crate) fn outcome(reported: Reported) -> &'static str {
    match reported {
        Reported::Queued {
            delivered: Some(true),
        } => "delivered",
        Reported::Queued {
            delivered: Some(false),
        } => "timed_out",
        Reported::Queued { delivered: None } => "queued",
        Reported::Suppressed => "suppressed",
        Reported::Disabled => "disabled",
    }
}

/// Makes the error scrubber ready (its patterns compiled, this machine's names read), so
/// that a crash does not pay for it while the process waits. Called when an enabled
/// client asks for error reports; the GIL is released meanwhile.
#[pyfunction]
pub(crate) fn _prepare_error_reports(py: Python<'_>) {
    py.detach(|| {
        let sample = "warm up: /home/user/x.toml user@example.com 10.0.0.1 db01.internal:5432";
        drop(telemetry_core::crash::scrubber().scrub_text(sample));
    });
}
