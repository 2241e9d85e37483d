//! `deps` through the host, without the package index: what is refused, what
//! is recorded, and where (issue 12). Installs from the index are tested in
//! tests/python/test_deps.py.

use std::sync::Arc;

use pretty_assertions::assert_eq;
use py_code_mode::deps::{DepsConfig, DepsManager, DepsTarget};
use py_code_mode::{Capability, FileStorage, Session, Storage, SubprocessConfig};
use py_code_mode_test_support::{TempLibrary, python};
use serde_json::json;

async fn session_with(library: &TempLibrary, deps: Option<DepsConfig>) -> Session {
    let storage = Arc::new(FileStorage::open(library.path()).expect("open storage"));
    let mut builder = Session::builder(storage).executor(SubprocessConfig {
        python: python(),
        ..SubprocessConfig::default()
    });
    if let Some(deps) = deps {
        builder = builder.deps(deps);
    }
    builder.build().await.expect("session")
}

#[tokio::test]
async fn agent_code_gets_clear_errors_and_nothing_is_recorded() {
    let library = TempLibrary::new();
    let session = session_with(&library, Some(DepsConfig::default())).await;
    let refused = session
        .run("deps.add('--index-url=http://127.0.0.1:9/simple')")
        .await
        .expect("run");
    let error = refused.error.expect("refused");
    assert_eq!(error.kind, "ValueError");
    assert!(
        error.message.starts_with("deps.add: `--index-url"),
        "{}",
        error.message
    );
    let removed = session.run("deps.remove('six')").await.expect("run");
    assert_eq!(
        removed.value,
        Some(
            json!({"removed": [], "not_found": ["six"], "failed": [], "removed_from_config": false})
        )
    );
    assert_eq!(
        session.run("deps.list()").await.expect("run").value,
        Some(json!([]))
    );
    assert!(
        !library.path().join("deps").exists(),
        "a refused spec wrote the list"
    );
    assert!(session.supports(Capability::DepsInstall));
    session.close().await;
}

#[tokio::test]
async fn lockdown_is_enforced_by_the_host_and_no_deps_means_no_installs() {
    let library = TempLibrary::new();
    let locked = DepsConfig {
        allow_runtime: false,
        ..DepsConfig::default()
    };
    let session = session_with(&library, Some(locked)).await;
    let refused = session.run("deps.add('six')").await.expect("run");
    let error = refused.error.expect("refused");
    assert_eq!(error.kind, "RuntimeError");
    assert!(error.message.contains("disabled"), "{}", error.message);
    assert_eq!(
        session.run("deps.list()").await.expect("run").value,
        Some(json!([]))
    );
    session.close().await;

    // A session built without `deps` has none, and says so.
    let session = session_with(&library, None).await;
    assert!(!session.supports(Capability::DepsInstall));
    let refused = session.run("deps.list()").await.expect("run");
    assert_eq!(refused.error.expect("refused").kind, "RuntimeError");
    session.close().await;
}

#[tokio::test]
async fn the_list_lives_in_the_storage_and_preconfigured_specs_are_recorded() {
    let library = TempLibrary::new();
    let storage: Arc<dyn Storage> = Arc::new(FileStorage::open(library.path()).expect("open"));
    let config = DepsConfig {
        preconfigured: vec!["Six >= 1.0".into(), "requests[socks]".into()],
        sync_on_start: false,
        ..DepsConfig::default()
    };
    let python = python().expect("a test interpreter");
    let (deps, worker) = DepsManager::prepare(
        config,
        Arc::clone(&storage),
        DepsTarget::Interpreter(python),
    )
    .await
    .expect("prepare");
    assert_eq!(worker, None);
    assert_eq!(
        deps.list().await.expect("list"),
        vec!["Six>=1.0", "requests[socks]"]
    );
    assert_eq!(
        std::fs::read_to_string(library.path().join("deps/requirements.txt")).expect("file"),
        "Six>=1.0\nrequests[socks]\n"
    );
    // Forgetting goes by canonical name, and never uninstalls from an
    // environment py-code-mode does not own.
    let report = deps.remove(&["six".into()]).await.expect("remove");
    assert!(report.removed_from_config && report.failed.is_empty());
    assert_eq!(deps.list().await.expect("list"), vec!["requests[socks]"]);
    // A hand-edited line that is not a valid spec is skipped, never installed.
    storage
        .deps_put("requests[socks]\n--index-url=http://127.0.0.1:9\n# a comment\n")
        .await
        .expect("put");
    assert_eq!(deps.list().await.expect("list"), vec!["requests[socks]"]);
}

#[tokio::test]
async fn opening_a_library_makes_no_folder_and_a_session_makes_the_layout() {
    let library = TempLibrary::new();
    let base = library.path().join("fresh");
    let storage = Arc::new(FileStorage::open(&base).expect("open"));
    assert!(!base.exists(), "opening made folders");
    let session = Session::builder(storage)
        .executor(SubprocessConfig {
            python: python(),
            ..SubprocessConfig::default()
        })
        .build()
        .await
        .expect("session");
    let mut made: Vec<String> = std::fs::read_dir(&base)
        .expect("base")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(made, ["artifacts", "skills", "tools"]);
    session.close().await;
}

#[tokio::test]
async fn one_call_takes_a_bounded_number_of_specs() {
    let library = TempLibrary::new();
    let session = session_with(&library, Some(DepsConfig::default())).await;
    let result = session
        .run("deps.add(*[f'pkg{i}' for i in range(51)])")
        .await
        .expect("run");
    let error = result.error.expect("refused");
    assert_eq!(error.kind, "ValueError");
    assert!(
        error.message.contains("`MAX_SPECS_PER_CALL`"),
        "{}",
        error.message
    );
    session.close().await;
}
