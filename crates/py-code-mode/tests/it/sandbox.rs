//! The escape suite: each attack is Python that returns `True` when it got
//! out. Under the sandbox every one must fail, and the next run of the same
//! session must still work. The companion test runs the same attacks under
//! the subprocess executor, which does not stop them: that they succeed there
//! proves each attack would work without the sandbox (the tests run as root,
//! so a file permission never explains a failure: planted files are 0644,
//! folders 0777).

use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use py_code_mode::sandbox::{Launcher, LayersOff};
use py_code_mode::{ExecutorFactory, FileStorage, SandboxConfig, Session, SubprocessConfig};
use py_code_mode_test_support::{TempLibrary, binary, python};

/// The limits the suite's sandbox runs under: small, so the bombs are quick.
const MEMORY: u64 = 256 << 20;
const PIDS: u64 = 64;
const CPUS: f64 = 0.1;
const SCRATCH: u64 = 64 << 20;

/// The sandbox config of the suite: the built binary as the launcher.
pub fn sandbox_config() -> SandboxConfig {
    SandboxConfig {
        python: python(),
        launcher: Some(Launcher {
            program: binary(),
            args: Vec::new(),
        }),
        ..SandboxConfig::default()
    }
}

/// What the attacks aim at: the test's own process, a secret in the home,
/// the library, a folder outside the scratch, a TCP server, a sibling process.
struct Targets {
    library: TempLibrary,
    secret: PathBuf,
    outside: tempfile::TempDir,
    listener: TcpListener,
    /// A process the host started, as it starts tools: without capabilities.
    sibling: (tokio::process::Child, py_code_mode::ProcessTree),
}

impl Targets {
    fn new() -> Self {
        // One secret per suite run: the suites run in parallel in one process.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let library = TempLibrary::new().with_tool("t.yaml", "name: t\ntype: cli\ncommand: echo\n");
        let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let secret = home.join(format!(
            ".py-code-mode-escape-test-{}-{n}",
            std::process::id()
        ));
        let mut file = std::fs::File::create(&secret).expect("plant the secret");
        file.write_all(b"TOP-SECRET").expect("write the secret");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644))
            .expect("chmod the secret");
        let outside = tempfile::tempdir().expect("a folder outside the scratch");
        std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod the folder");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a TCP server");
        let sibling = py_code_mode::Spawn::new("sleep")
            .arg("300")
            .drop_capabilities()
            .spawn()
            .expect("start a sibling process");
        Self {
            library,
            secret,
            outside,
            listener,
            sibling,
        }
    }

    /// The attacks, by name, each Python code whose value is `True` when it
    /// escaped.
    #[expect(clippy::too_many_lines, reason = "one list of attacks reads best")]
    fn attacks(&self) -> Vec<(&'static str, String)> {
        let host = std::process::id();
        let secret = self.secret.display();
        let library = self.library.path().display();
        let outside = self.outside.path().display();
        let port = self.listener.local_addr().expect("port").port();
        let sibling = self.sibling.0.id().expect("the sibling's pid");
        vec![
            ("read the host's environ", format!("
try:
    open('/proc/{host}/environ', 'rb').read(); ok = True
except OSError:
    ok = False
ok")),
            ("see the host process", format!("
import os
os.path.exists('/proc/{host}/cmdline') and b'it' in open('/proc/{host}/cmdline', 'rb').read()")),
            ("read a secret in the home", format!("
try:
    ok = open('{secret}').read() == 'TOP-SECRET'
except OSError:
    ok = False
ok")),
            ("list the library", format!("
import os
try:
    ok = 'tools' in os.listdir('{library}')
except OSError:
    ok = False
ok")),
            ("write outside the scratch folder", format!("
try:
    open('{outside}/pwned', 'w').write('x'); ok = True
except OSError:
    ok = False
ok")),
            ("write into the library's tools", format!("
try:
    open('{library}/tools/evil.yaml', 'w').write('name: evil'); ok = True
except OSError:
    ok = False
ok")),
            ("connect to a TCP server on 127.0.0.1", format!("
import socket
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=2).close(); ok = True
except OSError:
    ok = False
ok")),
            ("signal the host", format!("
import os
try:
    os.kill({host}, 0); ok = True
except OSError:
    ok = False
ok")),
            ("ptrace a process of the host", format!("
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
attached = libc.ptrace(PTRACE_ATTACH, {sibling}, None, None) == 0
if attached:
    time.sleep(0.1)
    libc.ptrace(PTRACE_DETACH, {sibling}, None, None)
attached")),
            ("unshare a user namespace", CHILD_SYSCALL.replace("STEP", "unshare(0x10000000) == 0")),
            ("mount a filesystem", CHILD_SYSCALL.replace(
                "STEP",
                "unshare(0x10000000 | 0x00020000) == 0 and mount(b'none', b'/mnt', b'tmpfs', 0, None) == 0",
            )),
            ("a seccomp-denied call through ctypes (keyctl)", "
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
SYS_keyctl = {'x86_64': 250, 'aarch64': 219}[os.uname().machine]
KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING = 0, -2
libc.syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1) > 0".to_owned()),
            ("fork bomb", format!("
import os, signal
children = []
try:
    for _ in range({bomb}):
        pid = os.fork()
        if pid == 0:
            signal.pause()
            os._exit(0)
        children.append(pid)
except OSError:
    pass
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
len(children) >= {bomb}", bomb = PIDS * 4)),
            ("memory bomb", format!("
block = bytearray({bytes})
len(block) == {bytes}", bytes = MEMORY * 2)),
            ("fill the disk", format!("
import os
chunk, written = b'x' * (1 << 20), 0
try:
    with open('fill', 'wb') as f:
        while written < {bytes}:
            f.write(chunk); written += len(chunk)
        f.flush()
except OSError:
    pass
finally:
    os.remove('fill') if os.path.exists('fill') else None
written >= {bytes}", bytes = SCRATCH * 2)),
            ("spin past the CPU limit", format!("
import os, time
start, pids = time.monotonic(), []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            pass
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
wall, used = time.monotonic() - start, os.times().children_user + os.times().children_system
used / wall > {CPUS} * 2.5")),
        ]
    }
}

/// Runs `STEP` in a fresh single-threaded interpreter (the worker has
/// threads, and `unshare(CLONE_NEWUSER)` wants a single-threaded caller);
/// its exit code says whether it worked.
const CHILD_SYSCALL: &str = "
import subprocess, sys
child = '''
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
unshare, mount = libc.unshare, libc.mount
sys.exit(0 if (STEP) else 1)
'''
subprocess.run([sys.executable, '-I', '-c', child]).returncode == 0";

impl Drop for Targets {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.secret);
        self.sibling.1.kill();
    }
}

async fn session_over(library: &Path, executor: impl ExecutorFactory + 'static) -> Session {
    let storage = Arc::new(FileStorage::open(library).expect("open storage"));
    Session::builder(storage)
        .executor(executor)
        .timeout(Duration::from_mins(1))
        .build()
        .await
        .expect("build session")
}

/// Runs every attack; returns the names of those that escaped, and fails
/// if a run after an attack does not work.
async fn escapes(session: &Session, targets: &Targets) -> Vec<&'static str> {
    let mut escaped = Vec::new();
    for (name, code) in targets.attacks() {
        let result = session.run(&code).await.expect("the executor failed");
        if result.value == Some(serde_json::Value::Bool(true)) {
            escaped.push(name);
        }
        let after = session.run("1+1").await.expect("the executor failed");
        assert_eq!(
            after.value,
            Some(serde_json::json!(2)),
            "the run after `{name}` failed: {}",
            after.to_text()
        );
    }
    escaped
}

#[tokio::test]
async fn the_sandbox_stops_every_escape_and_the_session_goes_on() {
    let targets = Targets::new();
    let session = session_over(
        targets.library.path(),
        SandboxConfig {
            memory: MEMORY,
            pids_limit: PIDS,
            cpus: CPUS,
            scratch_size: SCRATCH,
            ..sandbox_config()
        },
    )
    .await;
    let escaped = escapes(&session, &targets).await;
    session.close().await;
    assert!(escaped.is_empty(), "escaped the sandbox: {escaped:?}");
    assert!(!targets.library.path().join("tools/evil.yaml").exists());
    assert!(!targets.outside.path().join("pwned").exists());
}

#[tokio::test]
async fn the_subprocess_executor_does_not_stop_these_attacks() {
    let targets = Targets::new();
    let session = session_over(
        targets.library.path(),
        SubprocessConfig {
            python: python(),
            ..SubprocessConfig::default()
        },
    )
    .await;
    let escaped = escapes(&session, &targets).await;
    session.close().await;
    let stopped: Vec<&str> = targets
        .attacks()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !escaped.contains(name))
        .collect();
    // The subprocess executor drops capabilities and makes the host
    // non-dumpable: the host's environ is closed to it. Nothing else is.
    assert_eq!(stopped, ["read the host's environ"]);
}

/// The suite under the sandbox with `off` switched off; the attacks that escaped.
async fn escapes_without(off: LayersOff) -> Vec<&'static str> {
    let targets = Targets::new();
    let session = session_over(
        targets.library.path(),
        SandboxConfig {
            memory: MEMORY,
            pids_limit: PIDS,
            cpus: CPUS,
            scratch_size: SCRATCH,
            layers_off: off,
            ..sandbox_config()
        },
    )
    .await;
    let escaped = escapes(&session, &targets).await;
    session.close().await;
    escaped
}

/// Landlock alone, as where namespaces are blocked (AppArmor): the file,
/// TCP, signal and ptrace attacks still fail. What gets out is what only
/// seccomp stops (a new user namespace, `keyctl`) and the disk: without a
/// `/tmp` of its own the scratch folder is the host's disk, bounded per
/// file only (`file_size`).
#[tokio::test]
async fn landlock_alone_stops_the_file_network_and_signal_escapes() {
    let escaped = escapes_without(LayersOff {
        namespaces: true,
        seccomp: true,
        ..LayersOff::default()
    })
    .await;
    assert_eq!(
        escaped,
        [
            "unshare a user namespace",
            "a seccomp-denied call through ctypes (keyctl)",
            "fill the disk"
        ]
    );
}

/// seccomp alone (namespaces and Landlock switched off, a diagnostic only):
/// the TCP, ptrace, namespace, mount and `keyctl` attacks fail; the file
/// and signal attacks, which the Landlock-only test sees stopped, get out:
/// that is the proof they are real.
#[tokio::test]
async fn seccomp_alone_stops_sockets_and_syscalls_but_not_the_file_escapes() {
    let escaped = escapes_without(LayersOff {
        namespaces: true,
        landlock: true,
        ..LayersOff::default()
    })
    .await;
    assert_eq!(
        escaped,
        [
            "see the host process",
            "read a secret in the home",
            "list the library",
            "write outside the scratch folder",
            "write into the library's tools",
            "signal the host",
            "fill the disk"
        ]
    );
}

#[tokio::test]
async fn going_over_the_memory_limit_is_reported_as_out_of_memory() {
    let library = TempLibrary::new();
    let session = session_over(
        library.path(),
        SandboxConfig {
            memory: MEMORY,
            ..sandbox_config()
        },
    )
    .await;
    let result = session
        .run(&format!("x = 1\nblock = bytearray({})", MEMORY * 2))
        .await
        .expect("run");
    let error = result.error.expect("the bomb must not succeed");
    assert!(
        error.message.starts_with("out of memory"),
        "{}",
        error.message
    );
    assert!(result.state_reset);
    let after = session.run("1+1").await.expect("run");
    assert_eq!(after.value, Some(serde_json::json!(2)));
    session.close().await;
}

/// The process limit: the start past it fails in the cell (`EAGAIN`, as
/// `BlockingIOError`); the run then fails saying which limit it went over
/// (even had the code caught the error), and the worker, whose processes
/// hold the limit, is replaced: the next run has the whole limit free.
/// The CPU limit throttles (the escape suite's spin): a run that spins
/// anyway ends at its timeout, with a fresh worker for the next run.
#[tokio::test]
async fn going_over_the_process_or_cpu_limit_ends_the_run_and_the_session_goes_on() {
    let library = TempLibrary::new();
    let session = session_over(
        library.path(),
        SandboxConfig {
            pids_limit: PIDS,
            cpus: CPUS,
            ..sandbox_config()
        },
    )
    .await;
    let bomb = |caught: bool| {
        let start = format!(
            "procs = [subprocess.Popen(['sleep', '120']) for _ in range({})]",
            PIDS * 2
        );
        let start = if caught {
            format!("try:\n    {start}\nexcept OSError:\n    pass\n'caught'")
        } else {
            start
        };
        format!("import subprocess\nkept = 1\n{start}")
    };
    for caught in [false, true] {
        let result = session.run(&bomb(caught)).await.expect("run");
        let error = result.error.expect("the process bomb must not succeed");
        assert_eq!(error.kind, "ResourceLimitError", "{}", error.message);
        assert!(
            error
                .message
                .contains(&format!("`pids_limit` of {PIDS} processes")),
            "{}",
            error.message
        );
        if !caught {
            assert!(
                error.message.contains("BlockingIOError"),
                "{}",
                error.message
            );
        }
        assert!(result.state_reset);
        let fresh = session
            .run("import subprocess\n'kept' in globals(), subprocess.run(['true']).returncode")
            .await
            .expect("run");
        assert_eq!(
            fresh.value,
            Some(serde_json::json!([false, 0])),
            "{}",
            fresh.to_text()
        );
    }

    let spin = session
        .run_with_timeout("kept = 1\nwhile True: pass", Some(Duration::from_secs(2)))
        .await
        .expect("run");
    let error = spin.error.expect("the spin must be stopped");
    assert_eq!(error.kind, "TimeoutError", "{}", error.message);
    assert!(spin.state_reset);
    let after = session
        .run("'kept' in globals(), 1 + 1")
        .await
        .expect("run");
    assert_eq!(
        after.value,
        Some(serde_json::json!([false, 2])),
        "{}",
        after.to_text()
    );
    session.close().await;
}

#[tokio::test]
async fn agent_code_keeps_imports_await_files_subprocess_and_tools() {
    let library = TempLibrary::new().with_tool(
        "greet.yaml",
        "name: greet\ntype: cli\ncommand: echo\nargs: \"hello {name}\"\ndescription: say hello\n",
    );
    let session = session_over(library.path(), sandbox_config()).await;
    let result = session
        .run(
            "import json, sqlite3, asyncio, subprocess, os
await asyncio.sleep(0)
open('notes.txt', 'w').write('kept')
out = subprocess.run(['echo', 'inside'], capture_output=True, text=True).stdout.strip()
[open('notes.txt').read(), out, os.getcwd(), tools.greet(name='sandbox').strip()]",
        )
        .await
        .expect("run");
    assert_eq!(
        result.value,
        Some(serde_json::json!([
            "kept",
            "inside",
            "/tmp",
            "hello sandbox"
        ])),
        "{}",
        result.to_text()
    );
    session.close().await;
}

#[tokio::test]
async fn a_folder_given_read_only_is_readable_and_not_writable() {
    let project = tempfile::tempdir().expect("project");
    std::fs::write(project.path().join("README"), "project").expect("write");
    std::fs::set_permissions(project.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    let library = TempLibrary::new();
    let session = session_over(
        library.path(),
        SandboxConfig {
            read_only_paths: vec![project.path().to_owned()],
            ..sandbox_config()
        },
    )
    .await;
    let dir = project.path().display();
    let result = session
        .run(&format!(
            "
text = open('{dir}/README').read()
try:
    open('{dir}/new', 'w'); wrote = True
except OSError:
    wrote = False
[text, wrote]"
        ))
        .await
        .expect("run");
    assert_eq!(result.value, Some(serde_json::json!(["project", false])));
    assert!(!project.path().join("new").exists());
    session.close().await;
}

/// Ctrl-C in a sandboxed cell: `KeyboardInterrupt` in the cell, the worker
/// and its variables kept (the launcher and init pass `SIGINT` over).
#[tokio::test]
async fn an_interrupt_stops_the_cell_and_keeps_the_variables() {
    let library = TempLibrary::new();
    let started = library.path().join("started");
    // A tool runs on the host, so it can say from outside that the cell began.
    let library = library.with_tool(
        "mark.yaml",
        &format!(
            "name: mark\ntype: cli\ncommand: touch\nargs: ['{}']\n",
            started.display()
        ),
    );
    let session = Arc::new(session_over(library.path(), sandbox_config()).await);
    let pid = session
        .run("kept = 'yes'\nimport os\nos.getppid(), os.getpid()")
        .await
        .expect("run")
        .repr;
    let running = tokio::spawn({
        let session = Arc::clone(&session);
        async move { session.run("tools.mark()\nwhile True: pass").await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the cell never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(session.interrupt());
    let result = running.await.expect("join").expect("run");
    let error = result.error.expect("an error");
    assert_eq!(error.kind, "KeyboardInterrupt", "{}", error.traceback);
    assert!(!result.state_reset);
    let after = session
        .run("import os\nkept, (os.getppid(), os.getpid())")
        .await
        .expect("run");
    assert_eq!(
        after.repr,
        pid.map(|p| format!("('yes', {p})")),
        "the same worker with its variables"
    );
    session.close().await;
}
