//! `telemetry_core._native`: the PyO3 module under the `telemetry_core` Python package.
//!
//! A thin binding, as DESIGN.md asks: it converts Python values to the core's types and
//! maps errors to one exception root. Consent, anonymization, batching and delivery all
//! happen in `telemetry-core`. Users import `telemetry_core`, never this module.
//!
//! ```python
//! from telemetry_core import _native
//! client = _native.NativeClient({"product": "app", "sink": "memory"})
//! client.capture("started", {"mode": "server"})
//! client.shutdown(1.0)
//! ```

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use telemetry_core::anonymize::{self, LocalNames, PropertyKind};

/// Every event is allocated on the caller's thread and freed on the worker's; with the
/// system allocator that cross-thread traffic made an enabled capture several times
/// slower. polars ships with a global allocator for the same reason.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod capture_fn;
mod cli;
mod client;
mod convert;
mod crash;
mod logging;
mod timing;
mod traces;
mod usage;

create_exception!(
    telemetry_core._native,
    TelemetryError,
    PyException,
    "The root of every exception telemetry_core raises.\n\nWrong argument types raise TypeError instead, as everywhere in Python."
);
create_exception!(
    telemetry_core._native,
    ConfigurationError,
    TelemetryError,
    "The settings cannot make a client.\n\nAn unknown sink or profile, a missing endpoint or API key, plain HTTP to a\nnon-loopback host."
);
create_exception!(
    telemetry_core._native,
    InvalidEventError,
    TelemetryError,
    "An event the core refuses.\n\nAn empty or over-long name, an empty batch key, an unknown property kind."
);

create_exception!(
    telemetry_core._native,
    UsageError,
    TelemetryError,
    "A usage-statistics declaration or recording the core refuses.\n\nA bad family or section name, a wrong number of label values, bounds that are not\nincreasing positive durations, an unknown kind, a negative duration or count."
);

/// Anonymizes one property value exactly as the worker would, for the shared test vectors
/// and for people checking what a value becomes.
///
/// Returns None when the property is dropped, else a 1-tuple holding the anonymized value
/// (which may itself be None).
#[pyfunction]
#[pyo3(signature = (value, kind, secret_hex, precision, local_names=None))]
fn anonymize_value<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
    kind: Option<&str>,
    secret_hex: &str,
    precision: u32,
    local_names: Option<&Bound<'py, PyDict>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let kind = kind
        .map(str::parse::<PropertyKind>)
        .transpose()
        .map_err(PyValueError::new_err)?;
    let secret = anonymize::from_hex_secret(secret_hex).map_err(PyValueError::new_err)?;
    let mut names = LocalNames::default();
    if let Some(d) = local_names {
        let field = |key: &str| -> PyResult<Option<String>> {
            match d.get_item(key)? {
                Some(v) if !v.is_none() => Ok(Some(v.extract()?)),
                _ => Ok(None),
            }
        };
        names.home = field("home")?;
        names.user = field("user")?;
        names.host = field("host")?;
    }
    let input = convert::to_value(value, "value")?;
    match anonymize::anonymize_json(secret, precision, names, kind, input) {
        None => Ok(None),
        Some(v) => Ok(Some(
            pyo3::types::PyTuple::new(py, [convert::to_py(py, &v)?])?.into_any(),
        )),
    }
}

/// Parses a boolean the way every consent source does: `1 true yes on` / `0 false no off`,
/// case-insensitive and trimmed; empty means None (unset); anything else raises ValueError.
#[pyfunction]
fn parse_bool(value: &str) -> PyResult<Option<bool>> {
    telemetry_core::consent::parse_bool(value).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The module: classes, exceptions, helpers, and the bridge from Rust `log` to `logging`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    logging::install();
    m.add("CORE_VERSION", telemetry_core::context::CORE_VERSION)?;
    m.add(
        "MAX_ERROR_FRAMES",
        telemetry_core::crash::report::MAX_FRAMES,
    )?;
    m.add(
        "MAX_ERROR_CAUSES",
        telemetry_core::crash::report::MAX_CAUSES,
    )?;
    m.add("TelemetryError", py.get_type::<TelemetryError>())?;
    m.add("ConfigurationError", py.get_type::<ConfigurationError>())?;
    m.add("InvalidEventError", py.get_type::<InvalidEventError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add_class::<client::NativeClient>()?;
    m.add_class::<usage::PyUsage>()?;
    m.add_class::<usage::PyTimingFamily>()?;
    m.add_class::<usage::PyCounterFamily>()?;
    m.add_class::<usage::PyCounter>()?;
    m.add_class::<usage::PyResponse>()?;
    m.add_class::<usage::PyUsageServer>()?;
    m.add_class::<timing::PyTiming>()?;
    m.add_class::<timing::PyTimingScope>()?;
    m.add_class::<timing::PyTimedFunction>()?;
    m.add_class::<timing::PyTimingSnapshot>()?;
    m.add_class::<traces::PyTracer>()?;
    m.add_class::<traces::PySpan>()?;
    m.add_class::<traces::PySpanContext>()?;
    m.add_class::<traces::PyAttributes>()?;
    m.add("CURRENT_SPAN", traces::current_span_var(py)?)?;
    m.add_function(wrap_pyfunction!(traces::extract_traceparent, m)?)?;
    m.add_function(wrap_pyfunction!(traces::should_sample, m)?)?;
    m.add_function(wrap_pyfunction!(traces::_set_host_parent, m)?)?;
    m.add_function(wrap_pyfunction!(traces::_after_fork, m)?)?;
    m.add_function(wrap_pyfunction!(anonymize_value, m)?)?;
    m.add_function(wrap_pyfunction!(parse_bool, m)?)?;
    m.add_function(wrap_pyfunction!(cli::run_cli, m)?)?;
    m.add_function(wrap_pyfunction!(logging::_python_exiting, m)?)?;
    m.add_function(wrap_pyfunction!(crash::_prepare_error_reports, m)?)?;
    Ok(())
}
