//! JSON values to Python objects and back, and artifact data.

use base64::Engine as _;
use py_code_mode::ArtifactData;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
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

/// How deep [`to_json`] follows lists and dicts: serde_json's own limit when
/// it parses, so what we make the host could also read as text.
const MAX_JSON_DEPTH: usize = 128;

/// A Python object as JSON, by `json.dumps`'s rules with `allow_nan=False`
/// (tuples are lists; dict keys may be str, int, float, bool or None and
/// become strings), and integers only as far as the host reads them
/// exactly, `i64` and `u64`: JSON has no limit, but `2**64` would otherwise
/// reach the host as a rounded float. Every refusal is a `TypeError` that
/// starts "not JSON-able".
pub(crate) fn to_json(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    json_at(obj, 0).map_err(|why| PyTypeError::new_err(format!("not JSON-able: {why}")))
}

fn json_at(obj: &Bound<'_, PyAny>, depth: usize) -> Result<Value, String> {
    if depth > MAX_JSON_DEPTH {
        return Err(format!(
            "nested deeper than {MAX_JSON_DEPTH} levels (or a circular reference)"
        ));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(flag) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(flag.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return json_int(obj).map(Value::Number);
    }
    if let Ok(number) = obj.cast::<PyFloat>() {
        return serde_json::Number::from_f64(number.value())
            .map(Value::Number)
            .ok_or_else(|| "NaN or an infinity, which JSON cannot carry".to_owned());
    }
    if let Ok(text) = obj.cast::<PyString>() {
        return utf8(text).map(Value::String);
    }
    // By index, as `json.dumps` reads them: a subclass's `__iter__` is not run.
    if let Ok(list) = obj.cast::<PyList>() {
        return json_array(list.iter(), depth);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return json_array(tuple.iter(), depth);
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut map = serde_json::Map::new();
        for (key, item) in dict.iter() {
            map.insert(json_key(&key)?, json_at(&item, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    Err(format!(
        "Object of type {} is not JSON serializable",
        type_name(obj)
    ))
}

fn json_array<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    depth: usize,
) -> Result<Value, String> {
    items
        .map(|item| json_at(&item, depth + 1))
        .collect::<Result<_, _>>()
        .map(Value::Array)
}

fn json_int(obj: &Bound<'_, PyAny>) -> Result<serde_json::Number, String> {
    if let Ok(small) = obj.extract::<i64>() {
        return Ok(small.into());
    }
    obj.extract::<u64>().map(Into::into).map_err(|_| {
        "an integer beyond 64 bits, which the host cannot read exactly (pass it as a str)"
            .to_owned()
    })
}

/// A dict key as `json.dumps` writes it.
fn json_key(key: &Bound<'_, PyAny>) -> Result<String, String> {
    if let Ok(text) = key.cast::<PyString>() {
        return utf8(text);
    }
    if key.is_none() {
        return Ok("null".to_owned());
    }
    if let Ok(flag) = key.cast::<PyBool>() {
        return Ok(flag.is_true().to_string());
    }
    if key.is_instance_of::<PyInt>() {
        return json_int(key).map(|n| n.to_string());
    }
    if let Ok(number) = key.cast::<PyFloat>() {
        let value = number.value();
        if !value.is_finite() {
            return Err("a NaN or infinite key, which JSON cannot carry".to_owned());
        }
        // `float.__repr__`, as `json.dumps` writes it (not a subclass's).
        return PyFloat::new(key.py(), value)
            .repr()
            .and_then(|r| r.to_str().map(str::to_owned))
            .map_err(|e| e.to_string());
    }
    Err(format!(
        "keys must be str, int, float, bool or None, not {}",
        type_name(key)
    ))
}

/// A str as UTF-8; a lone surrogate (`'\ud800'`, which UTF-8 cannot hold)
/// becomes `?`, as the worker's protocol writes it, so a run's output or
/// value reads the same from every executor.
fn utf8(text: &Bound<'_, PyString>) -> Result<String, String> {
    if let Ok(text) = text.to_str() {
        return Ok(text.to_owned());
    }
    text.call_method1("encode", ("utf-8", "replace"))
        .and_then(|bytes| bytes.extract::<Vec<u8>>())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| e.to_string())
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "object".to_owned(), |n| n.to_string())
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
    let value = to_json(data).map_err(|e| {
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
