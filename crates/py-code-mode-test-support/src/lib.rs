//! Test harness shared by the integration suites (dev-only): real servers on
//! loopback ports, temp folders, Python for agent code.

mod redis_server;

use std::path::PathBuf;

pub use redis_server::{RedisServer, free_port};

/// The Python interpreter tests run agent code with: `PY_CODE_MODE_PYTHON`
/// (set by `scripts/test` to the test venv's), else `python3` on `PATH`.
pub fn python() -> Option<PathBuf> {
    std::env::var_os("PY_CODE_MODE_PYTHON").map(PathBuf::from)
}
