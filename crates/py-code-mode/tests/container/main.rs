//! The container executor against a real engine (Docker): the executor suites
//! of `tests/it` run again on it, then the isolation it promises.
//!
//! Needs a daemon (`DOCKER_HOST`) and the worker image: `scripts/test` starts
//! a private daemon (`scripts/dockerd`) and builds the image
//! (`scripts/build-test-image`). Without them these tests fail with the
//! executor's own error, naming what is missing; they never skip.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

#[path = "../it/library.rs"]
mod library;
#[path = "../it/session.rs"]
mod session;
#[path = "../it/tools.rs"]
mod tools;

mod isolation;
mod mcp;
mod podman;

use std::sync::Arc;
use std::time::Duration;

use py_code_mode::{ContainerConfig, ContainerMount, ExecutionResult, FileStorage, Session};
use py_code_mode_test_support::TempLibrary;

/// The image under test: `PY_CODE_MODE_TEST_IMAGE`, else the README's.
fn image() -> String {
    std::env::var("PY_CODE_MODE_TEST_IMAGE").unwrap_or_else(|_| "py-code-mode:latest".into())
}

/// A small pool: nextest runs each test in a process of its own, each with
/// its own pool.
fn config() -> ContainerConfig {
    ContainerConfig {
        pool_size: 1,
        ..ContainerConfig::new(image())
    }
}

async fn session_with(library: &TempLibrary, config: ContainerConfig) -> Session {
    let storage = Arc::new(FileStorage::open(library.path()).expect("open storage"));
    Session::builder(storage)
        .executor(config)
        .timeout(Duration::from_secs(20))
        .build()
        .await
        .expect("build session")
}

/// A session over `library` with a container worker. The library folder is
/// mounted at its own path (and opened to the worker's uid), so the suites of
/// `tests/it` that check for marker files agent code writes there (a child
/// that outlived a timeout, a skill run at import) observe the container.
async fn session(library: &TempLibrary) -> Session {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(library.path(), std::fs::Permissions::from_mode(0o777))
        .expect("open the library to the worker");
    let mount = ContainerMount {
        source: library.path().to_owned(),
        target: library.path().to_string_lossy().into_owned(),
        read_only: false,
    };
    session_with(
        library,
        ContainerConfig {
            mounts: vec![mount],
            ..config()
        },
    )
    .await
}

/// Runs code and fails the test with the agent-visible text if it raised.
async fn ok(session: &Session, code: &str) -> ExecutionResult {
    let result = session.run(code).await.expect("executor failed");
    assert!(
        result.is_ok(),
        "code failed:\n{code}\n---\n{}",
        result.to_text()
    );
    result
}
