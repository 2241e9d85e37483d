//! How the host presents itself to MCP tool servers, and what it does with
//! their requests and notifications.
//!
//! - `initialize` offers protocol `2025-11-25` (the newest revision with an
//!   `initialize` handshake) and names this library and its version.
//! - No client capabilities are declared (no roots, sampling or elicitation):
//!   agent code calls tools with no person or model in the loop. A server that
//!   asks anyway gets a sampling error or an elicitation `decline`, with the
//!   reason in the host's log.
//! - Progress and log messages of a server go to the host's log
//!   (`py_code_mode::mcp`, level `info`), tagged with the tool.
#![expect(
    deprecated,
    reason = "sampling and logging are in the 2025-11-25 revision servers speak today"
)]

use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult,
    ElicitRequestParams, ElicitResult, ElicitationAction, Implementation,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ClientHandler, ErrorData, RoleClient};

/// The protocol revision offered: the newest with an `initialize` handshake.
pub const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// Why sampling and elicitation requests are declined.
const NO_PERSON_IN_THE_LOOP: &str = "py-code-mode runs agent code with no person or model in the loop: \
     it declines sampling and elicitation requests";

/// The client side of one connection to a tool server.
#[derive(Debug, Clone)]
pub struct McpClient {
    /// The tool definition's name, for the log.
    tool: String,
}

impl McpClient {
    pub fn new(tool: impl Into<String>) -> Self {
        Self { tool: tool.into() }
    }
}

impl ClientHandler for McpClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("py-code-mode", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(PROTOCOL_VERSION)
    }

    async fn create_message(
        &self,
        _params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        tracing::info!(target: "py_code_mode::mcp", tool = %self.tool, "declined a sampling request");
        Err(ErrorData::invalid_request(NO_PERSON_IN_THE_LOOP, None))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        tracing::info!(
            target: "py_code_mode::mcp",
            tool = %self.tool,
            "declined an elicitation request ({NO_PERSON_IN_THE_LOOP}): {request:?}"
        );
        Ok(ElicitResult::new(ElicitationAction::Decline))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        tracing::info!(
            target: "py_code_mode::mcp",
            tool = %self.tool,
            "progress {}{}{}",
            params.progress,
            params.total.map(|t| format!("/{t}")).unwrap_or_default(),
            params.message.map(|m| format!(": {m}")).unwrap_or_default(),
        );
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        tracing::info!(
            target: "py_code_mode::mcp",
            tool = %self.tool,
            logger = params.logger.as_deref().unwrap_or(""),
            "{:?}: {}",
            params.level,
            params.data
        );
    }
}

/// A server tool's name as a Python attribute: `get-sum` is `get_sum`.
pub fn python_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_python_attributes() {
        assert_eq!(python_name("get-sum"), "get_sum");
        assert_eq!(python_name("a.b c"), "a_b_c");
        assert_eq!(python_name("2fa"), "_2fa");
        assert_eq!(python_name("plain_name"), "plain_name");
    }

    #[test]
    fn the_client_names_itself_and_offers_a_version_with_a_handshake() {
        let info = McpClient::new("t").get_info();
        assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
        assert_eq!(info.client_info.name, "py-code-mode");
        assert_eq!(info.client_info.version, env!("CARGO_PKG_VERSION"));
    }
}
