//! `capture(event, /, **properties)` as a plain C builtin bound to a `NativeClient`.
//!
//! When telemetry is on, `telemetry_core.Client.capture` is this builtin (the Python
//! class stores it on the instance), so an enabled capture is one call into Rust with no
//! Python frame in between:
//!
//! ```python
//! capture = native_client.capture_function()
//! capture("collection_add", add_amount=20, with_documents=True)
//! ```
//!
//! Why not a `#[pymethods]` method: under the abi3-py39 limited API PyO3 receives
//! `**properties` as a dict and copies every item into a new dict before the method body
//! runs, and a Python wrapper in front costs a frame. This function is called the
//! cheapest way the running CPython allows:
//!
//! - 3.10 and later: METH_FASTCALL | METH_KEYWORDS (in the stable ABI since 3.10). The
//!   keyword values arrive as an array beside a tuple of their names: no dict is built.
//! - 3.9: METH_VARARGS | METH_KEYWORDS. CPython builds a fresh dict of the keyword
//!   arguments, which is exactly the properties; it is read in place.

use std::ffi::{c_char, c_int};
use std::panic::{self, AssertUnwindSafe};

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::client::NativeClient;
use crate::convert::{Keywords, VectorKeywords};

/// A `PyMethodDef` CPython may read from any thread; it is never written.
struct MethodDef(ffi::PyMethodDef);

// SAFETY: the definition holds pointers to static, immutable C strings and a function.
unsafe impl Sync for MethodDef {}

const NAME: *const c_char = c"capture".as_ptr();
// The first line is the signature, as `inspect.signature` reads it for builtins.
const DOC: *const c_char = c"capture(event, /, **properties)\n--\n\n\
    Queues an event and returns at once; it never waits and never does I/O.\n\n\
    `event` is an event name, whose keyword properties are anonymized by type (strings\n\
    hashed, numbers rounded), or a `TelemetryEvent` with no keyword properties."
    .as_ptr();

/// `METH_FASTCALL`: part of the stable ABI since 3.10, so PyO3 hides it from an
/// abi3-py39 build. Its value is fixed by that ABI.
const METH_FASTCALL: c_int = 0x0080;

/// The signature CPython calls a METH_FASTCALL | METH_KEYWORDS function with.
type FastWithKeywords = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

static CAPTURE_FASTCALL: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: NAME,
    // SAFETY: CPython calls a METH_FASTCALL | METH_KEYWORDS function through this field
    // with the `FastWithKeywords` signature; the pointer is only stored here.
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunction: unsafe {
            std::mem::transmute::<FastWithKeywords, ffi::PyCFunction>(capture_fastcall)
        },
    },
    ml_flags: METH_FASTCALL | ffi::METH_KEYWORDS,
    ml_doc: DOC,
});

static CAPTURE_VARARGS: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: NAME,
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunctionWithKeywords: capture_varargs,
    },
    ml_flags: ffi::METH_VARARGS | ffi::METH_KEYWORDS,
    ml_doc: DOC,
});

/// The builtin `capture`, holding a strong reference to `client`. `vectorcall` picks the
/// calling convention; by default the fastest the running Python has.
pub fn bind<'py>(
    client: &Bound<'py, NativeClient>,
    vectorcall: Option<bool>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = client.py();
    let fast = vectorcall.unwrap_or_else(|| py.version_info() >= (3, 10));
    let def = if fast {
        &CAPTURE_FASTCALL.0
    } else {
        &CAPTURE_VARARGS.0
    };
    // SAFETY: `def` is static and CPython never writes through it; `client` is a live
    // object, which the new builtin keeps alive as its `self`.
    unsafe {
        let def = std::ptr::from_ref(def).cast_mut();
        let function = ffi::PyCFunction_NewEx(def, client.as_ptr(), std::ptr::null_mut());
        Bound::from_owned_ptr_or_err(py, function)
    }
}

/// METH_FASTCALL | METH_KEYWORDS: `args` holds `nargs` positional arguments followed by
/// one value per name in `kwnames` (a tuple of str, or NULL).
unsafe extern "C" fn capture_fastcall(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a builtin with the thread attached.
    let py = unsafe { Python::assume_attached() };
    guarded(py, || {
        // SAFETY: CPython passes borrowed references that live for the call: `slf` is the
        // NativeClient given to `bind`, `args` points to `nargs` + len(kwnames) objects.
        let (client, names) = unsafe {
            (
                Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<NativeClient>(),
                Borrowed::from_ptr_or_opt(py, kwnames).map(|k| k.cast_unchecked::<PyTuple>()),
            )
        };
        let positional = usize::try_from(nargs).unwrap_or(0);
        let named = names.map_or(0, |n| n.len());
        // SAFETY: see above; an empty call may pass a NULL `args`.
        let all: &[*mut ffi::PyObject] = if args.is_null() {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(args, positional + named) }
        };
        if positional != 1 {
            return Err(one_positional(positional));
        }
        // SAFETY: a borrowed reference from CPython, alive for the call.
        let event = unsafe { Borrowed::from_ptr(py, all[0]) };
        // SAFETY: CPython passes one value per keyword name after the positional ones.
        let keywords =
            names.map(|names| Keywords::Vector(unsafe { VectorKeywords::new(names, &all[1..]) }));
        client.get().capture_from(&event, keywords)
    })
}

/// METH_VARARGS | METH_KEYWORDS (Python 3.9): `args` is a tuple, `kwargs` a dict or NULL.
unsafe extern "C" fn capture_varargs(
    slf: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a builtin with the thread attached.
    let py = unsafe { Python::assume_attached() };
    guarded(py, || {
        // SAFETY: CPython passes borrowed references that live for the call: `slf` is the
        // NativeClient given to `bind`, `args` a tuple, `kwargs` NULL or a dict.
        let (client, args, kwargs) = unsafe {
            (
                Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<NativeClient>(),
                Bound::from_borrowed_ptr(py, args).cast_into_unchecked::<PyTuple>(),
                Bound::from_borrowed_ptr_or_opt(py, kwargs)
                    .map(|k| k.cast_into_unchecked::<PyDict>()),
            )
        };
        if args.len() != 1 {
            return Err(one_positional(args.len()));
        }
        client
            .get()
            .capture_from(&args.get_item(0)?, kwargs.as_ref().map(Keywords::Dict))
    })
}

fn one_positional(given: usize) -> PyErr {
    PyTypeError::new_err(format!(
        "capture() takes the event as its one positional argument ({given} given); \
         properties are keyword arguments"
    ))
}

/// Runs `body`, turning a panic into PanicException as PyO3 does for its own methods,
/// and returns what CPython expects: a new reference to None, or NULL with an exception.
fn guarded(py: Python<'_>, body: impl FnOnce() -> PyResult<()>) -> *mut ffi::PyObject {
    let outcome = panic::catch_unwind(AssertUnwindSafe(body));
    let result = outcome.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("panic in telemetry_core.capture");
        Err(PanicException::new_err(message.to_string()))
    });
    match result {
        Ok(()) => py.None().into_ptr(),
        Err(err) => {
            err.restore(py);
            std::ptr::null_mut()
        }
    }
}
