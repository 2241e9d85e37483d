//! The one way py-code-mode starts a process: the Python worker, CLI tools and
//! MCP stdio servers are all born here, under one policy.
//!
//! - **Explicit environment**: the child gets [`ENV_ALLOWLIST`] from the host's
//!   environment plus what its caller adds (a tool's own `env:`); API keys and
//!   passwords in the host's environment never reach it.
//! - **Its own process group**, so one signal reaches what it started.
//! - **stdin from `/dev/null`** unless the caller asks for a pipe.
//! - **A parent-death signal**: if the host dies, the child gets `SIGKILL`.
//! - **The whole tree dies with its [`ProcessTree`] guard**: on drop, timeout,
//!   cancel or close the group is killed, and so is every descendant that left
//!   the group (`setsid`, double forks), found through the parent links in
//!   `/proc` and stopped before it can fork again.
//!
//! Output is read by the caller with a cap ([`crate::tools::OutputCap`] or the
//! worker's line reader); nothing here reads unboundedly.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::Command;

/// Variables a child inherits from the host's environment; everything else
/// (tool secrets, tokens, passwords) stays in the host.
pub const ENV_ALLOWLIST: &[&str] = &[
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
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// How many rounds [`kill_tree`] makes: each round stops and kills what it
/// finds; a tree that keeps forking faster than that is past help (and is
/// stopped by the group kill anyway).
const KILL_ROUNDS: usize = 8;

/// A command under the spawn policy; build it, then [`Spawn::command`] or
/// [`Spawn::spawn`].
#[derive(Debug)]
#[must_use = "a `Spawn` does nothing until `spawn` or `into_command`"]
pub struct Spawn {
    command: Command,
    policy: Policy,
}

/// What the child's `pre_exec` does besides the parent-death signal.
#[derive(Debug, Clone, Copy)]
struct Policy {
    subreaper: bool,
    /// The highest capability number to drop, when dropping them.
    drop_capabilities: Option<u32>,
    parent_death_signal: Signal,
}

impl Spawn {
    /// `program` with the policy applied: allow-listed environment, stdin
    /// `/dev/null`, stdout and stderr piped, own process group, parent-death
    /// signal, killed on drop.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let mut command = Command::new(program);
        command
            .env_clear()
            .envs(
                ENV_ALLOWLIST
                    .iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        Self {
            command,
            policy: Policy {
                subreaper: false,
                drop_capabilities: None,
                parent_death_signal: Signal::SIGKILL,
            },
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Adds (or overrides) one variable on top of the allow-list.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.command.envs(vars);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// stdin becomes a pipe (the worker's protocol, an MCP stdio server).
    pub fn stdin_piped(mut self) -> Self {
        self.command.stdin(Stdio::piped());
        self
    }

    /// The child adopts its orphaned descendants (`PR_SET_CHILD_SUBREAPER`,
    /// kept across `exec`), so a double-forked grandchild of agent code stays
    /// in the tree [`kill_tree`] walks.
    pub fn subreaper(mut self) -> Self {
        self.policy.subreaper = true;
        self
    }

    /// The child runs with no capabilities, even as root: every capability
    /// leaves the bounding set (and the inheritable and ambient sets) before
    /// `exec`, and `PR_SET_NO_NEW_PRIVS` stops a setuid binary from bringing
    /// them back. Root then keeps its uid but not `CAP_SYS_PTRACE` or
    /// `CAP_DAC_OVERRIDE`: with the host non-dumpable
    /// ([`make_host_undumpable`]), `/proc/<host>/environ` is closed to it.
    /// A host without capabilities has nothing to drop and is not an error.
    pub fn drop_capabilities(mut self) -> Self {
        self.policy.drop_capabilities = Some(last_capability());
        self
    }

    /// The signal the child gets when the host dies (default `SIGKILL`). The
    /// worker asks for `SIGTERM` so it can kill its own descendants first.
    pub fn parent_death_signal(mut self, signal: Signal) -> Self {
        self.policy.parent_death_signal = signal;
        self
    }

    /// The configured command, for APIs that spawn it themselves (rmcp's
    /// child-process transport). Wrap the child's pid in a [`ProcessTree`].
    pub fn into_command(mut self) -> Command {
        pre_exec_policy(&mut self.command, self.policy);
        self.command
    }

    /// Starts the process; the returned guard kills its tree when dropped.
    pub fn spawn(self) -> std::io::Result<(tokio::process::Child, ProcessTree)> {
        let child = self.into_command().spawn()?;
        let tree = ProcessTree::new(child.id());
        Ok((child, tree))
    }
}

/// Where the kernel says how many capabilities it knows.
const CAP_LAST_CAP: &str = "/proc/sys/kernel/cap_last_cap";
/// Capabilities up to this number exist on every kernel we run on (5.x has
/// 40); used when [`CAP_LAST_CAP`] cannot be read, and dropping an unknown
/// one is harmless (`EINVAL` stops the loop).
const FALLBACK_LAST_CAP: u32 = 63;

/// Read before `fork`: the child may not allocate or read files.
pub(crate) fn last_capability() -> u32 {
    std::fs::read_to_string(CAP_LAST_CAP)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(FALLBACK_LAST_CAP)
}

/// `struct __user_cap_header_struct` of `capget(2)`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct` of `capget(2)`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets, two `CapData`.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[expect(
    unsafe_code,
    reason = "pre_exec runs between fork and exec; the closure only calls prctl, capget/capset and getppid, all async-signal-safe"
)]
fn pre_exec_policy(command: &mut Command, policy: Policy) {
    let host = nix::unistd::getpid();
    // SAFETY: the closure allocates nothing and calls only async-signal-safe
    // syscalls, as required in a forked child of a multi-threaded process.
    unsafe {
        command.pre_exec(move || {
            // The signal fires when the *thread* that forked us exits, not the
            // process: we spawn from tokio's worker threads (they live as long
            // as the runtime) or the main thread, never from a blocking-pool
            // thread that could retire under a live child.
            nix::sys::prctl::set_pdeathsig(policy.parent_death_signal)?;
            // The host may have died between fork and prctl: then nobody
            // would send the signal.
            if nix::unistd::getppid() != host {
                return Err(std::io::Error::other("the host exited"));
            }
            if policy.subreaper {
                nix::sys::prctl::set_child_subreaper(true)?;
            }
            if let Some(last) = policy.drop_capabilities {
                drop_all_capabilities(last)?;
            }
            Ok(())
        });
    }
}

/// Empties the bounding, ambient and inheritable sets so `exec` leaves the
/// child with no capabilities, and sets `no_new_privs`. Runs in `pre_exec`.
#[expect(
    unsafe_code,
    reason = "raw prctl/capget/capset syscalls; nix wraps none of them"
)]
pub(crate) fn drop_all_capabilities(last: u32) -> std::io::Result<()> {
    use nix::libc;
    for cap in 0..=last {
        // SAFETY: PR_CAPBSET_DROP takes a capability number and no pointers.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) } != 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                // Without CAP_SETPCAP the host holds no capabilities to pass on.
                Some(libc::EPERM) => break,
                // Past the kernel's last capability.
                Some(libc::EINVAL) => break,
                _ => return Err(std::io::Error::last_os_error()),
            }
        }
    }
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
    }
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and data are valid for capget's version-3 layout.
    if unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) } == 0 {
        for set in &mut data {
            set.inheritable = 0;
        }
        // SAFETY: as above; lowering the inheritable set needs no privilege.
        if unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    nix::sys::prctl::set_no_new_privs()?;
    Ok(())
}

/// Makes the whole host process non-dumpable (`PR_SET_DUMPABLE 0`): its
/// `/proc/<pid>/environ`, `mem` and `fd` are then closed to processes without
/// `CAP_SYS_PTRACE`, such as a worker started with
/// [`Spawn::drop_capabilities`], even one running as the same user or root.
///
/// **Process-wide**: it also disables core dumps of the host and attaching a
/// debugger without privilege. Called once, before the first worker starts;
/// later calls do nothing.
pub fn make_host_undumpable() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(error) = nix::sys::prctl::set_dumpable(false) {
            tracing::warn!(%error, "cannot make the host non-dumpable; its environment is readable by the worker");
        }
    });
}

/// Owns a spawned process tree: dropping it (or [`ProcessTree::kill`]) kills
/// the child, its process group and every descendant that left the group.
#[derive(Debug)]
pub struct ProcessTree {
    pid: Option<u32>,
}

impl ProcessTree {
    pub fn new(pid: Option<u32>) -> Self {
        Self { pid }
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Kills the tree now; later calls and the drop do nothing.
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill_tree(pid);
        }
    }
}

impl Drop for ProcessTree {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kills `pid`, the process group it leads and all its descendants, including
/// those that called `setsid` or were double-forked under a subreaper.
///
/// The root is stopped first, so it can neither fork nor die while the tree
/// is walked (a dead root's orphans would leave the walk's reach); descendants
/// are stopped (`SIGSTOP`) as they are found, so none can fork after the scan;
/// then everything found is killed, the root last. Safe to call on a pid that
/// is already gone.
pub fn kill_tree(pid: u32) {
    let Ok(root) = i32::try_from(pid) else { return };
    let _ = kill(Pid::from_raw(root), Signal::SIGSTOP);
    for _ in 0..KILL_ROUNDS {
        let found = descendants(root);
        for &p in &found {
            let _ = kill(Pid::from_raw(p), Signal::SIGSTOP);
        }
        // Stopped processes cannot fork: a second scan catches children born
        // between the first scan and the stop.
        let found: BTreeSet<i32> = found.into_iter().chain(descendants(root)).collect();
        // ESRCH (already gone) is the common, harmless case.
        let _ = killpg(Pid::from_raw(root), Signal::SIGKILL);
        for &p in &found {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        if found.is_empty() {
            break;
        }
    }
    let _ = kill(Pid::from_raw(root), Signal::SIGKILL);
}

/// Every live descendant of `root`, from the parent links in `/proc`.
fn descendants(root: i32) -> Vec<i32> {
    let links: Vec<(i32, i32)> = processes()
        .into_iter()
        .map(|(pid, stat)| (pid, stat.ppid))
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(child, _) in links.iter().filter(|&&(_, pp)| pp == parent) {
            if !found.contains(&child) && child != root {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

/// What the process-tree code reads of `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `Z` (a zombie), …
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
}

/// One process's stat, `None` once it is gone. The command name may hold
/// spaces and parentheses, so the fields are read after its last `)`.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let mut number = || fields.next()?.parse::<i32>().ok();
    Some(ProcStat {
        state,
        ppid: number()?,
        pgrp: number()?,
        session: number()?,
    })
}

/// Every process of the system (of our pid namespace) with its stat.
pub fn processes() -> Vec<(i32, ProcStat)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, proc_stat(pid)?)))
        .collect()
}

/// Makes this process the reaper of orphaned descendants (`PR_SET_CHILD_SUBREAPER`),
/// so a double-forked grandchild stays in our tree where [`kill_tree`] finds it.
/// For the CLI binary; a library embedded in someone else's process must not
/// change how that process adopts orphans.
pub fn become_subreaper() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_reads_past_a_command_name_with_parens() {
        let stat = proc_stat(i32::try_from(std::process::id()).unwrap_or_default());
        assert_eq!(stat.map(|s| s.ppid), Some(nix::unistd::getppid().as_raw()));
        assert_eq!(stat.map(|s| s.pgrp), Some(nix::unistd::getpgrp().as_raw()));
    }

    #[tokio::test]
    async fn the_environment_is_the_allow_list_plus_what_the_caller_adds() -> anyhow::Result<()> {
        let (child, _tree) = Spawn::new("env").env("EXTRA", "1").spawn()?;
        let out = child.wait_with_output().await?;
        let text = String::from_utf8(out.stdout)?;
        for line in text.lines() {
            let key = line.split('=').next().unwrap_or_default();
            assert!(
                key == "EXTRA" || ENV_ALLOWLIST.contains(&key),
                "unexpected variable {key}"
            );
        }
        assert!(text.lines().any(|l| l == "EXTRA=1"));
        Ok(())
    }

    #[tokio::test]
    async fn killing_the_tree_reaches_a_setsid_grandchild() -> anyhow::Result<()> {
        let (mut child, mut tree) = Spawn::new("sh")
            .args(["-c", "setsid sleep 300 & echo $!; wait"])
            .spawn()?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut line = String::new();
        {
            use tokio::io::AsyncBufReadExt;
            let mut reader = tokio::io::BufReader::new(&mut stdout);
            reader.read_line(&mut line).await?;
        }
        let grandchild: i32 = line.trim().parse()?;
        assert!(Path::new(&format!("/proc/{grandchild}")).exists());
        tree.kill();
        let _ = child.wait().await;
        // The grandchild was reparented or killed; give the kernel a moment to
        // reap it, bounded.
        for _ in 0..200 {
            if !alive(grandchild) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        anyhow::bail!("the setsid grandchild {grandchild} survived kill_tree")
    }

    fn alive(pid: i32) -> bool {
        // A zombie is dead for our purposes.
        proc_stat(pid).is_some_and(|stat| stat.state != 'Z')
    }
}
