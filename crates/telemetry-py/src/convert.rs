//! Python values <-> `serde_json::Value`, directly, with no JSON text in between.
//!
//! This is the hot path of an enabled `capture`: exact built-in types are checked first
//! (one pointer comparison each), subclasses and numeric protocols after. Anything else is
//! a programming error in the host and raises `TypeError` naming the property.

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Deeper nesting than this is refused: telemetry properties are small, flat facts, and a
/// self-referencing list must not overflow the stack.
const MAX_DEPTH: usize = 32;

const ACCEPTED: &str = "str, int, float, bool, None, or lists, tuples and dicts of those";

/// Converts a property value; `path` names it in error messages (`property 'tags'[2]`).
pub fn to_value(obj: &Bound<'_, PyAny>, path: &dyn Fn() -> String) -> PyResult<Value> {
    convert(obj, path, 0)
}

fn convert(obj: &Bound<'_, PyAny>, path: &dyn Fn() -> String, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "{} is nested deeper than {MAX_DEPTH} levels",
            path()
        )));
    }
    // Exact types first: by far the most common, and the cheapest checks.
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return Ok(Value::String(string(s)?));
    }
    if let Ok(b) = obj.cast_exact::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast_exact::<PyInt>() {
        return int_value(i, path);
    }
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        return Ok(float_value(f.value()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return dict_value(d, path, depth);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return seq_value(l.iter(), path, depth);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return seq_value(t.iter(), path, depth);
    }
    // Subclasses: str/int enums (StrEnum, IntEnum), then anything usable as an integer
    // (numpy integers) or a float (numpy floats), as Python's own `operator.index` and
    // `float()` would take them.
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(string(s)?));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return int_value(i, path);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(float_value(f.value()));
    }
    if obj.hasattr(pyo3::intern!(obj.py(), "__index__"))? {
        let index = obj.call_method0(pyo3::intern!(obj.py(), "__index__"))?;
        if let Ok(i) = index.cast::<PyInt>() {
            return int_value(i, path);
        }
    }
    if obj.hasattr(pyo3::intern!(obj.py(), "__float__"))? {
        let f: f64 = obj
            .call_method0(pyo3::intern!(obj.py(), "__float__"))?
            .extract()?;
        return Ok(float_value(f));
    }
    let type_name = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    Err(PyTypeError::new_err(format!(
        "{} has type {type_name}: telemetry properties are {ACCEPTED}",
        path()
    )))
}

fn int_value(i: &Bound<'_, PyInt>, path: &dyn Fn() -> String) -> PyResult<Value> {
    if let Ok(v) = i.extract::<i64>() {
        return Ok(Value::from(v));
    }
    if let Ok(v) = i.extract::<u64>() {
        return Ok(Value::from(v));
    }
    // Beyond 64 bits: a float keeps the magnitude, which is all rounding would keep anyway.
    let f: f64 = i
        .extract()
        .map_err(|_| PyOverflowError::new_err(format!("{} is too large an integer", path())))?;
    Ok(float_value(f))
}

/// NaN and infinities have no JSON form; the anonymizer turns them into null anyway.
fn float_value(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn dict_value(d: &Bound<'_, PyDict>, path: &dyn Fn() -> String, depth: usize) -> PyResult<Value> {
    let mut map = Map::new();
    for (k, v) in d.iter() {
        let key = dict_key(&k, path)?;
        let value = convert(&v, &|| format!("{}[{key:?}]", path()), depth + 1)?;
        map.insert(key, value);
    }
    Ok(Value::Object(map))
}

fn dict_key(k: &Bound<'_, PyAny>, path: &dyn Fn() -> String) -> PyResult<String> {
    match k.cast::<PyString>() {
        Ok(s) => string(s),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{} has a key of type {}: dictionary keys must be str",
            path(),
            k.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into())
        ))),
    }
}

fn seq_value<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    path: &dyn Fn() -> String,
    depth: usize,
) -> PyResult<Value> {
    let mut out = Vec::new();
    for (n, item) in items.enumerate() {
        out.push(convert(&item, &|| format!("{}[{n}]", path()), depth + 1)?);
    }
    Ok(Value::Array(out))
}

/// Converts the properties of one event: a dict with str keys.
pub fn properties(d: &Bound<'_, PyDict>) -> PyResult<Map<String, Value>> {
    let mut map = Map::new();
    for (k, v) in d.iter() {
        let key = dict_key(&k, &|| "the properties".to_string())?;
        let value = convert(&v, &|| format!("property {key:?}"), 0)?;
        map.insert(key, value);
    }
    Ok(map)
}

/// A JSON value as plain Python objects (dict, list, str, int, float, bool, None).
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// A Python str as a Rust String, copied once from the str's cached UTF-8 form.
///
/// This runs for every key and string value of every enabled capture. PyO3's safe path
/// under the abi3-py39 limited API (`to_cow`) first makes a temporary `bytes` object,
/// because `PyUnicode_AsUTF8AndSize` only joined the limited API in 3.10; that doubled the
/// cost of a capture. The function itself has been exported by every CPython since 3.3,
/// so an abi3 module may call it on 3.9 too.
pub fn string(s: &Bound<'_, PyString>) -> PyResult<String> {
    let mut size: pyo3::ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live str; the returned buffer belongs to it and stays valid while
    // we hold the reference, and we copy it before returning.
    let data = unsafe { as_utf8_and_size(s.as_ptr(), &mut size) };
    if data.is_null() {
        // Lone surrogates cannot be encoded; the pending Python exception says so.
        return Err(PyErr::fetch(s.py()));
    }
    // SAFETY: CPython guarantees `size` valid UTF-8 bytes at `data`.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) };
    // SAFETY: the bytes are UTF-8 (see above).
    Ok(unsafe { std::str::from_utf8_unchecked(bytes) }.to_owned())
}

#[cfg(any(Py_3_10, not(Py_LIMITED_API)))]
use pyo3::ffi::PyUnicode_AsUTF8AndSize as as_utf8_and_size;

#[cfg(all(Py_LIMITED_API, not(Py_3_10)))]
extern "C" {
    #[link_name = "PyUnicode_AsUTF8AndSize"]
    fn as_utf8_and_size(
        unicode: *mut pyo3::ffi::PyObject,
        size: *mut pyo3::ffi::Py_ssize_t,
    ) -> *const std::os::raw::c_char;
}
