//! `Session`: the seed's entry point, over [`py_code_mode::Session`].
//!
//! Every method is a coroutine: its work runs on the module's tokio runtime and
//! the caller's event loop stays free. `run` is polled by the awaiting
//! coroutine itself (`runtime::here`): it hands the code to the session's
//! runner thread or writes it to the worker's pipe, and the thread that gets
//! the result wakes the caller's loop, with no task in between (building the
//! session or starting a worker moves the run onto the runtime first). The core session is built on first use
//! (`async with`, `start()` or the first call), once. The embedding model of
//! hybrid search starts loading when the `Session` is created, in the background.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use py_code_mode::{ExecutorError, ExecutorFactory, Searcher, Storage};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyType;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::convert;
use crate::errors::check;
use crate::executors::{executor_of, seconds};
use crate::functions::{FunctionRegistry, ToolDecorator};
use crate::result::ExecutionResult;
use crate::runtime;
use crate::search::SearchChoice;

/// A Python environment with `tools`, `skills` and `artifacts` bound.
#[pyclass(frozen, module = "py_code_mode", name = "Session")]
pub(crate) struct Session {
    storage: Py<PyAny>,
    /// The embedding model asked for; `None` with `semantic=False`.
    embedding_model: Option<String>,
    inner: Arc<Inner>,
}

struct Inner {
    storage: Arc<dyn Storage>,
    searcher: Arc<dyn Searcher>,
    factory: Mutex<Option<Box<dyn ExecutorFactory>>>,
    timeout: Duration,
    /// `deps` for the core session (0.10's executor settings and `sync_deps_on_start`).
    deps: py_code_mode::deps::DepsConfig,
    /// 0.10's executor-owned `tools_path`: tool definitions beside the storage's.
    tools_path: Option<PathBuf>,
    /// What the executor provides, known before the core session is built.
    capabilities: Vec<py_code_mode::Capability>,
    core: OnceCell<Arc<py_code_mode::Session>>,
    closed: AtomicBool,
    /// Python functions registered as tools.
    functions: Arc<FunctionRegistry>,
}

impl Inner {
    /// The core session, built (tools loaded, executor prepared) on first use.
    async fn session(&self) -> py_code_mode::Result<Arc<py_code_mode::Session>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ExecutorError::Closed.into());
        }
        if self.core.get().is_none() {
            // Building loads tools and storage, which may block a thread.
            py_code_mode::caller::off_caller_thread().await;
        }
        let session = self
            .core
            .get_or_try_init(|| async {
                let factory = self
                    .factory
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .ok_or(ExecutorError::Closed)?;
                let mut builder = py_code_mode::Session::builder(Arc::clone(&self.storage))
                    .executor(BoxedFactory(factory))
                    .searcher(Arc::clone(&self.searcher))
                    .timeout(self.timeout)
                    .deps(self.deps.clone());
                for function in self.functions.take() {
                    builder = builder.function(function);
                }
                if let Some(dir) = &self.tools_path {
                    for tool in crate::compat::tools_in(dir).await? {
                        builder = builder.tool(tool);
                    }
                }
                let session = builder.build().await?;
                Ok::<_, py_code_mode::Error>(Arc::new(session))
            })
            .await?;
        Ok(Arc::clone(session))
    }
}

/// Lets a boxed factory go where the builder takes `impl ExecutorFactory`.
struct BoxedFactory(Box<dyn ExecutorFactory>);

impl ExecutorFactory for BoxedFactory {
    fn build(
        self: Box<Self>,
        host: Arc<py_code_mode::Host>,
    ) -> Result<Box<dyn py_code_mode::Executor>, ExecutorError> {
        self.0.build(host)
    }

    fn capabilities(&self) -> Vec<py_code_mode::Capability> {
        self.0.capabilities()
    }

    fn deps_target(&self) -> py_code_mode::deps::DepsTarget {
        self.0.deps_target()
    }

    fn use_python(&mut self, python: PathBuf) {
        self.0.use_python(python);
    }
}

/// Runs `work` against the core session on the module runtime.
async fn with_session<T, F, Fut>(inner: &Arc<Inner>, work: F) -> PyResult<T>
where
    F: FnOnce(Arc<py_code_mode::Session>) -> Fut + Send + 'static,
    Fut: Future<Output = py_code_mode::Result<T>> + Send,
    T: Send + 'static,
{
    // Polled on the caller's event loop: async function tools run there.
    inner.functions.note_loop();
    let inner = Arc::clone(inner);
    check(runtime::spawn(async move { work(inner.session().await?).await }).await?)
}

/// A serializable core value as Python objects.
fn to_python(value: &impl serde::Serialize) -> PyResult<Py<PyAny>> {
    Python::attach(|py| convert::serialize(py, value).map(Bound::unbind))
}

fn json(value: impl serde::Serialize) -> py_code_mode::Result<Value> {
    serde_json::to_value(value).map_err(|e| {
        ExecutorError::Protocol {
            message: format!("cannot encode a result: {e}"),
        }
        .into()
    })
}

impl Session {
    /// The executor's capabilities: the built session's when there is one
    /// (it knows whether `deps` could attach), else the executor's own.
    fn capabilities(&self) -> Vec<py_code_mode::Capability> {
        match self.inner.core.get() {
            Some(core) => core.capabilities().to_vec(),
            None => self.inner.capabilities.clone(),
        }
    }

    fn create(
        py: Python<'_>,
        storage: Py<PyAny>,
        executor: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        search: SearchChoice,
        sync_deps_on_start: bool,
    ) -> PyResult<Self> {
        crate::logging::install();
        let core_storage = crate::storage::storage_of(storage.bind(py))?;
        let choice = executor_of(executor)?;
        let deps = py_code_mode::deps::DepsConfig {
            allow_runtime: choice.compat.allow_runtime_deps,
            // Packages the configuration names are installed at start, as in 0.10.
            sync_on_start: sync_deps_on_start || !choice.compat.deps.is_empty(),
            preconfigured: choice.compat.deps.clone(),
            ..py_code_mode::deps::DepsConfig::default()
        };
        let capabilities = choice.factory.capabilities();
        let timeout = seconds(timeout)?
            .or(choice.timeout)
            .unwrap_or(py_code_mode::DEFAULT_RUN_TIMEOUT);
        // Last, once every argument is checked: this starts loading the model.
        let searcher = search.searcher(&core_storage);
        Ok(Self {
            storage,
            embedding_model: search.model,
            inner: Arc::new(Inner {
                storage: core_storage,
                searcher,
                factory: Mutex::new(Some(choice.factory)),
                timeout,
                deps,
                tools_path: choice.compat.tools_path,
                capabilities,
                core: OnceCell::new(),
                closed: AtomicBool::new(false),
                functions: Arc::new(FunctionRegistry::new()),
            }),
        })
    }

    fn from_path(
        py: Python<'_>,
        base_path: PathBuf,
        executor: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        search: SearchChoice,
    ) -> PyResult<Self> {
        let storage = Py::new(py, crate::storage::FileStorage::open(py, base_path)?)?;
        Self::create(py, storage.into_any(), executor, timeout, search, false)
    }
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (storage, executor = None, *, timeout = None, embedding_model = None, semantic = true, sync_deps_on_start = false, tools = None))]
    #[expect(clippy::too_many_arguments, reason = "the Python signature")]
    fn new(
        py: Python<'_>,
        storage: Py<PyAny>,
        executor: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        embedding_model: Option<PathBuf>,
        semantic: bool,
        sync_deps_on_start: bool,
        tools: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let search = SearchChoice::new(embedding_model, semantic)?;
        let session = Self::create(py, storage, executor, timeout, search, sync_deps_on_start)?;
        if let Some(tools) = tools {
            for function in tools.try_iter()? {
                let timeout = session.inner.timeout;
                session
                    .inner
                    .functions
                    .register(&function?, None, None, timeout)?;
            }
        }
        Ok(session)
    }

    /// Registers a Python function as a tool: `session.tool(fn)`, or as a
    /// decorator, `@session.tool` / `@session.tool(name=..., description=...)`.
    /// Returns the function unchanged (the decorator form: a decorator).
    /// `timeout` (seconds) bounds one call; by default the session's timeout.
    #[pyo3(signature = (function = None, *, name = None, description = None, timeout = None))]
    fn tool(
        &self,
        py: Python<'_>,
        function: Option<Bound<'_, PyAny>>,
        name: Option<String>,
        description: Option<String>,
        timeout: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let decorator = ToolDecorator {
            registry: Arc::clone(&self.inner.functions),
            name,
            description,
            timeout: seconds(timeout)?.unwrap_or(self.inner.timeout),
        };
        match function {
            Some(function) => Ok(decorator.__call__(function)?.unbind()),
            None => Ok(Py::new(py, decorator)?.into_any()),
        }
    }

    /// A session over `FileStorage(base_path)`, in-process unless `executor` says otherwise.
    #[classmethod]
    #[pyo3(signature = (base_path, *, executor = None, timeout = None, embedding_model = None, semantic = true))]
    fn from_base(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        base_path: PathBuf,
        executor: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        embedding_model: Option<PathBuf>,
        semantic: bool,
    ) -> PyResult<Self> {
        let search = SearchChoice::new(embedding_model, semantic)?;
        Self::from_path(py, base_path, executor, timeout, search)
    }

    /// A session over `FileStorage(base_path)` with a subprocess worker.
    #[classmethod]
    #[pyo3(signature = (base_path, *, timeout = None, embedding_model = None, semantic = true))]
    fn subprocess(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        base_path: PathBuf,
        timeout: Option<f64>,
        embedding_model: Option<PathBuf>,
        semantic: bool,
    ) -> PyResult<Self> {
        let search = SearchChoice::new(embedding_model, semantic)?;
        let executor = Bound::new(py, crate::executors::SubprocessExecutor::default_for(py)?)?;
        Self::from_path(py, base_path, Some(executor.as_any()), timeout, search)
    }

    /// A session over `FileStorage(base_path)` running code in this interpreter.
    #[classmethod]
    #[pyo3(signature = (base_path, *, timeout = None, embedding_model = None, semantic = true))]
    fn inprocess(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        base_path: PathBuf,
        timeout: Option<f64>,
        embedding_model: Option<PathBuf>,
        semantic: bool,
    ) -> PyResult<Self> {
        let search = SearchChoice::new(embedding_model, semantic)?;
        Self::from_path(py, base_path, None, timeout, search)
    }

    #[getter]
    fn storage(&self, py: Python<'_>) -> Py<PyAny> {
        self.storage.clone_ref(py)
    }

    /// The timeout of runs that do not set their own, in seconds.
    #[getter]
    fn timeout(&self) -> f64 {
        self.inner.timeout.as_secs_f64()
    }

    /// The embedding model of hybrid search, as resolved at creation (argument,
    /// environment, default); `None` with `semantic=False`.
    #[getter]
    fn embedding_model(&self) -> Option<String> {
        self.embedding_model.clone()
    }

    /// Loads tools and starts the executor, so the first run is quick.
    async fn start(&self) -> PyResult<()> {
        with_session(&self.inner, |session| async move { session.start().await }).await
    }

    async fn __aenter__(slf: Py<Self>) -> PyResult<Py<Self>> {
        let inner = Python::attach(|py| Arc::clone(&slf.bind(py).get().inner));
        with_session(&inner, |session| async move { session.start().await }).await?;
        Ok(slf)
    }

    #[pyo3(signature = (*_args))]
    async fn __aexit__(&self, _args: Vec<Py<PyAny>>) -> PyResult<bool> {
        self.close().await?;
        Ok(false)
    }

    /// Runs agent code; errors in the code are in the result, not raised.
    #[pyo3(signature = (code, timeout = None))]
    async fn run(&self, code: String, timeout: Option<f64>) -> PyResult<ExecutionResult> {
        let timeout = seconds(timeout)?;
        self.inner.functions.note_loop();
        let inner = Arc::clone(&self.inner);
        // The hot path: polled right here, no task hand-off (`runtime::here`).
        let result = check(
            runtime::here(async move {
                inner
                    .session()
                    .await?
                    .run_with_timeout(&code, timeout)
                    .await
            })?
            .await?,
        )?;
        Python::attach(|py| ExecutionResult::from_core(py, result))
    }

    /// Forgets every variable agent code defined; the library is untouched.
    async fn reset(&self) -> PyResult<()> {
        with_session(&self.inner, |session| async move { session.reset().await }).await
    }

    /// Stops the executor and closes tool connections. Idempotent.
    async fn close(&self) -> PyResult<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let Some(session) = self.inner.core.get().cloned() else {
            return Ok(());
        };
        runtime::spawn(async move { session.close().await }).await
    }

    async fn list_tools(&self) -> PyResult<Py<PyAny>> {
        let tools =
            with_session(&self.inner, |s| async move { json(s.list_tools().await?) }).await?;
        to_python(&tools)
    }

    #[pyo3(signature = (query, limit = 10))]
    async fn search_tools(&self, query: String, limit: usize) -> PyResult<Py<PyAny>> {
        let hits = with_session(&self.inner, move |s| async move {
            json(s.search_tools(&query, limit).await?)
        })
        .await?;
        to_python(&hits)
    }

    async fn list_skills(&self) -> PyResult<Py<PyAny>> {
        let skills =
            with_session(&self.inner, |s| async move { json(s.list_skills().await?) }).await?;
        to_python(&skills)
    }

    #[pyo3(signature = (query, limit = 5))]
    async fn search_skills(&self, query: String, limit: usize) -> PyResult<Py<PyAny>> {
        let hits = with_session(&self.inner, move |s| async move {
            json(s.search_skills(&query, limit).await?)
        })
        .await?;
        to_python(&hits)
    }

    /// The current skill, or kept version `version`.
    #[pyo3(signature = (name, version = None))]
    async fn get_skill(&self, name: String, version: Option<u64>) -> PyResult<Py<PyAny>> {
        let skill = with_session(&self.inner, move |s| async move {
            match version {
                Some(v) => json(s.get_skill_version(&name, v).await?),
                None => json(s.get_skill(&name).await?),
            }
        })
        .await?;
        to_python(&skill)
    }

    /// A skill's kept versions, newest first (agent code's `skills.history`).
    async fn skill_history(&self, name: String) -> PyResult<Py<PyAny>> {
        let history = with_session(&self.inner, move |s| async move {
            json(s.skill_history(&name).await?)
        })
        .await?;
        to_python(&history)
    }

    /// Makes kept version `version` current again, as a new version.
    async fn rollback_skill(&self, name: String, version: u64) -> PyResult<Py<PyAny>> {
        let skill = with_session(&self.inner, move |s| async move {
            json(s.rollback_skill(&name, version).await?)
        })
        .await?;
        to_python(&skill)
    }

    /// Replays a skill's recorded cases: `[{case, ok, diff}]`.
    async fn test_skill(&self, name: String) -> PyResult<Py<PyAny>> {
        let reports = with_session(&self.inner, move |s| async move {
            json(s.test_skill(&name).await?)
        })
        .await?;
        to_python(&reports)
    }

    /// Runs skill `name` with `kwargs`, recording its tool calls and outcome
    /// as case `case` (agent code's `skills.record`); the run's result, the
    /// skill's return value in `value`. Positional-only, so a skill may take
    /// parameters named `name` or `case`.
    #[pyo3(signature = (name, case, /, **kwargs))]
    async fn record_skill(
        &self,
        name: String,
        case: String,
        kwargs: Option<Py<pyo3::types::PyDict>>,
    ) -> PyResult<ExecutionResult> {
        let kwargs = Python::attach(|py| match kwargs {
            None => Ok(serde_json::Map::new()),
            Some(k) => match convert::to_json(k.bind(py).as_any())? {
                Value::Object(map) => Ok(map),
                _ => Err(PyTypeError::new_err("the keyword arguments must be a dict")),
            },
        })?;
        let result = with_session(&self.inner, move |s| async move {
            s.record_skill(&name, &case, &kwargs).await
        })
        .await?;
        Python::attach(|py| ExecutionResult::from_core(py, result))
    }

    /// Saves a skill (validated and parsed, never executed on the host).
    #[pyo3(signature = (name, source, description = String::new()))]
    async fn add_skill(
        &self,
        name: String,
        source: String,
        description: String,
    ) -> PyResult<Py<PyAny>> {
        let skill = with_session(&self.inner, move |s| async move {
            json(s.add_skill(&name, &source, &description).await?)
        })
        .await?;
        to_python(&skill)
    }

    async fn remove_skill(&self, name: String) -> PyResult<bool> {
        with_session(
            &self.inner,
            move |s| async move { s.remove_skill(&name).await },
        )
        .await
    }

    async fn list_artifacts(&self) -> PyResult<Py<PyAny>> {
        let artifacts = with_session(
            &self.inner,
            |s| async move { json(s.list_artifacts().await?) },
        )
        .await?;
        to_python(&artifacts)
    }

    #[pyo3(signature = (name, data, description = String::new(), metadata = None))]
    async fn save_artifact(
        &self,
        name: String,
        data: Py<PyAny>,
        description: String,
        metadata: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let (data, metadata) = Python::attach(|py| {
            let data = convert::artifact_data(py, data.bind(py))?;
            let metadata = match metadata {
                None => serde_json::Map::new(),
                Some(m) if m.is_none(py) => serde_json::Map::new(),
                Some(m) => match convert::to_json(m.bind(py))? {
                    Value::Object(map) => map,
                    _ => return Err(PyTypeError::new_err("`metadata` must be a dict")),
                },
            };
            Ok::<_, PyErr>((data, metadata))
        })?;
        let meta = with_session(&self.inner, move |s| async move {
            json(
                s.save_artifact(&name, &data, &description, metadata)
                    .await?,
            )
        })
        .await?;
        to_python(&meta)
    }

    /// The data saved under `name`, with the type it was saved with.
    async fn load_artifact(&self, name: String) -> PyResult<Py<PyAny>> {
        let data = with_session(
            &self.inner,
            move |s| async move { s.load_artifact(&name).await },
        )
        .await?;
        Python::attach(|py| convert::artifact_to_py(py, &data).map(Bound::unbind))
    }

    async fn delete_artifact(&self, name: String) -> PyResult<bool> {
        with_session(&self.inner, move |s| async move {
            s.delete_artifact(&name).await
        })
        .await
    }

    /// Whether the executor provides `capability` (a `Capability` constant
    /// such as `"timeout"`); unknown names are `False`.
    fn supports(&self, capability: &str) -> bool {
        py_code_mode::Capability::parse(capability)
            .is_some_and(|c| self.capabilities().contains(&c))
    }

    /// Every capability the executor provides, as names.
    fn supported_capabilities(&self) -> std::collections::BTreeSet<&'static str> {
        self.capabilities()
            .into_iter()
            .map(py_code_mode::Capability::as_str)
            .collect()
    }

    /// The configured packages (specs such as `pandas>=2`).
    async fn list_deps(&self) -> PyResult<Vec<String>> {
        with_session(&self.inner, |s| async move { s.list_deps().await }).await
    }

    /// Installs `package` (validated, by the host) and records it:
    /// `{"installed", "already_present", "failed"}`.
    async fn add_dep(&self, package: String) -> PyResult<Py<PyAny>> {
        let report = with_session(&self.inner, move |s| async move {
            json(s.add_dep(&package).await?)
        })
        .await?;
        to_python(&report)
    }

    /// Forgets `package`: `{"removed", "not_found", "failed", "removed_from_config"}`.
    async fn remove_dep(&self, package: String) -> PyResult<Py<PyAny>> {
        let report = with_session(&self.inner, move |s| async move {
            json(s.remove_dep(&package).await?)
        })
        .await?;
        to_python(&report)
    }

    /// Installs every configured package that is missing.
    async fn sync_deps(&self) -> PyResult<Py<PyAny>> {
        let report =
            with_session(&self.inner, |s| async move { json(s.sync_deps().await?) }).await?;
        to_python(&report)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let storage = self
            .storage
            .bind(py)
            .repr()
            .map_or_else(|_| "?".to_owned(), |r| r.to_string());
        format!("Session(storage={storage})")
    }
}
