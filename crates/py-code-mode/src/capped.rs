//! Reading lines from a process that may be hostile: every line has a cap, so
//! a 400 MiB line costs the host at most the cap, never the line.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// What [`read_line_capped`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CappedLine {
    /// A whole line is in the buffer (without its `\n`; the last line of the
    /// stream may lack one).
    Line,
    /// The stream ended with nothing buffered.
    Eof,
    /// The line is longer than the cap: the buffer holds its first `max`
    /// bytes and the rest is still unread ([`skip_line`] drops it).
    TooLong,
}

/// Appends the next line to `buf`, keeping at most `max` bytes of it.
///
/// Cancel-safe: bytes are moved from the reader into `buf` between awaits, so
/// a dropped call loses nothing; clear `buf` once a line is handled.
pub async fn read_line_capped<R>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<CappedLine>
where
    R: AsyncBufRead + Unpin + ?Sized,
{
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                CappedLine::Eof
            } else {
                CappedLine::Line
            });
        }
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        let room = max.saturating_sub(buf.len());
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            reader.consume(room);
            return Ok(CappedLine::TooLong);
        }
        buf.extend_from_slice(chunk);
        let used = chunk.len() + usize::from(newline.is_some());
        reader.consume(used);
        if newline.is_some() {
            return Ok(CappedLine::Line);
        }
    }
}

/// Reads and drops the rest of the current line; returns how many bytes it
/// dropped. Memory stays at the reader's buffer whatever the line's length.
pub async fn skip_line<R>(reader: &mut R) -> std::io::Result<u64>
where
    R: AsyncBufRead + Unpin + ?Sized,
{
    let mut skipped: u64 = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(skipped);
        }
        let newline = available.iter().position(|&b| b == b'\n');
        let used = newline.map_or(available.len(), |i| i + 1);
        reader.consume(used);
        skipped = skipped.saturating_add(u64::try_from(used).unwrap_or(u64::MAX));
        if newline.is_some() {
            return Ok(skipped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_within_the_cap_come_whole_and_longer_ones_are_cut() -> std::io::Result<()> {
        let input: &[u8] = b"short\nthis line is too long\nafter\nlast";
        let mut reader = tokio::io::BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        assert_eq!(
            read_line_capped(&mut reader, &mut buf, 8).await?,
            CappedLine::Line
        );
        assert_eq!(buf, b"short");
        buf.clear();
        assert_eq!(
            read_line_capped(&mut reader, &mut buf, 8).await?,
            CappedLine::TooLong
        );
        assert_eq!(buf, b"this lin");
        assert_eq!(skip_line(&mut reader).await?, 14);
        buf.clear();
        assert_eq!(
            read_line_capped(&mut reader, &mut buf, 8).await?,
            CappedLine::Line
        );
        assert_eq!(buf, b"after");
        buf.clear();
        assert_eq!(
            read_line_capped(&mut reader, &mut buf, 8).await?,
            CappedLine::Line
        );
        assert_eq!(buf, b"last");
        buf.clear();
        assert_eq!(
            read_line_capped(&mut reader, &mut buf, 8).await?,
            CappedLine::Eof
        );
        Ok(())
    }
}
