//! File-system primitives of [`FileStorage`](super::FileStorage) that trust
//! nothing below the library's folders.
//!
//! The folders the user named (`--base`, `--skills`, …) are opened by path, so a
//! symbolic link there is the user's choice and is followed. Everything below
//! them is reached with `openat` relative to an open folder and `O_NOFOLLOW`:
//! a symbolic link planted as an item or as a subfolder is refused, never
//! followed, so no read or write leaves the library. Files are opened with
//! `O_NONBLOCK` and their type is checked on the open descriptor, so a FIFO or a
//! device planted as an item is refused instead of blocking a thread, and every
//! read is bounded by a size the caller names.
//!
//! A write goes to a new file in the folder's hidden [`TMP_DIR`], is synced,
//! renamed over the item in one step and the item's folder is synced: a reader
//! or a crash sees the old file or the new one. A writer holds an exclusive
//! `flock` on its temporary file until the rename, so [`sweep_tmp`] (run when a
//! library is opened) removes exactly the files of writers that died.
//!
//! These functions block: callers run them on `spawn_blocking`.

use std::ffi::CStr;
use std::fs::File;
use std::hash::{BuildHasher as _, Hasher as _, RandomState};
use std::io::{self, ErrorKind, Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, FcntlArg, Flock, FlockArg, OFlag, fcntl, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, fsync, linkat, unlinkat};

use crate::error::StorageError;

/// The hidden folder, in each folder of the library, that holds writes in
/// flight. It sits in the folder it serves because a rename cannot cross file
/// systems and `--skills`/`--artifacts` may put folders on different ones.
pub(super) const TMP_DIR: &str = ".tmp";
/// Attempts of one write whose temporary file another process's sweep removed
/// between its creation and its lock (a window of two system calls).
const WRITE_ATTEMPTS: usize = 3;
/// Items are private to the user, as they were when written by `tempfile`.
const FILE_MODE: u32 = 0o600;
/// Folders get the usual mode; the umask narrows it.
const DIR_MODE: u32 = 0o777;

/// An open folder of the library, with its path for messages.
#[derive(Debug)]
pub(super) struct Folder {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a directory entry is, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device: named for messages.
    Other(&'static str),
}

impl Kind {
    fn of_mode(mode: u32) -> Self {
        match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFREG => Self::File,
            SFlag::S_IFDIR => Self::Dir,
            SFlag::S_IFLNK => Self::Symlink,
            SFlag::S_IFIFO => Self::Other("a FIFO"),
            SFlag::S_IFSOCK => Self::Other("a socket"),
            SFlag::S_IFCHR => Self::Other("a character device"),
            SFlag::S_IFBLK => Self::Other("a block device"),
            _ => Self::Other("of an unknown type"),
        }
    }

    /// Why an item of this kind is refused, for `StorageError::Refused`.
    pub(super) fn refusal(self) -> String {
        match self {
            Self::File => "it is a regular file".to_owned(),
            Self::Dir => "it is a folder, not a file".to_owned(),
            Self::Symlink => {
                "it is a symbolic link, and the library follows no links\nhint: replace the link with the file itself".to_owned()
            }
            Self::Other(what) => {
                format!("it is {what}, not a regular file; the library opens only regular files")
            }
        }
    }
}

/// A directory entry: its name (`Err` with a lossy rendering when it is not
/// UTF-8) and kind.
#[derive(Debug)]
pub(super) struct Entry {
    pub name: Result<String, String>,
    pub kind: Kind,
}

/// A file read whole: its bytes and modification time.
#[derive(Debug)]
pub(super) struct Loaded {
    pub bytes: Vec<u8>,
    pub modified: jiff::Timestamp,
}

/// The start of a file: up to its first line feed (included) or `limit` bytes,
/// and the size of the whole file.
#[derive(Debug)]
pub(super) struct Head {
    pub bytes: Vec<u8>,
    pub size: u64,
    pub modified: jiff::Timestamp,
}

impl Folder {
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn child(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn io(&self, action: &'static str, name: &str, source: impl Into<io::Error>) -> StorageError {
        StorageError::Io {
            action,
            path: self.child(name),
            source: source.into(),
        }
    }

    fn refused(&self, name: &str, reason: String) -> StorageError {
        StorageError::Refused {
            path: self.child(name),
            reason,
        }
    }
}

/// Opens a folder the user named, following links there; with `create`, makes
/// it (and its parents) first. `None` when it does not exist and `!create`.
pub(super) fn open_root(path: &Path, create: bool) -> Result<Option<Folder>, StorageError> {
    let open = || {
        nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let fd = match open() {
        Ok(fd) => fd,
        Err(Errno::ENOENT) if create => {
            std::fs::create_dir_all(path).map_err(|source| StorageError::Io {
                action: "create",
                path: path.to_path_buf(),
                source,
            })?;
            open().map_err(|e| StorageError::Io {
                action: "open",
                path: path.to_path_buf(),
                source: e.into(),
            })?
        }
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => {
            return Err(StorageError::Io {
                action: "open",
                path: path.to_path_buf(),
                source: e.into(),
            });
        }
    };
    Ok(Some(Folder {
        fd,
        path: path.to_path_buf(),
    }))
}

/// Opens the subfolder `name` of `parent` without following a link; with
/// `create`, makes it first (and syncs `parent` so the new entry is durable).
/// `None` when it does not exist and `!create`; a link, file or anything else
/// in its place is refused.
pub(super) fn open_dir(
    parent: &Folder,
    name: &str,
    create: bool,
) -> Result<Option<Folder>, StorageError> {
    let open = || {
        openat(
            parent.fd.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let fd = match open() {
        Ok(fd) => fd,
        Err(Errno::ENOENT) if create => {
            match mkdirat(parent.fd.as_fd(), name, Mode::from_bits_truncate(DIR_MODE)) {
                Ok(()) => fsync(parent.fd.as_fd()).map_err(|e| parent.io("sync", name, e))?,
                Err(Errno::EEXIST) => {} // another process made it
                Err(e) => return Err(parent.io("create", name, e)),
            }
            open().map_err(|e| refusal_or_io(parent, name, "open", e))?
        }
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(refusal_or_io(parent, name, "open", e)),
    };
    Ok(Some(Folder {
        fd,
        path: parent.child(name),
    }))
}

/// Walks `parts` below `root` with [`open_dir`]; `None` when one is missing.
pub(super) fn open_path(
    root: &Folder,
    parts: &[&str],
    create: bool,
) -> Result<Option<Folder>, StorageError> {
    let mut current: Option<Folder> = None;
    for part in parts {
        let parent = current.as_ref().unwrap_or(root);
        match open_dir(parent, part, create)? {
            Some(next) => current = Some(next),
            None => return Ok(None),
        }
    }
    match current {
        Some(folder) => Ok(Some(folder)),
        None => reopen(root).map(Some),
    }
}

fn reopen(folder: &Folder) -> Result<Folder, StorageError> {
    let fd = folder.fd.try_clone().map_err(|source| StorageError::Io {
        action: "open",
        path: folder.path.clone(),
        source,
    })?;
    Ok(Folder {
        fd,
        path: folder.path.clone(),
    })
}

/// An `ELOOP`/`ENOTDIR` from an `O_NOFOLLOW` open means something other than
/// what we asked for sits there: say what it is.
fn refusal_or_io(parent: &Folder, name: &str, action: &'static str, e: Errno) -> StorageError {
    if matches!(e, Errno::ELOOP | Errno::ENOTDIR)
        && let Ok(stat) = fstatat(parent.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
    {
        return parent.refused(name, Kind::of_mode(stat.st_mode).refusal());
    }
    parent.io(action, name, e)
}

/// Opens the regular file `name` in `dir` for reading: `None` when absent;
/// refused when it is a link, a FIFO, a device or a folder, or larger than `max`.
fn open_regular(
    dir: &Folder,
    name: &str,
    max: u64,
) -> Result<Option<(File, FileStat)>, StorageError> {
    // Look before opening, so a device is never opened (opening some has side
    // effects); the check on the open descriptor below closes the race.
    match fstatat(dir.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) if Kind::of_mode(stat.st_mode) != Kind::File => {
            return Err(dir.refused(name, Kind::of_mode(stat.st_mode).refusal()));
        }
        Ok(_) => {}
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(dir.io("read", name, e)),
    }
    // O_NONBLOCK: a FIFO swapped in after the look opens at once instead of
    // waiting for a writer; it is refused just below.
    let fd = match openat(
        dir.fd.as_fd(),
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(refusal_or_io(dir, name, "read", e)),
    };
    let stat = fstat(fd.as_fd()).map_err(|e| dir.io("read", name, e))?;
    let kind = Kind::of_mode(stat.st_mode);
    if kind != Kind::File {
        return Err(dir.refused(name, kind.refusal()));
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > max {
        return Err(too_large(dir, name, size, max));
    }
    Ok(Some((File::from(fd), stat)))
}

fn too_large(dir: &Folder, name: &str, size: u64, max: u64) -> StorageError {
    dir.refused(
        name,
        format!("it holds {size} bytes, more than the {max} bytes the library reads"),
    )
}

fn modified(stat: &FileStat) -> jiff::Timestamp {
    jiff::Timestamp::new(
        stat.st_mtime,
        i32::try_from(stat.st_mtime_nsec).unwrap_or(0),
    )
    .unwrap_or_else(|_| jiff::Timestamp::now())
}

/// Reads the regular file `name` of `dir` whole, if it exists and holds at
/// most `max` bytes; see [`open_regular`] for what is refused.
pub(super) fn read_file(
    dir: &Folder,
    name: &str,
    max: u64,
) -> Result<Option<Loaded>, StorageError> {
    let Some((file, stat)) = open_regular(dir, name, max)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    // `take`: the file may grow after the size check (someone appending).
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| dir.io("read", name, e))?;
    if bytes.len() as u64 > max {
        return Err(too_large(dir, name, bytes.len() as u64, max));
    }
    Ok(Some(Loaded {
        bytes,
        modified: modified(&stat),
    }))
}

/// Reads the start of the regular file `name` of `dir`: up to and including
/// its first line feed, or `limit` bytes when there is none that early. Files
/// up to `max` bytes are accepted.
pub(super) fn read_head(
    dir: &Folder,
    name: &str,
    limit: usize,
    max: u64,
) -> Result<Option<Head>, StorageError> {
    let Some((mut file, stat)) = open_regular(dir, name, max)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    let mut chunk = [0_u8; 8192];
    while bytes.len() < limit {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(dir.io("read", name, e)),
        };
        let got = &chunk[..n];
        if let Some(end) = got.iter().position(|&b| b == b'\n') {
            bytes.extend_from_slice(&got[..=end]);
            break;
        }
        bytes.extend_from_slice(got);
    }
    bytes.truncate(limit);
    Ok(Some(Head {
        bytes,
        size: u64::try_from(stat.st_size).unwrap_or(0),
        modified: modified(&stat),
    }))
}

/// The entries of `dir` (`.` and `..` left out), without following links.
pub(super) fn list(dir: &Folder) -> Result<Vec<Entry>, StorageError> {
    let io = |e: Errno| StorageError::Io {
        action: "list",
        path: dir.path.clone(),
        source: e.into(),
    };
    // A fresh descriptor: a `Dir` owns its fd and its reading position.
    let fd = openat(
        dir.fd.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io)?;
    let mut handle = Dir::from_fd(fd).map_err(io)?;
    let mut entries = Vec::new();
    for entry in handle.iter() {
        let entry = entry.map_err(io)?;
        let raw: &CStr = entry.file_name();
        let bytes = raw.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let kind = match entry.file_type() {
            Some(Type::File) => Kind::File,
            Some(Type::Directory) => Kind::Dir,
            Some(Type::Symlink) => Kind::Symlink,
            Some(Type::Fifo) => Kind::Other("a FIFO"),
            Some(Type::Socket) => Kind::Other("a socket"),
            Some(Type::CharacterDevice) => Kind::Other("a character device"),
            Some(Type::BlockDevice) => Kind::Other("a block device"),
            // Some file systems do not fill `d_type`: ask without following.
            None => match fstatat(dir.fd.as_fd(), raw, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => Kind::of_mode(stat.st_mode),
                Err(Errno::ENOENT) => continue, // removed meanwhile
                Err(e) => return Err(io(e)),
            },
        };
        let name = match raw.to_str() {
            Ok(name) => Ok(name.to_owned()),
            Err(_) => Err(raw.to_string_lossy().into_owned()),
        };
        entries.push(Entry { name, kind });
    }
    Ok(entries)
}

/// Removes the file (or link, or FIFO) `name` of `dir` and syncs `dir`;
/// returns whether it existed. A folder in its place is refused.
pub(super) fn remove(dir: &Folder, name: &str) -> Result<bool, StorageError> {
    let removed = unlink(dir, name)?;
    if removed {
        fsync(dir.fd.as_fd()).map_err(|e| dir.io("sync", name, e))?;
    }
    Ok(removed)
}

/// [`remove`] without the sync: for a removal a crash may undo.
pub(super) fn unlink(dir: &Folder, name: &str) -> Result<bool, StorageError> {
    match unlinkat(dir.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(Errno::EISDIR) => Err(dir.refused(name, Kind::Dir.refusal())),
        Err(e) => Err(dir.io("delete", name, e)),
    }
}

/// Writes `parts` (concatenated) as the file `name` of `dir` in one atomic
/// rename from `tmp` (the [`TMP_DIR`] of the folder `dir` is in), syncing the
/// file before and `dir` after. Whatever sits at `name` is replaced, a link
/// included (the link itself, not its target); a folder there is refused.
pub(super) fn write(
    tmp: &Folder,
    dir: &Folder,
    name: &str,
    parts: &[&[u8]],
) -> Result<(), StorageError> {
    write_linked(tmp, dir, name, None, parts)
}

/// [`write`], and with `copy`, the same file also as `copy.1` in the folder
/// `copy.0` (of the same file system): a hard link made before the rename,
/// replacing whatever file is there. The data is written and synced once,
/// and only `dir` is synced after: a journaling file system commits the link
/// with the rename, and a caller must cope with a crash that keeps the item
/// and loses the copy (a skill's history does: the skill file holds that
/// version). Nothing of ours writes into a file in place, so the two names
/// keep the same bytes.
pub(super) fn write_linked(
    tmp: &Folder,
    dir: &Folder,
    name: &str,
    copy: Option<(&Folder, &str)>,
    parts: &[&[u8]],
) -> Result<(), StorageError> {
    for _ in 0..WRITE_ATTEMPTS {
        let temp = TempFile::create(tmp).map_err(|e| dir.io("write", name, e))?;
        let mut file = temp.file();
        for part in parts {
            file.write_all(part).map_err(|e| dir.io("write", name, e))?;
        }
        file.sync_data().map_err(|e| dir.io("write", name, e))?;
        if let Some((copy_dir, copy_name)) = copy {
            match link_replacing(tmp, &temp.name, copy_dir, copy_name) {
                Ok(()) => {}
                // Our file is still there: the copy's folder went away meanwhile.
                Err(Errno::ENOENT) if exists(tmp, &temp.name) => {
                    return Err(copy_dir.io("write", copy_name, Errno::ENOENT));
                }
                // Swept by a process opening the library before we held the lock.
                Err(Errno::ENOENT) => continue,
                Err(Errno::EISDIR) => {
                    return Err(copy_dir.refused(copy_name, Kind::Dir.refusal()));
                }
                Err(e) => return Err(copy_dir.io("write", copy_name, e)),
            }
        }
        match renameat(tmp.fd.as_fd(), temp.name.as_str(), dir.fd.as_fd(), name) {
            Ok(()) => {
                temp.persisted();
                fsync(dir.fd.as_fd()).map_err(|e| dir.io("sync", name, e))?;
                return Ok(());
            }
            // Our file is still there: the item's folder went away meanwhile.
            Err(Errno::ENOENT) if exists(tmp, &temp.name) => {
                return Err(dir.io("write", name, Errno::ENOENT));
            }
            // Swept by a process opening the library before we held the lock.
            Err(Errno::ENOENT) => {}
            Err(Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST) => {
                return Err(dir.refused(name, Kind::Dir.refusal()));
            }
            Err(e) => return Err(dir.io("write", name, e)),
        }
    }
    Err(dir.io(
        "write",
        name,
        io::Error::other("its temporary file kept being removed by other processes"),
    ))
}

/// Links the file `from` of `tmp` as `to` in `dir`, removing a file already
/// at `to` first (a folder there fails with `EISDIR`).
fn link_replacing(tmp: &Folder, from: &str, dir: &Folder, to: &str) -> nix::Result<()> {
    let link = || linkat(tmp.fd.as_fd(), from, dir.fd.as_fd(), to, AtFlags::empty());
    match link() {
        Err(Errno::EEXIST) => {
            unlinkat(dir.fd.as_fd(), to, UnlinkatFlags::NoRemoveDir)?;
            link()
        }
        done => done,
    }
}

/// A temporary file in [`TMP_DIR`], locked while it lives, removed on drop
/// unless it was renamed into place.
struct TempFile<'a> {
    tmp: &'a Folder,
    name: String,
    file: Flock<File>,
}

impl<'a> TempFile<'a> {
    fn create(tmp: &'a Folder) -> io::Result<Self> {
        loop {
            let name = temp_name();
            let fd = match openat(
                tmp.fd.as_fd(),
                name.as_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(FILE_MODE),
            ) {
                Ok(fd) => fd,
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(e.into()),
            };
            // Blocking: the only other holder is a sweep, for microseconds.
            return match Flock::lock(File::from(fd), FlockArg::LockExclusive) {
                Ok(file) => Ok(Self { tmp, name, file }),
                Err((_, e)) => {
                    let _ = unlinkat(tmp.fd.as_fd(), name.as_str(), UnlinkatFlags::NoRemoveDir);
                    Err(e.into())
                }
            };
        }
    }

    fn file(&self) -> &File {
        &self.file
    }

    /// The file was renamed into place: nothing to remove.
    fn persisted(mut self) {
        self.name.clear();
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            let _ = unlinkat(
                self.tmp.fd.as_fd(),
                self.name.as_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

/// `<pid>-<random>`: unique among live writers (with `O_EXCL` as the backstop).
fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{}-{:016x}", std::process::id(), hasher.finish())
}

/// Removes the temporary files of writers that died (no one holds their lock)
/// from the [`TMP_DIR`] of `root`, and anything that is not ours there (a link,
/// a FIFO). Returns how many entries it removed.
pub(super) fn sweep_tmp(root: &Folder) -> Result<usize, StorageError> {
    let tmp = match open_dir(root, TMP_DIR, false) {
        Ok(Some(tmp)) => tmp,
        Ok(None) => return Ok(0),
        Err(StorageError::Refused { .. }) => {
            // Not a folder (a planted link or file): ours to replace.
            tracing::warn!(
                "removing `{}`: it is not a folder",
                root.child(TMP_DIR).display()
            );
            remove(root, TMP_DIR)?;
            return Ok(1);
        }
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in list(&tmp)? {
        let Ok(name) = entry.name else {
            continue;
        };
        match entry.kind {
            Kind::File => {
                let Ok(fd) = openat(
                    tmp.fd.as_fd(),
                    name.as_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                    Mode::empty(),
                ) else {
                    continue; // renamed into place or removed meanwhile
                };
                // Held: a live writer's file. Free: its writer died.
                if let Ok(_lock) = Flock::lock(File::from(fd), FlockArg::LockExclusiveNonblock)
                    && remove(&tmp, &name)?
                {
                    removed += 1;
                }
            }
            Kind::Dir => {}
            Kind::Symlink | Kind::Other(_) => {
                if remove(&tmp, &name)? {
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}

/// An exclusive lock on one byte, at `slot`, of the file `name` of `dir`
/// (made if missing, never through a link), held until dropped: serialises
/// writers of one item across processes without a lock file per item. An
/// open-file-description lock: released when its descriptor closes, never
/// shared with another thread of this process, and honoured over NFS.
/// Blocking: holders only do a few small writes.
pub(super) fn lock_range(dir: &Folder, name: &str, slot: u64) -> Result<RangeLock, StorageError> {
    let fd = openat(
        dir.fd.as_fd(),
        name,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(FILE_MODE),
    )
    .map_err(|e| refusal_or_io(dir, name, "lock", e))?;
    let file = File::from(fd);
    #[expect(
        clippy::cast_possible_truncation,
        reason = "F_WRLCK and SEEK_SET are small constants that `flock` holds as shorts"
    )]
    let range = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as nix::libc::c_short,
        l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
        l_start: nix::libc::off_t::try_from(slot).unwrap_or(0),
        l_len: 1,
        l_pid: 0,
    };
    loop {
        match fcntl(&file, FcntlArg::F_OFD_SETLKW(&range)) {
            Ok(_) => return Ok(RangeLock { _file: file }),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(dir.io("lock", name, e)),
        }
    }
}

/// A lock taken by [`lock_range`]; closing its descriptor releases it.
#[derive(Debug)]
pub(super) struct RangeLock {
    _file: File,
}

/// Whether `name` is in `dir` (not following a link).
pub(super) fn exists(dir: &Folder, name: &str) -> bool {
    fstatat(dir.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
}

/// Renames the file `from` of `dir` to `to` in `into` (replacing a file
/// there), without syncing: the caller syncs.
pub(super) fn rename(
    dir: &Folder,
    from: &str,
    into: &Folder,
    to: &str,
) -> Result<(), StorageError> {
    renameat(dir.fd.as_fd(), from, into.fd.as_fd(), to).map_err(|e| into.io("move", to, e))
}

/// Syncs the folder `dir`: its entries' changes are durable after.
pub(super) fn sync(dir: &Folder) -> Result<(), StorageError> {
    fsync(dir.fd.as_fd()).map_err(|e| dir.io("sync", "", e))
}

/// Removes the empty subfolder `name` of `dir`, if there; not synced.
pub(super) fn remove_dir(dir: &Folder, name: &str) -> Result<(), StorageError> {
    match unlinkat(dir.fd.as_fd(), name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(dir.io("delete", name, e)),
    }
}
