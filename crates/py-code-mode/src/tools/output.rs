//! Bounded capture of a child process's output.

use std::fmt::Write as _;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest stdout or stderr kept from one tool run; the rest is counted and
/// replaced by a marker, so a chatty tool cannot exhaust memory.
pub const MAX_TOOL_OUTPUT: usize = 1024 * 1024;

/// Output read up to a cap, remembering how much was dropped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OutputCap {
    pub kept: Vec<u8>,
    pub dropped: u64,
}

impl OutputCap {
    /// Reads `reader` to its end, keeping at most `limit` bytes.
    pub async fn read(mut reader: impl AsyncRead + Unpin, limit: usize) -> Self {
        let mut out = Self::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return out,
                Ok(n) => {
                    let room = limit.saturating_sub(out.kept.len());
                    let keep = n.min(room);
                    out.kept.extend_from_slice(&buf[..keep]);
                    out.dropped += (n - keep) as u64;
                }
            }
        }
    }

    /// Reads a child's pipe the same way; a pipe that was not opened reads
    /// as nothing.
    pub async fn read_pipe(pipe: Option<impl AsyncRead + Unpin>, limit: usize) -> Self {
        match pipe {
            Some(pipe) => Self::read(pipe, limit).await,
            None => Self::default(),
        }
    }

    /// The text, with a visible marker when something was dropped.
    pub fn into_text(self) -> String {
        let mut text = String::from_utf8_lossy(&self.kept).into_owned();
        if self.dropped > 0 {
            let _ = write!(
                text,
                "\n[... output truncated: {} more bytes]\n",
                self.dropped
            );
        }
        text
    }
}

/// The last `max` bytes of `text` (fewer, to start on a character): where a
/// failing command says why.
pub(crate) fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
