//! Integration tests of the core against a real Python worker and real files.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

mod boundary;
mod deps;
mod functions;
mod library;
mod pool;
mod sandbox;
mod search;
mod search_set;
mod session;
mod skill_history;
mod storage_boundary;
mod tools;

use std::sync::Arc;
use std::time::Duration;

use py_code_mode::{ExecutionResult, FileStorage, Session, SubprocessConfig};
use py_code_mode_test_support::{TempLibrary, python};

/// A session over `library` with a subprocess worker on the test interpreter
/// (a sandboxed one with `PY_CODE_MODE_TEST_EXECUTOR=sandbox`, run by hand:
/// the `session` tests pass on both; six `boundary`, `library` and
/// `storage_boundary` tests take pids or paths from agent code, which the
/// sandbox's namespaces renumber or hide, and are for the subprocess worker).
async fn session(library: &TempLibrary) -> Session {
    let storage = Arc::new(FileStorage::open(library.path()).expect("open storage"));
    let builder = Session::builder(storage);
    let builder = if std::env::var("PY_CODE_MODE_TEST_EXECUTOR").as_deref() == Ok("sandbox") {
        builder.executor(sandbox::sandbox_config())
    } else {
        builder.executor(SubprocessConfig {
            python: python(),
            ..SubprocessConfig::default()
        })
    };
    builder
        .timeout(Duration::from_secs(20))
        .build()
        .await
        .expect("build session")
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
