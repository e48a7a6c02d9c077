//! Usage statistics for Python (Qdrant's model): the `Usage` registry of a client, its
//! timing and counter families and their handles, the local endpoints as a function and
//! as a loopback server. Every rule (names, labels, bounds, details levels, anonymization,
//! the endpoints' answers) is the core's; this file converts values and maps errors to
//! `UsageError`. Sections are values the host pushes from its own threads: no core thread
//! ever calls into Python.
//!
//! ```python
//! usage = client.usage
//! rest = usage.timing("rest_responses", labels={"route": "safe", "status": "safe"})
//! with rest.labels("GET /collections", 200):
//!     ...
//! usage.set_section("collections", {"number": 2}, kinds={"number": "exact"})
//! print(usage.prometheus())
//! ```

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PyString, PyTuple};
use telemetry_core::anonymize::PropertyKind;
use telemetry_core::usage::{
    endpoint, Counter, CounterFamily, ReportOptions, Section, Timing, TimingFamily, Usage,
    DEFAULT_BOUNDS,
};

use crate::convert;
use crate::logging;
use crate::timing::{self, PyTiming, PyTimingScope, PyTimingSnapshot};
use crate::UsageError;

// The `max_keys=1024` of the signatures below, spelled out so that Python shows it: the
// core's default, which this keeps them equal to.
const _: () = assert!(telemetry_core::usage::DEFAULT_MAX_KEYS == 1024);

fn usage_error(e: telemetry_core::usage::UsageError) -> PyErr {
    UsageError::new_err(e.0)
}

fn kind(text: &Bound<'_, PyAny>, what: &str) -> PyResult<PropertyKind> {
    if text.is_none() {
        return Ok(PropertyKind::Hashed);
    }
    let text = text.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a kind such as 'safe' or 'hashed' (a str), not {}",
            convert::type_name(text)
        ))
    })?;
    PropertyKind::from_str(convert::as_str(text)?)
        .map_err(|e| UsageError::new_err(format!("{what}: {e}")))
}

/// `labels=`: a mapping of name to kind, or a sequence of names and (name, kind) pairs;
/// a kind left out (or None) is `hashed`.
fn labels(spec: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, PropertyKind)>> {
    let Some(spec) = spec.filter(|s| !s.is_none()) else {
        return Ok(Vec::new());
    };
    let label_kind = |name: &str, k: &Bound<'_, PyAny>| kind(k, &format!("label {name:?}"));
    let name_of = |n: &Bound<'_, PyAny>| -> PyResult<String> {
        match n.cast::<PyString>() {
            Ok(s) => convert::string(s),
            Err(_) => Err(PyTypeError::new_err(format!(
                "label names must be str, not {}",
                convert::type_name(n)
            ))),
        }
    };
    if spec.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "labels must be a mapping of names to kinds or a sequence of names, not a str",
        ));
    }
    let mut out = Vec::new();
    if let Ok(d) = spec.cast::<PyDict>() {
        for (n, k) in d.iter() {
            let name = name_of(&n)?;
            let kind = label_kind(&name, &k)?;
            out.push((name, kind));
        }
        return Ok(out);
    }
    let py = spec.py();
    if spec.hasattr(pyo3::intern!(py, "items"))? {
        for pair in spec.call_method0(pyo3::intern!(py, "items"))?.try_iter()? {
            let (n, k): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
            let name = name_of(&n)?;
            let kind = label_kind(&name, &k)?;
            out.push((name, kind));
        }
        return Ok(out);
    }
    let items = spec.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "labels must be a mapping of names to kinds or a sequence of names, not {}",
            convert::type_name(spec)
        ))
    })?;
    for item in items {
        let item = item?;
        if item.is_instance_of::<PyString>() {
            out.push((name_of(&item)?, PropertyKind::Hashed));
            continue;
        }
        let pair = item
            .cast::<PyTuple>()
            .map(|t| t.to_list())
            .or_else(|_| item.cast::<PyList>().cloned())
            .ok()
            .filter(|p| p.len() == 2)
            .ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "each label is a name or a (name, kind) pair, not {}",
                    convert::type_name(&item)
                ))
            })?;
        let (n, k) = (pair.get_item(0)?, pair.get_item(1)?);
        let name = name_of(&n)?;
        let kind = label_kind(&name, &k)?;
        out.push((name, kind));
    }
    Ok(out)
}

/// Most labels a family may have (the core refuses more): the values of a recording are
/// handed to the core from the stack up to this many.
const MAX_LABELS: usize = 8;

/// Ints below this have their decimal strs made once (HTTP status codes are the usual
/// int labels).
const SMALL_INTS: i64 = 1000;

/// A label value as an exact str: a str as it is (a subclass, such as a `StrEnum`, by its
/// text, as event properties are taken), an int (a status code, an `IntEnum`) in decimal.
fn label_str<'py>(v: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let py = v.py();
    if let Ok(s) = v.cast_exact::<PyString>() {
        return Ok(s.clone());
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(PyString::new(py, convert::as_str(s)?));
    }
    if v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>() {
        return Ok(match v.extract::<i64>() {
            // Status codes, mostly: their strs are made once.
            Ok(n @ 0..SMALL_INTS) => {
                static SMALL: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();
                let small = SMALL.get_or_init(py, || {
                    (0..SMALL_INTS)
                        .map(|n| PyString::new(py, &n.to_string()).unbind())
                        .collect()
                });
                small[n as usize].bind(py).clone()
            }
            Ok(n) => PyString::new(py, &n.to_string()),
            // Beyond 64 bits, Python's own decimal form of the plain int.
            Err(_) => py.get_type::<PyInt>().call1((v,))?.str()?,
        });
    }
    Err(PyTypeError::new_err(format!(
        "label values must be str or int, not {}",
        convert::type_name(v)
    )))
}

/// The label values of a `labels(...)` call as a tuple of exact strs, in the family's
/// order: by position, or by name (not both). For the common call, positional strs, it is
/// the call's own tuple. Their number is the core's to check.
fn label_tuple<'py>(
    names: &[String],
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let py = args.py();
    match kwargs.filter(|k| !k.is_empty()) {
        None if args.iter().all(|v| v.is_exact_instance_of::<PyString>()) => Ok(args.clone()),
        None => {
            let values = args
                .iter()
                .map(|v| label_str(&v))
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, values)
        }
        Some(_) if !args.is_empty() => Err(PyTypeError::new_err(
            "labels() takes the values either by position or by name, not both",
        )),
        Some(named) => {
            for key in named.keys() {
                let key: String = key.extract()?;
                if !names.contains(&key) {
                    return Err(UsageError::new_err(format!(
                        "unknown label {key:?}; the labels are {}",
                        names.join(", ")
                    )));
                }
            }
            let values = names
                .iter()
                .map(|n| match named.get_item(n)? {
                    Some(v) => label_str(&v),
                    None => Err(UsageError::new_err(format!("label {n:?} has no value"))),
                })
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, values)
        }
    }
}

/// Calls `f` with the strs of `values` (made by [`label_tuple`]) read in place.
fn with_strs<R>(values: &Bound<'_, PyTuple>, f: impl FnOnce(&[&str]) -> R) -> PyResult<R> {
    let n = values.len();
    if n > MAX_LABELS {
        // More than any family has: the core says so.
        let items: Vec<Bound<'_, PyString>> = values
            .iter()
            .map(|v| v.cast_into::<PyString>().map_err(PyErr::from))
            .collect::<PyResult<_>>()?;
        let refs = items
            .iter()
            .map(convert::as_str)
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(f(&refs));
    }
    let mut items: [Option<Bound<'_, PyString>>; MAX_LABELS] = Default::default();
    for (slot, v) in items.iter_mut().zip(values.iter()) {
        *slot = Some(v.cast_into::<PyString>()?);
    }
    let mut refs: [&str; MAX_LABELS] = [""; MAX_LABELS];
    for (r, item) in refs.iter_mut().zip(items.iter().flatten()) {
        *r = convert::as_str(item)?;
    }
    Ok(f(&refs[..n]))
}

/// `("a", "b")`, as reprs show label values.
pub(crate) fn show_values(values: &Bound<'_, PyTuple>) -> String {
    let shown: Vec<String> = values
        .iter()
        .map(|v| match v.cast::<PyString>() {
            Ok(s) => format!("{:?}", convert::as_str(s).unwrap_or("?")),
            Err(_) => "?".to_string(),
        })
        .collect();
    shown.join(", ")
}

fn count(n: &Bound<'_, PyAny>) -> PyResult<u64> {
    if !n.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "a counter adds an int, not {}",
            convert::type_name(n)
        )));
    }
    n.extract::<u64>().map_err(|_| {
        UsageError::new_err(format!(
            "a counter only goes up: add an int from 0 to 2**64-1, not {n}"
        ))
    })
}

fn kinds(d: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, PropertyKind)>> {
    let Some(d) = d.filter(|d| !d.is_none()) else {
        return Ok(Vec::new());
    };
    let py = d.py();
    if !d.hasattr(pyo3::intern!(py, "items"))? {
        return Err(PyTypeError::new_err(format!(
            "kinds must be a mapping of field names to kinds, not {}",
            convert::type_name(d)
        )));
    }
    let mut out = Vec::new();
    for pair in d.call_method0(pyo3::intern!(py, "items"))?.try_iter()? {
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
        let key: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err("kinds: field names must be str"))?;
        let kind = kind(&v, &format!("kinds[{key:?}]"))?;
        out.push((key, kind));
    }
    Ok(out)
}

fn section(
    value: &Bound<'_, PyAny>,
    kinds_: Option<&Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Section> {
    let value = convert::to_value(value, what)?;
    Ok(Section::new(value).kinds(kinds(kinds_)?))
}

/// The usage statistics of one client: declare timings and counters, push sections,
/// render the report and the Prometheus text, serve them.
///
/// Recording works whether telemetry is on or off (the numbers are the operator's own,
/// and the local endpoints always answer); only sending the report home follows consent.
#[pyclass(frozen, module = "telemetry_core._native", name = "Usage")]
pub struct PyUsage {
    usage: Usage,
    product: String,
}

impl PyUsage {
    pub(crate) fn new(usage: Usage, product: &str) -> Self {
        PyUsage {
            usage,
            product: product.to_string(),
        }
    }
}

#[pymethods]
impl PyUsage {
    /// Declares (or finds again) the operation timing family `name`.
    ///
    /// `labels`: names with their kinds, as a dict (``{"route": "safe"}``) or a sequence
    /// of names and ``(name, kind)`` pairs; a kind left out is ``hashed``. `bounds`: the
    /// histogram's bucket bounds in seconds (default Qdrant's, 1 ms to 50 s). `max_keys`:
    /// most label sets kept; later new ones share one overflow key (``__other__``).
    #[pyo3(signature = (name, *, labels=None, help="", bounds=None, max_keys=1024))]
    fn timing(
        &self,
        py: Python<'_>,
        name: &str,
        labels: Option<&Bound<'_, PyAny>>,
        help: &str,
        bounds: Option<&Bound<'_, PyAny>>,
        max_keys: usize,
    ) -> PyResult<PyTimingFamily> {
        let declared = self::labels(labels)?;
        let mut builder = self.usage.timing(name).help(help).max_keys(max_keys);
        for (label, kind) in &declared {
            builder = builder.label(label, *kind);
        }
        let bounds: Vec<Duration> = match bounds.filter(|b| !b.is_none()) {
            None => DEFAULT_BOUNDS.to_vec(),
            Some(b) => {
                if b.is_instance_of::<PyString>() {
                    return Err(PyTypeError::new_err("bounds must be a sequence of seconds"));
                }
                let mut out = Vec::new();
                for item in b.try_iter()? {
                    out.push(timing::seconds(&item?, "each bound")?);
                }
                out
            }
        };
        let family = builder.bounds(&bounds).build().map_err(usage_error)?;
        let label_names: Vec<String> = declared.into_iter().map(|(n, _)| n).collect();
        let bounds: Arc<[f64]> = bounds.iter().map(Duration::as_secs_f64).collect();
        let unlabeled = family
            .with(&[])
            .map(|t| PyTiming {
                timing: t,
                family: name.into(),
                values: PyTuple::empty(py).unbind(),
                bounds: bounds.clone(),
            })
            .map_err(|e| e.0);
        Ok(PyTimingFamily {
            family,
            name: name.into(),
            label_names,
            bounds,
            unlabeled,
        })
    }

    /// Declares (or finds again) the counter family `name`; `labels` and `max_keys` as for
    /// ``timing``.
    #[pyo3(signature = (name, *, labels=None, help="", max_keys=1024))]
    fn counter(
        &self,
        name: &str,
        labels: Option<&Bound<'_, PyAny>>,
        help: &str,
        max_keys: usize,
    ) -> PyResult<PyCounterFamily> {
        let declared = self::labels(labels)?;
        let mut builder = self.usage.counter(name).help(help).max_keys(max_keys);
        for (label, kind) in &declared {
            builder = builder.label(label, *kind);
        }
        let family = builder.build().map_err(usage_error)?;
        let unlabeled = family.with(&[]).map_err(|e| e.0);
        Ok(PyCounterFamily {
            family,
            name: name.into(),
            label_names: declared.into_iter().map(|(n, _)| n).collect(),
            unlabeled,
        })
    }

    /// Sets (or replaces) the section `name` of the report to `value` (JSON-like data as
    /// it is now: push a new value when it changes). `kinds` declares how fields are
    /// anonymized (``{"number": "exact"}``; others go by their type: strings hashed,
    /// numbers rounded); `level` is the lowest details level that shows it (0 to 4).
    #[pyo3(signature = (name, value, *, kinds=None, level=2))]
    fn set_section(
        &self,
        name: &str,
        value: &Bound<'_, PyAny>,
        kinds: Option<&Bound<'_, PyAny>>,
        level: i64,
    ) -> PyResult<()> {
        let level = self::level(level, "level")?;
        let section = section(value, kinds, "value")?.level(level);
        self.usage.set_section(name, section).map_err(usage_error)
    }

    /// Removes the section `name`; True if it was there.
    fn remove_section(&self, name: &str) -> bool {
        self.usage.remove_section(name)
    }

    /// Fields added to the report's ``app`` object (features, startup time, ...), with
    /// their `kinds` as for ``set_section``; ``name`` and ``version`` stay the core's.
    #[pyo3(signature = (fields, *, kinds=None))]
    fn set_app_fields(
        &self,
        fields: &Bound<'_, PyAny>,
        kinds: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if !fields.is_instance_of::<PyDict>() {
            return Err(PyTypeError::new_err(format!(
                "app fields must be a dict, not {}",
                convert::type_name(fields)
            )));
        }
        self.usage.set_app_fields(section(fields, kinds, "fields")?);
        Ok(())
    }

    /// The directory the host keeps its data in: the report gives the size and type of
    /// the disk holding it (from details level 1), never its path.
    fn set_data_dir(&self, path: PathBuf) {
        self.usage.set_data_dir(path);
    }

    /// The report as a dict. `details_level` 0 to 4 (higher means 4): 0 totals, 1 adds
    /// system information and extremes, 2 per label set and sections, 3 histograms.
    /// `anonymize`: as sent home (label values by kind, durations rounded, counts exact).
    /// `histograms`: include them whatever the level (None: from level 3).
    #[pyo3(signature = (details_level=0, anonymize=false, histograms=None))]
    fn report<'py>(
        &self,
        py: Python<'py>,
        details_level: i64,
        anonymize: bool,
        histograms: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = ReportOptions {
            details_level: level(details_level, "details_level")?,
            anonymize,
            histograms,
        };
        let usage = &self.usage;
        let report = py.detach(|| usage.report(&options));
        logging::emit_pending(py);
        convert::to_py(py, &report)
    }

    /// The Prometheus text exposition (version 0.0.4) of every declared family;
    /// `anonymize` as for ``report``.
    #[pyo3(signature = (anonymize=false))]
    fn prometheus(&self, py: Python<'_>, anonymize: bool) -> String {
        let usage = &self.usage;
        let text = py.detach(|| usage.prometheus(anonymize));
        logging::emit_pending(py);
        text
    }

    /// Answers one HTTP request for ``/telemetry`` or ``/metrics``, for any host server:
    /// `query` is the raw query string (without ``?``). The status, content type and body
    /// are the core's: 400 for a bad query, 404 for another path, 405 for a method other
    /// than GET and HEAD (send no body for HEAD).
    #[pyo3(signature = (path, query="", method="GET"))]
    fn handle(&self, py: Python<'_>, path: &str, query: &str, method: &str) -> PyResponse {
        let usage = &self.usage;
        let r = py.detach(|| endpoint::handle_method(usage, method, path, query));
        logging::emit_pending(py);
        let mut headers = vec![
            ("Content-Type".to_string(), r.content_type.to_string()),
            ("Content-Length".to_string(), r.body.len().to_string()),
        ];
        if r.status == 405 {
            headers.push(("Allow".to_string(), endpoint::ALLOWED_METHODS.to_string()));
        }
        PyResponse {
            status: r.status,
            content_type: r.content_type.to_string(),
            body: r.body,
            headers,
        }
    }

    /// Serves ``/telemetry`` and ``/metrics`` on `address`, a loopback address such as
    /// ``"127.0.0.1:9464"`` (port 0 picks a free one), on a thread of the core's until
    /// ``close()``. Raises UsageError for other addresses: serving further is the host's
    /// decision, with its own server (see ``telemetry_core.usage.wsgi_app``).
    fn serve(&self, py: Python<'_>, address: &str) -> PyResult<PyUsageServer> {
        let usage = &self.usage;
        let server = py.detach(|| usage.serve(address)).map_err(usage_error)?;
        let addr = server.addr();
        Ok(PyUsageServer {
            url: server.url(),
            host: addr.ip().to_string(),
            port: addr.port(),
            pid: std::process::id(),
            server: Mutex::new(Some(server)),
        })
    }

    /// The product whose statistics these are.
    #[getter]
    fn product(&self) -> &str {
        &self.product
    }

    fn __repr__(&self) -> String {
        format!("<telemetry_core.Usage product={:?}>", self.product)
    }
}

/// A details level from Python: a whole number from 0; any higher than the core's highest
/// means its highest (the core clamps it, so a saturated 255 says the same).
fn level(value: i64, what: &str) -> PyResult<u8> {
    if value < 0 {
        return Err(UsageError::new_err(format!(
            "{what} must be a whole number from 0, not {value}"
        )));
    }
    Ok(u8::try_from(value).unwrap_or(u8::MAX))
}

/// A declared timing family: ``labels(...)`` gives the handle of one label set. A family
/// declared without labels is itself a handle: ``with family:``, ``@family``,
/// ``family.record(seconds)``.
#[pyclass(frozen, module = "telemetry_core._native", name = "TimingFamily")]
pub struct PyTimingFamily {
    family: TimingFamily,
    name: Arc<str>,
    label_names: Vec<String>,
    bounds: Arc<[f64]>,
    /// The handle of a family without labels; for one with labels, the core's reason why
    /// it has none.
    unlabeled: Result<PyTiming, String>,
}

impl PyTimingFamily {
    fn unlabeled(&self) -> PyResult<&PyTiming> {
        self.unlabeled
            .as_ref()
            .map_err(|e| UsageError::new_err(format!("{e}: use {}.labels(...)", self.name)))
    }

    fn handle(&self, values: Bound<'_, PyTuple>) -> PyResult<PyTiming> {
        let timing: Timing = with_strs(&values, |v| self.family.with(v))?.map_err(usage_error)?;
        Ok(PyTiming {
            timing,
            family: self.name.clone(),
            values: values.unbind(),
            bounds: self.bounds.clone(),
        })
    }
}

#[pymethods]
impl PyTimingFamily {
    /// The handle of one label set, given by position in the declared order or by name
    /// (``labels("GET /", 200)``, ``labels(route="GET /", status=200)``); values are str
    /// or int. Made on first use; cheap to keep and share between threads.
    #[pyo3(signature = (*values, **named))]
    fn labels(
        &self,
        values: &Bound<'_, PyTuple>,
        named: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyTiming> {
        self.handle(label_tuple(&self.label_names, values, named)?)
    }

    /// The family's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The declared label names, in order.
    #[getter]
    fn label_names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.label_names)
    }

    /// The histogram's bucket bounds, in seconds.
    #[getter]
    fn bounds<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.bounds.iter())
    }

    /// As ``Timing.__enter__``, for a family without labels.
    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        slf.get().unlabeled()?;
        timing::enter(slf.py(), slf.as_ptr() as usize);
        Ok(slf.clone())
    }

    /// As ``Timing.__exit__``, for a family without labels.
    fn __exit__(
        slf: &Bound<'_, Self>,
        exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let handle = slf.get().unlabeled()?;
        let started = timing::exit(slf.py(), slf.as_ptr() as usize, "TimingFamily")?;
        timing::finish(&handle.timing, started, !exc_type.is_none());
        Ok(false)
    }

    /// As ``Timing.__call__`` (``@family``), for a family without labels.
    fn __call__<'py>(&self, func: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let handle = self.unlabeled()?;
        let handle = Bound::new(
            func.py(),
            PyTiming {
                timing: handle.timing.clone(),
                family: handle.family.clone(),
                values: PyTuple::empty(func.py()).unbind(),
                bounds: handle.bounds.clone(),
            },
        )?;
        timing::decorate(handle, func)
    }

    /// As ``Timing.start``, for a family without labels.
    fn start(&self) -> PyResult<PyTimingScope> {
        Ok(self.unlabeled()?.start_scope())
    }

    /// As ``Timing.record``, for a family without labels.
    #[pyo3(signature = (seconds, *, at=None))]
    fn record(&self, seconds: &Bound<'_, PyAny>, at: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.unlabeled()?.record_from(seconds, at)
    }

    /// As ``Timing.record_failure``, for a family without labels.
    #[pyo3(signature = (*, at=None))]
    fn record_failure(&self, at: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.unlabeled()?.record_failure_from(at)
    }

    /// As ``Timing.snapshot``, for a family without labels.
    fn snapshot(&self) -> PyResult<PyTimingSnapshot> {
        Ok(self.unlabeled()?.snapshot_now())
    }

    /// As ``Timing.count``, for a family without labels.
    #[getter]
    fn count(&self) -> PyResult<u64> {
        Ok(self.unlabeled()?.timing.snapshot().count)
    }

    /// As ``Timing.fail_count``, for a family without labels.
    #[getter]
    fn fail_count(&self) -> PyResult<u64> {
        Ok(self.unlabeled()?.timing.snapshot().fail_count)
    }

    fn __repr__(&self) -> String {
        format!(
            "<TimingFamily {} labels=({})>",
            self.name,
            self.label_names.join(", ")
        )
    }
}

/// A declared counter family: ``labels(...)`` gives the counter of one label set; a
/// family declared without labels is itself a counter (``family.inc()``).
#[pyclass(frozen, module = "telemetry_core._native", name = "CounterFamily")]
pub struct PyCounterFamily {
    family: CounterFamily,
    name: Arc<str>,
    label_names: Vec<String>,
    unlabeled: Result<Counter, String>,
}

impl PyCounterFamily {
    fn unlabeled(&self) -> PyResult<&Counter> {
        self.unlabeled
            .as_ref()
            .map_err(|e| UsageError::new_err(format!("{e}: use {}.labels(...)", self.name)))
    }
}

#[pymethods]
impl PyCounterFamily {
    /// The counter of one label set, by position or by name as ``TimingFamily.labels``.
    #[pyo3(signature = (*values, **named))]
    fn labels(
        &self,
        values: &Bound<'_, PyTuple>,
        named: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyCounter> {
        let values = label_tuple(&self.label_names, values, named)?;
        let counter = with_strs(&values, |v| self.family.with(v))?.map_err(usage_error)?;
        Ok(PyCounter {
            counter,
            family: self.name.clone(),
            values: values.unbind(),
        })
    }

    /// Adds `n` (default 1), for a family without labels.
    #[pyo3(signature = (n=None))]
    fn inc(&self, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let n = n.map(count).transpose()?.unwrap_or(1);
        self.unlabeled()?.add(n);
        Ok(())
    }

    /// The total now, for a family without labels.
    #[getter]
    fn value(&self) -> PyResult<u64> {
        Ok(self.unlabeled()?.get())
    }

    /// The family's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The declared label names, in order.
    #[getter]
    fn label_names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.label_names)
    }

    fn __repr__(&self) -> String {
        format!(
            "<CounterFamily {} labels=({})>",
            self.name,
            self.label_names.join(", ")
        )
    }
}

/// The counter of one label set; shared by many threads at once.
#[pyclass(frozen, module = "telemetry_core._native", name = "Counter")]
pub struct PyCounter {
    counter: Counter,
    family: Arc<str>,
    /// Exact strs only: nothing a cycle could run through.
    values: Py<PyTuple>,
}

#[pymethods]
impl PyCounter {
    /// Adds `n` (default 1; counters only go up).
    #[pyo3(signature = (n=None))]
    fn inc(&self, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let n = n.map(count).transpose()?.unwrap_or(1);
        self.counter.add(n);
        Ok(())
    }

    /// The total now.
    #[getter]
    fn value(&self) -> u64 {
        self.counter.get()
    }

    /// The label values of this counter, in the family's label order.
    #[getter]
    fn label_values<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        self.values.bind(py).clone()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<Counter {}({}) value={}>",
            self.family,
            show_values(self.values.bind(py)),
            self.counter.get()
        )
    }
}

/// An HTTP answer from ``Usage.handle``, for the host's server to send.
#[pyclass(frozen, module = "telemetry_core._native", name = "Response")]
pub struct PyResponse {
    /// 200, 400 (a bad query), 404 (another path) or 405 (a method other than GET, HEAD).
    #[pyo3(get)]
    status: u16,
    /// ``application/json``, or the Prometheus text format's.
    #[pyo3(get)]
    content_type: String,
    /// The body (send it UTF-8 encoded; nothing for HEAD).
    #[pyo3(get)]
    body: String,
    /// ``Content-Type``, ``Content-Length`` of the UTF-8 body, and ``Allow`` with a 405.
    #[pyo3(get)]
    headers: Vec<(String, String)>,
}

#[pymethods]
impl PyResponse {
    fn __repr__(&self) -> String {
        format!(
            "<Response {} {} ({} bytes)>",
            self.status,
            self.content_type,
            self.body.len()
        )
    }
}

/// ``/telemetry`` and ``/metrics`` served on a loopback port by a thread of the core's
/// (it renders without the GIL and never calls into Python) until ``close()``, the end of
/// a ``with`` block, or garbage collection.
#[pyclass(frozen, module = "telemetry_core._native", name = "UsageServer")]
pub struct PyUsageServer {
    server: Mutex<Option<telemetry_core::usage::UsageServer>>,
    /// ``http://HOST:PORT``.
    #[pyo3(get)]
    url: String,
    /// The address it listens on.
    #[pyo3(get)]
    host: String,
    /// The port it listens on (the one picked when port 0 was asked for).
    #[pyo3(get)]
    port: u16,
    /// The process that started it: a forked child has the struct but not the thread.
    pid: u32,
}

impl PyUsageServer {
    fn take(&self) -> Option<telemetry_core::usage::UsageServer> {
        self.server.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Stops `server` without the GIL; in a forked child, whose copy has no thread to join,
/// it is forgotten instead (joining would wait forever).
fn stop(py: Python<'_>, server: telemetry_core::usage::UsageServer, pid: u32) {
    if pid == std::process::id() {
        py.detach(move || drop(server));
    } else {
        std::mem::forget(server);
    }
}

#[pymethods]
impl PyUsageServer {
    /// Stops serving (idempotent); returns once the serving thread has stopped, so
    /// nothing is answered after it (the port itself closes a moment later).
    fn close(&self, py: Python<'_>) {
        if let Some(server) = self.take() {
            stop(py, server, self.pid);
        }
    }

    /// Whether ``close()`` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> Bound<'py, Self> {
        slf.clone()
    }

    /// Closes the server. Returns False.
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { "closed" } else { "serving" };
        format!("<UsageServer {} {state}>", self.url)
    }
}

impl Drop for PyUsageServer {
    fn drop(&mut self) {
        if let Some(server) = self.take() {
            // SAFETY: a pyclass is dropped from tp_dealloc, with the thread attached.
            let py = unsafe { Python::assume_attached() };
            stop(py, server, self.pid);
        }
    }
}
