//! Child-process helpers shared by the CLI tool adapter and the subprocess executor.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Kills the whole process group led by `pid`: the child and anything it started.
///
/// Children are spawned with `process_group(0)`, so their pid is their group id
/// and killing the group reaches grandchildren that still hold our pipes.
pub(crate) fn kill_group(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // ESRCH (already gone) is the common, harmless case.
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
}
