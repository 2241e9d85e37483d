//! `Session`: the entry point that ties storage, tools, skills, search and an executor together.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::artifacts::{ArtifactData, ArtifactMeta};
use crate::deps::{DepsConfig, RemoveReport, SyncReport};
use crate::error::Result;
use crate::executor::{Capability, ExecutionResult, Executor, ExecutorFactory, SubprocessConfig};
use crate::host::{Host, Scored};
use crate::recorded::CaseReport;
use crate::search::{LexicalSearcher, Searcher};
use crate::skills::{Skill, SkillInfo};
use crate::storage::{SkillVersion, Storage};
use crate::tools::{FunctionTool, ToolAdapter, ToolInfo, ToolRegistry};

/// How long one run may take when the caller gives no timeout.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_mins(1);

/// Configures a [`Session`]; see [`Session::builder`].
pub struct SessionBuilder {
    storage: Arc<dyn Storage>,
    executor: Box<dyn ExecutorFactory>,
    searcher: Arc<dyn Searcher>,
    timeout: Duration,
    tools: Vec<Arc<dyn ToolAdapter>>,
    functions: Vec<FunctionTool>,
    deps: Option<DepsConfig>,
    session_id: Option<String>,
}

impl SessionBuilder {
    /// The id skill versions saved by this session record as their `session`
    /// (an agent's name, say); default `session-<pid>-<start time>`.
    #[must_use]
    pub fn session_id(mut self, id: impl Into<String>) -> Self {
        self.session_id = Some(id.into());
        self
    }

    /// Serves `deps` (the configured package list, installs by the host); see
    /// [`crate::deps`]. Without it, `deps.*` in agent code fails.
    #[must_use]
    pub fn deps(mut self, config: DepsConfig) -> Self {
        self.deps = Some(config);
        self
    }

    /// The executor to run code in (default: a subprocess worker on `python3`).
    #[must_use]
    pub fn executor(mut self, executor: impl ExecutorFactory + 'static) -> Self {
        self.executor = Box::new(executor);
        self
    }

    /// The ranker behind `tools.search` and `skills.search` (default: lexical).
    #[must_use]
    pub fn searcher(mut self, searcher: Arc<dyn Searcher>) -> Self {
        self.searcher = searcher;
        self
    }

    /// Hybrid search with an embedding model (an alias such as `bge-small`, a
    /// Hugging Face id, or a model directory), loading in the background from
    /// now, its document vectors cached in this session's storage. Until the
    /// model is ready, or if it cannot load, search is lexical; see
    /// [`HybridSearcher::load_model`](crate::HybridSearcher::load_model).
    #[cfg(feature = "semantic")]
    #[must_use]
    pub fn embedding_model(self, spec: &str) -> Self {
        let searcher = crate::HybridSearcher::load_model(spec, Some(Arc::clone(&self.storage)));
        self.searcher(Arc::new(searcher))
    }

    /// The timeout of runs that do not set their own.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds a tool made in code, beside those defined in storage.
    #[must_use]
    pub fn tool(mut self, tool: Arc<dyn ToolAdapter>) -> Self {
        self.tools.push(tool);
        self
    }

    /// Adds a function of the application as a tool (`tools.<name>(...)` in
    /// agent code, run on the host); see [`FunctionTool`]. Its name and
    /// parameters are checked by [`build`](Self::build).
    #[must_use]
    pub fn function(mut self, tool: FunctionTool) -> Self {
        self.functions.push(tool);
        self
    }

    /// Makes the storage's layout (a [`FileStorage`](crate::FileStorage)'s
    /// folders), loads the tool definitions, attaches `deps` when configured
    /// and prepares the executor. The worker starts on the first run, or
    /// earlier with [`Session::start`].
    pub async fn build(self) -> Result<Session> {
        self.storage.ensure_layout().await?;
        let mut tools = ToolRegistry::load(self.storage.as_ref()).await?;
        for tool in self.tools {
            tools.insert(tool);
        }
        for function in self.functions {
            function.validate()?;
            tools.insert(Arc::new(function));
        }
        let mut factory = self.executor;
        let mut capabilities = factory.capabilities();
        let mut host = Host::new(Arc::clone(&self.storage), tools, self.searcher);
        if let Some(id) = &self.session_id {
            host.skills().set_session(id);
        }
        let deps = match self.deps {
            Some(config) => crate::deps::attach(config, &self.storage, &mut *factory).await?,
            None => None,
        };
        capabilities.retain(|c| {
            !matches!(c, Capability::DepsInstall | Capability::DepsUninstall) || deps.is_some()
        });
        if let Some(deps) = &deps {
            host = host.with_deps(Arc::clone(deps));
            if deps.owns_environment() && !capabilities.contains(&Capability::DepsUninstall) {
                capabilities.push(Capability::DepsUninstall);
            }
        }
        let host = Arc::new(host);
        let executor = factory.build(Arc::clone(&host))?;
        Ok(Session {
            host,
            executor,
            timeout: self.timeout,
            capabilities,
            runs: std::sync::atomic::AtomicU64::new(0),
            run_gate: tokio::sync::Mutex::new(()),
        })
    }
}

/// A Python environment with `tools`, `skills` and `artifacts` bound.
///
/// ```no_run
/// # async fn demo() -> py_code_mode::Result<()> {
/// use std::sync::Arc;
/// use py_code_mode::{FileStorage, Session};
///
/// let storage = Arc::new(FileStorage::open("./data")?);
/// let session = Session::builder(storage).build().await?;
/// let result = session.run("tools.list()").await?;
/// println!("{}", result.to_text());
/// session.close().await;
/// # Ok(())
/// # }
/// ```
pub struct Session {
    host: Arc<Host>,
    executor: Box<dyn Executor>,
    timeout: Duration,
    capabilities: Vec<Capability>,
    /// Runs so far: numbers the run ids provenance records.
    runs: std::sync::atomic::AtomicU64,
    /// Held by a run from before its run id and recording state are set
    /// until after they are cleared: the host keeps that state for the one
    /// run in progress, so two overlapping calls of [`Session::run`] (two
    /// MCP requests, `asyncio.gather` in the facade) must not interleave
    /// their setup and teardown with each other's code (the executor runs
    /// one cell at a time anyway).
    run_gate: tokio::sync::Mutex<()>,
}

/// Ends a run's state on the host when the run ends, also when its future
/// is dropped (a cancelled run), before the run gate it holds is released.
struct RunScope<'a> {
    host: &'a Host,
    _gate: tokio::sync::MutexGuard<'a, ()>,
}

impl Drop for RunScope<'_> {
    fn drop(&mut self) {
        self.host.skills().set_run(None);
        self.host.clear_capture();
    }
}

impl Session {
    pub fn builder(storage: Arc<dyn Storage>) -> SessionBuilder {
        SessionBuilder {
            storage,
            executor: Box::new(SubprocessConfig::default()),
            searcher: Arc::new(LexicalSearcher),
            timeout: DEFAULT_RUN_TIMEOUT,
            tools: Vec::new(),
            functions: Vec::new(),
            deps: None,
            session_id: None,
        }
    }

    /// Starts the executor now so the first run does not pay for it.
    pub async fn start(&self) -> Result<()> {
        Ok(self.executor.start().await?)
    }

    /// Runs agent code with the session's default timeout.
    pub async fn run(&self, code: &str) -> Result<ExecutionResult> {
        self.run_with_timeout(code, None).await
    }

    /// Runs agent code; errors in the code are in the result, not in `Err`.
    pub async fn run_with_timeout(
        &self,
        code: &str,
        timeout: Option<Duration>,
    ) -> Result<ExecutionResult> {
        let n = self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        // `<session>/<n>`: which run of which session saved a skill version.
        let run = format!("{}/{n}", self.host.skills().session());
        let _scope = RunScope {
            _gate: self.run_gate.lock().await,
            host: &self.host,
        };
        self.host.clear_capture();
        self.host.skills().set_run(Some(run));
        let result = self
            .executor
            .run(code, timeout.unwrap_or(self.timeout))
            .await;
        Ok(result?)
    }

    /// Asks the running cell to stop with a `KeyboardInterrupt`, keeping the
    /// variables; see [`Executor::interrupt`](crate::Executor::interrupt).
    pub fn interrupt(&self) -> bool {
        self.executor.interrupt()
    }

    /// Forgets every variable agent code defined; the library is untouched.
    pub async fn reset(&self) -> Result<()> {
        Ok(self.executor.reset().await?)
    }

    /// Stops the worker and closes tool connections.
    pub async fn close(&self) {
        self.executor.close().await;
        self.host.close().await;
    }

    /// The host: tools, skills, artifacts and search, without running code.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    pub fn default_timeout(&self) -> Duration {
        self.timeout
    }

    pub async fn list_tools(&self) -> Result<Vec<ToolInfo>> {
        self.host.tools().list().await
    }

    pub async fn search_tools(&self, query: &str, limit: usize) -> Result<Vec<Scored<ToolInfo>>> {
        self.host.search_tools(query, limit).await
    }

    /// Every skill; `stale` says why one may no longer work.
    pub async fn list_skills(&self) -> Result<Vec<SkillInfo>> {
        self.host.list_skills().await
    }

    /// A skill's kept versions, newest first (the current one included).
    pub async fn skill_history(&self, name: &str) -> Result<Vec<SkillVersion>> {
        self.host.skills().history(name).await
    }

    /// Kept version `version` of a skill.
    pub async fn get_skill_version(&self, name: &str, version: u64) -> Result<Skill> {
        self.host.skills().get_version(name, version).await
    }

    /// Saves kept version `version` as the skill's new current version.
    pub async fn rollback_skill(&self, name: &str, version: u64) -> Result<Skill> {
        self.host.rollback_skill(name, version).await
    }

    /// Forgets a skill's history and recorded tests.
    pub async fn purge_skill(&self, name: &str) -> Result<bool> {
        self.host.purge_skill(name).await
    }

    /// Replays every recorded case of a skill in this session's executor,
    /// tools answered from the recordings (see [`crate::recorded`]).
    pub async fn test_skill(&self, name: &str) -> Result<Vec<CaseReport>> {
        crate::names::validate_skill_name(name)?;
        // The name is an identifier (validated), so it is safe in code.
        let result = self.run(&format!("skills.test({name:?})")).await?;
        if let Some(error) = result.error {
            return Err(crate::error::SkillError::Case {
                message: format!("testing skill `{name}` failed: {}", error.message),
            }
            .into());
        }
        serde_json::from_value(result.value.unwrap_or(Value::Null)).map_err(|e| {
            crate::error::SkillError::Case {
                message: format!("testing skill `{name}` gave an unreadable report: {e}"),
            }
            .into()
        })
    }

    /// Runs skill `name` with `kwargs`, recording its tool calls and outcome
    /// as case `case`; returns the run (the skill's result is its value).
    pub async fn record_skill(
        &self,
        name: &str,
        case: &str,
        kwargs: &Map<String, Value>,
    ) -> Result<ExecutionResult> {
        crate::names::validate_skill_name(name)?;
        crate::recorded::validate_case_name(case)?;
        let kwargs = serde_json::to_string(&Value::Object(kwargs.clone())).unwrap_or_default();
        let hex = crate::skills::hex(kwargs.as_bytes());
        // Names validated above (identifier, `[A-Za-z0-9_.-]`); the arguments
        // travel as hex, so nothing in them can be read as code.
        self.run(&format!(
            "skills.record({name:?}, {case:?}, **__import__('json').loads(bytes.fromhex('{hex}')))"
        ))
        .await
    }

    pub async fn search_skills(&self, query: &str, limit: usize) -> Result<Vec<Scored<SkillInfo>>> {
        self.host.search_skills(query, limit).await
    }

    pub async fn get_skill(&self, name: &str) -> Result<Skill> {
        self.host.skills().get(name).await
    }

    pub async fn add_skill(&self, name: &str, source: &str, description: &str) -> Result<Skill> {
        self.host.create_skill(name, source, description).await
    }

    pub async fn remove_skill(&self, name: &str) -> Result<bool> {
        self.host.skills().delete(name).await
    }

    pub async fn list_artifacts(&self) -> Result<Vec<ArtifactMeta>> {
        self.host.artifacts().list().await
    }

    pub async fn save_artifact(
        &self,
        name: &str,
        data: &ArtifactData,
        description: &str,
        metadata: Map<String, Value>,
    ) -> Result<ArtifactMeta> {
        self.host
            .artifacts()
            .save(name, data, description, metadata)
            .await
    }

    pub async fn load_artifact(&self, name: &str) -> Result<ArtifactData> {
        self.host.artifacts().load(name).await
    }

    pub async fn delete_artifact(&self, name: &str) -> Result<bool> {
        self.host.artifacts().delete(name).await
    }

    /// What this session's executor provides (0.10's `supported_capabilities()`).
    pub fn capabilities(&self) -> &[Capability] {
        &self.capabilities
    }

    /// Whether the executor provides `capability` (0.10's `supports()`).
    pub fn supports(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// The configured package list (empty when the session has no `deps`).
    pub async fn list_deps(&self) -> Result<Vec<String>> {
        match self.host.deps() {
            Some(deps) => Ok(deps.list().await?),
            None => Ok(Vec::new()),
        }
    }

    /// Installs `spec` and records it; the application's call, so allowed
    /// even when agent code may not add packages.
    pub async fn add_dep(&self, spec: &str) -> Result<SyncReport> {
        let report = self.deps()?.add(&[spec.to_owned()]).await?;
        self.refresh_imports(&report).await;
        Ok(report)
    }

    /// Forgets `name` (uninstalling it only from a venv py-code-mode owns).
    pub async fn remove_dep(&self, name: &str) -> Result<RemoveReport> {
        Ok(self.deps()?.remove(&[name.to_owned()]).await?)
    }

    /// Installs every configured package that is missing.
    pub async fn sync_deps(&self) -> Result<SyncReport> {
        let report = self.deps()?.sync().await?;
        self.refresh_imports(&report).await;
        Ok(report)
    }

    fn deps(&self) -> Result<&Arc<crate::deps::DepsManager>> {
        Ok(self
            .host
            .deps()
            .ok_or(crate::deps::DepsError::Unsupported)?)
    }

    /// After an install from outside agent code, the worker's import system
    /// forgets what it cached about the folders, so the next `import` finds
    /// the package (agent code's own `deps.add` does this itself).
    async fn refresh_imports(&self, report: &SyncReport) {
        if report.installed.is_empty() {
            return;
        }
        let code = "__import__('importlib').invalidate_caches()";
        if let Err(e) = self.executor.run(code, DEPS_REFRESH_TIMEOUT).await {
            tracing::debug!(%e, "could not refresh the worker's import caches");
        }
    }
}

/// How long refreshing the worker's import caches may take.
const DEPS_REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
