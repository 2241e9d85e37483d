//! The module's one tokio runtime, and the clean shutdown at interpreter exit.
//!
//! Sessions run their async work (tool calls, the subprocess worker, storage)
//! on this runtime; Python awaits it through pyo3's own coroutines, which wake
//! the caller's event loop with `call_soon_threadsafe`. At exit an `atexit` hook
//! stops the in-process runner threads and then the runtime, while the
//! interpreter is still whole: a thread that touched Python after finalization
//! began would be killed mid-frame, which is how bindings crash at exit.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use py_code_mode::caller::CallerPoll;
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
/// Set once the runtime's shutdown at exit returned: a thread of it still
/// running then may outlive the interpreter, and leaves its thread state be.
static EXITED: AtomicBool = AtomicBool::new(false);
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
        .on_thread_start(thread_state::keep)
        .on_thread_stop(thread_state::release)
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
    handle()?.spawn(future).await.map_err(|e| joined_error(&e))
}

/// Runs `future` where it is awaited: polled by the awaiting coroutine itself
/// (on the caller's event loop thread), inside the module runtime's context so
/// its timers and I/O work. A run's hot path then crosses no tokio task: the
/// thread that finishes the work (an in-process runner, a worker's pipe
/// reader) wakes the caller's loop directly. Where `future` would block the
/// thread (it awaits [`py_code_mode::caller::off_caller_thread`]: a worker
/// to start), the rest of it moves onto the runtime.
///
/// Dropped unfinished (the awaiting task was cancelled), the rest of `future`
/// goes on as a task of the runtime, as it would had it been spawned.
pub(crate) fn here<F>(future: F) -> PyResult<Here<F>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(Here {
        handle: handle()?,
        state: Polled::Here(Box::pin(future)),
    })
}

/// See [`here`].
pub(crate) struct Here<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    handle: Handle,
    state: Polled<F>,
}

enum Polled<F: Future> {
    Here(Pin<Box<F>>),
    Moved(tokio::task::JoinHandle<F::Output>),
    Done,
}

impl<F> Future for Here<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = PyResult<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Polled::Here(future) = &mut this.state {
            let _context = this.handle.enter();
            match py_code_mode::caller::poll(future.as_mut(), cx) {
                CallerPoll::Ready(output) => {
                    this.state = Polled::Done;
                    return Poll::Ready(Ok(output));
                }
                CallerPoll::Pending => return Poll::Pending,
                CallerPoll::MoveToRuntime => {
                    let Polled::Here(future) = std::mem::replace(&mut this.state, Polled::Done)
                    else {
                        unreachable!("matched above")
                    };
                    this.state = Polled::Moved(this.handle.spawn(future));
                }
            }
        }
        match &mut this.state {
            Polled::Moved(task) => {
                let joined = std::task::ready!(Pin::new(task).poll(cx));
                this.state = Polled::Done;
                Poll::Ready(joined.map_err(|e| joined_error(&e)))
            }
            // Polled after it finished: the contract of `Future` says never.
            Polled::Here(_) | Polled::Done => Poll::Pending,
        }
    }
}

impl<F> Drop for Here<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        // A moved future goes on as its task, whose handle drops here.
        if let Polled::Here(future) = std::mem::replace(&mut self.state, Polled::Done) {
            drop(self.handle.spawn(future));
        }
    }
}

fn joined_error(error: &tokio::task::JoinError) -> PyErr {
    PyRuntimeError::new_err(if error.is_cancelled() {
        "the task was cancelled (the interpreter is exiting)".to_owned()
    } else {
        format!("the task panicked: {error}")
    })
}

/// A Python thread state for each thread of the runtime, kept for the
/// thread's life.
///
/// A thread without one that attaches to Python (the coroutine waker that
/// wakes the caller's loop after a worker's answer, a sync function tool on
/// the blocking pool) gets a new thread state and deletes it when it lets
/// go; deleting one unmaps its frame stack, and every unmapping interrupts
/// the machine's other cores to flush their TLBs (an IPI, costly under a
/// hypervisor). Measured: one `munmap` per warm subprocess run, 12 % of the
/// process's samples in the kernel's cross-core calls. With the state kept,
/// attaching only takes the GIL.
mod thread_state {
    use std::cell::Cell;
    use std::sync::atomic::Ordering;

    use pyo3::ffi;

    thread_local! {
        static KEPT: Cell<Option<(ffi::PyGILState_STATE, *mut ffi::PyThreadState)>> =
            const { Cell::new(None) };
    }

    /// At the thread's start: a thread state, the GIL released at once.
    #[expect(
        unsafe_code,
        reason = "pyo3 has no API for a thread state kept without holding the GIL"
    )]
    pub(super) fn keep() {
        // SAFETY: the runtime starts only from Python (the interpreter is
        // initialized); `PyGILState_Ensure` makes this thread's state and
        // takes the GIL, `PyEval_SaveThread` releases it and returns the
        // state, which `release` gives back on this same thread.
        let kept = unsafe {
            let gil = ffi::PyGILState_Ensure();
            (gil, ffi::PyEval_SaveThread())
        };
        KEPT.set(Some(kept));
    }

    /// At the thread's end: the thread state is deleted (at exit too, while
    /// the runtime shuts down with the GIL released), unless the shutdown
    /// gave up waiting for this thread: the interpreter may be gone.
    #[expect(unsafe_code, reason = "the counterpart of `keep`")]
    pub(super) fn release() {
        let Some((gil, state)) = KEPT.take() else {
            return;
        };
        if super::EXITED.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: `state` is this thread's own, saved by `keep` on this
        // thread; restoring it takes the GIL, `PyGILState_Release` with the
        // state `PyGILState_Ensure` returned deletes it and releases the GIL.
        unsafe {
            ffi::PyEval_RestoreThread(state);
            ffi::PyGILState_Release(gil);
        }
    }
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
        EXITED.store(true, Ordering::Release);
    }
}

pub(crate) fn register_shutdown(py: Python<'_>) -> PyResult<()> {
    let hook = wrap_pyfunction!(_shutdown, py)?;
    py.import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}
