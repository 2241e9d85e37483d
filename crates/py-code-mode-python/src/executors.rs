//! The executor classes users pass to `Session(executor=...)`. They hold
//! settings only; the session builds the executor when it starts.

use std::path::PathBuf;
use std::time::Duration;

use py_code_mode::{ExecutorFactory, SubprocessConfig};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::inprocess::{InProcessConfig, InProcessFactory};

/// Default cap on one run's stdout and on its stderr, in bytes (as the core's).
const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

/// Runs agent code in this interpreter, on a thread of its own (the default).
#[pyclass(frozen, module = "py_code_mode", name = "InProcessExecutor")]
pub(crate) struct InProcessExecutor {
    #[pyo3(get)]
    timeout: Option<f64>,
    #[pyo3(get)]
    output_limit: usize,
}

#[pymethods]
impl InProcessExecutor {
    #[new]
    #[pyo3(signature = (*, timeout = None, output_limit = DEFAULT_OUTPUT_LIMIT))]
    fn new(timeout: Option<f64>, output_limit: usize) -> PyResult<Self> {
        seconds(timeout)?;
        Ok(Self {
            timeout,
            output_limit,
        })
    }

    fn __repr__(&self) -> String {
        format!("InProcessExecutor(timeout={:?})", self.timeout)
    }
}

/// Runs agent code in a Python worker process (killed and restarted on timeout).
#[pyclass(frozen, module = "py_code_mode", name = "SubprocessExecutor")]
pub(crate) struct SubprocessExecutor {
    #[pyo3(get)]
    python: Option<PathBuf>,
    #[pyo3(get)]
    cwd: Option<PathBuf>,
    #[pyo3(get)]
    env: Vec<(String, String)>,
    #[pyo3(get)]
    timeout: Option<f64>,
    #[pyo3(get)]
    output_limit: usize,
}

#[pymethods]
impl SubprocessExecutor {
    #[new]
    #[pyo3(signature = (python = None, *, cwd = None, env = None, timeout = None, output_limit = DEFAULT_OUTPUT_LIMIT))]
    fn new(
        py: Python<'_>,
        python: Option<PathBuf>,
        cwd: Option<PathBuf>,
        env: Option<std::collections::BTreeMap<String, String>>,
        timeout: Option<f64>,
        output_limit: usize,
    ) -> PyResult<Self> {
        seconds(timeout)?;
        // The worker runs on this interpreter unless told otherwise, so agent
        // code imports the packages of the caller's environment.
        let python = match python {
            Some(python) => Some(python),
            None => py
                .import("sys")?
                .getattr("executable")?
                .extract::<Option<PathBuf>>()?
                .filter(|p| !p.as_os_str().is_empty()),
        };
        Ok(Self {
            python,
            cwd,
            env: env.unwrap_or_default().into_iter().collect(),
            timeout,
            output_limit,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "SubprocessExecutor(python={:?}, timeout={:?})",
            self.python.as_ref().map(|p| p.display().to_string()),
            self.timeout
        )
    }
}

impl SubprocessExecutor {
    /// The settings of `SubprocessExecutor()`.
    pub(crate) fn default_for(py: Python<'_>) -> PyResult<Self> {
        Self::new(py, None, None, None, None, DEFAULT_OUTPUT_LIMIT)
    }
}

/// What a session needs to know of its executor object.
pub(crate) struct ExecutorChoice {
    pub factory: Box<dyn ExecutorFactory>,
    pub timeout: Option<Duration>,
}

/// Reads `executor=`; `None` means in-process, as in the seed.
pub(crate) fn executor_of(obj: Option<&Bound<'_, PyAny>>) -> PyResult<ExecutorChoice> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(ExecutorChoice {
            factory: Box::new(InProcessFactory(InProcessConfig {
                output_limit: DEFAULT_OUTPUT_LIMIT,
            })),
            timeout: None,
        });
    };
    if let Ok(inprocess) = obj.cast::<InProcessExecutor>() {
        let e = inprocess.get();
        return Ok(ExecutorChoice {
            factory: Box::new(InProcessFactory(InProcessConfig {
                output_limit: e.output_limit,
            })),
            timeout: seconds(e.timeout)?,
        });
    }
    if let Ok(subprocess) = obj.cast::<SubprocessExecutor>() {
        let e = subprocess.get();
        return Ok(ExecutorChoice {
            factory: Box::new(SubprocessConfig {
                python: e.python.clone(),
                cwd: e.cwd.clone(),
                env: e.env.clone(),
                output_limit: e.output_limit,
            }),
            timeout: seconds(e.timeout)?,
        });
    }
    if let Ok(sandbox) = obj.cast::<crate::sandbox::SandboxExecutor>() {
        let e = sandbox.get();
        return Ok(ExecutorChoice {
            factory: Box::new(e.core_config()),
            timeout: seconds(e.timeout)?,
        });
    }
    Err(PyTypeError::new_err(format!(
        "`executor` must be an InProcessExecutor, a SubprocessExecutor or a SandboxExecutor, not `{}`",
        obj.get_type().name()?
    )))
}

/// A timeout in seconds as a duration; it must be positive and finite.
pub(crate) fn seconds(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    timeout
        .map(|t| {
            Duration::try_from_secs_f64(t)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "`timeout` must be a positive number of seconds, not {t}"
                    ))
                })
        })
        .transpose()
}
