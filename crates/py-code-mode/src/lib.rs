//! py-code-mode: a Python environment for LLM agents, with tools they can search
//! and call, skills they reuse and create, and artifacts that persist.
//!
//! Layout:
//! - [`Session`] ties it together: storage, the [`Host`] and an [`Executor`].
//! - `executor`: runs agent code in a Python runtime ([`SubprocessExecutor`],
//!   [`SandboxExecutor`]);
//! - [`sandbox`]: the kernel sandbox (namespaces, Landlock, seccomp, cgroups)
//!   and its launcher;
//!   every executor speaks the RPC [`protocol`] and returns an [`ExecutionResult`].
//! - `host`: answers the runtime's calls: `tools`, `skills`, `artifacts`, search.
//! - `tools`: YAML-defined tools behind [`ToolAdapter`] ([`CliTool`], [`McpTool`],
//!   [`HttpTool`]), and functions of the application ([`FunctionTool`]).
//! - `skills`: skill validation and static metadata ([`SkillLibrary`]).
//! - `artifacts`: typed named data ([`ArtifactStore`]).
//! - `storage`: where a library lives ([`Storage`], [`FileStorage`], `RedisStorage`),
//!   and [`sync_stores`] / [`diff_stores`] to move a library between two.
//! - `search`: ranking of tools and skills ([`Searcher`], [`LexicalSearcher`],
//!   [`HybridSearcher`] over an [`Embedder`]).

mod artifacts;
mod bounds;
pub mod caller;
pub mod capped;
pub mod deps;
pub mod drift;
mod error;
mod executor;
mod host;
mod names;
mod partial;
pub mod protocol;
pub mod recorded;
pub mod sandbox;
mod search;
mod semantic;
mod session;
mod skills;
mod spawn;
mod storage;
mod tools;

pub use artifacts::{ArtifactData, ArtifactKind, ArtifactMeta, ArtifactStore};
pub use bounds::{BoundsError, MAX_TIMEOUT, count, size_bytes, timeout_secs};
pub use error::{
    ArtifactError, Error, ExecutorError, NameError, Result, SkillError, StorageError, ToolError,
};
pub use executor::{
    Capability, ExecutionError, ExecutionResult, Executor, ExecutorFactory, MAX_CALLS_IN_FLIGHT,
    MAX_PROTOCOL_LINE, RUNTIME_SOURCE, SubprocessConfig, SubprocessExecutor, resolve_python,
};
pub use executor::{
    ContainerConfig, ContainerEngine, ContainerMount, DEFAULT_CPUS, DEFAULT_IMAGE, DEFAULT_MEMORY,
    DEFAULT_PIDS_LIMIT, DEFAULT_POOL_SIZE, MIN_CONTAINER_MEMORY,
    NAME_PREFIX as CONTAINER_NAME_PREFIX, SESSION_LABEL as CONTAINER_LABEL,
};
pub use executor::{
    DirectLauncher, LaunchedWorker, SandboxConfig, SandboxExecutor, WorkerCommand, WorkerGuard,
    WorkerLauncher,
};
pub use executor::{MAX_POOL_SIZE, WorkerPool, runtime_bytecode_cached};
pub use host::{Host, Scored, tool_doc};
pub use names::{RESERVED_SKILL_NAMES, validate_artifact_name, validate_skill_name};
pub use partial::{MAX_PARTIAL_OUTPUT, PartialOutput};
pub use search::{
    LexicalSearcher, Ranking, SearchDoc, SearchHit, SearchMode, Searcher, terms, tokenize, top_hits,
};
pub use semantic::{DEFAULT_PATIENCE, Embedder, HybridSearcher, IndexProgress, IndexStats, fuse};
pub use session::{DEFAULT_RUN_TIMEOUT, Session, SessionBuilder};
pub use skills::{
    ParamInfo, ParsedSkill, Skill, SkillInfo, SkillLibrary, VersionOrigin, parse_skill, skill_doc,
    source_hash, tool_signature,
};
pub use spawn::{
    ENV_ALLOWLIST, ProcStat, ProcessTree, Spawn, become_subreaper, kill_tree, make_host_undumpable,
    proc_stat, processes,
};
pub use storage::sync::{StoreDiff, StoreItem, SyncReport, diff_stores, sync_stores};
pub use storage::{
    FileStorage, ItemKind, MAX_ARTIFACT_BYTES, MAX_CACHE_BYTES, MAX_META_BYTES, MAX_SKILL_BYTES,
    MAX_SKILL_HISTORY, MAX_TOOL_FILE_BYTES, Provenance, SkillEntry, SkillRecord, SkillVersion,
    Storage, StorageProblem, ToolSource,
};
#[cfg(feature = "redis")]
pub use storage::{RedisStorage, redact_url};
pub use tools::{
    CallableInfo, CliSpec, CliTool, Endpoint, FunctionResult, FunctionTool, HttpSpec, HttpTool,
    MAX_TOOL_OUTPUT, MAX_TOOL_YAML, MAX_YAML_DEPTH, McpSpec, McpTool, McpTransport, OutputCap,
    ToolAdapter, ToolInfo, ToolKind, ToolRegistry, ValueType, parse_definition,
};
