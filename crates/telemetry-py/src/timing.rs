//! Operation timings for Python: the `Timing` handle (a context manager and a decorator),
//! `TimingScope` (a started measurement), `TimedFunction` (what `@timing` makes of a plain
//! function) and `TimingSnapshot`.
//!
//! The hot path is `with timing:`. `__enter__` and `__exit__` are native methods that read
//! the monotonic clock here and record into the core's atomics: no Python frame, no lock. One handle is commonly shared by many threads and tasks (a module
//! global timing a request handler), so the start of each block cannot live in the handle.
//! It lives in a per-thread list of open blocks, each keyed by the handle and by the Python
//! frame running the `with` statement (`PyEval_GetFrame`, in the stable ABI). A frame is the
//! identity of one execution: two asyncio tasks (or generators, or greenlets) interleaving
//! on one thread run in different frames, so each block finds its own start; recursion
//! gives each call its own frame; nested blocks in one frame close in order. When no entry
//! has the exiting frame (`__enter__` and `__exit__` called from different functions, as
//! `contextlib.ExitStack` does), the latest open block of the handle on this thread closes.
//!
//! ```python
//! search = client.usage.timing("search", labels={"collection": "hashed"})
//! with search.labels("my_collection"):
//!     run_search()
//! ```

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyTuple};
use pyo3::{PyTraverseError, PyVisit};
use telemetry_core::usage::{Timing, TimingSnapshot};

use crate::UsageError;

/// One `with` block that has entered and not yet exited.
struct Open {
    /// The context manager (a `Timing` or an unlabeled `TimingFamily`), by address.
    key: usize,
    /// The Python frame that ran `__enter__`, by address (0 when called from C).
    frame: usize,
    started: Instant,
}

thread_local! {
    static OPEN: RefCell<Vec<Open>> = const { RefCell::new(Vec::new()) };
}

fn current_frame(_py: Python<'_>) -> usize {
    // SAFETY: the thread is attached (the token proves it); the result is a borrowed
    // reference, or NULL, used only as an address and never dereferenced.
    unsafe { pyo3::ffi::PyEval_GetFrame() as usize }
}

/// Opens a `with` block of the context manager at `key`.
pub(crate) fn enter(py: Python<'_>, key: usize) {
    let frame = current_frame(py);
    // Read last, so the time spent here is not measured.
    let started = Instant::now();
    let _ = OPEN.try_with(|open| {
        open.borrow_mut().push(Open {
            key,
            frame,
            started,
        });
    });
}

/// Closes the block of `key` that the current frame opened (see the module documentation)
/// and gives its start; `what` names the context manager in the error.
pub(crate) fn exit(py: Python<'_>, key: usize, what: &str) -> PyResult<Instant> {
    let frame = current_frame(py);
    let started = OPEN
        .try_with(|open| {
            let mut open = open.borrow_mut();
            let at = open
                .iter()
                .rposition(|o| o.key == key && o.frame == frame)
                .or_else(|| open.iter().rposition(|o| o.key == key))?;
            Some(open.remove(at).started)
        })
        .ok()
        .flatten();
    started.ok_or_else(|| {
        UsageError::new_err(format!(
            "{what}.__exit__ without a matching __enter__ on this thread"
        ))
    })
}

/// Records the end of a block that started at `started`: a success, or a failure when an
/// exception is leaving the block.
pub(crate) fn finish(timing: &Timing, started: Instant, failed: bool) {
    if failed {
        timing.record_failure();
    } else {
        let end = Instant::now();
        timing.record_ended(end.saturating_duration_since(started), end);
    }
}

/// A number of seconds from Python (int or float, not bool) as a duration, rounded to the
/// nanosecond (`0.0015` is 1,500,000 ns, not 1,499,999).
pub(crate) fn seconds(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    let s = number(value, what)?;
    let nanos = (s * 1e9).round();
    // 2**64 ns is about 584 years; the comparison also refuses NaN.
    if !(0.0..18_446_744_073_709_551_615.0).contains(&nanos) {
        return Err(UsageError::new_err(format!(
            "{what} must be a finite, non-negative number of seconds, not {s}"
        )));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// A Unix time in seconds from Python, as the whole second it falls in.
fn unix_second(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    let s = number(value, "at")?;
    if !(0.0..1.8e19).contains(&s) {
        return Err(UsageError::new_err(format!(
            "at must be a Unix time in seconds (non-negative), not {s}"
        )));
    }
    Ok(s.floor() as u64)
}

fn number(value: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if value.is_instance_of::<PyBool>()
        || !(value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>())
    {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number of seconds (int or float), not {}",
            crate::convert::type_name(value)
        )));
    }
    // An int too large for a float is too many seconds anyway.
    value.extract::<f64>().or(Ok(f64::INFINITY))
}

/// `telemetry_core.usage._decorate`, which wraps functions (`@timing`): plain functions
/// in a native `TimedFunction`, coroutine functions in an `async def` (frameworks tell
/// those apart with `inspect.iscoroutinefunction`, which a native object cannot pass).
pub(crate) fn decorate<'py>(
    timing: Bound<'py, PyTiming>,
    func: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    static DECORATE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = func.py();
    let decorate = DECORATE.import(py, "telemetry_core.usage", "_decorate")?;
    decorate.call1((timing, func))
}

/// Records one operation's duration into one label set of a timing family; shared by many
/// threads and tasks at once.
///
/// ``with timing:`` times the block (an exception leaving it counts a failure and goes on);
/// ``@timing`` times every call of a function or ``async def`` coroutine function (an
/// exception raised counts a failure); ``record(seconds)`` and ``record_failure()`` record
/// what the host measured itself; ``start()`` starts a measurement to stop later.
#[pyclass(frozen, module = "telemetry_core._native", name = "Timing")]
pub struct PyTiming {
    pub(crate) timing: Timing,
    pub(crate) family: std::sync::Arc<str>,
    /// Exact strs only: nothing a cycle could run through.
    pub(crate) values: Py<PyTuple>,
    pub(crate) bounds: std::sync::Arc<[f64]>,
}

impl PyTiming {
    pub(crate) fn start_scope(&self) -> PyTimingScope {
        PyTimingScope {
            timing: self.timing.clone(),
            started: Instant::now(),
            done: AtomicBool::new(false),
        }
    }

    pub(crate) fn record_from(
        &self,
        seconds_: &Bound<'_, PyAny>,
        at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let elapsed = seconds(seconds_, "seconds")?;
        match at {
            None => self.timing.record(elapsed),
            Some(at) => self.timing.record_at(elapsed, unix_second(at)?),
        }
        Ok(())
    }

    pub(crate) fn record_failure_from(&self, at: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        match at {
            None => self.timing.record_failure(),
            Some(at) => self.timing.record_failure_at(unix_second(at)?),
        }
        Ok(())
    }

    pub(crate) fn snapshot_now(&self) -> PyTimingSnapshot {
        PyTimingSnapshot::new(self.timing.snapshot(), &self.bounds)
    }
}

#[pymethods]
impl PyTiming {
    /// Starts timing the block; returns this handle.
    fn __enter__<'py>(slf: &Bound<'py, Self>) -> Bound<'py, Self> {
        enter(slf.py(), slf.as_ptr() as usize);
        slf.clone()
    }

    /// Records the block: its duration when it ended normally, a failure when an exception
    /// is leaving it (the exception goes on). Returns False.
    fn __exit__(
        slf: &Bound<'_, Self>,
        exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let started = exit(slf.py(), slf.as_ptr() as usize, "Timing")?;
        finish(&slf.get().timing, started, !exc_type.is_none());
        Ok(false)
    }

    /// ``@timing``: times every call of `func` (a function or an ``async def`` coroutine
    /// function); a call that raises counts a failure. The wrapper keeps the function's
    /// name, docstring and signature (``functools.wraps``).
    fn __call__<'py>(
        slf: Bound<'py, Self>,
        func: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        decorate(slf, func)
    }

    /// Starts a measurement now: stop it with ``stop()`` (or ``fail()``), or use it as a
    /// context manager. One that is never stopped records nothing.
    fn start(&self) -> PyTimingScope {
        self.start_scope()
    }

    /// Records one operation that worked and took `seconds`. `at`, a Unix time in
    /// seconds, says when it ended (default: now).
    #[pyo3(signature = (seconds, *, at=None))]
    fn record(&self, seconds: &Bound<'_, PyAny>, at: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.record_from(seconds, at)
    }

    /// Counts one operation that failed (counted, not timed). `at`, a Unix time in seconds,
    /// says when it ended (default: now).
    #[pyo3(signature = (*, at=None))]
    fn record_failure(&self, at: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.record_failure_from(at)
    }

    /// The numbers of this label set now.
    fn snapshot(&self) -> PyTimingSnapshot {
        self.snapshot_now()
    }

    /// Operations that worked (each one timed).
    #[getter]
    fn count(&self) -> u64 {
        self.timing.snapshot().count
    }

    /// Operations that failed (counted, not timed).
    #[getter]
    fn fail_count(&self) -> u64 {
        self.timing.snapshot().fail_count
    }

    /// The family's name.
    #[getter]
    fn name(&self) -> &str {
        &self.family
    }

    /// The label values of this handle, in the family's label order.
    #[getter]
    fn label_values<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        self.values.bind(py).clone()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let s = self.timing.snapshot();
        let values = self.values.bind(py);
        let labels = if values.is_empty() {
            String::new()
        } else {
            format!("({})", crate::usage::show_values(values))
        };
        format!(
            "<Timing {}{labels} count={} fail_count={}>",
            self.family, s.count, s.fail_count
        )
    }
}

/// A measurement started by ``timing.start()``: ``stop()`` records it as an operation
/// that worked, ``fail()`` as one that failed; as a context manager it is stopped (or
/// failed, when an exception leaves the block) at the end of the block, unless it was
/// already. One that is never stopped records nothing.
#[pyclass(frozen, module = "telemetry_core._native", name = "TimingScope")]
pub struct PyTimingScope {
    timing: Timing,
    started: Instant,
    done: AtomicBool,
}

impl PyTimingScope {
    fn claim(&self) -> PyResult<()> {
        if self.done.swap(true, Ordering::AcqRel) {
            return Err(UsageError::new_err(
                "this measurement was already stopped or failed",
            ));
        }
        Ok(())
    }
}

#[pymethods]
impl PyTimingScope {
    /// Records the operation as one that worked; returns its duration in seconds.
    fn stop(&self) -> PyResult<f64> {
        self.claim()?;
        let end = Instant::now();
        let elapsed = end.saturating_duration_since(self.started);
        self.timing.record_ended(elapsed, end);
        Ok(elapsed.as_secs_f64())
    }

    /// Counts the operation as failed (not timed).
    fn fail(&self) -> PyResult<()> {
        self.claim()?;
        self.timing.record_failure();
        Ok(())
    }

    /// Seconds since the measurement started.
    #[getter]
    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Whether ``stop()`` or ``fail()`` was called (or the ``with`` block ended).
    #[getter]
    fn done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> Bound<'py, Self> {
        slf.clone()
    }

    /// Stops the measurement (a failure when an exception is leaving the block) unless it
    /// was stopped already. Returns False.
    fn __exit__(
        &self,
        exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> bool {
        if !self.done.swap(true, Ordering::AcqRel) {
            finish(&self.timing, self.started, !exc_type.is_none());
        }
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.done() { "done" } else { "running" };
        format!("<TimingScope {state} elapsed={:.6}s>", self.elapsed())
    }
}

/// A plain function timed by ``@timing``: each call is measured, and a call that raises
/// counts a failure. It keeps the function's ``__name__``, ``__doc__``, ``__wrapped__``
/// (so ``inspect.signature`` sees the original's), binds as a method, and pickles by
/// name as the function would.
#[pyclass(
    frozen,
    dict,
    weakref,
    module = "telemetry_core._native",
    name = "TimedFunction"
)]
pub struct PyTimedFunction {
    timing: Timing,
    func: Py<PyAny>,
}

#[pymethods]
impl PyTimedFunction {
    /// Wraps `func`, recording into `timing` (``functools.update_wrapper`` is applied by
    /// ``@timing``, not here).
    #[new]
    fn new(timing: &Bound<'_, PyTiming>, func: &Bound<'_, PyAny>) -> PyResult<Self> {
        if !func.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "@timing decorates a function, not {}",
                crate::convert::type_name(func)
            )));
        }
        Ok(PyTimedFunction {
            timing: timing.get().timing.clone(),
            func: func.clone().unbind(),
        })
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let started = Instant::now();
        let result = self.func.bind(py).call(args, kwargs);
        finish(&self.timing, started, result.is_err());
        result
    }

    /// Binds to an instance as a function does, so a timed method gets its `self`.
    fn __get__<'py>(
        slf: Bound<'py, Self>,
        instance: Option<Bound<'py, PyAny>>,
        owner: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = owner;
        match instance {
            Some(obj) if !obj.is_none() => {
                static METHOD: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
                let py = slf.py();
                METHOD.import(py, "types", "MethodType")?.call1((slf, obj))
            }
            _ => Ok(slf.into_any()),
        }
    }

    /// Pickled by its qualified name, as the function it replaces.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.getattr(pyo3::intern!(slf.py(), "__qualname__"))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let name = match slf.getattr(pyo3::intern!(py, "__qualname__")) {
            Ok(n) => n.str()?.to_string(),
            Err(_) => slf.get().func.bind(py).repr()?.to_string(),
        };
        Ok(format!("<timed function {name}>"))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.func)
    }
}

/// One label set's numbers at one moment (seconds as floats).
#[pyclass(frozen, module = "telemetry_core._native", name = "TimingSnapshot")]
pub struct PyTimingSnapshot {
    /// Operations that worked (each one timed).
    #[pyo3(get)]
    count: u64,
    /// Operations that failed (counted, not timed).
    #[pyo3(get)]
    fail_count: u64,
    /// The sum of the timed durations.
    #[pyo3(get)]
    total_seconds: f64,
    /// The shortest timed duration (0.0 before the first).
    #[pyo3(get)]
    min_seconds: f64,
    /// The longest timed duration.
    #[pyo3(get)]
    max_seconds: f64,
    /// The Unix second of the last response (worked or failed), or None before it.
    #[pyo3(get)]
    last_responded: Option<u64>,
    /// The histogram's bucket bounds.
    #[pyo3(get)]
    bounds: Vec<f64>,
    /// Per bound, the operations that took at most that long (the `+Inf` count is `count`).
    #[pyo3(get)]
    cumulative_counts: Vec<u64>,
}

impl PyTimingSnapshot {
    fn new(s: TimingSnapshot, bounds: &[f64]) -> Self {
        let secs = |nanos: u64| nanos as f64 / 1e9;
        PyTimingSnapshot {
            count: s.count,
            fail_count: s.fail_count,
            total_seconds: secs(s.total_nanos),
            min_seconds: secs(s.min_nanos),
            max_seconds: secs(s.max_nanos),
            last_responded: (s.last_second > 0).then_some(s.last_second),
            bounds: bounds.to_vec(),
            cumulative_counts: s.cumulative,
        }
    }
}

#[pymethods]
impl PyTimingSnapshot {
    /// The exact average, ``total_seconds / count`` (0.0 before the first).
    #[getter]
    fn avg_seconds(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_seconds / self.count as f64
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "TimingSnapshot(count={}, fail_count={}, total_seconds={}, min_seconds={}, max_seconds={})",
            self.count, self.fail_count, self.total_seconds, self.min_seconds, self.max_seconds
        )
    }
}
