//! The in-process executor: agent code runs in the caller's own interpreter.
//!
//! It drives THE runtime module (`py_code_mode::RUNTIME_SOURCE`, the same file
//! the subprocess worker runs) over its `DirectTransport`, whose handler is
//! [`HostHandler`]: a call from agent code goes straight to [`Host::handle`]
//! with the GIL released while Rust works. So the in-process executor has the
//! same namespaces, the same RPC calls and the same result shape as the others.
//!
//! Agent code runs on a runner thread of its own (one per session), never on
//! the caller's event loop, so `await session.run(...)` leaves the loop free.
//! Output is captured per run by the runtime's context-variable routing, so a
//! print from any other thread of the application is not captured.
//!
//! Timeouts: when a run exceeds its timeout, [`RunInterrupted`] (a
//! `BaseException`) is raised in the runner thread with
//! `PyThreadState_SetAsyncExc`, again every [`INTERRUPT_INTERVAL`] in case the
//! code catches it. Python checks for it between bytecodes: code blocked inside
//! a C call (`time.sleep`, a socket read) stops when that call returns. If it
//! has not stopped within [`STOP_GRACE`], the run reports `TimeoutError` anyway
//! and the next run waits for the runner. Variables survive a timeout.

use std::ffi::{CString, c_long, c_ulong};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use py_code_mode::protocol::{CallError, CallOutcome, HostCall, RawRunResult};
use py_code_mode::{
    ExecutionError, ExecutionResult, Executor, ExecutorError, ExecutorFactory, Host,
};
use pyo3::exceptions::PyBaseException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};
use pyo3::{create_exception, intern};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

create_exception!(
    py_code_mode,
    RunInterrupted,
    PyBaseException,
    "Raised inside agent code to stop a run that exceeded its timeout."
);

/// How often a timed-out run is interrupted again (agent code may catch it).
const INTERRUPT_INTERVAL: Duration = Duration::from_millis(50);
/// How long a timed-out run may take to stop before the caller is answered anyway.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long interpreter exit waits for a runner busy with agent code.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long `reset` waits for a busy runner.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the in-process executor.
#[derive(Debug, Clone)]
pub(crate) struct InProcessConfig {
    /// Cap on one run's stdout and on its stderr, in bytes.
    pub output_limit: usize,
    /// This interpreter (`sys.executable`): `deps` installs into the
    /// application's own environment, as 0.10 did.
    pub python: Option<std::path::PathBuf>,
}

/// Builds the executor once the session's host exists.
pub(crate) struct InProcessFactory(pub InProcessConfig);

impl ExecutorFactory for InProcessFactory {
    fn build(self: Box<Self>, host: Arc<Host>) -> Result<Box<dyn Executor>, ExecutorError> {
        let handle = crate::runtime::handle().map_err(|e| ExecutorError::Protocol {
            message: e.to_string(),
        })?;
        Ok(Box::new(InProcessExecutor::spawn(host, handle, self.0)?))
    }

    /// Timeouts stop pure-Python code (code blocked in a C call stops when
    /// the call returns); `reset` forgets variables. Agent code shares the
    /// application's process, memory, files and network: no isolation.
    fn capabilities(&self) -> Vec<py_code_mode::Capability> {
        use py_code_mode::Capability;
        vec![
            Capability::Timeout,
            Capability::Reset,
            Capability::DepsInstall,
        ]
    }

    fn deps_target(&self) -> py_code_mode::deps::DepsTarget {
        match &self.0.python {
            Some(python) => py_code_mode::deps::DepsTarget::Interpreter(python.clone()),
            None => py_code_mode::deps::DepsTarget::Unsupported,
        }
    }
}

enum Job {
    Run {
        id: u64,
        code: String,
        deadline: Instant,
        reply: oneshot::Sender<Outcome>,
    },
    Reset(oneshot::Sender<Outcome>),
    Ping(oneshot::Sender<Outcome>),
    Stop,
}

enum Outcome {
    Done {
        /// Boxed: a run result is far larger than the other outcomes.
        raw: Result<Box<RawRunResult>, String>,
        interrupted: bool,
    },
    /// The run's deadline passed while it waited for a runner still stopping.
    Skipped,
    Ready,
    Failed(String),
}

/// The state the executor, the runner thread and the exit hook share.
pub(crate) struct RunnerShared {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// `threading.get_ident()` of the runner thread.
    ident: OnceLock<c_ulong>,
    /// The id of the run executing now. Read and written only with the GIL
    /// held, so an interrupt can never land in the next run.
    current: Mutex<Option<u64>>,
    /// The id of the run that was interrupted (0: none).
    interrupted: AtomicU64,
    next_id: AtomicU64,
}

impl RunnerShared {
    fn send(&self, job: Job) -> Result<(), ExecutorError> {
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.as_ref()
            .and_then(|tx| tx.send(job).ok())
            .ok_or(ExecutorError::Closed)
    }

    fn current(&self) -> Option<u64> {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_current(&self, id: Option<u64>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = id;
    }

    /// Raises [`RunInterrupted`] in the runner if run `id` (or, with `None`,
    /// any run) is executing.
    fn interrupt(&self, py: Python<'_>, id: Option<u64>) {
        let current = self.current();
        if current.is_some()
            && (id.is_none() || current == id)
            && let Some(ident) = self.ident.get()
        {
            set_async_exc(py, *ident, Some(&py.get_type::<RunInterrupted>()));
        }
    }

    /// Stops the runner thread and waits (bounded) for it: the exit hook calls
    /// this while the interpreter is still whole.
    pub(crate) fn stop_and_join(&self, py: Python<'_>) {
        let sender = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(Job::Stop);
        }
        self.interrupt(py, None);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(thread) = thread else { return };
        // A runner still inside agent code after the grace is left behind.
        py.detach(|| {
            let started = Instant::now();
            while !thread.is_finished() && started.elapsed() < EXIT_GRACE {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        });
    }
}

/// Runs agent code on a runner thread of this interpreter; see the module docs.
pub(crate) struct InProcessExecutor {
    shared: Arc<RunnerShared>,
}

impl InProcessExecutor {
    fn spawn(
        host: Arc<Host>,
        handle: Handle,
        config: InProcessConfig,
    ) -> Result<Self, ExecutorError> {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(RunnerShared {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(None),
            ident: OnceLock::new(),
            current: Mutex::new(None),
            interrupted: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
        });
        let runner = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("py-code-mode-runner".into())
            .spawn(move || serve(&runner, &Mutex::new(rx), host, handle, &config))
            .map_err(|e| ExecutorError::Protocol {
                message: format!("cannot start the runner thread: {e}"),
            })?;
        *shared.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread);
        crate::runtime::register_runner(Arc::downgrade(&shared));
        Ok(Self { shared })
    }

    /// Interrupts run `id` until it answers or [`STOP_GRACE`] passes.
    async fn stop_run(&self, id: u64, reply: &mut oneshot::Receiver<Outcome>) -> Option<Outcome> {
        self.shared.interrupted.store(id, Ordering::Release);
        let started = Instant::now();
        loop {
            let shared = Arc::clone(&self.shared);
            // Taking the GIL may wait for a switch interval: not on a tokio worker.
            let _ = tokio::task::spawn_blocking(move || {
                Python::attach(|py| shared.interrupt(py, Some(id)));
            })
            .await;
            match tokio::time::timeout(INTERRUPT_INTERVAL, &mut *reply).await {
                Ok(outcome) => return outcome.ok(),
                Err(_) if started.elapsed() >= STOP_GRACE => return None,
                Err(_) => {}
            }
        }
    }
}

impl Drop for InProcessExecutor {
    fn drop(&mut self) {
        let sender = self
            .shared
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(Job::Stop);
        }
    }
}

#[async_trait]
impl Executor for InProcessExecutor {
    async fn start(&self) -> Result<(), ExecutorError> {
        let (tx, rx) = oneshot::channel();
        self.shared.send(Job::Ping(tx))?;
        match rx.await {
            Ok(Outcome::Failed(message)) => Err(ExecutorError::Protocol { message }),
            Ok(_) => Ok(()),
            Err(_) => Err(ExecutorError::Closed),
        }
    }

    async fn run(&self, code: &str, timeout: Duration) -> Result<ExecutionResult, ExecutorError> {
        let started = Instant::now();
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, mut rx) = oneshot::channel();
        self.shared.send(Job::Run {
            id,
            code: code.to_owned(),
            deadline: started + timeout,
            reply: tx,
        })?;
        let outcome = match tokio::time::timeout(timeout, &mut rx).await {
            Ok(Ok(outcome)) => Some(outcome),
            Ok(Err(_)) => return Err(ExecutorError::Closed),
            Err(_) => self.stop_run(id, &mut rx).await,
        };
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let seconds = timeout.as_secs_f64();
        match outcome {
            Some(Outcome::Done {
                raw,
                interrupted: false,
            }) => {
                let raw = raw.map_err(|message| ExecutorError::Protocol { message })?;
                Ok(raw.finish(duration_ms))
            }
            Some(Outcome::Done {
                raw,
                interrupted: true,
            }) => {
                let raw = raw.map(|raw| *raw).unwrap_or_default();
                Ok(ExecutionResult {
                    stdout: raw.stdout,
                    stderr: raw.stderr,
                    ..timed_out(
                        format!(
                            "execution exceeded the {seconds}s timeout and was stopped; variables defined before it are kept"
                        ),
                        duration_ms,
                    )
                })
            }
            Some(Outcome::Skipped) => Ok(timed_out(
                format!(
                    "execution did not start within the {seconds}s timeout: an earlier timed-out run is still stopping"
                ),
                duration_ms,
            )),
            Some(Outcome::Failed(message)) => Err(ExecutorError::Protocol { message }),
            Some(Outcome::Ready) => Err(ExecutorError::Protocol {
                message: "the runner answered a run with a ping".into(),
            }),
            None => Ok(timed_out(
                format!(
                    "execution exceeded the {seconds}s timeout and has not stopped yet: it is blocked in a call outside Python and stops when that returns; the next run waits for it"
                ),
                duration_ms,
            )),
        }
    }

    async fn reset(&self) -> Result<(), ExecutorError> {
        let (tx, rx) = oneshot::channel();
        self.shared.send(Job::Reset(tx))?;
        match tokio::time::timeout(RESET_TIMEOUT, rx).await {
            Ok(Ok(Outcome::Failed(message))) => Err(ExecutorError::Protocol { message }),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ExecutorError::Closed),
            Err(_) => Err(ExecutorError::Protocol {
                message: format!(
                    "reset waited {}s for a run that has not stopped",
                    RESET_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    async fn close(&self) {
        let sender = self
            .shared
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(Job::Stop);
        }
    }
}

fn timed_out(message: String, duration_ms: f64) -> ExecutionResult {
    ExecutionResult {
        error: Some(ExecutionError {
            kind: "TimeoutError".into(),
            message,
            traceback: String::new(),
        }),
        duration_ms,
        ..ExecutionResult::default()
    }
}

/// The runner thread: attached to the interpreter for its whole life, detached
/// while it waits for work.
fn serve(
    shared: &RunnerShared,
    // In a mutex only because waiting happens detached, which needs `Sync`.
    jobs: &Mutex<mpsc::Receiver<Job>>,
    host: Arc<Host>,
    handle: Handle,
    config: &InProcessConfig,
) {
    Python::attach(|py| {
        let runtime = new_runtime(py, host, handle, config.output_limit);
        if let Ok(ident) = thread_ident(py) {
            let _ = shared.ident.set(ident);
        }
        loop {
            let Ok(job) = py.detach(|| jobs.lock().unwrap_or_else(PoisonError::into_inner).recv())
            else {
                break;
            };
            let runtime = match &runtime {
                Ok(runtime) => runtime,
                Err(error) => {
                    let failed = Outcome::Failed(format!("cannot load the runtime: {error}"));
                    match job {
                        Job::Run { reply, .. } | Job::Reset(reply) | Job::Ping(reply) => {
                            let _ = reply.send(failed);
                        }
                        Job::Stop => break,
                    }
                    continue;
                }
            };
            match job {
                Job::Run {
                    id,
                    code,
                    deadline,
                    reply,
                } => {
                    if Instant::now() >= deadline {
                        let _ = reply.send(Outcome::Skipped);
                        continue;
                    }
                    shared.set_current(Some(id));
                    let result = runtime.call_method1(py, intern!(py, "execute"), (code,));
                    shared.set_current(None);
                    let interrupted = shared.interrupted.load(Ordering::Acquire) == id;
                    if interrupted {
                        // An interrupt raised while the code sat in a C call may
                        // still be pending: clear it so the next run is clean.
                        if let Some(ident) = shared.ident.get() {
                            set_async_exc(py, *ident, None);
                        }
                    }
                    let raw = result
                        .and_then(|dict| raw_result(dict.bind(py)))
                        .map(Box::new)
                        .map_err(|e| format!("the runtime failed: {e}"));
                    let _ = reply.send(Outcome::Done { raw, interrupted });
                }
                Job::Reset(reply) => {
                    let outcome = match runtime.call_method0(py, intern!(py, "reset")) {
                        Ok(_) => Outcome::Ready,
                        Err(e) => Outcome::Failed(format!("reset failed: {e}")),
                    };
                    let _ = reply.send(outcome);
                }
                Job::Ping(reply) => {
                    let _ = reply.send(Outcome::Ready);
                }
                Job::Stop => break,
            }
        }
    });
}

fn thread_ident(py: Python<'_>) -> PyResult<c_ulong> {
    py.import(intern!(py, "threading"))?
        .call_method0(intern!(py, "get_ident"))?
        .extract()
}

/// The runtime's `execute` result, read as JSON (the runtime already made
/// the value JSON the host reads, so the shape is exactly the subprocess
/// worker's).
fn raw_result(dict: &Bound<'_, PyAny>) -> PyResult<RawRunResult> {
    serde_json::from_value(crate::convert::to_json(dict)?)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("bad run result: {e}")))
}

static RUNTIME_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The shared runtime module, loaded once per interpreter: the package's own
/// copy (`py_code_mode/_runtime.py`) when it is byte for byte the source the
/// core embeds, so its bytecode, compiled by the installer, loads in about a
/// millisecond where compiling the source takes ~20; else the embedded
/// source, compiled here. Never a copy that differs from the embedded source.
fn runtime_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    RUNTIME_MODULE
        .get_or_try_init(py, || {
            if let Some(module) = installed_runtime(py)? {
                return Ok(module.unbind());
            }
            let source = CString::new(py_code_mode::RUNTIME_SOURCE)
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
            PyModule::from_code(py, &source, c"py_code_mode_runtime.py", RUNTIME_MODULE_NAME)
                .map(Bound::unbind)
        })
        .map(|module| module.bind(py))
}

const RUNTIME_MODULE_NAME: &std::ffi::CStr = c"py_code_mode._runtime";

/// The runtime loaded from the package's copy, if it has one identical to
/// the embedded source (a package installed from this build does). The copy
/// is the file beside the package's `__init__.py`, loaded by a loader made
/// here for that path.
fn installed_runtime(py: Python<'_>) -> PyResult<Option<Bound<'_, PyModule>>> {
    let name = RUNTIME_MODULE_NAME.to_str().unwrap_or_default();
    let package: Option<std::path::PathBuf> = py
        .import(intern!(py, "py_code_mode"))
        .and_then(|package| package.getattr(intern!(py, "__file__")))
        .and_then(|file| file.extract())
        .ok();
    let Some(origin) = package
        .as_deref()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join("_runtime.py"))
    else {
        return Ok(None);
    };
    match std::fs::read(&origin) {
        Ok(source) if source == py_code_mode::RUNTIME_SOURCE.as_bytes() => {}
        _ => {
            tracing::debug!(
                origin = %origin.display(),
                "the package's runtime differs from the embedded one; compiling the embedded source"
            );
            return Ok(None);
        }
    }
    // Made here rather than through `importlib.util` and a `Path`: both
    // modules are imports of their own (~8 ms of a new process's first run
    // on a slow machine), and `importlib.machinery` is loaded with `asyncio`.
    let Some(origin) = origin.to_str() else {
        return Ok(None);
    };
    let machinery = py.import(intern!(py, "importlib.machinery"))?;
    let loader = machinery
        .getattr(intern!(py, "SourceFileLoader"))?
        .call1((name, origin))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "origin"), origin)?;
    let spec = machinery
        .getattr(intern!(py, "ModuleSpec"))?
        .call((name, &loader), Some(&kwargs))?;
    // `__file__` and `__cached__` (the installer's bytecode) follow from it.
    spec.setattr(intern!(py, "has_location"), true)?;
    let module = PyModule::new(py, name)?;
    module.setattr(intern!(py, "__spec__"), &spec)?;
    module.setattr(intern!(py, "__loader__"), &loader)?;
    module.setattr(intern!(py, "__file__"), origin)?;
    module.setattr(
        intern!(py, "__cached__"),
        spec.getattr(intern!(py, "cached"))?,
    )?;
    module.setattr(intern!(py, "__package__"), "py_code_mode")?;
    let modules = py
        .import(intern!(py, "sys"))?
        .getattr(intern!(py, "modules"))?;
    modules.set_item(name, &module)?;
    if let Err(error) = loader.call_method1(intern!(py, "exec_module"), (&module,)) {
        let _ = modules.del_item(name);
        return Err(error);
    }
    Ok(Some(module))
}

fn new_runtime(
    py: Python<'_>,
    host: Arc<Host>,
    handle: Handle,
    output_limit: usize,
) -> PyResult<Py<PyAny>> {
    let module = runtime_module(py)?;
    let handler = Bound::new(py, HostHandler { host, handle })?;
    let transport = module.getattr("DirectTransport")?.call1((handler,))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("output_limit", output_limit)?;
    Ok(module
        .getattr("Runtime")?
        .call((transport,), Some(&kwargs))?
        .unbind())
}

/// The `DirectTransport` handler: `handler(method, params_json) -> response_json`.
#[pyclass(frozen, module = "py_code_mode._native")]
struct HostHandler {
    host: Arc<Host>,
    handle: Handle,
}

#[pymethods]
impl HostHandler {
    fn __call__(&self, py: Python<'_>, method: &str, params: &str) -> String {
        let (outcome, notices) = match parse_call(method, params) {
            // Rust works with the GIL released: agent threads and the caller's
            // event loop keep running meanwhile.
            Ok(call) => py.detach(|| self.handle.block_on(self.host.handle_noticed(call))),
            Err(message) => (
                CallOutcome::Error(CallError {
                    kind: "TypeError".into(),
                    message,
                }),
                Vec::new(),
            ),
        };
        serde_json::to_string(&Reply { outcome, notices }).unwrap_or_else(|e| {
            format!(
                r#"{{"error":{{"type":"CodeModeError","message":"cannot encode a reply: {e}"}}}}"#
            )
        })
    }
}

/// A call's answer as the runtime reads it: `{"ok": ...}` or `{"error": ...}`,
/// with `notices` (what tools said during the call) when there are any.
#[derive(serde::Serialize)]
struct Reply {
    #[serde(flatten)]
    outcome: CallOutcome,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notices: Vec<String>,
}

fn parse_call(method: &str, params: &str) -> Result<HostCall, String> {
    let params: serde_json::Value =
        serde_json::from_str(params).map_err(|e| format!("bad call to `{method}`: {e}"))?;
    serde_json::from_value(serde_json::json!({"method": method, "params": params}))
        .map_err(|e| format!("bad call to `{method}`: {e}"))
}

/// Raises `exc` in thread `ident` at its next bytecode, or clears a pending one.
#[expect(
    unsafe_code,
    reason = "the C API is the only way to raise in another thread; the GIL is held (the `Python` token proves it) and the type object outlives the call"
)]
fn set_async_exc(_py: Python<'_>, ident: c_ulong, exc: Option<&Bound<'_, pyo3::types::PyType>>) {
    let ptr = exc.map_or(std::ptr::null_mut(), Bound::as_ptr);
    // SAFETY: called with the GIL held (every caller holds a `Python` token);
    // `ptr` is NULL or a live type object borrowed for the duration of the call.
    // The C API takes the thread id as `unsigned long`; pyo3 declares `c_long`
    // (same width): the cast keeps the bits.
    #[expect(
        clippy::cast_possible_wrap,
        reason = "same-width reinterpretation for the C call"
    )]
    unsafe {
        pyo3::ffi::PyThreadState_SetAsyncExc(ident as c_long, ptr);
    }
}
