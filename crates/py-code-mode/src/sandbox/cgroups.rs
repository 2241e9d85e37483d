//! Memory, process and CPU limits through cgroups: the host makes one cgroup
//! per worker under its own, the launcher joins it before anything else, and
//! the host removes it once the worker's tree is dead. Where none can be made
//! (no root, a read-only `/sys/fs/cgroup`, controllers not delegated) the
//! launcher falls back to rlimits, which the status says.
//!
//! - cgroup v1 (as on the machines this is tested on): one cgroup in each of
//!   the `memory`, `pids` and `cpu` hierarchies, under the host's own.
//! - cgroup v2 (the unified hierarchy, [`v2`]): one cgroup with `memory.max`,
//!   `pids.max` and `cpu.max` under the host's own cgroup, whose controllers
//!   must be delegated to it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::LayerStatus;

const ROOT: &str = "/sys/fs/cgroup";
/// The controllers used, each mounted at `/sys/fs/cgroup/<name>`.
const CONTROLLERS: &[&str] = &["memory", "pids", "cpu"];
/// The CFS period the CPU quota is a share of (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;
/// Removing a cgroup waits for its processes to be gone (killed just
/// before): at most this long on the caller's thread, so a process that
/// exits right after closing its session leaves nothing behind…
const REMOVE_WAIT: Duration = Duration::from_millis(500);
/// …then this many more tries on a thread of its own.
const REMOVE_TRIES: u32 = 100;
const REMOVE_PAUSE: Duration = Duration::from_millis(2);

static NEXT: AtomicU64 = AtomicU64::new(0);
/// Set once this process swept the cgroups dead hosts left (see [`sweep`]).
static SWEPT: std::sync::Once = std::sync::Once::new();
/// A worker's cgroup is `py-code-mode-<host pid>-<n>`.
const WORKER_PREFIX: &str = "py-code-mode-";

/// The limits one worker gets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub memory: u64,
    pub pids: u64,
    pub cpus: f64,
}

/// One worker's cgroups; dropping it removes them.
#[derive(Debug)]
pub(crate) struct WorkerCgroups {
    dirs: Vec<PathBuf>,
    /// The controllers that hold a limit.
    held: Vec<&'static str>,
    /// The file with the `oom_kill` count (`memory.oom_control` in v1,
    /// `memory.events` in v2).
    oom_file: Option<PathBuf>,
    /// `pids.events` (both versions), with the count of forks refused at
    /// `pids.max`, and the file once opened: it is read after every run, and
    /// a read at offset 0 of an open file takes ~1 µs where opening it
    /// again walks the path (~15 µs).
    pids_events: Option<(PathBuf, OnceLock<std::fs::File>)>,
}

impl WorkerCgroups {
    /// Makes the cgroups with `limits` in every controller that is writable.
    pub(crate) fn create(limits: Limits) -> std::io::Result<Self> {
        let name = format!(
            "{WORKER_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        if v2::unified(Path::new(ROOT)) {
            let parent = v2::parent().map_err(std::io::Error::other)?;
            SWEPT.call_once(|| sweep(&parent.dir));
            return v2::create(parent, &name, limits);
        }
        SWEPT.call_once(|| {
            for controller in CONTROLLERS {
                if let Some(parent) = own_cgroup(controller) {
                    sweep(&parent);
                }
            }
        });
        let mut made = Self {
            dirs: Vec::new(),
            held: Vec::new(),
            oom_file: None,
            pids_events: None,
        };
        for controller in CONTROLLERS {
            let Some(parent) = own_cgroup(controller) else {
                continue;
            };
            let dir = parent.join(&name);
            std::fs::create_dir(&dir)?;
            made.dirs.push(dir.clone());
            made.held.push(*controller);
            match *controller {
                "memory" => {
                    write(&dir, "memory.limit_in_bytes", limits.memory)?;
                    // Swap counts too where the kernel accounts it.
                    let _ = write(&dir, "memory.memsw.limit_in_bytes", limits.memory);
                    made.oom_file = Some(dir.join("memory.oom_control"));
                }
                "pids" => {
                    write(&dir, "pids.max", limits.pids)?;
                    made.pids_events = Some((dir.join("pids.events"), OnceLock::new()));
                }
                "cpu" => {
                    write(&dir, "cpu.cfs_period_us", CPU_PERIOD_US)?;
                    write(&dir, "cpu.cfs_quota_us", cpu_quota(limits.cpus))?;
                }
                _ => {}
            }
        }
        Ok(made)
    }

    /// The folders the launcher joins.
    pub(crate) fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Whether the kernel killed a process of this worker for going over
    /// the memory limit (`oom_kill` in `memory.oom_control`).
    pub(crate) fn oom_killed(&self) -> bool {
        let text = self
            .oom_file
            .as_deref()
            .and_then(|f| std::fs::read_to_string(f).ok());
        count(text.as_deref(), "oom_kill ") > 0
    }

    /// How often a fork of this worker's tree was refused at the process
    /// limit (`max` in `pids.events`), since the worker started.
    pub(crate) fn forks_refused(&self) -> u64 {
        use std::os::unix::fs::FileExt as _;
        let Some((path, opened)) = &self.pids_events else {
            return 0;
        };
        let file = match opened.get() {
            Some(file) => file,
            None => match std::fs::File::open(path) {
                Ok(file) => opened.get_or_init(|| file),
                Err(_) => return 0,
            },
        };
        // A few dozen bytes: `max N` and, in v2, `max.imposed N`.
        let mut buf = [0u8; 256];
        let read = file.read_at(&mut buf, 0).unwrap_or(0);
        count(std::str::from_utf8(&buf[..read]).ok(), "max ")
    }

    /// Whether `controller` holds a limit of this worker.
    pub(crate) fn has(&self, controller: &str) -> bool {
        self.held.contains(&controller)
    }
}

impl Drop for WorkerCgroups {
    /// Removes the cgroups once their processes are gone: the tree was
    /// killed just before, so this waits a few milliseconds at most
    /// ([`REMOVE_WAIT`]); a cgroup still busy after that is left to a thread.
    fn drop(&mut self) {
        self.pids_events = None;
        let mut left = std::mem::take(&mut self.dirs);
        let deadline = std::time::Instant::now() + REMOVE_WAIT;
        loop {
            left.retain(|d| !remove_dir(d));
            if left.is_empty() {
                return;
            }
            if std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(REMOVE_PAUSE);
        }
        // Still busy (a killed process not gone yet, on a loaded machine):
        // a thread goes on trying, and a process that exits meanwhile can
        // finish the job in `remove_left_behind`.
        lock_left().extend(left);
        std::thread::spawn(|| {
            for _ in 0..REMOVE_TRIES {
                std::thread::sleep(REMOVE_PAUSE);
                if retry_left() {
                    return;
                }
            }
            tracing::warn!(
                left = ?*lock_left(),
                "cannot remove the worker's cgroups; they are left empty"
            );
        });
    }
}

/// Worker cgroups whose removal is still to be retried.
static LEFT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn lock_left() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LEFT.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Tries the removals left once more; whether none is left.
fn retry_left() -> bool {
    let mut left = lock_left();
    left.retain(|d| !remove_dir(d));
    left.is_empty()
}

/// Waits up to `within` for the worker cgroups still being removed (see
/// [`WorkerCgroups`]'s drop): for a process about to exit, whose threads
/// would otherwise die with the job half done. The next process's sweep
/// removes what is still left then.
pub fn remove_left_behind(within: Duration) {
    let deadline = std::time::Instant::now() + within;
    while !retry_left() && std::time::Instant::now() < deadline {
        std::thread::sleep(REMOVE_PAUSE);
    }
}

/// Removes the empty worker cgroups in `parent` of hosts that are gone: a
/// host that exits (or is killed) before a worker's cgroups are removed
/// leaves them, and a later process given the same pid would otherwise find
/// its first names taken. Run before this process makes its first cgroup,
/// so a name with this process's pid is a leftover too. A cgroup that still
/// holds processes cannot be removed and is left.
fn sweep(parent: &Path) {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(host) = name
            .to_str()
            .and_then(|n| n.strip_prefix(WORKER_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, n)| n.parse::<u64>().ok().and(pid.parse::<u32>().ok()))
        else {
            continue;
        };
        if host == me || !Path::new(&format!("/proc/{host}")).exists() {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// The number after `key` in the text of a cgroup events file; 0 when absent.
fn count(text: Option<&str>, key: &str) -> u64 {
    text.and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|n| n.trim().parse().ok())
    })
    .unwrap_or(0)
}

fn remove_dir(dir: &Path) -> bool {
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

fn write(dir: &Path, file: &str, value: u64) -> std::io::Result<()> {
    std::fs::write(dir.join(file), value.to_string())
}

/// The CPU quota per [`CPU_PERIOD_US`] for `cpus`: at least 1 ms, the
/// kernel's minimum.
fn cpu_quota(cpus: f64) -> u64 {
    let quota = (cpus * CPU_PERIOD_US as f64).round();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "cpus is validated finite and positive; the product fits"
    )]
    let quota = quota as u64;
    quota.max(1000)
}

/// This process's own cgroup in `controller` (v1), when it is mounted.
fn own_cgroup(controller: &str) -> Option<PathBuf> {
    let mount = Path::new(ROOT).join(controller);
    if !mount.join("cgroup.procs").exists() {
        return None;
    }
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then_some(path)
    })?;
    Some(mount.join(path.trim_start_matches('/')))
}

/// Whether per-worker cgroups can be made here: makes and removes one.
pub(crate) fn probe() -> LayerStatus {
    let limits = Limits {
        memory: 1 << 40,
        pids: 1 << 22,
        cpus: 1.0,
    };
    match WorkerCgroups::create(limits) {
        Ok(made) if made.dirs.is_empty() => {
            LayerStatus::off("no cgroup v1 controller mounted; rlimits instead")
        }
        Ok(made) => {
            let version = if v2::unified(Path::new(ROOT)) {
                "v2"
            } else {
                "v1"
            };
            let names: Vec<&str> = CONTROLLERS
                .iter()
                .copied()
                .filter(|c| made.has(c))
                .collect();
            LayerStatus::on(format!("{version}: {}", names.join(", ")))
        }
        Err(e) => LayerStatus::off(format!("cgroups not writable ({e}); rlimits instead")),
    }
}

/// The unified hierarchy (cgroup v2). Not run against a real kernel on the
/// machines this is developed on (cgroup v1, whose controllers cannot be
/// bound to a v2 mount at once): its tests use a folder laid out like
/// cgroupfs.
mod v2 {
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    use super::{CONTROLLERS, CPU_PERIOD_US, Limits, ROOT, WorkerCgroups, cpu_quota, write};

    /// The leaf the host moves itself into when its own cgroup must hand
    /// its controllers down (a cgroup with processes cannot, the root aside).
    pub(super) const HOST_LEAF: &str = "py-code-mode-host";

    /// Where worker cgroups go, and which controllers they get.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(super) struct Parent {
        pub dir: PathBuf,
        pub controllers: Vec<&'static str>,
    }

    /// Whether `root` is a cgroup v2 (unified) mount.
    pub(super) fn unified(root: &Path) -> bool {
        root.join("cgroup.controllers").exists()
    }

    /// This process's parent for worker cgroups, set up once (the setup
    /// may move the process, after which `/proc/self/cgroup` names the leaf).
    pub(super) fn parent() -> Result<&'static Parent, String> {
        static PARENT: OnceLock<Result<Parent, String>> = OnceLock::new();
        PARENT
            .get_or_init(|| {
                let own = std::fs::read_to_string("/proc/self/cgroup")
                    .map_err(|e| format!("cannot read `/proc/self/cgroup`: {e}"))?;
                setup(Path::new(ROOT), &own, std::process::id())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Makes `root`'s cgroup of this process (named in `own`, the text of
    /// `/proc/self/cgroup`) a parent for worker cgroups: the controllers
    /// delegated to it are enabled for its children. A cgroup that holds
    /// processes cannot enable them (the root aside), so the host moves
    /// itself into a leaf of its own first, but only when it is alone there:
    /// it never moves other processes.
    pub(super) fn setup(root: &Path, own: &str, pid: u32) -> Result<Parent, String> {
        let path = own
            .lines()
            .find_map(|line| line.strip_prefix("0::"))
            .ok_or("`/proc/self/cgroup` names no cgroup v2")?
            .trim();
        let dir = root.join(path.trim_start_matches('/'));
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .map_err(|e| format!("cannot read `{}`: {e}", dir.join(file).display()))
        };
        let available = read("cgroup.controllers")?;
        let controllers: Vec<&'static str> = CONTROLLERS
            .iter()
            .copied()
            .filter(|c| available.split_whitespace().any(|a| a == *c))
            .collect();
        if controllers.is_empty() {
            return Err(format!(
                "no memory, pids or cpu controller delegated to `{}`",
                dir.display()
            ));
        }
        let enabled = read("cgroup.subtree_control")?;
        if controllers
            .iter()
            .all(|c| enabled.split_whitespace().any(|e| e == *c))
        {
            return Ok(Parent { dir, controllers });
        }
        if path != "/" {
            let procs = read("cgroup.procs")?;
            let others = procs
                .split_whitespace()
                .filter(|p| p.parse::<u32>().ok() != Some(pid))
                .count();
            if others > 0 {
                return Err(format!(
                    "`{}` holds {others} other processes, so it cannot hand its controllers to workers",
                    dir.display()
                ));
            }
            let leaf = dir.join(HOST_LEAF);
            match std::fs::create_dir(&leaf) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("cannot make `{}`: {e}", leaf.display())),
            }
            std::fs::write(leaf.join("cgroup.procs"), pid.to_string())
                .map_err(|e| format!("cannot move into `{}`: {e}", leaf.display()))?;
        }
        let wanted: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
        std::fs::write(dir.join("cgroup.subtree_control"), wanted.join(" ")).map_err(|e| {
            format!(
                "cannot enable {} for `{}`'s children: {e}",
                controllers.join(", "),
                dir.display()
            )
        })?;
        Ok(Parent { dir, controllers })
    }

    /// One worker's cgroup under `parent`, with `limits`.
    pub(super) fn create(
        parent: &Parent,
        name: &str,
        limits: Limits,
    ) -> std::io::Result<WorkerCgroups> {
        let dir = parent.dir.join(name);
        std::fs::create_dir(&dir)?;
        let mut made = WorkerCgroups {
            dirs: vec![dir.clone()],
            held: Vec::new(),
            oom_file: None,
            pids_events: None,
        };
        for controller in &parent.controllers {
            match *controller {
                "memory" => {
                    write(&dir, "memory.max", limits.memory)?;
                    // No swap: the limit is the worker's memory, as in v1
                    // where swap counts; absent without swap accounting.
                    let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                    made.oom_file = Some(dir.join("memory.events"));
                }
                "pids" => {
                    write(&dir, "pids.max", limits.pids)?;
                    made.pids_events = Some((dir.join("pids.events"), OnceLock::new()));
                }
                "cpu" => std::fs::write(
                    dir.join("cpu.max"),
                    format!("{} {CPU_PERIOD_US}", cpu_quota(limits.cpus)),
                )?,
                _ => continue,
            }
            made.held.push(*controller);
        }
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_removes_empty_worker_cgroups_of_gone_hosts_and_reused_pids_only() {
        let parent = tempfile::tempdir().expect("tempdir");
        let gone = (4_000_000..4_194_304)
            .find(|pid| !Path::new(&format!("/proc/{pid}")).exists())
            .expect("a pid no process has");
        let me = std::process::id();
        let dir = |name: String| {
            let dir = parent.path().join(name);
            std::fs::create_dir(&dir).expect("mkdir");
            dir
        };
        let dead = dir(format!("py-code-mode-{gone}-0"));
        let reused = dir(format!("py-code-mode-{me}-7"));
        let live = dir("py-code-mode-1-3".to_owned());
        let host_leaf = dir(v2::HOST_LEAF.to_owned());
        let other = dir(format!("py-code-mode-{gone}-x"));
        // A cgroup that still holds something (processes, in a real one)
        // cannot be removed.
        let busy = dir(format!("py-code-mode-{gone}-1"));
        std::fs::write(busy.join("cgroup.procs"), "1").expect("write");
        sweep(parent.path());
        assert!(!dead.exists(), "a gone host's cgroup is removed");
        assert!(
            !reused.exists(),
            "one named with this pid before it made any is a leftover"
        );
        assert!(live.exists(), "a live host's cgroup stays");
        assert!(
            host_leaf.exists() && other.exists(),
            "names that are not a worker's stay"
        );
        assert!(busy.exists());
    }

    /// A folder laid out like a cgroup2 mount with the host in
    /// `/app.slice/host.scope`, alone unless `others` are given.
    fn fake_cgroupfs(delegated: &str, others: &[u32]) -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            root.path().join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma misc",
        )
        .expect("write");
        let own = root.path().join("app.slice/host.scope");
        std::fs::create_dir_all(&own).expect("mkdir");
        std::fs::write(own.join("cgroup.controllers"), delegated).expect("write");
        std::fs::write(own.join("cgroup.subtree_control"), "").expect("write");
        let procs: Vec<String> = std::iter::once(4242)
            .chain(others.iter().copied())
            .map(|p| p.to_string())
            .collect();
        std::fs::write(own.join("cgroup.procs"), procs.join("\n")).expect("write");
        (root, own)
    }

    #[test]
    fn v2_moves_a_lone_host_into_a_leaf_and_gives_workers_the_controllers() {
        let (root, own) = fake_cgroupfs("cpu io memory pids", &[]);
        assert!(v2::unified(root.path()));
        let parent = v2::setup(root.path(), "0::/app.slice/host.scope\n", 4242).expect("setup");
        assert_eq!(parent.dir, own);
        assert_eq!(parent.controllers, ["memory", "pids", "cpu"]);
        let read = |path: PathBuf| std::fs::read_to_string(path).expect("read");
        assert_eq!(read(own.join(v2::HOST_LEAF).join("cgroup.procs")), "4242");
        assert_eq!(
            read(own.join("cgroup.subtree_control")),
            "+memory +pids +cpu"
        );
        let limits = Limits {
            memory: 256 << 20,
            pids: 64,
            cpus: 0.5,
        };
        let made = v2::create(&parent, "py-code-mode-1-0", limits).expect("create");
        let dir = own.join("py-code-mode-1-0");
        assert_eq!(made.dirs(), std::slice::from_ref(&dir));
        assert_eq!(read(dir.join("memory.max")), (256_u64 << 20).to_string());
        assert_eq!(read(dir.join("memory.swap.max")), "0");
        assert_eq!(read(dir.join("pids.max")), "64");
        assert_eq!(read(dir.join("cpu.max")), "50000 100000");
        assert!(made.has("memory") && made.has("pids") && made.has("cpu"));
        assert!(!made.oom_killed());
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .expect("write");
        assert!(made.oom_killed());
        assert_eq!(made.forks_refused(), 0);
        std::fs::write(dir.join("pids.events"), "max 7\n").expect("write");
        assert_eq!(made.forks_refused(), 7);
        // The fake's files keep the folder from being removed as cgroupfs would.
        std::mem::forget(made);
    }

    #[test]
    fn v2_uses_the_controllers_delegated_and_already_enabled_as_they_are() {
        let (root, own) = fake_cgroupfs("memory pids", &[]);
        std::fs::write(own.join("cgroup.subtree_control"), "memory pids").expect("write");
        let parent = v2::setup(root.path(), "0::/app.slice/host.scope", 4242).expect("setup");
        assert_eq!(parent.controllers, ["memory", "pids"]);
        assert!(!own.join(v2::HOST_LEAF).exists(), "nothing moved");
        let made = v2::create(
            &parent,
            "w",
            Limits {
                memory: 1,
                pids: 2,
                cpus: 1.0,
            },
        )
        .expect("create");
        assert!(made.has("pids") && !made.has("cpu"));
        assert!(!own.join("w/cpu.max").exists());
        std::mem::forget(made);
    }

    #[test]
    fn v2_refuses_to_move_other_processes_or_to_work_without_controllers() {
        let (root, own) = fake_cgroupfs("cpu memory pids", &[77, 78]);
        let error = v2::setup(root.path(), "0::/app.slice/host.scope", 4242).expect_err("shared");
        assert!(error.contains("holds 2 other processes"), "{error}");
        assert!(!own.join(v2::HOST_LEAF).exists());
        assert_eq!(
            std::fs::read_to_string(own.join("cgroup.subtree_control")).expect("read"),
            ""
        );
        let (root, _) = fake_cgroupfs("io cpuset", &[]);
        let error = v2::setup(root.path(), "0::/app.slice/host.scope", 4242).expect_err("none");
        assert!(
            error.contains("no memory, pids or cpu controller"),
            "{error}"
        );
        let error = v2::setup(root.path(), "1:name=systemd:/x", 4242).expect_err("v1 only");
        assert!(error.contains("no cgroup v2"), "{error}");
    }

    #[test]
    fn v2_in_the_root_cgroup_enables_the_controllers_without_moving() {
        let (root, _) = fake_cgroupfs("", &[]);
        std::fs::write(root.path().join("cgroup.subtree_control"), "").expect("write");
        std::fs::write(root.path().join("cgroup.procs"), "1\n4242").expect("write");
        let parent = v2::setup(root.path(), "0::/", 4242).expect("setup");
        assert_eq!(parent.dir, root.path());
        assert!(!root.path().join(v2::HOST_LEAF).exists());
        assert_eq!(
            std::fs::read_to_string(root.path().join("cgroup.subtree_control")).expect("read"),
            "+memory +pids +cpu"
        );
    }
}
