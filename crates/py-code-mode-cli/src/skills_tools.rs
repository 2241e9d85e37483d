//! The MCP tools of skill versions and recorded tests: `skill_history`,
//! `get_skill`, `rollback_skill`, `test_skill` (the words agent code uses:
//! `skills.history`, `skills.get(name, version=)`, `skills.rollback`, `skills.test`).

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{ErrorData, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::server::{CodeModeServer, Named, reply};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetSkill {
    pub name: String,
    /// A kept version (from `skill_history`); the current one when absent.
    #[serde(default)]
    #[schemars(with = "u64")]
    pub version: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Rollback {
    pub name: String,
    /// The kept version to make current again (as a new version).
    pub version: u64,
}

#[tool_router(router = skills_tool_router, vis = "pub(crate)")]
impl CodeModeServer {
    #[tool(
        description = "The kept versions of a skill, newest first (the current one included): \
        version, created_at, session, run, description, hash and source."
    )]
    async fn skill_history(
        &self,
        Parameters(args): Parameters<Named>,
    ) -> Result<CallToolResult, ErrorData> {
        reply(self.session().skill_history(&args.name).await)
    }

    #[tool(
        description = "One skill with its source and provenance (version, session, run, hash); \
        `version` reads a kept version."
    )]
    async fn get_skill(
        &self,
        Parameters(args): Parameters<GetSkill>,
    ) -> Result<CallToolResult, ErrorData> {
        match args.version {
            Some(version) => reply(self.session().get_skill_version(&args.name, version).await),
            None => reply(self.session().get_skill(&args.name).await),
        }
    }

    #[tool(description = "Make a kept version of a skill current again (saved as a new version).")]
    async fn rollback_skill(
        &self,
        Parameters(args): Parameters<Rollback>,
    ) -> Result<CallToolResult, ErrorData> {
        reply(
            self.session()
                .rollback_skill(&args.name, args.version)
                .await,
        )
    }

    #[tool(
        description = "Replay a skill's recorded test cases with tools answered from the \
        recordings: a list of `{case, ok, diff}` (`diff` says what differed)."
    )]
    async fn test_skill(
        &self,
        Parameters(args): Parameters<Named>,
    ) -> Result<CallToolResult, ErrorData> {
        reply(self.session().test_skill(&args.name).await)
    }
}
