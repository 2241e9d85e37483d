//! Storage classes, and the one function that turns a storage object into the
//! core's `Arc<dyn Storage>`: a new backend (Redis) is a class plus one arm there.

use std::path::PathBuf;
use std::sync::Arc;

use py_code_mode::Storage;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

/// A library in folders: `tools/`, `skills/` and `artifacts/` under `base_path`.
#[pyclass(frozen, module = "py_code_mode", name = "FileStorage")]
pub(crate) struct FileStorage {
    base: PathBuf,
    inner: Arc<py_code_mode::FileStorage>,
}

impl FileStorage {
    pub(crate) fn open(py: Python<'_>, base: PathBuf) -> PyResult<Self> {
        let inner = py_code_mode::FileStorage::open(&base)
            .map_err(|e| crate::errors::to_py(py, &e.into()))?;
        Ok(Self {
            base,
            inner: Arc::new(inner),
        })
    }
}

#[pymethods]
impl FileStorage {
    #[new]
    #[pyo3(signature = (base_path))]
    fn new(py: Python<'_>, base_path: PathBuf) -> PyResult<Self> {
        Self::open(py, base_path)
    }

    #[getter]
    fn base_path(&self) -> PathBuf {
        self.base.clone()
    }

    #[getter]
    fn tools_path(&self) -> PathBuf {
        self.inner.tools_dir().to_path_buf()
    }

    #[getter]
    fn skills_path(&self) -> PathBuf {
        self.inner.skills_dir().to_path_buf()
    }

    #[getter]
    fn artifacts_path(&self) -> PathBuf {
        self.inner.artifacts_dir().to_path_buf()
    }

    fn __repr__(&self) -> String {
        format!(
            "FileStorage(base_path={:?})",
            self.base.display().to_string()
        )
    }
}

/// The core storage behind a Python storage object.
pub(crate) fn storage_of(obj: &Bound<'_, PyAny>) -> PyResult<Arc<dyn Storage>> {
    if let Ok(file) = obj.cast::<FileStorage>() {
        return Ok(Arc::clone(&file.get().inner) as Arc<dyn Storage>);
    }
    Err(PyTypeError::new_err(format!(
        "`storage` must be a FileStorage, not `{}`",
        obj.get_type().name()?
    )))
}
