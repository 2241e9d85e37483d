//! The warm worker pool: sessions take ready workers from it, never share one,
//! and leave nothing behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use py_code_mode::{ExecutorFactory, FileStorage, Session, SubprocessConfig, WorkerPool};
use py_code_mode_test_support::{TempLibrary, alive, python};

use crate::ok;

/// How long the pool may take to fill (cold interpreters on a busy machine).
const FILL_DEADLINE: Duration = Duration::from_mins(1);

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + FILL_DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn subprocess(pool: &WorkerPool) -> SubprocessConfig {
    SubprocessConfig {
        python: python(),
        pool: Some(pool.clone()),
        ..SubprocessConfig::default()
    }
}

fn sandbox(pool: &WorkerPool) -> py_code_mode::SandboxConfig {
    py_code_mode::SandboxConfig {
        pool: Some(pool.clone()),
        ..crate::sandbox::sandbox_config()
    }
}

async fn session(library: &TempLibrary, factory: impl ExecutorFactory + 'static) -> Session {
    let storage = Arc::new(FileStorage::open(library.path()).expect("open storage"));
    Session::builder(storage)
        .executor(factory)
        .timeout(Duration::from_secs(20))
        .build()
        .await
        .expect("build session")
}

async fn pid(session: &Session) -> i64 {
    ok(session, "import os\nos.getpid()")
        .await
        .value
        .and_then(|v| v.as_i64())
        .expect("a pid")
}

/// The pool is full: `size` idle workers, all alive.
async fn filled(pool: &WorkerPool) -> Vec<u32> {
    until("the pool is full", || {
        let idle = pool.idle_pids();
        idle.len() == pool.size() && idle.iter().all(|&p| alive(p.into()))
    })
    .await;
    pool.idle_pids()
}

/// What one session leaves in its worker: a variable, a patched module, a
/// new builtin, a file in its working directory. Each check is `true` in the
/// session that did it (so it would see a shared worker's state).
const LEAVE: &str = "import builtins, json\nx = 41\njson.poisoned = True\nbuiltins.leaked = 1\nopen('mark', 'w').write('b')";
const SEES: &str = "import builtins, json, os\n['x' in globals(), hasattr(json, 'poisoned'), hasattr(builtins, 'leaked'), os.path.exists('mark')]";

async fn sessions_never_share<F: ExecutorFactory + 'static>(factory: fn(&WorkerPool) -> F) {
    let library = TempLibrary::new();
    let pool = WorkerPool::new(2).expect("pool");
    // The first session finds the pool empty and fills it.
    let first = session(&library, factory(&pool)).await;
    ok(&first, "1").await;
    let idle = filled(&pool).await;

    let a = session(&library, factory(&pool)).await;
    let b = session(&library, factory(&pool)).await;
    ok(&a, "1").await;
    ok(&b, "1").await;
    // Both came from the pool: the workers idle before are taken (no longer
    // idle, still alive), whatever refilled it since.
    let now = pool.idle_pids();
    for p in &idle {
        assert!(
            !now.contains(p),
            "worker {p} is still idle: a session started its own"
        );
        assert!(alive((*p).into()), "pooled worker {p} died");
    }
    ok(&a, LEAVE).await;
    let seen = |r: py_code_mode::ExecutionResult| r.value.expect("a list");
    assert_eq!(
        seen(ok(&a, SEES).await),
        serde_json::json!([true, true, true, true])
    );
    assert_eq!(
        seen(ok(&b, SEES).await),
        serde_json::json!([false, false, false, false])
    );

    // A worker given back is never handed out again: a later session gets a
    // fresh one even after `a` closed.
    a.close().await;
    let c = session(&library, factory(&pool)).await;
    assert_eq!(
        seen(ok(&c, SEES).await),
        serde_json::json!([false, false, false, false])
    );
    for s in [first, b, c] {
        s.close().await;
    }
    pool.close();
}

#[tokio::test]
async fn pooled_subprocess_sessions_never_share_variables_modules_or_files() {
    sessions_never_share(subprocess).await;
}

#[tokio::test]
async fn pooled_sandbox_sessions_never_share_variables_modules_or_files() {
    sessions_never_share(sandbox).await;
}

#[tokio::test]
async fn a_pooled_worker_that_died_is_replaced() {
    let library = TempLibrary::new();
    let pool = WorkerPool::new(1).expect("pool");
    let first = session(&library, subprocess(&pool)).await;
    ok(&first, "1").await;
    let dead = i64::from(filled(&pool).await[0]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(dead).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the idle worker");
    until("the idle worker is dead", || !alive(dead)).await;

    let next = session(&library, subprocess(&pool)).await;
    assert_eq!(ok(&next, "6 * 7").await.value, Some(serde_json::json!(42)));
    assert_ne!(pid(&next).await, dead);
    let refilled = filled(&pool).await;
    assert!(!refilled.iter().any(|&p| i64::from(p) == dead));
    first.close().await;
    next.close().await;
}

#[tokio::test]
async fn close_leaves_no_pooled_process_behind() {
    let library = TempLibrary::new();
    let pool = WorkerPool::new(2).expect("pool");
    let first = session(&library, subprocess(&pool)).await;
    ok(&first, "1").await;
    filled(&pool).await;
    let taken = session(&library, subprocess(&pool)).await;
    let taken_pid = pid(&taken).await;
    let scratch = ok(&taken, "import os\nos.getcwd()")
        .await
        .value
        .expect("cwd");
    let scratch = std::path::PathBuf::from(scratch.as_str().expect("a path"));
    taken.close().await;
    until("the closed session's pooled worker is dead", || {
        !alive(taken_pid)
    })
    .await;
    assert!(
        !scratch.exists(),
        "the pooled worker's scratch folder outlived its session"
    );

    let idle = filled(&pool).await;
    first.close().await;
    pool.close();
    until("every idle worker is dead", || {
        idle.iter().all(|&p| !alive(p.into()))
    })
    .await;
    // A closed pool starts no more: the next session starts its own worker.
    let after = session(&library, subprocess(&pool)).await;
    ok(&after, "1").await;
    assert!(pool.idle_pids().is_empty());
    after.close().await;
}

#[tokio::test]
async fn dropping_the_last_handle_kills_the_idle_workers() {
    let library = TempLibrary::new();
    let pool = WorkerPool::new(2).expect("pool");
    let first = session(&library, subprocess(&pool)).await;
    ok(&first, "1").await;
    let idle = filled(&pool).await;
    first.close().await;
    drop(first);
    drop(pool);
    until("every idle worker is dead", || {
        idle.iter().all(|&p| !alive(p.into()))
    })
    .await;
}

/// The host going away takes idle workers with it: they get the parent-death
/// signal when the thread that started them ends, as at process exit.
#[test]
fn idle_workers_die_with_the_thread_that_started_them() {
    let library = TempLibrary::new();
    let pool = WorkerPool::new(2).expect("pool");
    let kept = pool.clone();
    let idle = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let first = session(&library, subprocess(&pool)).await;
            ok(&first, "1").await;
            let idle = filled(&pool).await;
            // Leaked on purpose: nothing is closed or dropped, as when a
            // process exits.
            std::mem::forget(first);
            std::mem::forget(pool);
            idle
        })
    })
    .join()
    .expect("the thread");
    let deadline = Instant::now() + FILL_DEADLINE;
    while idle.iter().any(|&p| alive(p.into())) {
        assert!(
            Instant::now() < deadline,
            "idle workers outlived their host thread"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(kept);
}

/// After a process's first worker, later ones start from the runtime's
/// bytecode kept in memory, and behave exactly like one started from source.
#[tokio::test]
async fn workers_started_from_cached_bytecode_behave_like_from_source() {
    let library = TempLibrary::new();
    let first = session(
        &library,
        SubprocessConfig {
            python: python(),
            ..SubprocessConfig::default()
        },
    )
    .await;
    ok(&first, "1").await;
    let resolved = py_code_mode::resolve_python(python().as_deref())
        .await
        .expect("resolve");
    // The compile runs once per process, on the tokio runtime of the worker
    // start that asked for it: when that is another test's runtime and it
    // ends first, the compile is dropped, and the next worker's first run
    // asks again.
    let deadline = Instant::now() + FILL_DEADLINE;
    while !py_code_mode::runtime_bytecode_cached(&resolved) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting until the runtime is compiled"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        first.reset().await.expect("reset");
        ok(&first, "1").await;
    }
    let next = session(
        &library,
        SubprocessConfig {
            python: python(),
            ..SubprocessConfig::default()
        },
    )
    .await;
    // A fresh worker started by the bootstrap (its command line), with
    // `sys.argv` as from source.
    let started = ok(
        &next,
        "'marshal.loads' in open('/proc/self/cmdline').read()",
    )
    .await;
    assert_eq!(started.value, Some(serde_json::json!(true)));
    let argv = ok(&next, "import sys\nsys.argv").await.value;
    assert_eq!(argv, Some(serde_json::json!(["-c"])));
    ok(&next, "x = 2").await;
    assert_eq!(ok(&next, "x * 21").await.value, Some(serde_json::json!(42)));
    let error = next
        .run("def f():\n    raise ValueError('bad')\nf()")
        .await
        .expect("run");
    let error = error.error.expect("an error");
    assert_eq!(error.kind, "ValueError");
    assert!(error.traceback.contains("<cell"), "{}", error.traceback);
    let host = ok(&next, "artifacts.exists('nothing')").await.value;
    assert_eq!(host, Some(serde_json::json!(false)));
    next.reset().await.expect("reset");
    assert_eq!(
        ok(&next, "'x' in globals()").await.value,
        Some(serde_json::json!(false))
    );
    first.close().await;
    next.close().await;
}
