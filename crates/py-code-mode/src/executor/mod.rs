//! Executors run agent code in a Python runtime and serve its calls to the host.
//!
//! Every executor speaks the protocol in [`crate::protocol`] and returns the same
//! [`ExecutionResult`], so results look alike whichever one ran the code.

mod bytecode;
mod container;
mod container_pool;
mod pool;
mod python;
mod sandbox;
mod subprocess;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use bytecode::runtime_bytecode_cached;
pub use container::{
    ContainerConfig, ContainerEngine, ContainerMount, DEFAULT_CPUS, DEFAULT_IMAGE, DEFAULT_MEMORY,
    DEFAULT_PIDS_LIMIT, DEFAULT_POOL_SIZE, MIN_MEMORY as MIN_CONTAINER_MEMORY,
};
pub use container_pool::{NAME_PREFIX, SESSION_LABEL};
pub use pool::{MAX_POOL_SIZE, WorkerPool};
pub use python::resolve_python;
pub use sandbox::{SandboxConfig, SandboxExecutor};
pub use subprocess::{
    DirectLauncher, LaunchedWorker, MAX_CALLS_IN_FLIGHT, MAX_PROTOCOL_LINE, SubprocessConfig,
    SubprocessExecutor, WorkerCommand, WorkerGuard, WorkerLauncher,
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

    /// What the executor built from this configuration really provides
    /// (`Session::supports`). The default claims only what every executor
    /// has through the [`Executor`] trait; an isolating executor lists its
    /// isolation here.
    fn capabilities(&self) -> Vec<Capability> {
        vec![Capability::Timeout, Capability::Reset]
    }

    /// Where `deps` installs packages for this executor (default: it cannot).
    fn deps_target(&self) -> crate::deps::DepsTarget {
        crate::deps::DepsTarget::Unsupported
    }

    /// Run the worker on `python` instead (the venv `deps` made for an
    /// interpreter that is not one). Executors without a worker ignore it.
    fn use_python(&mut self, python: PathBuf) {
        let _ = python;
    }
}

/// Something an executor may or may not provide, by 0.10's names
/// (`Capability.TIMEOUT == "timeout"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// A run that exceeds its timeout is stopped.
    Timeout,
    /// Agent code runs in another process than the host.
    ProcessIsolation,
    /// Agent code cannot reach the network.
    NetworkIsolation,
    /// Agent code reaches only the network destinations allowed.
    NetworkFiltering,
    /// Agent code sees only the files it is given.
    FilesystemIsolation,
    /// Agent code's memory is capped.
    MemoryLimit,
    /// Agent code's CPU time is capped.
    CpuLimit,
    /// `reset` forgets every variable.
    Reset,
    /// `deps.add` installs packages.
    DepsInstall,
    /// `deps.remove` uninstalls packages (not only forgets them).
    DepsUninstall,
}

impl Capability {
    /// Every capability, in 0.10's order.
    pub const ALL: [Self; 10] = [
        Self::Timeout,
        Self::ProcessIsolation,
        Self::NetworkIsolation,
        Self::NetworkFiltering,
        Self::FilesystemIsolation,
        Self::MemoryLimit,
        Self::CpuLimit,
        Self::Reset,
        Self::DepsInstall,
        Self::DepsUninstall,
    ];

    /// The name (`"timeout"`, `"process_isolation"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::ProcessIsolation => "process_isolation",
            Self::NetworkIsolation => "network_isolation",
            Self::NetworkFiltering => "network_filtering",
            Self::FilesystemIsolation => "filesystem_isolation",
            Self::MemoryLimit => "memory_limit",
            Self::CpuLimit => "cpu_limit",
            Self::Reset => "reset",
            Self::DepsInstall => "deps_install",
            Self::DepsUninstall => "deps_uninstall",
        }
    }

    /// The capability of that name, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ExecutorFactory for SubprocessConfig {
    fn build(self: Box<Self>, host: Arc<Host>) -> Result<Box<dyn Executor>, ExecutorError> {
        Ok(Box::new(SubprocessExecutor::new(*self, host)))
    }

    /// A separate process, killed on timeout and replaced on reset; it shares
    /// the host's user, files, network and memory (no isolation of those).
    fn capabilities(&self) -> Vec<Capability> {
        vec![
            Capability::Timeout,
            Capability::ProcessIsolation,
            Capability::Reset,
            Capability::DepsInstall,
        ]
    }

    fn deps_target(&self) -> crate::deps::DepsTarget {
        crate::deps::DepsTarget::Worker(self.python.clone())
    }

    fn use_python(&mut self, python: PathBuf) {
        self.python = Some(python);
    }
}
