//! The launcher process: applies the sandbox to itself, layer by layer, and
//! execs the worker. It runs single-threaded from the top of `main` (or from
//! the Python package's launcher), so forking and `unshare` are safe here.
//!
//! Three processes: the launcher (in the host's pid namespace, what the host
//! spawned and watches), an init (pid 1 of the new pid namespace: builds the
//! filesystem view, applies Landlock and seccomp, reaps orphans) and the
//! worker. Each dies with its parent (`PR_SET_PDEATHSIG`), and everything in
//! the pid namespace dies with the init.

use std::ffi::{CString, OsString};
use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Path, PathBuf};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, wait, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use super::{LayerStatus, SANDBOX_TMP, SandboxStatus, Spec};

/// The exit code of a launcher that could not set up the sandbox (as a
/// shell says of a command it found but could not run).
const SETUP_FAILED: i32 = 126;
/// The exit code when the interpreter could not be executed.
const EXEC_FAILED: i32 = 127;

/// System paths every worker sees read-only when they exist: the programs
/// and libraries of the system (no home, no user data) and the few files
/// of `/etc` that the loader, the C library and Python read.
const SYSTEM_PATHS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/mime.types",
    "/etc/os-release",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/python3",
];

/// [`SYSTEM_PATHS`] that exist here, plus `/etc/python3.X` (Debian's
/// `sitecustomize`).
pub(crate) fn system_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = SYSTEM_PATHS
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    if let Ok(entries) = std::fs::read_dir("/etc") {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            if name.as_bytes().starts_with(b"python3.") {
                paths.push(entry.path());
            }
        }
    }
    paths
}

/// Runs the launcher with what followed [`super::LAUNCHER_MARKER`]:
/// `spec [-- program args…]`. Never returns.
pub fn launch_from_args(args: Vec<OsString>) -> ! {
    let code = match run(args) {
        Ok(code) => code,
        Err(message) => {
            report(&message);
            SETUP_FAILED
        }
    };
    std::process::exit(code)
}

/// One line on stderr, which the host logs with the worker's output.
fn report(message: &str) {
    let _ = writeln!(std::io::stderr(), "py-code-mode sandbox: {message}");
}

fn run(args: Vec<OsString>) -> Result<i32, String> {
    let mut args = args.into_iter();
    let spec = args.next().ok_or("no sandbox spec after the marker")?;
    let spec: Spec = serde_json::from_slice(spec.as_bytes())
        .map_err(|e| format!("the sandbox spec does not parse: {e}"))?;
    let command: Vec<OsString> = match args.next() {
        Some(dashes) if dashes == "--" => args.collect(),
        None if spec.probe => Vec::new(),
        _ => return Err("expected `-- program args…` after the spec".into()),
    };
    if !spec.probe && command.is_empty() {
        return Err("no program to run".into());
    }
    // The host interrupts a cell with SIGINT to this process group (Ctrl-C
    // in the REPL): it is the worker's to handle. Caught here, never
    // ignored: a caught signal is reset to its default by `exec`, so the
    // worker's interpreter gets it and raises `KeyboardInterrupt`.
    pass_over(Signal::SIGINT).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    // Joined first: everything after, the init and the worker included, is
    // born inside the limits.
    for dir in &spec.cgroups {
        join_cgroup(dir)?;
    }
    set_rlimits(&spec)?;
    let mut status = SandboxStatus {
        namespaces: LayerStatus::off("not asked for"),
        landlock: LayerStatus::off("not asked for"),
        seccomp: LayerStatus::off("not asked for"),
        cgroups: LayerStatus::off("probed by the host"),
    };
    if spec.namespaces {
        let mut inside = status.clone();
        inside.namespaces = LayerStatus::on(super::namespaces::made(spec.network));
        match super::namespaces::clone_init(spec.network, || {
            run_init(&spec, &command, inside.clone(), true)
        }) {
            Ok(child) => return Ok(parent(&spec, child)),
            Err(message) if spec.probe => status.namespaces = LayerStatus::off(message),
            Err(message) => return Err(message),
        }
    }
    match fork_checked()? {
        ForkResult::Parent { child } => Ok(parent(&spec, child)),
        ForkResult::Child => std::process::exit(run_init(&spec, &command, status, false)),
    }
}

/// The launcher after the init started: waits for it and exits as it did.
fn parent(spec: &Spec, child: Pid) -> i32 {
    // The pipes belong to the worker: a launcher holding them would keep
    // the host from seeing the worker's end.
    if !spec.probe {
        release_stdio();
    }
    mirror(wait_for(child))
}

fn run_init(spec: &Spec, command: &[OsString], status: SandboxStatus, namespaces: bool) -> i32 {
    match init(spec, command, status, namespaces) {
        Ok(code) => code,
        Err(message) => {
            report(&message);
            SETUP_FAILED
        }
    }
}

/// Pid 1 of the sandbox (or the plain parent of the worker without
/// namespaces): the view, the capabilities, Landlock, seccomp; then the
/// worker, whose exit it returns.
fn init(
    spec: &Spec,
    command: &[OsString],
    mut status: SandboxStatus,
    mut namespaces: bool,
) -> Result<i32, String> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| e.to_string())?;
    // Read while the host's /proc is still mounted.
    let last_capability = crate::spawn::last_capability();
    if namespaces && let Err(message) = super::namespaces::build_view(spec) {
        if !spec.probe {
            return Err(message);
        }
        status.namespaces = LayerStatus::off(message);
        namespaces = false;
    }
    // In a user namespace we hold every capability of it: none survives
    // into the worker, and no setuid binary brings one back.
    crate::spawn::drop_all_capabilities(last_capability)
        .map_err(|e| format!("cannot drop capabilities: {e}"))?;
    if spec.landlock {
        match super::landlock::restrict(spec, namespaces) {
            Ok(detail) => status.landlock = LayerStatus::on(detail),
            Err(message) if spec.probe => status.landlock = LayerStatus::off(message),
            Err(message) => return Err(message),
        }
    }
    if spec.seccomp {
        match super::seccomp::install(spec.network) {
            Ok(detail) => status.seccomp = LayerStatus::on(detail),
            Err(message) if spec.probe => status.seccomp = LayerStatus::off(message),
            Err(message) => return Err(message),
        }
    }
    if spec.probe {
        let line = serde_json::to_string(&status).map_err(|e| e.to_string())?;
        let _ = writeln!(std::io::stdout(), "{line}");
        return Ok(0);
    }
    let cwd = if namespaces {
        PathBuf::from(SANDBOX_TMP)
    } else {
        spec.scratch.clone()
    };
    let program = c_string(command.first().ok_or("no program")?.clone())?;
    let argv = command
        .iter()
        .cloned()
        .map(c_string)
        .collect::<Result<Vec<_>, _>>()?;
    match fork_checked()? {
        ForkResult::Child => {
            let error = exec_worker(&cwd, &program, &argv);
            report(&error);
            std::process::exit(EXEC_FAILED);
        }
        ForkResult::Parent { child } => {
            release_stdio();
            Ok(reap_until(child))
        }
    }
}

/// In the worker's process: its parent-death signal, its directory, exec.
fn exec_worker(cwd: &Path, program: &CString, argv: &[CString]) -> String {
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
        return format!("cannot set the parent-death signal: {e}");
    }
    if let Err(e) = nix::unistd::chdir(cwd) {
        return format!("cannot enter `{}`: {e}", cwd.display());
    }
    match nix::unistd::execv(program, argv) {
        Ok(never) => match never {},
        Err(e) => format!("cannot run `{}`: {e}", program.to_string_lossy()),
    }
}

#[expect(
    unsafe_code,
    reason = "fork in the launcher, which is single-threaded (it runs before any thread exists)"
)]
fn fork_checked() -> Result<ForkResult, String> {
    // SAFETY: the launcher has one thread, so the child may allocate and
    // run any code; see the module docs.
    unsafe { fork() }.map_err(|e| format!("cannot fork: {e}"))
}

/// Lowers the rlimits of the spec (never above the current hard limit: root
/// here may lack `CAP_SYS_RESOURCE`).
fn set_rlimits(spec: &Spec) -> Result<(), String> {
    let limits = spec.rlimits;
    let mut wanted = vec![
        (Resource::RLIMIT_CORE, 0),
        (Resource::RLIMIT_FSIZE, limits.file_size),
        (Resource::RLIMIT_NOFILE, limits.open_files),
    ];
    if let Some(n) = limits.processes {
        wanted.push((Resource::RLIMIT_NPROC, n));
    }
    if let Some(bytes) = limits.address_space {
        wanted.push((Resource::RLIMIT_AS, bytes));
    }
    if spec.probe {
        wanted.truncate(1);
    }
    for (resource, value) in wanted {
        let (_, hard) = getrlimit(resource).map_err(|e| format!("getrlimit: {e}"))?;
        let value = value.min(hard);
        setrlimit(resource, value, value)
            .map_err(|e| format!("cannot set the {resource:?} limit to {value}: {e}"))?;
    }
    Ok(())
}

/// stdin and stdout become `/dev/null`; stderr stays for the log.
fn release_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
    }
}

fn wait_for(child: Pid) -> WaitStatus {
    loop {
        match waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => {}
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return status,
            Ok(_) => {}
            Err(_) => return WaitStatus::Exited(child, SETUP_FAILED),
        }
    }
}

/// The init's loop: reaps every orphan that lands on it, until the worker
/// exits; returns the worker's exit as a code (`128 + signal` when killed).
fn reap_until(worker: Pid) -> i32 {
    loop {
        match wait() {
            Ok(WaitStatus::Exited(pid, code)) if pid == worker => return code,
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == worker => {
                return 128 + signal as i32;
            }
            Err(nix::errno::Errno::ECHILD) => return SETUP_FAILED,
            Ok(_) | Err(_) => {}
        }
    }
}

/// Exits the launcher as its child did: with its code, or killed by its
/// signal (so the host reads `signal: 9 (SIGKILL)` after an out-of-memory kill).
fn mirror(status: WaitStatus) -> i32 {
    let code = match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        _ => SETUP_FAILED,
    };
    if let Some(signal) = code.checked_sub(128).and_then(|n| Signal::try_from(n).ok()) {
        let _ = std::io::stderr().flush();
        let _ = restore_default(signal);
        let _ = nix::sys::signal::raise(signal);
    }
    code
}

#[expect(
    unsafe_code,
    reason = "sigaction to the default action; no handler is installed"
)]
fn restore_default(signal: Signal) -> nix::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, sigaction};
    let action = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_DFL installs no handler code.
    unsafe { sigaction(signal, &action) }.map(|_| ())
}

extern "C" fn ignore_signal(_: nix::libc::c_int) {}

#[expect(
    unsafe_code,
    reason = "sigaction with a handler that does nothing, so it is async-signal-safe"
)]
fn pass_over(signal: Signal) -> nix::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(ignore_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler touches nothing.
    unsafe { sigaction(signal, &action) }.map(|_| ())
}

fn c_string(text: OsString) -> Result<CString, String> {
    CString::new(text.into_vec()).map_err(|_| "an argument holds a NUL byte".to_owned())
}

/// Moves this thread into the cgroup `dir`. In cgroup v1 it writes `0` to
/// `tasks`: this one thread, which the kernel moves without the global
/// lock a `cgroup.procs` write takes, whose first use after a quiet moment
/// waits for an RCU grace period (5 to 20 ms here, against 0.3 to 0.6 ms;
/// docs/sandbox.md, "Start cost"). The launcher is single-threaded, and a
/// process forks into the cgroup of the thread that forks it, so the init and
/// the worker are born inside either way. Cgroup v2 has no `tasks`: its
/// `cgroup.procs` takes the process.
fn join_cgroup(dir: &Path) -> Result<(), String> {
    let tasks = dir.join("tasks");
    let written = if tasks.exists() {
        std::fs::write(&tasks, "0")
    } else {
        std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string())
    };
    written.map_err(|e| format!("cannot join the cgroup `{}`: {e}", dir.display()))
}
