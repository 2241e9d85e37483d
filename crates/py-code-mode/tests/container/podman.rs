//! The same worker and isolation through Podman (no daemon), with the
//! flags it needs here (`--ulimit`, `U` for the scratch tmpfs).

use std::process::Command;
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use py_code_mode::{ContainerConfig, ContainerEngine};
use py_code_mode_test_support::TempLibrary;
use serde_json::json;

use crate::{config, ok, session_with};

fn podman_config() -> ContainerConfig {
    ContainerConfig {
        engine: Some(ContainerEngine::Podman),
        pool_size: 0,
        ..config()
    }
}

/// Whether Podman knows a container whose id starts with `id`.
fn exists(id: &str) -> bool {
    let output = Command::new("podman")
        .args(["ps", "-aq", "--no-trunc"])
        .output()
        .expect("run podman");
    assert!(output.status.success(), "podman ps failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .any(|line| line.starts_with(id))
}

async fn assert_gone(id: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while exists(id) {
        assert!(Instant::now() < deadline, "container {id} outlived {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn podman_runs_the_worker_isolated_and_removes_its_containers() {
    let library = TempLibrary::new();
    let session = session_with(&library, podman_config()).await;
    let result = ok(
        &session,
        r"import errno, os, socket
def write(path):
    try:
        open(path, 'w').write('x')
        return 'written'
    except OSError as e:
        return errno.errorcode[e.errno]
caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')][0]
[os.getuid(), caps, write('/etc/pcm'), write('/workspace/ok'), write('/tmp/ok'),
 [n for _, n in socket.if_nameindex()], socket.gethostname()]",
    )
    .await;
    let value = result.value.expect("a value");
    let items = value.as_array().expect("a list");
    assert_eq!(
        items[..6],
        [
            json!(10001),
            json!("0000000000000000"),
            json!("EROFS"),
            json!("written"),
            json!("written"),
            json!(["lo"]),
        ]
    );
    let first = value[6].as_str().expect("hostname").to_owned();
    assert!(exists(&first), "{first} is not a Podman container");

    let result = session
        .run_with_timeout(
            "import time\ntime.sleep(60)",
            Some(Duration::from_millis(500)),
        )
        .await
        .expect("run");
    assert_eq!(
        result.error.map(|e| e.kind).as_deref(),
        Some("TimeoutError")
    );
    assert_gone(&first, "its timeout").await;
    let second = ok(&session, "import socket\nsocket.gethostname()")
        .await
        .value
        .expect("hostname");
    let second = second.as_str().expect("a string").to_owned();
    session.close().await;
    assert_gone(&second, "`close()`").await;
}

#[tokio::test]
async fn podman_enforces_the_memory_and_pids_limits() {
    let began = std::time::SystemTime::now();
    let library = TempLibrary::new();
    let session = session_with(
        &library,
        ContainerConfig {
            memory: 64 << 20,
            pids_limit: 32,
            ..podman_config()
        },
    )
    .await;
    let result = ok(
        &session,
        r"import os, signal, time
kids = []
for _ in range(200):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
len(kids)",
    )
    .await;
    let started = result.value.and_then(|v| v.as_u64()).expect("a count");
    assert!(started < 32, "{started} processes under a limit of 32");
    let result = session
        .run("data = b'x' * (256 << 20)\nlen(data)")
        .await
        .expect("run");
    let error = result.error.expect("an OOM error");
    assert_eq!(error.kind, "WorkerCrashed", "{}", error.message);
    assert!(error.message.contains("64m"), "{}", error.message);
    assert_eq!(ok(&session, "1 + 1").await.value, Some(json!(2)));
    session.close().await;
    // Podman's conmon writes a file `oom` where the engine runs: never in
    // the application's working directory.
    let stray = std::env::current_dir().expect("cwd").join("oom");
    let left = std::fs::metadata(&stray)
        .and_then(|m| m.modified())
        .is_ok_and(|at| at >= began);
    assert!(!left, "{} was left behind", stray.display());
}
