//! The MCP server: agent code, tools, skills and artifacts as MCP tools.

use std::sync::Arc;

use py_code_mode::{Error, Session};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::surface::{self, Surface};

/// The most results one search returns: more is no use to an agent, and an
/// unbounded `limit` would let one request rank and serialise everything.
pub const MAX_SEARCH_LIMIT: u64 = 1000;

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
    #[schemars(with = "f64")]
    pub timeout: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Search {
    /// What you are looking for, in plain words.
    pub query: String,
    /// Most results to return (1 to 1000).
    #[serde(default)]
    #[schemars(with = "u64")]
    pub limit: Option<u64>,
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
    /// Cancelled when the server stops (the client closed stdin, a signal):
    /// runs in flight stop at once instead of finishing first.
    shutdown: CancellationToken,
    tool_router: ToolRouter<Self>,
    /// Logging level, resource watching: per MCP session.
    surface: Arc<Surface>,
}

impl CodeModeServer {
    pub fn new(session: Arc<Session>) -> Self {
        Self::with_shutdown(session, CancellationToken::new())
    }

    /// A server whose runs stop when `shutdown` is cancelled.
    pub fn with_shutdown(session: Arc<Session>, shutdown: CancellationToken) -> Self {
        let mut tool_router = Self::tool_router();
        tool_router += Self::skills_tool_router();
        if Self::serves_deps(&session) {
            tool_router += Self::deps_tool_router();
        }
        Self {
            session,
            shutdown,
            tool_router,
            surface: Arc::default(),
        }
    }

    pub(crate) fn session(&self) -> &Session {
        &self.session
    }
}

impl CodeModeServer {
    /// After something may have changed skills or artifacts: tells the
    /// client if the resource list moved (in the background; the reply
    /// does not wait for the listing).
    fn after_change(&self, context: &RequestContext<RoleServer>) {
        let (surface, session, peer) = (
            Arc::clone(&self.surface),
            Arc::clone(&self.session),
            context.peer.clone(),
        );
        tokio::spawn(async move { surface.check_resources(&peer, &session).await });
    }
}

/// `limit` of a search, bounded; `default` when absent.
fn search_limit(limit: Option<u64>, default: usize) -> Result<usize, ErrorData> {
    let Some(limit) = limit else {
        return Ok(default);
    };
    let limit = py_code_mode::count("limit", limit, 1, MAX_SEARCH_LIMIT)
        .map_err(|e| ErrorData::invalid_params(e.to_string(), None))?;
    // At most `MAX_SEARCH_LIMIT`, so it fits.
    Ok(usize::try_from(limit).unwrap_or(usize::MAX))
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
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let timeout = args
            .timeout
            .map(|s| py_code_mode::timeout_secs("timeout", s))
            .transpose()
            .map_err(|e| ErrorData::invalid_params(e.to_string(), None))?;
        let ticker = surface::progress(&context, &self.session);
        // Dropping the run future stops the run: the executor kills the worker
        // and its whole tree, and the next run gets a fresh one.
        let result = tokio::select! {
            result = self.session.run_with_timeout(&args.code, timeout) => result,
            () = context.ct.cancelled() => {
                tracing::info!("run cancelled by the client");
                return Err(ErrorData::internal_error("the run was cancelled", None));
            }
            () = self.shutdown.cancelled() => {
                return Err(ErrorData::internal_error("the server is shutting down; the run was stopped", None));
            }
        }
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        drop(ticker);
        self.surface.log_run(&context.peer, &result).await;
        self.after_change(&context);
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
                .search_tools(&args.query, search_limit(args.limit, 10)?)
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
                .search_skills(&args.query, search_limit(args.limit, 5)?)
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
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let outcome = self
            .session
            .add_skill(&args.name, &args.source, &args.description)
            .await;
        self.after_change(&context);
        reply(outcome)
    }

    #[tool(description = "Delete a skill by name.")]
    async fn delete_skill(
        &self,
        Parameters(args): Parameters<Named>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let outcome = self.session.remove_skill(&args.name).await;
        self.after_change(&context);
        reply(outcome)
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
        server_info()
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let listed = crate::resources::list(&self.session).await?;
        self.surface
            .watch(crate::resources::fingerprint(&self.session).await);
        Ok(listed)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(crate::resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Ok(crate::resources::read(&self.session, &request.uri)
            .await?
            .into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(crate::prompts::list())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        Ok(crate::prompts::get(&request.name, request.arguments.as_ref())?.into())
    }

    #[expect(
        deprecated,
        reason = "logging is in the 2025-11-25 revision clients speak today"
    )]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.surface.set_level(request.level);
        // Warnings from loading the library, now that the client listens.
        for error in self.session.host().tools().load_errors() {
            self.surface
                .log(
                    &context.peer,
                    rmcp::model::LoggingLevel::Warning,
                    "py-code-mode",
                    &error.to_string(),
                )
                .await;
        }
        Ok(())
    }
}

/// What `initialize` answers, on stdio and HTTP alike.
#[expect(
    deprecated,
    reason = "logging is in the 2025-11-25 revision clients speak today"
)]
pub fn server_info() -> ServerConfig {
    ServerConfig::new(
        ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_prompts()
            .enable_logging()
            .build(),
    )
    .with_server_info(Implementation::new(
        "py-code-mode",
        env!("CARGO_PKG_VERSION"),
    ))
    .with_instructions(INSTRUCTIONS)
}

/// The one mapping from core results to MCP: bad arguments (names) are invalid
/// params; everything else that failed is a tool result with `is_error`, so the
/// agent reads the message.
pub(crate) fn reply<T: Serialize>(result: Result<T, Error>) -> Result<CallToolResult, ErrorData> {
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
