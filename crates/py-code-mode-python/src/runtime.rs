//! The module's one tokio runtime, and the clean shutdown at interpreter exit.
//!
//! Sessions run their async work (tool calls, the subprocess worker, storage)
//! on this runtime; Python awaits it through pyo3's own coroutines, which wake
//! the caller's event loop with `call_soon_threadsafe`. At exit an `atexit` hook
//! stops the in-process runner threads and then the runtime, while the
//! interpreter is still whole: a thread that touched Python after finalization
//! began would be killed mid-frame, which is how bindings crash at exit.

use std::future::Future;
use std::sync::{Mutex, PoisonError, Weak};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::{Handle, Runtime};

use crate::inprocess::RunnerShared;

/// How long exit waits for tokio tasks (tool calls in flight) to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Two workers: the host's work is I/O bound, and the GIL serializes the rest.
const WORKER_THREADS: usize = 2;

static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);
static SHUT_DOWN: Mutex<bool> = Mutex::new(false);
/// In-process runners alive in this interpreter, stopped by the `atexit` hook.
static RUNNERS: Mutex<Vec<Weak<RunnerShared>>> = Mutex::new(Vec::new());

/// A handle on the module's runtime, started on first use.
pub(crate) fn handle() -> PyResult<Handle> {
    if *SHUT_DOWN.lock().unwrap_or_else(PoisonError::into_inner) {
        return Err(PyRuntimeError::new_err(
            "py-code-mode has shut down (the interpreter is exiting)",
        ));
    }
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(runtime) = slot.as_ref() {
        return Ok(runtime.handle().clone());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("py-code-mode")
        .enable_all()
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the async runtime: {e}")))?;
    let handle = runtime.handle().clone();
    *slot = Some(runtime);
    Ok(handle)
}

/// Runs `future` on the module's runtime and awaits it from a Python coroutine.
pub(crate) async fn spawn<T, F>(future: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    handle()?.spawn(future).await.map_err(|e| {
        PyRuntimeError::new_err(if e.is_cancelled() {
            "the task was cancelled (the interpreter is exiting)".to_owned()
        } else {
            format!("the task panicked: {e}")
        })
    })
}

pub(crate) fn register_runner(runner: Weak<RunnerShared>) {
    let mut runners = RUNNERS.lock().unwrap_or_else(PoisonError::into_inner);
    runners.retain(|r| r.strong_count() > 0);
    runners.push(runner);
}

/// The `atexit` hook: stops runner threads, then the runtime.
#[pyfunction]
fn _shutdown(py: Python<'_>) {
    let runners: Vec<_> =
        std::mem::take(&mut *RUNNERS.lock().unwrap_or_else(PoisonError::into_inner));
    for runner in runners.iter().filter_map(Weak::upgrade) {
        runner.stop_and_join(py);
    }
    *SHUT_DOWN.lock().unwrap_or_else(PoisonError::into_inner) = true;
    let runtime = RUNTIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(runtime) = runtime {
        // Tasks may be waiting for the GIL (an interrupt in flight): release it.
        py.detach(|| runtime.shutdown_timeout(SHUTDOWN_GRACE));
    }
}

pub(crate) fn register_shutdown(py: Python<'_>) -> PyResult<()> {
    let hook = wrap_pyfunction!(_shutdown, py)?;
    py.import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}
