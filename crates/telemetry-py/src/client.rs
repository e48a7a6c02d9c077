//! `telemetry_core._native.NativeClient`: a `telemetry_core::Client` behind a frozen
//! pyclass. It converts values and maps errors; every decision is the core's.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyType};
use serde_json::Value;
use telemetry_core::anonymize::PropertyKind;
use telemetry_core::crash::CrashOptions;
use telemetry_core::event::BatchRule;
use telemetry_core::{Client, ClientConfig, Event};

use crate::convert::{self, Keywords};
use crate::logging;
use crate::{ConfigurationError, InvalidEventError};

/// The native client; `telemetry_core.Client` wraps it. Thread-safe: every method takes
/// `&self`, and the core's client is `Sync`.
#[pyclass(frozen, module = "telemetry_core._native")]
pub struct NativeClient {
    // An Option only so Drop can move the client out and drop it without the GIL.
    client: Option<Client>,
    // Cached: the first thing `capture` reads.
    enabled: bool,
    shutdown_timeout: f64,
    // How long a crash waits at most for its report, in seconds (the exit after a crash
    // is bounded by what is left of it).
    crash_deadline: f64,
    // `telemetry_core.TelemetryEvent`, passed in by the Python package (which defines it).
    event_type: Py<PyType>,
    // The product's name, as configured (for the usage registry's repr).
    product: String,
}

impl NativeClient {
    /// The body of both capture entry points: the `capture(event, properties)` method and
    /// the `capture(event, **properties)` builtin.
    pub(crate) fn capture_from(
        &self,
        event: &Bound<'_, PyAny>,
        properties: Option<Keywords<'_, '_>>,
    ) -> PyResult<()> {
        if !self.enabled {
            return Ok(());
        }
        logging::emit_pending(event.py());
        if let Ok(name) = event.cast::<PyString>() {
            // The hot path: properties written as JSON text, parsed by the worker.
            let encoded = convert::encoded_event(name, properties)?;
            self.client().capture_encoded(encoded);
            return Ok(());
        }
        let event = if event.is_instance(self.event_type.bind(event.py()))? {
            if properties.is_some_and(|p| !p.is_empty()) {
                return Err(PyTypeError::new_err(
                    "capture() takes properties either inside the TelemetryEvent or as \
                     keyword arguments, not both",
                ));
            }
            event_from(event)?
        } else {
            return Err(PyTypeError::new_err(format!(
                "capture() takes a TelemetryEvent or an event name (str), not {}",
                convert::type_name(event)
            )));
        };
        self.client().capture(event);
        Ok(())
    }

    fn client(&self) -> &Client {
        // Set in `new`, taken only in Drop.
        self.client
            .as_ref()
            .expect("the client lives as long as its wrapper")
    }
}

/// A timeout in seconds from Python; negative or NaN means "do not wait".
fn seconds(timeout: f64) -> PyResult<Duration> {
    if timeout.is_nan() || timeout <= 0.0 {
        return Ok(Duration::ZERO);
    }
    Duration::try_from_secs_f64(timeout)
        .map_err(|_| PyValueError::new_err(format!("timeout {timeout} s is too large")))
}

fn event_name(name: &Bound<'_, PyAny>) -> PyResult<String> {
    match name.cast::<PyString>() {
        Ok(s) => convert::string(s),
        Err(_) => Err(PyTypeError::new_err(format!(
            "the event name must be a str, not {}",
            convert::type_name(name)
        ))),
    }
}

fn kinds(d: &Bound<'_, PyDict>) -> PyResult<BTreeMap<String, PropertyKind>> {
    let mut out = BTreeMap::new();
    for (k, v) in d.iter() {
        let key: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err("kinds: property names must be str"))?;
        let name = v.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "kinds[{key:?}] must be a str such as 'safe' or 'hashed'"
            ))
        })?;
        let kind = PropertyKind::from_str(&convert::string(name)?)
            .map_err(|e| InvalidEventError::new_err(format!("kinds[{key:?}]: {e}")))?;
        out.insert(key, kind);
    }
    Ok(out)
}

/// Builds a core event from a `telemetry_core.TelemetryEvent` (or anything with its
/// attributes: name, properties, kinds, batch_key, max_batch_size, summed).
fn event_from<'py>(event: &Bound<'py, PyAny>) -> PyResult<Event> {
    let py = event.py();
    let attr = |name: &Bound<'py, PyString>| event.getattr(name);
    let mut out = Event::new(event_name(&attr(pyo3::intern!(py, "name"))?)?);
    let properties = attr(pyo3::intern!(py, "properties"))?;
    if !properties.is_none() {
        let d = properties
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("TelemetryEvent.properties must be a dict"))?;
        out.properties = convert::properties(d)?;
    }
    let kinds_obj = attr(pyo3::intern!(py, "kinds"))?;
    if !kinds_obj.is_none() {
        let d = kinds_obj
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("TelemetryEvent.kinds must be a dict"))?;
        out.kinds = kinds(d)?;
    }
    let key = attr(pyo3::intern!(py, "batch_key"))?;
    if !key.is_none() {
        let key = key
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("TelemetryEvent.batch_key must be a str or None"))?;
        let max_size: u32 = attr(pyo3::intern!(py, "max_batch_size"))?
            .extract()
            .map_err(|_| {
                PyTypeError::new_err(
                    "TelemetryEvent.max_batch_size must be an int from 0 to 2**32-1",
                )
            })?;
        let sum: Vec<String> = attr(pyo3::intern!(py, "summed"))?
            .extract()
            .map_err(|_| PyTypeError::new_err("TelemetryEvent.summed must be a sequence of str"))?;
        out.batch = Some(BatchRule {
            key: convert::string(key)?,
            max_size,
            sum,
        });
    }
    out.validate().map_err(InvalidEventError::new_err)?;
    Ok(out)
}

#[pymethods]
impl NativeClient {
    /// Builds a client from the JSON form of the core's `ClientConfig` (as a dict).
    /// Resolves consent; starts nothing (no thread, file or socket) until the first
    /// enabled capture.
    ///
    /// `event_type` is the class `capture` accepts besides an event name
    /// (`telemetry_core.TelemetryEvent`).
    #[new]
    fn new(config: &Bound<'_, PyDict>, event_type: Bound<'_, PyType>) -> PyResult<Self> {
        let value = convert::to_value(config.as_any(), "config")?;
        let config: ClientConfig = serde_json::from_value(value)
            .map_err(|e| ConfigurationError::new_err(format!("telemetry configuration: {e}")))?;
        let product = config.product.clone();
        let shutdown_timeout = config.shutdown_timeout_ms.map_or(
            telemetry_core::client::DEFAULT_SHUTDOWN.as_secs_f64(),
            |ms| ms as f64 / 1000.0,
        );
        let crash_deadline = config
            .crash
            .map_or(CrashOptions::default(), |c| c.options())
            .deadline
            .as_secs_f64();
        let client = config
            .into_builder()
            .and_then(|b| b.build())
            .map_err(|e| ConfigurationError::new_err(e.to_string()))?;
        // Configuration warnings reach Python's logging from here, at once.
        logging::emit_pending(event_type.py());
        Ok(NativeClient {
            enabled: client.is_enabled(),
            client: Some(client),
            shutdown_timeout,
            crash_deadline,
            event_type: event_type.unbind(),
            product,
        })
    }

    /// Whether telemetry is on for this client (fixed at construction).
    #[getter]
    fn enabled(&self) -> bool {
        self.enabled
    }

    /// The shutdown deadline in seconds, used at exit and by the context manager.
    #[getter]
    fn shutdown_timeout(&self) -> f64 {
        self.shutdown_timeout
    }

    /// How long a crash waits at most for its report's delivery, in seconds.
    #[getter]
    fn crash_deadline(&self) -> f64 {
        self.crash_deadline
    }

    /// Queues a report of an error the host handled; never waits. `exception` is
    /// `(type, message, frames)`, each frame `(function, file, line, column, in_app)`
    /// outermost first; `causes` are such tuples, nearest cause first. False when
    /// telemetry is off or the rate limits held the report back.
    fn capture_error(
        &self,
        exception: &Bound<'_, PyAny>,
        causes: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        if !self.enabled {
            return Ok(false);
        }
        logging::emit_pending(exception.py());
        let report = crate::crash::report(exception, causes)?;
        Ok(self.client().capture_error(&report))
    }

    /// Reports a crash (an uncaught exception) whose hook was entered `elapsed` seconds
    /// ago: the first report of its fingerprint waits for delivery until the deadline
    /// counted from then, with the GIL released. Returns what became of it: `delivered`,
    /// `timed_out`, `queued` (a repeat, which never waits), `suppressed` (the rate
    /// limits) or `disabled`, with the count of events sent so far (the exit compares it
    /// with its own to tell whether the endpoint took anything since). Calls no Python
    /// code (no logging) on the way.
    fn report_crash(
        &self,
        py: Python<'_>,
        exception: &Bound<'_, PyAny>,
        causes: &Bound<'_, PyAny>,
        elapsed: f64,
    ) -> PyResult<(&'static str, u64)> {
        if !self.enabled {
            return Ok(("disabled", 0));
        }
        let started = crate::crash::started(elapsed);
        let report = crate::crash::report(exception, causes)?;
        let client = self.client();
        let reported = py.detach(|| client.report_crash_since(&report, started));
        Ok((crate::crash::outcome(reported), client.stats().sent))
    }

    /// Queues an event and returns at once; it never waits and never does I/O.
    ///
    /// `event` is an event name, whose `properties` are anonymized by type (strings
    /// hashed, numbers rounded), or a `TelemetryEvent` (declared kinds, a batch rule),
    /// with `properties` empty. Does nothing when telemetry is off.
    fn capture(
        &self,
        event: &Bound<'_, PyAny>,
        properties: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.capture_from(event, properties.map(Keywords::Dict))
    }

    /// `capture(event, /, **properties)` as a builtin bound to this client: what
    /// `telemetry_core.Client.capture` becomes when telemetry is on: one call into Rust,
    /// no Python frame.
    ///
    /// `vectorcall` picks the calling convention (tests try both); by default, the
    /// fastest the running Python has.
    #[pyo3(signature = (vectorcall=None))]
    fn capture_function<'py>(
        slf: &Bound<'py, Self>,
        vectorcall: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::capture_fn::bind(slf, vectorcall)
    }

    /// Exactly what would be sent for a `TelemetryEvent`, built here and sent nowhere.
    fn preview<'py>(&self, event: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(event.py(), &self.client().preview(event_from(event)?))
    }

    /// Sends what was captured, partial batches included; waits at most `timeout`
    /// seconds with the GIL released.
    ///
    /// True only when every event captured before the call (and since the previous flush)
    /// was delivered; False when the timeout passed first or when events were dropped
    /// since the previous flush (the stats count them). Never raises for a delivery
    /// failure.
    fn flush(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = seconds(timeout)?;
        let client = self.client();
        let done = py.detach(|| client.flush(timeout));
        logging::emit_pending(py);
        Ok(done)
    }

    /// Flushes within `timeout` seconds (GIL released), stops the worker, returns the
    /// final counters. Idempotent; later captures are dropped and counted.
    fn shutdown<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(timeout)?;
        let client = self.client();
        let stats = py.detach(|| client.shutdown(timeout));
        logging::emit_pending(py);
        stats_to_py(py, stats)
    }

    /// The delivery counters now, as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        logging::emit_pending(py);
        stats_to_py(py, self.client().stats())
    }

    /// The consent decision as a dict: enabled, decided_by, sources, warnings.
    fn decision<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = serde_json::to_value(self.client().decision())
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        convert::to_py(py, &value)
    }

    /// The consent decision explained for people, as `telemetry status` prints it.
    fn explain(&self) -> String {
        self.client().decision().to_string()
    }

    /// This client's usage statistics (one registry per client, shared by every call).
    fn usage(&self) -> crate::usage::PyUsage {
        crate::usage::PyUsage::new(self.client().usage().clone(), &self.product)
    }

    /// This client's tracer (spans for the operator's OTLP endpoint, independent of the
    /// telemetry consent).
    fn tracer(&self) -> crate::traces::PyTracer {
        crate::traces::PyTracer {
            tracer: self.client().tracer().clone(),
        }
    }

    /// The resolved observability configuration, as `telemetry status --json` shows it
    /// (the core's `OtelConfig::to_status_json`: active, endpoint, protocol, headers'
    /// names, service_name, granularity, sampler, disabled, compression, origins,
    /// warnings), plus `level` (the granularity spans are recorded at, 0 when nothing is)
    /// and `resource` (the resource attributes besides `service.name`). With
    /// `reveal_headers`, `headers` holds `[name, value]` pairs instead of names.
    #[pyo3(signature = (reveal_headers=false))]
    fn trace_config<'py>(
        &self,
        py: Python<'py>,
        reveal_headers: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        logging::emit_pending(py);
        let tracer = self.client().tracer();
        let config = tracer.config();
        let mut value = config.to_status_json();
        value["level"] = Value::from(tracer.granularity() as u8);
        value["resource"] = serde_json::to_value(&config.resource)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        if reveal_headers {
            value["headers"] = config
                .headers
                .iter()
                .map(|(k, v)| serde_json::json!([k, v]))
                .collect();
        }
        convert::to_py(py, &value)
    }

    /// The span counters now: recorded, exported, dropped_queue_full, dropped_failed,
    /// dropped_shutdown, queued, failed_requests, retries.
    fn span_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        logging::emit_pending(py);
        let value = serde_json::to_value(self.client().tracer().stats())
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        convert::to_py(py, &value)
    }

    /// Exports the queued spans, waiting at most `timeout` seconds with the GIL released.
    /// True when every span recorded before the call was exported and none was dropped
    /// since; False when the timeout passed first or spans were dropped.
    fn flush_spans(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = seconds(timeout)?;
        let tracer = self.client().tracer();
        let before = tracer.stats();
        let done = py.detach(|| tracer.flush(timeout));
        logging::emit_pending(py);
        Ok(done && tracer.stats().dropped() == before.dropped())
    }

    /// The events a memory sink received (PostHog batch items), or None for other sinks.
    fn memory_events<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.client().memory() {
            None => Ok(None),
            Some(m) => convert::to_py(py, &Value::Array(m.events())).map(Some),
        }
    }
}

fn stats_to_py(py: Python<'_>, stats: telemetry_core::Stats) -> PyResult<Bound<'_, PyAny>> {
    let value = serde_json::to_value(stats).map_err(|e| PyValueError::new_err(e.to_string()))?;
    convert::to_py(py, &value)
}

impl Drop for NativeClient {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Dropping the core client shuts it down (bounded by its deadline); do that
            // without the GIL so other threads can run meanwhile.
            // SAFETY: a pyclass is dropped from tp_dealloc, with the thread attached.
            let py = unsafe { Python::assume_attached() };
            py.detach(move || drop(client));
            logging::emit_pending(py);
        }
    }
}
