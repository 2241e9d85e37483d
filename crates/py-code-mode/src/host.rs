//! The host side of the RPC protocol: every call agent code makes lands here,
//! whichever executor runs the code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

use crate::artifacts::ArtifactStore;
use crate::deps::{DepsError, DepsManager};
use crate::drift::ToolSignatures;
use crate::error::SkillError;
use crate::error::{Error, Result};
use crate::partial::{PartialOutput, PartialSink};
use crate::protocol::{CallError, CallOutcome, CaseOutcome, HostCall};
use crate::recorded::{self, Capture, Case, CaseReport, Cases, MAX_CASES};
use crate::search::{SearchDoc, SearchMode, Searcher};
use crate::skills::{Skill, SkillInfo, SkillLibrary, VersionOrigin};
use crate::storage::Storage;
use crate::tools::{ToolInfo, ToolRegistry};

/// The cache entry of the tools each skill's recorded cases called: derived
/// from the cases (rebuilt by the next recording), read once per listing
/// instead of every skill's cases.
pub(crate) const RECORDED_DEPS_KEY: &str = "recorded-tool-deps.json";

/// A search result: the listing of the thing plus its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored<T> {
    #[serde(flatten)]
    pub item: T,
    pub score: f32,
    /// How it was ranked: `lexical`, or `hybrid` once an embedding model is ready.
    pub mode: SearchMode,
}

/// Owns everything agent code reaches through `tools`, `skills` and `artifacts`.
#[derive(Debug)]
pub struct Host {
    storage: Arc<dyn Storage>,
    tools: ToolRegistry,
    skills: SkillLibrary,
    artifacts: ArtifactStore,
    searcher: Arc<dyn Searcher>,
    deps: Option<Arc<DepsManager>>,
    /// A skill test being recorded or replayed (see [`crate::recorded`]).
    capture: Mutex<Option<Capture>>,
    /// The run's output as the worker streams it, until taken.
    partial: PartialSink,
}

impl Host {
    pub fn new(
        storage: Arc<dyn Storage>,
        tools: ToolRegistry,
        searcher: Arc<dyn Searcher>,
    ) -> Self {
        Self {
            skills: SkillLibrary::new(Arc::clone(&storage)),
            artifacts: ArtifactStore::new(Arc::clone(&storage)),
            storage,
            tools,
            searcher,
            deps: None,
            capture: Mutex::default(),
            partial: PartialSink::default(),
        }
    }

    /// The host with `deps` served by `deps` (without, `deps.*` calls fail).
    #[must_use]
    pub fn with_deps(mut self, deps: Arc<DepsManager>) -> Self {
        self.deps = Some(deps);
        self
    }

    /// The session's `deps`, when it has them.
    pub fn deps(&self) -> Option<&Arc<DepsManager>> {
        self.deps.as_ref()
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn tools(&self) -> &ToolRegistry {
        &self.tools
    }

    pub fn skills(&self) -> &SkillLibrary {
        &self.skills
    }

    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }

    pub fn searcher(&self) -> &Arc<dyn Searcher> {
        &self.searcher
    }

    /// Keeps output the worker streamed before the run's result.
    pub(crate) fn stream_output(&self, stdout: &str, stderr: &str) {
        self.partial.push(stdout, stderr);
    }

    /// Output of a long run written since last taken (see [`PartialOutput`]).
    pub fn take_partial_output(&self) -> PartialOutput {
        self.partial.take()
    }

    /// [`Host::handle`], with what tools said during a tool call (an MCP
    /// server's progress and log messages), for the run's stderr.
    pub async fn handle_noticed(&self, call: HostCall) -> (CallOutcome, Vec<String>) {
        if matches!(call, HostCall::ToolsCall { .. }) {
            crate::tools::notices::collect(self.handle(call)).await
        } else {
            (self.handle(call).await, Vec::new())
        }
    }

    /// Answers one call from agent code, errors included, in wire form.
    pub async fn handle(&self, call: HostCall) -> CallOutcome {
        // Tool calls during a recorded test: answered from the recording
        // (replay) or kept with their answer (record).
        if let HostCall::ToolsCall { name, args } = &call {
            let (name, args) = (name.clone(), args.clone());
            let mut recording = false;
            if let Ok(mut capture) = self.capture.lock() {
                match capture.as_mut() {
                    Some(c @ Capture::Replay { .. }) => {
                        return match c.replay_call(&name, &args) {
                            Some(CaseOutcome::Result(v)) => CallOutcome::Ok(v),
                            Some(CaseOutcome::Error(e)) => CallOutcome::Error(e),
                            // Not reached: `replay_call` answers every call of a replay.
                            None => CallOutcome::Error(CallError {
                                kind: "ToolError".into(),
                                message: "tools.call: no replay in progress".into(),
                            }),
                        };
                    }
                    Some(Capture::Record { .. }) => recording = true,
                    None => {}
                }
            }
            let outcome = self.answer(call).await;
            if recording
                && let Ok(mut capture) = self.capture.lock()
                && let Some(c) = capture.as_mut()
            {
                let kept = match &outcome {
                    CallOutcome::Ok(v) => CaseOutcome::Result(v.clone()),
                    CallOutcome::Error(e) => CaseOutcome::Error(e.clone()),
                };
                c.record_call(&name, &args, &kept);
            }
            return outcome;
        }
        self.answer(call).await
    }

    async fn answer(&self, call: HostCall) -> CallOutcome {
        let method = call.method();
        match self.dispatch(call).await {
            Ok(value) => CallOutcome::Ok(value),
            Err(error) => {
                tracing::debug!(method, %error, "host call failed");
                // The message names the operation, as agent code saw it in
                // 0.10: `artifacts.load: no artifact named ...`.
                CallOutcome::Error(CallError {
                    kind: error.python_type().to_owned(),
                    message: format!("{method}: {error}"),
                })
            }
        }
    }

    /// Answers one call from agent code.
    pub async fn dispatch(&self, call: HostCall) -> Result<Value> {
        match call {
            HostCall::ToolsList {} => to_value(&self.tools.list().await?),
            HostCall::ToolsSearch { query, limit } => {
                to_value(&self.search_tools(&query, limit).await?)
            }
            HostCall::ToolsCall { name, args } => self.tools.call(&name, args).await,
            HostCall::SkillsList {} => to_value(&self.list_skills().await?),
            HostCall::SkillsSearch { query, limit } => {
                to_value(&self.search_skills(&query, limit).await?)
            }
            HostCall::SkillsGet { name, version } => match version {
                None => to_value(&self.skills.get(&name).await?),
                Some(version) => to_value(&self.skills.get_version(&name, version).await?),
            },
            HostCall::SkillsCreate {
                name,
                source,
                description,
            } => to_value(&self.create_skill(&name, &source, &description).await?),
            HostCall::SkillsDelete { name } => to_value(&self.skills.delete(&name).await?),
            HostCall::SkillsHistory { name } => to_value(&self.skills.history(&name).await?),
            HostCall::SkillsRollback { name, version } => {
                to_value(&self.rollback_skill(&name, version).await?)
            }
            HostCall::SkillsRecordBegin { name, case, kwargs } => {
                self.record_begin(&name, &case, kwargs).await?;
                Ok(Value::Null)
            }
            HostCall::SkillsRecordEnd { outcome } => {
                self.record_end(outcome).await?;
                Ok(Value::Null)
            }
            HostCall::SkillsCases { name } => to_value(
                &self
                    .cases(&name)
                    .await?
                    .cases
                    .into_iter()
                    .map(|(case, c)| serde_json::json!({"case": case, "kwargs": c.kwargs}))
                    .collect::<Vec<_>>(),
            ),
            HostCall::SkillsReplayBegin { name, case } => {
                to_value(&self.replay_begin(&name, &case).await?)
            }
            HostCall::SkillsReplayEnd { outcome } => to_value(&self.replay_end(&outcome).await?),
            HostCall::ArtifactsSave {
                name,
                data,
                description,
                metadata,
            } => to_value(
                &self
                    .artifacts
                    .save(&name, &data, &description, metadata)
                    .await?,
            ),
            HostCall::ArtifactsLoad { name } => to_value(&self.artifacts.load(&name).await?),
            HostCall::ArtifactsList {} => to_value(&self.artifacts.list().await?),
            HostCall::ArtifactsExists { name } => to_value(&self.artifacts.exists(&name).await?),
            HostCall::ArtifactsDelete { name } => to_value(&self.artifacts.delete(&name).await?),
            HostCall::DepsList {} => to_value(&self.deps_for(false)?.list().await?),
            HostCall::DepsSync {} => to_value(&self.deps_for(false)?.sync().await?),
            HostCall::DepsAdd { specs } => to_value(&self.deps_for(true)?.add(&specs).await?),
            HostCall::DepsRemove { names } => to_value(&self.deps_for(true)?.remove(&names).await?),
        }
    }

    /// `deps` for agent code; `changes` (add, remove) needs runtime installs allowed.
    fn deps_for(&self, changes: bool) -> Result<&DepsManager> {
        let deps = self.deps.as_deref().ok_or(DepsError::Unsupported)?;
        if changes && !deps.runtime_allowed() {
            return Err(DepsError::Disabled.into());
        }
        Ok(deps)
    }

    /// Every skill, with `stale` set where a tool it uses changed or is gone.
    pub async fn list_skills(&self) -> Result<Vec<SkillInfo>> {
        let mut skills = self.skills.list().await?;
        self.mark_stale(skills.iter_mut()).await;
        Ok(skills)
    }

    /// Sets `stale` on each skill (see [`crate::drift`]); asks the tools for
    /// their signatures only when some skill depends on one.
    async fn mark_stale<'a>(&self, skills: impl Iterator<Item = &'a mut SkillInfo>) {
        let mut skills: Vec<&mut SkillInfo> = skills.collect();
        // The tools recorded cases called, beside those the source names.
        let recorded = self.recorded_deps().await;
        for skill in &mut skills {
            if let Some(deps) = recorded.get(&skill.name) {
                for (tool, signature) in deps {
                    skill
                        .tools
                        .entry(tool.clone())
                        .or_insert_with(|| signature.clone());
                }
            }
        }
        if skills.iter().all(|s| s.tools.is_empty()) {
            return;
        }
        let Ok(tools) = self.tools.list().await else {
            return;
        };
        let now = ToolSignatures::of(&tools);
        for skill in skills {
            skill.stale = now.stale_reason(&skill.tools);
        }
    }

    /// Skill -> tool -> signature of the tools its recorded cases called
    /// (the cache entry [`RECORDED_DEPS_KEY`]); empty when unreadable.
    async fn recorded_deps(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        match self.storage.cache_get(RECORDED_DEPS_KEY).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Ok(None) => BTreeMap::new(),
            Err(e) => {
                tracing::debug!(%e, "cannot read the recorded tool dependencies");
                BTreeMap::new()
            }
        }
    }

    /// Replaces a skill's recorded tool dependencies with those of its cases.
    async fn save_recorded_deps(&self, skill: &str, cases: &Cases) -> Result<()> {
        let mut deps = self.recorded_deps().await;
        let mine: BTreeMap<String, String> = cases
            .cases
            .values()
            .flat_map(|c| &c.calls)
            .filter_map(|call| {
                let tool = call.tool.split('.').next().unwrap_or(&call.tool);
                call.signature
                    .as_ref()
                    .map(|sig| (tool.to_owned(), sig.clone()))
            })
            .collect();
        deps.insert(skill.to_owned(), mine);
        let json = serde_json::to_vec(&deps).unwrap_or_default();
        self.storage.cache_put(RECORDED_DEPS_KEY, &json).await?;
        Ok(())
    }

    /// Forgets a skill's history, recorded cases and recorded tool dependencies.
    pub async fn purge_skill(&self, name: &str) -> Result<bool> {
        let purged = self.skills.purge(name).await?;
        let mut deps = self.recorded_deps().await;
        if deps.remove(name).is_some() {
            let json = serde_json::to_vec(&deps).unwrap_or_default();
            self.storage.cache_put(RECORDED_DEPS_KEY, &json).await?;
        }
        Ok(purged)
    }

    /// Saves a skill as a new version, recording the tools its source uses
    /// with their signatures now (what drift compares with later).
    pub async fn create_skill(&self, name: &str, source: &str, description: &str) -> Result<Skill> {
        let origin = self.origin(name, source, None).await?;
        self.skills
            .create_version(name, source, description, origin)
            .await
    }

    /// Saves kept version `version` of a skill as its new current version.
    pub async fn rollback_skill(&self, name: &str, version: u64) -> Result<Skill> {
        let kept = self.skills.history(name).await?;
        let old = kept
            .into_iter()
            .find(|v| v.provenance.version == version)
            .ok_or_else(|| SkillError::NoVersion {
                name: name.to_owned(),
                version,
            })?;
        let origin = self.origin(name, &old.source, Some(version)).await?;
        self.skills
            .create_version(name, &old.source, &old.description, origin)
            .await
    }

    async fn origin(
        &self,
        name: &str,
        source: &str,
        rollback_of: Option<u64>,
    ) -> Result<VersionOrigin> {
        crate::names::validate_skill_name(name)?;
        let uses = self.skills.tools_of(name, source)?;
        let tools = if uses.is_empty() {
            BTreeMap::new()
        } else {
            ToolSignatures::of(&self.tools.list().await?).record(&uses)
        };
        Ok(VersionOrigin { tools, rollback_of })
    }

    /// Ends any recording or replay: a run that ended mid-way (a timeout, a
    /// crash) must not leave the next run's tool calls captured.
    pub fn clear_capture(&self) {
        if let Ok(mut capture) = self.capture.lock() {
            *capture = None;
        }
    }

    /// Installs `capture` unless one is in progress.
    fn begin_capture(&self, capture: Capture) -> Result<()> {
        let mut slot = self.capture.lock().map_err(|_| SkillError::Case {
            message: "the recorder is unusable after a panic".into(),
        })?;
        if slot.is_some() {
            return Err(SkillError::Case {
                message: "a skill test is already being recorded or replayed in this run\nhint: `skills.record` and `skills.test` do not nest".into(),
            }
            .into());
        }
        *slot = Some(capture);
        Ok(())
    }

    fn take_capture(&self) -> Option<Capture> {
        self.capture.lock().ok().and_then(|mut c| c.take())
    }

    /// The recorded cases of a skill.
    pub async fn cases(&self, name: &str) -> Result<Cases> {
        crate::names::validate_skill_name(name)?;
        let json = self.storage.skill_cases(name).await?;
        Ok(Cases::parse(name, json.as_deref())?)
    }

    async fn record_begin(
        &self,
        name: &str,
        case: &str,
        kwargs: serde_json::Map<String, Value>,
    ) -> Result<()> {
        recorded::validate_case_name(case)?;
        let skill = self.skills.get(name).await?;
        let tools = ToolSignatures::of(&self.tools.list().await?);
        self.begin_capture(Capture::Record {
            skill: name.to_owned(),
            case: case.to_owned(),
            kwargs,
            version: skill.info.version,
            calls: Vec::new(),
            overflow: false,
            tools,
        })
    }

    async fn record_end(&self, outcome: CaseOutcome) -> Result<()> {
        let Some(Capture::Record {
            skill,
            case,
            kwargs,
            version,
            calls,
            overflow,
            ..
        }) = self.take_capture()
        else {
            return Err(SkillError::Case {
                message: "no recording is in progress".into(),
            }
            .into());
        };
        if overflow {
            return Err(SkillError::Case {
                message: format!(
                    "case `{case}` of skill `{skill}` made more than {} tool calls: not recorded",
                    recorded::MAX_CASE_CALLS
                ),
            }
            .into());
        }
        let mut cases = self.cases(&skill).await?;
        if !cases.cases.contains_key(&case) && cases.cases.len() >= MAX_CASES {
            return Err(SkillError::Case {
                message: format!("skill `{skill}` has {MAX_CASES} cases, the most it may keep\nhint: record over an existing case name"),
            }
            .into());
        }
        cases.cases.insert(
            case,
            Case {
                kwargs,
                calls,
                outcome,
                recorded_at: jiff::Timestamp::now(),
                version,
            },
        );
        self.storage
            .put_skill_cases(&skill, &cases.to_json())
            .await?;
        self.save_recorded_deps(&skill, &cases).await
    }

    async fn replay_begin(&self, name: &str, case: &str) -> Result<serde_json::Map<String, Value>> {
        let cases = self.cases(name).await?;
        let expected = cases
            .cases
            .get(case)
            .cloned()
            .ok_or_else(|| SkillError::Case {
                message: format!(
                    "skill `{name}` has no case `{case}`\nhint: it has {}",
                    if cases.cases.is_empty() {
                        "none: record one with `skills.record(name, case, **kwargs)`".to_owned()
                    } else {
                        cases
                            .cases
                            .keys()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            })?;
        let kwargs = expected.kwargs.clone();
        self.begin_capture(Capture::Replay {
            skill: name.to_owned(),
            case: case.to_owned(),
            expected,
            next: 0,
            problems: Vec::new(),
        })?;
        Ok(kwargs)
    }

    async fn replay_end(&self, outcome: &CaseOutcome) -> Result<CaseReport> {
        let Some(Capture::Replay {
            case,
            expected,
            next,
            problems,
            ..
        }) = self.take_capture()
        else {
            return Err(SkillError::Case {
                message: "no replay is in progress".into(),
            }
            .into());
        };
        let failing =
            !problems.is_empty() || next < expected.calls.len() || &expected.outcome != outcome;
        // The tools are asked only for a failing case (to say what changed):
        // a passing replay needs no tool, not even its definition.
        let tools = if failing {
            self.tools
                .list()
                .await
                .map(|t| ToolSignatures::of(&t))
                .unwrap_or_default()
        } else {
            ToolSignatures::default()
        };
        Ok(recorded::finish_replay(
            &case, &expected, next, problems, outcome, &tools,
        ))
    }

    /// Every tool and skill as search ranks them: what `py-code-mode index`
    /// embeds ahead of time.
    pub async fn search_docs(&self) -> Result<Vec<SearchDoc>> {
        let mut docs: Vec<SearchDoc> = self.tools.list().await?.iter().map(tool_doc).collect();
        docs.extend(self.skills.list_with_docs().await?.1);
        Ok(docs)
    }

    /// Tools ranked for `query`.
    pub async fn search_tools(&self, query: &str, limit: usize) -> Result<Vec<Scored<ToolInfo>>> {
        // The query embeds while the tools are listed (`prepare` first: it
        // hands the embedding to another thread before a listing that may
        // not yield).
        let ((), tools) = tokio::join!(self.searcher.prepare(query), self.tools.list());
        let tools = tools?;
        let docs = tools.iter().map(tool_doc).collect::<Vec<_>>();
        Ok(self.rank(query, &docs, limit, tools).await)
    }

    /// Skills ranked for `query`.
    pub async fn search_skills(&self, query: &str, limit: usize) -> Result<Vec<Scored<SkillInfo>>> {
        let ((), listed) = tokio::join!(self.searcher.prepare(query), self.skills.list_with_docs());
        let (skills, docs) = listed?;
        let mut hits = self.rank(query, &docs, limit, skills).await;
        self.mark_stale(hits.iter_mut().map(|h| &mut h.item)).await;
        Ok(hits)
    }

    async fn rank<T: Clone>(
        &self,
        query: &str,
        docs: &[SearchDoc],
        limit: usize,
        items: Vec<T>,
    ) -> Vec<Scored<T>> {
        let ranking = self.searcher.search(query, docs, limit).await;
        let mode = ranking.mode;
        ranking
            .hits
            .into_iter()
            .filter_map(|hit| {
                items.get(hit.index).map(|item| Scored {
                    item: item.clone(),
                    score: hit.score,
                    mode,
                })
            })
            .collect()
    }

    /// Shuts tool connections down.
    pub async fn close(&self) {
        self.tools.close().await;
    }
}

/// The searchable text of a tool: description, tags, callables and parameters.
pub fn tool_doc(tool: &ToolInfo) -> SearchDoc {
    let mut text = vec![tool.description.clone(), tool.tags.join(" ")];
    for callable in &tool.callables {
        if callable.name != tool.name {
            text.push(callable.name.clone());
        }
        if callable.description != tool.description {
            text.push(callable.description.clone());
        }
        text.extend(
            callable
                .parameters
                .iter()
                .map(|p| format!("{} {}", p.name, p.description)),
        );
    }
    SearchDoc {
        name: tool.name.clone(),
        text: text.join("\n"),
    }
}

fn to_value<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| {
        Error::Executor(crate::error::ExecutorError::Protocol {
            message: format!("cannot encode a reply: {e}"),
        })
    })
}
