//! Python values -> JSON (through serde) and JSON -> Python values.
//!
//! Python values are read through a `Serialize` view, so one walk over the objects serves
//! both outputs: `serde_json::to_value` for configuration and declared events, and
//! `serde_json::to_writer` for the hot path of an enabled capture, which writes the
//! properties as JSON text straight from the Python objects (strings read in place, no
//! allocation per key or value) into the core's [`EncodedEvent`].
//!
//! Exact built-in types are checked first (one pointer comparison each), subclasses and
//! numeric protocols after. Anything else is a programming error in the host and raises
//! `TypeError` naming the property.

use std::cell::Cell;
use std::fmt;

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};
use telemetry_core::encoded::{EncodeError, EncodedEvent};

use crate::InvalidEventError;

/// Deeper nesting than this is refused: telemetry properties are small, flat facts, and a
/// self-referencing list must not overflow the stack.
const MAX_DEPTH: usize = 32;

const ACCEPTED: &str = "str, int, float, bool, None, or lists, tuples and dicts of those";

/// Where a value sits, for error messages: `property "tags"[2]`, `config["sink"]`.
#[derive(Clone, Copy)]
enum Path<'a> {
    /// A whole value with a name (`config`, `value`).
    Named(&'a str),
    /// The properties of an event; its entries print as `property "key"`.
    Properties,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Named(name) => f.write_str(name),
            Path::Properties => f.write_str("the properties"),
            Path::Key(Path::Properties, key) => write!(f, "property {key:?}"),
            Path::Key(parent, key) => write!(f, "{parent}[{key:?}]"),
            Path::Index(parent, n) => write!(f, "{parent}[{n}]"),
        }
    }
}

/// A Python value as serde sees it.
///
/// serde errors carry only text, so the first Python exception met is kept in `raised`
/// and re-raised as is (`TypeError`, `OverflowError`, whatever a `__float__` raised).
struct PyValue<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    path: Path<'a>,
    depth: usize,
    raised: &'a Cell<Option<PyErr>>,
}

impl<'a, 'py> PyValue<'a, 'py> {
    fn child(&'a self, obj: &'a Bound<'py, PyAny>, path: Path<'a>) -> PyValue<'a, 'py> {
        PyValue {
            obj,
            path,
            depth: self.depth + 1,
            raised: self.raised,
        }
    }

    /// Keeps `err` for the caller and gives serde an error with its text.
    fn fail<E: ser::Error>(&self, err: PyErr) -> E {
        let text = err.to_string();
        self.raised.set(Some(err));
        E::custom(text)
    }

    fn int<S: Serializer>(&self, i: &Bound<'py, PyInt>, s: S) -> Result<S::Ok, S::Error> {
        if let Ok(v) = i.extract::<i64>() {
            return s.serialize_i64(v);
        }
        if let Ok(v) = i.extract::<u64>() {
            return s.serialize_u64(v);
        }
        // Beyond 64 bits: a float keeps the magnitude, which is all rounding would keep.
        match i.extract::<f64>() {
            Ok(f) => s.serialize_f64(f),
            Err(_) => Err(self.fail(PyOverflowError::new_err(format!(
                "{} is too large an integer",
                self.path
            )))),
        }
    }

    fn dict<S: Serializer>(&self, d: &Bound<'py, PyDict>, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(d.len()))?;
        for (k, v) in d.iter() {
            let key = dict_key(&k, &self.path).map_err(|e| self.fail(e))?;
            map.serialize_entry(key, &self.child(&v, Path::Key(&self.path, key)))?;
        }
        map.end()
    }

    fn seq<S: Serializer>(
        &self,
        len: usize,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(len))?;
        for (n, item) in items.enumerate() {
            seq.serialize_element(&self.child(&item, Path::Index(&self.path, n)))?;
        }
        seq.end()
    }
}

impl Serialize for PyValue<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let obj = self.obj;
        if self.depth > MAX_DEPTH {
            return Err(self.fail(PyValueError::new_err(format!(
                "{} is nested deeper than {MAX_DEPTH} levels",
                self.path
            ))));
        }
        // Exact types first: by far the most common, and the cheapest checks.
        if obj.is_none() {
            return s.serialize_unit();
        }
        if let Ok(text) = obj.cast_exact::<PyString>() {
            return s.serialize_str(as_str(text).map_err(|e| self.fail(e))?);
        }
        if let Ok(b) = obj.cast_exact::<PyBool>() {
            return s.serialize_bool(b.is_true());
        }
        if let Ok(i) = obj.cast_exact::<PyInt>() {
            return self.int(i, s);
        }
        if let Ok(f) = obj.cast_exact::<PyFloat>() {
            // NaN and infinities have no JSON form: serde_json makes them null, which is
            // what the anonymizer would make of them anyway.
            return s.serialize_f64(f.value());
        }
        if let Ok(d) = obj.cast::<PyDict>() {
            return self.dict(d, s);
        }
        if let Ok(l) = obj.cast::<PyList>() {
            return self.seq(l.len(), l.iter(), s);
        }
        if let Ok(t) = obj.cast::<PyTuple>() {
            return self.seq(t.len(), t.iter(), s);
        }
        // Subclasses: str/int enums (StrEnum, IntEnum), then anything usable as an integer
        // (numpy integers) or a float (numpy floats), as Python's own `operator.index` and
        // `float()` would take them.
        if let Ok(text) = obj.cast::<PyString>() {
            return s.serialize_str(as_str(text).map_err(|e| self.fail(e))?);
        }
        if let Ok(i) = obj.cast::<PyInt>() {
            return self.int(i, s);
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            return s.serialize_f64(f.value());
        }
        self.protocols(s)
    }
}

impl PyValue<'_, '_> {
    /// `__index__` and `__float__`, then a TypeError naming the property.
    fn protocols<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let obj = self.obj;
        let py = obj.py();
        let has = |name| obj.hasattr(name).map_err(|e| self.fail::<S::Error>(e));
        if has(pyo3::intern!(py, "__index__"))? {
            let index = obj
                .call_method0(pyo3::intern!(py, "__index__"))
                .map_err(|e| self.fail::<S::Error>(e))?;
            if let Ok(i) = index.cast::<PyInt>() {
                return self.int(i, s);
            }
        }
        if has(pyo3::intern!(py, "__float__"))? {
            let f: f64 = obj
                .call_method0(pyo3::intern!(py, "__float__"))
                .and_then(|f| f.extract())
                .map_err(|e| self.fail::<S::Error>(e))?;
            return s.serialize_f64(f);
        }
        Err(self.fail(PyTypeError::new_err(format!(
            "{} has type {}: telemetry properties are {ACCEPTED}",
            self.path,
            type_name(obj)
        ))))
    }
}

/// The keyword arguments of a capture, which are the event's properties: a dict, or
/// CPython's vectorcall form, which needs no dict at all.
#[derive(Clone, Copy)]
pub enum Keywords<'a, 'py> {
    Dict(&'a Bound<'py, PyDict>),
    Vector(VectorKeywords<'a, 'py>),
}

/// Vectorcall keywords: a tuple of names, and the values that follow the positional
/// arguments. The fields are private: only [`VectorKeywords::new`] vouches for them.
#[derive(Clone, Copy)]
pub struct VectorKeywords<'a, 'py> {
    names: Borrowed<'a, 'py, PyTuple>,
    values: &'a [*mut pyo3::ffi::PyObject],
}

impl<'a, 'py> VectorKeywords<'a, 'py> {
    /// # Safety
    /// `values` must hold one live object per name, each alive for `'a` (as CPython
    /// guarantees for the arguments of a METH_FASTCALL | METH_KEYWORDS call).
    pub unsafe fn new(
        names: Borrowed<'a, 'py, PyTuple>,
        values: &'a [*mut pyo3::ffi::PyObject],
    ) -> Self {
        debug_assert_eq!(names.len(), values.len());
        VectorKeywords { names, values }
    }
}

impl Keywords<'_, '_> {
    pub fn is_empty(&self) -> bool {
        match self {
            Keywords::Dict(d) => d.is_empty(),
            Keywords::Vector(v) => v.values.is_empty(),
        }
    }
}

/// The properties of one event: str keys, each value at depth 0.
struct Properties<'a, 'py> {
    keywords: Keywords<'a, 'py>,
    raised: &'a Cell<Option<PyErr>>,
}

impl<'py> Properties<'_, 'py> {
    fn entry<M: SerializeMap>(
        &self,
        map: &mut M,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
    ) -> Result<(), M::Error> {
        let raised = self.raised;
        let key = dict_key(key, &Path::Properties).map_err(|e| {
            raised.set(Some(e));
            ser::Error::custom("property name")
        })?;
        let value = PyValue {
            obj: value,
            path: Path::Key(&Path::Properties, key),
            depth: 0,
            raised,
        };
        map.serialize_entry(key, &value)
    }
}

impl Serialize for Properties<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.keywords {
            Keywords::Dict(dict) => {
                let mut map = s.serialize_map(Some(dict.len()))?;
                for (k, v) in dict.iter() {
                    self.entry(&mut map, &k, &v)?;
                }
                map.end()
            }
            Keywords::Vector(VectorKeywords { names, values }) => {
                let mut map = s.serialize_map(Some(values.len()))?;
                for (n, &value) in values.iter().enumerate() {
                    let key = names.get_borrowed_item(n).map_err(|e| {
                        self.raised.set(Some(e));
                        ser::Error::custom("keyword names")
                    })?;
                    // SAFETY: live objects for 'a, as `VectorKeywords::new` requires.
                    let value = unsafe { Borrowed::from_ptr(names.py(), value) };
                    self.entry(&mut map, &key, &value)?;
                }
                map.end()
            }
        }
    }
}

/// The Python exception kept while serializing, or one made from serde's message.
fn raised(kept: &Cell<Option<PyErr>>, err: impl fmt::Display) -> PyErr {
    kept.take()
        .unwrap_or_else(|| PyValueError::new_err(err.to_string()))
}

/// Converts a value; `what` names it in error messages (`config["sink"]`).
pub fn to_value(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    let kept = Cell::new(None);
    let view = PyValue {
        obj,
        path: Path::Named(what),
        depth: 0,
        raised: &kept,
    };
    serde_json::to_value(&view).map_err(|e| raised(&kept, e))
}

/// Converts the properties of one event: a dict with str keys.
pub fn properties(d: &Bound<'_, PyDict>) -> PyResult<Map<String, Value>> {
    let kept = Cell::new(None);
    let view = Properties {
        keywords: Keywords::Dict(d),
        raised: &kept,
    };
    match serde_json::to_value(&view).map_err(|e| raised(&kept, e))? {
        Value::Object(map) => Ok(map),
        // Properties always serializes as a map.
        other => Err(PyValueError::new_err(format!(
            "the properties became {other}, not a map"
        ))),
    }
}

/// An event named `name` with these properties, written as JSON text for the worker to
/// parse: the cheapest form for the caller's thread (see [`EncodedEvent`]).
pub fn encoded_event(
    name: &Bound<'_, PyString>,
    properties: Option<Keywords<'_, '_>>,
) -> PyResult<EncodedEvent> {
    let name = as_str(name)?;
    let kept = Cell::new(None);
    let result = match properties {
        Some(keywords) => EncodedEvent::new(
            name,
            &Properties {
                keywords,
                raised: &kept,
            },
        ),
        None => EncodedEvent::new(name, &Map::new()),
    };
    result.map_err(|e| match e {
        EncodeError::InvalidName(why) => InvalidEventError::new_err(why),
        other => raised(&kept, other),
    })
}

fn dict_key<'a>(k: &'a Bound<'_, PyAny>, path: &Path<'_>) -> PyResult<&'a str> {
    match k.cast::<PyString>() {
        Ok(s) => as_str(s),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{path} has a key of type {}: dictionary keys must be str",
            type_name(k)
        ))),
    }
}

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
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

/// A Python str as a Rust String.
pub fn string(s: &Bound<'_, PyString>) -> PyResult<String> {
    as_str(s).map(str::to_owned)
}

/// A Python str's UTF-8 form, read in place: valid as long as the str is.
///
/// This runs for every key and string value of every enabled capture. PyO3's safe path
/// under the abi3-py39 limited API (`to_cow`) first makes a temporary `bytes` object,
/// because `PyUnicode_AsUTF8AndSize` only joined the limited API in 3.10; that doubled the
/// cost of a capture. The function itself has been exported by every CPython since 3.3,
/// so an abi3 module may call it on 3.9 too. CPython caches the UTF-8 form in the str.
pub fn as_str<'a>(s: &'a Bound<'_, PyString>) -> PyResult<&'a str> {
    let mut size: pyo3::ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live str; the returned buffer belongs to it and stays valid while
    // the str lives, which the borrow of `s` guarantees for 'a.
    let data = unsafe { as_utf8_and_size(s.as_ptr(), &mut size) };
    if data.is_null() {
        // Lone surrogates cannot be encoded; the pending Python exception says so.
        return Err(PyErr::fetch(s.py()));
    }
    // SAFETY: CPython guarantees `size` valid UTF-8 bytes at `data`.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) };
    // SAFETY: the bytes are UTF-8 (see above).
    Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
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
