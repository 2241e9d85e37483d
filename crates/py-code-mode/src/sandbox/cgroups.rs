//! Memory, process and CPU limits through cgroup v1 (as on these machines):
//! the host makes one cgroup per worker under its own in each controller,
//! the launcher joins them before anything else, and the host removes them
//! once the worker's tree is dead. Where they are not writable (no root, a
//! read-only `/sys/fs/cgroup`, cgroup v2 only) the launcher falls back to
//! rlimits, which the status says.

use std::path::{Path, PathBuf};
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
    memory: Option<PathBuf>,
}

impl WorkerCgroups {
    /// Makes the cgroups with `limits` in every controller that is writable.
    pub(crate) fn create(limits: Limits) -> std::io::Result<Self> {
        let name = format!(
            "py-code-mode-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut made = Self {
            dirs: Vec::new(),
            memory: None,
        };
        for controller in CONTROLLERS {
            let Some(parent) = own_cgroup(controller) else {
                continue;
            };
            let dir = parent.join(&name);
            std::fs::create_dir(&dir)?;
            made.dirs.push(dir.clone());
            match *controller {
                "memory" => {
                    write(&dir, "memory.limit_in_bytes", limits.memory)?;
                    // Swap counts too where the kernel accounts it.
                    let _ = write(&dir, "memory.memsw.limit_in_bytes", limits.memory);
                    made.memory = Some(dir);
                }
                "pids" => write(&dir, "pids.max", limits.pids)?,
                "cpu" => {
                    write(&dir, "cpu.cfs_period_us", CPU_PERIOD_US)?;
                    let quota = (limits.cpus * CPU_PERIOD_US as f64).round();
                    // At least 1 ms per period, the kernel's minimum.
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "cpus is validated finite and positive; the product fits"
                    )]
                    let quota = (quota as u64).max(1000);
                    write(&dir, "cpu.cfs_quota_us", quota)?;
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
        let Some(dir) = &self.memory else {
            return false;
        };
        std::fs::read_to_string(dir.join("memory.oom_control"))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .is_some_and(|kills| kills > 0)
    }

    /// Whether every controller had a cgroup made.
    pub(crate) fn has(&self, controller: &str) -> bool {
        self.dirs
            .iter()
            .any(|d| d.starts_with(Path::new(ROOT).join(controller)))
    }
}

impl Drop for WorkerCgroups {
    /// Removes the cgroups once their processes are gone: the tree was
    /// killed just before, so this waits a few milliseconds at most
    /// ([`REMOVE_WAIT`]); a cgroup still busy after that is left to a thread.
    fn drop(&mut self) {
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
        std::thread::spawn(move || {
            for _ in 0..REMOVE_TRIES {
                std::thread::sleep(REMOVE_PAUSE);
                left.retain(|d| !remove_dir(d));
                if left.is_empty() {
                    return;
                }
            }
            tracing::warn!(
                ?left,
                "cannot remove the worker's cgroups; they are left empty"
            );
        });
    }
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
            let names: Vec<&str> = CONTROLLERS
                .iter()
                .copied()
                .filter(|c| made.has(c))
                .collect();
            LayerStatus::on(format!("v1: {}", names.join(", ")))
        }
        Err(e) => LayerStatus::off(format!("cgroups not writable ({e}); rlimits instead")),
    }
}
