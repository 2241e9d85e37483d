//! Function tools: Rust closures registered on the session, called from
//! agent code in a worker process, run on the host.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pretty_assertions::assert_eq;
use py_code_mode::{
    ExecutorFactory, FileStorage, FunctionTool, Session, SubprocessConfig, ToolError,
};
use py_code_mode_test_support::{TempLibrary, python};
use serde_json::{Value, json};

use crate::ok;

/// `add(a, b=1)` (async), `fail()` (blocking, always an error) and
/// `host_pid()`, which counts its calls.
fn functions(calls: &Arc<AtomicUsize>) -> Vec<FunctionTool> {
    let add = FunctionTool::new("add", |args| async move {
        let a = args
            .get("a")
            .and_then(Value::as_i64)
            .ok_or("`a` must be an integer")?;
        let b = args.get("b").and_then(Value::as_i64).unwrap_or(1);
        tokio::task::yield_now().await;
        Ok(json!(a + b))
    })
    .description("Add two integers: the sum of a and b")
    .param("a", "int", "the first addend")
    .optional("b", "int", json!(1), "the second addend");
    let fail = FunctionTool::blocking("fail", |_| Err("the disk is on fire".into()))
        .description("Always fails");
    let counter = Arc::clone(calls);
    let host_pid = FunctionTool::blocking("host_pid", move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(json!(std::process::id()))
    })
    .description("The process the function runs in");
    vec![add, fail, host_pid]
}

async fn session_with(
    library: &TempLibrary,
    executor: impl ExecutorFactory + 'static,
    calls: &Arc<AtomicUsize>,
) -> Session {
    let storage = Arc::new(FileStorage::open(library.path()).expect("open storage"));
    let mut builder = Session::builder(storage)
        .executor(executor)
        .timeout(Duration::from_secs(30));
    for function in functions(calls) {
        builder = builder.function(function);
    }
    builder.build().await.expect("build session")
}

async fn check_functions(session: &Session, calls: &Arc<AtomicUsize>) {
    let result = ok(session, "tools.add(a=2), tools.add(a=2, b=40)").await;
    assert_eq!(result.value, Some(json!([3, 42])));

    // The error reaches agent code as `ToolError`, message and all.
    let result = ok(
        session,
        "try:\n    tools.fail()\nexcept ToolError as e:\n    r = (type(e).__name__, str(e))\nr",
    )
    .await;
    assert_eq!(
        result.value,
        Some(json!([
            "ToolError",
            "tools.call: tool `fail` failed: the disk is on fire"
        ]))
    );

    // Arguments are checked on the host before the function runs.
    let result = ok(
        session,
        "out = []\nfor kw in ({'a': 1, 'c': 2}, {'b': 2}):\n    try:\n        tools.add(**kw)\n    except TypeError as e:\n        out.append(str(e))\nout",
    )
    .await;
    let messages = result.value.expect("a value");
    assert!(
        messages[0]
            .as_str()
            .is_some_and(|m| m.contains("unexpected keyword argument `c`")),
        "{messages}"
    );
    assert!(
        messages[1]
            .as_str()
            .is_some_and(|m| m.contains("missing required argument `a`")),
        "{messages}"
    );

    // The function runs in this process, not in the worker.
    let before = calls.load(Ordering::SeqCst);
    let result = ok(session, "import os\n(tools.host_pid(), os.getpid())").await;
    let pids = result.value.expect("a value");
    assert_eq!(pids[0], json!(std::process::id()));
    assert_ne!(pids[1], json!(std::process::id()));
    assert_eq!(calls.load(Ordering::SeqCst), before + 1);

    // Listed and searched like any tool.
    let result = ok(
        session,
        "[t for t in tools.list() if t['name'] == 'add'][0], [t['name'] for t in tools.search('sum of integers', limit=1)]",
    )
    .await;
    assert_eq!(
        result.value,
        Some(json!([
            {
                "name": "add",
                "type": "function",
                "description": "Add two integers: the sum of a and b",
                "tags": [],
                "callables": [{
                    "name": "add",
                    "description": "Add two integers: the sum of a and b",
                    "parameters": [
                        {"name": "a", "type": "int", "required": true, "description": "the first addend"},
                        {"name": "b", "type": "int", "required": false, "default": 1, "description": "the second addend"},
                    ],
                }],
            },
            ["add"],
        ]))
    );
}

#[tokio::test]
async fn closures_are_tools_in_a_subprocess_worker() {
    let library = TempLibrary::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let config = SubprocessConfig {
        python: python(),
        ..SubprocessConfig::default()
    };
    let session = session_with(&library, config, &calls).await;
    check_functions(&session, &calls).await;
    session.close().await;
}

#[tokio::test]
async fn closures_are_tools_in_the_sandbox() {
    let library = TempLibrary::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let session = session_with(&library, crate::sandbox::sandbox_config(), &calls).await;
    check_functions(&session, &calls).await;
    session.close().await;
}

#[tokio::test]
async fn a_function_agent_code_could_not_call_is_refused_at_build() {
    let library = TempLibrary::new();
    for name in ["list", "_hidden", "not-an-identifier"] {
        let storage = Arc::new(FileStorage::open(library.path()).expect("open storage"));
        let built = Session::builder(storage)
            .function(FunctionTool::new(name, |_| async { Ok(Value::Null) }))
            .build()
            .await;
        let Err(py_code_mode::Error::Tool(ToolError::Definition { message, .. })) = built else {
            panic!("`{name}` was accepted");
        };
        assert!(message.contains(name), "{message}");
    }
}
