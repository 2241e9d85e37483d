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
//!   (`py_code_mode::mcp`, level `info`), tagged with the tool, and to the
//!   agent code whose call they belong to (see [`super::notices`]): progress by
//!   the call's progress token, a log message to the oldest call in flight on
//!   the connection (log messages name no request; a connection serves one
//!   session, so they never reach another session's code).
#![expect(
    deprecated,
    reason = "sampling and logging are in the 2025-11-25 revision servers speak today"
)]

use std::sync::{Arc, Mutex, PoisonError};

use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult,
    ElicitRequestParams, ElicitResult, ElicitationAction, Implementation, LoggingLevel,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken, ProtocolVersion,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::Value;

use super::notices::Notices;

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
    listeners: Arc<Listeners>,
}

impl McpClient {
    pub fn new(tool: impl Into<String>, listeners: Arc<Listeners>) -> Self {
        Self {
            tool: tool.into(),
            listeners,
        }
    }

    fn tell(&self, notices: Option<Notices>, text: &str) {
        if let Some(notices) = notices {
            notices.push(&format!("tools.{}", self.tool), text);
        }
    }
}

/// The calls in flight on one connection whose notices agent code collects,
/// oldest first, by the progress token of their request.
#[derive(Debug, Default)]
pub struct Listeners(Mutex<Vec<(ProgressToken, Notices)>>);

impl Listeners {
    /// Sends what the server says about `token` to `notices` until the guard drops.
    pub fn listen(self: &Arc<Self>, token: ProgressToken, notices: Notices) -> Listening {
        self.calls().push((token.clone(), notices));
        Listening(Arc::clone(self), token)
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, Vec<(ProgressToken, Notices)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn by_token(&self, token: &ProgressToken) -> Option<Notices> {
        let calls = self.calls();
        calls
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, n)| n.clone())
    }

    fn oldest(&self) -> Option<Notices> {
        self.calls().first().map(|(_, n)| n.clone())
    }
}

/// A call listening for its notices; see [`Listeners::listen`].
pub struct Listening(Arc<Listeners>, ProgressToken);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.calls().retain(|(t, _)| *t != self.1);
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
        let text = format!(
            "progress {}{}{}",
            params.progress,
            params.total.map(|t| format!("/{t}")).unwrap_or_default(),
            params
                .message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default(),
        );
        tracing::info!(target: "py_code_mode::mcp", tool = %self.tool, "{text}");
        self.tell(self.listeners.by_token(&params.progress_token), &text);
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
        let data = match &params.data {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let logger = params
            .logger
            .as_deref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default();
        let text = format!("{}{logger}: {data}", level_name(params.level));
        self.tell(self.listeners.oldest(), &text);
    }
}

fn level_name(level: LoggingLevel) -> &'static str {
    match level {
        LoggingLevel::Debug => "debug",
        LoggingLevel::Info => "info",
        LoggingLevel::Notice => "notice",
        LoggingLevel::Warning => "warning",
        LoggingLevel::Error => "error",
        LoggingLevel::Critical => "critical",
        LoggingLevel::Alert => "alert",
        LoggingLevel::Emergency => "emergency",
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
        let info = McpClient::new("t", Arc::default()).get_info();
        assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
        assert_eq!(info.client_info.name, "py-code-mode");
        assert_eq!(info.client_info.version, env!("CARGO_PKG_VERSION"));
    }
}
