//! Tools: external capabilities defined in YAML, called from agent code.
//!
//! Each definition becomes a [`ToolAdapter`]: [`CliTool`] (`type: cli`, the
//! default), [`McpTool`] (`type: mcp`) or [`HttpTool`] (`type: http`). The
//! registry resolves `tools.<name>`, `tools.<name>.<callable>` and, for MCP and
//! HTTP tools, the bare `tools.<callable>` when one tool alone has it; it owns
//! the adapters (and so the MCP connections) for the session.

mod cli;
mod function;
mod http;
mod mcp;
mod mcp_client;
pub mod notices;
mod output;
mod sse;
mod task_tap;
mod yaml_bounds;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use std::fmt::Write as _;
use std::time::Duration;

pub use cli::{CliSpec, CliTool, ValueType};
pub use function::{FunctionResult, FunctionTool};
pub use http::{Endpoint, HttpSpec, HttpTool};
pub use mcp::{McpSpec, McpTool, McpTransport};
pub(crate) use output::tail;
pub use output::{MAX_TOOL_OUTPUT, OutputCap};
pub use yaml_bounds::{MAX_TOOL_YAML, MAX_YAML_DEPTH};

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

/// The kind of a tool: its definition's `type`, and the `type` listings show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolKind {
    Cli,
    Mcp,
    Http,
    /// A function of the application ([`FunctionTool`]); never from YAML.
    Function,
}

/// What `tools.list()` and `tools.search()` return for each tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    /// `cli`, `mcp`, `http` or `function`.
    #[serde(rename = "type")]
    pub kind: ToolKind,
    pub description: String,
    pub tags: Vec<String>,
    pub callables: Vec<CallableInfo>,
    /// Why the tool's callables are unknown right now (an MCP server that did
    /// not answer in time); absent when the tool is available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// A tool the host can call on behalf of agent code.
#[async_trait]
pub trait ToolAdapter: Send + Sync + Debug {
    fn name(&self) -> &str;

    async fn info(&self) -> Result<ToolInfo>;

    /// Whether the tool is still connecting (an MCP server that has not
    /// answered yet): a lookup by bare name skips it rather than wait.
    fn connecting(&self) -> bool {
        false
    }

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

/// How long a listing waits for one tool to describe itself (an adapter
/// that hangs); MCP tools answer sooner, marked unavailable while connecting.
const INFO_TIMEOUT: Duration = Duration::from_secs(15);

/// The fields every definition shares, read first to pick the adapter.
#[derive(Deserialize)]
struct Header {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<ToolKind>,
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

    /// Every tool, in name order.
    pub fn tools(&self) -> Vec<Arc<dyn ToolAdapter>> {
        self.tools.values().cloned().collect()
    }

    /// Definitions that failed to load, each naming its file and line.
    pub fn load_errors(&self) -> &[ToolError] {
        &self.load_errors
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    /// Every tool's description, gathered in parallel: a slow tool costs at
    /// most [`INFO_TIMEOUT`] and never delays the others.
    pub async fn list(&self) -> Result<Vec<ToolInfo>> {
        Ok(self.describe(self.tools.values()).await)
    }

    async fn describe<'a>(
        &self,
        tools: impl Iterator<Item = &'a Arc<dyn ToolAdapter>>,
    ) -> Vec<ToolInfo> {
        let infos = futures::future::join_all(tools.map(|tool| async move {
            match tokio::time::timeout(INFO_TIMEOUT, tool.info()).await {
                Ok(Ok(info)) => Some(info),
                Ok(Err(e)) => {
                    tracing::warn!("tool `{}` is unavailable: {e}", tool.name());
                    None
                }
                Err(_) => {
                    tracing::warn!(
                        "tool `{}` did not describe itself within {}s",
                        tool.name(),
                        INFO_TIMEOUT.as_secs()
                    );
                    None
                }
            }
        }))
        .await;
        infos.into_iter().flatten().collect()
    }

    /// Calls `name` (`nmap`), `name.callable` (`curl.get`, `web.fetch`) or the
    /// bare name of an MCP or HTTP callable (`fetch`) that one tool alone has.
    pub async fn call(&self, name: &str, args: Map<String, Value>) -> Result<Value> {
        if let Some(tool) = self.tools.get(name) {
            return tool.call(None, args).await;
        }
        if let Some((tool, callable)) = name.split_once('.')
            && let Some(tool) = self.tools.get(tool)
        {
            return tool.call(Some(callable), args).await;
        }
        if !name.contains('.') {
            // A server still connecting is skipped, not waited for.
            let infos = self
                .describe(self.tools.values().filter(|t| !t.connecting()))
                .await;
            // CLI recipes (`get`, `post`) are too generic to call bare.
            let owners: Vec<&Arc<dyn ToolAdapter>> = infos
                .iter()
                .filter(|info| {
                    info.kind != ToolKind::Cli && info.callables.iter().any(|c| c.name == name)
                })
                .filter_map(|info| self.tools.get(&info.name))
                .collect();
            match owners.as_slice() {
                [tool] => return tool.call(Some(name), args).await,
                [] => {}
                several => {
                    let names: Vec<String> = several
                        .iter()
                        .map(|t| format!("`tools.{}.{name}`", t.name()))
                        .collect();
                    return Err(ToolError::Ambiguous {
                        name: name.to_owned(),
                        candidates: names.join(", "),
                    }
                    .into());
                }
            }
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
    // Before the parser: its cost grows much faster than the text.
    yaml_bounds::check(&source.text).map_err(|e| ToolError::Definition {
        origin: source.origin.clone(),
        line: None,
        message: e.to_string(),
    })?;
    let header: Header = from_yaml(source)?;
    let definition_error = |message: String| ToolError::Definition {
        origin: source.origin.clone(),
        line: None,
        message,
    };
    if header.name.is_none() {
        return Err(definition_error("missing `name`".into()));
    }
    match header.kind.unwrap_or(ToolKind::Cli) {
        ToolKind::Cli => Ok(Arc::new(
            CliTool::new(from_yaml(source)?).map_err(definition_error)?,
        )),
        ToolKind::Mcp => Ok(Arc::new(
            McpTool::new(from_yaml(source)?).map_err(definition_error)?,
        )),
        ToolKind::Http => Ok(Arc::new(
            HttpTool::from_spec(from_yaml(source)?).map_err(definition_error)?,
        )),
        ToolKind::Function => Err(definition_error(
            "`type: function` tools are registered in code, not defined in YAML\nhint: use `cli`, `mcp` or `http`".into(),
        )),
    }
}

/// A definition's `timeout` (seconds), or `default` when it sets none.
pub(crate) fn parse_timeout(seconds: Option<f64>, default: Duration) -> Result<Duration, String> {
    match seconds {
        None => Ok(default),
        Some(s) => crate::bounds::timeout_secs("timeout", s).map_err(|e| e.to_string()),
    }
}

/// Expands `${VAR}` from the host's environment (`$${` is a literal `${`).
/// Done on the host at connect or call time, so secrets live in the host's
/// environment only: not in tool files, not in the Python worker.
pub(crate) fn substitute_env(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let Some(len) = rest[start + 2..].find('}') else {
            return Err(format!("unclosed `${{` in `{text}`"));
        };
        let var = &rest[start + 2..start + 2 + len];
        let value = std::env::var(var).map_err(|_| {
            format!("environment variable `{var}` is not set\nhint: export `{var}` before starting py-code-mode")
        })?;
        out.push_str(&value);
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Cuts `text` to at most `max` bytes, with the visible truncation marker.
pub(crate) fn truncate_text(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let dropped = text.len() - end;
    text.truncate(end);
    let _ = write!(text, "\n[... output truncated: {dropped} more bytes]\n");
    text
}

/// A tool result within the output cap: text is cut with the marker; data too
/// large to keep whole becomes its JSON text, cut with the marker.
pub(crate) fn cap_value(value: Value, max: usize) -> Value {
    match value {
        Value::String(text) => Value::String(truncate_text(text, max)),
        other => {
            let size = serde_json::to_string(&other).map_or(0, |t| t.len());
            if size <= max {
                other
            } else {
                Value::String(truncate_text(other.to_string(), max))
            }
        }
    }
}

pub(crate) fn from_yaml<T: for<'de> Deserialize<'de>>(source: &ToolSource) -> Result<T, ToolError> {
    yaml_serde::from_str(&source.text).map_err(|e| ToolError::Definition {
        origin: source.origin.clone(),
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })
}
