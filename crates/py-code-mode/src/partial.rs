//! A long run's output as it comes, before its result: the worker streams
//! it (`output` messages), the host keeps it here until someone takes it
//! (the MCP server's progress notifications), bounded.

use std::sync::{Mutex, PoisonError};

/// The most text kept of each stream until taken: older text is dropped
/// first (the result carries all of it anyway).
pub const MAX_PARTIAL_OUTPUT: usize = 64 * 1024;

/// Output written since it was last taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialOutput {
    pub stdout: String,
    pub stderr: String,
    /// Bytes dropped from the front because nobody took them in time.
    pub dropped: usize,
}

impl PartialOutput {
    pub fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty()
    }

    /// The last `max` bytes of stdout or fewer, from a character boundary.
    pub fn stdout_tail(&self, max: usize) -> &str {
        crate::tools::tail(&self.stdout, max)
    }
}

/// The host's side: filled by the executor, taken by whoever reports progress.
#[derive(Debug, Default)]
pub(crate) struct PartialSink(Mutex<PartialOutput>);

impl PartialSink {
    pub(crate) fn push(&self, stdout: &str, stderr: &str) {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = &mut *guard;
        for (buffer, text) in [(&mut kept.stdout, stdout), (&mut kept.stderr, stderr)] {
            buffer.push_str(text);
            kept.dropped += keep_tail(buffer, MAX_PARTIAL_OUTPUT);
        }
    }

    pub(crate) fn take(&self) -> PartialOutput {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Cuts `text` to its last `max` bytes or fewer, at a character boundary;
/// returns how many bytes were cut.
fn keep_tail(text: &mut String, max: usize) -> usize {
    let cut = text.len() - crate::tools::tail(text, max).len();
    text.drain(..cut);
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_accumulates_until_taken_and_keeps_only_the_tail() {
        let sink = PartialSink::default();
        sink.push("a", "");
        sink.push("b", "warn");
        assert_eq!(
            sink.take(),
            PartialOutput {
                stdout: "ab".into(),
                stderr: "warn".into(),
                dropped: 0
            }
        );
        assert!(sink.take().is_empty());

        sink.push(&"é".repeat(MAX_PARTIAL_OUTPUT), "");
        sink.push("end", "");
        let taken = sink.take();
        assert!(taken.stdout.len() <= MAX_PARTIAL_OUTPUT);
        assert!(taken.stdout.ends_with("éend"));
        assert_eq!(
            taken.dropped,
            2 * MAX_PARTIAL_OUTPUT + 3 - taken.stdout.len()
        );
    }
}
