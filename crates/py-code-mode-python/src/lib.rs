//! `py_code_mode._native`: the native module under the `py_code_mode` Python package.
//!
//! This crate only translates: Python arguments into core types, core results
//! into Python objects, core errors into the package's exceptions. Layout:
//! - `session`: the `Session` class over [`py_code_mode::Session`].
//! - `search`: the searcher a `Session`'s `embedding_model` / `semantic`
//!   arguments ask for (hybrid, its model loading in the background, or lexical).
//! - `storage`: `FileStorage` and the one function that turns a storage object
//!   into an `Arc<dyn Storage>` (add a backend there).
//! - `executors`: the executor classes users pass to `Session`.
//! - `functions`: Python functions as tools (`tools=[fn]`, `@session.tool`).
//! - `sandbox`: `SandboxExecutor`, `SandboxConfig`, and the package's sandbox
//!   launcher (this interpreter loading the native module by path).
//! - `inprocess`: the in-process executor: the shared runtime module driven on a
//!   thread of the caller's interpreter, with a direct transport to the host.
//! - `result`: `ExecutionResult` and `ExecutionError`.
//! - `convert`: JSON values to and from Python objects.
//! - `errors`: core errors to Python exceptions, in one place.
//! - `runtime`: the module's one tokio runtime, shut down from an `atexit` hook.
//! - `logging`: the core's log events, forwarded to Python's `logging`.
//!
//! The Python side (`python/py_code_mode/`) re-exports these classes and holds
//! the exception hierarchy, the stubs and the console scripts.

mod compat;
mod convert;
mod errors;
mod executors;
mod functions;
mod inprocess;
mod logging;
mod result;
mod runtime;
mod sandbox;
mod search;
mod session;
mod storage;

use pyo3::prelude::*;

/// Runs the `py-code-mode` command line (the console scripts call this).
///
/// Returns the exit code and, for a failed command, the message to print.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> (i32, Option<String>) {
    // The CLI owns its own tokio runtime and never touches Python objects.
    match py.detach(|| py_code_mode_cli::run(argv)) {
        Ok(code) if code == std::process::ExitCode::SUCCESS => (0, None),
        Ok(_) => (1, None),
        Err(error) => (1, Some(format!("{error:#}"))),
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<session::Session>()?;
    m.add_class::<storage::FileStorage>()?;
    m.add_class::<storage::RedisStorage>()?;
    m.add_class::<executors::InProcessExecutor>()?;
    m.add_class::<executors::SubprocessExecutor>()?;
    m.add_class::<executors::ContainerConfig>()?;
    m.add_class::<executors::ContainerExecutor>()?;
    m.add_class::<result::ExecutionResult>()?;
    m.add_class::<result::ExecutionError>()?;
    m.add(
        "RunInterrupted",
        m.py().get_type::<inprocess::RunInterrupted>(),
    )?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_class::<sandbox::SandboxConfig>()?;
    m.add_class::<sandbox::SandboxExecutor>()?;
    m.add_function(wrap_pyfunction!(sandbox::_sandbox_launch, m)?)?;
    m.add_function(wrap_pyfunction!(sandbox::sandbox_status, m)?)?;
    sandbox::register_launcher(m)?;
    m.add("RUNTIME_SOURCE", py_code_mode::RUNTIME_SOURCE)?;
    runtime::register_shutdown(m.py())?;
    Ok(())
}
