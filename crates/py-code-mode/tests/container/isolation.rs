//! What the container promises: limits, no network, a read-only root, a
//! non-root user, and no container outliving its worker or its host.

use std::process::Command;
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use py_code_mode::{ContainerConfig, ExecutorError};
use py_code_mode_test_support::{TempLibrary, binary};
use serde_json::json;

use crate::{config, image, ok, session, session_with};

/// The "gone within 15 s" the executor promises.
const GONE_WITHIN: Duration = Duration::from_secs(15);

/// Runs the docker CLI (the test's own view, not the executor's).
fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Every container (running or not) whose id starts with `id`.
fn exists(id: &str) -> bool {
    docker(&["ps", "-aq", "--no-trunc"])
        .lines()
        .any(|line| line.starts_with(id))
}

/// Polls until the container is gone; fails after [`GONE_WITHIN`].
async fn assert_gone(id: &str, what: &str) {
    let deadline = Instant::now() + GONE_WITHIN;
    while exists(id) {
        assert!(Instant::now() < deadline, "container {id} outlived {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The container the session's worker runs in: Docker names the host after
/// the container id.
async fn container_id(session: &py_code_mode::Session) -> String {
    let value = ok(session, "import socket\nsocket.gethostname()")
        .await
        .value
        .expect("a hostname");
    let id = value.as_str().expect("a string").to_owned();
    assert!(exists(&id), "{id} is not a container");
    id
}

#[tokio::test]
async fn the_worker_is_not_root_has_no_capabilities_and_the_root_is_read_only() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = ok(
        &session,
        r"import errno, os
caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')][0]
def write(path):
    try:
        with open(path, 'w') as f:
            f.write('x')
        return 'written'
    except OSError as e:
        return errno.errorcode[e.errno]
[os.getuid(), os.getgid(), caps, os.getcwd(), write('/etc/pcm'), write('/usr/pcm'), write('/workspace/ok'), write('/tmp/ok')]",
    )
    .await;
    // EROFS, not EACCES: the root is read-only, not just owned by root.
    assert_eq!(
        result.value,
        Some(json!([
            10001,
            10001,
            "0000000000000000",
            "/workspace",
            "EROFS",
            "EROFS",
            "written",
            "written"
        ]))
    );
    session.close().await;
}

#[tokio::test]
async fn there_is_no_network_unless_allowed() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let id = container_id(&session).await;
    let result = ok(
        &session,
        "import socket\n[name for _, name in socket.if_nameindex()]",
    )
    .await;
    assert_eq!(result.value, Some(json!(["lo"])));
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", &id]),
        "none"
    );
    let result = session
        .run("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)")
        .await
        .expect("run");
    assert_eq!(result.error.map(|e| e.kind).as_deref(), Some("OSError"));
    session.close().await;

    let allowed = session_with(
        &library,
        ContainerConfig {
            network: true,
            pool_size: 0,
            ..config()
        },
    )
    .await;
    let id = container_id(&allowed).await;
    assert_ne!(
        docker(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", &id]),
        "none"
    );
    allowed.close().await;
}

#[tokio::test]
async fn a_memory_bomb_is_killed_and_reported_as_out_of_memory_with_the_limit() {
    let library = TempLibrary::new();
    let session = session_with(
        &library,
        ContainerConfig {
            memory: 64 << 20,
            pool_size: 0,
            ..config()
        },
    )
    .await;
    let id = container_id(&session).await;
    // 256 MiB, written (not lazily zeroed): fine on this machine without the limit.
    let result = session
        .run("data = b'x' * (256 << 20)\nlen(data)")
        .await
        .expect("run");
    let error = result.error.expect("an OOM error");
    assert_eq!(error.kind, "WorkerCrashed", "{}", error.message);
    assert!(error.message.contains("out of memory"), "{}", error.message);
    assert!(error.message.contains("64m"), "{}", error.message);
    assert!(result.state_reset);
    assert_gone(&id, "its OOM kill").await;
    assert_eq!(ok(&session, "1 + 1").await.value, Some(json!(2)));
    session.close().await;
}

#[tokio::test]
async fn a_fork_bomb_stops_at_the_pid_limit() {
    let library = TempLibrary::new();
    let session = session_with(
        &library,
        ContainerConfig {
            pids_limit: 32,
            pool_size: 0,
            ..config()
        },
    )
    .await;
    // 200 children that stay alive: all start without the limit.
    let result = ok(
        &session,
        r"import os, signal, time
kids = []
refused = None
for _ in range(200):
    try:
        pid = os.fork()
    except OSError as e:
        refused = type(e).__name__
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
[len(kids), refused]",
    )
    .await;
    let value = result.value.expect("a value");
    let started = value[0].as_u64().expect("a count");
    assert!(
        started < 32,
        "{started} processes started under a limit of 32"
    );
    assert_eq!(value[1], json!("BlockingIOError"));
    assert_eq!(ok(&session, "1 + 1").await.value, Some(json!(2)));
    session.close().await;
}

#[tokio::test]
async fn a_timeout_reset_and_close_remove_the_container() {
    let library = TempLibrary::new();
    let session = session_with(
        &library,
        ContainerConfig {
            pool_size: 0,
            ..config()
        },
    )
    .await;
    let first = container_id(&session).await;
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
    let second = container_id(&session).await;
    assert_ne!(first, second);
    session.reset().await.expect("reset");
    assert_gone(&second, "`reset`").await;
    let third = container_id(&session).await;
    session.close().await;
    assert_gone(&third, "`close()`").await;
}

#[tokio::test]
async fn a_missing_image_says_how_to_build_it() {
    let library = TempLibrary::new();
    let storage =
        std::sync::Arc::new(py_code_mode::FileStorage::open(library.path()).expect("open storage"));
    let session = py_code_mode::Session::builder(storage)
        .executor(ContainerConfig::new("py-code-mode-test:no-such-image"))
        .build()
        .await;
    let error = match session {
        Ok(session) => session.run("1").await.expect_err("no image"),
        Err(error) => error,
    };
    let py_code_mode::Error::Executor(ExecutorError::Container { message, hint, .. }) = &error
    else {
        panic!("not a container error: {error}");
    };
    assert!(
        message.contains("py-code-mode-test:no-such-image"),
        "{message}"
    );
    assert!(
        hint.as_deref()
            .is_some_and(|h| h.contains("build -f docker/Dockerfile.tools")),
        "{error}"
    );
}

#[tokio::test]
async fn containers_of_a_dead_host_are_swept_when_the_next_host_starts() {
    // A container labelled as a host that is gone: this boot, a pid that
    // existed (our own) but with another start time.
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let started: u64 = stat[stat.rfind(')').expect(")") + 1..]
        .split_whitespace()
        .nth(19)
        .expect("field")
        .parse()
        .expect("number");
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    let label = format!(
        "py-code-mode.session={}.{}.{}",
        boot.trim(),
        std::process::id(),
        started + 1
    );
    let name = format!("pcm-sweep-test-{}", std::process::id());
    let id = docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        "--label",
        &label,
        &image(),
        "sleep",
        "300",
    ]);
    // The next host: a CLI run (a process of its own, whose first pool sweeps).
    let library = TempLibrary::new();
    let output = Command::new(binary())
        .args(["--base"])
        .arg(library.path())
        .args([
            "run",
            "--executor",
            "container",
            "--image",
            &image(),
            "-c",
            "1 + 1",
        ])
        .output()
        .expect("run the CLI");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_gone(&id, "its dead host").await;
}

#[tokio::test]
async fn a_host_killed_with_sigkill_leaves_no_container() {
    let library = TempLibrary::new();
    let mut host = Command::new(binary())
        .args(["--base"])
        .arg(library.path())
        .args([
            "run",
            "--executor",
            "container",
            "--image",
            &image(),
            "-c",
            "import time\ntime.sleep(120)",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the CLI");
    let label = "label=py-code-mode.session".to_owned();
    let pid = host.id().to_string();
    // Its containers are named `pcm-<pid>-…`.
    let prefix = format!("pcm-{pid}-");
    let deadline = Instant::now() + Duration::from_mins(1);
    let mine = || {
        docker(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"])
            .lines()
            .filter(|n| n.starts_with(&prefix))
            .count()
    };
    while mine() == 0 {
        assert!(Instant::now() < deadline, "the CLI started no container");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    host.kill().expect("SIGKILL the host");
    host.wait().expect("reap the host");
    let deadline = Instant::now() + GONE_WITHIN;
    while mine() > 0 {
        assert!(
            Instant::now() < deadline,
            "containers outlived their SIGKILLed host"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The CLI's stderr for `run --executor container` with `env` set.
fn cli_error(env: &[(&str, &str)]) -> String {
    let library = TempLibrary::new();
    let output = Command::new(binary())
        .args(["--base"])
        .arg(library.path())
        .args(["run", "--executor", "container", "-c", "1"])
        .envs(env.iter().copied())
        .output()
        .expect("run the CLI");
    assert!(!output.status.success(), "the run succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_daemon_that_is_down_and_a_missing_engine_are_named_with_a_hint() {
    let down = cli_error(&[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
    assert!(
        down.contains("cannot reach the engine for image `py-code-mode:latest`"),
        "{down}"
    );
    assert!(down.contains("`docker image inspect"), "{down}");
    assert!(
        down.contains("hint: is the docker daemon running?"),
        "{down}"
    );
    let missing = cli_error(&[("PATH", "/nonexistent")]);
    assert!(
        missing.contains("no container engine: `docker` or `podman` not found on PATH"),
        "{missing}"
    );
    assert!(missing.contains("hint:"), "{missing}");
}
