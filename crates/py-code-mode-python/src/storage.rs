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

/// A library in Redis under one key prefix (one prefix = one tenant).
#[pyclass(frozen, module = "py_code_mode", name = "RedisStorage")]
pub(crate) struct RedisStorage {
    shown: String,
    prefix: String,
    inner: Arc<py_code_mode::RedisStorage>,
}

#[pymethods]
impl RedisStorage {
    /// `RedisStorage(redis=client, prefix=...)` with a redis-py client, or
    /// `RedisStorage(url="redis://...", prefix=...)`.
    #[new]
    #[pyo3(signature = (redis = None, *, url = None, prefix = "py-code-mode"))]
    fn new(
        py: Python<'_>,
        redis: Option<&Bound<'_, PyAny>>,
        url: Option<String>,
        prefix: &str,
    ) -> PyResult<Self> {
        let url = match (redis, url) {
            (Some(client), None) => url_of_client(client)?,
            (None, Some(url)) => url,
            _ => {
                return Err(PyTypeError::new_err(
                    "RedisStorage() takes exactly one of `redis=` (a redis-py client) or `url=`",
                ));
            }
        };
        let handle = crate::runtime::handle()?;
        let prefix_owned = prefix.to_owned();
        let inner = py
            .detach(|| handle.block_on(py_code_mode::RedisStorage::connect(&url, &prefix_owned)))
            .map_err(|e| crate::errors::to_py(py, &e.into()))?;
        Ok(Self {
            shown: Storage::location(&inner),
            prefix: prefix.to_owned(),
            inner: Arc::new(inner),
        })
    }

    #[getter]
    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn __repr__(&self) -> String {
        format!("RedisStorage({:?})", self.shown)
    }
}

/// Rebuilds a connection URL from a redis-py client's connection settings, so
/// the host connects to the same server with its own (async) client. Only
/// `connection_pool.connection_kwargs` is read, as 0.10 did: any
/// redis-py-compatible client works. TLS is known by redis-py's `ssl_*`
/// settings or its `SSLConnection` class, when the client has them.
fn url_of_client(client: &Bound<'_, PyAny>) -> PyResult<String> {
    let pool = client.getattr("connection_pool").ok();
    let kwargs = pool
        .as_ref()
        .ok_or_else(|| PyTypeError::new_err(""))
        .and_then(|pool| pool.getattr("connection_kwargs"))
        .map_err(|_| {
            PyTypeError::new_err(
                "`redis=` must be a redis-py client (`redis.Redis` / `redis.from_url`): it has no `connection_pool.connection_kwargs`",
            )
        })?;
    let get = |key: &str| -> PyResult<Option<String>> {
        match kwargs.get_item(key) {
            Ok(v) if !v.is_none() => Ok(Some(v.str()?.to_string())),
            _ => Ok(None),
        }
    };
    if let Some(path) = get("path")? {
        return Ok(format!("redis+unix://{path}"));
    }
    let tls = kwargs
        .call_method0("keys")
        .and_then(|keys| keys.try_iter())
        .is_ok_and(|mut keys| {
            keys.any(|k| {
                k.ok()
                    .and_then(|k| k.extract::<String>().ok())
                    .is_some_and(|k| k.starts_with("ssl"))
            })
        })
        // redis-py's own pool keeps `rediss://` as its connection class, which
        // a compatible client need not have: read when there, never required.
        || pool
            .and_then(|p| p.getattr("connection_class").ok())
            .and_then(|c| c.getattr("__name__").ok())
            .and_then(|n| n.extract::<String>().ok())
            .is_some_and(|n| n.contains("SSL"));
    let scheme = if tls { "rediss" } else { "redis" };
    let host = get("host")?.unwrap_or_else(|| "localhost".into());
    let port = get("port")?.unwrap_or_else(|| "6379".into());
    let db = get("db")?.unwrap_or_else(|| "0".into());
    let auth = match (get("username")?, get("password")?) {
        (Some(user), Some(password)) => format!("{}:{}@", encode(&user), encode(&password)),
        (None, Some(password)) => format!(":{}@", encode(&password)),
        _ => String::new(),
    };
    Ok(format!("{scheme}://{auth}{host}:{port}/{db}"))
}

/// Percent-encodes what may not appear raw in a URL's user info.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The core storage behind a Python storage object.
pub(crate) fn storage_of(obj: &Bound<'_, PyAny>) -> PyResult<Arc<dyn Storage>> {
    if let Ok(file) = obj.cast::<FileStorage>() {
        return Ok(Arc::clone(&file.get().inner) as Arc<dyn Storage>);
    }
    if let Ok(redis) = obj.cast::<RedisStorage>() {
        return Ok(Arc::clone(&redis.get().inner) as Arc<dyn Storage>);
    }
    Err(PyTypeError::new_err(format!(
        "`storage` must be a FileStorage or RedisStorage, not `{}`",
        obj.get_type().name()?
    )))
}
