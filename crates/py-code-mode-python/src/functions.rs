//! Python functions as tools: `Session(storage, tools=[fn])` and `@session.tool`.
//!
//! A function becomes a core [`FunctionTool`] whose listing
//! `py_code_mode._functions.describe` reads from its signature and docstring.
//! Agent code's call reaches it through the host like any tool call (over the
//! protocol from a worker process), and it runs in this interpreter:
//! - a sync function on a thread of tokio's blocking pool, so a slow one
//!   stalls neither the host nor the application's event loop; called from
//!   the in-process executor, on the run's own thread, which waits for the
//!   answer anyway (two thread hand-offs fewer per call; the run's timeout
//!   interrupts Python code in the function as it does agent code);
//! - an async function (or one returning an awaitable) on the application's
//!   event loop, the one that last awaited the session, so it may use what
//!   lives there (clients, locks); on a fresh loop of its own when that loop
//!   is not running. If the call is abandoned (the run timed out), the task
//!   on the loop is cancelled.
//!
//! A call is bounded by the tool's timeout (by default the session's run
//! timeout): past it agent code gets a `ToolError`, an async call is
//! cancelled, and a sync one finishes on its thread unheard (in-process, the
//! `ToolError` comes when the function returns). Without the bound, an
//! in-process run waiting on an async function that never finishes could not
//! be interrupted (it waits outside Python).
//!
//! An exception reaches agent code as `ToolError` with the exception's type
//! and message (the host's traceback stays on the host, logged at debug).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use py_code_mode::{FunctionResult, FunctionTool, ParamInfo};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::convert;

/// The application's event loop, as last seen awaiting the session: where
/// async tools run.
#[derive(Default)]
pub(crate) struct AppLoop(Mutex<Option<Py<PyAny>>>);

impl AppLoop {
    /// Remembers the running event loop of this thread, if there is one.
    pub(crate) fn note(&self, py: Python<'_>) {
        static GET_RUNNING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let running = GET_RUNNING
            .get_or_try_init(py, || {
                py.import(intern!(py, "asyncio"))?
                    .getattr(intern!(py, "_get_running_loop"))
                    .map(Bound::unbind)
            })
            .and_then(|get| get.call0(py));
        if let Ok(event_loop) = running
            && !event_loop.is_none(py)
        {
            let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if !slot.as_ref().is_some_and(|old| old.is(&event_loop)) {
                *slot = Some(event_loop);
            }
        }
    }

    fn get(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|l| l.clone_ref(py))
    }
}

/// `py_code_mode._functions`, the Python half.
fn helpers(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import(intern!(py, "py_code_mode._functions"))
}

/// The tool `function` becomes (named `name` or its `__name__`, described
/// by `description` or its docstring), its async calls run on `app_loop`.
pub(crate) fn function_tool(
    function: &Bound<'_, PyAny>,
    name: Option<&str>,
    description: Option<&str>,
    timeout: Duration,
    app_loop: &Arc<AppLoop>,
) -> PyResult<FunctionTool> {
    let py = function.py();
    let spec = helpers(py)?.call_method1(intern!(py, "describe"), (function, name, description))?;
    let spec = convert::to_json(&spec)?;
    let text = |key: &str| {
        spec.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let parameters: Vec<ParamInfo> = serde_json::from_value(
        spec.get("parameters")
            .cloned()
            .unwrap_or(Value::Array(Vec::new())),
    )
    .map_err(|e| pyo3::exceptions::PyTypeError::new_err(format!("bad parameters: {e}")))?;
    let tool_name = text("name");
    let callee = Arc::new(Call {
        name: tool_name.clone(),
        function: function.clone().unbind(),
        app_loop: Arc::clone(app_loop),
    });
    let tool = FunctionTool::new(tool_name, move |args| {
        let callee = Arc::clone(&callee);
        async move { callee.call(args).await }
    })
    .description(text("description"))
    .parameters(parameters)
    .extra_keywords(
        spec.get("extra_keywords")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    )
    .timeout(timeout);
    tool.validate()
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    Ok(tool)
}

/// One registered function and where its async calls run.
struct Call {
    name: String,
    function: Py<PyAny>,
    app_loop: Arc<AppLoop>,
}

/// What calling the function gave: a value, or a task on the event loop.
enum Started {
    Done(Value),
    Pending {
        future: Py<PyAny>,
        reply: oneshot::Receiver<Result<Value, String>>,
    },
}

impl Call {
    async fn call(self: Arc<Self>, args: Map<String, Value>) -> FunctionResult {
        let this = Arc::clone(&self);
        // Outside any tokio task, this is a thread that blocks on the call
        // anyway (the in-process runner in its `block_on`, waiting for this
        // very answer): the function runs right here, sparing two thread
        // hand-offs per call. In a task (the host side of a worker's call),
        // taking the GIL and running the function may wait: never on a tokio
        // worker, and calls in flight together run side by side.
        let started = if tokio::task::try_id().is_none() {
            Python::attach(|py| this.start(py, args))?
        } else {
            tokio::task::spawn_blocking(move || Python::attach(|py| this.start(py, args)))
                .await
                .map_err(|e| format!("the function's thread failed: {e}"))??
        };
        match started {
            Started::Done(value) => Ok(value),
            Started::Pending { future, reply } => {
                let mut guard = CancelOnDrop(Some(future));
                let outcome = reply.await;
                guard.0 = None;
                Ok(outcome.map_err(|_| "the event loop dropped the call".to_owned())??)
            }
        }
    }

    /// Calls the function with the GIL held; a sync result is converted here.
    fn start(&self, py: Python<'_>, args: Map<String, Value>) -> Result<Started, String> {
        let kwargs = convert::to_py(py, &Value::Object(args))
            .and_then(|d| d.cast_into::<PyDict>().map_err(PyErr::from))
            .map_err(|e| format!("cannot pass the arguments: {e}"))?;
        let result = self
            .function
            .bind(py)
            .call((), Some(&kwargs))
            .map_err(|e| self.raised(py, &e))?;
        if !result.hasattr(intern!(py, "__await__")).unwrap_or(false) {
            return self.json(&result).map(Started::Done);
        }
        let helpers = helpers(py).map_err(|e| e.to_string())?;
        let event_loop = self.app_loop.get(py);
        let future = helpers
            .call_method1(intern!(py, "schedule"), (event_loop, &result))
            .map_err(|e| self.raised(py, &e))?;
        if future.is_none() {
            // No running application loop: a loop of its own, on this thread.
            let value = helpers
                .call_method1(intern!(py, "run_here"), (&result,))
                .map_err(|e| self.raised(py, &e))?;
            return self.json(&value).map(Started::Done);
        }
        let (tx, reply) = oneshot::channel();
        let done = Done {
            name: self.name.clone(),
            reply: Mutex::new(Some(tx)),
        };
        future
            .call_method1(intern!(py, "add_done_callback"), (done,))
            .map_err(|e| e.to_string())?;
        Ok(Started::Pending {
            future: future.unbind(),
            reply,
        })
    }

    fn json(&self, value: &Bound<'_, PyAny>) -> Result<Value, String> {
        json_of(&self.name, value)
    }

    fn raised(&self, py: Python<'_>, error: &PyErr) -> String {
        raised(py, &self.name, error)
    }
}

fn json_of(name: &str, value: &Bound<'_, PyAny>) -> Result<Value, String> {
    convert::to_json(value).map_err(|e| {
        format!("`{name}` returned a value JSON cannot hold: {e}\nhint: return str, numbers, bool, None, lists or dicts")
    })
}

/// `ValueError: the message`, as agent code reads it; the traceback is logged.
fn raised(py: Python<'_>, name: &str, error: &PyErr) -> String {
    let kind = error
        .get_type(py)
        .name()
        .map_or_else(|_| "Exception".to_owned(), |n| n.to_string());
    let message = error
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    if let Some(traceback) = error.traceback(py).and_then(|t| t.format().ok()) {
        tracing::debug!(
            tool = name,
            "function tool raised:\n{traceback}{kind}: {message}"
        );
    }
    if message.is_empty() {
        kind
    } else {
        format!("{kind}: {message}")
    }
}

/// The done-callback of an async call's future: hands its result to tokio.
#[pyclass(frozen, module = "py_code_mode._native")]
struct Done {
    name: String,
    reply: Mutex<Option<oneshot::Sender<Result<Value, String>>>>,
}

#[pymethods]
impl Done {
    fn __call__(&self, py: Python<'_>, future: &Bound<'_, PyAny>) {
        let outcome = if future
            .call_method0(intern!(py, "cancelled"))
            .and_then(|c| c.is_truthy())
            .unwrap_or(false)
        {
            Err("the call was cancelled".to_owned())
        } else {
            match future.call_method0(intern!(py, "result")) {
                Ok(value) => json_of(&self.name, &value),
                Err(error) => Err(raised(py, &self.name, &error)),
            }
        };
        if let Some(tx) = self
            .reply
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = tx.send(outcome);
        }
    }
}

/// Cancels an async call's task when its caller goes away (the run ended).
struct CancelOnDrop(Option<Py<PyAny>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(future) = self.0.take() {
            // Not at all once the interpreter is exiting.
            let _ = Python::try_attach(|py| future.call_method0(py, intern!(py, "cancel")));
        }
    }
}

/// The functions a session was given, until its core session is built.
#[derive(Default)]
pub(crate) struct FunctionRegistry {
    pub(crate) app_loop: Arc<AppLoop>,
    /// `None` once the core session took them: later ones cannot join.
    pending: Mutex<Option<Vec<FunctionTool>>>,
    /// Whether any function was registered: only then is the loop noted.
    any: std::sync::atomic::AtomicBool,
}

impl FunctionRegistry {
    pub(crate) fn new() -> Self {
        Self {
            pending: Mutex::new(Some(Vec::new())),
            ..Self::default()
        }
    }

    /// Registers `function` (see [`function_tool`]).
    pub(crate) fn register(
        &self,
        function: &Bound<'_, PyAny>,
        name: Option<&str>,
        description: Option<&str>,
        timeout: Duration,
    ) -> PyResult<()> {
        let tool = function_tool(function, name, description, timeout, &self.app_loop)?;
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(pending) = pending.as_mut() else {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "cannot add the tool `{}`: the session has started\nhint: register functions before the first `run`, `start` or `async with`",
                tool.name()
            )));
        };
        pending.retain(|t| t.name() != tool.name());
        pending.push(tool);
        self.any.store(true, std::sync::atomic::Ordering::Release);
        self.app_loop.note(function.py());
        Ok(())
    }

    /// The registered tools, for the core session being built; none after.
    pub(crate) fn take(&self) -> Vec<FunctionTool> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default()
    }

    /// Notes the running loop when the session has function tools.
    pub(crate) fn note_loop(&self) {
        if self.any.load(std::sync::atomic::Ordering::Acquire) {
            Python::attach(|py| self.app_loop.note(py));
        }
    }
}

/// What `@session.tool(name=..., description=...)` returns: registers the
/// function it decorates and gives it back unchanged.
#[pyclass(frozen, module = "py_code_mode._native")]
pub(crate) struct ToolDecorator {
    pub(crate) registry: Arc<FunctionRegistry>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) timeout: Duration,
}

#[pymethods]
impl ToolDecorator {
    pub(crate) fn __call__<'py>(&self, function: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.registry.register(
            &function,
            self.name.as_deref(),
            self.description.as_deref(),
            self.timeout,
        )?;
        Ok(function)
    }
}
