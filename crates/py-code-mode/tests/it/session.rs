//! Notebook semantics, capture, errors, timeouts and crashes.

use std::sync::Arc;
use std::time::Duration;

use pretty_assertions::assert_eq;
use py_code_mode_test_support::TempLibrary;
use serde_json::json;

use crate::{ok, session};

#[tokio::test]
async fn globals_persist_and_the_trailing_expression_is_the_value() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    ok(&session, "x = 20").await;
    let result = ok(&session, "y = x + 1\ny * 2").await;
    assert_eq!(result.value, Some(json!(42)));
    assert_eq!(result.repr.as_deref(), Some("42"));
    // An assignment last has no value.
    let result = ok(&session, "z = 1").await;
    assert_eq!((result.value, result.repr), (None, None));
    session.close().await;
}

#[tokio::test]
async fn indented_code_like_the_seed_example_runs() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = ok(&session, "\n        a = 1\n        a + 1\n    ").await;
    assert_eq!(result.value, Some(json!(2)));
    session.close().await;
}

#[tokio::test]
async fn stdout_and_stderr_are_captured_separately() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = ok(
        &session,
        "import sys, os\nprint('out')\nprint('err', file=sys.stderr)\nos.system('echo from-child; echo child-err >&2')\nprint('end')\nos.system('true')",
    )
    .await;
    // A child's fds 1 and 2 are the run's capture, in order with `print`, and
    // never the protocol.
    assert_eq!(result.stdout, "out\nfrom-child\nend\n");
    assert_eq!(result.stderr, "err\nchild-err\n");
    assert_eq!(result.value, Some(json!(0)));
    session.close().await;
}

#[tokio::test]
async fn output_is_capped_with_a_visible_marker() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = ok(&session, "print('x' * 3_000_000)").await;
    assert!(result.stdout.len() < 1_100_000, "{}", result.stdout.len());
    assert!(
        result.stdout.contains("[... output truncated: "),
        "no marker"
    );
    session.close().await;
}

#[tokio::test]
async fn values_that_are_not_json_come_back_as_repr() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = ok(&session, "{1, 2}").await;
    assert_eq!(result.value, None);
    assert_eq!(result.repr.as_deref(), Some("{1, 2}"));
    let result = ok(&session, "{'a': [1, 'b', None]}").await;
    assert_eq!(result.value, Some(json!({"a": [1, "b", null]})));
    session.close().await;
}

/// JSON has no integer limit but the host reads 64 bits exactly: a larger
/// integer would arrive rounded to a float (`2**64` as `1.8446744073709552e19`)
/// or not at all (`10**400`). A value keeps its exact repr instead, and a
/// call that would send one is refused with the reason (a `ValueError`).
#[tokio::test]
async fn integers_past_64_bits_keep_their_repr_and_are_never_sent_rounded() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    ok(&session, "keep = 7").await;
    let result = ok(&session, "2**64 - 1").await;
    assert_eq!(result.value, Some(json!(u64::MAX)));
    let result = ok(&session, "-2**63").await;
    assert_eq!(result.value, Some(json!(i64::MIN)));
    for (code, repr) in [
        ("2**64", "18446744073709551616".to_owned()),
        ("-2**63 - 1", "-9223372036854775809".to_owned()),
        ("[1, 2**70]", "[1, 1180591620717411303424]".to_owned()),
        ("{2**64: 1}", "{18446744073709551616: 1}".to_owned()),
        ("10**400", format!("1{}", "0".repeat(400))),
    ] {
        let result = ok(&session, code).await;
        assert_eq!(
            (result.value, result.repr.as_deref()),
            (None, Some(repr.as_str())),
            "{code}"
        );
    }
    for call in [
        "artifacts.save('n', {'n': 2**64})",
        "tools.anything(n=[10**400])",
        "tools.call('anything', {'n': -2**63 - 1})",
    ] {
        let result = session.run(call).await.expect("executor failed");
        let error = result.error.expect(call);
        assert_eq!(error.kind, "ValueError", "{call}: {}", error.message);
        assert!(
            error.message.contains("beyond 64 bits"),
            "{call}: {}",
            error.message
        );
    }
    assert!(session.list_artifacts().await.expect("list").is_empty());
    let result = ok(&session, "keep").await;
    assert_eq!((result.value, result.state_reset), (Some(json!(7)), false));
    session.close().await;
}

#[tokio::test]
async fn top_level_await_works() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = ok(
        &session,
        "import asyncio\nasync def f(x):\n    await asyncio.sleep(0.01)\n    return x * 2\nawait asyncio.gather(f(1), f(2))",
    )
    .await;
    assert_eq!(result.value, Some(json!([2, 4])));
    session.close().await;
}

#[tokio::test]
async fn exceptions_carry_type_message_and_the_agents_own_traceback() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = session
        .run("def f(d):\n    return d['missing']\nf({})")
        .await
        .expect("run");
    let error = result.error.expect("an error");
    assert_eq!(error.kind, "KeyError");
    assert_eq!(error.message, "'missing'");
    assert!(
        error.traceback.contains("<cell 1>\", line 2, in f"),
        "{}",
        error.traceback
    );
    assert!(
        !error.traceback.contains("py_code_mode_runtime"),
        "{}",
        error.traceback
    );
    assert!(!error.traceback.contains("<string>"), "{}", error.traceback);
    assert!(!result.state_reset);
    session.close().await;
}

#[tokio::test]
async fn syntax_errors_are_reported_and_the_session_goes_on() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    ok(&session, "kept = 'yes'").await;
    let result = session.run("def broken(:\n    pass").await.expect("run");
    let error = result.error.expect("an error");
    assert_eq!(error.kind, "SyntaxError");
    assert!(error.message.contains("line 1"), "{}", error.message);
    assert_eq!(ok(&session, "kept").await.value, Some(json!("yes")));
    session.close().await;
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_and_the_next_run_works() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    ok(&session, "before = 1").await;
    let result = session
        .run_with_timeout("while True:\n    pass", Some(Duration::from_millis(500)))
        .await
        .expect("run");
    let error = result.error.expect("a timeout error");
    assert_eq!(error.kind, "TimeoutError");
    assert!(
        result.state_reset,
        "the result must say the state was reset"
    );
    // The worker was replaced: code runs again, and the old state is gone.
    assert_eq!(ok(&session, "1 + 1").await.value, Some(json!(2)));
    let result = session.run("before").await.expect("run");
    assert_eq!(result.error.map(|e| e.kind).as_deref(), Some("NameError"));
    session.close().await;
}

#[tokio::test]
async fn a_timeout_also_stops_children_the_code_started() {
    let library = TempLibrary::new();
    let marker = library.path().join("child-survived");
    let session = session(&library).await;
    let code = format!(
        "import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 1.5; touch {}'])\nimport time\ntime.sleep(60)",
        marker.display()
    );
    let result = session
        .run_with_timeout(&code, Some(Duration::from_millis(500)))
        .await
        .expect("run");
    assert_eq!(
        result.error.map(|e| e.kind).as_deref(),
        Some("TimeoutError")
    );
    tokio::time::sleep(Duration::from_secs(2)).await; // outlive the child's own sleep
    assert!(!marker.exists(), "a grandchild outlived the timeout");
    session.close().await;
}

#[tokio::test]
async fn a_crashed_worker_is_reported_and_replaced() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    for crash in [
        "import os\nos._exit(3)",
        "import ctypes\nctypes.string_at(0)",
    ] {
        let result = session.run(crash).await.expect("run");
        let error = result.error.expect("a crash error");
        assert_eq!(error.kind, "WorkerCrashed", "{crash}");
        assert!(result.state_reset);
        assert_eq!(ok(&session, "2 * 21").await.value, Some(json!(42)));
    }
    session.close().await;
}

#[tokio::test]
async fn reset_forgets_variables_but_not_the_library() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    ok(&session, "v = 1\nartifacts.save('kept.txt', 'still here')").await;
    session.reset().await.expect("reset");
    let result = session.run("v").await.expect("run");
    assert_eq!(result.error.map(|e| e.kind).as_deref(), Some("NameError"));
    assert_eq!(
        ok(&session, "artifacts.load('kept.txt')").await.value,
        Some(json!("still here"))
    );
    session.close().await;
}

#[tokio::test]
async fn agent_code_catches_host_errors_by_name() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = ok(
        &session,
        "try:\n    artifacts.load('missing')\nexcept ArtifactNotFoundError as e:\n    caught = type(e).__name__\ntry:\n    tools.nope()\nexcept ToolNotFoundError:\n    caught += ' ToolNotFoundError'\ncaught",
    )
    .await;
    assert_eq!(
        result.value,
        Some(json!("ArtifactNotFoundError ToolNotFoundError"))
    );
    let result = session.run("skills.get('ghost')").await.expect("run");
    let error = result.error.expect("an error");
    // The message names the operation, as 0.10's did (issue 12).
    assert!(error.traceback.ends_with("SkillNotFoundError: skills.get: no skill named `ghost`\nhint: `skills.list()` shows the skills there are\n"), "{}", error.traceback);
    session.close().await;
}

/// `interrupt` raises `KeyboardInterrupt` in the running cell, as Ctrl-C does
/// in Python: the cell ends with it, the variables stay, and with nothing
/// running there is nothing to interrupt.
#[tokio::test]
async fn interrupt_stops_the_running_cell_and_keeps_the_variables() {
    let library = TempLibrary::new();
    let session = Arc::new(session(&library).await);
    ok(&session, "kept = 'yes'").await;
    assert!(!session.interrupt(), "nothing runs yet");
    // The cell says it started through its output, which every executor
    // streams (a file in the library would be hidden by the sandbox).
    let running = tokio::spawn({
        let session = Arc::clone(&session);
        async move {
            session
                .run("print('started', flush=True)\nwhile True: pass")
                .await
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while !seen.contains("started") {
        assert!(
            std::time::Instant::now() < deadline,
            "the cell never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen.push_str(&session.host().take_partial_output().stdout);
    }
    assert!(session.interrupt());
    let result = running.await.expect("join").expect("run");
    let error = result.error.expect("an error");
    assert_eq!(error.kind, "KeyboardInterrupt", "{}", error.traceback);
    assert!(!result.state_reset);
    assert_eq!(ok(&session, "kept").await.repr.as_deref(), Some("'yes'"));
    assert!(!session.interrupt(), "the cell is over");
}

/// A long run's output reaches the host before its result (the MCP server's
/// progress notifications carry it); fd-level output of a child process too.
#[tokio::test]
async fn a_long_runs_output_can_be_taken_before_its_result() {
    let library = TempLibrary::new();
    let session = Arc::new(session(&library).await);
    let run = tokio::spawn({
        let session = Arc::clone(&session);
        async move {
            session
                .run("import os, time\nprint('first')\nos.system('echo from-a-child')\ntime.sleep(30)")
                .await
        }
    });
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !(seen.contains("first\n") && seen.contains("from-a-child\n")) {
        assert!(
            std::time::Instant::now() < deadline,
            "only {seen:?} before the deadline"
        );
        assert!(!run.is_finished(), "the run ended first");
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen.push_str(&session.host().take_partial_output().stdout);
    }
    run.abort();
    // The next run streams only its own output.
    let _ = run.await;
    let result = session
        .run("print('next')")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result.stdout, "next\n");
    session.close().await;
}

/// Every host call gets its answer, whichever thread waits for it and
/// whenever it is made: agent code's own thread, another thread while the
/// main thread waits or runs code that calls nothing, an event loop with a
/// call in flight while the main thread makes one of its own, and a thread
/// that calls after its run ended, answered between runs.
#[tokio::test]
async fn host_calls_are_answered_whichever_thread_waits_and_whenever() {
    const ECHO: &str = "name: echo\ntype: cli\nargs: '{text}'\ndescription: print text back\n";
    let library = TempLibrary::new().with_tool("echo.yaml", ECHO);
    let session = session(&library).await;
    ok(&session, "artifacts.save('k', 41)\nartifacts.load('k')").await;
    let result = ok(
        &session,
        r"
import asyncio, threading, time
got = []
t = threading.Thread(target=lambda: got.append(artifacts.load('k')))
t.start()
t.join(10)
t = threading.Thread(target=lambda: got.append(artifacts.load('k') + 1))
t.start()
end = time.monotonic() + 0.3
while time.monotonic() < end:
    pass
t.join(10)
t = threading.Thread(target=lambda: got.append([artifacts.exists('k') for _ in range(50)].count(True)))
t.start()
mine = [artifacts.load('k') for _ in range(50)]
t.join(10)
async def both():
    echo = asyncio.ensure_future(tools.echo.acall(text='from the loop'))
    await asyncio.sleep(0)
    own = artifacts.load('k')
    return [(await echo).strip(), own]
got.append(await both())
got, mine == [41] * 50
",
    )
    .await;
    assert_eq!(
        result.value,
        Some(json!([[41, 42, 50, ["from the loop", 41]], true]))
    );
    ok(
        &session,
        "late = threading.Thread(target=lambda: (time.sleep(0.2), got.append(artifacts.exists('k'))))\nlate.start()",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Not joined: the answer came while the worker waited for this run.
    let result = ok(&session, "got[-1]").await;
    assert_eq!(result.value, Some(json!(true)));
    session.close().await;
}
