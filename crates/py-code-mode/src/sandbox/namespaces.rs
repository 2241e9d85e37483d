//! Namespaces and the filesystem view, built in the launcher.
//!
//! The user namespace maps only our own uid and gid (no other user exists
//! inside) and gives the launcher the capabilities it needs to mount inside
//! its own mount namespace, and nowhere else. The view is a fresh tmpfs root
//! holding bind mounts of the paths of the spec (read-only unless listed as
//! writable), a `/proc` of the new pid namespace, a minimal `/dev` and a
//! size-capped `/tmp`; the host's root is then detached, so nothing else of
//! it can be reached by any path.

use std::fs::File;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::unistd::Pid;

use super::{SANDBOX_TMP, Spec};

/// Where the new root is assembled: a tmpfs mounted over the host's `/tmp`
/// inside our mount namespace only (the sources are opened before).
const NEW_ROOT: &str = "/tmp";
/// Device nodes the worker may use, bound from the host's `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];
/// Size of the root tmpfs: mount points and symbolic links only.
const ROOT_SIZE: &str = "size=1m";

/// Stack of the init while it sets up (it execs nothing itself; its own
/// code is shallow). Pages are touched only as used.
const INIT_STACK: usize = 8 << 20;

/// Starts `init` as pid 1 of new user, pid, mount, ipc, uts and cgroup
/// namespaces (and net unless `network`), with our uid and gid mapped to
/// themselves. Returns its pid.
///
/// The maps are written from here, in the parent namespace: mapping uid 0
/// (the host's root) needs `CAP_SETFCAP` there, which the child, already
/// inside, does not have. The child waits on a pipe until they are.
pub(crate) fn clone_init(network: bool, mut init: impl FnMut() -> i32) -> Result<Pid, String> {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWCGROUP;
    if !network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let (wait_end, go_end) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("cannot make a pipe: {e}"))?;
    let go_raw = go_end.as_raw_fd();
    let mut stack = vec![0_u8; INIT_STACK];
    let child = Box::new(move || {
        // Our copy of the writing end: closed, so the parent's death reads as EOF.
        let _ = nix::unistd::close(go_raw);
        let mut byte = [0_u8; 1];
        match nix::unistd::read(&wait_end, &mut byte) {
            Ok(1) => isize::try_from(init()).unwrap_or(1),
            _ => 1,
        }
    });
    let pid = clone_child(child, &mut stack, flags)
        .map_err(|e| format!("the kernel refused new namespaces (`clone`: {e})"))?;
    let write = |file: &str, text: String| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| format!("cannot write `{path}`: {e}"))
    };
    // `deny` first: no process inside can then drop a group to get past a
    // `g-rwx` permission.
    let mapped = write("setgroups", "deny".to_owned())
        .and_then(|()| write("uid_map", format!("{uid} {uid} 1")))
        .and_then(|()| write("gid_map", format!("{gid} {gid} 1")));
    if let Err(message) = mapped {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(message);
    }
    nix::unistd::write(&go_end, b"1").map_err(|e| format!("cannot start the init: {e}"))?;
    Ok(pid)
}

/// The namespaces [`clone_init`] makes, for the status.
pub(crate) fn made(network: bool) -> &'static str {
    if network {
        "user, pid, mount, ipc, uts, cgroup; network shared"
    } else {
        "user, pid, mount, net, ipc, uts, cgroup"
    }
}

#[expect(
    unsafe_code,
    reason = "clone in the single-threaded launcher, the child on its own stack"
)]
fn clone_child(
    child: nix::sched::CloneCb<'_>,
    stack: &mut [u8],
    flags: CloneFlags,
) -> nix::Result<Pid> {
    // SAFETY: the launcher has one thread (no lock can be held by another),
    // and `INIT_STACK` is far more than the init's setup needs.
    unsafe { nix::sched::clone(child, stack, flags, Some(nix::libc::SIGCHLD)) }
}

/// A path of the view, with its source opened in the host's root.
struct Entry {
    path: PathBuf,
    writable: bool,
    source: Source,
}

enum Source {
    /// A symbolic link at the top of the path (`/bin -> usr/bin`): made
    /// again inside, pointing at the same text.
    Link(PathBuf),
    Dir(OwnedFd),
    File(OwnedFd),
}

/// Builds the view and makes it the root. Runs in the init (pid 1 of the
/// new pid namespace, for its `/proc`).
pub(crate) fn build_view(spec: &Spec) -> Result<(), String> {
    let _ = nix::unistd::sethostname("py-code-mode");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("cannot make the mounts private: {e}"))?;
    let entries = open_sources(spec)?;
    let devices: Vec<(String, OwnedFd)> = DEVICES
        .iter()
        .filter_map(|name| {
            let fd = open_path(&Path::new("/dev").join(name)).ok()?;
            Some(((*name).to_owned(), fd))
        })
        .collect();
    tmpfs(NEW_ROOT, &format!("mode=0755,{ROOT_SIZE}"))?;
    let root = Path::new(NEW_ROOT);
    // The sandbox's own `/tmp` first: a path the user shows from the host's
    // `/tmp` lands on it, not under it.
    let tmp = inside(root, Path::new(SANDBOX_TMP));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot make `/tmp`: {e}"))?;
    tmpfs(&tmp, &format!("mode=1777,size={}", spec.scratch_bytes))?;
    for entry in &entries {
        let target = inside(root, &entry.path);
        match &entry.source {
            Source::Link(to) => {
                make_parent(&target)?;
                symlink(to, &target)
                    .map_err(|e| format!("cannot link `{}`: {e}", entry.path.display()))?;
            }
            Source::Dir(fd) => {
                std::fs::create_dir_all(&target)
                    .map_err(|e| format!("cannot make `{}`: {e}", entry.path.display()))?;
                bind(fd, &target, &entry.path)?;
            }
            Source::File(fd) => {
                make_parent(&target)?;
                if !target.exists() {
                    File::create(&target)
                        .map_err(|e| format!("cannot make `{}`: {e}", entry.path.display()))?;
                }
                bind(fd, &target, &entry.path)?;
            }
        }
    }
    build_dev(root, &devices, spec.scratch_bytes)?;
    let proc = root.join("proc");
    std::fs::create_dir_all(&proc).map_err(|e| format!("cannot make `/proc`: {e}"))?;
    mount(
        Some("proc"),
        &proc,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| format!("cannot mount a fresh `/proc`: {e}"))?;
    // Read-only last: a writable path may sit inside a read-only one.
    for entry in entries.iter().filter(|e| !e.writable) {
        if !matches!(entry.source, Source::Link(_)) {
            read_only(&inside(root, &entry.path))?;
        }
    }
    read_only(root)?;
    enter(root)
}

/// Opens every source in the host's root (following symbolic links inside
/// the path, as the host sees it), before anything is mounted over it.
fn open_sources(spec: &Spec) -> Result<Vec<Entry>, String> {
    let mut wanted: Vec<(PathBuf, bool)> = spec
        .read_only
        .iter()
        .map(|p| (p.clone(), false))
        .chain(spec.writable.iter().map(|p| (p.clone(), true)))
        .collect();
    // Parents before children: a bind inside a bind lands on the outer one.
    wanted.sort_by_key(|(p, _)| p.components().count());
    let mut entries = Vec::new();
    for (path, writable) in wanted {
        let Ok(meta) = path.symlink_metadata() else {
            continue; // a system path this machine does not have
        };
        let source = if meta.file_type().is_symlink() {
            Source::Link(
                std::fs::read_link(&path)
                    .map_err(|e| format!("cannot read the link `{}`: {e}", path.display()))?,
            )
        } else {
            let fd =
                open_path(&path).map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
            if meta.is_dir() {
                Source::Dir(fd)
            } else {
                Source::File(fd)
            }
        };
        entries.push(Entry {
            path,
            writable,
            source,
        });
    }
    Ok(entries)
}

fn open_path(path: &Path) -> nix::Result<OwnedFd> {
    open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
}

/// `root` + the absolute `path`.
fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

fn make_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot make `{}`: {e}", parent.display())),
        None => Ok(()),
    }
}

fn tmpfs(target: impl AsRef<Path>, options: &str) -> Result<(), String> {
    let target = target.as_ref();
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options),
    )
    .map_err(|e| format!("cannot mount a tmpfs on `{}`: {e}", target.display()))
}

/// Binds the opened source (through its `/proc/self/fd` link) onto `target`.
fn bind(fd: &OwnedFd, target: &Path, shown: &Path) -> Result<(), String> {
    let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
    mount(
        Some(source.as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("cannot show `{}` in the sandbox: {e}", shown.display()))
}

/// Remounts a bind read-only, keeping the flags the kernel locks in a user
/// namespace (`nosuid`, `nodev`, `noexec` of the source).
fn read_only(target: &Path) -> Result<(), String> {
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    if let Ok(stat) = statvfs(target) {
        let have = stat.flags();
        for (fs, ms) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        ] {
            if have.contains(fs) {
                flags |= ms;
            }
        }
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(|e| format!("cannot make `{}` read-only: {e}", target.display()))
}

/// A tmpfs `/dev` with the harmless devices, the usual links and a `/dev/shm`.
fn build_dev(root: &Path, devices: &[(String, OwnedFd)], shm_bytes: u64) -> Result<(), String> {
    let dev = root.join("dev");
    std::fs::create_dir_all(&dev).map_err(|e| format!("cannot make `/dev`: {e}"))?;
    tmpfs(&dev, "mode=0755,size=64k")?;
    for (name, fd) in devices {
        let target = dev.join(name);
        File::create(&target).map_err(|e| format!("cannot make `/dev/{name}`: {e}"))?;
        bind(fd, &target, &Path::new("/dev").join(name))?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, dev.join(link)).map_err(|e| format!("cannot link `/dev/{link}`: {e}"))?;
    }
    let shm = dev.join("shm");
    std::fs::create_dir_all(&shm).map_err(|e| format!("cannot make `/dev/shm`: {e}"))?;
    tmpfs(&shm, &format!("mode=1777,size={shm_bytes}"))
}

/// Makes `root` the root and detaches the host's (`pivot_root(".", ".")`).
fn enter(root: &Path) -> Result<(), String> {
    nix::unistd::chdir(root).map_err(|e| format!("cannot enter the new root: {e}"))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("`pivot_root` failed: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| format!("cannot detach the host's root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("cannot enter `/`: {e}"))
}
