//! Tools: external capabilities defined in YAML, called from agent code.
//!
//! Each definition becomes a [`ToolAdapter`] (CLI today; MCP and HTTP adapters
//! plug into the same trait). The registry resolves `tools.<name>` and
//! `tools.<name>.<callable>` and owns the adapters for the session.

mod cli;
mod output;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use cli::CliTool;
pub use output::{MAX_TOOL_OUTPUT, OutputCap};

use crate::error::{Result, ToolError};
use crate::skills::ParamInfo;
use crate::storage::{Storage, ToolSource};

/// One callable of a tool: the tool itself for simple tools, a recipe or an MCP
/// server's tool for tools with several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallableInfo {
    pub name: String,
    pub description: String,
    pub parameters: Vec<ParamInfo>,
}

/// What `tools.list()` and `tools.search()` return for each tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    /// `cli`, `mcp` or `http`.
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    pub tags: Vec<String>,
    pub callables: Vec<CallableInfo>,
}

/// A tool the host can call on behalf of agent code.
#[async_trait]
pub trait ToolAdapter: Send + Sync + Debug {
    fn name(&self) -> &str;

    async fn info(&self) -> Result<ToolInfo>;

    /// Calls the tool (`callable` is `None`) or one of its callables.
    async fn call(&self, callable: Option<&str>, args: Map<String, Value>) -> Result<Value>;

    /// Releases connections and child processes.
    async fn close(&self) {}
}

/// The tools of a session, by name.
#[derive(Debug, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn ToolAdapter>>,
    load_errors: Vec<ToolError>,
}

/// The fields every definition shares, read first to pick the adapter.
#[derive(Deserialize)]
struct Header {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl ToolRegistry {
    /// Loads every tool definition from storage. A broken definition is logged
    /// and kept in [`load_errors`](Self::load_errors); the others still load.
    pub async fn load(storage: &dyn Storage) -> Result<Self> {
        let mut registry = Self::default();
        for source in storage.tool_sources().await? {
            match parse_definition(&source) {
                Ok(tool) => {
                    if let Some(old) = registry.tools.get(tool.name()) {
                        tracing::warn!(
                            "tool `{}` from `{}` replaces an earlier definition ({old:?})",
                            tool.name(),
                            source.origin
                        );
                    }
                    registry.tools.insert(tool.name().to_owned(), tool);
                }
                Err(e) => {
                    tracing::warn!("skipping a tool definition: {e}");
                    registry.load_errors.push(e);
                }
            }
        }
        Ok(registry)
    }

    /// Adds a tool made in code (replacing one of the same name).
    pub fn insert(&mut self, tool: Arc<dyn ToolAdapter>) {
        self.tools.insert(tool.name().to_owned(), tool);
    }

    /// Definitions that failed to load, each naming its file and line.
    pub fn load_errors(&self) -> &[ToolError] {
        &self.load_errors
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    pub async fn list(&self) -> Result<Vec<ToolInfo>> {
        let mut infos = Vec::with_capacity(self.tools.len());
        for tool in self.tools.values() {
            match tool.info().await {
                Ok(info) => infos.push(info),
                Err(e) => tracing::warn!("tool `{}` is unavailable: {e}", tool.name()),
            }
        }
        Ok(infos)
    }

    /// Calls `name` (`nmap`) or `name.callable` (`curl.get`).
    pub async fn call(&self, name: &str, args: Map<String, Value>) -> Result<Value> {
        if let Some(tool) = self.tools.get(name) {
            return tool.call(None, args).await;
        }
        if let Some((tool, callable)) = name.split_once('.')
            && let Some(tool) = self.tools.get(tool)
        {
            return tool.call(Some(callable), args).await;
        }
        Err(ToolError::NotFound {
            name: name.to_owned(),
        }
        .into())
    }

    pub async fn close(&self) {
        for tool in self.tools.values() {
            tool.close().await;
        }
    }
}

/// Parses one YAML definition into its adapter; errors name the file and line.
pub fn parse_definition(source: &ToolSource) -> Result<Arc<dyn ToolAdapter>, ToolError> {
    let header: Header = from_yaml(source)?;
    let definition_error = |message: String| ToolError::Definition {
        origin: source.origin.clone(),
        line: None,
        message,
    };
    let name = header
        .name
        .ok_or_else(|| definition_error("missing `name`".into()))?;
    match header.kind.as_deref() {
        Some("cli") | None => Ok(Arc::new(
            CliTool::new(from_yaml(source)?).map_err(definition_error)?,
        )),
        Some(other) => Err(definition_error(format!(
            "tool `{name}` has unsupported type `{other}` (expected `cli`)"
        ))),
    }
}

pub(crate) fn from_yaml<T: for<'de> Deserialize<'de>>(source: &ToolSource) -> Result<T, ToolError> {
    yaml_serde::from_str(&source.text).map_err(|e| ToolError::Definition {
        origin: source.origin.clone(),
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })
}
