//! The MCP server: agent code, tools, skills and artifacts as MCP tools.

use std::sync::Arc;
use std::time::Duration;

use py_code_mode::{Error, Session};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an agent reads first: how the namespaces work, in a few lines.
const INSTRUCTIONS: &str = "\
Run Python with `run_code`. Variables persist between calls; the last expression is returned. \
Bound namespaces: \
`tools` — `tools.search(\"what you need\")`, `tools.list()`, call as `tools.<name>(arg=...)`; \
`skills` — reusable recipes: `skills.search(\"...\")`, `skills.<name>(arg=...)`, `skills.get(name).source`, \
`skills.create(name=..., source='def run(...): ...', description=...)`; \
`artifacts` — persistent data: `artifacts.save(name, data, description=...)`, `artifacts.load(name)`, `artifacts.list()`. \
Search before you build: prefer an existing skill, and save what worked as a new skill.";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunCode {
    /// Python code. Top-level `await` works; the value of a trailing expression is returned.
    pub code: String,
    /// Seconds before the code is stopped (the interpreter is then restarted).
    #[serde(default)]
    pub timeout: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Search {
    /// What you are looking for, in plain words.
    pub query: String,
    /// Most results to return.
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateSkill {
    /// A Python identifier: the skill is called as `skills.<name>(...)`.
    pub name: String,
    /// Python source defining `def run(...)` or `async def run(...)`.
    pub source: String,
    /// What the skill does, for search.
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Named {
    pub name: String,
}

/// Serves one [`Session`] over MCP.
#[derive(Clone)]
pub struct CodeModeServer {
    session: Arc<Session>,
    tool_router: ToolRouter<Self>,
}

impl CodeModeServer {
    pub fn new(session: Arc<Session>) -> Self {
        Self {
            session,
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl CodeModeServer {
    #[tool(
        description = "Run Python code with `tools`, `skills` and `artifacts` bound. \
        State persists between calls like notebook cells; the last expression's value is returned with stdout and stderr."
    )]
    async fn run_code(
        &self,
        Parameters(args): Parameters<RunCode>,
    ) -> Result<CallToolResult, ErrorData> {
        let timeout = match args.timeout {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
            Some(s) => {
                return Err(ErrorData::invalid_params(
                    format!("`timeout` must be a positive number of seconds, not {s}"),
                    None,
                ));
            }
        };
        let result = self
            .session
            .run_with_timeout(&args.code, timeout)
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let mut text = result.to_text();
        if text.is_empty() {
            text = "(no output)".into();
        }
        Ok(if result.is_ok() {
            CallToolResult::success(vec![ContentBlock::text(text)])
        } else {
            CallToolResult::error(vec![ContentBlock::text(text)])
        })
    }

    #[tool(description = "List every tool with its description and parameters.")]
    async fn list_tools(&self) -> Result<CallToolResult, ErrorData> {
        reply(self.session.list_tools().await)
    }

    #[tool(description = "Find tools by what you want to do, best first.")]
    async fn search_tools(
        &self,
        Parameters(args): Parameters<Search>,
    ) -> Result<CallToolResult, ErrorData> {
        reply(
            self.session
                .search_tools(&args.query, args.limit.unwrap_or(10))
                .await,
        )
    }

    #[tool(
        description = "List every skill (reusable Python recipe) with its description and parameters."
    )]
    async fn list_skills(&self) -> Result<CallToolResult, ErrorData> {
        reply(self.session.list_skills().await)
    }

    #[tool(description = "Find skills by what you want to do, best first.")]
    async fn search_skills(
        &self,
        Parameters(args): Parameters<Search>,
    ) -> Result<CallToolResult, ErrorData> {
        reply(
            self.session
                .search_skills(&args.query, args.limit.unwrap_or(5))
                .await,
        )
    }

    #[tool(
        description = "Save a skill: Python source with a `run()` function. It is validated \
        (it must parse and define `run`) and persists for later sessions."
    )]
    async fn create_skill(
        &self,
        Parameters(args): Parameters<CreateSkill>,
    ) -> Result<CallToolResult, ErrorData> {
        reply(
            self.session
                .add_skill(&args.name, &args.source, &args.description)
                .await,
        )
    }

    #[tool(description = "Delete a skill by name.")]
    async fn delete_skill(
        &self,
        Parameters(args): Parameters<Named>,
    ) -> Result<CallToolResult, ErrorData> {
        reply(self.session.remove_skill(&args.name).await)
    }

    #[tool(description = "List saved artifacts (name, type, size, description).")]
    async fn list_artifacts(&self) -> Result<CallToolResult, ErrorData> {
        reply(self.session.list_artifacts().await)
    }

    #[tool(
        description = "Forget every variable defined by earlier `run_code` calls. Tools, skills and artifacts stay."
    )]
    async fn reset(&self) -> Result<CallToolResult, ErrorData> {
        reply(
            self.session
                .reset()
                .await
                .map(|()| "the interpreter was reset"),
        )
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CodeModeServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "py-code-mode",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }
}

/// The one mapping from core results to MCP: bad arguments (names) are invalid
/// params; everything else that failed is a tool result with `is_error`, so the
/// agent reads the message.
fn reply<T: Serialize>(result: Result<T, Error>) -> Result<CallToolResult, ErrorData> {
    match result {
        Ok(value) => {
            let text = serde_json::to_string_pretty(&value)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
        }
        Err(Error::Name(e)) => Err(ErrorData::invalid_params(e.to_string(), None)),
        Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(
            e.to_string(),
        )])),
    }
}
