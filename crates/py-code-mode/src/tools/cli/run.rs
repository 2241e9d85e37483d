//! Running a CLI tool's process: under the spawn policy, output capped, the
//! whole tree killed when the call ends, times out or is dropped.

use std::time::Duration;

use serde_json::Value;

use crate::error::ToolError;
use crate::spawn::Spawn;
use crate::tools::{MAX_TOOL_OUTPUT, OutputCap, tail};

/// How long to keep reading output after the tool exits: a grandchild it left
/// running may hold the pipes open forever.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How much of stderr a failure message quotes.
const ERROR_EXCERPT: usize = 2000;

/// One run of a CLI tool's program.
pub(super) struct Run<'a> {
    /// The tool's name, for errors.
    pub tool: &'a str,
    pub command: &'a str,
    pub argv: Vec<String>,
    /// Added to the allow-listed environment.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
}

impl Run<'_> {
    /// Runs the program to its end: stdout on success, a [`ToolError`] with
    /// the exit status and the end of stderr otherwise.
    ///
    /// Cancel-safe: the process tree lives in this future, so dropping the
    /// future (agent code's run timed out, the session closed) kills it.
    pub(super) async fn output(self) -> Result<Value, ToolError> {
        let spawn_error = |source| ToolError::Spawn {
            tool: self.tool.to_owned(),
            command: self.command.to_owned(),
            source,
        };
        let (mut child, mut tree) = Spawn::new(self.command)
            .args(&self.argv)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .spawn()
            .map_err(spawn_error)?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let work = async {
            let mut outputs = std::pin::pin!(futures::future::join(
                OutputCap::read_pipe(stdout, MAX_TOOL_OUTPUT),
                OutputCap::read_pipe(stderr, MAX_TOOL_OUTPUT),
            ));
            let mut captured = None;
            // Output is read while the program runs (a full pipe would block it).
            let status = loop {
                tokio::select! {
                    status = child.wait() => break status,
                    out = &mut outputs, if captured.is_none() => captured = Some(out),
                }
            };
            let captured = match captured {
                Some(out) => out,
                None => {
                    if let Ok(out) = tokio::time::timeout(DRAIN_TIMEOUT, &mut outputs).await {
                        out
                    } else {
                        // A descendant holds the pipes: kill it, then the pipes close.
                        tree.kill();
                        tokio::time::timeout(DRAIN_TIMEOUT, &mut outputs)
                            .await
                            .unwrap_or_default()
                    }
                }
            };
            (status, captured)
        };
        let outcome = tokio::time::timeout(self.timeout, work).await;
        // Grandchildren left behind do not outlive the call.
        tree.kill();
        let Ok((status, (stdout, stderr))) = outcome else {
            return Err(ToolError::Timeout {
                tool: self.tool.to_owned(),
                seconds: self.timeout.as_secs_f64(),
            });
        };
        let status = status.map_err(spawn_error)?;
        if status.success() {
            return Ok(Value::String(stdout.into_text()));
        }
        let stderr = stderr.into_text();
        let excerpt = if stderr.trim().is_empty() {
            stdout.into_text()
        } else {
            stderr
        };
        let excerpt = tail(&excerpt, ERROR_EXCERPT);
        Err(ToolError::Failed {
            tool: self.tool.to_owned(),
            message: format!(
                "`{}` exited with {status}: {}",
                self.command,
                excerpt.trim()
            ),
        })
    }
}
