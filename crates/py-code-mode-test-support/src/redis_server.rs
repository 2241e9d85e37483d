//! A real `redis-server` for tests, on a free loopback port, in a temp folder.
//!
//! It runs with an append-only file synced on every write, so [`RedisServer::kill`]
//! followed by [`RedisServer::restart`] shows what a crash of Redis does to
//! acknowledged writes: nothing.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::free_port;

/// How long a fresh `redis-server` may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` child process; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    password: Option<String>,
}

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// When `redis-server` is not installed or does not start: the Redis suites
    /// need a real server (`apt-get install redis-server`).
    pub fn start() -> Self {
        Self::start_with_password(None)
    }

    /// Like [`RedisServer::start`], with `requirepass`.
    ///
    /// # Panics
    /// As [`RedisServer::start`].
    pub fn start_with_password(password: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let mut server = Self {
            child: None,
            port: free_port(),
            dir,
            password: password.map(str::to_owned),
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:<port>` (with the password when there is one).
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server at once (`SIGKILL`, like a crash) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data folder.
    ///
    /// # Panics
    /// As [`RedisServer::start`].
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends one inline command and returns the raw reply (for assertions on
    /// the key schema without a Redis client).
    ///
    /// # Panics
    /// When the server does not answer.
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(self.addr())
            .unwrap_or_else(|e| panic!("redis-server on {} is not reachable: {e}", self.port));
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut request = Vec::new();
        if let Some(p) = &self.password {
            encode(&mut request, &["AUTH", p]);
        }
        encode(&mut request, args);
        stream
            .write_all(&request)
            .unwrap_or_else(|e| panic!("cannot write to redis-server: {e}"));
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        if self.password.is_some() {
            // Drop the `+OK` of `AUTH`.
            reply = reply
                .split_once("\r\n")
                .map_or_else(String::new, |(_, rest)| rest.to_owned());
        }
        reply
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start `redis-server`: {e}\nhint: `apt-get install redis-server` (the Redis suites need a real server)"
            )
        });
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.pong() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("redis-server exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pong(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200))
        else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        // An unauthenticated PING still proves the server is up (`-NOAUTH`).
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(stream.read(&mut buf), Ok(n) if n > 0 && (buf.starts_with(b"+PONG") || buf.starts_with(b"-NOAUTH")))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Appends one command in RESP form.
fn encode(request: &mut Vec<u8>, args: &[&str]) {
    request.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
}
