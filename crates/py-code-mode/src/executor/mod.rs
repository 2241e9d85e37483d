//! Executors run agent code in a Python runtime and serve its calls to the host.
//!
//! Every executor speaks the protocol in [`crate::protocol`] and returns the same
//! [`ExecutionResult`], so results look alike whichever one ran the code.

mod python;
mod subprocess;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use python::resolve_python;
pub use subprocess::{
    MAX_CALLS_IN_FLIGHT, MAX_PROTOCOL_LINE, SubprocessConfig, SubprocessExecutor,
};

use crate::error::ExecutorError;
use crate::host::Host;

/// The runtime's Python source, embedded so the binary is self-contained.
pub const RUNTIME_SOURCE: &str = include_str!("../../python/py_code_mode_runtime.py");

/// An exception raised by agent code, or the executor's account of why the code stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionError {
    /// The exception class (`ValueError`), or `TimeoutError` / `WorkerCrashed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    /// The traceback through the agent's own code (cells and skills).
    #[serde(default)]
    pub traceback: String,
}

/// The outcome of running one piece of agent code; the same shape for every executor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutionResult {
    /// The trailing expression's value when it is JSON-able.
    pub value: Option<Value>,
    /// `repr()` of the trailing expression's value (set whenever there is a value).
    pub repr: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub error: Option<ExecutionError>,
    pub duration_ms: f64,
    /// The interpreter was restarted (timeout or crash): variables are gone.
    pub state_reset: bool,
}

impl ExecutionResult {
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }

    /// The result as a person or an agent reads it: output, value, error.
    pub fn to_text(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if !self.stdout.is_empty() {
            parts.push(self.stdout.trim_end().to_owned());
        }
        if let Some(repr) = &self.repr {
            parts.push(repr.clone());
        }
        if !self.stderr.is_empty() {
            parts.push(format!("[stderr]\n{}", self.stderr.trim_end()));
        }
        if let Some(error) = &self.error {
            if error.traceback.is_empty() {
                parts.push(format!("{}: {}", error.kind, error.message));
            } else {
                parts.push(error.traceback.trim_end().to_owned());
            }
        }
        parts.join("\n")
    }
}

/// Runs agent code. Implementations serialize runs: one cell at a time.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Gets ready to run (starts a worker) so the first run is fast.
    async fn start(&self) -> Result<(), ExecutorError>;

    /// Runs `code` for at most `timeout`; agent errors are in the result.
    async fn run(&self, code: &str, timeout: Duration) -> Result<ExecutionResult, ExecutorError>;

    /// Forgets every variable the agent defined.
    async fn reset(&self) -> Result<(), ExecutorError>;

    /// Stops the runtime; later runs fail with [`ExecutorError::Closed`].
    async fn close(&self);

    /// Asks the cell running now to stop as Ctrl-C stops Python code (a
    /// `KeyboardInterrupt` in it), keeping the interpreter and its variables.
    /// Returns whether it was asked; `false` when nothing runs or the executor
    /// cannot do this. Agent code may catch the exception and go on, so a
    /// caller still bounds the wait and drops the run (killing the worker)
    /// after it.
    fn interrupt(&self) -> bool {
        false
    }
}

/// Builds an executor once the session's [`Host`] exists.
pub trait ExecutorFactory: Send {
    fn build(self: Box<Self>, host: Arc<Host>) -> Result<Box<dyn Executor>, ExecutorError>;
}

impl ExecutorFactory for SubprocessConfig {
    fn build(self: Box<Self>, host: Arc<Host>) -> Result<Box<dyn Executor>, ExecutorError> {
        Ok(Box::new(SubprocessExecutor::new(*self, host)))
    }
}
