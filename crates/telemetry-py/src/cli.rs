//! `run_cli`: the `telemetry` command inside the wheel. The same code as the Rust binary
//! (`telemetry_cli::run`), so a Python product's users get the same commands, output and
//! exit status without a second binary. The Python side (`telemetry_core.cli`) flushes
//! `sys.stdout` and `sys.stderr` around the call, because this writes to the process's
//! file descriptors 1 and 2 directly.

use std::io::{self, Write};

use pyo3::prelude::*;

use crate::ConfigurationError;

/// Runs the `telemetry` command line `argv` (`argv[0]` is the program name shown in usage
/// and remarks) on the process's stdout and stderr and returns its exit status: 0 success,
/// 1 failure, 2 usage error. `profile` fixes the profile (a name, or a generic profile's
/// JSON) for an integrator's own command. Raises ConfigurationError for a profile the
/// core refuses. The GIL is released while the command runs.
#[pyfunction]
#[pyo3(signature = (argv, profile=None))]
pub fn run_cli(py: Python<'_>, argv: Vec<String>, profile: Option<&str>) -> PyResult<i32> {
    let fixed = profile
        .map(telemetry_cli::parse_profile)
        .transpose()
        .map_err(ConfigurationError::new_err)?;
    let code = py.detach(|| {
        let (mut out, mut err) = (io::stdout(), io::stderr());
        let code = telemetry_cli::run(&argv, fixed.as_ref(), &mut out, &mut err);
        let _ = out.flush();
        code
    });
    Ok(i32::from(code))
}
