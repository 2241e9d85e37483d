//! `serve --http`: the MCP server on streamable HTTP, for many clients.
//!
//! Each MCP session (created by `initialize`) gets its own [`Session`] and so
//! its own worker and variables; the library (storage, search model) is
//! shared. Sessions end on `DELETE`, after `--session-idle-timeout`, or at
//! shutdown, which first lets the runs in flight finish (`--shutdown-grace`).
//!
//! In front of rmcp's transport sit, in order: `/healthz`, the bearer token,
//! the shutdown gate (new requests refused while draining) and the in-flight
//! count. rmcp itself checks `Host` and `Origin` (DNS rebinding) and bounds
//! the body size.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use clap::Args;
use futures::StreamExt as _;
use py_code_mode::{Searcher, Session, Storage};
#[expect(
    deprecated,
    reason = "logging is in the 2025-11-25 revision clients speak today"
)]
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResponse, InitializeRequestParams, InitializeResult,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerConfig,
    SetLevelRequestParams, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::transport::common::server_side_http::SessionId;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::config::{Cli, Command, LibraryArgs};
use crate::env_vars;
use crate::server::CodeModeServer;

/// The path MCP is served on.
pub const MCP_PATH: &str = "/mcp";
/// A token shorter than this is guessable: refused at start.
pub const MIN_TOKEN_CHARS: usize = 16;
/// The most sessions `--max-sessions` may allow: each holds a Python worker.
pub const MAX_SESSIONS_LIMIT: u64 = 10_000;
/// The largest request body `--max-request-size` may allow: a body is held whole in memory.
pub const MAX_REQUEST_SIZE_LIMIT: u64 = 256 * 1024 * 1024;
/// How long closing the sessions may take once the server stopped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long the HTTP connections get to finish once every session is closed.
const CONNECTIONS_GRACE: Duration = Duration::from_secs(5);

/// Options of `serve`. Without `--http` it serves stdio and ignores the rest.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve streamable HTTP on this address (`127.0.0.1:8080`) at `/mcp`, instead of stdio
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// A file holding the bearer token clients must send (its first line); or set
    /// `PY_CODE_MODE_TOKEN`. Required when `--http` is not a loopback address
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Close a session (and stop its worker) after this many seconds without a request
    #[arg(long, default_value = "900", value_parser = parse_secs, value_name = "SECS")]
    pub session_idle_timeout: Duration,
    /// The most MCP sessions at once; `initialize` past it is refused
    #[arg(long, default_value = "100", value_parser = parse_max_sessions, value_name = "N")]
    pub max_sessions: usize,
    /// On SIGTERM/SIGINT, how long runs in flight may take to finish before they are stopped
    #[arg(long, default_value = "30", value_parser = parse_secs, value_name = "SECS")]
    pub shutdown_grace: Duration,
    /// The largest request body (`4m`, `512k`)
    #[arg(long, default_value = "4m", value_parser = parse_size, value_name = "SIZE")]
    pub max_request_size: usize,
    /// A `Host` header to accept besides `localhost`, `127.0.0.1`, `::1` and the bound
    /// address (`mcp.example.com`, `mcp.example.com:8443`); repeatable
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// A browser `Origin` to accept besides this machine's (`http://localhost:*`),
    /// e.g. `https://app.example.com:443`; repeatable. Requests with any other `Origin`
    /// get 403; requests without one pass
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
}

impl ServeArgs {
    /// The options of a plain `serve` (stdio).
    pub fn stdio() -> Self {
        Self {
            http: None,
            token_file: None,
            session_idle_timeout: Duration::from_mins(15),
            max_sessions: 100,
            shutdown_grace: Duration::from_secs(30),
            max_request_size: 4 * 1024 * 1024,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

fn parse_secs(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("must be a number of seconds, not `{text}`"))?;
    py_code_mode::timeout_secs("seconds", seconds).map_err(|e| e.to_string())
}

fn parse_max_sessions(text: &str) -> Result<usize, String> {
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`--max-sessions` must be a whole number, not `{text}`"))?;
    let n = py_code_mode::count("--max-sessions", n, 1, MAX_SESSIONS_LIMIT)
        .map_err(|e| e.to_string())?;
    usize::try_from(n).map_err(|e| e.to_string())
}

fn parse_size(text: &str) -> Result<usize, String> {
    let n = py_code_mode::size_bytes("--max-request-size", text, 1024, MAX_REQUEST_SIZE_LIMIT)
        .map_err(|e| e.to_string())?;
    usize::try_from(n).map_err(|e| e.to_string())
}

/// The bearer token of `--token-file` or `PY_CODE_MODE_TOKEN`, if any.
fn load_token(args: &ServeArgs) -> anyhow::Result<Option<String>> {
    let token = if let Some(file) = &args.token_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the token file `{}`", file.display()))?;
        text.lines().next().unwrap_or_default().trim().to_owned()
    } else {
        match std::env::var(env_vars::PY_CODE_MODE_TOKEN) {
            Ok(token) => token.trim().to_owned(),
            Err(_) => return Ok(None),
        }
    };
    if token.chars().count() < MIN_TOKEN_CHARS {
        bail!(
            "the bearer token is shorter than {MIN_TOKEN_CHARS} characters\n\
             hint: make one with `head -c 32 /dev/urandom | base64`"
        );
    }
    Ok(Some(token))
}

/// Compares in time independent of where `given` differs from `expected`:
/// both are hashed first, so neither content nor length leaks through timing.
fn token_matches(given: &[u8], expected_digest: &[u8; 32]) -> bool {
    let digest: [u8; 32] = Sha256::digest(given).into();
    digest
        .iter()
        .zip(expected_digest)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// What every MCP session of one server shares.
struct Shared {
    library: Arc<LibraryArgs>,
    storage: Arc<dyn Storage>,
    searcher: Arc<dyn Searcher>,
    /// A session built ahead with its worker started, so `initialize` is quick.
    spare: tokio::sync::Mutex<Option<Arc<Session>>>,
    /// Live sessions by number, so shutdown can close those still open.
    live: Mutex<HashMap<u64, Arc<Session>>>,
    next_id: AtomicU64,
    /// Sessions counted against `--max-sessions` (reserved on `initialize`).
    count: AtomicUsize,
    max_sessions: usize,
    /// Cancelled after the drain: runs still going stop.
    stop_runs: CancellationToken,
}

impl Shared {
    /// Opens the library once for every session, and builds the first spare
    /// session now: a library or executor that cannot work fails the start
    /// rather than every `initialize`.
    async fn open(
        library: LibraryArgs,
        max_sessions: usize,
        stop_runs: CancellationToken,
    ) -> anyhow::Result<Arc<Self>> {
        let storage = library.storage().await?;
        let searcher: Arc<dyn Searcher> = match library.hybrid_searcher(&storage) {
            Some(hybrid) => hybrid,
            None => Arc::new(py_code_mode::LexicalSearcher),
        };
        let shared = Arc::new(Self {
            library: Arc::new(library),
            storage,
            searcher,
            spare: tokio::sync::Mutex::new(None),
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            count: AtomicUsize::new(0),
            max_sessions,
            stop_runs,
        });
        let first = shared.build_session().await?;
        for error in first.host().tools().load_errors() {
            tracing::warn!("{error}");
        }
        *shared.spare.lock().await = Some(first);
        Ok(shared)
    }

    /// Closes every session still open, and the spare.
    async fn close_all(&self) {
        let mut open: Vec<Arc<Session>> = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, s)| s)
            .collect();
        open.extend(self.spare.lock().await.take());
        let closing = futures::future::join_all(open.iter().map(|s| s.close()));
        if tokio::time::timeout(CLOSE_GRACE, closing).await.is_err() {
            tracing::warn!("closing the sessions took over {}s", CLOSE_GRACE.as_secs());
        }
    }

    async fn build_session(&self) -> anyhow::Result<Arc<Session>> {
        let session = self
            .library
            .session_with(Arc::clone(&self.storage), Arc::clone(&self.searcher))
            .await?;
        let session = Arc::new(session);
        session.start().await?;
        Ok(session)
    }

    /// The spare session if there is one (then a new spare is built in the
    /// background), else a new one.
    async fn take_session(self: &Arc<Self>) -> anyhow::Result<Arc<Session>> {
        let spare = self.spare.lock().await.take();
        if let Some(session) = spare {
            let shared = Arc::clone(self);
            tokio::spawn(async move { shared.refill().await });
            return Ok(session);
        }
        self.build_session().await
    }

    async fn refill(&self) {
        let mut spare = self.spare.lock().await;
        if spare.is_some() || self.stop_runs.is_cancelled() {
            return;
        }
        match self.build_session().await {
            Ok(session) => *spare = Some(session),
            Err(e) => tracing::warn!("cannot prepare a spare session: {e:#}"),
        }
    }

    /// Reserves a place for one session, or says why there is none.
    fn reserve(&self) -> Result<(), ErrorData> {
        self.count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max_sessions).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|_| {
                ErrorData::internal_error(
                    format!(
                        "too many sessions: this server holds at most {} (`--max-sessions`)\n\
                         hint: close idle sessions (HTTP `DELETE` on the session) or raise `--max-sessions`",
                        self.max_sessions
                    ),
                    None,
                )
            })
    }

    fn release(&self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One MCP session: empty until `initialize`, which reserves a place and
/// takes a session (a worker) for it. rmcp also makes throwaway instances to
/// look up tool schemas, so making one must cost nothing.
struct HttpSession {
    shared: Arc<Shared>,
    inner: OnceCell<(u64, CodeModeServer)>,
}

impl Drop for HttpSession {
    fn drop(&mut self) {
        let Some((id, _)) = self.inner.get() else {
            return;
        };
        let session = self
            .shared
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        self.shared.release();
        if let Some(session) = session {
            tracing::info!("session {id} closed");
            tokio::spawn(async move { session.close().await });
        }
    }
}

impl HttpSession {
    fn inner(&self) -> Result<&CodeModeServer, ErrorData> {
        self.inner.get().map(|(_, server)| server).ok_or_else(|| {
            ErrorData::invalid_request(
                "the session is not initialized: send `initialize` first",
                None,
            )
        })
    }
}

impl ServerHandler for HttpSession {
    fn get_info(&self) -> ServerConfig {
        crate::server::server_info()
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        if self.inner.initialized() {
            return Err(ErrorData::invalid_request(
                "the session is already initialized",
                None,
            ));
        }
        self.shared.reserve()?;
        let session = match self.shared.take_session().await {
            Ok(session) => session,
            Err(e) => {
                self.shared.release();
                return Err(ErrorData::internal_error(format!("{e:#}"), None));
            }
        };
        let id = self.shared.next_id.fetch_add(1, Ordering::SeqCst);
        self.shared
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&session));
        let server = CodeModeServer::with_shutdown(session, self.shared.stop_runs.child_token());
        if self.inner.set((id, server)).is_err() {
            self.shared.release();
            return Err(ErrorData::invalid_request(
                "the session is already initialized",
                None,
            ));
        }
        tracing::info!("session {id} opened");
        self.inner()?.initialize(request, context).await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.inner()?.complete(request, context).await
    }

    #[expect(
        deprecated,
        reason = "logging is in the 2025-11-25 revision clients speak today"
    )]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.inner()?.set_level(request, context).await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.inner()?.get_prompt(request, context).await
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.inner()?.list_prompts(request, context).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.inner()?.list_resources(request, context).await
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.inner()?
            .list_resource_templates(request, context)
            .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.inner()?.read_resource(request, context).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.inner()?.call_tool(request, context).await
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.inner()?.list_tools(request, context).await
    }

    /// rmcp asks a throwaway instance for a tool's schema (to check
    /// `Mcp-Param-*` headers, which our clients do not send): none is given.
    fn get_tool(&self, _name: &str) -> Option<Tool> {
        None
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Ok(inner) = self.inner() {
            inner.on_initialized(context).await;
        }
    }
}

/// Counts requests whose response is still being written; a run in flight
/// is one (its result comes on the response's stream).
#[derive(Default)]
struct Drain {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
}

struct InFlight(Arc<Drain>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// When each session was last busy, and how many of its requests are in
/// flight: a session is idle only with none, so a long run is never reaped.
#[derive(Default)]
struct Activity {
    sessions: Mutex<HashMap<String, (std::time::Instant, usize)>>,
}

/// One request of a session, counted while its response is being written.
struct Busy(Arc<Activity>, String);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut sessions = self
            .0
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((last, busy)) = sessions.get_mut(&self.1) {
            *busy = busy.saturating_sub(1);
            *last = std::time::Instant::now();
        }
    }
}

impl Activity {
    fn begin(self: &Arc<Self>, id: &str) -> Busy {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = sessions
            .entry(id.to_owned())
            .or_insert((std::time::Instant::now(), 0));
        entry.0 = std::time::Instant::now();
        entry.1 += 1;
        Busy(Arc::clone(self), id.to_owned())
    }

    fn opened(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), (std::time::Instant::now(), 0));
    }

    /// Forgets and returns the sessions idle for over `timeout`.
    fn take_idle(&self, timeout: Duration) -> Vec<String> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let idle: Vec<String> = sessions
            .iter()
            .filter(|(_, (last, busy))| *busy == 0 && last.elapsed() > timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &idle {
            sessions.remove(id);
        }
        idle
    }
}

/// Closes sessions idle past `timeout`, checking a few times per timeout.
fn reap_idle_sessions(
    activity: Arc<Activity>,
    manager: Arc<LocalSessionManager>,
    timeout: Duration,
    stop: CancellationToken,
) {
    let every = (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stop.cancelled() => return,
            }
            for id in activity.take_idle(timeout) {
                tracing::info!(
                    "session {id} idle for over {}s: closing it",
                    timeout.as_secs_f64()
                );
                let _ = rmcp::transport::streamable_http_server::SessionManager::close_session(
                    manager.as_ref(),
                    &SessionId::from(id.as_str()),
                )
                .await;
            }
        }
    });
}

impl Drain {
    /// Waits until no request is in flight, or `grace` passed (then `false`).
    async fn settle(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, async {
            loop {
                let idle = self.idle.notified();
                if self.in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await
        .is_ok()
    }
}

#[derive(Clone)]
struct Gate {
    token_digest: Option<[u8; 32]>,
    drain: Arc<Drain>,
    activity: Arc<Activity>,
    max_request_size: usize,
}

/// A JSON-RPC error without an id, as HTTP `status`.
fn jsonrpc_error(status: StatusCode, code: i32, message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code, "message": message },
    });
    (status, axum::Json(body)).into_response()
}

/// A POST body that is not JSON gets a JSON-RPC parse error (-32700), as on
/// stdio; one that is JSON but not a message rmcp knows, invalid request
/// (-32600). rmcp alone answers both with a bare 415.
async fn check_json(request: Request, limit: usize, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request is larger than {limit} bytes (`--max-request-size`)"),
        );
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32700,
            &format!("Parse error: {e}"),
        );
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if response.status() != StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return response;
    }
    let detail = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    jsonrpc_error(
        StatusCode::BAD_REQUEST,
        -32600,
        &format!("Invalid Request: {detail}"),
    )
}

fn plain(status: StatusCode, message: &str) -> Response {
    let mut response = (status, format!("{message}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"py-code-mode\""),
        );
    }
    response
}

/// The bearer token, then the shutdown gate, then the in-flight count.
async fn gate(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    if let Some(expected) = &gate.token_digest {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        if !given.is_some_and(|given| token_matches(given, expected)) {
            return plain(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required (`Authorization: Bearer <token>`)",
            );
        }
    }
    if gate.drain.draining.load(Ordering::SeqCst) {
        let mut response = plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        );
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let session = request
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // A GET is the standing stream of server messages, open for the whole
    // session: not a request to wait for.
    if request.method() == axum::http::Method::GET {
        if let Some(id) = &session {
            drop(gate.activity.begin(id));
        }
        return next.run(request).await;
    }
    if request.method() == axum::http::Method::DELETE {
        // rmcp answers a closed session 202; clients (the Python SDK) expect 200.
        let mut response = next.run(request).await;
        if response.status() == StatusCode::ACCEPTED {
            *response.status_mut() = StatusCode::OK;
        }
        return response;
    }
    gate.drain.in_flight.fetch_add(1, Ordering::SeqCst);
    let guard = InFlight(Arc::clone(&gate.drain));
    let busy = session.as_deref().map(|id| gate.activity.begin(id));
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let response = if request.method() == axum::http::Method::POST && json {
        check_json(request, gate.max_request_size, next).await
    } else {
        next.run(request).await
    };
    if session.is_none()
        && let Some(id) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
    {
        gate.activity.opened(id);
    }
    let (parts, body) = response.into_parts();
    // The guards live as long as the body: a streamed result counts until sent.
    let body = body.into_data_stream().map(move |frame| {
        let _ = (&guard, &busy);
        frame
    });
    Response::from_parts(parts, Body::from_stream(body))
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"ok\"}\n",
    )
}

/// `Host` values accepted: loopback names, the bound address, `--allowed-host`.
fn allowed_hosts(addr: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(String::from)
        .collect();
    if !addr.ip().is_unspecified() {
        hosts.push(addr.ip().to_string());
    }
    hosts.extend(extra.iter().cloned());
    hosts
}

/// `Origin` values accepted: pages served from this machine (any port), as a
/// local browser client is; `--allowed-origin`. A rebound name (`evil.example`
/// resolving to 127.0.0.1) still sends its own origin and is refused.
fn allowed_origins(extra: &[String]) -> Vec<String> {
    let mut origins: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .into_iter()
        .flat_map(|host| [format!("http://{host}:*"), format!("https://{host}:*")])
        .collect();
    origins.extend(extra.iter().cloned());
    origins
}

/// rmcp's transport: `Host` and `Origin` checks, the body limit, keep-alives.
fn transport_config(
    addr: SocketAddr,
    args: &ServeArgs,
    transport_stop: CancellationToken,
) -> StreamableHttpServerConfig {
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts(addr, &args.allowed_hosts))
        .with_allowed_origins(allowed_origins(&args.allowed_origins))
        .enforce_origin_validation()
        .with_max_request_body_bytes(args.max_request_size)
        .with_cancellation_token(transport_stop);
    config.sse_keep_alive = Some(Duration::from_secs(15));
    config
}

/// Serves MCP on streamable HTTP until `stop` is cancelled, then refuses new
/// requests, lets runs in flight finish (up to `--shutdown-grace`), stops the
/// rest and closes every session.
pub async fn serve(cli: Cli, stop: &CancellationToken) -> anyhow::Result<ExitCode> {
    let Cli { library, command } = cli;
    let Some(Command::Serve(args)) = command else {
        bail!("`serve` without `--http` serves stdio");
    };
    let Some(addr) = args.http else {
        bail!("`serve` without `--http` serves stdio");
    };
    let token = load_token(&args)?;
    if token.is_none() && !addr.ip().is_loopback() {
        bail!(
            "serving on `{addr}` (not a loopback address) needs a bearer token\n\
             hint: `--token-file FILE` or set `{}`; or serve on `127.0.0.1`",
            env_vars::PY_CODE_MODE_TOKEN
        );
    }
    let stop_runs = CancellationToken::new();
    let shared = Shared::open(library, args.max_sessions, stop_runs.clone()).await?;
    let transport_stop = CancellationToken::new();
    let config = transport_config(addr, &args, transport_stop.clone());
    let mut sessions = LocalSessionManager::default();
    // Idle sessions are reaped by `reap_idle_sessions`, which, unlike rmcp's
    // timer, knows a session with a run in flight is not idle.
    sessions.session_config.keep_alive = None;
    let sessions = Arc::new(sessions);
    let activity = Arc::new(Activity::default());
    reap_idle_sessions(
        Arc::clone(&activity),
        Arc::clone(&sessions),
        args.session_idle_timeout,
        transport_stop.clone(),
    );
    let factory_shared = Arc::clone(&shared);
    let mcp = StreamableHttpService::new(
        move || {
            Ok(HttpSession {
                shared: Arc::clone(&factory_shared),
                inner: OnceCell::new(),
            })
        },
        sessions,
        config,
    );
    let drain = Arc::new(Drain::default());
    let gate_state = Gate {
        token_digest: token.map(|t| Sha256::digest(t.as_bytes()).into()),
        drain: Arc::clone(&drain),
        activity,
        max_request_size: args.max_request_size,
    };
    let app = Router::new()
        .route_service(MCP_PATH, mcp)
        .layer(middleware::from_fn_with_state(gate_state, gate))
        .route("/healthz", get(healthz));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on `{addr}`"))?;
    let bound = listener.local_addr()?;
    #[expect(clippy::print_stderr, reason = "the address clients connect to")]
    {
        eprintln!("py-code-mode: serving MCP on http://{bound}{MCP_PATH}");
    }
    // No Nagle: a streamed reply is written in small pieces (headers, the
    // priming event, the result), and Nagle would hold the last one until the
    // client's delayed ACK, 40 ms later.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    let server = axum::serve(listener, app)
        .with_graceful_shutdown({
            let stop = stop.clone();
            async move { stop.cancelled().await }
        })
        .into_future();
    let mut server = tokio::spawn(server);
    tokio::select! {
        outcome = &mut server => {
            outcome.context("the HTTP server failed")?.context("the HTTP server failed")?;
        }
        () = stop.cancelled() => {
            drain.draining.store(true, Ordering::SeqCst);
            if !drain.settle(args.shutdown_grace).await {
                tracing::warn!(
                    "runs still going after {}s (`--shutdown-grace`): stopping them",
                    args.shutdown_grace.as_secs_f64()
                );
            }
            stop_runs.cancel();
            transport_stop.cancel();
            if tokio::time::timeout(CONNECTIONS_GRACE, &mut server).await.is_err() {
                server.abort();
            }
        }
    }
    stop_runs.cancel();
    transport_stop.cancel();
    shared.close_all().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_digest() {
        let expected: [u8; 32] = Sha256::digest(b"0123456789abcdef").into();
        assert!(token_matches(b"0123456789abcdef", &expected));
        assert!(!token_matches(b"0123456789abcdeg", &expected));
        assert!(!token_matches(b"", &expected));
        assert!(!token_matches(b"0123456789abcdef0", &expected));
    }

    #[test]
    fn options_are_bounded() {
        assert!(parse_max_sessions("0").is_err());
        assert_eq!(parse_max_sessions("100"), Ok(100));
        assert!(parse_secs("-1").is_err());
        assert!(parse_size("1").is_err());
        assert_eq!(parse_size("4m"), Ok(4 * 1024 * 1024));
    }
}
