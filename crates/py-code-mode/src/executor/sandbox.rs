//! The sandbox executor: the subprocess executor's worker and protocol, with
//! the worker started inside the kernel sandbox of [`crate::sandbox`].
//!
//! Tools, skills, artifacts and search stay in the host and are reached over
//! the protocol, so a worker with no network and no view of the user's files
//! still calls the user's tools, whose secrets never enter the sandbox.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::subprocess::{
    DEFAULT_OUTPUT_LIMIT, LaunchedWorker, WorkerCommand, WorkerGuard, WorkerLauncher,
};
use super::{ExecutionResult, Executor, ExecutorFactory, SubprocessConfig, SubprocessExecutor};
use crate::error::ExecutorError;
use crate::host::Host;
use crate::sandbox::cgroups::{Limits, WorkerCgroups};
use crate::sandbox::{
    LAUNCHER_MARKER, Launcher, LayersOff, OFF_ENV, Rlimits, SANDBOX_TMP, SandboxStatus, Spec,
    probe_machine, sandbox_error,
};
use crate::spawn::Spawn;

/// Memory the worker may use by default (its whole tree, `/tmp` included).
pub const DEFAULT_MEMORY: u64 = 1 << 30;
/// Processes the worker may run at once by default: room for agent code's
/// `subprocess` and pools, none for a fork bomb.
pub const DEFAULT_PIDS_LIMIT: u64 = 256;
/// CPUs the worker may use by default.
pub const DEFAULT_CPUS: f64 = 1.0;
/// The largest file the worker may write by default.
pub const DEFAULT_FILE_SIZE: u64 = 1 << 30;
/// Size of the worker's `/tmp` (its working directory) by default.
pub const DEFAULT_SCRATCH_SIZE: u64 = 1 << 30;
/// Open files per process by default (the usual soft limit).
pub const DEFAULT_OPEN_FILES: u64 = 1024;

/// Asks the interpreter which folders it needs: its prefixes and `sys.path`
/// (with `-I`, as the worker runs), and where its binary really is.
const PYTHON_PATHS: &str = "import json, os, sys\n\
paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,\n\
         os.path.dirname(os.path.realpath(sys.executable))}\n\
paths.update(p for p in sys.path if p and os.path.isabs(p))\n\
print(json.dumps(sorted(p for p in paths if os.path.exists(p))))";
/// How long that question may take.
const PYTHON_PATHS_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a sandboxed worker: the limits and the view. The names of
/// the limits are those of the container executor's config.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The interpreter (a path or a name on PATH); default `python3`. Its
    /// prefix, standard library and venv are shown read-only.
    pub python: Option<PathBuf>,
    /// Extra environment variables for the worker.
    pub env: Vec<(String, String)>,
    /// Cap on one run's stdout and on its stderr, in bytes.
    pub output_limit: usize,
    /// Memory of the worker's whole tree, in bytes (cgroup; else address space).
    pub memory: u64,
    /// CPUs the worker may use (cgroup CPU quota).
    pub cpus: f64,
    /// Processes the worker may run at once (cgroup; else `RLIMIT_NPROC`).
    pub pids_limit: u64,
    /// Let agent code reach the network (off: no interface, no socket but `AF_UNIX`).
    pub network: bool,
    /// Host folders or files shown read-only at the same path.
    pub read_only_paths: Vec<PathBuf>,
    /// Host folders shown writable at the same path.
    pub writable_paths: Vec<PathBuf>,
    /// The largest file the worker may write, in bytes.
    pub file_size: u64,
    /// Size of the worker's `/tmp`, its working directory, in bytes.
    pub scratch_size: u64,
    /// Open files per process.
    pub open_files: u64,
    /// The program that applies the sandbox; default this binary, when it
    /// calls [`crate::sandbox::launcher_main`] first in `main`.
    pub launcher: Option<Launcher>,
    /// Sandboxed workers started ahead of need, shared with every session of
    /// the same config that holds a clone of this pool; default none.
    pub pool: Option<super::WorkerPool>,
    /// Layers left off even where they work: diagnostics and tests only
    /// (also [`crate::sandbox::OFF_ENV`]); default none.
    pub layers_off: LayersOff,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            python: None,
            env: Vec::new(),
            output_limit: DEFAULT_OUTPUT_LIMIT,
            memory: DEFAULT_MEMORY,
            cpus: DEFAULT_CPUS,
            pids_limit: DEFAULT_PIDS_LIMIT,
            network: false,
            read_only_paths: Vec::new(),
            writable_paths: Vec::new(),
            file_size: DEFAULT_FILE_SIZE,
            scratch_size: DEFAULT_SCRATCH_SIZE,
            open_files: DEFAULT_OPEN_FILES,
            launcher: None,
            pool: None,
            layers_off: LayersOff::default(),
        }
    }
}

impl ExecutorFactory for SandboxConfig {
    fn build(self: Box<Self>, host: Arc<Host>) -> Result<Box<dyn Executor>, ExecutorError> {
        Ok(Box::new(SandboxExecutor::new(*self, host)?))
    }

    /// The filesystem view always holds (a worker starts only where
    /// namespaces or Landlock work) and memory is capped by a cgroup or the
    /// address-space rlimit; the network is cut unless allowed; CPU is capped
    /// only by a cgroup's quota, so only where one can be made.
    fn capabilities(&self) -> Vec<super::Capability> {
        use super::Capability;
        let off = self
            .layers_off
            .or(LayersOff::from_env().unwrap_or_default());
        let mut capabilities = vec![
            Capability::Timeout,
            Capability::ProcessIsolation,
            Capability::MemoryLimit,
            Capability::Reset,
            Capability::DepsInstall,
        ];
        if !(off.namespaces && off.landlock) {
            capabilities.push(Capability::FilesystemIsolation);
        }
        if !self.network {
            capabilities.push(Capability::NetworkIsolation);
        }
        if !off.cgroups && crate::sandbox::cgroups::probe().active {
            capabilities.push(Capability::CpuLimit);
        }
        capabilities.sort();
        capabilities
    }

    /// Packages go into the worker's venv on the host; the sandbox shows
    /// that venv read-only, so the next `import` finds them.
    fn deps_target(&self) -> crate::deps::DepsTarget {
        crate::deps::DepsTarget::Worker(self.python.clone())
    }

    fn use_python(&mut self, python: PathBuf) {
        self.python = Some(python);
    }
}

/// Runs agent code in a sandboxed worker; see the module docs.
pub struct SandboxExecutor {
    inner: SubprocessExecutor,
    launcher: Arc<SandboxLauncher>,
}

impl SandboxExecutor {
    /// Checks the config (paths exist, limits are sane); the sandbox itself
    /// is probed when the first worker starts.
    pub fn new(config: SandboxConfig, host: Arc<Host>) -> Result<Self, ExecutorError> {
        let launcher = config
            .launcher
            .clone()
            .or_else(Launcher::current_exe)
            .ok_or_else(|| {
                sandbox_error(
                "no launcher: this program did not call `py_code_mode::sandbox::launcher_main()`\n\
                 hint: call it first in `main`, or set `SandboxConfig::launcher`"
                    .into(),
            )
            })?;
        if !(config.cpus.is_finite() && config.cpus > 0.0) {
            return Err(sandbox_error(format!(
                "`cpus` must be above 0, not {}",
                config.cpus
            )));
        }
        let read_only = shown_paths(&config.read_only_paths, "read_only_paths")?;
        let writable = shown_paths(&config.writable_paths, "writable_paths")?;
        let sandbox = Arc::new(SandboxLauncher {
            launcher,
            read_only,
            writable,
            limits: Limits {
                memory: config.memory,
                pids: config.pids_limit,
                cpus: config.cpus,
            },
            network: config.network,
            file_size: config.file_size,
            scratch_size: config.scratch_size,
            open_files: config.open_files,
            layers_off: config.layers_off,
            prepared: OnceCell::new(),
        });
        let subprocess = SubprocessConfig {
            python: config.python,
            cwd: None,
            env: config.env,
            output_limit: config.output_limit,
            pool: config.pool,
        };
        Ok(Self {
            inner: SubprocessExecutor::with_launcher(
                subprocess,
                host,
                Arc::clone(&sandbox) as Arc<dyn WorkerLauncher>,
            ),
            launcher: sandbox,
        })
    }

    /// The layers in force: those that work here, less those switched off
    /// (`layers_off`, [`OFF_ENV`]).
    pub async fn status(&self) -> Result<SandboxStatus, ExecutorError> {
        Ok(self.launcher.layers().await?.0)
    }
}

#[async_trait]
impl Executor for SandboxExecutor {
    async fn start(&self) -> Result<(), ExecutorError> {
        self.inner.start().await
    }

    async fn run(&self, code: &str, timeout: Duration) -> Result<ExecutionResult, ExecutorError> {
        self.inner.run(code, timeout).await
    }

    async fn reset(&self) -> Result<(), ExecutorError> {
        self.inner.reset().await
    }

    fn interrupt(&self) -> bool {
        self.inner.interrupt()
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

/// Host paths the user adds to the view: absolute, existing, canonical, and
/// never `/` (the whole machine).
fn shown_paths(paths: &[PathBuf], what: &str) -> Result<Vec<PathBuf>, ExecutorError> {
    paths
        .iter()
        .map(|path| {
            let real = std::fs::canonicalize(path).map_err(|e| {
                sandbox_error(format!("`{what}`: cannot find `{}`: {e}", path.display()))
            })?;
            if real == Path::new("/") {
                return Err(sandbox_error(format!(
                    "`{what}`: `{}` would show the whole machine\nhint: name the folders the agent needs",
                    path.display()
                )));
            }
            Ok(real)
        })
        .collect()
}

/// Starts workers through the launcher, with the limits and view of the config.
struct SandboxLauncher {
    launcher: Launcher,
    read_only: Vec<PathBuf>,
    writable: Vec<PathBuf>,
    limits: Limits,
    network: bool,
    file_size: u64,
    scratch_size: u64,
    open_files: u64,
    layers_off: LayersOff,
    prepared: OnceCell<Prepared>,
}

/// What the first start learns: the layers, and the interpreter's folders.
struct Prepared {
    status: SandboxStatus,
    read_only: Vec<PathBuf>,
}

impl SandboxLauncher {
    /// The layers this launcher applies, and whether the machine had a
    /// filesystem layer before any was switched off.
    async fn layers(&self) -> Result<(SandboxStatus, bool), ExecutorError> {
        let machine = probe_machine(&self.launcher).await?;
        let env = LayersOff::from_env().map_err(sandbox_error)?;
        let mut status = machine.clone();
        env.apply(&mut status, &format!("`{OFF_ENV}`"));
        self.layers_off
            .apply(&mut status, "`layers_off` of the sandbox config");
        Ok((status, machine.usable()))
    }

    async fn prepared(&self, python: &Path) -> Result<&Prepared, ExecutorError> {
        self.prepared
            .get_or_try_init(|| async {
                let (status, machine_usable) = self.layers().await?;
                // seccomp alone is no sandbox; it runs only when asked for on
                // purpose (the view layers switched off where they work), to
                // show what seccomp holds by itself.
                let seccomp_on_purpose = machine_usable && status.seccomp.active;
                if !status.usable() && !seccomp_on_purpose {
                    return Err(sandbox_error(format!(
                        "no sandbox layer works here ({})\nhint: `--executor subprocess` runs agent code without a sandbox",
                        status.summary()
                    )));
                }
                if self.layers_off.or(LayersOff::from_env().unwrap_or_default()).any() {
                    tracing::warn!(
                        "sandbox layers switched off for diagnostics: {}",
                        status.summary()
                    );
                }
                let mut read_only = crate::sandbox::launcher_system_paths();
                read_only.extend(python_paths(python).await?);
                read_only.extend(self.read_only.iter().cloned());
                Ok(Prepared {
                    status,
                    read_only: outermost(read_only),
                })
            })
            .await
    }
}

#[async_trait]
impl WorkerLauncher for SandboxLauncher {
    async fn launch(&self, command: WorkerCommand) -> Result<LaunchedWorker, ExecutorError> {
        let prepared = self.prepared(&command.python).await?;
        let status = &prepared.status;
        let cgroups = if status.cgroups.active {
            Some(
                WorkerCgroups::create(self.limits)
                    .map_err(|e| sandbox_error(format!("cannot make the worker's cgroups: {e}")))?,
            )
        } else {
            None
        };
        let held = |controller| cgroups.as_ref().is_some_and(|c| c.has(controller));
        let spec = Spec {
            probe: false,
            namespaces: status.namespaces.active,
            network: self.network,
            landlock: status.landlock.active,
            seccomp: status.seccomp.active,
            read_only: prepared.read_only.clone(),
            writable: self.writable.clone(),
            scratch: command.cwd.clone(),
            scratch_bytes: self.scratch_size,
            cgroups: cgroups
                .as_ref()
                .map(|c| c.dirs().to_vec())
                .unwrap_or_default(),
            rlimits: Rlimits {
                file_size: self.file_size,
                open_files: self.open_files,
                processes: (!held("pids")).then_some(self.limits.pids),
                address_space: (!held("memory")).then_some(self.limits.memory),
            },
        };
        let spec = serde_json::to_string(&spec).map_err(|e| sandbox_error(e.to_string()))?;
        // Where temporary files go: the sandbox's own `/tmp`, or the
        // session's scratch folder when the host's `/tmp` is all there is.
        let tmp = if status.namespaces.active {
            PathBuf::from(SANDBOX_TMP)
        } else {
            command.cwd.clone()
        };
        let (child, tree) = Spawn::new(&self.launcher.program)
            .args(&self.launcher.args)
            .arg(LAUNCHER_MARKER)
            .arg(spec)
            .arg("--")
            .arg(&command.python)
            .args(&command.args)
            .stdin_piped()
            // Not `drop_capabilities`: mapping the host's uid 0 into the user
            // namespace needs `CAP_SETFCAP`. The launcher runs no agent code;
            // the init drops every capability before the worker starts.
            .current_dir(&command.cwd)
            .envs(command.env)
            .env("HOME", &tmp)
            .env("TMPDIR", &tmp)
            .spawn()
            .map_err(|e| {
                sandbox_error(format!(
                    "cannot start the launcher `{}`: {e}",
                    self.launcher.program.display()
                ))
            })?;
        Ok(LaunchedWorker {
            stdout_prefix: Vec::new(),
            child,
            tree,
            guard: Some(Box::new(SandboxGuard {
                cgroups,
                memory: self.limits.memory,
                pids: self.limits.pids,
                forks_refused: AtomicU64::new(0),
            })),
        })
    }

    /// The launcher and the sandbox's init catch `SIGINT` and do nothing,
    /// so it reaches only the worker.
    fn interruptible(&self) -> bool {
        true
    }

    /// Every setting of the sandbox: workers of equal configs are alike.
    fn pool_key(&self) -> Option<String> {
        Some(format!(
            "sandbox {:?} {:?} {:?} {:?} {} {} {} {} {:?}",
            self.launcher,
            self.read_only,
            self.writable,
            self.limits,
            self.network,
            self.file_size,
            self.scratch_size,
            self.open_files,
            self.layers_off
        ))
    }
}

/// A worker's cgroups, removed when it is gone.
struct SandboxGuard {
    cgroups: Option<WorkerCgroups>,
    memory: u64,
    pids: u64,
    /// Forks refused at the process limit, as of the last run's end.
    forks_refused: AtomicU64,
}

#[async_trait]
impl WorkerGuard for SandboxGuard {
    async fn explain_exit(&self, _status: Option<std::process::ExitStatus>) -> Option<String> {
        self.cgroups
            .as_ref()
            .is_some_and(WorkerCgroups::oom_killed)
            .then(|| {
                format!(
                    "out of memory: the worker went over its `memory` limit of {} MiB and was killed",
                    self.memory >> 20
                )
            })
    }

    /// A fork refused at `pids.max` during the run: the processes the
    /// worker keeps hold the limit, so it is replaced. (Under the rlimit
    /// that stands in without a pids cgroup, the refusal is not seen here;
    /// the code gets its `BlockingIOError` and the worker goes on.)
    fn limit_reached(&self) -> Option<String> {
        let refused = self.cgroups.as_ref()?.forks_refused();
        (self.forks_refused.swap(refused, Ordering::Relaxed) < refused).then(|| {
            format!(
                "the run went over the worker's `pids_limit` of {} processes",
                self.pids
            )
        })
    }
}

/// The interpreter's folders, asked once per interpreter path and process.
async fn python_paths(python: &Path) -> Result<Vec<PathBuf>, ExecutorError> {
    static KNOWN: std::sync::Mutex<Option<HashMap<PathBuf, Vec<PathBuf>>>> =
        std::sync::Mutex::new(None);
    let known = |python: &Path| {
        KNOWN
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|map| map.get(python).cloned())
    };
    if let Some(paths) = known(python) {
        return Ok(paths);
    }
    let paths = ask_python_paths(python).await?;
    KNOWN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .insert(python.to_owned(), paths.clone());
    Ok(paths)
}

async fn ask_python_paths(python: &Path) -> Result<Vec<PathBuf>, ExecutorError> {
    let (child, _tree) = Spawn::new(python)
        .args(["-I", "-c", PYTHON_PATHS])
        .spawn()
        .map_err(|source| ExecutorError::Spawn {
            python: python.to_owned(),
            source,
        })?;
    let output = tokio::time::timeout(PYTHON_PATHS_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| sandbox_error(format!("`{}` did not list its folders", python.display())))?
        .map_err(|source| ExecutorError::Spawn {
            python: python.to_owned(),
            source,
        })?;
    serde_json::from_slice::<Vec<PathBuf>>(&output.stdout).map_err(|e| {
        sandbox_error(format!(
            "`{}` did not list its folders ({e}): {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    })
}

/// The paths with those inside another one dropped (a bind of the outer
/// one shows them already).
fn outermost(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.sort();
    paths.dedup();
    let mut kept: Vec<PathBuf> = Vec::new();
    for path in paths {
        if !kept.iter().any(|outer| path.starts_with(outer)) {
            kept.push(path);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showing_the_whole_machine_or_a_missing_path_is_refused() {
        assert!(shown_paths(&[PathBuf::from("/")], "read_only_paths").is_err());
        assert!(shown_paths(&[PathBuf::from("/no/such/folder")], "read_only_paths").is_err());
        assert_eq!(
            shown_paths(&[PathBuf::from("/usr/../usr")], "read_only_paths").ok(),
            Some(vec![PathBuf::from("/usr")])
        );
    }

    #[test]
    fn nested_paths_are_shown_through_their_outer_folder() {
        let paths = [
            "/usr/lib/python3.11",
            "/usr",
            "/opt/venv",
            "/opt/venv/lib",
            "/opt/v",
        ]
        .map(PathBuf::from)
        .to_vec();
        assert_eq!(
            outermost(paths),
            ["/opt/v", "/opt/venv", "/usr"].map(PathBuf::from).to_vec()
        );
    }
}
