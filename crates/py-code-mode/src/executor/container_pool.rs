//! The container engine's CLI and the pool of started containers.
//!
//! Every engine command runs on one runtime of this module's own (one
//! thread, alive as long as the process): the containers' `run -i` pipes,
//! the refills and the `rm -f` of dropped workers outlive any caller's
//! runtime (a test's, a finished `asyncio` loop's), and the parent-death
//! signal of each `run` is tied to a thread that never retires.
//!
//! Containers carry the label `py-code-mode.session=<boot id>.<pid>.<start
//! time>` naming the host that started them: the host's watchdog removes them
//! when the host exits, and the first pool of a later host removes those
//! whose host is gone (same boot id, and no process with that pid and start
//! time). Containers of another machine's hosts (another boot id) are never
//! touched.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::runtime::Runtime;

use super::container::{ContainerConfig, ContainerEngine};
use super::subprocess::{LaunchedWorker, WorkerGuard};
use crate::error::ExecutorError;
use crate::spawn::{ProcessTree, Spawn, make_host_undumpable};

/// The label on every container: the host that started it.
pub const SESSION_LABEL: &str = "py-code-mode.session";
/// Every container's name starts so.
pub const NAME_PREFIX: &str = "pcm-";
/// How long an engine command (`image inspect`, `rm -f`, `ps`) may take.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a pooled container may take to say `ready`.
const WARM_TIMEOUT: Duration = Duration::from_secs(30);
/// What of an engine's error output goes into a message.
const MAX_ENGINE_MESSAGE: usize = 2048;
/// The engine's environment: where its daemon is and how to reach it.
const ENGINE_ENV: &[&str] = &[
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_API_VERSION",
    "CONTAINER_HOST",
    "CONTAINERS_CONF",
    "XDG_RUNTIME_DIR",
];

/// The engine's CLI, found on PATH.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Engine {
    pub kind: ContainerEngine,
    pub path: PathBuf,
}

impl Engine {
    /// The chosen engine, or `docker` then `podman` when none is chosen.
    pub fn find(choice: Option<ContainerEngine>) -> Result<Self, ExecutorError> {
        let candidates = choice.map_or_else(
            || vec![ContainerEngine::Docker, ContainerEngine::Podman],
            |kind| vec![kind],
        );
        for kind in &candidates {
            if let Some(path) = super::python::find_on_path(std::path::Path::new(kind.command())) {
                return Ok(Self { kind: *kind, path });
            }
        }
        let names: Vec<_> = candidates
            .iter()
            .map(|k| format!("`{}`", k.command()))
            .collect();
        Err(ExecutorError::Container {
            engine: "container".into(),
            message: format!(
                "no container engine: {} not found on PATH",
                names.join(" or ")
            ),
            hint: Some("install Docker or Podman, or choose another executor".into()),
        })
    }

    fn name(&self) -> &'static str {
        self.kind.command()
    }

    /// `engine args…` under the spawn policy, with the engine's environment,
    /// in [`engine_dir`] (every path in its arguments is absolute).
    fn command<I, S>(&self, args: I) -> Spawn
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let spawn = Spawn::new(&self.path).args(args).envs(
            ENGINE_ENV
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (*k, v))),
        );
        match engine_dir() {
            Some(dir) => spawn.current_dir(dir),
            None => spawn,
        }
    }

    /// Runs a short engine command on the engine runtime: its stdout, or the
    /// engine's error.
    async fn output(&self, args: Vec<String>) -> Result<String, ExecutorError> {
        let shown = format!("{} {}", self.name(), args.join(" "));
        let spawn = self.command(&args);
        let result = on_engine_runtime(async move {
            let (child, _tree) = spawn.spawn()?;
            tokio::time::timeout(ENGINE_TIMEOUT, child.wait_with_output())
                .await
                .map_err(|_| std::io::Error::other("timed out"))?
        })
        .await?;
        let output = result.map_err(|error| ExecutorError::Container {
            engine: self.name().into(),
            message: format!("`{shown}` failed: {error}"),
            hint: None,
        })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        Err(ExecutorError::Container {
            engine: self.name().into(),
            message: format!(
                "`{shown}` failed ({}): {}",
                output.status,
                bounded(&String::from_utf8_lossy(&output.stderr))
            ),
            hint: None,
        })
    }

    /// Removes containers, whatever their state; failures are logged.
    async fn remove(&self, names: Vec<String>) {
        if names.is_empty() {
            return;
        }
        let mut args = vec!["rm".to_owned(), "-f".to_owned()];
        args.extend(names);
        if let Err(error) = self.output(args).await {
            tracing::warn!(%error, "cannot remove containers");
        }
    }
}

/// The one runtime engine commands run on; see the module docs.
fn engine_runtime() -> Result<&'static Runtime, ExecutorError> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("py-code-mode-containers")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|message| ExecutorError::Container {
            engine: "container".into(),
            message: format!("cannot start the container runtime thread: {message}"),
            hint: None,
        })
}

/// Runs `task` on the engine runtime and waits for it from any runtime.
/// Where engine commands run: Podman's `conmon` leaves a file named `oom`
/// in its working directory when a container is killed for memory, which
/// would otherwise be the application's (a user's project folder). A folder
/// of this user's under the temporary directory, made once per process;
/// `None` (the caller's directory) if it cannot be made.
fn engine_dir() -> Option<&'static std::path::Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
        let dir =
            std::env::temp_dir().join(format!("py-code-mode-engine-{}", nix::unistd::getuid()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => {
                tracing::debug!(%error, dir = %dir.display(), "cannot make the engine's folder");
                return None;
            }
        }
        // Only a real folder of ours: never follow a link someone else left.
        let meta = std::fs::symlink_metadata(&dir).ok()?;
        (meta.is_dir() && meta.uid() == nix::unistd::getuid().as_raw()).then_some(dir)
    })
    .as_deref()
}

async fn on_engine_runtime<T: Send + 'static>(
    task: impl Future<Output = T> + Send + 'static,
) -> Result<T, ExecutorError> {
    engine_runtime()?
        .spawn(task)
        .await
        .map_err(|error| ExecutorError::Container {
            engine: "container".into(),
            message: format!("an engine task failed: {error}"),
            hint: None,
        })
}

/// Who this host is, as its containers' label says: boot id, pid, start time.
fn host_id() -> &'static str {
    static ID: LazyLock<String> = LazyLock::new(|| {
        let pid = std::process::id();
        format!(
            "{}.{pid}.{}",
            boot_id(),
            start_time(pid).unwrap_or_default()
        )
    });
    &ID
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The start time of `pid` (clock ticks since boot, field 22 of its stat):
/// with the pid, it names one process even after the pid is reused.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name's last `)`: state is field 3, so the
    // start time (field 22) is the 20th.
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Whether the host named by a label is certainly gone: same machine (boot
/// id) and no process with that pid and start time.
fn host_is_gone(label: &str) -> bool {
    let mut parts = label.split('.');
    let (Some(boot), Some(pid), Some(started)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(started)) = (pid.parse::<u32>(), started.parse::<u64>()) else {
        return false;
    };
    boot == boot_id() && start_time(pid) != Some(started)
}

/// Once per engine and process: the watchdog that removes this host's
/// containers when it exits, and a sweep of the containers of dead hosts.
fn guard_engine(engine: &Engine) -> Result<(), ExecutorError> {
    static GUARDED: LazyLock<Mutex<HashMap<PathBuf, ChildStdin>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let mut guarded = GUARDED.lock().unwrap_or_else(PoisonError::into_inner);
    if guarded.contains_key(&engine.path) {
        return Ok(());
    }
    let runtime = engine_runtime()?;
    // A shell that waits for its stdin to close, which happens when this
    // process exits however it exits (even `SIGKILL`), then removes the
    // host's containers. It ignores the parent-death signal and Ctrl-C
    // (it must outlive the host for that one command).
    let script = r#"trap '' HUP INT TERM; while read -r _; do :; done; ids=$("$0" ps -aq --filter "label=$1"); [ -z "$ids" ] || exec "$0" rm -f $ids >/dev/null 2>&1"#;
    let label = format!("{SESSION_LABEL}={}", host_id());
    let spawn = Spawn::new("/bin/sh")
        .args(["-c", script])
        .arg(&engine.path)
        .arg(&label)
        .stdin_piped()
        .parent_death_signal(Signal::SIGHUP)
        .envs(
            ENGINE_ENV
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (*k, v))),
        );
    let _enter = runtime.enter();
    let (mut child, tree) = spawn.spawn().map_err(|error| ExecutorError::Container {
        engine: engine.name().into(),
        message: format!("cannot start the container watchdog `/bin/sh`: {error}"),
        hint: None,
    })?;
    let Some(stdin) = child.stdin.take() else {
        return Err(ExecutorError::Container {
            engine: engine.name().into(),
            message: "the container watchdog has no stdin".into(),
            hint: None,
        });
    };
    // The watchdog lives as long as the process: never killed, never reaped.
    std::mem::forget(tree);
    std::mem::forget(child);
    guarded.insert(engine.path.clone(), stdin);
    let engine = engine.clone();
    runtime.spawn(async move { sweep(&engine).await });
    Ok(())
}

/// Removes the containers whose host is gone.
async fn sweep(engine: &Engine) {
    // Docker's `ps` templates have a `Label` method; Podman's a `Labels` map.
    let format = match engine.kind {
        ContainerEngine::Docker => format!("{{{{.Names}}}} {{{{.Label \"{SESSION_LABEL}\"}}}}"),
        ContainerEngine::Podman => {
            format!("{{{{.Names}}}} {{{{index .Labels \"{SESSION_LABEL}\"}}}}")
        }
    };
    let args = vec![
        "ps".into(),
        "-a".into(),
        "--filter".into(),
        format!("label={SESSION_LABEL}"),
        "--format".into(),
        format,
    ];
    let listing = match engine.output(args).await {
        Ok(listing) => listing,
        Err(error) => {
            tracing::warn!(%error, "cannot list containers to sweep");
            return;
        }
    };
    let dead: Vec<String> = listing
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(name, label)| name.starts_with(NAME_PREFIX) && host_is_gone(label))
        .map(|(name, _)| name.to_owned())
        .collect();
    if !dead.is_empty() {
        tracing::info!(
            count = dead.len(),
            "removing containers left by hosts that are gone"
        );
        engine.remove(dead).await;
    }
}

/// Started containers of one config, shared by every executor of it.
pub(crate) struct Pool {
    engine: Engine,
    image: String,
    /// `run` options and the command after the image.
    options: Vec<String>,
    command: Vec<String>,
    memory: u64,
    size: usize,
    idle: Mutex<VecDeque<Started>>,
    refilling: AtomicBool,
    /// The image was found once; later failures show at start.
    checked: AtomicBool,
}

impl Pool {
    /// The process's pool for this engine and config.
    pub fn shared(engine: Engine, config: &ContainerConfig) -> Result<Arc<Self>, ExecutorError> {
        static POOLS: LazyLock<Mutex<HashMap<String, Arc<Pool>>>> =
            LazyLock::new(|| Mutex::new(HashMap::new()));
        guard_engine(&engine)?;
        let options = config.run_options(engine.kind);
        let command = config.worker_command();
        let mut key = engine.path.to_string_lossy().into_owned();
        let _ = write!(
            key,
            "\0{}\0{}\0{}",
            config.image,
            config.pool_size,
            options.join("\0")
        );
        let _ = write!(key, "\0{}", config.python);
        let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
        let pool = pools.entry(key).or_insert_with(|| {
            Arc::new(Self {
                engine,
                image: config.image.clone(),
                options,
                command,
                memory: config.memory,
                size: config.pool_size,
                idle: Mutex::new(VecDeque::new()),
                refilling: AtomicBool::new(false),
                checked: AtomicBool::new(false),
            })
        });
        Ok(Arc::clone(pool))
    }

    /// A started worker: a warm one from the pool, else a new one. The pool
    /// is refilled in the background either way.
    pub async fn take(self: &Arc<Self>) -> Result<LaunchedWorker, ExecutorError> {
        if !self.checked.load(Ordering::Acquire) {
            self.check_image().await?;
            self.checked.store(true, Ordering::Release);
        }
        let warm = loop {
            let next = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front();
            match next {
                // One that died while waiting (the daemon restarted) is dropped.
                Some(mut worker) => {
                    if matches!(worker.child.try_wait(), Ok(None)) {
                        break Some(worker);
                    }
                }
                None => break None,
            }
        };
        self.refill();
        let started = match warm {
            Some(started) => started,
            None => {
                let pool = Arc::clone(self);
                on_engine_runtime(async move { pool.start() }).await??
            }
        };
        started.into_worker()
    }

    /// Whether the image is there (and the daemon answers), with the error
    /// a person can act on.
    async fn check_image(&self) -> Result<(), ExecutorError> {
        let args = vec![
            "image".into(),
            "inspect".into(),
            "--format".into(),
            "{{.Id}}".into(),
            self.image.clone(),
        ];
        match self.engine.output(args).await {
            Ok(_) => Ok(()),
            Err(ExecutorError::Container { message, .. })
                if message.to_lowercase().contains("no such image")
                    || message.contains("image not known") =>
            {
                Err(ExecutorError::Container {
                    engine: self.engine.name().into(),
                    message: format!("image `{}` not found", self.image),
                    hint: Some(format!(
                        "build it: `{} build -f docker/Dockerfile.tools -t {} .`",
                        self.engine.name(),
                        self.image
                    )),
                })
            }
            Err(ExecutorError::Container { message, .. }) => Err(ExecutorError::Container {
                engine: self.engine.name().into(),
                message: format!(
                    "cannot reach the engine for image `{}`: {message}",
                    self.image
                ),
                hint: Some(format!(
                    "is the {} daemon running? check `{} info` (and `DOCKER_HOST`)",
                    self.engine.name(),
                    self.engine.name()
                )),
            }),
            Err(other) => Err(other),
        }
    }

    /// Starts one container (on the engine runtime).
    fn start(&self) -> Result<Started, ExecutorError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // Before the first worker exists: its /proc/<host>/environ read must fail.
        make_host_undumpable();
        let nonce = std::collections::hash_map::RandomState::new();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{NAME_PREFIX}{}-{n}-{:08x}",
            std::process::id(),
            std::hash::BuildHasher::hash_one(&nonce, n) >> 32
        );
        let label = format!("{SESSION_LABEL}={}", host_id());
        let mut args: Vec<String> = vec![
            "run".into(),
            "--init".into(),
            "-i".into(),
            "--name".into(),
            name.clone(),
            "--label".into(),
            label,
        ];
        args.extend(self.options.iter().cloned());
        args.push(self.image.clone());
        args.extend(self.command.iter().cloned());
        let (mut child, tree) =
            self.engine
                .command(&args)
                .stdin_piped()
                .spawn()
                .map_err(|error| ExecutorError::Container {
                    engine: self.engine.name().into(),
                    message: format!(
                        "cannot start `{} run … {}`: {error}",
                        self.engine.name(),
                        self.image
                    ),
                    hint: None,
                })?;
        let stop = ContainerStop {
            tree,
            engine: self.engine.clone(),
            name,
            memory: self.memory,
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ExecutorError::Protocol {
                message: "the container's pipes are missing".into(),
            });
        };
        Ok(Started {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            stderr,
            stop,
        })
    }

    /// Starts containers until `size` wait ready, one at a time, in the
    /// background; a container that fails to start stops the refill (the
    /// next session's own start reports why).
    fn refill(self: &Arc<Self>) {
        if self.size == 0 || self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = engine_runtime() else {
            self.refilling.store(false, Ordering::Release);
            return;
        };
        let pool = Arc::clone(self);
        runtime.spawn(async move {
            while pool.idle.lock().unwrap_or_else(PoisonError::into_inner).len() < pool.size {
                match pool.start_warm().await {
                    Ok(worker) => pool
                        .idle
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push_back(worker),
                    Err(error) => {
                        tracing::warn!(%error, image = pool.image, "cannot start a pooled container");
                        break;
                    }
                }
            }
            pool.refilling.store(false, Ordering::Release);
        });
    }

    /// A started container whose worker has written its first line (the
    /// `ready`), left unread in the buffer for the protocol reader.
    async fn start_warm(&self) -> Result<Started, ExecutorError> {
        let mut started = self.start()?;
        let first = tokio::time::timeout(WARM_TIMEOUT, started.stdout.fill_buf()).await;
        match first {
            Ok(Ok(bytes)) if !bytes.is_empty() => Ok(started),
            _ => Err(ExecutorError::Container {
                engine: self.engine.name().into(),
                message: format!("a container of `{}` did not start", self.image),
                hint: None,
            }),
        }
    }
}

/// A started container, its pipes registered with the engine runtime.
struct Started {
    child: Child,
    stdin: ChildStdin,
    /// Holds the worker's first line once warm.
    stdout: BufReader<ChildStdout>,
    stderr: ChildStderr,
    stop: ContainerStop,
}

impl Started {
    /// The worker for a session, its protocol pipes moved to the caller's
    /// runtime: I/O polled through another runtime's reactor costs a thread
    /// hop per message (a `1+1` run took ~1 ms instead of ~0.2 ms).
    fn into_worker(self) -> Result<LaunchedWorker, ExecutorError> {
        let moved = |error: std::io::Error| ExecutorError::Protocol {
            message: format!("cannot take over the container's pipes: {error}"),
        };
        let buffered = self.stdout.buffer().to_vec();
        let stdout = self.stdout.into_inner().into_owned_fd().map_err(moved)?;
        let stdout =
            ChildStdout::from_std(std::process::ChildStdout::from(stdout)).map_err(moved)?;
        let stdin = self.stdin.into_owned_fd().map_err(moved)?;
        let stdin = ChildStdin::from_std(std::process::ChildStdin::from(stdin)).map_err(moved)?;
        let mut child = self.child;
        child.stdin = Some(stdin);
        child.stdout = Some(stdout);
        child.stderr = Some(self.stderr);
        Ok(LaunchedWorker {
            child,
            // The engine CLI's tree is the guard's: killing it alone would
            // leave the container running.
            tree: ProcessTree::new(None),
            guard: Some(Box::new(self.stop)),
            stdout_prefix: buffered,
        })
    }
}

/// Stops a container: kills the engine CLI's `run` and removes the container
/// (killing `run` alone leaves the container running).
struct ContainerStop {
    tree: ProcessTree,
    engine: Engine,
    name: String,
    memory: u64,
}

#[async_trait]
impl WorkerGuard for ContainerStop {
    async fn explain_exit(&self, status: Option<ExitStatus>) -> Option<String> {
        // `run`'s own exit codes: the engine failed, or the command did not run.
        match status.and_then(|s| s.code()) {
            Some(125) => {
                return Some(format!(
                    "`{} run` could not start the container; its error is in the log (`PY_CODE_MODE_LOG=info`)",
                    self.engine.name()
                ));
            }
            Some(code @ (126 | 127)) => {
                return Some(format!(
                    "the image's interpreter could not be run (exit {code}); the image needs `python3` on its PATH"
                ));
            }
            _ => {}
        }
        let args = vec![
            "inspect".into(),
            "--format".into(),
            "{{.State.OOMKilled}}".into(),
            self.name.clone(),
        ];
        let oom = self.engine.output(args).await.ok()?;
        if oom.trim() == "true" {
            return Some(format!(
                "out of memory: the container `{}` hit its memory limit of {} and was killed",
                self.name,
                human_size(self.memory)
            ));
        }
        // Podman 4 on cgroup v1 never sets `OOMKilled`: say what is known.
        (self.engine.kind == ContainerEngine::Podman
            && status.and_then(|s| s.code()) == Some(137))
        .then(|| {
            format!(
                "killed by SIGKILL; Podman does not report OOM kills here, so it may have run out of memory (limit {})",
                human_size(self.memory)
            )
        })
    }
}

impl Drop for ContainerStop {
    fn drop(&mut self) {
        self.tree.kill();
        let engine = self.engine.clone();
        let name = std::mem::take(&mut self.name);
        if let Ok(runtime) = engine_runtime() {
            runtime.spawn(async move { engine.remove(vec![name]).await });
        }
    }
}

/// `512m`, `1g`, or bytes: a size as Docker spells it.
fn human_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")];
    UNITS
        .iter()
        .find(|(unit, _)| bytes.is_multiple_of(*unit))
        .map_or_else(
            || format!("{bytes}b"),
            |(unit, suffix)| format!("{}{suffix}", bytes / unit),
        )
}

fn bounded(text: &str) -> String {
    let text = text.trim();
    if text.len() <= MAX_ENGINE_MESSAGE {
        return text.to_owned();
    }
    let mut end = MAX_ENGINE_MESSAGE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [...]", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_host_is_never_gone_and_a_dead_one_is() {
        assert!(!host_is_gone(host_id()));
        let me = std::process::id();
        let started = start_time(me).unwrap();
        assert!(host_is_gone(&format!("{}.{me}.{}", boot_id(), started + 1)));
        // Another machine's host: never judged.
        assert!(!host_is_gone(&format!("other-boot.{me}.{}", started + 1)));
        assert!(!host_is_gone("garbage"));
    }

    #[test]
    fn sizes_read_as_docker_spells_them() {
        assert_eq!(human_size(512 << 20), "512m");
        assert_eq!(human_size(1 << 30), "1g");
        assert_eq!(human_size(1000), "1000b");
    }
}
