//! The subprocess executor: agent code runs in a `python3` worker process.
//!
//! The worker is the embedded runtime started as `python -I -c <runtime>` under
//! the spawn policy ([`crate::spawn`]): an allow-listed environment, its own
//! process group, a subreaper for what agent code starts, no capabilities (even
//! as root), and a per-session scratch folder as its working directory, so the
//! library is not where agent code starts. The host makes itself non-dumpable
//! first, which closes `/proc/<host>/environ` to the worker.
//!
//! Everything the worker sends is untrusted input: each line is read with a cap
//! ([`MAX_PROTOCOL_LINE`]), host calls in flight are bounded
//! ([`MAX_CALLS_IN_FLIGHT`]), every channel is bounded, and a `result` is
//! accepted only for the run in flight (a random id) and only once. Anything
//! else is a protocol violation: the worker is killed and replaced and the run
//! fails with a clear error. A timeout, a crash, a cancelled run (its future
//! dropped) or a `reset` replaces the worker too, killing its whole tree and
//! aborting the host-side calls it made; the result says the state was reset.

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::{Mutex, OnceCell, Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};

use super::bytecode::{self, BOOTSTRAP, Bytecode};
use super::pool::{Pooled, Template, WorkerPool};
use super::{ExecutionError, ExecutionResult, Executor, RUNTIME_SOURCE, resolve_python};
use crate::bounds::MAX_TIMEOUT;
use crate::caller::off_caller_thread;
use crate::capped::{CappedLine, read_line_capped, skip_line};
use crate::error::ExecutorError;
use crate::host::Host;
use crate::protocol::{CallError, CallOutcome, HostMessage, RawRunResult, RuntimeMessage};
use crate::spawn::{ProcessTree, Spawn, make_host_undumpable};

/// How long a new worker may take to say `ready` (a cold interpreter on a busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a dead worker's exit status before reporting without it.
const REAP_TIMEOUT: Duration = Duration::from_secs(1);
/// Default cap on one run's stdout and on its stderr, in bytes.
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;
/// The longest protocol line the host reads, plus 12 bytes per byte of the
/// output limit (stdout and stderr, each up to 6 bytes once JSON-escaped). The
/// runtime keeps what it sends far below (values 8 MiB, artifacts 32 MiB
/// before base64, messages 60 MiB), so a longer line is agent code writing to
/// the protocol: a clear error, and the host never holds more than this.
pub const MAX_PROTOCOL_LINE: usize = 64 * 1024 * 1024;
/// One line of the worker's own stderr in the log; the rest of it is dropped.
const MAX_LOG_LINE: usize = 8 * 1024;
/// Host calls one worker may have in flight: `asyncio.gather` over 10,000
/// `acall`s runs 64 at a time instead of starting 10,000 processes.
pub const MAX_CALLS_IN_FLIGHT: usize = 64;
/// Events queued for the executor: a `ready`, one result, one violation.
const EVENTS_CAPACITY: usize = 4;
/// How long after a `reset` its next spare starts: the first result on the
/// new worker does not compete with a starting interpreter for the CPU.
const SPARE_DELAY: Duration = Duration::from_millis(50);
/// The longest `ready` line a pooled worker may send (it is ~80 bytes).
const MAX_READY_LINE: usize = 4096;
/// The error kind of a run whose worker broke the protocol.
const PROTOCOL_ERROR: &str = "ProtocolError";
/// The error kind of a run that went over a limit of its worker.
const LIMIT_ERROR: &str = "ResourceLimitError";

/// How to start the worker.
#[derive(Debug, Clone)]
pub struct SubprocessConfig {
    /// The interpreter (a path or a name on PATH); default `python3`.
    pub python: Option<PathBuf>,
    /// The worker's working directory; default a fresh scratch folder per
    /// session, removed on close (never the host's, which may hold the library).
    pub cwd: Option<PathBuf>,
    /// Extra environment variables for the worker.
    pub env: Vec<(String, String)>,
    /// Cap on one run's stdout and on its stderr, in bytes.
    pub output_limit: usize,
    /// Workers started ahead of need, shared with every session whose config
    /// holds a clone of this pool (see [`WorkerPool`]); default none.
    pub pool: Option<WorkerPool>,
}

impl Default for SubprocessConfig {
    fn default() -> Self {
        Self {
            python: None,
            cwd: None,
            env: Vec::new(),
            output_limit: DEFAULT_OUTPUT_LIMIT,
            pool: None,
        }
    }
}

/// The worker's command line, as the executor wants it run: the launcher
/// decides where (directly, in a sandbox, in a container).
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The resolved interpreter (an absolute path).
    pub python: PathBuf,
    /// Its arguments: `-I -c <runtime>`.
    pub args: Vec<OsString>,
    /// Variables on top of the spawn allow-list ([`crate::ENV_ALLOWLIST`]).
    pub env: Vec<(OsString, OsString)>,
    /// The session's scratch folder on the host.
    pub cwd: PathBuf,
}

/// A started worker: its process (stdin, stdout and stderr piped), the guard
/// of its process tree, and whatever else the launcher keeps for it.
pub struct LaunchedWorker {
    pub child: Child,
    pub tree: ProcessTree,
    /// Dropped after the tree is killed (a cgroup to remove, a container to delete).
    pub guard: Option<Box<dyn WorkerGuard>>,
    /// What the launcher already read of the worker's stdout (a pooled
    /// worker's `ready`): the protocol reader reads it before the pipe.
    pub stdout_prefix: Vec<u8>,
}

/// What a launcher keeps for one worker while it lives.
#[async_trait]
pub trait WorkerGuard: Send + Sync {
    /// Why the worker died with `status`, when the launcher knows better
    /// than the status (it went over its memory limit, the engine could not
    /// start it); `None` otherwise.
    async fn explain_exit(&self, status: Option<ExitStatus>) -> Option<String> {
        let _ = status;
        None
    }

    /// A limit the worker's last run went over that leaves it unfit to go
    /// on (its process count: the processes it keeps hold the limit), said
    /// for the run's error; the worker is then replaced. `None` otherwise.
    fn limit_reached(&self) -> Option<String> {
        None
    }
}

/// Starts worker processes: the one seam between the protocol and where the
/// worker runs.
#[async_trait]
pub trait WorkerLauncher: Send + Sync {
    async fn launch(&self, command: WorkerCommand) -> Result<LaunchedWorker, ExecutorError>;

    /// Whether the worker runs the host's interpreter in a host folder, so
    /// the executor resolves [`WorkerCommand::python`] and makes the scratch
    /// [`WorkerCommand::cwd`]. A container brings both and ignores them.
    fn host_worker(&self) -> bool {
        true
    }

    /// Whether `SIGINT` to the launched process group reaches the worker as
    /// a terminal's Ctrl-C would, leaving everything else running (see
    /// [`Executor::interrupt`]); `false` when some process in that group
    /// would die of it.
    fn interruptible(&self) -> bool {
        false
    }

    /// Everything that makes this launcher's workers differ from another's
    /// (limits, view, network), as a string: workers of launchers with the
    /// same key are interchangeable, so a [`WorkerPool`] may start them ahead
    /// and hand them to any session with that key. `None` (the default): its
    /// workers are never pooled.
    fn pool_key(&self) -> Option<String> {
        None
    }
}

/// Runs the worker directly on the host, under the spawn policy.
#[derive(Debug, Default, Clone, Copy)]
pub struct DirectLauncher;

#[async_trait]
impl WorkerLauncher for DirectLauncher {
    async fn launch(&self, command: WorkerCommand) -> Result<LaunchedWorker, ExecutorError> {
        let (child, tree) = Spawn::new(&command.python)
            .args(&command.args)
            .stdin_piped()
            .subreaper()
            .drop_capabilities()
            // The runtime catches it and kills its own descendants first.
            .parent_death_signal(Signal::SIGTERM)
            .current_dir(&command.cwd)
            .envs(command.env)
            .spawn()
            .map_err(|source| ExecutorError::Spawn {
                python: command.python.clone(),
                source,
            })?;
        Ok(LaunchedWorker {
            child,
            tree,
            guard: None,
            stdout_prefix: Vec::new(),
        })
    }

    /// The worker leads its own process group.
    fn interruptible(&self) -> bool {
        true
    }

    fn pool_key(&self) -> Option<String> {
        Some("direct".to_owned())
    }
}

/// Runs agent code in a worker process; see the module docs.
pub struct SubprocessExecutor {
    config: SubprocessConfig,
    host: Arc<Host>,
    python: OnceCell<PathBuf>,
    worker: Mutex<Option<Worker>>,
    /// A worker started ahead for the next `reset`, made by the first one: a
    /// session that resets gets a fresh interpreter without waiting for one
    /// to start (one more idle process); a session that never resets pays
    /// nothing.
    spare: Mutex<Option<JoinHandle<Option<Worker>>>>,
    /// The worker's working directory unless the config names one.
    scratch: std::sync::Mutex<Option<tempfile::TempDir>>,
    closed: AtomicBool,
    /// A run's future was dropped mid-run (timeout above us, MCP cancel): its
    /// worker died with it, and the next run says the state was reset.
    interrupted: Arc<AtomicBool>,
    /// How a worker process is started (directly, or inside a sandbox).
    launcher: Arc<dyn WorkerLauncher>,
    /// The pid (and process group) of the worker while it runs a cell, else
    /// 0, for [`Executor::interrupt`]. Set only while the run's future owns
    /// the unreaped worker, so the pid cannot belong to another process.
    running: Arc<AtomicU32>,
    /// How the config's pool starts workers for this session (`None`: the
    /// launcher's workers are not pooled); made with the first worker.
    template: std::sync::OnceLock<Option<Arc<Template>>>,
    /// Keys for run ids: SipHash of a counter under a secret key, so agent
    /// code that saw every earlier id cannot name the next one.
    ids: RandomState,
    runs: AtomicU64,
}

/// A live worker: dropping it kills its process tree and aborts its tasks
/// (and with the reader, every host-side call the worker made).
struct Worker {
    /// Declared before `child`, so it drops first: the tree walk must find the
    /// worker alive. `child` kills the worker on drop, and a worker that died
    /// first would hand its descendants (a `setsid` grandchild) to some other
    /// reaper, out of the walk's reach.
    _tree: ProcessTree,
    child: Child,
    /// What the launcher keeps for this worker (a cgroup); dropped after the tree.
    guard: Option<Box<dyn WorkerGuard>>,
    to_worker: Arc<Outbox>,
    events: mpsc::Receiver<Event>,
    /// The id of the run in flight, 0 when idle; the reader accepts one result
    /// for it and clears it.
    in_flight: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
    ready: bool,
    /// It ran agent code: its variables are lost if it dies.
    used: bool,
}

/// What the protocol reader tells the executor.
#[derive(Debug)]
enum Event {
    Ready {
        protocol: u32,
    },
    Result(RawRunResult),
    /// The worker broke the protocol; it must be replaced.
    Broken(String),
}

/// Why a run has no result.
enum Lost {
    Crashed,
    Broken(String),
}

impl Drop for Worker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Worker {
    async fn wait_ready(&mut self) -> Result<(), ExecutorError> {
        let deadline = tokio::time::sleep(START_TIMEOUT);
        tokio::pin!(deadline);
        while !self.ready {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(Event::Ready { protocol }) => {
                        if protocol != crate::protocol::PROTOCOL_VERSION {
                            return Err(ExecutorError::Protocol {
                                message: format!("worker speaks protocol {protocol}, host {}", crate::protocol::PROTOCOL_VERSION),
                            });
                        }
                        self.ready = true;
                    }
                    Some(Event::Broken(message)) => return Err(ExecutorError::Protocol { message }),
                    Some(Event::Result(_)) => {}
                    None => {
                        let status = reap(&mut self.child).await;
                        let cause = match &self.guard {
                            Some(guard) => guard.explain_exit(status).await,
                            None => None,
                        }
                        .map(|cause| format!("; {cause}"))
                        .unwrap_or_default();
                        return Err(ExecutorError::Protocol {
                            message: format!("the worker exited during start-up ({}{cause})", describe(status)),
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

    /// Whether an idle worker can take the next run: it has not exited,
    /// broken the protocol or lost its pipes since the last one.
    fn healthy(&mut self) -> bool {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return false;
        }
        if !self.ready {
            // Its start-up is still to be awaited; `wait_ready` judges it.
            return true;
        }
        matches!(
            self.events.try_recv(),
            Err(mpsc::error::TryRecvError::Empty)
        )
    }

    /// Waits for the result of the run in flight.
    async fn result(&mut self) -> Result<RawRunResult, Lost> {
        loop {
            match self.events.recv().await {
                Some(Event::Result(result)) => return Ok(result),
                Some(Event::Broken(message)) => return Err(Lost::Broken(message)),
                Some(Event::Ready { .. }) => {}
                None => return Err(Lost::Crashed),
            }
        }
    }
}

/// The running worker's pid in [`SubprocessExecutor::running`] for the life
/// of a run, cleared however the run ends.
struct Running(Arc<AtomicU32>);

impl Running {
    fn set(slot: &Arc<AtomicU32>, pid: Option<u32>) -> Self {
        slot.store(pid.unwrap_or(0), Ordering::Release);
        Self(Arc::clone(slot))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

/// A worker's stdout: what its launcher already read of it, then the pipe.
type WorkerStdout = tokio::io::Chain<std::io::Cursor<Vec<u8>>, ChildStdout>;

/// A launched worker that no session serves yet (a pooled one, or one just
/// started): its process, its pipes, and the task logging its stderr.
pub(crate) struct RawWorker {
    /// Before `child`, as in [`Worker`].
    tree: ProcessTree,
    child: Child,
    guard: Option<Box<dyn WorkerGuard>>,
    stdin: Stdin,
    stdout: BufReader<WorkerStdout>,
    logger: JoinHandle<()>,
    /// Its `ready` was read (by the pool).
    ready: bool,
}

/// A worker's stdin: free, or still taking the runtime's bytecode (the
/// protocol starts once that is written), or broken.
enum Stdin {
    Free(ChildStdin),
    Writing(JoinHandle<Option<ChildStdin>>),
    Closed,
}

/// The worker's stdin, written by whoever has a message, a line at a time: a
/// run's `execute` from the run's own future (the thread that asked for the
/// run wakes the worker, no writer task in between), call replies from the
/// calls' tasks.
struct Outbox(Mutex<Pipe>);

struct Pipe {
    stdin: Stdin,
    /// One buffer for the life of the worker: no allocation per message.
    line: Vec<u8>,
}

impl Outbox {
    fn new(stdin: Stdin) -> Self {
        Self(Mutex::new(Pipe {
            stdin,
            line: Vec::new(),
        }))
    }

    /// Writes `message` as one line; `Err` once the pipe is gone (the worker
    /// died). Dropped mid-write, a partial line may stay: that happens only
    /// when the worker is being killed (a cancelled run, its calls aborted).
    async fn send(&self, message: &HostMessage) -> Result<(), ()> {
        let mut pipe = self.0.lock().await;
        let Pipe { stdin, line } = &mut *pipe;
        if let Stdin::Writing(task) = stdin {
            // The handle stays in place until it answers: cancel-safe.
            let written = task.await.ok().flatten();
            *stdin = written.map_or(Stdin::Closed, Stdin::Free);
        }
        let Stdin::Free(pipe_in) = stdin else {
            return Err(());
        };
        line.clear();
        if let Err(error) = serde_json::to_writer(&mut *line, message) {
            tracing::error!(%error, "cannot encode a message for the worker");
            return Err(());
        }
        line.push(b'\n');
        if pipe_in.write_all(line).await.is_err() {
            *stdin = Stdin::Closed;
            return Err(());
        }
        Ok(())
    }
}

impl RawWorker {
    /// Starts a worker; with `bytecode`, its `args` are [`worker_args`]'
    /// bootstrap and the bytecode is written to its stdin first.
    pub(crate) async fn launch(
        launcher: &dyn WorkerLauncher,
        command: WorkerCommand,
        bytecode: Option<Arc<Bytecode>>,
    ) -> Result<Self, ExecutorError> {
        let LaunchedWorker {
            mut child,
            tree,
            guard,
            stdout_prefix,
        } = launcher.launch(command).await?;
        let pid = child.id().unwrap_or_default();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ExecutorError::Protocol {
                message: "the worker's pipes are missing".into(),
            });
        };
        let stdin = match bytecode {
            None => Stdin::Free(stdin),
            // More than a pipe holds: written while the worker starts.
            Some(bytecode) => Stdin::Writing(tokio::spawn(async move {
                let mut stdin = stdin;
                stdin.write_all(&bytecode.code).await.ok()?;
                Some(stdin)
            })),
        };
        Ok(Self {
            child,
            tree,
            guard,
            stdin,
            stdout: BufReader::with_capacity(
                64 * 1024,
                std::io::Cursor::new(stdout_prefix).chain(stdout),
            ),
            logger: tokio::spawn(log_stderr(stderr, pid)),
            ready: false,
        })
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// It has not exited (an idle worker someone killed has).
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Reads its `ready`: the first line, and nothing after it (the runtime
    /// writes nothing more until it is asked), so a worker that wrote more
    /// is refused rather than pooled.
    pub(crate) async fn wait_ready(&mut self) -> Result<(), ExecutorError> {
        let broken = |message: String| ExecutorError::Protocol { message };
        let mut line = Vec::new();
        let read = tokio::time::timeout(
            START_TIMEOUT,
            read_line_capped(&mut self.stdout, &mut line, MAX_READY_LINE),
        )
        .await;
        match read {
            Err(_elapsed) => {
                return Err(broken(format!(
                    "the worker did not start within {}s",
                    START_TIMEOUT.as_secs()
                )));
            }
            Ok(Ok(CappedLine::Line)) => {}
            Ok(Ok(CappedLine::TooLong)) => {
                return Err(broken("the worker's first message is too long".into()));
            }
            Ok(Ok(CappedLine::Eof) | Err(_)) => {
                let status = reap(&mut self.child).await;
                let cause = match &self.guard {
                    Some(guard) => guard.explain_exit(status).await,
                    None => None,
                }
                .map(|cause| format!("; {cause}"))
                .unwrap_or_default();
                return Err(broken(format!(
                    "the worker exited during start-up ({}{cause})",
                    describe(status)
                )));
            }
        }
        match serde_json::from_slice::<RuntimeMessage>(&line) {
            Ok(RuntimeMessage::Ready { protocol, .. })
                if protocol == crate::protocol::PROTOCOL_VERSION => {}
            Ok(RuntimeMessage::Ready { protocol, .. }) => {
                return Err(broken(format!(
                    "worker speaks protocol {protocol}, host {}",
                    crate::protocol::PROTOCOL_VERSION
                )));
            }
            _ => return Err(broken("the worker's first message is not `ready`".into())),
        }
        if !self.stdout.buffer().is_empty() {
            return Err(broken(
                "the worker sent more than `ready` before its first run".into(),
            ));
        }
        self.ready = true;
        Ok(())
    }
}

/// `python -I -c <runtime>`: the worker from the embedded source.
fn source_args() -> Vec<OsString> {
    ["-I", "-c", RUNTIME_SOURCE].map(OsString::from).to_vec()
}

/// The worker's arguments for `python`: the embedded runtime as a script, or,
/// once this process has compiled it for that interpreter, a bootstrap that
/// runs the bytecode given on stdin (see [`bytecode`]).
pub(crate) fn worker_args(python: &std::path::Path) -> (Vec<OsString>, Option<Arc<Bytecode>>) {
    match bytecode::cached(python) {
        Some(code) => (
            vec![
                OsString::from("-I"),
                OsString::from("-c"),
                OsString::from(BOOTSTRAP),
                OsString::from(code.code.len().to_string()),
                OsString::from(code.version.to_string()),
            ],
            Some(code),
        ),
        None => (source_args(), None),
    }
}

/// Sets the executor's `interrupted` flag if a run is dropped before it ends.
struct RunGuard(Arc<AtomicBool>, bool);

impl Drop for RunGuard {
    fn drop(&mut self) {
        if self.1 {
            self.0.store(true, Ordering::Release);
        }
    }
}

impl SubprocessExecutor {
    pub fn new(config: SubprocessConfig, host: Arc<Host>) -> Self {
        Self::with_launcher(config, host, Arc::new(DirectLauncher))
    }

    /// The same executor with workers started by `launcher` (the sandbox
    /// and container executors are this executor with their own launcher).
    pub fn with_launcher(
        config: SubprocessConfig,
        host: Arc<Host>,
        launcher: Arc<dyn WorkerLauncher>,
    ) -> Self {
        Self {
            config,
            host,
            launcher,
            template: std::sync::OnceLock::new(),
            python: OnceCell::new(),
            worker: Mutex::new(None),
            spare: Mutex::new(None),
            scratch: std::sync::Mutex::new(None),
            closed: AtomicBool::new(false),
            interrupted: Arc::new(AtomicBool::new(false)),
            running: Arc::new(AtomicU32::new(0)),
            ids: RandomState::new(),
            runs: AtomicU64::new(0),
        }
    }

    /// A fresh, unpredictable, non-zero run id.
    fn next_run_id(&self) -> u64 {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        self.ids.hash_one(n).max(1)
    }

    /// The worker's working directory: the config's, or the session's scratch
    /// folder (made on first use).
    fn working_dir(&self) -> std::io::Result<PathBuf> {
        if let Some(cwd) = &self.config.cwd {
            return Ok(cwd.clone());
        }
        let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(dir) = scratch.as_ref() {
            return Ok(dir.path().to_owned());
        }
        let dir = tempfile::Builder::new()
            .prefix("py-code-mode-session-")
            .tempdir()?;
        let path = dir.path().to_owned();
        *scratch = Some(dir);
        Ok(path)
    }

    async fn spawn(&self) -> Result<Worker, ExecutorError> {
        if !self.launcher.host_worker() {
            // The launcher brings its interpreter and folder (a container):
            // nothing of the host's to resolve, pool or compile.
            let command = WorkerCommand {
                python: self
                    .config
                    .python
                    .clone()
                    .unwrap_or_else(|| "python3".into()),
                args: source_args(),
                env: self.worker_env(),
                cwd: PathBuf::from("/"),
            };
            let worker = RawWorker::launch(&*self.launcher, command, None).await?;
            return Ok(self.attach(worker));
        }
        let python = self
            .python
            .get_or_try_init(|| resolve_python(self.config.python.as_deref()))
            .await?;
        if let Some(worker) = self.take_pooled(python) {
            return Ok(self.attach(worker));
        }
        let spawn_error = |source| ExecutorError::Spawn {
            python: python.clone(),
            source,
        };
        // Before the first worker exists: its /proc/<host>/environ read must fail.
        make_host_undumpable();
        let (args, bytecode) = worker_args(python);
        let command = WorkerCommand {
            python: python.clone(),
            args,
            env: self.worker_env(),
            cwd: self.working_dir().map_err(spawn_error)?,
        };
        let worker = RawWorker::launch(&*self.launcher, command, bytecode).await?;
        Ok(self.attach(worker))
    }

    /// The worker's environment on top of the spawn allow-list.
    fn worker_env(&self) -> Vec<(OsString, OsString)> {
        let mut env = vec![
            (OsString::from("PYTHONIOENCODING"), OsString::from("utf-8")),
            (
                OsString::from("PY_CODE_MODE_OUTPUT_LIMIT"),
                OsString::from(self.config.output_limit.to_string()),
            ),
        ];
        if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
            env.push((OsString::from("VIRTUAL_ENV"), venv));
        }
        env.extend(
            self.config
                .env
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );
        env
    }

    /// A worker from the config's pool, if it has one ready for this
    /// session; either way the pool is topped up in the background.
    ///
    /// A pooled worker started in a scratch folder of its own, which the
    /// session takes over: so only a session's first worker comes from the
    /// pool (later ones start in the folder the first one used), unless the
    /// config names the working directory, which every worker then shares.
    fn take_pooled(&self, python: &std::path::Path) -> Option<RawWorker> {
        let pool = self.config.pool.as_ref()?;
        let template = self
            .template
            .get_or_init(|| {
                let launcher = self.launcher.pool_key()?;
                let env = self.worker_env();
                let key = format!(
                    "{launcher}\0{}\0{:?}\0{env:?}",
                    python.display(),
                    self.config.cwd
                );
                Some(Arc::new(Template {
                    key,
                    launcher: Arc::clone(&self.launcher),
                    python: python.to_owned(),
                    env,
                    cwd: self.config.cwd.clone(),
                }))
            })
            .clone()?;
        let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        if self.config.cwd.is_none() && scratch.is_some() {
            return None;
        }
        let pooled = pool.take(&template.key);
        pool.refill(template);
        let Pooled {
            worker,
            scratch: folder,
        } = pooled?;
        if self.config.cwd.is_none() {
            *scratch = folder;
        }
        Some(worker)
    }

    /// Binds a launched worker to this session: its protocol is served with
    /// this session's host from now on.
    fn attach(&self, worker: RawWorker) -> Worker {
        attach(
            worker,
            Arc::clone(&self.host),
            line_cap(self.config.output_limit),
        )
    }

    /// The next `reset`'s worker, started in the background: the fork and
    /// exec (milliseconds on a busy host) happen off the caller's path.
    /// `None` before the first worker (nothing resolved yet).
    fn spare_soon(&self) -> Option<JoinHandle<Option<Worker>>> {
        let python = self.python.get()?.clone();
        let (args, bytecode) = worker_args(&python);
        let command = WorkerCommand {
            python,
            args,
            env: self.worker_env(),
            cwd: self.working_dir().ok()?,
        };
        let launcher = Arc::clone(&self.launcher);
        let host = Arc::clone(&self.host);
        let cap = line_cap(self.config.output_limit);
        Some(tokio::spawn(async move {
            tokio::time::sleep(SPARE_DELAY).await;
            let worker = RawWorker::launch(&*launcher, command, bytecode)
                .await
                .map_err(|error| tracing::warn!(%error, "cannot start the spare worker"))
                .ok()?;
            Some(attach(worker, host, cap))
        }))
    }
}

/// Binds a launched worker to a session's host.
fn attach(worker: RawWorker, host: Arc<Host>, line_cap: usize) -> Worker {
    let RawWorker {
        child,
        tree,
        guard,
        stdin,
        stdout,
        logger,
        ready,
    } = worker;
    let to_worker = Arc::new(Outbox::new(stdin));
    let (events_tx, events) = mpsc::channel(EVENTS_CAPACITY);
    let in_flight = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn(read_protocol(
        stdout,
        host,
        Arc::clone(&to_worker),
        events_tx,
        Arc::clone(&in_flight),
        line_cap,
        ready,
    ));
    Worker {
        child,
        _tree: tree,
        guard,
        to_worker,
        events,
        in_flight,
        tasks: vec![reader, logger],
        ready,
        used: false,
    }
}

impl SubprocessExecutor {
    /// The live worker, started (and waited for) if there is none or the last
    /// one died or broke the protocol while idle. The flag says variables were
    /// lost since the last run.
    async fn ready_worker(
        &self,
        slot: &mut Option<Worker>,
    ) -> Result<(Worker, bool), ExecutorError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ExecutorError::Closed);
        }
        let mut lost = self.interrupted.swap(false, Ordering::AcqRel);
        let healthy = slot.as_mut().is_some_and(Worker::healthy);
        if !healthy {
            // Killing a tree and starting a process block a thread.
            off_caller_thread().await;
        }
        let mut worker = match slot.take() {
            Some(worker) if healthy => worker,
            Some(worker) => {
                tracing::warn!("the idle worker died or broke the protocol; starting a new one");
                lost |= worker.used;
                drop(worker);
                self.spawn().await?
            }
            None => self.spawn().await?,
        };
        let fresh = !worker.ready;
        worker.wait_ready().await?;
        if fresh && let Some(python) = self.python.get() {
            // After a worker is ready, off its path: the next ones skip compiling.
            bytecode::compile_soon(python);
        }
        Ok((worker, lost))
    }

    /// Starts a replacement at once so the next run is quick; a failure here
    /// is reported by that next run instead.
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
        let (worker, _) = self.ready_worker(&mut slot).await?;
        *slot = Some(worker);
        Ok(())
    }

    async fn run(&self, code: &str, timeout: Duration) -> Result<ExecutionResult, ExecutorError> {
        // No `Instant + Duration` overflow below, whatever the caller passed.
        let timeout = timeout.min(MAX_TIMEOUT);
        let mut slot = self.worker.lock().await;
        let (mut worker, lost) = self.ready_worker(&mut slot).await?;
        let started = Instant::now();
        let id = self.next_run_id();
        worker.in_flight.store(id, Ordering::Release);
        worker.used = true;
        // Until the run ends, the worker lives only in this future: dropping it
        // (a cancelled run) kills the worker's tree and the calls it made.
        let mut guard = RunGuard(Arc::clone(&self.interrupted), true);
        // Declared after `worker`, so it is cleared before the worker is dropped.
        let _running = Running::set(&self.running, worker.child.id());
        let code = code.to_owned();
        let outcome = tokio::time::timeout(timeout, async {
            if worker
                .to_worker
                .send(&HostMessage::Execute { id, code })
                .await
                .is_err()
            {
                return Err(Lost::Crashed);
            }
            worker.result().await
        })
        .await;
        guard.1 = false;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        if !matches!(outcome, Ok(Ok(_))) {
            // The worker is replaced: killing a tree and starting a process
            // block a thread.
            off_caller_thread().await;
        }
        match outcome {
            Ok(Ok(raw)) => {
                worker.in_flight.store(0, Ordering::Release);
                let mut result = raw.finish(duration_ms);
                result.state_reset |= lost;
                match worker.guard.as_ref().and_then(|g| g.limit_reached()) {
                    None => *slot = Some(worker),
                    Some(limit) => {
                        off_caller_thread().await;
                        drop(worker);
                        self.replace(&mut slot).await;
                        went_over(&mut result, &limit);
                    }
                }
                Ok(result)
            }
            Ok(Err(Lost::Crashed)) => {
                let status = reap(&mut worker.child).await;
                // Asked after the reap: by then the launcher's record (an
                // out-of-memory kill in its cgroup) is written.
                let cause = match &worker.guard {
                    Some(guard) => guard.explain_exit(status).await,
                    None => None,
                }
                .unwrap_or_else(|| format!("the Python worker died ({})", describe(status)));
                drop(worker);
                self.replace(&mut slot).await;
                Ok(stopped(
                    "WorkerCrashed",
                    format!(
                        "{cause} while running this code; a new worker was started and all variables were reset"
                    ),
                    duration_ms,
                ))
            }
            Ok(Err(Lost::Broken(message))) => {
                tracing::warn!(%message, "the worker broke the protocol; replacing it");
                drop(worker);
                self.replace(&mut slot).await;
                Ok(stopped(
                    PROTOCOL_ERROR,
                    format!(
                        "{message}; the worker was stopped, a new one was started and all variables were reset"
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

    /// SIGINT to the worker's process group, as a terminal sends it: Python
    /// raises `KeyboardInterrupt` in the cell, and the processes the cell
    /// started get it too.
    fn interrupt(&self) -> bool {
        if !self.launcher.interruptible() {
            return false;
        }
        let pid = self.running.load(Ordering::Acquire);
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        pid > 0 && nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGINT).is_ok()
    }

    /// A fresh interpreter: whatever agent code patched (builtins, the
    /// runtime itself) dies with the old worker.
    async fn reset(&self) -> Result<(), ExecutorError> {
        let mut slot = self.worker.lock().await;
        if slot.is_none() && !self.interrupted.load(Ordering::Acquire) {
            return Ok(()); // no worker yet: nothing to forget
        }
        self.interrupted.store(false, Ordering::Release);
        if let Some(old) = slot.take() {
            // Its calls stop being served now; killing its tree (a walk of
            // /proc, a few ms) happens off the caller's path.
            for task in &old.tasks {
                task.abort();
            }
            tokio::task::spawn_blocking(move || drop(old));
        }
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut spare = self.spare.lock().await;
        let mut next = match spare.take() {
            Some(task) => task.await.ok().flatten(),
            None => None,
        };
        let healthy = next.as_mut().is_some_and(Worker::healthy);
        *slot = match next {
            Some(worker) if healthy => Some(worker),
            _ => self.spawn().await.ok(),
        };
        *spare = self.spare_soon();
        Ok(())
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.worker.lock().await.take();
        if let Some(task) = self.spare.lock().await.take() {
            // Its worker, started or not, is killed with the task's output;
            // waited for, so a worker still starting (its cgroups made) is
            // gone when `close` returns, not after a process exits.
            task.abort();
            let _ = task.await;
        }
        self.scratch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// The line cap for a worker with this output limit; see [`MAX_PROTOCOL_LINE`].
fn line_cap(output_limit: usize) -> usize {
    MAX_PROTOCOL_LINE.saturating_add(output_limit.saturating_mul(12))
}

/// Reads the worker's protocol: serves calls (bounded), passes on its `ready`
/// and the one result of the run in flight, and reports anything else as a
/// violation. Returning drops the calls in flight, which aborts them.
#[expect(
    clippy::too_many_lines,
    reason = "one match over every message the worker may send, each arm short"
)]
async fn read_protocol(
    mut reader: BufReader<WorkerStdout>,
    host: Arc<Host>,
    replies: Arc<Outbox>,
    events: mpsc::Sender<Event>,
    in_flight: Arc<AtomicU64>,
    line_cap: usize,
    // It said `ready` already (to the pool): saying it again is a violation.
    mut ready: bool,
) {
    let mut calls = JoinSet::new();
    let permits = Arc::new(Semaphore::new(MAX_CALLS_IN_FLIGHT));
    let mut line = Vec::new();
    let violation = loop {
        line.clear();
        match read_line_capped(&mut reader, &mut line, line_cap).await {
            Ok(CappedLine::Line) => {}
            Ok(CappedLine::Eof) | Err(_) => return,
            Ok(CappedLine::TooLong) => {
                break format!(
                    "the worker sent a message over {} MiB (`MAX_PROTOCOL_LINE`)",
                    line_cap >> 20
                );
            }
        }
        while calls.try_join_next().is_some() {}
        let claim = |id: u64| {
            id != 0
                && in_flight
                    .compare_exchange(id, 0, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
        };
        match serde_json::from_slice::<RuntimeMessage>(&line) {
            // Calls are served concurrently, so `asyncio.gather` over tools
            // overlaps their work, up to MAX_CALLS_IN_FLIGHT at a time.
            Ok(RuntimeMessage::Call { id, call }) => {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let host = Arc::clone(&host);
                let replies = Arc::clone(&replies);
                calls.spawn(async move {
                    let (outcome, notices) = host.handle_noticed(call).await;
                    drop(permit);
                    let _ = replies
                        .send(&HostMessage::Response {
                            id,
                            outcome,
                            notices,
                        })
                        .await;
                });
            }
            Ok(RuntimeMessage::Result { id, result }) => {
                if !claim(id) {
                    break format!(
                        "the worker sent a result for run {id}, which is not the run in flight (a forged or repeated result)"
                    );
                }
                if events.send(Event::Result(result)).await.is_err() {
                    return;
                }
            }
            // Only the run in flight streams; a late or forged message for
            // another run is dropped (its output is in that run's result).
            Ok(RuntimeMessage::Output { id, stdout, stderr }) => {
                if id != 0 && in_flight.load(Ordering::Acquire) == id {
                    host.stream_output(&stdout, &stderr);
                } else {
                    tracing::debug!(id, "output for a run not in flight, dropped");
                }
            }
            Ok(RuntimeMessage::Ready {
                protocol,
                pid,
                python,
            }) => {
                if ready {
                    break "the worker said `ready` twice".to_owned();
                }
                ready = true;
                tracing::debug!(pid, python, "worker ready");
                if events.send(Event::Ready { protocol }).await.is_err() {
                    return;
                }
            }
            // A message that does not parse (too deep, not UTF-8) is answered
            // when it names what it is: a call gets an error, the run's result
            // becomes an error result. Never a silent drop and a hung run.
            Err(error) => match attribute(&line) {
                Some(("call", id)) => {
                    let outcome = CallOutcome::Error(CallError {
                        kind: "TypeError".into(),
                        message: format!("the host cannot read this call: {error}"),
                    });
                    if replies
                        .send(&HostMessage::Response {
                            id,
                            outcome,
                            notices: Vec::new(),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Some(("result", id)) if claim(id) => {
                    let result = RawRunResult {
                        error: Some(ExecutionError {
                            kind: PROTOCOL_ERROR.into(),
                            message: format!("the host cannot read this run's result: {error}"),
                            traceback: String::new(),
                        }),
                        ..RawRunResult::default()
                    };
                    if events.send(Event::Result(result)).await.is_err() {
                        return;
                    }
                }
                _ => break format!("the worker sent a message the host cannot read: {error}"),
            },
        }
    };
    tracing::warn!(%violation, "protocol violation by the worker");
    let _ = events.send(Event::Broken(violation)).await;
}

/// The `kind` and `id` of a message the runtime wrote (it always writes them
/// first: `{"kind":"call","id":7,...`), read without parsing the rest.
fn attribute(line: &[u8]) -> Option<(&str, u64)> {
    let rest = line.strip_prefix(br#"{"kind":""#)?;
    let end = rest.iter().position(|&b| b == b'"')?;
    let kind = std::str::from_utf8(&rest[..end]).ok()?;
    let rest = rest[end..].strip_prefix(br#"","id":"#)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let id = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    Some((kind, id))
}

/// Logs the worker's own stderr (start-up failures) as lossy UTF-8, one
/// bounded line at a time, until it closes: never stops early, so a child
/// writing there never blocks or dies of `SIGPIPE`.
async fn log_stderr(stderr: ChildStderr, pid: u32) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line_capped(&mut reader, &mut line, MAX_LOG_LINE).await {
            Ok(CappedLine::Line) => {
                tracing::info!(target: "py_code_mode::worker", pid, "{}", String::from_utf8_lossy(&line));
            }
            Ok(CappedLine::TooLong) => {
                let dropped = skip_line(&mut reader).await.unwrap_or_default();
                tracing::info!(target: "py_code_mode::worker", pid, "{} [... {dropped} more bytes]", String::from_utf8_lossy(&line));
            }
            Ok(CappedLine::Eof) | Err(_) => return,
        }
    }
}

/// A run that went over a limit of its worker: whatever it returned, it
/// fails with [`LIMIT_ERROR`] saying which limit (the code's own error, such
/// as the `BlockingIOError` of a refused fork, kept in the message), and the
/// worker it leaves is replaced.
fn went_over(result: &mut ExecutionResult, limit: &str) {
    let fresh = "a new worker was started and all variables were reset";
    let error = result.error.take();
    let message = match &error {
        Some(e) => format!("{limit} ({}: {}); {fresh}", e.kind, e.message),
        None => format!("{limit}; {fresh}"),
    };
    result.error = Some(ExecutionError {
        kind: LIMIT_ERROR.to_owned(),
        message,
        traceback: error.map(|e| e.traceback).unwrap_or_default(),
    });
    result.value = None;
    result.repr = None;
    result.state_reset = true;
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

async fn reap(child: &mut Child) -> Option<ExitStatus> {
    tokio::time::timeout(REAP_TIMEOUT, child.wait())
        .await
        .ok()
        .and_then(Result::ok)
}

fn describe(status: Option<ExitStatus>) -> String {
    status.map_or_else(|| "exit status unknown".to_owned(), |s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_reads_kind_and_id_from_the_prefix_only() {
        assert_eq!(
            attribute(br#"{"kind":"call","id":42,"method":[[[[["#),
            Some(("call", 42))
        );
        assert_eq!(
            attribute(br#"{"kind":"result","id":18446744073709551615,"#),
            Some(("result", u64::MAX))
        );
        assert_eq!(attribute(br#"{"id":1,"kind":"call"}"#), None);
        assert_eq!(attribute(b"garbage"), None);
    }
}
