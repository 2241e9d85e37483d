//! Core errors to Python exceptions: the one translation at this boundary.
//!
//! The classes live in `py_code_mode/errors.py` (pure Python, so they can
//! inherit from `KeyError`, `LookupError` and friends as well as from
//! `CodeModeError`); this table picks the class for each core error.

use py_code_mode::{ArtifactError, Error, SkillError, ToolError};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

/// The exception class name in `py_code_mode.errors` for a core error.
fn class_name(error: &Error) -> &'static str {
    match error {
        Error::Name(_) => "InvalidNameError",
        Error::Tool(ToolError::NotFound { .. }) => "ToolNotFoundError",
        Error::Tool(_) => "ToolError",
        Error::Skill(SkillError::NotFound { .. }) => "SkillNotFoundError",
        Error::Skill(_) => "SkillError",
        Error::Artifact(ArtifactError::NotFound { .. }) => "ArtifactNotFoundError",
        Error::Artifact(_) => "ArtifactError",
        Error::Storage(_) => "StorageError",
        Error::Executor(_) => "ExecutorError",
        Error::Deps(py_code_mode::deps::DepsError::Spec(_)) => "InvalidDependencyError",
        Error::Deps(_) => "DepsError",
    }
}

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The exception class `name` of `py_code_mode.errors`.
pub(crate) fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let module =
        ERRORS.get_or_try_init(py, || py.import("py_code_mode.errors").map(Bound::unbind))?;
    module.bind(py).getattr(name)
}

/// A core error as the matching Python exception, message unchanged.
pub(crate) fn to_py(py: Python<'_>, error: &Error) -> PyErr {
    let message = error.to_string();
    match class(py, class_name(error)).and_then(|cls| cls.call1((message.clone(),))) {
        Ok(exception) => PyErr::from_value(exception),
        Err(_) => PyRuntimeError::new_err(message),
    }
}

/// Converts a core result, attaching to the interpreter for the exception.
pub(crate) fn check<T>(result: py_code_mode::Result<T>) -> PyResult<T> {
    result.map_err(|error| Python::attach(|py| to_py(py, &error)))
}
