//! What the server tells a client besides replies: log messages (run output,
//! host warnings) once the client sets a level, progress while a run goes,
//! and resource-list changes once the client has listed resources.
#![expect(
    deprecated,
    reason = "logging is in the 2025-11-25 revision clients speak today"
)]

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use py_code_mode::{ExecutionResult, Session};
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer};

/// How often a long run reports progress.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// The most text of one stream one log message carries: the whole output is
/// in the reply anyway.
pub const MAX_LOG_CHARS: usize = 16 * 1024;

/// Per MCP session.
#[derive(Debug, Default)]
pub struct Surface {
    /// 0: the client set no level (no log messages); else the level's rank + 1.
    level: AtomicU8,
    /// The client listed resources: changes to the list are worth telling.
    watching: AtomicBool,
    seen: Mutex<Option<u64>>,
}

fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 1,
        LoggingLevel::Info => 2,
        LoggingLevel::Notice => 3,
        LoggingLevel::Warning => 4,
        LoggingLevel::Error => 5,
        LoggingLevel::Critical => 6,
        LoggingLevel::Alert => 7,
        LoggingLevel::Emergency => 8,
    }
}

fn truncated(text: &str) -> String {
    match text.char_indices().nth(MAX_LOG_CHARS) {
        Some((at, _)) => format!("{}… ({} bytes in all)", &text[..at], text.len()),
        None => text.to_owned(),
    }
}

impl Surface {
    pub fn set_level(&self, level: LoggingLevel) {
        self.level.store(rank(level), Ordering::SeqCst);
    }

    fn wants(&self, level: LoggingLevel) -> bool {
        let set = self.level.load(Ordering::SeqCst);
        set != 0 && rank(level) >= set
    }

    /// Sends a log message if the client's level lets it through.
    pub async fn log(
        &self,
        peer: &Peer<RoleServer>,
        level: LoggingLevel,
        logger: &str,
        text: &str,
    ) {
        if !self.wants(level) {
            return;
        }
        let message =
            LoggingMessageNotificationParam::new(level, truncated(text).into()).with_logger(logger);
        if let Err(e) = peer.notify_logging_message(message).await {
            tracing::debug!("cannot send a log message: {e}");
        }
    }

    /// A run's stdout (info) and stderr (warning) as log messages.
    pub async fn log_run(&self, peer: &Peer<RoleServer>, result: &ExecutionResult) {
        if !result.stdout.is_empty() {
            self.log(peer, LoggingLevel::Info, "stdout", &result.stdout)
                .await;
        }
        if !result.stderr.is_empty() {
            self.log(peer, LoggingLevel::Warning, "stderr", &result.stderr)
                .await;
        }
    }

    /// From now on, tell the client when the resource list changes.
    pub fn watch(&self, fingerprint: Option<u64>) {
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fingerprint;
        self.watching.store(true, Ordering::SeqCst);
    }

    /// Tells the client if skills or artifacts changed since last seen.
    pub async fn check_resources(&self, peer: &Peer<RoleServer>, session: &Session) {
        if !self.watching.load(Ordering::SeqCst) {
            return;
        }
        let now = crate::resources::fingerprint(session).await;
        let changed = {
            let mut seen = self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let changed = *seen != now;
            *seen = now;
            changed
        };
        if changed && let Err(e) = peer.notify_resource_list_changed().await {
            tracing::debug!("cannot send a list change: {e}");
        }
    }
}

/// Sends progress for a request that asked for it (a `progressToken`) every
/// [`PROGRESS_EVERY`] until dropped.
pub struct Ticker(Option<tokio::task::JoinHandle<()>>);

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// The most output one progress notification carries: the newest, as a tail;
/// the reply has all of it.
pub const MAX_PROGRESS_OUTPUT: usize = 4 * 1024;

/// Starts a [`Ticker`] for `context` (a no-op without a progress token): each
/// tick says how long the run has been going and what it printed since the
/// last tick.
pub fn progress(context: &RequestContext<RoleServer>, session: &Arc<Session>) -> Ticker {
    let Some(token) = context.meta.get_progress_token() else {
        return Ticker(None);
    };
    let peer = context.peer.clone();
    let host = Arc::clone(session.host());
    // Output of an earlier run nobody took is not this run's.
    host.take_partial_output();
    Ticker(Some(tokio::spawn(async move {
        let started = Instant::now();
        let mut ticks = tokio::time::interval(PROGRESS_EVERY);
        ticks.tick().await; // the first tick is immediate
        loop {
            ticks.tick().await;
            let secs = started.elapsed().as_secs_f64();
            let mut message = format!("running for {secs:.0}s");
            let output = host.take_partial_output();
            if !output.stdout.is_empty() {
                message.push_str("; output so far:\n");
                message.push_str(output.stdout_tail(MAX_PROGRESS_OUTPUT));
            }
            let note =
                ProgressNotificationParam::new(token.clone(), secs.floor()).with_message(message);
            if peer.notify_progress(note).await.is_err() {
                return;
            }
        }
    })))
}
