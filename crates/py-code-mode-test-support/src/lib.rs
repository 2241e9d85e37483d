//! Harness shared by the integration suites: temporary libraries, the Python
//! interpreter tests run on, and the path of the built binary.

#![expect(
    clippy::missing_panics_doc,
    reason = "a test harness fails the test by panicking, with a message"
)]

mod fake_hub;
mod redis_server;
pub mod servers;

use std::path::{Path, PathBuf};

pub use fake_hub::{FAKE_COMMIT, FakeHub};
pub use redis_server::RedisServer;
pub use servers::free_port;

/// The interpreter agent code runs on in tests: `PY_CODE_MODE_PYTHON` (set by
/// `scripts/test` to the test venv) or `python3` on PATH.
pub fn python() -> Option<PathBuf> {
    std::env::var_os("PY_CODE_MODE_PYTHON").map(PathBuf::from)
}

/// A library folder in a temporary directory, removed on drop.
pub struct TempLibrary {
    dir: tempfile::TempDir,
}

impl TempLibrary {
    /// An empty library (`tools/`, `skills/`, `artifacts/` are created by storage).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pcm-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `tools/<file>` with `yaml`.
    #[must_use]
    pub fn with_tool(self, file: &str, yaml: &str) -> Self {
        self.write(&format!("tools/{file}"), yaml);
        self
    }

    /// Writes `skills/<name>.py` with `source`.
    #[must_use]
    pub fn with_skill(self, name: &str, source: &str) -> Self {
        self.write(&format!("skills/{name}.py"), source);
        self
    }

    /// Writes a file relative to the library root, creating folders.
    pub fn write(&self, relative: &str, text: &str) {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

impl Default for TempLibrary {
    fn default() -> Self {
        Self::new()
    }
}

/// The `py-code-mode` binary under test: `PY_CODE_MODE_BIN`, else the one next
/// to the running test executable (`target/<profile>/`).
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PY_CODE_MODE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    // target/<profile>/deps/<test> -> target/<profile>/py-code-mode
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("unexpected test path {}", exe.display()));
    profile_dir.join("py-code-mode")
}

/// Whether `pid` is a live process; a zombie counts as dead (it runs nothing
/// and only waits to be reaped). Read from `/proc` directly, not through the
/// code under test.
pub fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}
