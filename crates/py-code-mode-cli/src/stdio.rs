//! The MCP server's stdio transport: newline-delimited JSON-RPC with every
//! malformed frame answered, never dropped.
//!
//! rmcp's own stdio transport ignores a line that is not JSON (a truncated
//! message, invalid UTF-8, a lone surrogate, `NaN`, nesting past serde_json's
//! depth limit) and drops an oversized one, so a client that sent it waits for
//! a reply forever. This transport reads each line with a byte cap, parses it
//! with serde_json and answers what it cannot use with the JSON-RPC error reply:
//! `-32700 Parse error` for bytes that are not JSON, `-32600 Invalid Request`
//! for JSON that is not a JSON-RPC message (with the request's `id` when it has
//! a usable one, else `null`) and for a line over the cap. Valid messages go on
//! to rmcp unchanged. Every line out (rmcp's replies and these errors) is
//! written by one writer task, so lines never interleave.

use rmcp::RoleServer;
use rmcp::model::{ErrorCode, NumberOrString};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The longest message accepted, in bytes (the same bound rmcp and the
/// streamable HTTP client use): a peer that never sends a newline must not
/// grow the server without limit.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Lines waiting for the writer: enough to absorb a burst of replies; a client
/// that stops reading then slows the server down rather than growing it.
const OUTBOX_LINES: usize = 64;

/// UTF-8 byte order mark; RFC 8259 §8.1 lets a parser ignore a leading one.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A line that cannot be used: the JSON-RPC error it gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub id: Option<NumberOrString>,
    pub code: ErrorCode,
    pub message: String,
}

impl Rejection {
    /// The JSON-RPC error line; `"id": null` when the id could not be read,
    /// as JSON-RPC 2.0 requires.
    fn to_line(&self) -> Vec<u8> {
        let id = match &self.id {
            Some(NumberOrString::Number(n)) => Value::from(*n),
            Some(NumberOrString::String(s)) => Value::from(s.as_ref()),
            None => Value::Null,
        };
        let reply = serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": self.code.0, "message": self.message},
        });
        let mut line = reply.to_string().into_bytes();
        line.push(b'\n');
        line
    }
}

/// What one line of input is.
#[derive(Debug)]
pub enum Frame {
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// Answered with an error.
    Rejected(Rejection),
    /// Nothing to do: a blank line, or a notification rmcp does not know
    /// (JSON-RPC forbids replying to a notification).
    Ignored,
}

/// Parses one line (without its newline) into a message or the error it gets.
pub fn parse_line(line: &[u8]) -> Frame {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Frame::Ignored;
    }
    let error = match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(line) {
        Ok(message) => return Frame::Message(Box::new(message)),
        Err(error) => error,
    };
    match error.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            Frame::Rejected(Rejection {
                id: None,
                code: ErrorCode::PARSE_ERROR,
                message: format!("Parse error: {error}"),
            })
        }
        serde_json::error::Category::Data | serde_json::error::Category::Io => {
            // Valid JSON, so this second parse succeeds; it only looks for the id.
            let value: Value = serde_json::from_slice(line).unwrap_or_default();
            let is_notification =
                value.get("method").is_some_and(Value::is_string) && value.get("id").is_none();
            if is_notification {
                tracing::debug!("ignoring a notification rmcp cannot read: {error}");
                return Frame::Ignored;
            }
            Frame::Rejected(Rejection {
                id: value.get("id").and_then(request_id),
                code: ErrorCode::INVALID_REQUEST,
                message: format!("Invalid Request: {error}"),
            })
        }
    }
}

/// A JSON-RPC id we can echo: a string or an integer.
fn request_id(id: &Value) -> Option<NumberOrString> {
    match id {
        Value::String(s) => Some(NumberOrString::String(s.as_str().into())),
        Value::Number(n) => n.as_i64().map(NumberOrString::Number),
        _ => None,
    }
}

/// How a bounded line read ended.
enum LineRead {
    /// A whole line is in the buffer.
    Line,
    /// The line passed [`MAX_MESSAGE_BYTES`]; its bytes were dropped.
    Oversized,
    Eof,
    Io(std::io::Error),
}

/// The server side of MCP over a byte stream (stdin/stdout in the binary).
pub struct StdioTransport<R> {
    read: R,
    line: Vec<u8>,
    /// Skipping the rest of an oversized line; kept here because `receive` is
    /// polled in a `select!` and may be cancelled mid-line.
    discarding: bool,
    /// An error reply not yet handed to the writer (kept across a cancelled
    /// `receive`, so no rejection is lost).
    pending: Option<Vec<u8>>,
    outbox: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<tokio::task::JoinHandle<()>>,
    /// Cancelled when the client closes its side: the server stops its runs.
    client_gone: CancellationToken,
}

impl<R: tokio::io::AsyncRead + Unpin + Send> StdioTransport<BufReader<R>> {
    /// Reads requests from `read`, writes replies to `write` (from one task);
    /// `client_gone` is cancelled when `read` ends.
    pub fn new(
        read: R,
        write: impl AsyncWrite + Unpin + Send + 'static,
        client_gone: CancellationToken,
    ) -> Self {
        let (outbox, lines) = mpsc::channel(OUTBOX_LINES);
        let writer = tokio::spawn(write_lines(write, lines));
        Self {
            read: BufReader::new(read),
            line: Vec::new(),
            discarding: false,
            pending: None,
            outbox: Some(outbox),
            writer: Some(writer),
            client_gone,
        }
    }
}

/// The one writer: each line whole, flushed, in order.
async fn write_lines(mut write: impl AsyncWrite + Unpin, mut lines: mpsc::Receiver<Vec<u8>>) {
    while let Some(line) = lines.recv().await {
        if let Err(error) = write_line(&mut write, &line).await {
            tracing::debug!("stdout closed: {error}");
            break;
        }
    }
}

async fn write_line(write: &mut (impl AsyncWrite + Unpin), line: &[u8]) -> std::io::Result<()> {
    write.write_all(line).await?;
    write.flush().await
}

impl<R: AsyncBufRead + Unpin + Send> StdioTransport<R> {
    /// Reads one line into `self.line` without letting it pass the cap.
    /// Cancel-safe: bytes are consumed only after they are copied, so a
    /// cancelled read resumes where it stopped.
    async fn read_line(&mut self) -> LineRead {
        loop {
            let available = match self.read.fill_buf().await {
                Ok([]) => return LineRead::Eof,
                Ok(available) => available,
                Err(error) => return LineRead::Io(error),
            };
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.map_or(available.len(), |i| i + 1);
            let outcome = if self.discarding {
                if newline.is_some() {
                    self.discarding = false;
                }
                None
            } else if self.line.len().saturating_add(take) > MAX_MESSAGE_BYTES + 1 {
                // `+ 1`: the newline does not count against the message.
                self.line.clear();
                self.discarding = newline.is_none();
                Some(LineRead::Oversized)
            } else {
                self.line.extend_from_slice(&available[..take]);
                newline.map(|_| LineRead::Line)
            };
            self.read.consume(take);
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
    }

    /// Hands `pending` to the writer; false if the writer is gone.
    async fn flush_pending(&mut self) -> bool {
        let Some(line) = self.pending.take() else {
            return true;
        };
        let Some(outbox) = &self.outbox else {
            return false;
        };
        // `reserve` is cancel-safe: if we are cancelled here, `pending` is
        // restored below on the next call because we only take it once the
        // permit is ours.
        self.pending = Some(line);
        match outbox.reserve().await {
            Ok(permit) => {
                if let Some(line) = self.pending.take() {
                    permit.send(line);
                }
                true
            }
            Err(_) => false,
        }
    }

    fn reject(&mut self, rejection: &Rejection) {
        tracing::debug!(code = rejection.code.0, "{}", rejection.message);
        self.pending = Some(rejection.to_line());
    }
}

impl<R: AsyncBufRead + Unpin + Send> Transport<RoleServer> for StdioTransport<R> {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let outbox = self.outbox.clone();
        async move {
            let mut line = serde_json::to_vec(&item)?;
            line.push(b'\n');
            let closed = || std::io::Error::new(std::io::ErrorKind::NotConnected, "stdout closed");
            outbox
                .ok_or_else(closed)?
                .send(line)
                .await
                .map_err(|_| closed())
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if !self.flush_pending().await {
                self.client_gone.cancel();
                return None;
            }
            match self.read_line().await {
                LineRead::Line => {}
                LineRead::Oversized => {
                    self.reject(&Rejection {
                        id: None,
                        code: ErrorCode::INVALID_REQUEST,
                        message: format!(
                            "Invalid Request: the message is longer than {MAX_MESSAGE_BYTES} bytes"
                        ),
                    });
                    continue;
                }
                LineRead::Eof => {
                    // A last line without its newline is a truncated message.
                    if !std::mem::take(&mut self.line).is_empty() {
                        self.reject(&Rejection {
                            id: None,
                            code: ErrorCode::PARSE_ERROR,
                            message: "Parse error: the input ended inside a message".into(),
                        });
                        self.flush_pending().await;
                    }
                    self.client_gone.cancel();
                    return None;
                }
                LineRead::Io(error) => {
                    tracing::error!("cannot read stdin: {error}");
                    self.client_gone.cancel();
                    return None;
                }
            }
            let line = std::mem::take(&mut self.line);
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            match parse_line(body) {
                Frame::Message(message) => {
                    // Keep the allocation for the next line.
                    self.line = line;
                    self.line.clear();
                    return Some(*message);
                }
                Frame::Rejected(rejection) => self.reject(&rejection),
                Frame::Ignored => {}
            }
            self.line = line;
            self.line.clear();
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // Let the writer finish what is queued (the last replies), then stop.
        self.outbox = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(line: &[u8]) -> (Option<NumberOrString>, i32) {
        match parse_line(line) {
            Frame::Rejected(r) => (r.id, r.code.0),
            other => panic!(
                "{} was not rejected: {other:?}",
                String::from_utf8_lossy(line)
            ),
        }
    }

    #[test]
    fn malformed_lines_get_parse_error_or_invalid_request() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let cases: Vec<(&[u8], i32)> = vec![
            (br#"{"jsonrpc":"2.0","id":1,"method":"#, -32700),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\xff\"}",
                -32700,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\ud800"}}"#,
                -32700,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":NaN}}"#,
                -32700,
            ),
            (deep.as_bytes(), -32700),
            (b"[]", -32600),
            (b"42", -32600),
        ];
        for (line, code) in cases {
            assert_eq!(
                rejected(line),
                (None, code),
                "{}",
                String::from_utf8_lossy(&line[..line.len().min(60)])
            );
        }
    }

    #[test]
    fn an_invalid_request_with_a_usable_id_echoes_it() {
        assert_eq!(
            rejected(br#"{"jsonrpc":"2.0","id":7,"result":1,"method":"x"}"#),
            (Some(NumberOrString::Number(7)), -32600)
        );
    }

    #[test]
    fn valid_messages_and_blank_lines_pass() {
        assert!(matches!(
            parse_line(b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r"),
            Frame::Message(_)
        ));
        assert!(matches!(parse_line(b"  "), Frame::Ignored));
    }
}
