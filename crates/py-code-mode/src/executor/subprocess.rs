//! The subprocess executor: agent code runs in a `python3` worker process.
//!
//! The worker is the embedded runtime started as `python -I -c <runtime>`, in its
//! own process group, with an explicit environment (tool secrets in the host's
//! environment never reach it). A timeout or a crash kills the whole group and
//! starts a fresh worker, and the result says the state was reset.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, OnceCell, mpsc};

use super::{ExecutionError, ExecutionResult, Executor, RUNTIME_SOURCE, resolve_python};
use crate::error::ExecutorError;
use crate::host::Host;
use crate::protocol::{CallError, CallOutcome, HostMessage, RawRunResult, RuntimeMessage};
use crate::spawn::kill_tree;

/// How long a new worker may take to say `ready` (a cold interpreter on a busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `reset` may take before the worker is replaced instead.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for a dead worker's exit status before reporting without it.
const REAP_TIMEOUT: Duration = Duration::from_secs(1);
/// Default cap on one run's stdout and on its stderr, in bytes.
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

/// Variables passed from the host's environment to the worker; everything else
/// (API keys the tools use, say) stays out.
const PASSTHROUGH_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "TERM",
    "VIRTUAL_ENV",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// How to start the worker.
#[derive(Debug, Clone)]
pub struct SubprocessConfig {
    /// The interpreter (a path or a name on PATH); default `python3`.
    pub python: Option<PathBuf>,
    /// The worker's working directory; default the host's.
    pub cwd: Option<PathBuf>,
    /// Extra environment variables for the worker.
    pub env: Vec<(String, String)>,
    /// Cap on one run's stdout and on its stderr, in bytes.
    pub output_limit: usize,
}

impl Default for SubprocessConfig {
    fn default() -> Self {
        Self {
            python: None,
            cwd: None,
            env: Vec::new(),
            output_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }
}

/// Runs agent code in a worker process; see the module docs.
pub struct SubprocessExecutor {
    config: SubprocessConfig,
    host: Arc<Host>,
    python: OnceCell<PathBuf>,
    worker: Mutex<Option<Worker>>,
    closed: AtomicBool,
}

struct Worker {
    pid: u32,
    child: Child,
    to_worker: mpsc::UnboundedSender<HostMessage>,
    /// Messages other than calls; closed when the worker's stdout closes.
    events: mpsc::UnboundedReceiver<RuntimeMessage>,
    ready: bool,
    next_id: u64,
}

impl Drop for Worker {
    fn drop(&mut self) {
        kill_tree(self.pid);
    }
}

impl Worker {
    async fn wait_ready(&mut self) -> Result<(), ExecutorError> {
        let deadline = tokio::time::sleep(START_TIMEOUT);
        tokio::pin!(deadline);
        while !self.ready {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(RuntimeMessage::Ready { protocol, pid, python }) => {
                        if protocol != crate::protocol::PROTOCOL_VERSION {
                            return Err(ExecutorError::Protocol {
                                message: format!("worker speaks protocol {protocol}, host {}", crate::protocol::PROTOCOL_VERSION),
                            });
                        }
                        tracing::debug!(pid, python, "worker ready");
                        self.ready = true;
                    }
                    Some(_) => {}
                    None => {
                        let status = reap(&mut self.child).await;
                        return Err(ExecutorError::Protocol {
                            message: format!("the worker exited during start-up ({})", describe(status)),
                        });
                    }
                },
                () = &mut deadline => {
                    return Err(ExecutorError::Protocol {
                        message: format!("the worker did not start within {}s", START_TIMEOUT.as_secs()),
                    });
                }
            }
        }
        Ok(())
    }

    fn send(&mut self, make: impl FnOnce(u64) -> HostMessage) -> Option<u64> {
        self.next_id += 1;
        self.to_worker
            .send(make(self.next_id))
            .ok()
            .map(|()| self.next_id)
    }

    /// Waits for the result of request `id`; `None` if the worker died.
    async fn result(&mut self, id: u64) -> Option<RawRunResult> {
        loop {
            if let RuntimeMessage::Result { id: got, result } = self.events.recv().await?
                && got == id
            {
                return Some(result);
            }
        }
    }
}

impl SubprocessExecutor {
    pub fn new(config: SubprocessConfig, host: Arc<Host>) -> Self {
        Self {
            config,
            host,
            python: OnceCell::new(),
            worker: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    async fn spawn(&self) -> Result<Worker, ExecutorError> {
        let python = self
            .python
            .get_or_try_init(|| resolve_python(self.config.python.as_deref()))
            .await?;
        let mut command = Command::new(python);
        command
            .args(["-I", "-c", RUNTIME_SOURCE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .env_clear()
            .envs(
                PASSTHROUGH_ENV
                    .iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
            )
            .env("PYTHONIOENCODING", "utf-8")
            .env(
                "PY_CODE_MODE_OUTPUT_LIMIT",
                self.config.output_limit.to_string(),
            )
            .envs(self.config.env.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &self.config.cwd {
            command.current_dir(cwd);
        }
        let mut child = command.spawn().map_err(|source| ExecutorError::Spawn {
            python: python.clone(),
            source,
        })?;
        let pid = child.id().unwrap_or_default();
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ExecutorError::Protocol {
                message: "the worker's pipes are missing".into(),
            });
        };

        let (to_worker, mut outbox) = mpsc::unbounded_channel::<HostMessage>();
        tokio::spawn(async move {
            while let Some(message) = outbox.recv().await {
                let Ok(mut line) = serde_json::to_vec(&message) else {
                    continue;
                };
                line.push(b'\n');
                if stdin.write_all(&line).await.is_err() {
                    break;
                }
            }
        });

        let (events_tx, events) = mpsc::unbounded_channel();
        let host = Arc::clone(&self.host);
        let replies = to_worker.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<RuntimeMessage>(&line) {
                    // Calls are served concurrently, so `asyncio.gather` over
                    // tools overlaps their work.
                    Ok(RuntimeMessage::Call { id, call }) => {
                        let host = Arc::clone(&host);
                        let replies = replies.clone();
                        tokio::spawn(async move {
                            let outcome = host.handle(call).await;
                            let _ = replies.send(HostMessage::Response { id, outcome });
                        });
                    }
                    Ok(message) => {
                        if events_tx.send(message).is_err() {
                            break;
                        }
                    }
                    Err(error) => reject(&line, &error, &replies),
                }
            }
            // Dropping `events_tx` here tells the executor the worker is gone.
        });

        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(target: "py_code_mode::worker", pid, "{line}");
            }
        });

        Ok(Worker {
            pid,
            child,
            to_worker,
            events,
            ready: false,
            next_id: 0,
        })
    }

    /// The live worker, started (and waited for) if there is none.
    async fn ready_worker(&self, slot: &mut Option<Worker>) -> Result<Worker, ExecutorError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ExecutorError::Closed);
        }
        let mut worker = match slot.take() {
            Some(worker) => worker,
            None => self.spawn().await?,
        };
        worker.wait_ready().await?;
        Ok(worker)
    }

    /// Starts a replacement after a timeout or crash so the next run is quick;
    /// a failure here is reported by that next run instead.
    async fn replace(&self, slot: &mut Option<Worker>) {
        *slot = None;
        if !self.closed.load(Ordering::Acquire) {
            *slot = self.spawn().await.ok();
        }
    }
}

#[async_trait]
impl Executor for SubprocessExecutor {
    async fn start(&self) -> Result<(), ExecutorError> {
        let mut slot = self.worker.lock().await;
        let worker = self.ready_worker(&mut slot).await?;
        *slot = Some(worker);
        Ok(())
    }

    async fn run(&self, code: &str, timeout: Duration) -> Result<ExecutionResult, ExecutorError> {
        let mut slot = self.worker.lock().await;
        let mut worker = self.ready_worker(&mut slot).await?;
        let started = Instant::now();
        let code = code.to_owned();
        let sent = worker.send(|id| HostMessage::Execute { id, code });
        let outcome = match sent {
            Some(id) => tokio::time::timeout(timeout, worker.result(id)).await,
            None => Ok(None),
        };
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Ok(Some(raw)) => {
                *slot = Some(worker);
                Ok(raw.finish(duration_ms))
            }
            Ok(None) => {
                let status = reap(&mut worker.child).await;
                drop(worker);
                self.replace(&mut slot).await;
                Ok(stopped(
                    "WorkerCrashed",
                    format!(
                        "the Python worker died ({}) while running this code; a new worker was started and all variables were reset",
                        describe(status)
                    ),
                    duration_ms,
                ))
            }
            Err(_elapsed) => {
                drop(worker);
                self.replace(&mut slot).await;
                Ok(stopped(
                    "TimeoutError",
                    format!(
                        "execution exceeded the {}s timeout and was stopped; a new worker was started and all variables were reset",
                        timeout.as_secs_f64()
                    ),
                    duration_ms,
                ))
            }
        }
    }

    async fn reset(&self) -> Result<(), ExecutorError> {
        let mut slot = self.worker.lock().await;
        let Some(mut worker) = slot.take() else {
            return Ok(()); // no worker yet: nothing to forget
        };
        let done = match worker.send(|id| HostMessage::Reset { id }) {
            Some(id) => tokio::time::timeout(RESET_TIMEOUT, worker.result(id))
                .await
                .ok()
                .flatten()
                .is_some(),
            None => false,
        };
        if done {
            *slot = Some(worker);
        } else {
            drop(worker);
            self.replace(&mut slot).await;
        }
        Ok(())
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.worker.lock().await.take();
    }
}

fn stopped(kind: &str, message: String, duration_ms: f64) -> ExecutionResult {
    ExecutionResult {
        error: Some(ExecutionError {
            kind: kind.to_owned(),
            message,
            traceback: String::new(),
        }),
        duration_ms,
        state_reset: true,
        ..ExecutionResult::default()
    }
}

/// Answers a malformed call with an error instead of leaving agent code waiting.
fn reject(line: &str, error: &serde_json::Error, replies: &mpsc::UnboundedSender<HostMessage>) {
    let value: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    match (
        value.get("kind").and_then(|k| k.as_str()),
        value.get("id").and_then(serde_json::Value::as_u64),
    ) {
        (Some("call"), Some(id)) => {
            let method = value.get("method").and_then(|m| m.as_str()).unwrap_or("?");
            let _ = replies.send(HostMessage::Response {
                id,
                outcome: CallOutcome::Error(CallError {
                    kind: "TypeError".into(),
                    message: format!("bad call to `{method}`: {error}"),
                }),
            });
        }
        _ => tracing::warn!("ignoring a malformed message from the worker: {error}"),
    }
}

async fn reap(child: &mut Child) -> Option<ExitStatus> {
    tokio::time::timeout(REAP_TIMEOUT, child.wait())
        .await
        .ok()
        .and_then(Result::ok)
}

fn describe(status: Option<ExitStatus>) -> String {
    status.map_or_else(|| "exit status unknown".to_owned(), |s| s.to_string())
}
