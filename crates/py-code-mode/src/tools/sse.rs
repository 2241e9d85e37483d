//! A client transport for MCP's legacy HTTP+SSE transport (protocol 2024-11-05).
//!
//! rmcp dropped its SSE client, but many deployed servers (and the seed's
//! `transport: sse` tools) still speak it: the client opens a `GET` event stream,
//! the server's first event (`endpoint`) names the URL to `POST` JSON-RPC messages
//! to, and every reply arrives as a `message` event on the stream. The
//! endpoint must be on the stream's own origin: the configured headers, often
//! a token, are never sent anywhere else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt as _;
use reqwest::header::{ACCEPT, HeaderMap};
use reqwest::{Client, Url};
use rmcp::RoleClient;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use sse_stream::SseStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::task_tap::TaskTap;

/// Messages buffered between the event stream and the MCP service loop.
const INBOX: usize = 64;
/// Largest event read from the stream: a tool list or result is far smaller,
/// and the SSE parser buffers an event whole.
const MAX_EVENT: usize = 16 * 1024 * 1024;

/// Failures of the SSE transport.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("HTTP request to `{url}` failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("`{url}` answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("`{url}` closed the event stream before sending its `endpoint` event")]
    NoEndpoint { url: String },
    #[error("`{url}` sent an event larger than {MAX_EVENT} bytes")]
    EventTooLarge { url: String },
    #[error("bad `endpoint` event `{endpoint}`: {message}")]
    BadEndpoint { endpoint: String, message: String },
    #[error(
        "the `endpoint` event of `{url}` points at another origin (`{endpoint}`); refusing to send requests and headers there\nhint: the server must take its messages on the origin of its event stream"
    )]
    ForeignEndpoint { url: String, endpoint: String },
}

/// An open SSE session with one server.
pub struct SseTransport {
    client: Client,
    headers: HeaderMap,
    endpoint: Arc<Url>,
    inbox: mpsc::Receiver<RxJsonRpcMessage<RoleClient>>,
    reader: JoinHandle<()>,
}

impl SseTransport {
    /// Opens the event stream at `url` and waits for the server's `endpoint` event.
    /// The server's messages pass the tap on their way to rmcp.
    pub(crate) async fn connect(
        client: Client,
        url: &str,
        headers: HeaderMap,
        tap: Arc<TaskTap>,
    ) -> Result<Self, SseError> {
        let http = |source| SseError::Http {
            url: url.to_owned(),
            source,
        };
        let base = Url::parse(url).map_err(|e| SseError::BadEndpoint {
            endpoint: url.to_owned(),
            message: e.to_string(),
        })?;
        let response = client
            .get(base.clone())
            .headers(headers.clone())
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(http)?;
        if !response.status().is_success() {
            return Err(SseError::Status {
                url: url.to_owned(),
                status: response.status(),
            });
        }
        let too_large = Arc::new(AtomicBool::new(false));
        let mut events = Box::pin(SseStream::from_bytes_stream(bounded_events(
            response.bytes_stream(),
            Arc::clone(&too_large),
        )));
        let endpoint = loop {
            match events.next().await {
                Some(Ok(event)) if event.event.as_deref() == Some("endpoint") => {
                    let data = event.data.unwrap_or_default();
                    let endpoint = base.join(data.trim()).map_err(|e| SseError::BadEndpoint {
                        endpoint: data.clone(),
                        message: e.to_string(),
                    })?;
                    // The configured headers (tokens) go with every POST: only
                    // to the scheme, host and port the stream came from.
                    if endpoint.origin() != base.origin() {
                        return Err(SseError::ForeignEndpoint {
                            url: url.to_owned(),
                            endpoint: endpoint.to_string(),
                        });
                    }
                    break endpoint;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None if too_large.load(Ordering::Relaxed) => {
                    return Err(SseError::EventTooLarge {
                        url: url.to_owned(),
                    });
                }
                Some(Err(_)) | None => {
                    return Err(SseError::NoEndpoint {
                        url: url.to_owned(),
                    });
                }
            }
        };
        let (tx, inbox) = mpsc::channel(INBOX);
        let reader = tokio::spawn(async move {
            while let Some(Ok(event)) = events.next().await {
                if !matches!(event.event.as_deref(), None | Some("message")) {
                    continue;
                }
                let Some(data) = event.data else { continue };
                tap.scan(data.as_bytes());
                match serde_json::from_str::<RxJsonRpcMessage<RoleClient>>(&data) {
                    Ok(message) => {
                        if tx.send(message).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!("ignoring a malformed SSE message: {e}"),
                }
            }
            // Dropping `tx` ends `receive`, which tells the MCP service the server is gone.
        });
        Ok(Self {
            client,
            headers,
            endpoint: Arc::new(endpoint),
            inbox,
            reader,
        })
    }
}

/// The byte stream, ended with an error (and `too_large` set) once one event
/// (the bytes since the last blank line) exceeds [`MAX_EVENT`].
fn bounded_events<D, E>(
    bytes: impl futures::Stream<Item = Result<D, E>> + Send + 'static,
    too_large: Arc<AtomicBool>,
) -> impl futures::Stream<Item = Result<D, std::io::Error>> + Send + 'static
where
    D: AsRef<[u8]> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut in_event: usize = 0;
    let mut after_newline = false;
    let mut failed = false;
    bytes
        .map(move |chunk| {
            let chunk = chunk.map_err(std::io::Error::other)?;
            for &b in chunk.as_ref() {
                match b {
                    b'\r' => {}
                    b'\n' if after_newline => in_event = 0,
                    b'\n' => after_newline = true,
                    _ => {
                        after_newline = false;
                        in_event += 1;
                    }
                }
                if in_event > MAX_EVENT {
                    too_large.store(true, Ordering::Relaxed);
                    return Err(std::io::Error::other("event too large"));
                }
            }
            Ok(chunk)
        })
        // Nothing after the first error: the parser must not buffer more.
        .take_while(move |item| {
            let keep = !failed;
            failed |= item.is_err();
            std::future::ready(keep)
        })
}

impl Drop for SseTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseError;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let client = self.client.clone();
        let headers = self.headers.clone();
        let endpoint = Arc::clone(&self.endpoint);
        async move {
            let url = endpoint.as_str().to_owned();
            let response = client
                .post(endpoint.as_ref().clone())
                .headers(headers)
                .json(&item)
                .send()
                .await
                .map_err(|source| SseError::Http {
                    url: url.clone(),
                    source,
                })?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(SseError::Status {
                    url,
                    status: response.status(),
                })
            }
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        self.inbox.recv()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.reader.abort();
        self.inbox.close();
        std::future::ready(Ok(()))
    }
}
