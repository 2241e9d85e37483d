//! Which of an MCP server's tools need tasks, read from its `tools/list`
//! answers as they arrive on the wire.
//!
//! A tool listed with `execution: {taskSupport: "required"}` can only be run
//! as an MCP task, which this client does not run. rmcp's `Tool` has no
//! `execution` field, so the text of the answer is looked at before rmcp
//! parses it: each transport hands the tap the server's messages while a
//! listing is in flight (a flag, so the rest of the traffic costs nothing).

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest};
use rmcp::transport::common::http_header::HEADER_SESSION_ID;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use serde_json::Value;
use sse_stream::Sse;
use tokio::io::{AsyncRead, ReadBuf};

/// A line longer than this is not looked at (a listing that large is not
/// scanned; its tools are called and the server answers for them).
const MAX_SCANNED_LINE: usize = 16 << 20;

/// How long asking for a listing again may take (it only decides a mark).
const SCAN_TIMEOUT: Duration = Duration::from_secs(10);

/// The names of the tools that need tasks, as the latest listing said.
#[derive(Debug, Default)]
pub(crate) struct TaskTap {
    listing: AtomicBool,
    needs_tasks: Mutex<HashSet<String>>,
}

impl TaskTap {
    /// A listing starts (what an earlier one said is forgotten) and lasts
    /// until the returned guard is dropped, also when it is abandoned.
    pub(crate) fn listing_scope(&self) -> ListingScope<'_> {
        self.set().clear();
        self.listing.store(true, Ordering::Release);
        ListingScope(self)
    }

    pub(crate) fn listing(&self) -> bool {
        self.listing.load(Ordering::Acquire)
    }

    /// Whether the server said `name` can only run as a task.
    pub(crate) fn needs_tasks(&self, name: &str) -> bool {
        self.set().contains(name)
    }

    /// One message from the server (a JSON-RPC message or a batch of them).
    pub(crate) fn scan(&self, message: &[u8]) {
        if !self.listing() || memchr::memmem::find(message, b"taskSupport").is_none() {
            return;
        }
        let Ok(value) = serde_json::from_slice::<Value>(message) else {
            return;
        };
        let messages = match &value {
            Value::Array(batch) => batch.iter().collect(),
            single => vec![single],
        };
        let mut set = self.set();
        for message in messages {
            let tools = message.pointer("/result/tools").and_then(Value::as_array);
            for tool in tools.into_iter().flatten() {
                let required = tool
                    .pointer("/execution/taskSupport")
                    .and_then(Value::as_str)
                    == Some("required");
                if let (true, Some(name)) = (required, tool.get("name").and_then(Value::as_str)) {
                    set.insert(name.to_owned());
                }
            }
        }
    }

    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.needs_tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// While it lives, the server's messages are scanned (see [`TaskTap::listing_scope`]).
pub(crate) struct ListingScope<'a>(&'a TaskTap);

impl Drop for ListingScope<'_> {
    fn drop(&mut self) {
        self.0.listing.store(false, Ordering::Release);
    }
}

/// A stdio server's output on its way to rmcp: each line goes to the tap
/// while a listing is in flight; the bytes pass unchanged.
pub(crate) struct TapReader<R> {
    inner: R,
    tap: Arc<TaskTap>,
    line: Vec<u8>,
    /// The current line is not kept (too long, or it began while no listing was in flight).
    skipping: bool,
}

impl<R> TapReader<R> {
    pub(crate) fn new(inner: R, tap: Arc<TaskTap>) -> Self {
        Self {
            inner,
            tap,
            line: Vec::new(),
            skipping: false,
        }
    }

    #[cfg(test)]
    fn feed(&mut self, bytes: &[u8]) {
        feed(&self.tap, &mut self.line, &mut self.skipping, bytes);
    }
}

/// Splits `bytes` into lines, keeping the current one in `line` while a
/// listing is in flight, and hands each whole kept line to the tap.
fn feed(tap: &TaskTap, line: &mut Vec<u8>, skipping: &mut bool, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let end = memchr::memchr(b'\n', bytes);
        let part = &bytes[..end.unwrap_or(bytes.len())];
        if line.is_empty() && !*skipping && !tap.listing() {
            *skipping = true;
        }
        if !*skipping {
            if line.len() + part.len() > MAX_SCANNED_LINE {
                *skipping = true;
                *line = Vec::new();
            } else {
                line.extend_from_slice(part);
            }
        }
        let Some(end) = end else { return };
        if !*skipping {
            tap.scan(line);
        }
        line.clear();
        *skipping = false;
        bytes = &bytes[end + 1..];
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for TapReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let TapReader {
            inner,
            tap,
            line,
            skipping,
        } = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            feed(tap, line, skipping, &buf.filled()[before..]);
        }
        polled
    }
}

/// The streamable HTTP client, with the tap on the answers to `tools/list`.
///
/// An answer streamed as server-sent events is looked at event by event on
/// its way to rmcp. One sent as plain JSON reaches us already parsed (and
/// `execution` dropped), so the listing is asked for once more, under an id
/// of its own, and that answer's text is scanned.
#[derive(Clone)]
pub(crate) struct TappedHttp {
    pub(crate) inner: reqwest::Client,
    pub(crate) tap: Arc<TaskTap>,
}

type Events = BoxStream<'static, Result<Sse, SseError>>;

fn lists_tools(message: &ClientJsonRpcMessage) -> bool {
    matches!(message, ClientJsonRpcMessage::Request(r) if matches!(r.request, ClientRequest::ListToolsRequest(_)))
}

impl TappedHttp {
    /// The same listing request under a fresh id; its answer's text to the tap.
    async fn scan_again(
        &self,
        uri: &str,
        message: &ClientJsonRpcMessage,
        session_id: Option<&str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) {
        static SCANS: AtomicU64 = AtomicU64::new(0);
        let Ok(mut body) = serde_json::to_value(message) else {
            return;
        };
        body["id"] = Value::from(format!(
            "py-code-mode-task-scan-{}",
            SCANS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut request = self
            .inner
            .post(uri)
            .header(ACCEPT, "application/json, text/event-stream")
            .timeout(SCAN_TIMEOUT)
            .json(&body);
        if let Some(auth) = auth_header {
            request = request.bearer_auth(auth);
        }
        for (name, value) in custom_headers {
            request = request.header(name, value);
        }
        if let Some(session_id) = session_id {
            request = request.header(HEADER_SESSION_ID, session_id);
        }
        let Ok(mut response) = request.send().await else {
            return;
        };
        let mut text = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            if text.len() + chunk.len() > MAX_SCANNED_LINE {
                return;
            }
            text.extend_from_slice(&chunk);
        }
        // JSON, or events whose `data:` lines each carry a message.
        self.tap.scan(&text);
        for line in text.split(|&b| b == b'\n') {
            if let Some(data) = line.strip_prefix(b"data:") {
                self.tap.scan(data);
            }
        }
    }
}

impl StreamableHttpClient for TappedHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            limits,
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let again = (self.tap.listing() && lists_tools(&message)).then(|| {
            (
                Arc::clone(&uri),
                message.clone(),
                auth_header.clone(),
                custom_headers.clone(),
            )
        });
        let response = self
            .inner
            .post_message_with_response_limits(
                uri,
                message,
                session_id.clone(),
                auth_header,
                custom_headers,
                limits,
            )
            .await?;
        let Some((uri, message, auth_header, custom_headers)) = again else {
            return Ok(response);
        };
        Ok(match response {
            StreamableHttpPostResponse::Sse(events, new_session) => {
                let tap = Arc::clone(&self.tap);
                let events: Events = events
                    .inspect(move |event| {
                        if let Ok(Sse {
                            data: Some(data), ..
                        }) = event
                        {
                            tap.scan(data.as_bytes());
                        }
                    })
                    .boxed();
                StreamableHttpPostResponse::Sse(events, new_session)
            }
            StreamableHttpPostResponse::Json(parsed, new_session) => {
                let session = new_session.as_deref().or(session_id.as_deref());
                self.scan_again(&uri, &message, session, auth_header, custom_headers)
                    .await;
                StreamableHttpPostResponse::Json(parsed, new_session)
            }
            other => other,
        })
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.inner
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<Events, StreamableHttpError<Self::Error>> {
        self.inner
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<Events, StreamableHttpError<Self::Error>> {
        self.inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"research","inputSchema":{"type":"object"},"execution":{"taskSupport":"required"}},{"name":"maybe","inputSchema":{"type":"object"},"execution":{"taskSupport":"optional"}},{"name":"echo","inputSchema":{"type":"object"}}]}}"#;

    #[test]
    fn a_listing_names_the_tools_that_need_tasks_and_nothing_else() {
        let tap = TaskTap::default();
        let listing = tap.listing_scope();
        tap.scan(LISTING.as_bytes());
        drop(listing);
        assert!(tap.needs_tasks("research"));
        assert!(!tap.needs_tasks("maybe"));
        assert!(!tap.needs_tasks("echo"));
        // After the listing nothing is read; the next one starts afresh.
        assert!(!tap.listing());
        let _listing = tap.listing_scope();
        assert!(!tap.needs_tasks("research"));
    }

    #[test]
    fn outside_a_listing_nothing_is_read() {
        let tap = TaskTap::default();
        tap.scan(LISTING.as_bytes());
        assert!(!tap.needs_tasks("research"));
    }

    #[test]
    fn the_reader_passes_bytes_unchanged_and_scans_lines_split_across_reads() {
        let tap = Arc::new(TaskTap::default());
        let _listing = tap.listing_scope();
        let mut reader = TapReader::new(tokio::io::empty(), Arc::clone(&tap));
        let wire =
            format!("{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}}\n{LISTING}\n");
        let (first, second) = wire.as_bytes().split_at(wire.len() / 2);
        reader.feed(first);
        assert!(!tap.needs_tasks("research"));
        reader.feed(second);
        assert!(tap.needs_tasks("research"));
    }
}
