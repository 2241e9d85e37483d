//! The real binary over stdio, driven with raw bytes: malformed frames get the
//! JSON-RPC error reply, a client's cancel stops the run, a client that goes
//! away leaves no process.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use py_code_mode_test_support::{TempLibrary, binary, python};
use serde_json::{Value, json};

/// Bound on every wait for the server: generous for a busy 2-core machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// The MCP server as a client sees it: raw lines in, JSON lines out.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Vec<u8>>,
    _library: TempLibrary,
}

impl Server {
    /// Starts `py-code-mode` (serve) on an empty library and initialises MCP.
    pub fn start() -> Self {
        Self::start_on(TempLibrary::new())
    }

    /// Starts `py-code-mode` (serve) on `library` and initialises MCP.
    pub fn start_on(library: TempLibrary) -> Self {
        Self::start_with(library, &[])
    }

    /// [`Server::start_on`] with `env` set for the server.
    pub fn start_with(library: TempLibrary, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary());
        command
            .envs(env.iter().copied())
            .arg("--base")
            .arg(library.path())
            .arg("--no-semantic")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(p) = python() {
            command.env("PY_CODE_MODE_PYTHON", p);
        }
        let mut child = command.spawn().expect("start py-code-mode");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stdin = child.stdin.take();
        let mut server = Self {
            child,
            stdin,
            lines,
            _library: library,
        };
        server.send_json(&json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "0"},
            },
        }));
        let init = server.reply();
        assert_eq!(init["id"], 0, "{init}");
        server.send_json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to the server");
        stdin.flush().expect("flush");
    }

    pub fn send_json(&mut self, message: &Value) {
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        self.send(&line);
    }

    /// The next line the server writes, as JSON (fails after [`DEADLINE`]).
    pub fn reply(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(DEADLINE)
            .expect("a reply within the deadline");
        serde_json::from_slice(&line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&line)))
    }

    /// Calls `run_code` with request id `id`.
    pub fn run_code(&mut self, id: i64, code: &str) {
        self.send_json(&json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "run_code", "arguments": {"code": code}},
        }));
    }

    /// Closes stdin: the client says goodbye.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits (bounded) for the server to exit; its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the server did not exit within {DEADLINE:?}")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The executor of the tests that watch the worker's processes from the
/// host by pid ([`spin_with_pids`]): in the sandbox, pids are those of its
/// own pid namespace and `file` is outside its view, and these tests are
/// about the tree being stopped, which the escape suite checks for it.
pub const WATCHABLE: (&str, &str) = ("PY_CODE_MODE_EXECUTOR", "subprocess");

/// Agent code that writes the worker's pid and a child's (`sleep`) to `file`,
/// then spins.
pub fn spin_with_pids(file: &Path) -> String {
    format!(
        "import os, subprocess\n\
         child = subprocess.Popen(['sleep', '300'])\n\
         with open({file:?} + '.tmp', 'w') as f:\n    f.write(f'{{os.getpid()}} {{child.pid}}')\n\
         os.rename({file:?} + '.tmp', {file:?})\n\
         while True: pass\n",
        file = file.display().to_string()
    )
}

/// The pids [`spin_with_pids`] wrote, once the file appears (bounded).
pub fn wait_for_pids(file: &Path) -> Vec<i32> {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if let Ok(text) = std::fs::read_to_string(file) {
            let pids: Vec<i32> = text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            assert_eq!(pids.len(), 2, "{text}");
            assert!(pids.iter().all(|&p| alive(p)), "the processes run");
            return pids;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the agent code never wrote {}", file.display())
}

/// Alive and not a zombie.
pub fn alive(pid: i32) -> bool {
    py_code_mode_test_support::alive(pid.into())
}

/// Waits (bounded) until none of `pids` is alive.
pub fn assert_gone(pids: &[i32]) {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if !pids.iter().any(|&p| alive(p)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    for &p in &left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    panic!("processes {left:?} outlived the run")
}

pub fn pid_file(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("pids")
}

pub fn text_of(reply: &Value) -> String {
    reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn malformed_frames_get_the_json_rpc_error_and_the_server_keeps_serving() {
    let mut server = Server::start();
    let deep = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\",\"params\":{{\"x\":{}{}}}}}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let mut huge =
        b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\",\"params\":{\"x\":\"".to_vec();
    huge.resize(huge.len() + 17 * 1024 * 1024, b'a');
    huge.extend_from_slice(b"\"}}\n");
    let frames: Vec<(&str, Vec<u8>, i64)> = vec![
        (
            "truncated JSON",
            br#"{"jsonrpc":"2.0","id":9,"method":"#.to_vec(),
            -32700,
        ),
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\",\"params\":{\"x\":\"\xff\xfe\"}}"
                .to_vec(),
            -32700,
        ),
        (
            "a lone surrogate",
            br#"{"jsonrpc":"2.0","id":9,"method":"ping","params":{"x":"\ud800"}}"#.to_vec(),
            -32700,
        ),
        (
            "NaN",
            br#"{"jsonrpc":"2.0","id":9,"method":"ping","params":{"x":NaN}}"#.to_vec(),
            -32700,
        ),
        (
            "nesting 10,000 deep",
            deep.trim_end().as_bytes().to_vec(),
            -32700,
        ),
        (
            "a 17 MiB line",
            huge.strip_suffix(b"\n").unwrap_or_default().to_vec(),
            -32600,
        ),
        ("JSON that is no message", b"[1, 2]".to_vec(), -32600),
    ];
    for (id, (what, mut frame, code)) in (1..).zip(frames) {
        frame.push(b'\n');
        server.send(&frame);
        let error = server.reply();
        assert_eq!(
            (&error["jsonrpc"], &error["id"], &error["error"]["code"]),
            (&json!("2.0"), &Value::Null, &json!(code)),
            "{what}: {error}"
        );
        server.send_json(&json!({"jsonrpc": "2.0", "id": id, "method": "ping"}));
        let pong = server.reply();
        assert_eq!(
            pong,
            json!({"jsonrpc": "2.0", "id": id, "result": {}}),
            "after {what}"
        );
    }
    // Valid JSON that is not a valid request keeps its id.
    server.send(b"{\"jsonrpc\":\"2.0\",\"id\":77,\"result\":{},\"method\":\"ping\"}\n");
    let error = server.reply();
    assert_eq!(
        (&error["id"], &error["error"]["code"]),
        (&json!(77), &json!(-32600))
    );
}

#[test]
fn a_cancelled_run_stops_its_tree_and_the_next_run_is_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = pid_file(&dir);
    let mut server = Server::start_with(TempLibrary::new(), &[WATCHABLE]);
    server.run_code(1, &spin_with_pids(&file));
    let pids = wait_for_pids(&file);
    server.send_json(&json!({
        "jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 1, "reason": "the user gave up"},
    }));
    assert_gone(&pids);
    // The worker's child was orphaned onto the server (a subreaper): it must
    // be reaped, not left a zombie for the server's lifetime.
    let start = Instant::now();
    while Path::new(&format!("/proc/{}", pids[1])).exists() {
        assert!(
            start.elapsed() < DEADLINE,
            "the orphaned `sleep` stays a zombie"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.run_code(2, "1 + 1");
    let reply = server.reply();
    assert_eq!(
        (&reply["id"], text_of(&reply)),
        (&json!(2), "2".to_owned()),
        "{reply}"
    );
}

#[test]
fn a_client_that_closes_stdin_mid_run_leaves_no_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = pid_file(&dir);
    let mut server = Server::start_with(TempLibrary::new(), &[WATCHABLE]);
    server.run_code(1, &spin_with_pids(&file));
    let pids = wait_for_pids(&file);
    let started = Instant::now();
    server.close_stdin();
    assert_eq!(server.wait_exit(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the server exits promptly, not after the run's timeout: {:?}",
        started.elapsed()
    );
    assert_gone(&pids);
}

#[test]
fn out_of_range_numbers_are_invalid_params() {
    let mut server = Server::start();
    let calls = [
        (
            "run_code",
            json!({"code": "1", "timeout": 1e20}),
            "`timeout` must be",
        ),
        (
            "run_code",
            json!({"code": "1", "timeout": 0}),
            "`timeout` must be",
        ),
        (
            "run_code",
            json!({"code": "1", "timeout": -1}),
            "`timeout` must be",
        ),
        (
            "search_tools",
            json!({"query": "x", "limit": 0}),
            "`limit` must be between 1 and 1000",
        ),
        (
            "search_skills",
            json!({"query": "x", "limit": 5000}),
            "`limit` must be between 1 and 1000",
        ),
    ];
    for (id, (tool, arguments, message)) in (1..).zip(calls) {
        server.send_json(&json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }));
        let reply = server.reply();
        assert_eq!(
            (&reply["id"], &reply["error"]["code"]),
            (&json!(id), &json!(-32602)),
            "{reply}"
        );
        let got = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(got.contains(message), "{tool} {arguments}: {got}");
    }
    server.run_code(99, "6 * 7");
    assert_eq!(text_of(&server.reply()), "42");
}
