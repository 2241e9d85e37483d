//! The host side of the RPC protocol: every call agent code makes lands here,
//! whichever executor runs the code.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::artifacts::ArtifactStore;
use crate::deps::{DepsError, DepsManager};
use crate::error::{Error, Result};
use crate::protocol::{CallError, CallOutcome, HostCall};
use crate::search::{SearchDoc, SearchMode, Searcher};
use crate::skills::{SkillInfo, SkillLibrary};
use crate::storage::Storage;
use crate::tools::{ToolInfo, ToolRegistry};

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

    /// Answers one call from agent code, errors included, in wire form.
    pub async fn handle(&self, call: HostCall) -> CallOutcome {
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
            HostCall::SkillsList {} => to_value(&self.skills.list().await?),
            HostCall::SkillsSearch { query, limit } => {
                to_value(&self.search_skills(&query, limit).await?)
            }
            HostCall::SkillsGet { name } => to_value(&self.skills.get(&name).await?),
            HostCall::SkillsCreate {
                name,
                source,
                description,
            } => to_value(&self.skills.create(&name, &source, &description).await?),
            HostCall::SkillsDelete { name } => to_value(&self.skills.delete(&name).await?),
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
        Ok(self.rank(query, &docs, limit, skills).await)
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
