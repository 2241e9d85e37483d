//! The kernel sandbox the sandbox executor starts its worker in.
//!
//! The host never sandboxes itself and never applies a layer in `pre_exec`
//! of its own (multi-threaded) process: it starts a **launcher**, a small
//! single-threaded program, which applies the layers to itself in order and
//! then execs the interpreter:
//!
//! 1. joins the worker's cgroups (memory, pids, cpu; made by the host) and
//!    lowers its rlimits (file size, open files; processes and address space
//!    when no cgroup holds them);
//! 2. namespaces ([`namespaces`]): user, pid, mount, ipc, uts, cgroup and,
//!    unless the network is allowed, net; then a filesystem view with only
//!    the interpreter, its libraries and the venv read-only, a fresh `/proc`,
//!    a minimal `/dev`, and a size-capped `/tmp` as the working directory;
//! 3. no capabilities and `no_new_privs`;
//! 4. Landlock ([`landlock`]): the same view again as access rules (the only
//!    view where namespaces are blocked), TCP off with the network, signals
//!    and abstract sockets scoped to the sandbox;
//! 5. seccomp ([`seccomp`]): the system calls agent code never needs;
//! 6. exec of the interpreter, under a minimal init (pid 1 of the new pid
//!    namespace) that reaps orphans and dies with the launcher.
//!
//! The launcher is the host's own binary re-executed through
//! `/proc/self/exe` with [`LAUNCHER_MARKER`] as its first argument: a binary
//! calls [`launcher_main`] first thing in `main` (the `py-code-mode` CLI
//! does), or names another launcher in [`Launcher`]. Each layer is probed
//! once per launcher ([`probe`]); what is active is a [`SandboxStatus`].

pub(crate) mod cgroups;
mod landlock;
mod launcher;
mod namespaces;
mod seccomp;
mod switches;

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

pub use cgroups::remove_left_behind;
pub use launcher::launch_from_args;
pub(crate) use launcher::system_paths as launcher_system_paths;
pub use switches::{ENV as OFF_ENV, LayersOff};

/// The first argument that turns a binary calling [`launcher_main`] into the
/// sandbox launcher. Long and odd so no user command line starts with it.
pub const LAUNCHER_MARKER: &str = "--py-code-mode-sandbox-launcher-v1";

/// `launcher_main` ran in this process: `/proc/self/exe` is a launcher.
static SELF_LAUNCHER: AtomicBool = AtomicBool::new(false);

/// Call this first in `main`, before any thread or async runtime exists:
/// when the process was started as the sandbox launcher it applies the
/// sandbox and execs the worker (never returning); otherwise it returns at
/// once and records that this binary can launch sandboxes, so
/// [`crate::SandboxConfig`] uses it by default.
///
/// ```no_run
/// py_code_mode::sandbox::launcher_main();
/// // … the program, which may use `SandboxConfig`
/// ```
pub fn launcher_main() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(OsStr::new(LAUNCHER_MARKER)) {
        launch_from_args(args.collect());
    }
    SELF_LAUNCHER.store(true, Ordering::Release);
}

/// The program that becomes the launcher: `program args… LAUNCHER_MARKER
/// spec -- python …` must reach [`launch_from_args`] with what follows the
/// marker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Launcher {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// The launcher named by [`Launcher::set_default`].
static DEFAULT_LAUNCHER: std::sync::OnceLock<Launcher> = std::sync::OnceLock::new();
/// The launcher named by [`Launcher::set_small`].
static SMALL_LAUNCHER: std::sync::OnceLock<Launcher> = std::sync::OnceLock::new();

impl Launcher {
    /// This process's launcher: this binary when it called [`launcher_main`],
    /// else the one given to [`Launcher::set_default`] (the Python package
    /// names its interpreter and native module).
    pub fn current_exe() -> Option<Self> {
        if SELF_LAUNCHER.load(Ordering::Acquire) {
            if let Some(small) = SMALL_LAUNCHER.get() {
                return Some(small.clone());
            }
            return Some(Self {
                // The binary itself even if its file was replaced since it started.
                program: PathBuf::from("/proc/self/exe"),
                args: Vec::new(),
            });
        }
        DEFAULT_LAUNCHER.get().cloned()
    }

    /// Names the launcher of this process when it cannot be its own binary;
    /// the first call wins.
    pub fn set_default(launcher: Self) {
        let _ = DEFAULT_LAUNCHER.set(launcher);
    }

    /// Names a smaller program, built from the same sources, that a binary
    /// calling [`launcher_main`] starts instead of itself: a large binary
    /// costs milliseconds to load at every worker start, which a program
    /// that only launches does not (the CLI ships `py-code-mode-sandbox`
    /// for this). The first call wins.
    pub fn set_small(launcher: Self) {
        let _ = SMALL_LAUNCHER.set(launcher);
    }
}

/// One layer of the sandbox: whether it is active, and what it is or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStatus {
    pub active: bool,
    /// `user, pid, mount, net, ipc, uts, cgroup`, `ABI 7`, or the reason it is off.
    pub detail: String,
}

impl LayerStatus {
    pub(crate) fn on(detail: impl Into<String>) -> Self {
        Self {
            active: true,
            detail: detail.into(),
        }
    }

    pub(crate) fn off(detail: impl Into<String>) -> Self {
        Self {
            active: false,
            detail: detail.into(),
        }
    }
}

/// What the sandbox can use on this machine, probed once per launcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxStatus {
    /// User, pid, mount, net, ipc, uts and cgroup namespaces with the
    /// minimal filesystem view.
    pub namespaces: LayerStatus,
    /// Landlock filesystem, TCP and scope rules.
    pub landlock: LayerStatus,
    /// The seccomp filter.
    pub seccomp: LayerStatus,
    /// Memory, process and CPU limits through cgroups (else rlimits).
    pub cgroups: LayerStatus,
}

impl SandboxStatus {
    /// A sandbox worth the name: the filesystem view holds through
    /// namespaces or Landlock. Without either, asking for the sandbox fails.
    pub fn usable(&self) -> bool {
        self.namespaces.active || self.landlock.active
    }

    /// One line for a log or a notice: the active layers, then the others.
    pub fn summary(&self) -> String {
        let layers = [
            ("namespaces", &self.namespaces),
            ("landlock", &self.landlock),
            ("seccomp", &self.seccomp),
            ("cgroups", &self.cgroups),
        ];
        let on: Vec<String> = layers
            .iter()
            .filter(|(_, l)| l.active)
            .map(|(name, l)| format!("{name} ({})", l.detail))
            .collect();
        let off: Vec<String> = layers
            .iter()
            .filter(|(_, l)| !l.active)
            .map(|(name, l)| format!("{name}: {}", l.detail))
            .collect();
        let mut text = if on.is_empty() {
            "sandbox layers: none".to_owned()
        } else {
            format!("sandbox layers: {}", on.join(", "))
        };
        if !off.is_empty() {
            text.push_str("; off: ");
            text.push_str(&off.join("; "));
        }
        text
    }
}

/// What the launcher applies, sent as one JSON argument.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "one switch per layer, as the launcher reads them"
)]
pub(crate) struct Spec {
    /// Report the layers (JSON on stdout) instead of starting the worker;
    /// a layer that fails is reported, not fatal.
    pub probe: bool,
    pub namespaces: bool,
    pub network: bool,
    pub landlock: bool,
    pub seccomp: bool,
    /// Host paths shown read-only (and executable), at the same path.
    pub read_only: Vec<PathBuf>,
    /// Host paths shown writable, at the same path.
    pub writable: Vec<PathBuf>,
    /// The session's scratch folder on the host: the working directory and
    /// the only writable place when there are no namespaces.
    pub scratch: PathBuf,
    /// Size of the sandbox's `/tmp` (its working directory), in bytes.
    pub scratch_bytes: u64,
    /// Cgroup folders to join (each `cgroup.procs`).
    pub cgroups: Vec<PathBuf>,
    pub rlimits: Rlimits,
}

/// Limits the launcher sets on itself before exec (inherited by the worker).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Rlimits {
    pub file_size: u64,
    pub open_files: u64,
    /// Set when no pids cgroup holds the process count.
    pub processes: Option<u64>,
    /// Set when no memory cgroup holds the memory.
    pub address_space: Option<u64>,
}

/// Where the sandbox's working directory is when it has a filesystem view.
pub(crate) const SANDBOX_TMP: &str = "/tmp";

pub use probe_impl::probe;
pub(crate) use probe_impl::probe_machine;

mod probe_impl {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::{Launcher, Rlimits, SandboxStatus, Spec, cgroups};
    use crate::error::ExecutorError;
    use crate::spawn::Spawn;

    /// How long a probe may take (a launcher start and a few syscalls).
    const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

    static CACHE: Mutex<Option<HashMap<Launcher, SandboxStatus>>> = Mutex::new(None);

    /// Which sandbox layers `launcher` applies here: those that work (see
    /// [`probe_machine`]) less those [`super::OFF_ENV`] switches off.
    pub async fn probe(launcher: &Launcher) -> Result<SandboxStatus, ExecutorError> {
        let off = super::LayersOff::from_env().map_err(sandbox_error)?;
        let mut status = probe_machine(launcher).await?;
        off.apply(&mut status, &format!("`{}`", super::OFF_ENV));
        Ok(status)
    }

    /// Which sandbox layers `launcher` can apply here: runs it once in probe
    /// mode (every layer tried, the result reported) and caches the answer
    /// for the life of the process. Logged once at `info`.
    pub(crate) async fn probe_machine(launcher: &Launcher) -> Result<SandboxStatus, ExecutorError> {
        if let Some(status) = cached(launcher) {
            return Ok(status);
        }
        let scratch = std::env::temp_dir();
        let spec = Spec {
            probe: true,
            namespaces: true,
            network: false,
            landlock: true,
            seccomp: true,
            read_only: super::launcher::system_paths(),
            writable: Vec::new(),
            scratch,
            scratch_bytes: 1 << 20,
            cgroups: Vec::new(),
            rlimits: Rlimits::default(),
        };
        let spec = serde_json::to_string(&spec).map_err(|e| sandbox_error(e.to_string()))?;
        let (child, _tree) = Spawn::new(&launcher.program)
            .args(&launcher.args)
            .arg(super::LAUNCHER_MARKER)
            .arg(spec)
            .spawn()
            .map_err(|e| {
                sandbox_error(format!(
                    "cannot start the launcher `{}`: {e}",
                    launcher.program.display()
                ))
            })?;
        let output = tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| sandbox_error("the launcher's probe did not finish".into()))?
            .map_err(|e| sandbox_error(format!("the launcher's probe failed: {e}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(mut status) = stdout
            .lines()
            .last()
            .and_then(|line| serde_json::from_str::<SandboxStatus>(line).ok())
        else {
            return Err(sandbox_error(format!(
                "the launcher `{}` did not report its layers ({}): {}",
                launcher.program.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        };
        status.cgroups = cgroups::probe();
        tracing::info!("{}", status.summary());
        CACHE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert_with(HashMap::new)
            .insert(launcher.clone(), status.clone());
        Ok(status)
    }

    fn cached(launcher: &Launcher) -> Option<SandboxStatus> {
        CACHE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()?
            .get(launcher)
            .cloned()
    }

    pub(crate) fn sandbox_error(message: String) -> ExecutorError {
        ExecutorError::Sandbox { message }
    }
}

pub(crate) use probe_impl::sandbox_error;
