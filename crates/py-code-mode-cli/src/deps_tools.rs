//! The MCP tools of `deps` (0.10's `list_deps`, `add_dep`, `remove_dep`),
//! served only when runtime installs are allowed (`--no-runtime-deps` hides them).

use clap::Args;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{ErrorData, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::server::{CodeModeServer, reply};

/// 0.10's `deps` options of the MCP server.
#[derive(Debug, Clone, Args)]
pub struct DepsArgs {
    /// Agent code may not install or remove packages (`deps.add`), and the MCP
    /// tools `list_deps`, `add_dep`, `remove_dep` are not served
    #[arg(long, global = true)]
    pub no_runtime_deps: bool,
    /// Do not install the library's configured packages at start
    #[arg(long, global = true)]
    pub no_sync_deps: bool,
}

impl DepsArgs {
    /// The session's `deps` settings.
    pub fn config(&self) -> py_code_mode::deps::DepsConfig {
        py_code_mode::deps::DepsConfig {
            allow_runtime: !self.no_runtime_deps,
            sync_on_start: !self.no_sync_deps,
            ..py_code_mode::deps::DepsConfig::default()
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Package {
    /// A package name with optional extras and version specifiers, such as
    /// `requests` or `pandas>=2,<3`. Options, paths and URLs are refused.
    pub package: String,
}

#[tool_router(router = deps_tool_router, vis = "pub(crate)")]
impl CodeModeServer {
    #[tool(description = "List the Python packages this library is configured to have.")]
    async fn list_deps(&self) -> Result<CallToolResult, ErrorData> {
        reply(self.session().list_deps().await)
    }

    #[tool(
        description = "Install a Python package for `run_code` and remember it for later sessions. \
        Replies `{installed, already_present, failed}`; a failure carries the installer's reason."
    )]
    async fn add_dep(
        &self,
        Parameters(args): Parameters<Package>,
    ) -> Result<CallToolResult, ErrorData> {
        reply(self.session().add_dep(&args.package).await)
    }

    #[tool(
        description = "Forget a configured Python package. Replies `{removed, not_found, failed, removed_from_config}`."
    )]
    async fn remove_dep(
        &self,
        Parameters(args): Parameters<Package>,
    ) -> Result<CallToolResult, ErrorData> {
        reply(self.session().remove_dep(&args.package).await)
    }
}

impl CodeModeServer {
    /// Whether the `deps` tools are served: the session has `deps` and lets
    /// agents change them.
    pub(crate) fn serves_deps(session: &py_code_mode::Session) -> bool {
        session
            .host()
            .deps()
            .is_some_and(|deps| deps.runtime_allowed())
    }
}
