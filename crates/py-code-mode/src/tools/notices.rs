//! What a tool says while a call runs — an MCP server's progress and log
//! messages — kept for the agent code that made the call.
//!
//! The host collects them per call ([`collect`]) and sends them with the
//! call's answer; the runtime writes them to the run's stderr, so agent code
//! (and whoever reads the run's output) sees them where a program's
//! diagnostics go, in the order the calls returned. A server that floods is
//! cut at [`MAX_NOTICES`] a call with a line saying how many were left out.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

/// The most notices one call keeps: a server logging in a loop cannot grow a
/// reply (or the run's stderr) without bound.
pub const MAX_NOTICES: usize = 100;
/// The most characters one notice keeps.
pub const MAX_NOTICE_CHARS: usize = 2_000;

tokio::task_local! {
    static CURRENT: Notices;
}

/// The notices of one call in flight; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Notices(Arc<Mutex<Kept>>);

#[derive(Debug, Default)]
struct Kept {
    lines: Vec<String>,
    left_out: usize,
}

impl Notices {
    /// Keeps `text` from `source` (`tools.<name>`), bounded.
    pub fn push(&self, source: &str, text: &str) {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.lines.len() >= MAX_NOTICES {
            kept.left_out += 1;
            return;
        }
        let text = match text.char_indices().nth(MAX_NOTICE_CHARS) {
            Some((at, _)) => format!("{}… (cut at {MAX_NOTICE_CHARS} characters)", &text[..at]),
            None => text.to_owned(),
        };
        kept.lines.push(format!("[{source}] {}", text.trim_end()));
    }

    /// The notices as lines, with one saying how many were left out.
    pub fn take(&self) -> Vec<String> {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lines = std::mem::take(&mut kept.lines);
        if kept.left_out > 0 {
            lines.push(format!(
                "[py-code-mode] {} more messages from tools were left out (`MAX_NOTICES`)",
                std::mem::take(&mut kept.left_out)
            ));
        }
        lines
    }
}

/// The notices of the call this task is answering, if the host collects them.
pub fn current() -> Option<Notices> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `call`, collecting what tools say meanwhile.
pub async fn collect<F: Future>(call: F) -> (F::Output, Vec<String>) {
    let notices = Notices::default();
    let output = CURRENT.scope(notices.clone(), call).await;
    (output, notices.take())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_collects_what_is_pushed_inside_it_and_nothing_outside() {
        assert!(current().is_none());
        let ((), lines) = collect(async {
            current()
                .expect("inside a call")
                .push("tools.t", "info: hello\n");
        })
        .await;
        assert_eq!(lines, ["[tools.t] info: hello"]);
        assert!(current().is_none());
    }

    #[test]
    fn a_flood_is_cut_with_a_count_and_long_lines_are_cut() {
        let notices = Notices::default();
        for i in 0..MAX_NOTICES + 5 {
            notices.push("tools.t", &format!("line {i}"));
        }
        notices.push("tools.t", "x");
        let lines = notices.take();
        assert_eq!(lines.len(), MAX_NOTICES + 1);
        assert!(lines[MAX_NOTICES].contains("6 more messages"), "{lines:?}");

        notices.push("tools.t", &"é".repeat(MAX_NOTICE_CHARS + 10));
        let line = &notices.take()[0];
        assert!(line.ends_with(&format!("(cut at {MAX_NOTICE_CHARS} characters)")));
        assert_eq!(line.chars().filter(|&c| c == 'é').count(), MAX_NOTICE_CHARS);
    }
}
