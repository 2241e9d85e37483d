//! `ExecutionResult` and `ExecutionError`: the core's one result shape in Python.

use pyo3::prelude::*;

/// An exception raised by agent code, or why the executor stopped it
/// (`TimeoutError`, `WorkerCrashed`).
#[pyclass(frozen, module = "py_code_mode", name = "ExecutionError")]
pub(crate) struct ExecutionError {
    #[pyo3(get, name = "type")]
    kind: String,
    #[pyo3(get)]
    message: String,
    #[pyo3(get)]
    traceback: String,
}

/// `ExecutionError` behaves as the string `"<type>: <message>"` (0.10's
/// `ExecutionResult.error` was a `str`): `str(error)`, `"timeout" in
/// error.lower()`, `error == "..."`, `len`, `+`, and every other `str` method
/// through `__getattr__`, while `.type`, `.message` and `.traceback` stay.
#[pymethods]
impl ExecutionError {
    fn __str__(&self) -> String {
        format!("{}: {}", self.kind, self.message)
    }

    fn __repr__(&self) -> String {
        format!(
            "ExecutionError(type={:?}, message={:?})",
            self.kind, self.message
        )
    }

    /// Equal to another `ExecutionError` with the same fields, or to its
    /// string form (or its bare message, which is what some 0.10 executors
    /// returned).
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        if let Ok(text) = other.extract::<String>() {
            return text == self.__str__() || text == self.message;
        }
        if let Ok(error) = other.cast::<Self>() {
            let e = error.get();
            return e.kind == self.kind
                && e.message == self.message
                && e.traceback == self.traceback;
        }
        false
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.__str__().hash(&mut hasher);
        hasher.finish()
    }

    /// Also makes an error truthy: its string form is never empty.
    fn __len__(&self) -> usize {
        self.__str__().chars().count()
    }

    fn __contains__(&self, part: &str) -> bool {
        self.__str__().contains(part)
    }

    fn __add__(&self, other: &str) -> String {
        self.__str__() + other
    }

    fn __radd__(&self, other: &str) -> String {
        format!("{other}{}", self.__str__())
    }

    fn __format__(&self, py: Python<'_>, spec: &str) -> PyResult<String> {
        pyo3::types::PyString::new(py, &self.__str__())
            .call_method1("__format__", (spec,))?
            .extract()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pyo3::types::PyString::new(py, &self.__str__())
            .try_iter()
            .map(Bound::into_any)
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        pyo3::types::PyString::new(py, &self.__str__()).get_item(key)
    }

    /// `str` methods (`lower`, `startswith`, `split`...) on the string form.
    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        if name.starts_with("__") {
            return Err(pyo3::exceptions::PyAttributeError::new_err(name.to_owned()));
        }
        pyo3::types::PyString::new(py, &self.__str__()).getattr(name)
    }
}

/// The outcome of one `session.run(...)`; the same shape for every executor.
#[pyclass(frozen, module = "py_code_mode", name = "ExecutionResult")]
pub(crate) struct ExecutionResult {
    #[pyo3(get)]
    value: Py<PyAny>,
    #[pyo3(get)]
    repr: Option<String>,
    #[pyo3(get)]
    stdout: String,
    #[pyo3(get)]
    stderr: String,
    #[pyo3(get)]
    error: Option<Py<ExecutionError>>,
    #[pyo3(get)]
    duration_ms: f64,
    #[pyo3(get)]
    state_reset: bool,
    text: String,
}

impl ExecutionResult {
    pub(crate) fn from_core(
        py: Python<'_>,
        result: py_code_mode::ExecutionResult,
    ) -> PyResult<Self> {
        let text = result.to_text();
        let value = match &result.value {
            Some(value) => crate::convert::to_py(py, value)?.unbind(),
            None => py.None(),
        };
        let error = result
            .error
            .map(|e| {
                Py::new(
                    py,
                    ExecutionError {
                        kind: e.kind,
                        message: e.message,
                        traceback: e.traceback,
                    },
                )
            })
            .transpose()?;
        Ok(Self {
            value,
            repr: result.repr,
            stdout: result.stdout,
            stderr: result.stderr,
            error,
            duration_ms: result.duration_ms,
            state_reset: result.state_reset,
            text,
        })
    }
}

#[pymethods]
impl ExecutionResult {
    /// True when the code ran without raising.
    #[getter]
    fn is_ok(&self) -> bool {
        self.error.is_none()
    }

    /// The upstream name of `duration_ms`.
    #[getter]
    fn execution_time_ms(&self) -> f64 {
        self.duration_ms
    }

    /// Output, value and error as a person or an agent reads them.
    fn to_text(&self) -> String {
        self.text.clone()
    }

    /// Raises `ExecutionTimeoutError` or `CodeExecutionError` if the run failed.
    fn raise_for_error(&self, py: Python<'_>) -> PyResult<()> {
        let Some(error) = &self.error else {
            return Ok(());
        };
        let error = error.get();
        let name = if error.kind == "TimeoutError" {
            "ExecutionTimeoutError"
        } else {
            "CodeExecutionError"
        };
        let exception = crate::errors::class(py, name)?.call1((
            error.__str__(),
            error.kind.clone(),
            error.traceback.clone(),
        ))?;
        Err(PyErr::from_value(exception))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let error = self
            .error
            .as_ref()
            .map_or_else(|| "None".to_owned(), |e| e.get().__repr__());
        let value = self
            .value
            .bind(py)
            .repr()
            .map_or_else(|_| "?".to_owned(), |r| r.to_string());
        format!(
            "ExecutionResult(value={value}, stdout={:?}, error={error}, duration_ms={:.3})",
            self.stdout, self.duration_ms
        )
    }
}
