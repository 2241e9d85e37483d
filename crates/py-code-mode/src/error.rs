//! Error types of the core. Each variant names the thing it is about (file, tool,
//! skill, artifact) and keeps the cause in `#[source]`.

use std::path::PathBuf;

/// Anything the core can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    Skill(#[from] SkillError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    #[error(transparent)]
    Deps(#[from] crate::deps::DepsError),
}

impl Error {
    /// The Python exception class agent code sees for this error (see the runtime).
    pub fn python_type(&self) -> &'static str {
        match self {
            Self::Name(_) => "InvalidNameError",
            Self::Tool(ToolError::NotFound { .. } | ToolError::Ambiguous { .. }) => {
                "ToolNotFoundError"
            }
            Self::Tool(ToolError::InvalidArguments { .. }) => "TypeError",
            Self::Tool(_) => "ToolError",
            Self::Skill(SkillError::NotFound { .. }) => "SkillNotFoundError",
            Self::Skill(_) => "SkillError",
            Self::Artifact(ArtifactError::NotFound { .. }) => "ArtifactNotFoundError",
            Self::Artifact(ArtifactError::Invalid { .. }) => "TypeError",
            Self::Storage(StorageError::Name(_)) => "InvalidNameError",
            Self::Storage(_) => "StorageError",
            Self::Executor(_) => "CodeModeError",
            Self::Deps(crate::deps::DepsError::Spec(_) | crate::deps::DepsError::Limit { .. }) => {
                "ValueError"
            }
            Self::Deps(crate::deps::DepsError::Disabled | crate::deps::DepsError::Unsupported) => {
                "RuntimeError"
            }
            Self::Deps(crate::deps::DepsError::Storage(_)) => "StorageError",
            Self::Deps(_) => "CodeModeError",
        }
    }
}

/// A skill or artifact name that is not allowed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind} name `{name}` is not allowed: {reason}")]
pub struct NameError {
    pub kind: &'static str,
    pub name: String,
    pub reason: String,
}

/// Failures of tool definitions and tool calls.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("no tool named `{name}`\nhint: `tools.list()` shows the tools there are")]
    NotFound { name: String },
    #[error("`{name}` is ambiguous: several tools have it\nhint: call one of {candidates}")]
    Ambiguous { name: String, candidates: String },
    #[error("`{origin}`{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Definition {
        origin: String,
        line: Option<usize>,
        message: String,
    },
    #[error("tool `{tool}`: {message}")]
    InvalidArguments { tool: String, message: String },
    #[error("tool `{tool}` could not start `{command}`: {source}")]
    Spawn {
        tool: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tool `{tool}` timed out after {seconds}s and was stopped")]
    Timeout { tool: String, seconds: f64 },
    #[error("tool `{tool}` failed: {message}")]
    Failed { tool: String, message: String },
}

/// Failures of skill validation, lookup and storage.
#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    #[error("no skill named `{name}`\nhint: `skills.list()` shows the skills there are")]
    NotFound { name: String },
    #[error("skill `{name}` is invalid: {message}")]
    Invalid { name: String, message: String },
    #[error(
        "skill `{name}` has no version {version}\nhint: `skills.history(\"{name}\")` lists the versions kept"
    )]
    NoVersion { name: String, version: u64 },
    /// Recording or replaying a test case went wrong (not a failing case:
    /// those are results).
    #[error("{message}")]
    Case { message: String },
}

/// Failures of artifact lookup and encoding.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("no artifact named `{name}`\nhint: `artifacts.list()` shows the artifacts there are")]
    NotFound { name: String },
    #[error("artifact `{name}`: {message}")]
    Invalid { name: String, message: String },
}

/// Failures of a storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A name refused by the backend itself (callers that skip validation).
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is corrupt: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    /// A file the library will not open: a symbolic link, a FIFO or device,
    /// or one larger than the library reads.
    #[error("refusing `{}`: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    #[error("{backend}: {message}")]
    Backend {
        backend: String,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// Failures of an executor itself (not of the agent code it runs).
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("cannot start the Python worker `{}`: {source}\nhint: pass `--python /path/to/python3` or set `PY_CODE_MODE_PYTHON`", python.display())]
    Spawn {
        python: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no Python interpreter found: {message}\nhint: pass `--python /path/to/python3` or set `PY_CODE_MODE_PYTHON`"
    )]
    NoPython { message: String },
    #[error("the Python worker broke the protocol: {message}")]
    Protocol { message: String },
    #[error("the executor is closed")]
    Closed,
    /// The sandbox cannot start here or was misconfigured.
    #[error("sandbox: {message}")]
    Sandbox { message: String },
    #[error("invalid executor settings: {message}")]
    Config { message: String },
    /// The container engine failed: no engine, daemon down, image missing.
    #[error("{engine}: {message}{}", hint.as_deref().map(|h| format!("\nhint: {h}")).unwrap_or_default())]
    Container {
        engine: String,
        message: String,
        hint: Option<String>,
    },
}

/// Shorthand for results of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
