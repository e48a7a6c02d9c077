//! Exposes PyO3's interpreter cfgs (`Py_LIMITED_API`, `Py_3_10`, `PyPy`) to this crate:
//! `convert::string` picks its C function by them.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
