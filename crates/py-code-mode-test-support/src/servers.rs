//! Real servers for tests: free loopback ports, spawned processes that die with
//! the test, and bounded polling for readiness (never a fixed sleep).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test server may take to accept connections (a cold Python
/// interpreter importing the MCP SDK on a busy 2-core machine).
pub const READY_TIMEOUT: Duration = Duration::from_mins(1);

/// The repository root.
pub fn repo_root() -> PathBuf {
    // At run time first: cargo sets it for the test being run, while the
    // compile-time value can name another checkout that shares the target
    // directory (cargo reuses artifacts of identical sources across paths).
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The test venv's interpreter (`scripts/test` creates it from
/// `tests/requirements.txt` and exports `PY_CODE_MODE_TEST_VENV`).
///
/// # Panics
/// When no test venv is configured: these tests need its packages.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("PY_CODE_MODE_TEST_VENV").unwrap_or_else(|| {
        panic!("PY_CODE_MODE_TEST_VENV is not set\nhint: run `scripts/test`, or point it at a venv with tests/requirements.txt installed")
    });
    PathBuf::from(venv).join("bin").join("python")
}

/// A program in the test venv's `bin` (`mcp-server-time`).
pub fn venv_bin(name: &str) -> PathBuf {
    venv_python().with_file_name(name)
}

/// A loopback port nobody listens on right now.
///
/// # Panics
/// When the OS has no free port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or_else(|e| panic!("no free port: {e}"), |a| a.port())
}

/// Polls until something accepts connections on `port`, for at most `timeout`.
///
/// # Panics
/// When nothing listens in time.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listened on port {port} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A child process killed (and reaped) when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    pub child: Child,
    pub port: u16,
}

impl ServerProcess {
    /// Starts `command` (which should listen on `port`) and waits until it does.
    ///
    /// # Panics
    /// When the process cannot start or never listens.
    pub fn start(mut command: Command, port: u16) -> Self {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let server = Self { child, port };
        wait_for_port(port, READY_TIMEOUT);
        server
    }

    /// The repository's MCP test server (tests/servers/mcp_test_server.py)
    /// over `transport` (`sse` or `streamable-http`) on a free port.
    pub fn mcp_test_server(transport: &str) -> Self {
        let port = free_port();
        let mut command = Command::new(venv_python());
        command
            .arg(repo_root().join("tests/servers/mcp_test_server.py"))
            .arg(transport)
            .arg(port.to_string());
        Self::start(command, port)
    }

    /// Kills the server now (to test what clients do when it dies).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
