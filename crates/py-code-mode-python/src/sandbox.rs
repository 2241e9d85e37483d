//! `SandboxExecutor` / `SandboxConfig`, and the launcher the package uses:
//! this interpreter (`python -I -S`, single-threaded) loading the native
//! module by path and calling `_sandbox_launch`, which applies the sandbox
//! and execs the worker.

use std::ffi::OsString;
use std::path::PathBuf;

use py_code_mode::sandbox::Launcher;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::executors::seconds;

/// Loads the native module from the path after `-c` and hands it the rest
/// of the command line. `-S`: no `site`, nothing imported but what it needs.
const LAUNCHER_CODE: &str = "import sys, importlib.util as u\n\
s = u.spec_from_file_location('py_code_mode._native', sys.argv[1])\n\
m = u.module_from_spec(s)\n\
s.loader.exec_module(m)\n\
m._sandbox_launch(sys.argv[3:])";

/// Applies the sandbox and execs the worker; never returns. Called only by
/// the launcher command line above, in a fresh single-threaded interpreter.
#[pyfunction]
pub(crate) fn _sandbox_launch(args: Vec<OsString>) {
    py_code_mode::sandbox::launch_from_args(args)
}

/// Names this interpreter and the native module as the process's sandbox
/// launcher (at import: cheap, nothing runs).
pub(crate) fn register_launcher(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let python: Option<PathBuf> = py
        .import("sys")?
        .getattr("executable")?
        .extract::<Option<PathBuf>>()?
        .filter(|p| !p.as_os_str().is_empty());
    let native: Option<PathBuf> = m
        .getattr("__file__")
        .ok()
        .and_then(|f| f.extract::<PathBuf>().ok());
    if let (Some(python), Some(native)) = (python, native) {
        Launcher::set_default(Launcher {
            program: python,
            args: ["-I", "-S", "-c", LAUNCHER_CODE]
                .map(OsString::from)
                .into_iter()
                .chain([native.into_os_string()])
                .collect(),
        });
    }
    Ok(())
}

/// The limits and view of the sandbox (the names of the container's config).
#[pyclass(frozen, module = "py_code_mode", name = "SandboxConfig")]
#[derive(Clone)]
pub(crate) struct SandboxConfig {
    #[pyo3(get)]
    memory: u64,
    #[pyo3(get)]
    cpus: f64,
    #[pyo3(get)]
    pids_limit: u64,
    #[pyo3(get)]
    network: bool,
    #[pyo3(get)]
    read_only_paths: Vec<PathBuf>,
    #[pyo3(get)]
    writable_paths: Vec<PathBuf>,
    /// Workers kept started ahead for sessions of this configuration (0: none).
    #[pyo3(get)]
    pool_size: usize,
}

/// Memory sizes as an int of bytes or a string like `"512m"`.
fn memory_bytes(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    /// The same bounds as the CLI's `--memory`.
    const MIN: u64 = 32 << 20;
    const MAX: u64 = 1 << 40;
    let text = match value.extract::<u64>() {
        Ok(n) => n.to_string(),
        Err(_) => value.extract::<String>()?,
    };
    py_code_mode::size_bytes("memory", &text, MIN, MAX)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

#[pymethods]
impl SandboxConfig {
    #[new]
    #[pyo3(signature = (*, memory = None, cpus = 1.0, pids_limit = 256, network = false, read_only_paths = Vec::new(), writable_paths = Vec::new(), pool_size = 0))]
    fn new(
        memory: Option<&Bound<'_, PyAny>>,
        cpus: f64,
        pids_limit: u64,
        network: bool,
        read_only_paths: Vec<PathBuf>,
        writable_paths: Vec<PathBuf>,
        pool_size: usize,
    ) -> PyResult<Self> {
        crate::executors::shared_pool(pool_size)?;
        if !(cpus.is_finite() && cpus > 0.0) {
            return Err(PyValueError::new_err(format!(
                "`cpus` must be above 0, not {cpus}"
            )));
        }
        let pids_limit = py_code_mode::count("pids_limit", pids_limit, 1, 1 << 22)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self {
            memory: memory
                .map(memory_bytes)
                .transpose()?
                .unwrap_or(py_code_mode::SandboxConfig::default().memory),
            cpus,
            pids_limit,
            network,
            read_only_paths,
            writable_paths,
            pool_size,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "SandboxConfig(memory={}, cpus={}, pids_limit={}, network={})",
            self.memory, self.cpus, self.pids_limit, self.network
        )
    }
}

/// Runs agent code in a worker inside the kernel sandbox (see docs/sandbox.md).
#[pyclass(frozen, module = "py_code_mode", name = "SandboxExecutor")]
pub(crate) struct SandboxExecutor {
    #[pyo3(get)]
    config: SandboxConfig,
    #[pyo3(get)]
    python: Option<PathBuf>,
    #[pyo3(get)]
    pub(crate) timeout: Option<f64>,
}

#[pymethods]
impl SandboxExecutor {
    #[new]
    #[pyo3(signature = (config = None, *, python = None, timeout = None))]
    fn new(
        py: Python<'_>,
        config: Option<Bound<'_, SandboxConfig>>,
        python: Option<PathBuf>,
        timeout: Option<f64>,
    ) -> PyResult<Self> {
        seconds(timeout)?;
        let python = match python {
            Some(python) => Some(python),
            None => py
                .import("sys")?
                .getattr("executable")?
                .extract::<Option<PathBuf>>()?
                .filter(|p| !p.as_os_str().is_empty()),
        };
        let config = match config {
            Some(config) => config.get().clone(),
            None => SandboxConfig::new(None, 1.0, 256, false, Vec::new(), Vec::new(), 0)?,
        };
        Ok(Self {
            config,
            python,
            timeout,
        })
    }

    fn __repr__(&self) -> String {
        format!("SandboxExecutor({})", self.config.__repr__())
    }
}

impl SandboxExecutor {
    /// The core's config for this executor.
    pub(crate) fn core_config(&self) -> PyResult<py_code_mode::SandboxConfig> {
        let c = &self.config;
        Ok(py_code_mode::SandboxConfig {
            python: self.python.clone(),
            memory: c.memory,
            cpus: c.cpus,
            pids_limit: c.pids_limit,
            network: c.network,
            read_only_paths: c.read_only_paths.clone(),
            writable_paths: c.writable_paths.clone(),
            pool: crate::executors::shared_pool(c.pool_size)?,
            ..py_code_mode::SandboxConfig::default()
        })
    }
}

/// The sandbox layers that work here, as a dict (`namespaces`, `landlock`,
/// `seccomp`, `cgroups`, each `{"active": bool, "detail": str}`).
#[pyfunction]
pub(crate) fn sandbox_status(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let launcher = Launcher::current_exe().ok_or_else(|| {
        PyValueError::new_err("no sandbox launcher: the native module has no file path")
    })?;
    let handle = crate::runtime::handle()?;
    let status = py
        .detach(|| handle.block_on(py_code_mode::sandbox::probe(&launcher)))
        .map_err(|e| crate::errors::to_py(py, &py_code_mode::Error::Executor(e)))?;
    let value = serde_json::to_value(&status).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(crate::convert::to_py(py, &value)?.unbind())
}
