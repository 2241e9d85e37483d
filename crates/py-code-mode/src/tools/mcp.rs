//! MCP tools: every tool of an MCP server, reached over stdio, SSE or streamable HTTP.
//!
//! ```yaml
//! name: time
//! type: mcp
//! transport: stdio            # or `sse` / `streamable-http` with `url:` and `headers:`
//! command: uvx
//! args: ["mcp-server-time"]
//! description: Current time in any timezone
//! ```
//!
//! The host keeps one connection per server for the session. It connects lazily,
//! on the first listing or call, so a library with many servers starts instantly
//! and a server that is down only affects the calls that need it. A connection
//! found closed (the server exited) is replaced before the next call; a call the
//! connection broke under fails with a message saying the next call reconnects,
//! because a call that may have reached the server is never silently repeated.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, CancelledNotificationParam,
    ClientRequest, RequestId, ServerResult, Tool,
};
use rmcp::service::{
    Peer, PeerRequestOptions, RoleClient, RunningService, ServiceError, ServiceExt as _,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::{Mutex, RwLock};

use super::http::http_client;
use super::mcp_client::{Listeners, McpClient, python_name};
use super::notices;
use super::sse::SseTransport;
use super::task_tap::{TapReader, TappedHttp, TaskTap};
use super::{
    CallableInfo, MAX_TOOL_OUTPUT, ToolAdapter, ToolInfo, ToolKind, cap_value, parse_timeout,
    substitute_env,
};
use crate::error::{Result, ToolError};
use crate::skills::ParamInfo;
use crate::spawn::{ProcessTree, Spawn};

/// Timeout of one MCP call when the definition sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_mins(1);
/// How long starting a server and the MCP handshake may take: `npx`/`uvx` may
/// download the server on first use.
const CONNECT_TIMEOUT: Duration = Duration::from_mins(2);
/// How long a listing (and a lookup by bare name) waits for a server that is
/// not connected yet; past it the server is listed as unavailable and keeps
/// connecting in the background, up to [`CONNECT_TIMEOUT`].
const LIST_WAIT: Duration = Duration::from_secs(10);
/// How long a stdio server gets to exit after its stdin closes before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How the host reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum McpTransport {
    Stdio,
    Sse,
    #[serde(alias = "http", alias = "streamable_http")]
    StreamableHttp,
}

/// An MCP tool definition as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ToolKind,
    /// Defaults to `stdio` when `command` is set, else `streamable-http`.
    #[serde(default)]
    pub transport: Option<McpTransport>,
    /// stdio: the server program and its arguments.
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// stdio: variables added to the server's environment; `${VAR}` is read
    /// from the host's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// sse / streamable-http: the server's URL.
    #[serde(default)]
    pub url: Option<String>,
    /// sse / streamable-http: headers sent with every request; `${VAR}` is read
    /// from the host's environment, so secrets stay out of the file.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Seconds one call may take.
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// An MCP server's tools, called through one lazily opened connection.
///
/// The first listing starts connecting in the background and waits at most
/// [`LIST_WAIT`] for it: a server that hangs is listed as unavailable while it
/// keeps being tried, and never holds up the other tools.
#[derive(Debug)]
pub struct McpTool {
    server: Arc<Server>,
    /// The background connection attempt, while there is one.
    pending: std::sync::Mutex<Option<Pending>>,
}

type Attempt = futures::future::Shared<futures::future::BoxFuture<'static, Result<(), String>>>;

#[derive(Debug)]
struct Pending {
    attempt: Attempt,
    abort: tokio::task::AbortHandle,
}

/// The server behind an [`McpTool`], shared with its background connection.
#[derive(Debug)]
struct Server {
    spec: McpSpec,
    transport: McpTransport,
    timeout: Duration,
    /// The live connection, if any. Held only to open or replace it: calls run
    /// on a clone of the peer, so they overlap.
    connection: Mutex<Option<Connection>>,
    /// The server's tools as last listed; kept across reconnects.
    tools: RwLock<Option<Arc<Vec<Tool>>>>,
    /// Calls whose progress and log messages agent code collects.
    listeners: Arc<Listeners>,
    /// Which of the server's tools need MCP tasks (the latest listing's word).
    tap: Arc<TaskTap>,
}

#[derive(Debug)]
struct Connection {
    service: RunningService<RoleClient, McpClient>,
    /// The stdio server's process tree, killed when the connection goes.
    tree: Option<ProcessTree>,
    /// The stdio server's process (killed if dropped).
    child: Option<tokio::process::Child>,
}

impl Connection {
    /// Closes the protocol (a stdio server sees the end of its input), gives
    /// the server [`SHUTDOWN_GRACE`] to exit, then kills what is left.
    async fn shut_down(mut self) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let _ = self.service.close_with_timeout(SHUTDOWN_GRACE).await;
        if let Some(child) = self.child.as_mut() {
            let _ = tokio::time::timeout_at(deadline, child.wait()).await;
        }
        if let Some(mut tree) = self.tree.take() {
            tree.kill();
        }
    }
}

impl McpTool {
    pub fn new(spec: McpSpec) -> Result<Self, String> {
        Ok(Self {
            server: Arc::new(Server::new(spec)?),
            pending: std::sync::Mutex::new(None),
        })
    }

    /// The connection attempt in flight, or a new one in the background.
    fn attempt(&self) -> Attempt {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = pending.as_ref()
            && p.attempt.peek().is_none()
        {
            return p.attempt.clone();
        }
        let server = Arc::clone(&self.server);
        let task = tokio::spawn(async move {
            server
                .server_tools()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        let abort = task.abort_handle();
        let attempt = async move {
            task.await
                .unwrap_or_else(|e| Err(format!("the connection attempt ended: {e}")))
        }
        .boxed()
        .shared();
        *pending = Some(Pending {
            attempt: attempt.clone(),
            abort,
        });
        attempt
    }

    /// The server's tools, waiting at most [`LIST_WAIT`] for a connection;
    /// `Ok(None)` when it is still connecting after that.
    async fn listing(&self) -> Result<Option<Arc<Vec<Tool>>>, ToolError> {
        if let Some(tools) = self.server.tools.read().await.as_ref() {
            return Ok(Some(Arc::clone(tools)));
        }
        match tokio::time::timeout(LIST_WAIT, self.attempt()).await {
            Err(_) => Ok(None),
            Ok(Err(message)) => Err(self.server.error(message)),
            Ok(Ok(())) => Ok(self.server.tools.read().await.clone()),
        }
    }
}

impl Server {
    fn new(spec: McpSpec) -> Result<Self, String> {
        let transport = match spec.transport {
            Some(t) => t,
            None if spec.command.is_some() => McpTransport::Stdio,
            None if spec.url.is_some() => McpTransport::StreamableHttp,
            None => return Err("an MCP tool needs `command` (stdio) or `url` (HTTP)".into()),
        };
        match transport {
            McpTransport::Stdio if spec.command.is_none() => {
                return Err("`transport: stdio` needs `command`".into());
            }
            McpTransport::Sse | McpTransport::StreamableHttp if spec.url.is_none() => {
                return Err("`transport: sse` and `transport: streamable-http` need `url`".into());
            }
            _ => {}
        }
        let timeout = parse_timeout(spec.timeout, DEFAULT_TIMEOUT)?;
        Ok(Self {
            spec,
            transport,
            timeout,
            connection: Mutex::new(None),
            tools: RwLock::new(None),
            listeners: Arc::default(),
            tap: Arc::default(),
        })
    }

    fn error(&self, message: impl Into<String>) -> ToolError {
        ToolError::Failed {
            tool: self.spec.name.clone(),
            message: message.into(),
        }
    }

    /// A peer on a live connection, opening (or replacing) the connection first.
    async fn peer(&self) -> Result<Peer<RoleClient>, ToolError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            if !connection.service.is_transport_closed() {
                return Ok(connection.service.peer().clone());
            }
            tracing::info!(tool = %self.spec.name, "MCP server connection closed; reconnecting");
            if let Some(old) = slot.take() {
                old.shut_down().await;
            }
        }
        let connect_and_list = async {
            let connection = self.connect().await?;
            let listing = self.tap.listing_scope();
            let tools = connection.service.peer().list_all_tools().await;
            drop(listing);
            let tools = tools
                .map_err(|e| self.error(format!("cannot list the MCP server's tools: {e}")))?;
            Ok::<_, ToolError>((connection, tools))
        };
        let (connection, tools) = tokio::time::timeout(CONNECT_TIMEOUT, connect_and_list)
            .await
            .map_err(|_| {
                self.error(format!(
                    "the MCP server did not answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })??;
        *self.tools.write().await = Some(Arc::new(tools));
        let peer = connection.service.peer().clone();
        *slot = Some(connection);
        Ok(peer)
    }

    async fn connect(&self) -> Result<Connection, ToolError> {
        let unreachable = |what: String| ToolError::Failed {
            tool: self.spec.name.clone(),
            message: format!("cannot connect to the MCP server: {what}"),
        };
        match self.transport {
            McpTransport::Stdio => {
                let program = self.spec.command.clone().unwrap_or_default();
                let mut spawn = Spawn::new(&program).args(&self.spec.args).stdin_piped();
                for (key, value) in &self.spec.env {
                    spawn = spawn.env(key, substitute_env(value).map_err(&unreachable)?);
                }
                if let Some(cwd) = &self.spec.cwd {
                    spawn = spawn.current_dir(cwd);
                }
                let mut command = spawn.into_command();
                command
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true);
                let mut child = command.spawn().map_err(|source| ToolError::Spawn {
                    tool: self.spec.name.clone(),
                    command: program.clone(),
                    source,
                })?;
                // Owns the server's tree from here: an abandoned handshake
                // (timeout, dropped listing) kills it on drop.
                let tree = ProcessTree::new(child.id());
                let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
                    return Err(unreachable("the server's pipes were not made".into()));
                };
                if let Some(stderr) = child.stderr.take() {
                    let name = self.spec.name.clone();
                    tokio::spawn(async move {
                        let mut lines = tokio::io::BufReader::new(stderr).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            tracing::info!(target: "py_code_mode::mcp", tool = %name, "{line}");
                        }
                    });
                }
                let output = TapReader::new(stdout, Arc::clone(&self.tap));
                let service = McpClient::new(&self.spec.name, Arc::clone(&self.listeners))
                    .serve((output, stdin))
                    .await
                    .map_err(|e| {
                        unreachable(format!("`{program}` failed the MCP handshake: {e}"))
                    })?;
                Ok(Connection {
                    service,
                    tree: Some(tree),
                    child: Some(child),
                })
            }
            McpTransport::Sse => {
                let url = self.spec.url.clone().unwrap_or_default();
                let headers = self.headers().map_err(&unreachable)?;
                let transport =
                    SseTransport::connect(http_client(), &url, headers, Arc::clone(&self.tap))
                        .await
                        .map_err(|e| unreachable(e.to_string()))?;
                let service = McpClient::new(&self.spec.name, Arc::clone(&self.listeners))
                    .serve(transport)
                    .await
                    .map_err(|e| unreachable(format!("`{url}`: {e}")))?;
                Ok(Connection {
                    service,
                    tree: None,
                    child: None,
                })
            }
            McpTransport::StreamableHttp => {
                let url = self.spec.url.clone().unwrap_or_default();
                let headers = self.headers().map_err(&unreachable)?;
                let config = StreamableHttpClientTransportConfig::with_uri(url.clone())
                    .custom_headers(
                        headers
                            .into_iter()
                            .filter_map(|(k, v)| Some((k?, v)))
                            .collect(),
                    );
                let client = TappedHttp {
                    inner: http_client(),
                    tap: Arc::clone(&self.tap),
                };
                let transport = StreamableHttpClientTransport::with_client(client, config);
                let service = McpClient::new(&self.spec.name, Arc::clone(&self.listeners))
                    .serve(transport)
                    .await
                    .map_err(|e| unreachable(format!("`{url}`: {e}")))?;
                Ok(Connection {
                    service,
                    tree: None,
                    child: None,
                })
            }
        }
    }

    fn headers(&self) -> Result<HeaderMap, String> {
        let mut map = HeaderMap::new();
        for (key, value) in &self.spec.headers {
            let name = HeaderName::from_bytes(key.as_bytes())
                .map_err(|e| format!("bad header name `{key}`: {e}"))?;
            let value = HeaderValue::from_str(&substitute_env(value)?)
                .map_err(|e| format!("bad value for header `{key}`: {e}"))?;
            map.insert(name, value);
        }
        Ok(map)
    }

    /// The server's tools, connecting if they were never listed.
    async fn server_tools(&self) -> Result<Arc<Vec<Tool>>, ToolError> {
        if let Some(tools) = self.tools.read().await.as_ref() {
            return Ok(Arc::clone(tools));
        }
        self.peer().await?;
        Ok(self.tools.read().await.clone().unwrap_or_default())
    }

    /// Which server tool `tools.<name>(...)` means when no callable is named:
    /// the one with the definition's name, or the server's only tool.
    async fn default_callable(&self) -> Result<String, ToolError> {
        let tools = self.server_tools().await?;
        if tools.iter().any(|t| t.name == self.spec.name) {
            return Ok(self.spec.name.clone());
        }
        if let [only] = tools.as_slice() {
            return Ok(only.name.to_string());
        }
        let names: Vec<String> = tools
            .iter()
            .map(|t| format!("`tools.{}.{}`", self.spec.name, python_name(&t.name)))
            .collect();
        Err(ToolError::NotFound {
            name: format!(
                "{} (an MCP server with several tools: call one of {})",
                self.spec.name,
                names.join(", ")
            ),
        })
    }

    /// Turns a failed request into a clear error, dropping a broken connection
    /// so the next call opens a fresh one.
    async fn request_failed(&self, error: &ServiceError) -> ToolError {
        match error {
            ServiceError::McpError(e) => self.error(format!("the MCP server said: {}", e.message)),
            ServiceError::TransportClosed | ServiceError::TransportSend(_) => {
                if let Some(old) = self.connection.lock().await.take() {
                    old.shut_down().await;
                }
                self.error(format!(
                    "the connection to the MCP server was lost during the call ({error})\nhint: the next call reconnects; check the server if it keeps failing"
                ))
            }
            other => self.error(other.to_string()),
        }
    }
}

impl Server {
    async fn call(&self, callable: Option<&str>, args: Map<String, Value>) -> Result<Value> {
        let callable = match callable {
            Some(c) => c.to_owned(),
            None => self.default_callable().await?,
        };
        let tools = self.server_tools().await?;
        // The exact name, else the tool whose Python name it is (`get_sum`
        // for `get-sum`).
        let Some(callable) = tools
            .iter()
            .find(|t| t.name == callable)
            .or_else(|| tools.iter().find(|t| python_name(&t.name) == callable))
            .map(|t| t.name.to_string())
        else {
            return Err(ToolError::NotFound {
                name: format!("{}.{callable}", self.spec.name),
            }
            .into());
        };
        let qualified = format!("{}.{callable}", self.spec.name);
        if self.tap.needs_tasks(&callable) {
            return Err(self
                .error(format!(
                    "`{qualified}` can only run as an MCP task (the server lists it with \
                     `execution.taskSupport: \"required\"`), and this client does not run \
                     tasks; it was not called"
                ))
                .into());
        }
        let peer = self.peer().await?;
        let request = CallToolRequestParams::new(callable.clone()).with_arguments(args);
        let result = match tokio::time::timeout(self.timeout, self.call_tool(&peer, request)).await
        {
            Err(_) => {
                return Err(ToolError::Timeout {
                    tool: qualified,
                    seconds: self.timeout.as_secs_f64(),
                }
                .into());
            }
            Ok(Err(e)) => return Err(self.request_failed(&e).await.into()),
            Ok(Ok(answer)) => tool_result(&qualified, answer)?,
        };
        let wrapped = tools
            .iter()
            .find(|t| t.name == callable)
            .is_some_and(wraps_result);
        Ok(convert_result(&qualified, result, wrapped)?)
    }

    /// `tools/call`, with the server's progress and log messages for it sent
    /// to the agent code that made the call; dropped (a timeout, a stopped
    /// run), the request is cancelled at the server.
    async fn call_tool(
        &self,
        peer: &Peer<RoleClient>,
        params: CallToolRequestParams,
    ) -> Result<ServerResult, ServiceError> {
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await?;
        let _listening =
            notices::current().map(|n| self.listeners.listen(handle.progress_token.clone(), n));
        let mut abandoned = Abandoned(Some((peer.clone(), handle.id.clone())));
        let response = handle.await_response().await;
        abandoned.0 = None;
        response
    }

    async fn close(&self) {
        if let Some(connection) = self.connection.lock().await.take() {
            connection.shut_down().await;
        }
    }
}

/// A request in flight: dropped before its answer, it is cancelled at the server.
struct Abandoned(Option<(Peer<RoleClient>, RequestId)>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some((peer, id)) = self.0.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let reason = "the call was abandoned (a timeout or a stopped run)".to_owned();
            let _ = peer
                .notify_cancelled(CancelledNotificationParam::new(Some(id), Some(reason)))
                .await;
        });
    }
}

#[async_trait]
impl ToolAdapter for McpTool {
    fn name(&self) -> &str {
        &self.server.spec.name
    }

    async fn info(&self) -> Result<ToolInfo> {
        let spec = &self.server.spec;
        let (callables, unavailable) = match self.listing().await? {
            Some(tools) => (
                tools
                    .iter()
                    .map(|t| callable_info(t, self.server.tap.needs_tasks(&t.name)))
                    .collect(),
                None,
            ),
            None => (
                Vec::new(),
                Some(format!(
                    "the MCP server did not answer within {}s; still connecting",
                    LIST_WAIT.as_secs()
                )),
            ),
        };
        Ok(ToolInfo {
            name: spec.name.clone(),
            kind: ToolKind::Mcp,
            description: spec.description.clone(),
            tags: spec.tags.clone(),
            callables,
            unavailable,
        })
    }

    fn connecting(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|p| p.attempt.peek().is_none())
    }

    async fn call(&self, callable: Option<&str>, args: Map<String, Value>) -> Result<Value> {
        self.server.call(callable, args).await
    }

    async fn close(&self) {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(pending) = pending {
            // Dropping the attempt kills a stdio server still starting.
            pending.abort.abort();
        }
        self.server.close().await;
    }
}

/// What a tool that can only run as an MCP task says of itself in listings.
const NEEDS_TASKS: &str = "[needs MCP tasks, which this client does not run: calling it fails]";

/// A server tool as a callable: parameters from its JSON input schema; one
/// that needs tasks says so first thing in its description.
fn callable_info(tool: &Tool, needs_tasks: bool) -> CallableInfo {
    let schema = tool.input_schema.as_ref();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let parameters = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, prop)| ParamInfo {
                    name: name.clone(),
                    ty: schema_type(prop),
                    required: required.contains(&name.as_str()),
                    default: prop.get("default").cloned(),
                    description: prop
                        .get("description")
                        .or_else(|| prop.get("title"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    let description = tool.description.as_deref().unwrap_or_default();
    CallableInfo {
        name: python_name(&tool.name),
        description: if needs_tasks {
            format!("{NEEDS_TASKS} {description}").trim_end().to_owned()
        } else {
            description.to_owned()
        },
        parameters,
    }
}

fn schema_type(prop: &Value) -> String {
    match prop.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" | "),
        _ => match prop.get("anyOf").and_then(Value::as_array) {
            Some(options) => options
                .iter()
                .map(schema_type)
                .filter(|t| t != "null" && !t.is_empty())
                .collect::<Vec<_>>()
                .join(" | "),
            None => "any".into(),
        },
    }
}

/// Whether the tool's output schema is the `{"result": ...}` envelope the
/// Python SDK puts around a plain return value (`-> str`, `-> list[int]`):
/// agent code gets the value itself, as a local function would return it.
fn wraps_result(tool: &Tool) -> bool {
    tool.output_schema
        .as_ref()
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .is_some_and(|p| p.len() == 1 && p.contains_key("result"))
}

/// The answer to `tools/call` as a tool result. Results that carry no content
/// field (`{}`, `{"_meta": …}`, `{"resultType": "complete"}`) are a tool that
/// returned nothing; a task (the server chose to run the call as one) is
/// refused with what happened, since this client does not poll tasks.
fn tool_result(tool: &str, answer: ServerResult) -> Result<CallToolResult, ToolError> {
    let failed = |message: String| ToolError::Failed {
        tool: tool.to_owned(),
        message,
    };
    let nothing = |meta| {
        let mut result = CallToolResult::default();
        result.meta = meta;
        Ok(result)
    };
    let foreign = match answer {
        ServerResult::CallToolResult(result) => return Ok(result),
        ServerResult::EmptyResult(_) => return nothing(None),
        // `resultType: "complete"` and nothing else (rmcp reads that as a task ack).
        ServerResult::TaskAckResult(ack) => return nothing(ack.meta),
        ServerResult::CustomResult(custom) => {
            if let Some(object) = custom.0.as_object() {
                let complete = object.keys().all(|k| k == "_meta" || k == "resultType")
                    && object.get("resultType").is_none_or(|t| t == "complete");
                if complete {
                    let meta = object
                        .get("_meta")
                        .and_then(|m| serde_json::from_value(m.clone()).ok());
                    return nothing(meta);
                }
                if object.contains_key("task")
                    || object.get("resultType").is_some_and(|t| t == "task")
                {
                    return Err(failed(
                        "the server answered with a task to poll; this client does not \
                         support tasks, so the call's result is not available"
                            .to_owned(),
                    ));
                }
            }
            custom.0
        }
        other => serde_json::to_value(&other).unwrap_or_default(),
    };
    Err(failed(format!(
        "the server's answer is not a tool result: {}",
        super::truncate_text(foreign.to_string(), 200)
    )))
}

/// Structured content as data; text content as `str`; a tool error as [`ToolError`].
fn convert_result(tool: &str, result: CallToolResult, wrapped: bool) -> Result<Value, ToolError> {
    let blocks: Vec<Value> = result
        .content
        .iter()
        .filter_map(|b| serde_json::to_value(b).ok())
        .collect();
    let texts: Vec<&str> = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    if result.is_error == Some(true) {
        let message = if texts.is_empty() {
            "the tool reported an error without a message".to_owned()
        } else {
            texts.join("\n")
        };
        return Err(ToolError::Failed {
            tool: tool.to_owned(),
            message: super::truncate_text(message, MAX_TOOL_OUTPUT),
        });
    }
    if let Some(mut structured) = result.structured_content {
        if wrapped && let Some(inner) = structured.as_object_mut().and_then(|o| o.remove("result"))
        {
            structured = inner;
        }
        return Ok(cap_value(structured, MAX_TOOL_OUTPUT));
    }
    let value = if texts.len() == blocks.len() {
        Value::String(texts.join("\n"))
    } else {
        Value::Array(blocks)
    };
    Ok(cap_value(value, MAX_TOOL_OUTPUT))
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    fn answer(wire: &str) -> Result<Value, ToolError> {
        let answer: ServerResult = serde_json::from_str(wire).unwrap();
        tool_result("srv.t", answer).and_then(|r| convert_result("srv.t", r, false))
    }

    #[test]
    fn results_without_content_are_a_tool_that_returned_nothing() {
        for wire in [
            "{}",
            r#"{"_meta": {"progressToken": 1}}"#,
            r#"{"resultType": "complete"}"#,
            r#"{"_meta": {"k": "v"}, "resultType": "complete"}"#,
        ] {
            assert_eq!(answer(wire).unwrap(), json!(""), "{wire}");
        }
        assert_eq!(
            answer(r#"{"content": [{"type": "text", "text": "hi"}]}"#).unwrap(),
            json!("hi")
        );
    }

    #[test]
    fn a_task_or_a_foreign_answer_is_a_clear_tool_error() {
        let task = answer(r#"{"resultType": "task", "task": {"taskId": "t1"}}"#).unwrap_err();
        assert!(
            task.to_string().contains("does not support tasks"),
            "{task}"
        );
        let foreign = answer(r#"{"tools": []}"#).unwrap_err();
        assert!(
            foreign.to_string().contains("not a tool result"),
            "{foreign}"
        );
    }

    #[test]
    fn parameters_come_from_the_input_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "timezone": {"type": "string", "description": "IANA name"},
                "limit": {"type": ["integer", "null"], "default": 3},
                "mode": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Mode"}
            },
            "required": ["timezone"]
        });
        let tool = Tool::new(
            "get_current_time",
            "Current time",
            Arc::new(schema.as_object().cloned().unwrap_or_default()),
        );
        let info = callable_info(&tool, false);
        assert_eq!(info.name, "get_current_time");
        assert_eq!(info.description, "Current time");
        assert_eq!(
            callable_info(&tool, true).description,
            format!("{NEEDS_TASKS} Current time")
        );
        assert_eq!(
            info.parameters
                .iter()
                .map(|p| (
                    p.name.as_str(),
                    p.ty.as_str(),
                    p.required,
                    p.description.as_str()
                ))
                .collect::<Vec<_>>(),
            [
                ("timezone", "string", true, "IANA name"),
                ("limit", "integer", false, ""),
                ("mode", "string", false, "Mode"),
            ]
        );
        assert_eq!(info.parameters[1].default, Some(json!(3)));
    }

    #[test]
    fn transport_is_inferred_and_checked() {
        let spec = |yaml: &str| -> McpSpec {
            yaml_serde::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
        };
        let stdio = McpTool::new(spec("name: t\ntype: mcp\ncommand: srv\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stdio.server.transport, McpTransport::Stdio);
        let http = McpTool::new(spec("name: t\ntype: mcp\nurl: http://x/mcp\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(http.server.transport, McpTransport::StreamableHttp);
        let err = McpTool::new(spec("name: t\ntype: mcp\ntransport: sse\n")).unwrap_err();
        assert_eq!(
            err,
            "`transport: sse` and `transport: streamable-http` need `url`"
        );
    }
}
