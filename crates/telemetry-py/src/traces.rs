//! Traces for Python: the `Tracer` of a client, the `Span` it starts, the `SpanContext` a
//! `traceparent` header or the host's OpenTelemetry gives, and the context variable that
//! holds the current span (one per process, shared by every client, correct under asyncio
//! and threads because it is a `contextvars.ContextVar`).
//!
//! A span lives here, in Rust memory, while it runs: its ids (drawn from a per-thread
//! generator), its start and end (the wall clock, as OpenTelemetry's SDKs read it), its attributes
//! and events as the OpenTelemetry types. At its end it becomes the SDK's `SpanData` and is
//! queued with `Tracer::record_finished`: one lock, no encoding, no Python object kept.
//! The granularity check is done by the Python wrappers before any of this (a plain int
//! comparison), so a filtered span never calls in here.
//!
//! ```python
//! tracer = client.tracer()
//! with tracer.start("collection.add", 1, {"ids_count": 3}) as span:
//!     span.set_attribute("ok", True)
//! ```

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use opentelemetry::trace::{
    Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use telemetry_core::otel::config::Sampler;
use telemetry_core::otel::wire::{MAX_ATTRIBUTES, MAX_EVENTS};
use telemetry_core::otel::{propagation, Granularity, Tracer};

use crate::convert;

// ---------------------------------------------------------------------------------------
// Ids

/// Bumped in a child after `fork()` (Python's `os.register_at_fork` calls
/// [`_after_fork`]): every thread's generator then reseeds, so a parent and its forked
/// workers never draw the same ids.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// xoshiro256++ (Blackman and Vigna), seeded from the OS per thread: fast, and ids only
/// need to be unique, not secret.
struct Rng {
    generation: u64,
    s: [u64; 4],
}

impl Rng {
    fn seeded(generation: u64) -> Rng {
        let mut bytes = [0u8; 32];
        if getrandom::getrandom(&mut bytes).is_err() {
            // No OS randomness: the clock and the thread's address, mixed below.
            let t = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let here = &bytes as *const _ as u64;
            bytes[..8].copy_from_slice(&t.to_le_bytes());
            bytes[8..16].copy_from_slice(&here.to_le_bytes());
        }
        let mut s = [0u64; 4];
        let mut mix = 0x9e37_79b9_7f4a_7c15u64;
        for (i, word) in s.iter_mut().enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            // splitmix64 over the seed, so no state word is zero.
            mix = mix.wrapping_add(u64::from_le_bytes(w) ^ 0x9e37_79b9_7f4a_7c15);
            let mut z = mix;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *word = z ^ (z >> 31);
        }
        Rng { generation, s }
    }

    fn next(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

thread_local! {
    static RNG: Cell<Option<Rng>> = const { Cell::new(None) };
}

/// `n` random non-zero 64-bit words.
fn random_words<const N: usize>() -> [u64; N] {
    let generation = GENERATION.load(Ordering::Relaxed);
    RNG.with(|cell| {
        let mut rng = match cell.take() {
            Some(r) if r.generation == generation => r,
            _ => Rng::seeded(generation),
        };
        let mut out = [0u64; N];
        for w in &mut out {
            loop {
                *w = rng.next();
                if *w != 0 {
                    break;
                }
            }
        }
        cell.set(Some(rng));
        out
    })
}

fn new_trace_id() -> [u8; 16] {
    let [a, b] = random_words::<2>();
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&a.to_be_bytes());
    id[8..].copy_from_slice(&b.to_be_bytes());
    id
}

fn new_span_id() -> [u8; 8] {
    random_words::<1>()[0].to_be_bytes()
}

/// Called in a forked child (registered with `os.register_at_fork`): ids are drawn from
/// fresh seeds from now on.
#[pyfunction]
pub fn _after_fork() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------
// The current span and the host's OpenTelemetry

/// The context variable holding the current span: `telemetry_core._native.CURRENT_SPAN`.
static CURRENT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
/// `sys.modules`, to see whether the host imported `opentelemetry.trace`.
static SYS_MODULES: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
/// `telemetry_core.opentelemetry._host_parent`: the host's current OpenTelemetry span
/// context as a `SpanContext`, or None.
static HOST_PARENT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
/// Where the host's OpenTelemetry context is read, found once the host imported it: the
/// `ContextVar` behind OpenTelemetry's default runtime context when it has one (read with
/// one C call), else the public `opentelemetry.context.get_current`.
static OTEL_CONTEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
/// `contextvars.ContextVar`.
static CONTEXT_VAR_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn context_var_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    Ok(CONTEXT_VAR_TYPE
        .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            Ok(py.import("contextvars")?.getattr("ContextVar")?.unbind())
        })?
        .bind(py))
}

/// How to read the host's OpenTelemetry context, or None while `opentelemetry.trace` is
/// not imported. OpenTelemetry's default runtime context keeps the context in a
/// `ContextVar` (`_RUNTIME_CONTEXT._current_context`, a private name, so only used when it
/// is one); otherwise, or with another runtime context, the public `get_current`.
fn host_context_source(py: Python<'_>) -> PyResult<Option<Bound<'_, PyAny>>> {
    let Some(modules) = SYS_MODULES.get(py) else {
        return Ok(None);
    };
    let modules = modules.bind(py);
    if !modules.contains(pyo3::intern!(py, "opentelemetry.trace"))? {
        return Ok(None);
    }
    let Ok(context) = modules.get_item(pyo3::intern!(py, "opentelemetry.context")) else {
        return Ok(None);
    };
    let runtime = context.getattr(pyo3::intern!(py, "_RUNTIME_CONTEXT")).ok();
    let runtime_type = runtime
        .as_ref()
        .and_then(|r| r.get_type().qualname().ok())
        .map(|n| n.to_string());
    if runtime_type.as_deref() == Some("ContextVarsRuntimeContext") {
        if let Some(var) = runtime.and_then(|r| r.getattr("_current_context").ok()) {
            if var.is_instance(context_var_type(py)?)? {
                return Ok(Some(var));
            }
        }
    }
    Ok(context.getattr(pyo3::intern!(py, "get_current")).ok())
}

// The context-variable functions of CPython's C API (3.7+). They are not in the limited
// API, but every CPython exports them with these signatures, so this abi3 module calls
// them directly, as `convert::as_str` does `PyUnicode_AsUTF8AndSize`: a span's `with`
// block costs two C calls instead of two Python method calls.
extern "C" {
    fn PyContextVar_Get(
        var: *mut pyo3::ffi::PyObject,
        default_value: *mut pyo3::ffi::PyObject,
        value: *mut *mut pyo3::ffi::PyObject,
    ) -> std::os::raw::c_int;
    fn PyContextVar_Set(
        var: *mut pyo3::ffi::PyObject,
        value: *mut pyo3::ffi::PyObject,
    ) -> *mut pyo3::ffi::PyObject;
    fn PyContextVar_Reset(
        var: *mut pyo3::ffi::PyObject,
        token: *mut pyo3::ffi::PyObject,
    ) -> std::os::raw::c_int;
}

/// Makes the context variable (at module import) and returns it.
pub fn current_span_var(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let var = CURRENT.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("default", py.None())?;
        Ok(py
            .import("contextvars")?
            .getattr("ContextVar")?
            .call(("telemetry_core.current_span",), Some(&kwargs))?
            .unbind())
    })?;
    SYS_MODULES.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("sys")?.getattr("modules")?.unbind())
    })?;
    Ok(var.bind(py).clone())
}

fn var(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    match CURRENT.get(py) {
        Some(v) => Ok(v.bind(py)),
        None => Err(PyValueError::new_err(
            "telemetry_core._native: the current-span variable is not set up",
        )),
    }
}

/// The current span (or None).
fn current_get(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let var = var(py)?;
    let mut out: *mut pyo3::ffi::PyObject = std::ptr::null_mut();
    // SAFETY: `var` is a live ContextVar (made in `current_span_var`); `out` receives a
    // new reference (the variable's default is None, so it is never left NULL on success).
    let rc = unsafe { PyContextVar_Get(var.as_ptr(), std::ptr::null_mut(), &mut out) };
    if rc < 0 || out.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a new, non-NULL reference.
    Ok(unsafe { Bound::from_owned_ptr(py, out) })
}

/// Makes `value` current; returns the token that restores the previous value.
fn current_set<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = value.py();
    let var = var(py)?;
    // SAFETY: both are live objects; the result is a new reference or NULL with an error.
    let token = unsafe { PyContextVar_Set(var.as_ptr(), value.as_ptr()) };
    if token.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a new, non-NULL reference.
    Ok(unsafe { Bound::from_owned_ptr(py, token) })
}

/// Restores what `token` saved; a token of another context (a `with` block left in
/// another task) or one already used is ignored: that context never saw the span.
fn current_reset(token: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = token.py();
    let var = var(py)?;
    // SAFETY: both are live objects.
    if unsafe { PyContextVar_Reset(var.as_ptr(), token.as_ptr()) } < 0 {
        let e = PyErr::fetch(py);
        if !e.is_instance_of::<PyValueError>(py)
            && !e.is_instance_of::<pyo3::exceptions::PyRuntimeError>(py)
        {
            return Err(e);
        }
    }
    Ok(())
}

/// Registers the function that reads the host's current OpenTelemetry span (called only
/// when the host imported `opentelemetry.trace`, no span of ours is current, and the
/// host's OpenTelemetry context is not empty).
#[pyfunction]
pub fn _set_host_parent(py: Python<'_>, hook: Py<PyAny>) {
    let _ = HOST_PARENT.set(py, hook);
}

/// The parent of a new span when none was given: the current span of ours, else the
/// host's current OpenTelemetry span, else none (a root).
fn current_parent(py: Python<'_>) -> PyResult<Option<Ctx>> {
    let current = current_get(py)?;
    if !current.is_none() {
        if let Ok(span) = current.cast::<PySpan>() {
            let span = span.borrow();
            if !span.noop {
                return Ok(Some(span.ctx.clone()));
            }
        }
        return Ok(None);
    }
    let Some(hook) = HOST_PARENT.get(py) else {
        return Ok(None);
    };
    let host_context = match OTEL_CONTEXT.get(py) {
        Some(source) => source.bind(py),
        None => {
            let Some(source) = host_context_source(py)? else {
                return Ok(None);
            };
            let _ = OTEL_CONTEXT.set(py, source.unbind());
            match OTEL_CONTEXT.get(py) {
                Some(source) => source.bind(py),
                None => return Ok(None),
            }
        }
    };
    // The host's context is a mapping; an empty one holds no span (the common case of a
    // host that imported OpenTelemetry and is not inside one of its spans).
    let context = if host_context.is_instance(context_var_type(py)?)? {
        let mut out: *mut pyo3::ffi::PyObject = std::ptr::null_mut();
        // SAFETY: a live ContextVar; with a NULL default, `out` stays NULL when unset.
        let rc = unsafe { PyContextVar_Get(host_context.as_ptr(), std::ptr::null_mut(), &mut out) };
        if rc < 0 {
            let _ = PyErr::take(py);
            return Ok(None);
        }
        if out.is_null() {
            return Ok(None);
        }
        // SAFETY: a new, non-NULL reference.
        unsafe { Bound::from_owned_ptr(py, out) }
    } else {
        match host_context.call0() {
            Ok(c) => c,
            Err(_) => return Ok(None),
        }
    };
    if !context.is_truthy().unwrap_or(false) {
        return Ok(None);
    }
    let parent = hook.bind(py).call1((context,))?;
    Ok(parent
        .cast::<PySpanContext>()
        .ok()
        .map(|c| c.get().ctx.clone()))
}

// ---------------------------------------------------------------------------------------
// Attributes

/// A Python value as an attribute value: str, bool, int, float, or a list or tuple of one
/// of those (OpenTelemetry's homogeneous arrays). None is dropped (`Ok(None)`); an int
/// beyond 64 bits and any other object become their `str()`, as do mixed sequences'
/// items.
fn attribute_value(value: &Bound<'_, PyAny>) -> PyResult<Option<Value>> {
    if value.is_none() {
        return Ok(None);
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Some(Value::String(text(s).into())));
    }
    if value.is_instance_of::<PyBool>() {
        return Ok(Some(Value::Bool(value.is_truthy()?)));
    }
    if value.is_instance_of::<PyInt>() {
        return Ok(Some(match value.extract::<i64>() {
            Ok(i) => Value::I64(i),
            Err(_) => Value::String(value.str()?.to_string().into()),
        }));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Ok(Some(Value::F64(f.value())));
    }
    if let Ok(list) = value.cast::<PyList>() {
        return array(list.iter()).map(Some);
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return array(tuple.iter()).map(Some);
    }
    Ok(Some(Value::String(value.str()?.to_string().into())))
}

/// A str's text; lone surrogates are replaced rather than refused.
fn text(s: &Bound<'_, PyString>) -> String {
    match convert::as_str(s) {
        Ok(t) => t.to_owned(),
        Err(_) => s.to_string_lossy().into_owned(),
    }
}

fn array<'py>(items: impl Iterator<Item = Bound<'py, PyAny>>) -> PyResult<Value> {
    let items: Vec<Bound<'py, PyAny>> = items.filter(|i| !i.is_none()).collect();
    let all = |check: fn(&Bound<'py, PyAny>) -> bool| items.iter().all(check);
    let is_bool = |i: &Bound<'py, PyAny>| i.is_instance_of::<PyBool>();
    let is_int =
        |i: &Bound<'py, PyAny>| i.is_instance_of::<PyInt>() && !i.is_instance_of::<PyBool>();
    let is_float = |i: &Bound<'py, PyAny>| i.is_instance_of::<PyFloat>();
    let is_str = |i: &Bound<'py, PyAny>| i.is_instance_of::<PyString>();
    if !items.is_empty() && all(is_bool) {
        let v: PyResult<Vec<bool>> = items.iter().map(|i| i.is_truthy()).collect();
        return Ok(Value::Array(Array::Bool(v?)));
    }
    if !items.is_empty() && all(is_int) {
        if let Ok(v) = items.iter().map(|i| i.extract::<i64>()).collect() {
            return Ok(Value::Array(Array::I64(v)));
        }
    }
    if !items.is_empty() && all(is_float) {
        let v: PyResult<Vec<f64>> = items.iter().map(|i| i.extract::<f64>()).collect();
        return Ok(Value::Array(Array::F64(v?)));
    }
    let mut out = Vec::with_capacity(items.len());
    for i in &items {
        out.push(StringValue::from(match i.cast::<PyString>() {
            Ok(s) if is_str(i) => text(s),
            _ => i.str()?.to_string(),
        }));
    }
    Ok(Value::Array(Array::String(out)))
}

fn key(k: &Bound<'_, PyAny>) -> PyResult<Key> {
    match k.cast::<PyString>() {
        Ok(s) => Ok(Key::from(text(s))),
        Err(_) => Err(PyTypeError::new_err(format!(
            "attribute names must be str, not {}",
            convert::type_name(k)
        ))),
    }
}

/// Adds or replaces attributes; past [`MAX_ATTRIBUTES`] new keys are counted as dropped.
fn put(attributes: &mut Vec<KeyValue>, dropped: &mut u32, kv: KeyValue) {
    if let Some(old) = attributes.iter_mut().find(|o| o.key == kv.key) {
        *old = kv;
    } else if attributes.len() < MAX_ATTRIBUTES {
        attributes.push(kv);
    } else {
        *dropped += 1;
    }
}

/// The attributes in a dict (or an `Attributes`), None values left out.
fn attributes_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<KeyValue>> {
    if let Ok(a) = obj.cast::<PyAttributes>() {
        return Ok(a.get().values.clone());
    }
    let Ok(d) = obj.cast::<PyDict>() else {
        return Err(PyTypeError::new_err(format!(
            "attributes must be a dict, not {}",
            convert::type_name(obj)
        )));
    };
    let mut out = Vec::with_capacity(d.len());
    let mut dropped = 0;
    for (k, v) in d.iter() {
        let k = key(&k)?;
        if let Some(v) = attribute_value(&v)? {
            put(&mut out, &mut dropped, KeyValue::new(k, v));
        }
    }
    Ok(out)
}

/// Attributes converted once, for a decorator that adds the same ones to every span:
/// its strings are shared, so each span copies pointers rather than text.
#[pyclass(frozen, module = "telemetry_core._native", name = "Attributes")]
pub struct PyAttributes {
    values: Vec<KeyValue>,
}

#[pymethods]
impl PyAttributes {
    #[new]
    fn new(attributes: &Bound<'_, PyAny>) -> PyResult<Self> {
        let values = attributes_of(attributes)?
            .into_iter()
            .map(|kv| {
                let key = Key::from(std::sync::Arc::<str>::from(kv.key.as_str()));
                let value = match kv.value {
                    Value::String(s) => {
                        Value::String(StringValue::from(std::sync::Arc::<str>::from(s.as_str())))
                    }
                    other => other,
                };
                KeyValue::new(key, value)
            })
            .collect();
        Ok(PyAttributes { values })
    }

    fn __len__(&self) -> usize {
        self.values.len()
    }

    fn __repr__(&self) -> String {
        let shown: Vec<String> = self
            .values
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect();
        format!("Attributes({})", shown.join(", "))
    }
}

// ---------------------------------------------------------------------------------------
// Span contexts

/// What a child needs from its parent, and what `traceparent` carries.
#[derive(Clone, Debug)]
struct Ctx {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    sampled: bool,
    remote: bool,
    trace_state: TraceState,
}

impl Ctx {
    fn to_otel(&self) -> SpanContext {
        SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.span_id),
            if self.sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            self.remote,
            self.trace_state.clone(),
        )
    }

    fn from_otel(sc: &SpanContext) -> Ctx {
        Ctx {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
            sampled: sc.is_sampled(),
            remote: sc.is_remote(),
            trace_state: sc.trace_state().clone(),
        }
    }

    /// The `traceparent` header, formatted by the core (`propagation::inject`).
    fn traceparent(&self) -> String {
        propagation::inject(&self.to_otel()).0
    }

    fn tracestate(&self) -> Option<String> {
        let h = self.trace_state.header();
        (!h.is_empty()).then_some(h)
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// A span's identity without the span: what `extract` returns for a valid
/// `traceparent`, and the host's OpenTelemetry span. Pass it as a span's `parent`.
#[pyclass(frozen, module = "telemetry_core._native", name = "SpanContext")]
pub struct PySpanContext {
    ctx: Ctx,
}

#[pymethods]
impl PySpanContext {
    /// From OpenTelemetry's `SpanContext` fields: the ids as ints, the trace flags, the
    /// `tracestate` header (may be empty), whether it came from another process.
    #[staticmethod]
    #[pyo3(signature = (trace_id, span_id, trace_flags, tracestate="", remote=false))]
    fn from_ints(
        trace_id: u128,
        span_id: u64,
        trace_flags: u8,
        tracestate: &str,
        remote: bool,
    ) -> PyResult<Option<Self>> {
        if trace_id == 0 || span_id == 0 {
            return Ok(None);
        }
        let trace_state = if tracestate.is_empty() {
            TraceState::default()
        } else {
            tracestate.parse::<TraceState>().unwrap_or_default()
        };
        Ok(Some(PySpanContext {
            ctx: Ctx {
                trace_id: trace_id.to_be_bytes(),
                span_id: span_id.to_be_bytes(),
                sampled: trace_flags & 1 != 0,
                remote,
                trace_state,
            },
        }))
    }

    /// The trace id, 32 lowercase hex digits.
    #[getter]
    fn trace_id(&self) -> String {
        hex(&self.ctx.trace_id)
    }

    /// The span id, 16 lowercase hex digits.
    #[getter]
    fn span_id(&self) -> String {
        hex(&self.ctx.span_id)
    }

    /// Whether the trace is sampled (the `traceparent` flag).
    #[getter]
    fn sampled(&self) -> bool {
        self.ctx.sampled
    }

    /// Whether the span is in another process (it came in a `traceparent`).
    #[getter]
    fn remote(&self) -> bool {
        self.ctx.remote
    }

    /// The `traceparent` header that names this span as the parent.
    #[getter]
    fn traceparent(&self) -> String {
        self.ctx.traceparent()
    }

    /// The `tracestate` header, or None when it is empty.
    #[getter]
    fn tracestate(&self) -> Option<String> {
        self.ctx.tracestate()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PySpanContext>().is_ok_and(|o| {
            let o = &o.get().ctx;
            o.trace_id == self.ctx.trace_id
                && o.span_id == self.ctx.span_id
                && o.sampled == self.ctx.sampled
                && o.remote == self.ctx.remote
                && o.trace_state.header() == self.ctx.trace_state.header()
        })
    }

    fn __hash__(&self) -> u64 {
        u64::from_be_bytes(self.ctx.span_id)
    }

    fn __repr__(&self) -> String {
        format!(
            "SpanContext(trace_id={:?}, span_id={:?}, sampled={}, remote={})",
            hex(&self.ctx.trace_id),
            hex(&self.ctx.span_id),
            if self.ctx.sampled { "True" } else { "False" },
            if self.ctx.remote { "True" } else { "False" },
        )
    }
}

/// The remote parent in a W3C `traceparent` header (and `tracestate`), with the core's
/// strict rules (`telemetry_core::otel::propagation`); None when it is not valid.
#[pyfunction]
#[pyo3(signature = (traceparent, tracestate=None))]
pub fn extract_traceparent(traceparent: &str, tracestate: Option<&str>) -> Option<PySpanContext> {
    propagation::extract(traceparent, tracestate).map(|sc| PySpanContext {
        ctx: Ctx::from_otel(&sc),
    })
}

/// Whether `sampler` (the core's JSON form, e.g. `{"kind": "trace_id_ratio", "ratio":
/// 0.5}`) keeps a span of the trace `trace_id` (32 hex digits) whose parent was sampled
/// (`parent_sampled`; None for a root). The shared vectors check it.
#[pyfunction]
#[pyo3(signature = (sampler, trace_id, parent_sampled=None))]
pub fn should_sample(
    sampler: &Bound<'_, PyAny>,
    trace_id: &str,
    parent_sampled: Option<bool>,
) -> PyResult<bool> {
    let sampler: Sampler = serde_json::from_value(convert::to_value(sampler, "sampler")?)
        .map_err(|e| PyValueError::new_err(format!("sampler: {e}")))?;
    let id = u128::from_str_radix(trace_id, 16)
        .ok()
        .filter(|_| trace_id.len() == 32)
        .ok_or_else(|| PyValueError::new_err(format!("{trace_id:?} is not 32 hex digits")))?;
    Ok(sampler.should_sample(&id.to_be_bytes(), parent_sampled))
}

// ---------------------------------------------------------------------------------------
// Spans

/// The parts of a recorded span that only matter until it ends.
struct Recording {
    tracer: Tracer,
    name: String,
    kind: SpanKind,
    parent_span_id: [u8; 8],
    parent_remote: bool,
    start: SystemTime,
    attributes: Vec<KeyValue>,
    dropped_attributes: u32,
    events: Vec<Event>,
    dropped_events: u32,
    status: Status,
}

fn kind_of(kind: u8) -> PyResult<SpanKind> {
    Ok(match kind {
        0 => SpanKind::Internal,
        1 => SpanKind::Server,
        2 => SpanKind::Client,
        3 => SpanKind::Producer,
        4 => SpanKind::Consumer,
        k => {
            return Err(PyValueError::new_err(format!(
                "span kind {k} is unknown (0 internal, 1 server, 2 client, 3 producer, 4 consumer)"
            )))
        }
    })
}

/// A span: started by `Tracer.start`, ended by `end()` or by leaving its `with` block
/// (which also makes it the current span while the block runs and records an exception
/// that leaves the block). A span that is not recorded (filtered, not sampled, no
/// endpoint) accepts every call and does nothing; it still carries its trace for
/// `traceparent` when it has one.
#[pyclass(module = "telemetry_core._native", name = "Span")]
pub struct PySpan {
    ctx: Ctx,
    /// Neither ids nor recording: what a filtered span is.
    noop: bool,
    recording: Option<Box<Recording>>,
    /// The context variable's token while the span's `with` block runs.
    token: Option<Py<PyAny>>,
}

impl PySpan {
    fn noop() -> PySpan {
        PySpan {
            ctx: Ctx {
                trace_id: [0; 16],
                span_id: [0; 8],
                sampled: false,
                remote: false,
                trace_state: TraceState::default(),
            },
            noop: true,
            recording: None,
            token: None,
        }
    }

    fn finish(&mut self) {
        let Some(r) = self.recording.take() else {
            return;
        };
        // The wall clock at both ends, as OpenTelemetry's SDKs do (one clock read each);
        // a clock set back in between gives a span of zero length, never a negative one.
        let end = SystemTime::now().max(r.start);
        let mut events = SpanEvents::default();
        events.events = r.events;
        events.dropped_count = r.dropped_events;
        let data = SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes(self.ctx.trace_id),
                SpanId::from_bytes(self.ctx.span_id),
                TraceFlags::SAMPLED,
                false,
                self.ctx.trace_state.clone(),
            ),
            parent_span_id: SpanId::from_bytes(r.parent_span_id),
            parent_span_is_remote: r.parent_remote,
            span_kind: r.kind,
            name: r.name.into(),
            start_time: r.start,
            end_time: end,
            attributes: r.attributes,
            dropped_attributes_count: r.dropped_attributes,
            events,
            links: SpanLinks::default(),
            status: r.status,
            instrumentation_scope: scope().clone(),
        };
        r.tracer.record_finished(data);
    }

    fn event(&mut self, name: String, attributes: Vec<KeyValue>, at: Option<SystemTime>) {
        let Some(r) = self.recording.as_mut() else {
            return;
        };
        if r.events.len() >= MAX_EVENTS {
            r.dropped_events += 1;
            return;
        }
        let at = at.unwrap_or_else(SystemTime::now);
        r.events.push(Event::new(name, at, attributes, 0));
    }

    /// Records `exc` as an `exception` event (type, message, stack trace) and the status
    /// as an error.
    fn exception(&mut self, exc: &Bound<'_, PyAny>, tb: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        if self.recording.is_none() {
            return Ok(());
        }
        static DESCRIBE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let py = exc.py();
        let describe =
            DESCRIBE.import(py, "telemetry_core.opentelemetry", "_describe_exception")?;
        let tb = match tb {
            Some(t) => t.clone(),
            None => py.None().into_bound(py),
        };
        let (kind, message, stack): (String, String, String) =
            describe.call1((exc, tb))?.extract()?;
        let status = Status::error(if message.is_empty() {
            kind.clone()
        } else {
            format!("{kind}: {message}")
        });
        self.event(
            "exception".into(),
            vec![
                KeyValue::new("exception.type", kind),
                KeyValue::new("exception.message", message),
                KeyValue::new("exception.stacktrace", stack),
            ],
            None,
        );
        if let Some(r) = self.recording.as_mut() {
            r.status = status;
        }
        Ok(())
    }
}

fn scope() -> &'static InstrumentationScope {
    static SCOPE: std::sync::OnceLock<InstrumentationScope> = std::sync::OnceLock::new();
    SCOPE.get_or_init(|| {
        InstrumentationScope::builder("telemetry-core")
            .with_version(telemetry_core::context::CORE_VERSION)
            .build()
    })
}

/// A time given in Unix seconds (a float, as `time.time()`), or now.
fn unix_time(at: Option<f64>) -> PyResult<Option<SystemTime>> {
    match at {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(s),
        )),
        Some(s) => Err(PyValueError::new_err(format!(
            "timestamp must be a non-negative Unix time in seconds, not {s}"
        ))),
    }
}

#[pymethods]
impl PySpan {
    /// A span that records nothing and never becomes current: what a filtered span is.
    #[new]
    fn new() -> Self {
        PySpan::noop()
    }

    /// Makes this span the current one until the block ends, then ends it. Returns the
    /// span.
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        if slf.borrow().noop {
            return Ok(slf);
        }
        let token = current_set(slf.as_any())?;
        slf.borrow_mut().token = Some(token.unbind());
        Ok(slf)
    }

    /// Restores the previous current span, records an exception leaving the block (the
    /// exception goes on), and ends the span. Returns False.
    fn __exit__(
        slf: &Bound<'_, Self>,
        _exc_type: &Bound<'_, PyAny>,
        exc: &Bound<'_, PyAny>,
        traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let py = slf.py();
        let mut span = slf.borrow_mut();
        if span.noop {
            return Ok(false);
        }
        if let Some(token) = span.token.take() {
            current_reset(token.bind(py))?;
        }
        if !exc.is_none() && !exc.is_instance_of::<pyo3::exceptions::PyGeneratorExit>() {
            span.exception(exc, Some(traceback))?;
        }
        span.finish();
        Ok(false)
    }

    /// Ends the span now (again: nothing). An ended span is queued for export.
    fn end(&mut self) {
        self.finish();
    }

    /// Sets an attribute (replacing one of the same name); None removes nothing and is
    /// ignored. Values: str, bool, int, float, or a list or tuple of one of those.
    fn set_attribute(&mut self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let Some(r) = self.recording.as_mut() else {
            return Ok(());
        };
        let k = self::key(key)?;
        if let Some(v) = attribute_value(value)? {
            put(
                &mut r.attributes,
                &mut r.dropped_attributes,
                KeyValue::new(k, v),
            );
        }
        Ok(())
    }

    /// Sets every attribute of a dict; None values are left out.
    fn set_attributes(&mut self, attributes: &Bound<'_, PyAny>) -> PyResult<()> {
        let Some(r) = self.recording.as_mut() else {
            return Ok(());
        };
        for kv in attributes_of(attributes)? {
            put(&mut r.attributes, &mut r.dropped_attributes, kv);
        }
        Ok(())
    }

    /// Adds an event with attributes; `timestamp` in Unix seconds (default now).
    #[pyo3(signature = (name, attributes=None, timestamp=None))]
    fn add_event(
        &mut self,
        name: &str,
        attributes: Option<&Bound<'_, PyAny>>,
        timestamp: Option<f64>,
    ) -> PyResult<()> {
        if self.recording.is_none() {
            return Ok(());
        }
        let attrs = match attributes {
            Some(a) if !a.is_none() => attributes_of(a)?,
            _ => Vec::new(),
        };
        let at = unix_time(timestamp)?;
        self.event(name.to_owned(), attrs, at);
        Ok(())
    }

    /// Records an exception as an `exception` event (`exception.type`,
    /// `exception.message`, `exception.stacktrace`) and sets the status to error.
    fn record_exception(&mut self, exception: &Bound<'_, PyAny>) -> PyResult<()> {
        if !exception.is_instance_of::<pyo3::exceptions::PyBaseException>() {
            return Err(PyTypeError::new_err(format!(
                "record_exception() takes an exception, not {}",
                convert::type_name(exception)
            )));
        }
        let tb = exception.getattr(pyo3::intern!(exception.py(), "__traceback__"))?;
        self.exception(exception, Some(&tb))
    }

    /// Sets the status: `"ok"`, `"error"` (with a description) or `"unset"`.
    #[pyo3(signature = (status, description=None))]
    fn set_status(&mut self, status: &str, description: Option<String>) -> PyResult<()> {
        let status = match status.to_ascii_lowercase().as_str() {
            "ok" => Status::Ok,
            "error" => Status::error(description.unwrap_or_default()),
            "unset" => Status::Unset,
            other => {
                return Err(PyValueError::new_err(format!(
                    "status {other:?} is not ok, error or unset"
                )))
            }
        };
        if let Some(r) = self.recording.as_mut() {
            r.status = status;
        }
        Ok(())
    }

    /// Renames the span.
    fn update_name(&mut self, name: String) {
        if let Some(r) = self.recording.as_mut() {
            r.name = name;
        }
    }

    /// Whether the span is recorded and not ended yet.
    fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// The span's name (empty once ended, or when not recorded).
    #[getter]
    fn name(&self) -> String {
        self.recording
            .as_ref()
            .map_or_else(String::new, |r| r.name.clone())
    }

    /// The trace id, 32 lowercase hex digits (all zeros for a filtered span).
    #[getter]
    fn trace_id(&self) -> String {
        hex(&self.ctx.trace_id)
    }

    /// The span id, 16 lowercase hex digits (all zeros for a filtered span).
    #[getter]
    fn span_id(&self) -> String {
        hex(&self.ctx.span_id)
    }

    /// Whether the trace is sampled.
    #[getter]
    fn sampled(&self) -> bool {
        self.ctx.sampled
    }

    /// The span's identity, for `parent=` or for comparison; None for a filtered span.
    #[getter]
    fn context(&self) -> Option<PySpanContext> {
        (!self.noop).then(|| PySpanContext {
            ctx: self.ctx.clone(),
        })
    }

    /// The `traceparent` header naming this span as the parent; None for a filtered span.
    #[getter]
    fn traceparent(&self) -> Option<String> {
        (!self.noop).then(|| self.ctx.traceparent())
    }

    /// The `tracestate` header this span carries, or None.
    #[getter]
    fn tracestate(&self) -> Option<String> {
        if self.noop {
            None
        } else {
            self.ctx.tracestate()
        }
    }

    fn __repr__(&self) -> String {
        if self.noop {
            return "<Span (not recorded)>".into();
        }
        format!(
            "<Span {:?} trace_id={} span_id={}{}>",
            self.name(),
            hex(&self.ctx.trace_id),
            hex(&self.ctx.span_id),
            if self.recording.is_some() {
                ""
            } else {
                " (not recording)"
            }
        )
    }
}

/// A client's tracer: starts spans that its client exports.
#[pyclass(frozen, module = "telemetry_core._native", name = "Tracer")]
pub struct PyTracer {
    pub(crate) tracer: Tracer,
}

#[pymethods]
impl PyTracer {
    fn __repr__(&self) -> String {
        format!(
            "<telemetry_core._native.Tracer granularity={}>",
            self.tracer.granularity().as_str()
        )
    }

    /// A tracer that records nothing (what spans use while no client traces).
    #[staticmethod]
    fn disabled() -> Self {
        PyTracer {
            tracer: Tracer::disabled(),
        }
    }

    /// The granularity spans are recorded at, as an int: 0 none (nothing is recorded),
    /// 1 operation, 2 operation and segment, 3 all.
    #[getter]
    fn level(&self) -> u8 {
        self.tracer.granularity() as u8
    }

    /// Starts a span named `name` declared at granularity `level` (1 to 3; 4 or more is
    /// never recorded). `parent`: a `Span` or `SpanContext`, or None for the current span
    /// (else the host's current OpenTelemetry span, else none); `root=True` starts a new
    /// trace whatever is current. `kind`: 0 internal, 1 server, 2 client, 3 producer,
    /// 4 consumer.
    #[pyo3(signature = (name, level=1, attributes=None, parent=None, kind=0, root=false))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyString>,
        level: u8,
        attributes: Option<&Bound<'_, PyAny>>,
        parent: Option<&Bound<'_, PyAny>>,
        kind: u8,
        root: bool,
    ) -> PyResult<PySpan> {
        self.start_span(py, name, level, attributes, parent, kind, root)
    }

    /// Calls `func(*args, **kwargs)` in a new span (as `with tracer.start(name, level,
    /// attributes, kind=kind):` would, parent the current span): the span is current
    /// while it runs; an exception it raises is recorded and raised unchanged. What
    /// `trace_method` does for a plain function, in one call.
    #[pyo3(signature = (name, level, attributes, kind, func, args, kwargs=None))]
    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyString>,
        level: u8,
        attributes: Option<&Bound<'py, PyAny>>,
        kind: u8,
        func: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let span = Bound::new(
            py,
            self.start_span(py, name, level, attributes, None, kind, false)?,
        )?;
        let token = current_set(span.as_any())?;
        let result = func.call(args, kwargs);
        current_reset(&token)?;
        let mut s = span.borrow_mut();
        if let Err(e) = &result {
            if !e.is_instance_of::<pyo3::exceptions::PyGeneratorExit>(py) {
                let exc = e.value(py);
                let tb = e.traceback(py);
                s.exception(exc.as_any(), tb.as_ref().map(|t| t.as_any()))?;
            }
        }
        s.finish();
        result
    }
}

impl PyTracer {
    #[allow(clippy::too_many_arguments)]
    fn start_span(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyString>,
        level: u8,
        attributes: Option<&Bound<'_, PyAny>>,
        parent: Option<&Bound<'_, PyAny>>,
        kind: u8,
        root: bool,
    ) -> PyResult<PySpan> {
        let kind = kind_of(kind)?;
        let parent = if root {
            None
        } else {
            match parent {
                None => current_parent(py)?,
                Some(p) if p.is_none() => current_parent(py)?,
                Some(p) => {
                    if let Ok(span) = p.cast::<PySpan>() {
                        let span = span.borrow();
                        (!span.noop).then(|| span.ctx.clone())
                    } else if let Ok(sc) = p.cast::<PySpanContext>() {
                        Some(sc.get().ctx.clone())
                    } else {
                        return Err(PyTypeError::new_err(format!(
                            "parent must be a Span, a SpanContext or None, not {}",
                            convert::type_name(p)
                        )));
                    }
                }
            }
        };
        let recorded = Granularity::from_level(level).is_some_and(|g| self.tracer.is_recording(g));
        let (trace_id, parent_span_id, parent_remote, parent_sampled, trace_state) = match parent {
            Some(p) => (
                p.trace_id,
                p.span_id,
                p.remote,
                Some(p.sampled),
                p.trace_state,
            ),
            None => (new_trace_id(), [0; 8], false, None, TraceState::default()),
        };
        let sampled = recorded && self.tracer.should_sample(&trace_id, parent_sampled);
        let ctx = Ctx {
            trace_id,
            span_id: new_span_id(),
            sampled,
            remote: false,
            trace_state,
        };
        let recording = if sampled {
            let mut attrs = Vec::new();
            if let Some(a) = attributes {
                if !a.is_none() {
                    attrs = attributes_of(a)?;
                }
            }
            Some(Box::new(Recording {
                tracer: self.tracer.clone(),
                name: text(name),
                kind,
                parent_span_id,
                parent_remote,
                start: SystemTime::now(),
                attributes: attrs,
                dropped_attributes: 0,
                events: Vec::new(),
                dropped_events: 0,
                status: Status::Unset,
            }))
        } else {
            None
        };
        Ok(PySpan {
            ctx,
            noop: false,
            recording,
            token: None,
        })
    }
}
