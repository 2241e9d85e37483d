//! JSON values to Python objects and back, and artifact data.

use base64::Engine as _;
use py_code_mode::ArtifactData;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use serde_json::Value;

/// A JSON value as the Python object `json.loads` would give.
pub(crate) fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
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
            for (key, item) in map {
                dict.set_item(key, to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// Any serializable core value (a listing, a skill) as Python objects.
pub(crate) fn serialize<'py>(
    py: Python<'py>,
    value: &impl serde::Serialize,
) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(value)
        .map_err(|e| PyTypeError::new_err(format!("cannot convert a result: {e}")))?;
    to_py(py, &value)
}

/// `json.dumps(obj, allow_nan=False)`.
pub(crate) fn dumps(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let json = py.import(intern!(py, "json"))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "allow_nan"), false)?;
    json.call_method(intern!(py, "dumps"), (obj,), Some(&kwargs))?
        .extract()
}

/// A Python object as JSON.
pub(crate) fn to_json(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let text = dumps(py, obj).map_err(|e| PyTypeError::new_err(format!("not JSON-able: {e}")))?;
    serde_json::from_str(&text).map_err(|e| PyTypeError::new_err(format!("not JSON-able: {e}")))
}

/// Artifact data from a Python value: bytes stay bytes, str stays text, anything
/// else must be JSON-able (the same rule as `artifacts.save` in agent code).
pub(crate) fn artifact_data(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<ArtifactData> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return Ok(ArtifactData::Bytes {
            base64: base64::engine::general_purpose::STANDARD.encode(bytes.as_bytes()),
        });
    }
    if data.is_instance_of::<pyo3::types::PyByteArray>()
        || data.is_instance_of::<pyo3::types::PyMemoryView>()
    {
        let bytes = py
            .get_type::<PyBytes>()
            .call1((data,))?
            .cast_into::<PyBytes>()?;
        return artifact_data(py, bytes.as_any());
    }
    if let Ok(text) = data.cast::<PyString>() {
        return Ok(ArtifactData::Text {
            value: text.to_str()?.to_owned(),
        });
    }
    let value = to_json(py, data).map_err(|e| {
        PyTypeError::new_err(format!(
            "artifact data must be JSON-able, str or bytes: {e}"
        ))
    })?;
    Ok(ArtifactData::Json { value })
}

/// Artifact data as the Python value it was saved as.
pub(crate) fn artifact_to_py<'py>(
    py: Python<'py>,
    data: &ArtifactData,
) -> PyResult<Bound<'py, PyAny>> {
    match data {
        ArtifactData::Json { value } => to_py(py, value),
        ArtifactData::Text { value } => Ok(PyString::new(py, value).into_any()),
        ArtifactData::Bytes { base64 } => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map_err(|e| PyTypeError::new_err(format!("bad artifact bytes: {e}")))?;
            Ok(PyBytes::new(py, &bytes).into_any())
        }
    }
}
