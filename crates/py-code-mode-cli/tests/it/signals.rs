//! Signals to the real binary while agent code spins: the CLI stops the run,
//! leaves no process behind (checked by pid) and exits `128 + signal`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pretty_assertions::assert_eq;
use py_code_mode_test_support::{TempLibrary, binary, python};

use crate::stdio::{
    Server, WATCHABLE, assert_gone, pid_file, spin_with_pids, text_of, wait_for_pids,
};

fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(i32::try_from(pid).expect("pid")), signal).expect("signal the CLI");
}

/// Ctrl-C (SIGINT to the process) on `run -c 'while True: pass'`.
#[test]
fn ctrl_c_on_run_exits_130_and_leaves_no_worker() {
    let library = TempLibrary::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = pid_file(&dir);
    let mut command = Command::new(binary());
    command
        .env(WATCHABLE.0, WATCHABLE.1)
        .arg("--base")
        .arg(library.path())
        .args(["--no-semantic", "run", "-c", &spin_with_pids(&file)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(p) = python() {
        command.env("PY_CODE_MODE_PYTHON", p);
    }
    let mut child = command.spawn().expect("run py-code-mode");
    let pids = wait_for_pids(&file);
    signal(child.id(), Signal::SIGINT);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("`run` ignored SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    assert_gone(&pids);
}

/// SIGTERM to the MCP server while a run spins closes the session: the
/// worker, what it started and the MCP tool servers all end.
#[test]
fn sigterm_to_the_server_mid_run_exits_143_and_leaves_no_process() {
    let python = python().expect("PY_CODE_MODE_PYTHON names the test venv's python (scripts/test)");
    let test_server =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/servers/mcp_test_server.py");
    let library = TempLibrary::new().with_tool(
        "test.yaml",
        &format!(
            "name: test\ntype: mcp\ntransport: stdio\ncommand: {:?}\nargs: [{:?}, stdio]\ndescription: test server\n",
            python.display().to_string(),
            test_server.display().to_string()
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = pid_file(&dir);
    let mut server = Server::start_with(library, &[WATCHABLE]);
    server.run_code(1, "tools.test.server_pid()");
    let reply = server.reply();
    let tool_server: i32 = text_of(&reply)
        .trim_matches('\'')
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {reply}"));
    server.run_code(2, &spin_with_pids(&file));
    let pids = wait_for_pids(&file);
    signal(server.pid(), Signal::SIGTERM);
    assert_eq!(server.wait_exit(), Some(143));
    assert_gone(&[pids[0], pids[1], tool_server]);
}

/// Agent code of the same user cannot read the host's environment through
/// `/proc/<host>/environ`: the command makes itself non-dumpable. Both run as
/// `nobody` (root would pass the check with `CAP_SYS_PTRACE` whatever the
/// flag); the old binary answered `True` here.
#[test]
fn the_hosts_environment_is_closed_to_agent_code_of_the_same_user() {
    use std::os::unix::fs::PermissionsExt as _;
    let library = TempLibrary::new();
    std::fs::set_permissions(library.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(binary())
        .arg("--base")
        .arg(library.path())
        .args([
            "--no-semantic",
            "run",
            "-c",
            "import os\n\
             try:\n    leaked = b'HOST_SECRET' in open(f'/proc/{os.getppid()}/environ', 'rb').read()\n\
             except PermissionError:\n    leaked = 'denied'\n\
             leaked",
        ])
        .env("HOST_SECRET", "hunter2")
        .env("HOME", library.path())
        .current_dir(library.path())
        .stdin(Stdio::null())
        // `python3` on PATH: the test venv's interpreter may live where
        // `nobody` cannot reach.
        .env_remove("PY_CODE_MODE_PYTHON");
    let out = command.output().expect("run py-code-mode as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        (out.status.code(), stdout.trim()),
        (Some(0), "'denied'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
